//! A stand-alone Kafka broker over an eddy log, for client tests:
//! `cargo run -p eddy-kafka --example broker -- --data-dir DIR --listen 127.0.0.1:0`.
//! Prints `listening on ADDR` once it accepts connections; stops on Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use eddy_kafka::{KafkaConfig, serve};
use eddy_log::{FsyncPolicy, Log, LogConfig};

/// The eddy binary's allocator, so the example measures what eddy would run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn usage() -> ! {
    eprintln!(
        "usage: broker --data-dir DIR [--listen ADDR] [--partitions N] [--max-message-bytes N] [--fsync always|interval:N|never]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut data_dir = None;
    let mut listen = "127.0.0.1:9092".to_string();
    let mut config = KafkaConfig::default();
    let mut log_config = LogConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--data-dir" => data_dir = Some(PathBuf::from(value)),
            "--listen" => listen = value,
            "--partitions" => {
                config.auto_create_partitions = value.parse().unwrap_or_else(|_| usage())
            }
            "--max-message-bytes" => {
                config.max_message_bytes = value.parse().unwrap_or_else(|_| usage())
            }
            "--fsync" => {
                log_config.fsync = value.parse::<FsyncPolicy>().unwrap_or_else(|_| usage())
            }
            _ => usage(),
        }
    }
    let data_dir = data_dir.unwrap_or_else(|| usage());
    let log = match Log::open(&data_dir, log_config) {
        Ok(log) => Arc::new(log),
        Err(e) => {
            eprintln!("cannot open log: {e}");
            std::process::exit(1)
        }
    };
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {listen}: {e}");
            std::process::exit(1)
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on {addr}"),
        Err(e) => {
            eprintln!("listener address: {e}");
            std::process::exit(1)
        }
    }
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    if let Err(e) = serve(listener, Arc::clone(&log), config, shutdown).await {
        eprintln!("kafka: {e}");
        std::process::exit(1)
    }
    if let Err(e) = log.sync() {
        eprintln!("final fsync: {e}");
        std::process::exit(1)
    }
}
