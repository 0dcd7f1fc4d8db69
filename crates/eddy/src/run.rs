//! `eddy run`: one query over files, to completion, with no server (see `docs/run.md`).
//!
//! Files are read whole and split into events; the events of all inputs are merged by
//! their `EventEnqueuedUtcTime` (file order where it is missing), pushed into the engine
//! with the arrival time taken from the payload, and the job is finished so every window
//! closes. Same files, same query, same bytes out.

use crate::{Exit, usage_error};
use anyhow::Context;
use clap::{Args, ValueEnum};
use eddy_connectors::files::NdjsonSink;
use eddy_connectors::ndjson::{self, LineEvent};
use eddy_engine::{Arrival, Job, JobOptions, OutOfOrderAction, OutputRow};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Options of `eddy run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The query file (Azure Stream Analytics SQL).
    query: PathBuf,
    /// A query input and the file that feeds it (a JSON array or NDJSON); once per input.
    #[arg(long = "input", value_name = "ALIAS=FILE", required = true, value_parser = parse_input)]
    inputs: Vec<(String, PathBuf)>,
    /// A reference input (joined without a time bound) and its file: a JSON array, NDJSON,
    /// or CSV with a header row (`.csv`); once per reference input.
    #[arg(long = "reference", value_name = "ALIAS=FILE", value_parser = parse_input)]
    references: Vec<(String, PathBuf)>,
    /// Write each output to DIR/<output>.json; needed when the query has several outputs.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Seconds an event's time may lag its arrival time before the action applies; -1 = unlimited.
    #[arg(long, default_value_t = 5.0, allow_negative_numbers = true)]
    late_arrival_tolerance_s: f64,
    /// Seconds within which out-of-order events are re-sorted.
    #[arg(long, default_value_t = 0.0)]
    out_of_order_tolerance_s: f64,
    /// What happens to events outside the tolerances.
    #[arg(long, value_enum, default_value_t = Action::Adjust)]
    out_of_order_action: Action,
}

/// ASA's event-ordering action.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Action {
    /// Move the event's timestamp to the bound.
    Adjust,
    /// Discard the event.
    Drop,
}

/// ASA's largest late-arrival tolerance, about 21 days.
const LATE_TOLERANCE_S_MAX: f64 = 21.0 * 24.0 * 3600.0;
/// Out-of-order events are buffered for this long at most.
const OUT_OF_ORDER_TOLERANCE_S_MAX: f64 = 24.0 * 3600.0;
/// Output is drained this often, so memory holds no more than this many events' rows.
const DRAIN_EVERY_EVENTS: usize = 4096;

fn parse_input(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((alias, file)) if !alias.is_empty() && !file.is_empty() => {
            Ok((alias.to_string(), file.into()))
        }
        _ => Err(format!("expected ALIAS=FILE, got '{text}'")),
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let options = job_options(&args)?;
    let text = std::fs::read_to_string(&args.query)
        .with_context(|| format!("reading {}", args.query.display()))?;
    let mut job = match Job::compile(&text, options) {
        Ok(job) => job,
        Err(err) => match err.render(&text) {
            Some(rendered) => {
                eprint!("{rendered}");
                return Err(Exit(2).into());
            }
            None => return Err(usage_error(err)),
        },
    };
    load_references(&mut job, &args.references)?;
    let mut sink = Sink::open(&job, args.output_dir.as_deref())?;
    let bodies = read_inputs(&mut job, &args.inputs)?;
    let mut feeds = Vec::with_capacity(bodies.len());
    for (input, path, body) in &bodies {
        let events = ndjson::split_events_with_lines(body).map_err(|err| {
            eprintln!("error: {}:{}: {}", path.display(), err.line, err.message);
            Exit(1)
        })?;
        feeds.push(Feed {
            input: *input,
            path,
            events,
        });
    }
    let mut rows = Vec::new();
    for (count, (feed, offset)) in merge(&feeds).into_iter().enumerate() {
        let event = feed.events[offset];
        if let Err(err) = job.push_json(
            feed.input,
            0,
            offset as u64,
            Arrival::FromPayload,
            event.json,
        ) {
            eprintln!(
                "warning: {}:{}: event dropped: {err}",
                feed.path.display(),
                event.line
            );
        }
        if (count + 1) % DRAIN_EVERY_EVENTS == 0 {
            job.drain_output(&mut rows);
            sink.write(&mut rows)?;
        }
    }
    job.finish();
    job.drain_output(&mut rows);
    sink.write(&mut rows)?;
    sink.flush()?;
    let metrics = job.metrics();
    if let Some(line) = summary(&metrics) {
        eprintln!("{line}");
    }
    if let Ok(metrics) = serde_json::to_string(&metrics) {
        tracing::info!(%metrics, "run finished");
    }
    Ok(())
}

/// One stderr line naming, per input, the events a time policy or a conversion touched,
/// and the rows lost to runtime errors; `None` when there were none.
fn summary(m: &eddy_engine::JobMetrics) -> Option<String> {
    if !m.has_policy_events() {
        return None;
    }
    let mut parts = Vec::new();
    for i in &m.inputs {
        let counts: Vec<String> = [
            (i.late_events, "late"),
            (i.early_events, "early"),
            (i.out_of_order_events, "out of order"),
            (i.adjusted_events, "adjusted"),
            (i.dropped_events, "dropped"),
            (i.conversion_errors, "conversion errors"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if !counts.is_empty() {
            parts.push(format!("input '{}': {}", i.name, counts.join(", ")));
        }
    }
    let conversions: u64 = m.inputs.iter().map(|i| i.conversion_errors).sum();
    let runtime = m.errors.saturating_sub(conversions);
    if runtime > 0 {
        parts.push(format!("{runtime} runtime errors"));
    }
    Some(format!("stats: {}", parts.join("; ")))
}

fn job_options(args: &RunArgs) -> anyhow::Result<JobOptions> {
    let late = args.late_arrival_tolerance_s;
    let late_arrival_tolerance = if late == -1.0 {
        None
    } else if (0.0..=LATE_TOLERANCE_S_MAX).contains(&late) {
        Some(seconds_to_ticks(late))
    } else {
        return Err(usage_error(format!(
            "--late-arrival-tolerance-s must be -1 (unlimited) or between 0 and {LATE_TOLERANCE_S_MAX}, got {late}"
        )));
    };
    let out_of_order = args.out_of_order_tolerance_s;
    if !(0.0..=OUT_OF_ORDER_TOLERANCE_S_MAX).contains(&out_of_order) {
        return Err(usage_error(format!(
            "--out-of-order-tolerance-s must be between 0 and {OUT_OF_ORDER_TOLERANCE_S_MAX}, got {out_of_order}"
        )));
    }
    Ok(JobOptions {
        reference_inputs: args.references.iter().map(|(a, _)| a.clone()).collect(),
        late_arrival_tolerance,
        out_of_order_tolerance: seconds_to_ticks(out_of_order),
        out_of_order_action: match args.out_of_order_action {
            Action::Adjust => OutOfOrderAction::Adjust,
            Action::Drop => OutOfOrderAction::Drop,
        },
    })
}

fn seconds_to_ticks(seconds: f64) -> i64 {
    (seconds * eddy_engine::time::TICKS_PER_SECOND as f64).round() as i64
}

/// Loads each `--reference` file into the job, checking that every reference input the
/// query joins gets exactly one.
fn load_references(job: &mut Job, references: &[(String, PathBuf)]) -> anyhow::Result<()> {
    let mut loaded = Vec::new();
    for (alias, path) in references {
        let Some(index) = job.reference_index(alias) else {
            let known = if job.references().is_empty() {
                "it joins none".to_string()
            } else {
                format!("it joins {}", job.references().join(", "))
            };
            return Err(usage_error(format!(
                "--reference {alias}: the query joins no reference input '{alias}' ({known})"
            )));
        };
        if loaded.contains(&index) {
            return Err(usage_error(format!("reference '{alias}' is given twice")));
        }
        let rows = eddy_connectors::reference::read_reference(path).map_err(|err| {
            eprintln!("error: {err}");
            Exit(1)
        })?;
        job.set_reference_json(index, rows.iter().map(Vec::as_slice))
            .map_err(|err| {
                eprintln!("error: {}: {err}", path.display());
                Exit(1)
            })?;
        loaded.push(index);
    }
    Ok(())
}

/// Reads each `--input` file whole, checking that every query input gets exactly one.
fn read_inputs<'a>(
    job: &mut Job,
    inputs: &'a [(String, PathBuf)],
) -> anyhow::Result<Vec<(usize, &'a Path, Vec<u8>)>> {
    let mut bodies: Vec<(usize, &Path, Vec<u8>)> = Vec::with_capacity(inputs.len());
    for (alias, path) in inputs {
        let Some(input) = job.input_index(alias) else {
            return Err(usage_error(format!(
                "the query has no input '{alias}' (its inputs: {})",
                job.inputs().join(", ")
            )));
        };
        if bodies.iter().any(|(seen, _, _)| *seen == input) {
            return Err(usage_error(format!("input '{alias}' is given twice")));
        }
        let body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        bodies.push((input, path, body));
    }
    for (index, name) in job.inputs().iter().enumerate() {
        if !bodies.iter().any(|(input, _, _)| *input == index) {
            return Err(usage_error(format!(
                "no --input {name}=FILE for the query's input '{name}'"
            )));
        }
    }
    for (input, _, _) in &bodies {
        job.declare_partitions(*input, 1);
    }
    Ok(bodies)
}

/// The events of one input file.
struct Feed<'a> {
    input: usize,
    path: &'a Path,
    events: Vec<LineEvent<'a>>,
}

/// The order events are pushed in: each file in its own order, merged across inputs by
/// `EventEnqueuedUtcTime` (an event without one takes the time of the event before it in
/// its file); ties go to the input named first on the command line.
fn merge<'f, 'a>(feeds: &'f [Feed<'a>]) -> Vec<(&'f Feed<'a>, usize)> {
    let keys: Vec<Vec<i64>> = feeds
        .iter()
        .map(|feed| {
            let mut arrival = i64::MIN;
            feed.events
                .iter()
                .map(|event| {
                    arrival = enqueued_time(event.json).unwrap_or(arrival);
                    arrival
                })
                .collect()
        })
        .collect();
    let mut next = vec![0; feeds.len()];
    let mut order = Vec::with_capacity(keys.iter().map(Vec::len).sum());
    while let Some(rank) = (0..feeds.len())
        .filter(|&rank| next[rank] < keys[rank].len())
        .min_by_key(|&rank| (keys[rank][next[rank]], rank))
    {
        order.push((&feeds[rank], next[rank]));
        next[rank] += 1;
    }
    order
}

fn enqueued_time(json: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Enqueued<'a> {
        #[serde(rename = "EventEnqueuedUtcTime", borrow)]
        time: Option<std::borrow::Cow<'a, str>>,
    }
    let parsed: Enqueued = serde_json::from_slice(json).ok()?;
    eddy_engine::time::parse_datetime(&parsed.time?)
}

/// Where output rows go: stdout for a single output, one file per output otherwise.
enum Sink {
    Stdout(std::io::BufWriter<std::io::Stdout>),
    Files(Vec<NdjsonSink>),
}

impl Sink {
    fn open(job: &Job, output_dir: Option<&Path>) -> anyhow::Result<Sink> {
        let outputs = job.outputs();
        let Some(dir) = output_dir else {
            if outputs.len() != 1 {
                return Err(usage_error(format!(
                    "the query has {} outputs ({}): pass --output-dir DIR to get one file per output",
                    outputs.len(),
                    outputs.join(", ")
                )));
            }
            return Ok(Sink::Stdout(std::io::BufWriter::new(std::io::stdout())));
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut files = Vec::with_capacity(outputs.len());
        for name in outputs {
            if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
                return Err(usage_error(format!(
                    "output '{name}' cannot be a file name"
                )));
            }
            files.push(NdjsonSink::truncate(&dir.join(format!("{name}.json")))?);
        }
        Ok(Sink::Files(files))
    }

    fn write(&mut self, rows: &mut Vec<OutputRow>) -> anyhow::Result<()> {
        let mut line = Vec::new();
        for out in rows.drain(..) {
            line.clear();
            out.row.write_json(&mut line);
            match self {
                Sink::Stdout(stdout) => {
                    stdout.write_all(&line)?;
                    stdout.write_all(b"\n")?;
                }
                Sink::Files(files) => match files.get_mut(out.output) {
                    Some(file) => file.write_line(&line)?,
                    None => anyhow::bail!(
                        "the engine produced a row for unknown output #{}",
                        out.output
                    ),
                },
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Sink::Stdout(stdout) => stdout.flush()?,
            Sink::Files(files) => files.iter_mut().try_for_each(NdjsonSink::flush)?,
        }
        Ok(())
    }
}
