//! Standalone Nexmark runner: generate events, run eddy on them (from files or memory),
//! measure state memory, and compare with Flink and Spark.

use anyhow::Result;
use clap::Parser;
use eddy_bench::cli::{NexmarkCommand, run};

/// Rows and events are many small allocations freed in bulk, where glibc's malloc is slow.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "eddy-nexmark", about = "Nexmark benchmark for eddy")]
struct Cli {
    #[command(subcommand)]
    command: NexmarkCommand,
}

fn main() -> Result<()> {
    tracing_subscriber_init();
    run(Cli::parse().command)
}

fn tracing_subscriber_init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
