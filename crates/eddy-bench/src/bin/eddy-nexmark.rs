//! Standalone Nexmark runner: generate events, run eddy on them (from files or memory),
//! measure state memory, and compare with Flink and Spark.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use eddy_bench::compare::{CompareOptions, Peer, compare, format_table};
use eddy_bench::generator::{GenOptions, write_ndjson};
use eddy_bench::memory::state_bytes_per_key;
use eddy_bench::queries::select;
use eddy_bench::run::{engine_table, run_files};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "eddy-nexmark", about = "Nexmark benchmark for eddy")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write person/, auction/ and bid/ NDJSON files.
    Gen {
        /// Events of all kinds.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Events per second of event time.
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
    },
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
    },
    /// Bytes of state per group key for COUNT/SUM/AVG over many keys.
    Memory {
        /// Distinct keys.
        #[arg(long, default_value_t = 1_000_000)]
        keys: u64,
    },
    /// eddy, Flink and Spark side by side on the same files and cores.
    Compare {
        /// The NDJSON directory.
        #[arg(long)]
        dir: PathBuf,
        /// Generate this many events into --dir first.
        #[arg(long)]
        events: Option<u64>,
        /// Comma-separated query names, or `all`.
        #[arg(long, default_value = "all")]
        queries: String,
        /// Comma-separated peers: flink, spark; `none` runs eddy only.
        #[arg(long, default_value = "flink,spark")]
        peers: String,
        /// Cores per engine.
        #[arg(long, default_value_t = 1)]
        cores: usize,
        /// Directory of flink_run.py and spark_run.py.
        #[arg(long)]
        scripts: Option<PathBuf>,
        /// Python interpreter with pyflink and pyspark.
        #[arg(long, default_value = "python3")]
        python: String,
        /// Seconds before a peer run is stopped.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
    },
}

fn main() -> Result<()> {
    tracing_subscriber_init();
    match Cli::parse().command {
        Cmd::Gen { events, out, rate } => {
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
        }
        Cmd::Run { dir, queries } => {
            for q in select(&queries)? {
                match run_files(q, &dir, false) {
                    Ok(r) => println!(
                        "{}: {} events in {:.3} s = {:.0} events/s, {} rows, {} rejected, peak RSS {} MiB",
                        q.name,
                        r.events,
                        r.elapsed.as_secs_f64(),
                        r.events_per_second(),
                        r.output_rows,
                        r.rejected,
                        r.peak_rss_bytes.map_or(0, |b| b >> 20)
                    ),
                    // A query the engine rejects is reported, and the others still run.
                    Err(e) => println!("{}: {e}", q.name),
                }
            }
        }
        Cmd::Engine { events, queries } => {
            let options = GenOptions {
                events,
                ..GenOptions::default()
            };
            print!("{}", engine_table(&select(&queries)?, &options));
        }
        Cmd::Memory { keys } => {
            let m = state_bytes_per_key(keys)?;
            println!(
                "{} keys: state grew {} bytes = {:.1} bytes per key\nquery: {}",
                m.keys,
                m.bytes,
                m.bytes_per_key(),
                eddy_bench::memory::STATE_QUERY
            );
        }
        Cmd::Compare {
            dir,
            events,
            queries,
            peers,
            cores,
            scripts,
            python,
            timeout,
        } => {
            let mut options = CompareOptions::new(dir);
            options.generate = events.map(|events| GenOptions {
                events,
                ..GenOptions::default()
            });
            options.queries = select(&queries)?;
            options.peers = if peers.trim().eq_ignore_ascii_case("none") {
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
        }
    }
    Ok(())
}

fn tracing_subscriber_init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
