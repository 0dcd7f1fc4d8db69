//! The `eddy` command line: parses arguments, builds each layer's configuration, wires
//! the layers together and maps failures to exit codes.
//!
//! - `server` ([`serve`]): the long-running server until SIGINT/SIGTERM.
//! - `demo` ([`demo`]): a server fed by the road-traffic generator, with a congestion job.
//! - `run` ([`run`]): one query over files, to completion, with no server.
//! - `query` ([`query`]): SQL against a running server or a data directory.
//! - `bench` ([`bench`]): events per second of the engine alone and of the whole pipeline.
//! - `topics`, `produce`, `consume` ([`topics`]): Kafka-style operations on a server's streams.
//!
//! Exit codes: 0 success, 1 a runtime failure (I/O, bad input file, server error),
//! 2 a usage or query error (bad arguments, a query that does not compile).

mod bench;
mod demo;
mod latency;
mod query;
mod run;
mod serve;
mod table;
mod topics;

use clap::{Parser, Subcommand};
use std::fmt;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Real-time stream processing in one binary: ingestion, ASA SQL jobs, tables, dashboard.
#[derive(Debug, Parser)]
#[command(name = "eddy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: HTTP API, dashboard, jobs, store.
    Server(serve::ServerArgs),
    /// Start a server fed by a road-traffic generator, with a congestion job and the dashboard.
    Demo(demo::DemoArgs),
    /// Run a query over JSON/NDJSON files to completion and print its output.
    Run(run::RunArgs),
    /// Query the tables of a running server or of a data directory.
    Query(query::QueryArgs),
    /// Measure events per second of the engine and of the whole pipeline.
    Bench(bench::BenchArgs),
    /// List, create, describe (with consumer-group lag) or delete a server's topics.
    Topics(topics::TopicsArgs),
    /// Append NDJSON events from a file or standard input to a topic.
    Produce(topics::ProduceArgs),
    /// Print a topic's events, optionally as a consumer group that commits its offsets.
    Consume(topics::ConsumeArgs),
}

/// A failure whose explanation was already printed; carries the exit code only.
#[derive(Debug)]
struct Exit(u8);

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// A usage error: printed as `error: ...`, exit code 2.
fn usage_error(message: impl fmt::Display) -> anyhow::Error {
    eprintln!("error: {message}");
    Exit(2).into()
}

/// The process allocator: glibc's malloc spent a fifth of the latency benchmark's CPU time
/// in `_int_malloc`/`malloc_consolidate` (BENCHMARKS.md, "Latency").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Run(_)
            | Command::Query(_)
            | Command::Bench(_)
            | Command::Topics(_)
            | Command::Produce(_)
            | Command::Consume(_)
    );
    let default_level = if quiet { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Server(args) => serve::server(args),
        Command::Demo(args) => demo::demo(args),
        Command::Run(args) => run::run(args),
        Command::Query(args) => query::query(args),
        Command::Bench(args) => bench::bench(args),
        Command::Topics(args) => topics::topics(args),
        Command::Produce(args) => topics::produce(args),
        Command::Consume(args) => topics::consume(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => match err.downcast_ref::<Exit>() {
            Some(Exit(code)) => ExitCode::from(*code),
            None => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The tokio runtime shared by the commands that need one.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
