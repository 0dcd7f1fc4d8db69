//! eddy's side of the benchmark: a Nexmark query run through `eddy_engine::Job`, fed from
//! the NDJSON files (JSON decoding included, as the peers do) or from events generated in
//! memory (as records, to time the operators alone, or as JSON text, to time decoding).

use crate::error::BenchError;
use crate::generator::{self, GenOptions, Kind, RecordShapes};
use crate::memory::{peak_rss_bytes, reset_peak_rss, thread_cpu_ns};
use crate::queries::NexmarkQuery;
use eddy_engine::{Arrival, EngineError, Job, JobOptions, OutputRow, Row, Value};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Pushes between drains of the job's output, so output memory stays bounded.
const DRAIN_EVERY: u64 = 16_384;

/// The result of one eddy run.
#[derive(Debug, Clone, Default)]
pub struct EddyRun {
    /// Events pushed (all inputs).
    pub events: u64,
    /// Rows the query wrote.
    pub output_rows: u64,
    /// Events the job rejected or dropped (bad JSON, conversion errors, policies).
    pub rejected: u64,
    /// Wall time from the first push to the last output row.
    pub elapsed: Duration,
    /// CPU time of the pushing thread over the same span, when Linux can tell.
    pub cpu: Option<Duration>,
    /// Peak resident memory of this process during the run, when Linux can tell.
    pub peak_rss_bytes: Option<u64>,
    /// The output rows, when the run was asked to keep them.
    pub rows: Vec<Row>,
}

impl EddyRun {
    /// Input events per second of wall time (the engine runs on one core).
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Input events per second of the pushing thread's CPU time (`None`: not measured);
    /// steadier than [`EddyRun::events_per_second`] when other work shares the core.
    pub fn events_per_cpu_second(&self) -> Option<f64> {
        self.cpu
            .map(|cpu| self.events as f64 / cpu.as_secs_f64().max(1e-9))
    }
}

/// How in-memory events reach the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Pre-built records with typed datetimes (`push_record`): operators only.
    Records,
    /// Pre-serialised JSON text (`push_json`): decoding plus operators.
    Json,
}

/// Compiles a query, mapping each job input to its event kind; a construct the engine
/// does not run yet is `BenchError::Unsupported`.
pub fn compile(query: &NexmarkQuery) -> Result<(Job, Vec<Kind>), BenchError> {
    let job = Job::compile(query.sql, JobOptions::default()).map_err(|e| match e {
        EngineError::Unsupported { .. } => BenchError::Unsupported(e.to_string()),
        other => BenchError::Compile {
            query: query.name.to_string(),
            message: other.to_string(),
        },
    })?;
    let kinds = job
        .inputs()
        .iter()
        .map(|name| {
            Kind::from_name(name).ok_or_else(|| BenchError::UnknownInput {
                query: query.name.to_string(),
                input: name.clone(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((job, kinds))
}

/// Collects or counts output rows.
struct Output {
    keep: bool,
    rows: Vec<Row>,
    count: u64,
    buf: Vec<OutputRow>,
}

impl Output {
    fn new(keep: bool) -> Output {
        Output {
            keep,
            rows: Vec::new(),
            count: 0,
            buf: Vec::new(),
        }
    }

    fn drain(&mut self, job: &mut Job) {
        job.drain_output(&mut self.buf);
        self.count += self.buf.len() as u64;
        if self.keep {
            self.rows.extend(self.buf.drain(..).map(|r| r.row));
        } else {
            self.buf.clear();
        }
    }

    fn finish(
        mut self,
        mut job: Job,
        events: u64,
        start: Instant,
        cpu_start: Option<u64>,
    ) -> EddyRun {
        job.finish();
        self.drain(&mut job);
        let elapsed = start.elapsed();
        let cpu = cpu_start
            .zip(thread_cpu_ns())
            .map(|(a, b)| Duration::from_nanos(b.saturating_sub(a)));
        let m = job.metrics();
        EddyRun {
            events,
            output_rows: self.count,
            rejected: m.errors + m.dropped_events,
            elapsed,
            cpu,
            peak_rss_bytes: peak_rss_bytes(),
            rows: self.rows,
        }
    }
}

/// One input file, read line by line; merged with the others by event time. The file is
/// mapped rather than read: lines are slices of the page cache, which saves copying every
/// byte into a buffer first (a fifth of q1's time from files went to `read`). Pages behind
/// the reader are unmapped as it goes, so the process's RSS stays its own memory.
struct LineSource {
    input: usize,
    map: memmap2::Mmap,
    /// Where the next line starts.
    next: usize,
    /// The current line, trailing whitespace trimmed.
    line: std::ops::Range<usize>,
    /// Bytes before this are unmapped (a page boundary).
    released: usize,
    offset: u64,
    done: bool,
}

impl LineSource {
    fn open(input: usize, path: PathBuf) -> Result<LineSource, BenchError> {
        let file = File::open(&path).map_err(BenchError::io(&path))?;
        // SAFETY: the harness maps files it generated and nothing writes them during a run;
        // a file truncated meanwhile could fault, which a benchmark may accept.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(BenchError::io(&path))?;
        // Only a hint (larger read-ahead); the reading works without it.
        let _ = map.advise(memmap2::Advice::Sequential);
        let mut s = LineSource {
            input,
            map,
            next: 0,
            line: 0..0,
            released: 0,
            offset: 0,
            done: false,
        };
        s.advance();
        Ok(s)
    }

    fn advance(&mut self) {
        let bytes = &self.map[..];
        while self.next < bytes.len() {
            let start = self.next;
            let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
            self.next = end + 1;
            let mut trimmed = end;
            while trimmed > start && bytes[trimmed - 1].is_ascii_whitespace() {
                trimmed -= 1;
            }
            if trimmed > start {
                self.line = start..trimmed;
                self.release_behind(start);
                return;
            }
        }
        self.done = true;
    }

    /// Unmaps whole pages before `upto` once 2 MiB have been read past the last release.
    fn release_behind(&mut self, upto: usize) {
        const EVERY: usize = 2 << 20;
        const PAGE: usize = 4096;
        let end = upto / PAGE * PAGE;
        if end >= self.released + EVERY {
            // SAFETY: a read-only file mapping: unmapped pages fault in again from the file
            // if touched, so no slice into it can see other bytes; nothing before `upto` is
            // read again anyway. An error only leaves the pages mapped.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    self.released,
                    end - self.released,
                )
            };
            self.released = end;
        }
    }

    fn line(&self) -> &[u8] {
        &self.map[self.line.clone()]
    }

    /// The event time as sortable bytes: generated lines start with `{"dateTime":"<iso>"`,
    /// and ISO-8601 UTC strings of one width sort like the times they name.
    fn time_key(&self) -> &[u8] {
        const PREFIX: &[u8] = b"{\"dateTime\":\"";
        let line = self.line();
        match line.strip_prefix(PREFIX) {
            Some(rest) => &rest[..rest.len().min(24)],
            None => line,
        }
    }
}

/// Runs a query over `dir/<kind>/part-0.ndjson` (see [`generator::write_ndjson`]), reading
/// and decoding the files inside the timed part; `keep_rows` keeps the output for checks.
pub fn run_files(query: &NexmarkQuery, dir: &Path, keep_rows: bool) -> Result<EddyRun, BenchError> {
    let (mut job, kinds) = compile(query)?;
    reset_peak_rss();
    let cpu_start = thread_cpu_ns();
    let start = Instant::now();
    let mut sources = kinds
        .iter()
        .enumerate()
        .map(|(input, kind)| LineSource::open(input, kind.file(dir)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Output::new(keep_rows);
    let mut events = 0u64;
    loop {
        let next = sources
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.done)
            .min_by(|(_, a), (_, b)| a.time_key().cmp(b.time_key()))
            .map(|(i, _)| i);
        let Some(i) = next else { break };
        let s = &mut sources[i];
        // A rejected event is counted by the job (metrics) and skipped, as a server would.
        let _ = job.push_json(s.input, 0, s.offset, Arrival::FromPayload, s.line());
        s.offset += 1;
        s.advance();
        events += 1;
        if events.is_multiple_of(DRAIN_EVERY) {
            out.drain(&mut job);
        }
    }
    Ok(out.finish(job, events, start, cpu_start))
}

/// Runs a query over events generated in memory before the clock starts, so the time is
/// the engine's alone (`Feed::Records`) or decoding plus engine (`Feed::Json`).
pub fn run_memory(
    query: &NexmarkQuery,
    options: &GenOptions,
    feed: Feed,
) -> Result<EddyRun, BenchError> {
    enum Payload {
        Record(Value),
        Json(Box<[u8]>),
    }
    let (mut job, kinds) = compile(query)?;
    let shapes = RecordShapes::default();
    let mut buf = Vec::new();
    let events: Vec<(usize, Payload)> = generator::events(options)
        .filter_map(|event| {
            let (kind, record) = generator::to_record(&event, &shapes);
            let input = kinds.iter().position(|&k| k == kind)?;
            Some(match feed {
                Feed::Records => (input, Payload::Record(record)),
                Feed::Json => {
                    buf.clear();
                    generator::write_json(&event, &mut buf);
                    (input, Payload::Json(buf.as_slice().into()))
                }
            })
        })
        .collect();
    let count = events.len() as u64;
    reset_peak_rss();
    let cpu_start = thread_cpu_ns();
    let start = Instant::now();
    let mut out = Output::new(false);
    for (i, (input, payload)) in events.into_iter().enumerate() {
        let offset = i as u64;
        // Rejected events are counted by the job's metrics.
        let _ = match payload {
            Payload::Record(r) => job.push_record(input, 0, offset, Arrival::FromPayload, r),
            Payload::Json(j) => job.push_json(input, 0, offset, Arrival::FromPayload, &j),
        };
        if offset % DRAIN_EVERY == DRAIN_EVERY - 1 {
            out.drain(&mut job);
        }
    }
    Ok(out.finish(job, count, start, cpu_start))
}

/// Which in-memory feeds [`engine_table`] times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Feeds {
    /// Records only (the JSON column says `-`).
    Records,
    /// JSON text only (the records column says `-`).
    Json,
    /// Both, one after the other.
    Both,
}

fn cell(run: &Option<Result<EddyRun, BenchError>>) -> String {
    match run {
        None => "-".into(),
        Some(run) => run_cell(run),
    }
}

fn run_cell(run: &Result<EddyRun, BenchError>) -> String {
    match run {
        Ok(r) => match r.events_per_cpu_second() {
            Some(cpu) => format!("{:.0} ({cpu:.0})", r.events_per_second()),
            None => format!("{:.0}", r.events_per_second()),
        },
        Err(BenchError::Unsupported(_)) => "unsupported".into(),
        Err(_) => "failed".into(),
    }
}

/// Engine-only numbers: each query fed the same in-memory events as records and as JSON
/// text, as a Markdown table (events per wall second on one core, and in parentheses
/// per CPU second of the pushing thread; the JSON cost is the difference), with the
/// reason for each query that did not run.
pub fn engine_table(queries: &[&NexmarkQuery], options: &GenOptions, feeds: Feeds) -> String {
    let mut s = String::from(
        "| query | events | records ev/s | JSON ev/s | output rows |\n|---|---:|---:|---:|---:|\n",
    );
    let mut notes = String::new();
    for q in queries {
        let records = (feeds != Feeds::Json).then(|| run_memory(q, options, Feed::Records));
        let json = (feeds != Feeds::Records).then(|| run_memory(q, options, Feed::Json));
        let (events, rows) = match records.as_ref().or(json.as_ref()) {
            Some(Ok(r)) => (r.events.to_string(), r.output_rows.to_string()),
            None => ("-".into(), "-".into()),
            Some(Err(e)) => {
                notes.push_str(&format!(
                    "- {}: {}\n",
                    q.name,
                    e.to_string().replace('\n', " ")
                ));
                ("-".into(), "-".into())
            }
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            q.name,
            events,
            cell(&records),
            cell(&json),
            rows
        ));
    }
    s.push_str(&notes);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines come back without their line ends or trailing blanks; blank lines are
    /// skipped; a last line without a newline and an empty file read as expected.
    #[test]
    fn line_source_splits_trims_and_skips_blank_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let read_all = |text: &[u8]| {
            let path = dir.path().join("part-0.ndjson");
            std::fs::write(&path, text).expect("write");
            let mut source = LineSource::open(0, path).expect("open");
            let mut lines = Vec::new();
            while !source.done {
                lines.push(source.line().to_vec());
                source.advance();
            }
            lines
        };
        let want: [&[u8]; 3] = [b"abcdefghij", b"xy", b"last"];
        assert_eq!(read_all(b"abcdefghij\r\n\n  \nxy \nlast"), want);
        assert!(read_all(b"").is_empty());
        assert!(read_all(b"\n\n").is_empty());
    }
}
