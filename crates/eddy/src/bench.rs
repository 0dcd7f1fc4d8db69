//! `eddy bench`: events per second of the engine alone, and of the whole pipeline (HTTP
//! ingest → log → job → store) on an in-process server.

use crate::query::{agent, post_query};
use crate::table::{Format, ResultSet};
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use eddy_server::{JobSpec, Server, ServerConfig};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Options of `eddy bench`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// Which benchmark to run.
    #[arg(value_enum, default_value_t = Which::All)]
    which: Which,
    /// Events per benchmark.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Events per second the latency benchmark produces.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(100..))]
    rate: u64,
    /// Seconds the latency benchmark produces for.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Latency benchmark: write one line per producer batch (send time, POST time, slowest
    /// filter row) to this file, to tell where a stall was: ingestion or after it.
    #[arg(long, value_name = "FILE")]
    timeline: Option<std::path::PathBuf>,
    /// Workload benchmarks (Nexmark).
    #[command(subcommand)]
    workload: Option<Workload>,
}

/// The standard workloads, run by the same harness as `eddy-nexmark`.
#[derive(Debug, Subcommand)]
enum Workload {
    /// Write a workload's events as NDJSON files (`eddy bench gen nexmark --events N --out DIR`)
    /// or into a running server's streams (`--server URL`).
    Gen {
        #[command(subcommand)]
        workload: GenWorkload,
    },
    /// Nexmark queries through eddy on NDJSON files; with `--compare`, beside Flink and Spark.
    Nexmark {
        /// Also run Apache Flink SQL and Spark Structured Streaming on the same files and cores.
        #[arg(long)]
        compare: bool,
        #[command(flatten)]
        args: eddy_bench::cli::CompareArgs,
    },
}

#[derive(Debug, Subcommand)]
enum GenWorkload {
    /// Person, Auction and Bid events from the `nexmark` generator.
    Nexmark(GenNexmarkArgs),
}

/// Where `eddy bench gen nexmark` puts the events: NDJSON files, a server's streams, or both.
#[derive(Debug, Args)]
struct GenNexmarkArgs {
    /// Events of all kinds.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Write `person/`, `auction/` and `bid/` NDJSON files into this directory.
    #[arg(long, required_unless_present = "server")]
    out: Option<std::path::PathBuf>,
    /// Post the events into the streams `person`, `auction` and `bid` of this running server
    /// (the inputs of `bench/nexmark/q*.sql`).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Bearer token of a server started with --auth-token.
    #[arg(long, requires = "server")]
    auth_token: Option<String>,
    /// Events per second of event time.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
}

/// Events per POST when generating into a server's streams.
const GEN_POST_EVENTS: usize = 10_000;

/// Writes the Nexmark events to files and/or posts them to a server; the generator is
/// deterministic, so both get the same events.
fn gen_nexmark(args: GenNexmarkArgs) -> anyhow::Result<()> {
    if let Some(out) = args.out {
        eddy_bench::cli::generate(eddy_bench::cli::GenArgs {
            events: args.events,
            out,
            rate: args.rate,
        })?;
    }
    let Some(server) = args.server else {
        return Ok(());
    };
    let client = crate::topics::Client::to(&server, args.auth_token);
    let options = eddy_bench::GenOptions {
        events: args.events,
        events_per_second: args.rate,
        ..eddy_bench::GenOptions::default()
    };
    let kinds = eddy_bench::generator::Kind::ALL;
    // Per stream: its NDJSON body and how many events it holds.
    let mut pending: Vec<(Vec<u8>, usize)> = kinds.iter().map(|_| (Vec::new(), 0)).collect();
    let progress = ProgressBar::new(args.events).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events posted ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let post = |kind: eddy_bench::generator::Kind, body: &mut Vec<u8>, count: &mut usize| {
        if *count == 0 {
            return Ok(());
        }
        let path = format!("/api/streams/{}/events", kind.name());
        let answer = client.call("POST", &path, Some(std::mem::take(body)))?;
        let accepted = answer["accepted"].as_u64().unwrap_or(0);
        anyhow::ensure!(
            accepted == *count as u64,
            "{server} accepted {accepted} of {count} {} events",
            kind.name()
        );
        progress.inc(accepted);
        *count = 0;
        anyhow::Ok(())
    };
    let summary = eddy_bench::generator::generate(&options, |kind, json| {
        let i = kinds.iter().position(|&k| k == kind).unwrap_or(0);
        let (body, count) = &mut pending[i];
        body.extend_from_slice(json);
        body.push(b'\n');
        *count += 1;
        if *count >= GEN_POST_EVENTS {
            post(kind, body, count)?;
        }
        anyhow::Ok(())
    })?;
    for (kind, (body, count)) in kinds.iter().zip(pending.iter_mut()) {
        post(*kind, body, count)?;
    }
    progress.finish_and_clear();
    println!(
        "posted {} persons, {} auctions, {} bids to {server}",
        summary.persons, summary.auctions, summary.bids
    );
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    /// A tumbling-window count in the engine, no I/O.
    Engine,
    /// NDJSON over HTTP into a server, through a job, into a table.
    Pipeline,
    /// Both.
    All,
    /// Tumbling, hopping (60 windows per event) and sliding windows over 100 K keys in
    /// the engine, on the same events.
    Windows,
    /// Event-to-output latency (p50, p99, max) at a fixed rate over HTTP: a filter and a
    /// tumbling window.
    Latency,
}

const KEYS: u64 = 100;
const BATCH_EVENTS: u64 = 5000;
/// Events are 1 ms apart from here (2023-11-14T22:13:20Z), so each 1 s window holds 1000.
const BASE_MS: i64 = 1_700_000_000_000;
const BENCH_QUERY: &str = "SELECT k, COUNT(*) AS n, System.Timestamp() AS t INTO counts FROM bench \
                           TIMESTAMP BY ts GROUP BY k, TumblingWindow(second, 1)";

pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    match args.workload {
        Some(Workload::Gen {
            workload: GenWorkload::Nexmark(options),
        }) => return gen_nexmark(options),
        Some(Workload::Nexmark { compare, args }) => {
            return eddy_bench::cli::compare_engines(args, compare);
        }
        None => {}
    }
    if args.which == Which::Windows {
        return windows(args.events);
    }
    if args.which == Which::Latency {
        return crate::latency::latency(args.rate, args.seconds, args.timeline.as_deref());
    }
    let mut rows = Vec::new();
    if args.which != Which::Pipeline {
        let events = usize::try_from(args.events)?;
        let started = Instant::now();
        let per_second = eddy_engine::bench::bench_tumbling_count(events, KEYS as usize);
        rows.push(row("engine", args.events, started.elapsed(), per_second));
    }
    if args.which != Which::Engine {
        let (elapsed, per_second) = pipeline(args.events)?;
        rows.push(row("pipeline", args.events, elapsed, per_second));
    }
    let columns = ["benchmark", "events", "seconds", "events/s"]
        .map(String::from)
        .to_vec();
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(ResultSet { columns, rows }.render(Format::Table).as_bytes())?;
    Ok(())
}

/// `eddy bench windows`: the window kinds' figures and their ratios to tumbling.
fn windows(events: u64) -> anyhow::Result<()> {
    const WINDOW_KEYS: usize = 100_000;
    const WINDOW_EVENTS_PER_SECOND: i64 = 100_000;
    let f = eddy_engine::bench::bench_window_kinds(
        usize::try_from(events)?,
        WINDOW_KEYS,
        WINDOW_EVENTS_PER_SECOND,
    );
    let tumbling = f.tumbling.events_per_second;
    let rows = [
        ("TumblingWindow(second, 60)", f.tumbling),
        ("HoppingWindow(second, 60, 1)", f.hopping),
        ("SlidingWindow(second, 60)", f.sliding),
    ]
    .into_iter()
    .map(|(name, w)| {
        let ratio = (w.events_per_second / tumbling * 100.0).round() / 100.0;
        vec![
            json!(name),
            json!(events),
            json!(w.rows),
            json!(w.events_per_second.round() as u64),
            json!(ratio),
        ]
    })
    .collect();
    let columns = ["window", "events", "rows", "events/s", "vs tumbling"]
        .map(String::from)
        .to_vec();
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(ResultSet { columns, rows }.render(Format::Table).as_bytes())?;
    Ok(())
}

fn row(name: &str, events: u64, elapsed: Duration, per_second: f64) -> Vec<serde_json::Value> {
    let seconds = (elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
    vec![
        json!(name),
        json!(events),
        json!(seconds),
        json!(per_second.round() as u64),
    ]
}

/// Runs the pipeline benchmark on a fresh in-process server; returns the time from the
/// first post to the last count landing in the table, and events per second.
fn pipeline(events: u64) -> anyhow::Result<(Duration, f64)> {
    with_server(|server| measure(server, events))
}

/// Runs `work` against a fresh in-process server on a temporary data directory with one
/// partition per stream (one watermark, moved by every batch), then shuts it down.
pub(crate) fn with_server<T>(work: impl FnOnce(&Server) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let dir = tempfile::Builder::new().prefix("eddy-bench-").tempdir()?;
    let runtime = crate::runtime()?;
    // The server's tasks run on the runtime's workers; this thread is the HTTP client.
    let _context = runtime.enter();
    let config = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        http: SocketAddr::from(([127, 0, 0, 1], 0)),
        default_partitions: 1,
        ..ServerConfig::default()
    };
    let server = runtime
        .block_on(Server::start(config))
        .context("starting the server")?;
    let result = work(&server);
    runtime
        .block_on(server.shutdown())
        .context("shutting down")?;
    result
}

fn measure(server: &Server, events: u64) -> anyhow::Result<(Duration, f64)> {
    server
        .create_job(JobSpec {
            name: "bench".into(),
            query: BENCH_QUERY.into(),
            late_arrival_tolerance_s: -1.0,
            out_of_order_tolerance_s: 0.0,
            out_of_order_action: Default::default(),
            outputs: Default::default(),
            references: Default::default(),
        })
        .context("creating the bench job")?;
    let base = format!("http://{}", server.http_addr());
    let url = format!("{base}/api/streams/bench/events");
    let agent = agent();
    let progress = ProgressBar::new(events).with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} events posted ({per_sec}, {elapsed})",
    )?);
    let started = Instant::now();
    let mut body = Vec::new();
    for first in (0..events).step_by(BATCH_EVENTS as usize) {
        body.clear();
        let last = (first + BATCH_EVENTS).min(events);
        for i in first..last {
            writeln!(
                body,
                "{{\"k\":\"k{}\",\"ts\":\"{}\"}}",
                i % KEYS,
                timestamp(BASE_MS + i as i64)
            )?;
        }
        post(&agent, &url, &body)?;
        progress.inc(last - first);
    }
    // Mid-window, a day later: its own window stays open and out of the count.
    let closing = format!(
        "{{\"k\":\"end\",\"ts\":\"{}\"}}",
        timestamp(BASE_MS + events as i64 + 86_400_500)
    );
    post(&agent, &url, closing.as_bytes())?;
    progress.finish_and_clear();
    let deadline = started + Duration::from_secs(120) + Duration::from_millis(events);
    let mut total: Option<f64> = None;
    loop {
        if let Ok(result) = post_query(&agent, &base, None, "SELECT SUM(n) AS total FROM counts")? {
            total = result
                .rows
                .first()
                .and_then(|row| row.first())
                .and_then(serde_json::Value::as_f64);
            if total == Some(events as f64) {
                break;
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!("the job counted {total:?} of {events} events in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    Ok((elapsed, events as f64 / elapsed.as_secs_f64()))
}

fn timestamp(ms: i64) -> String {
    eddy_engine::time::format_datetime(ms * (eddy_engine::time::TICKS_PER_SECOND / 1000))
}

pub(crate) fn post(agent: &ureq::Agent, url: &str, body: &[u8]) -> anyhow::Result<()> {
    let mut response = agent
        .post(url)
        .header("content-type", "application/x-ndjson")
        .send(body)
        .with_context(|| format!("posting to {url}"))?;
    if !response.status().is_success() {
        let answer = response.body_mut().read_to_string().unwrap_or_default();
        anyhow::bail!("{url} answered {}: {answer}", response.status());
    }
    Ok(())
}
