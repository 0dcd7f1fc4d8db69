//! The command line of the harness: argument definitions and their dispatch, kept here so
//! that `eddy-nexmark` and `eddy bench nexmark` accept the same arguments.

use crate::compare::{CompareOptions, Peer, compare, format_table};
use crate::generator::{GenOptions, write_ndjson};
use crate::memory::{state_bytes_per_key_in, state_query};
use crate::queries::select;
use crate::run::{Feeds, engine_table, run_files};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// The Nexmark commands, shared by `eddy-nexmark` and `eddy bench nexmark`.
#[derive(Debug, Subcommand)]
pub enum NexmarkCommand {
    /// Write person/, auction/ and bid/ NDJSON files.
    Gen(GenArgs),
    /// Run queries through eddy on generated files (JSON decoding included).
    Run {
        /// The NDJSON directory.
        #[arg(long)]
        dir: PathBuf,
        /// Comma-separated query names, or `all`.
        #[arg(long, default_value = "all")]
        queries: String,
    },
    /// Engine-only numbers: events generated in memory, as records and as JSON.
    Engine {
        /// Events of all kinds.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Comma-separated query names, or `all`.
        #[arg(long, default_value = "all")]
        queries: String,
        /// Which feeds to time: `records`, `json` or `both`; one alone makes a profile
        /// show only that path.
        #[arg(long, value_enum, default_value_t = Feeds::Both)]
        feed: Feeds,
    },
    /// Bytes of state per group key for COUNT/SUM/AVG over many keys.
    Memory {
        /// Distinct keys.
        #[arg(long, default_value_t = 1_000_000)]
        keys: u64,
        /// The window grouped by, e.g. `HoppingWindow(hour, 2, 1)`.
        #[arg(long, default_value = crate::memory::STATE_WINDOW)]
        window: String,
    },
    /// eddy, Flink and Spark side by side on the same files and cores.
    Compare(CompareArgs),
}

/// Runs one Nexmark command, printing its results to stdout.
pub fn run(command: NexmarkCommand) -> Result<()> {
    match command {
        NexmarkCommand::Gen(args) => generate(args)?,
        NexmarkCommand::Run { dir, queries } => {
            for q in select(&queries)? {
                match run_files(q, &dir, false) {
                    Ok(r) => println!(
                        "{}: {} events in {:.3} s = {:.0} events/s ({:.0} per CPU second), {} rows, {} rejected, peak RSS {} MiB",
                        q.name,
                        r.events,
                        r.elapsed.as_secs_f64(),
                        r.events_per_second(),
                        r.events_per_cpu_second().unwrap_or(f64::NAN),
                        r.output_rows,
                        r.rejected,
                        r.peak_rss_bytes.map_or(0, |b| b >> 20)
                    ),
                    // A query the engine rejects is reported, and the others still run.
                    Err(e) => println!("{}: {e}", q.name),
                }
            }
        }
        NexmarkCommand::Engine {
            events,
            queries,
            feed,
        } => {
            let options = GenOptions {
                events,
                ..GenOptions::default()
            };
            print!("{}", engine_table(&select(&queries)?, &options, feed));
        }
        NexmarkCommand::Memory { keys, window } => {
            let m = state_bytes_per_key_in(keys, &window)?;
            println!(
                "{} keys: state grew {} bytes = {:.1} bytes per key\nquery: {}",
                m.keys,
                m.bytes,
                m.bytes_per_key(),
                state_query(&window)
            );
        }
        NexmarkCommand::Compare(args) => compare_engines(args, true)?,
    }
    Ok(())
}

/// Where and how many Nexmark events to write.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Events of all kinds.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Events per second of event time.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
}

/// What to compare, on which files, with which peers.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The NDJSON directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Generate this many events into --dir first.
    #[arg(long)]
    pub events: Option<u64>,
    /// Comma-separated query names, or `all`.
    #[arg(long, default_value = "all")]
    pub queries: String,
    /// Comma-separated peers: flink, spark; `none` runs eddy only.
    #[arg(long, default_value = "flink,spark")]
    pub peers: String,
    /// Cores per engine.
    #[arg(long, default_value_t = 1)]
    pub cores: usize,
    /// Directory of flink_run.py and spark_run.py.
    #[arg(long)]
    pub scripts: Option<PathBuf>,
    /// Python interpreter with pyflink and pyspark.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Seconds before a peer run is stopped.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
}

/// Writes `person/`, `auction/` and `bid/` NDJSON files and says how many of each.
pub fn generate(args: GenArgs) -> Result<()> {
    let GenArgs { events, out, rate } = args;
    let options = GenOptions {
        events,
        events_per_second: rate,
        ..GenOptions::default()
    };
    let s = write_ndjson(&options, &out)?;
    println!(
        "wrote {} persons, {} auctions, {} bids ({} bytes) to {}",
        s.persons,
        s.auctions,
        s.bids,
        s.bytes,
        out.display()
    );
    Ok(())
}

/// Runs the chosen queries through eddy and, when `with_peers`, through Flink and Spark
/// on the same files, and prints events/s per core with the ratios.
pub fn compare_engines(args: CompareArgs, with_peers: bool) -> Result<()> {
    let CompareArgs {
        dir,
        events,
        queries,
        peers,
        cores,
        scripts,
        python,
        timeout,
    } = args;
    let mut options = CompareOptions::new(dir);
    options.generate = events.map(|events| GenOptions {
        events,
        ..GenOptions::default()
    });
    options.queries = select(&queries)?;
    options.peers = if !with_peers || peers.trim().eq_ignore_ascii_case("none") {
        Vec::new()
    } else {
        peers
            .split(',')
            .map(|p| Peer::from_name(p).with_context(|| format!("unknown peer '{p}'")))
            .collect::<Result<_>>()?
    };
    options.cores = cores;
    if let Some(s) = scripts {
        options.scripts = s;
    }
    options.python = python;
    options.timeout = Duration::from_secs(timeout);
    let rows = compare(&options)?;
    print!("{}", format_table(&rows, cores));
    Ok(())
}
