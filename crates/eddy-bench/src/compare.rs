//! Side by side: each query run by eddy and by the peers (Apache Flink SQL through
//! PyFlink, Spark Structured Streaming through PySpark) on the same NDJSON files with the
//! same number of cores, as events per second per core and the ratio eddy/peer.
//!
//! Peers are the Python runners in `bench/nexmark/` (`flink_run.py`, `spark_run.py`),
//! called as `python3 <runner> <dir> <query> <cores>`, pinned to `cores` CPUs with
//! `taskset`; their last line of output is `RESULT seconds=<s> startup=<s> ...` or
//! `UNSUPPORTED <reason>`. A peer's rate leaves out `startup`, the fixed cost of starting
//! a job, which each runner measures on empty input just before (eddy has none).

use crate::error::BenchError;
use crate::generator::{self, GenOptions, Kind};
use crate::queries::NexmarkQuery;
use crate::run::run_files;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An engine eddy is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Apache Flink SQL (local mini-cluster through PyFlink).
    Flink,
    /// Spark Structured Streaming (local mode through PySpark, trigger availableNow).
    Spark,
}

impl Peer {
    /// Every peer.
    pub const ALL: [Peer; 2] = [Peer::Flink, Peer::Spark];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Flink => "flink",
            Peer::Spark => "spark",
        }
    }

    /// Parses `flink` or `spark` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Peer> {
        Peer::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
    }

    fn script(self) -> &'static str {
        match self {
            Peer::Flink => "flink_run.py",
            Peer::Spark => "spark_run.py",
        }
    }
}

/// How one engine fared on one query.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It ran: input events per second per core, and peak resident memory.
    Measured {
        /// Events per second divided by the cores used.
        per_core: f64,
        /// Peak RSS: eddy's during the query; a peer's process tree (driver and JVM),
        /// sampled every 200 ms over the whole runner, warm-up runs included.
        peak_rss_bytes: Option<u64>,
    },
    /// The engine does not run this query; the engine's reason.
    Unsupported(String),
    /// The run failed; why.
    Failed(String),
}

impl Outcome {
    fn rate(&self) -> Option<f64> {
        match self {
            Outcome::Measured { per_core, .. } => Some(*per_core),
            _ => None,
        }
    }

    fn rss_mib(&self) -> String {
        match self {
            Outcome::Measured { peak_rss_bytes, .. } => mib(*peak_rss_bytes),
            _ => "-".into(),
        }
    }

    fn cell(&self) -> String {
        match self {
            Outcome::Measured { per_core, .. } => format!("{per_core:.0}"),
            Outcome::Unsupported(_) => "unsupported".into(),
            Outcome::Failed(_) => "failed".into(),
        }
    }
}

/// One query's line of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareRow {
    /// The query name.
    pub query: String,
    /// Input events the query reads (lines of its input files).
    pub events: u64,
    /// eddy's result.
    pub eddy: Outcome,
    /// Each peer's result.
    pub peers: Vec<(Peer, Outcome)>,
}

/// What to compare, and where the peers' runners are.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The NDJSON directory (`<dir>/<kind>/part-0.ndjson`).
    pub dir: PathBuf,
    /// Generate the events into `dir` first; `None` uses the files already there.
    pub generate: Option<GenOptions>,
    /// The queries to run.
    pub queries: Vec<&'static NexmarkQuery>,
    /// Peers to run beside eddy.
    pub peers: Vec<Peer>,
    /// Cores per engine (eddy's job is single-threaded, so compare with 1).
    pub cores: usize,
    /// The directory holding `flink_run.py` and `spark_run.py`.
    pub scripts: PathBuf,
    /// The Python interpreter with `pyflink` and `pyspark` (see `bench/setup.sh`).
    pub python: String,
    /// A peer run longer than this is stopped and reported as failed.
    pub timeout: Duration,
}

impl CompareOptions {
    /// Defaults: every query and peer, 1 core, the runners of this source tree, `python3`.
    pub fn new(dir: PathBuf) -> CompareOptions {
        CompareOptions {
            dir,
            generate: None,
            queries: crate::queries::QUERIES.iter().collect(),
            peers: Peer::ALL.to_vec(),
            cores: 1,
            scripts: default_scripts_dir(),
            python: "python3".into(),
            timeout: Duration::from_secs(900),
        }
    }
}

/// `bench/nexmark` of the source tree this crate was built from.
pub fn default_scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/nexmark")
}

fn count_lines(path: &Path) -> Result<u64, BenchError> {
    let file = File::open(path).map_err(BenchError::io(path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(BenchError::io(path))?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

/// Runs eddy on the files of `dir`; eddy uses one core.
pub fn run_eddy(query: &NexmarkQuery, dir: &Path) -> Outcome {
    match run_files(query, dir, false) {
        Ok(run) => Outcome::Measured {
            per_core: run.events_per_second(),
            peak_rss_bytes: run.peak_rss_bytes,
        },
        Err(BenchError::Unsupported(m)) => Outcome::Unsupported(m),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Runs one peer's runner on one query and turns its last line into events/s per core
/// (job start-up left out).
pub fn run_peer(
    peer: Peer,
    query: &NexmarkQuery,
    events: u64,
    options: &CompareOptions,
) -> Outcome {
    match peer_seconds(peer, query, options) {
        Ok(Ok((seconds, peak))) => Outcome::Measured {
            per_core: events as f64 / seconds / options.cores.max(1) as f64,
            peak_rss_bytes: Some(peak),
        },
        Ok(Err(reason)) => Outcome::Unsupported(reason),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

fn peer_seconds(
    peer: Peer,
    query: &NexmarkQuery,
    options: &CompareOptions,
) -> Result<Result<(f64, u64), String>, BenchError> {
    let logs = options.dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(BenchError::io(&logs))?;
    let out_path = logs.join(format!("{}-{}.out", peer.name(), query.name));
    let err_path = logs.join(format!("{}-{}.err", peer.name(), query.name));
    let stdout = File::create(&out_path).map_err(BenchError::io(&out_path))?;
    let stderr = File::create(&err_path).map_err(BenchError::io(&err_path))?;
    let cores = options.cores.max(1);
    let script = options.scripts.join(peer.script());
    let mut cmd = Command::new("taskset");
    cmd.arg("-c")
        .arg(format!("0-{}", cores - 1))
        .arg(&options.python);
    cmd.arg(&script)
        .arg(&options.dir)
        .arg(query.name)
        .arg(cores.to_string())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    tracing::info!(peer = peer.name(), query = query.name, "running peer");
    let fail = |message: String| BenchError::Peer {
        peer: peer.name().into(),
        message,
    };
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot start taskset/{}: {e}", options.python)))?;
    let start = Instant::now();
    let mut peak = 0;
    let status = loop {
        peak = peak.max(tree_rss_bytes(child.id()));
        match child.try_wait().map_err(BenchError::io(&script))? {
            Some(status) => break status,
            None if start.elapsed() > options.timeout => {
                // Only the runner we started; its JVM exits when its gateway closes.
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("timed out after {:?}", options.timeout)));
            }
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let output = std::fs::read_to_string(&out_path).map_err(BenchError::io(&out_path))?;
    let last = output
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if let Some(reason) = last.strip_prefix("UNSUPPORTED") {
        return Ok(Err(reason.trim().to_string()));
    }
    let field = |name: &str| {
        last.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let seconds = match (
        last.starts_with("RESULT"),
        field("seconds"),
        field("startup"),
    ) {
        (true, Some(s), Some(startup)) => Some((s - startup).max(1e-6)),
        _ => None,
    };
    match seconds {
        Some(s) if status.success() => Ok(Ok((s, peak))),
        _ => {
            let err = std::fs::read_to_string(&err_path).unwrap_or_default();
            let tail: Vec<&str> = err.lines().rev().take(5).collect();
            Err(fail(format!(
                "exit {status}, no RESULT line (see {}): {}",
                err_path.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )))
        }
    }
}

/// Resident memory of a process and all its descendants (a peer's Python driver and its
/// JVM), summed from `/proc`; 0 where `/proc` is unavailable.
fn tree_rss_bytes(root: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    // (pid, parent pid, rss pages) of every process, from /proc/<pid>/stat.
    let procs: Vec<(u32, u32, u64)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the command name, which may hold spaces, in parentheses.
            let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            Some((pid, rest.get(1)?.parse().ok()?, rest.get(21)?.parse().ok()?))
        })
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(procs.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    let page = 4096;
    procs
        .iter()
        .filter(|p| tree.contains(&p.0))
        .map(|p| p.2 * page)
        .sum()
}

/// Runs every query on eddy then on each peer, one at a time (nothing else competes for
/// the cores), generating the events first if asked.
pub fn compare(options: &CompareOptions) -> Result<Vec<CompareRow>, BenchError> {
    if let Some(events) = &options.generate {
        generator::write_ndjson(events, &options.dir)?;
    }
    let mut counts = Vec::new();
    for kind in Kind::ALL {
        counts.push((kind, count_lines(&kind.file(&options.dir))?));
    }
    let mut rows = Vec::new();
    for query in &options.queries {
        let events = query
            .inputs
            .iter()
            .map(|k| counts.iter().find(|(c, _)| c == k).map_or(0, |(_, n)| *n))
            .sum();
        let eddy = run_eddy(query, &options.dir);
        tracing::info!(query = query.name, ?eddy, "eddy done");
        let peers = options
            .peers
            .iter()
            .map(|&p| (p, run_peer(p, query, events, options)))
            .collect();
        rows.push(CompareRow {
            query: query.name.to_string(),
            events,
            eddy,
            peers,
        });
    }
    Ok(rows)
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |b| {
        format!("{:.0}", b as f64 / (1 << 20) as f64)
    })
}

/// The comparison as a Markdown table, with the reasons for unsupported or failed runs
/// listed below it.
pub fn format_table(rows: &[CompareRow], cores: usize) -> String {
    let mut s = String::new();
    let peers: Vec<Peer> = rows
        .first()
        .map(|r| r.peers.iter().map(|(p, _)| *p).collect())
        .unwrap_or_default();
    let _ = write!(s, "| query | events | eddy ev/s/core | eddy peak RSS MiB |");
    for p in &peers {
        let _ = write!(
            s,
            " {0} ev/s/core | eddy/{0} | {0} peak RSS MiB |",
            p.name()
        );
    }
    let _ = write!(s, "\n|---|---:|---:|---:|");
    for _ in &peers {
        s.push_str("---:|---:|---:|");
    }
    s.push('\n');
    let mut notes = Vec::new();
    for row in rows {
        let _ = write!(
            s,
            "| {} | {} | {} | {} |",
            row.query,
            row.events,
            row.eddy.cell(),
            row.eddy.rss_mib()
        );
        for (_, o) in &row.peers {
            let ratio = match (row.eddy.rate(), o.rate()) {
                (Some(e), Some(x)) if x > 0.0 => format!("{:.2}", e / x),
                _ => "-".into(),
            };
            let _ = write!(s, " {} | {} | {} |", o.cell(), ratio, o.rss_mib());
        }
        s.push('\n');
        for (who, o) in
            std::iter::once(("eddy", &row.eddy)).chain(row.peers.iter().map(|(p, o)| (p.name(), o)))
        {
            if let Outcome::Unsupported(m) | Outcome::Failed(m) = o {
                notes.push(format!("- {} {}: {}", row.query, who, m.replace('\n', " ")));
            }
        }
    }
    let _ = writeln!(
        s,
        "\nCores per engine: {cores} (eddy's job runs on one thread). Peer rates leave out \
         job start-up, measured by each runner on empty input just before."
    );
    for n in notes {
        let _ = writeln!(s, "{n}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_gives_ratios_and_the_reason_a_query_did_not_run() {
        let rows = vec![
            CompareRow {
                query: "q0".into(),
                events: 1000,
                eddy: Outcome::Measured {
                    per_core: 300.0,
                    peak_rss_bytes: Some(64 << 20),
                },
                peers: vec![(
                    Peer::Flink,
                    Outcome::Measured {
                        per_core: 100.0,
                        peak_rss_bytes: Some(128 << 20),
                    },
                )],
            },
            CompareRow {
                query: "q3".into(),
                events: 40,
                eddy: Outcome::Unsupported("line 12, column 1: JOIN is not supported yet".into()),
                peers: vec![(Peer::Flink, Outcome::Failed("timed out".into()))],
            },
        ];
        let table = format_table(&rows, 1);
        assert!(
            table.contains("| q0 | 1000 | 300 | 64 | 100 | 3.00 |"),
            "{table}"
        );
        assert!(
            table.contains("| q3 | 40 | unsupported | - | failed | - |"),
            "{table}"
        );
        assert!(table.contains("- q3 eddy: line 12, column 1: JOIN is not supported yet"));
        assert!(table.contains("- q3 flink: timed out"));
        assert!(table.contains("Cores per engine: 1"));
    }
}
