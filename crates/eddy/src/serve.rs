//! `eddy server`: start the server, announce its address, stop on SIGINT/SIGTERM.

use anyhow::Context;
use clap::Args;
use eddy_log::FsyncPolicy;
use eddy_server::{Server, ServerConfig};
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
