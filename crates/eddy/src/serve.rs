//! `eddy server`: start the server, announce its address, stop on SIGINT/SIGTERM.

use anyhow::Context;
use clap::Args;
use eddy_log::FsyncPolicy;
use eddy_server::{FolderSource, ParquetCapture, Server, ServerConfig};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Options of `eddy server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Directory of all state (log, tables, jobs); created if missing.
    #[arg(long, default_value = "./eddy-data")]
    data_dir: PathBuf,
    /// Address of the HTTP API and dashboard; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Address of the Kafka protocol listener; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9092")]
    kafka: SocketAddr,
    /// Serve no Kafka protocol listener.
    #[arg(long, conflicts_with = "kafka")]
    no_kafka: bool,
    /// Address of the MQTT listener for devices; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: SocketAddr,
    /// Serve no MQTT listener.
    #[arg(long, conflicts_with_all = ["mqtt", "mqtt_stream", "mqtt_route"])]
    no_mqtt: bool,
    /// Stream that receives MQTT messages whose topic no --mqtt-route matches.
    #[arg(long, default_value = eddy_mqtt::DEFAULT_STREAM)]
    mqtt_stream: String,
    /// FILTER=STREAM: messages on topics matching the MQTT topic filter go to STREAM; the
    /// first matching route wins (repeatable), e.g. devices/+/telemetry=telemetry.
    #[arg(long, value_name = "FILTER=STREAM")]
    mqtt_route: Vec<eddy_mqtt::Route>,
    /// When appended events are fsynced: always, never, or interval:MS (group commit).
    #[arg(long, default_value = "interval:100")]
    fsync: FsyncPolicy,
    /// Require `Authorization: Bearer TOKEN` on every API request (and TOKEN as the MQTT password).
    #[arg(long)]
    auth_token: Option<String>,
    /// Partitions of a stream created implicitly.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    partitions: u32,
    /// Capture new JSON, NDJSON, CSV (and .gz) files under DIR into STREAM, each exactly once;
    /// repeatable. Lines that are not events go to STREAM-deadletter.
    #[arg(long = "watch", value_name = "STREAM=DIR", value_parser = parse_watch)]
    watch: Vec<FolderSource>,
    /// Milliseconds a file must stay unchanged before it is read as complete.
    #[arg(long, default_value_t = 2000)]
    watch_settle_ms: u64,
    /// Capture STREAM to Parquet files under DIR/STREAM/date=YYYY-MM-DD/hour=HH; repeatable.
    #[arg(long = "capture-parquet", value_name = "STREAM=DIR", value_parser = parse_capture)]
    capture_parquet: Vec<ParquetCapture>,
    /// Seconds between Parquet capture passes (each writes what arrived since the last).
    #[arg(long, default_value_t = 60.0)]
    capture_interval_s: f64,
}

fn parse_capture(text: &str) -> Result<ParquetCapture, String> {
    let FolderSource { stream, dir } = parse_watch(text)?;
    Ok(ParquetCapture { stream, dir })
}

fn parse_watch(text: &str) -> Result<FolderSource, String> {
    match text.split_once('=') {
        Some((stream, dir)) if !stream.is_empty() && !dir.is_empty() => {
            eddy_log::validate_stream_name(stream).map_err(|e| e.to_string())?;
            Ok(FolderSource {
                stream: stream.to_string(),
                dir: dir.into(),
            })
        }
        _ => Err(format!("expected STREAM=DIR, got '{text}'")),
    }
}

pub fn server(args: ServerArgs) -> anyhow::Result<()> {
    let mqtt_routes = eddy_mqtt::Routes::new(args.mqtt_route, &args.mqtt_stream)?;
    let config = ServerConfig {
        data_dir: args.data_dir,
        http: args.http,
        fsync: args.fsync,
        auth_token: args.auth_token,
        default_partitions: args.partitions,
        kafka: (!args.no_kafka).then_some(args.kafka),
        folders: args.watch,
        folder_settle: std::time::Duration::from_millis(args.watch_settle_ms),
        parquet_captures: args.capture_parquet,
        capture_interval: std::time::Duration::try_from_secs_f64(args.capture_interval_s)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| crate::usage_error("--capture-interval-s must be a positive number"))?,
        mqtt: (!args.no_mqtt).then_some(args.mqtt),
        mqtt_routes,
    };
    crate::runtime()?.block_on(async {
        let server = start(config).await?;
        shutdown_signal().await?;
        tracing::info!("shutting down");
        server.shutdown().await.context("shutting down")
    })
}

/// Starts a server and prints the line scripts and tests wait for:
/// `eddy listening http=ADDR` (followed by ` kafka=ADDR` when Kafka is served and
/// ` mqtt=ADDR` when MQTT is).
pub async fn start(config: ServerConfig) -> anyhow::Result<Server> {
    let data_dir = config.data_dir.display().to_string();
    let server = Server::start(config)
        .await
        .with_context(|| format!("starting the server on {data_dir}"))?;
    let mut line = format!("eddy listening http={}", server.http_addr());
    if let Some(kafka) = server.kafka_addr() {
        line.push_str(&format!(" kafka={kafka}"));
    }
    if let Some(mqtt) = server.mqtt_addr() {
        line.push_str(&format!(" mqtt={mqtt}"));
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    Ok(server)
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
