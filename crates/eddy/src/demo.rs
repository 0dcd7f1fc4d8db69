//! `eddy demo`: a server on a fresh data directory, fed with road-traffic readings, with a
//! job that rates congestion per road segment every 10 seconds.

use crate::serve;
use anyhow::Context;
use clap::Args;
use eddy_connectors::traffic::TrafficGenerator;
use eddy_server::{JobSpec, ServerConfig, ServerError};
use indicatif::{ProgressBar, ProgressStyle};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `eddy demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address of the HTTP API and dashboard; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Data directory (kept afterwards); by default a new temporary one, removed on exit.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long)]
    duration_s: Option<u64>,
}

const STREAM: &str = "traffic";
const SENSORS: usize = 200;
const SEED: u64 = 42;
const TICK: Duration = Duration::from_millis(200);
/// Readings of the last two minutes are ingested at start, so the dashboard has history.
const BACKFILL_S: i64 = 120;

/// The demo job: per segment and 10-second window, readings, vehicles, average speed and
/// a congestion level.
const CONGESTION_QUERY: &str = "\
SELECT
    SegmentId,
    COUNT(*) AS Readings,
    SUM(VehicleCount) AS Vehicles,
    AVG(AvgSpeed) AS AvgSpeed,
    CASE
        WHEN AVG(AvgSpeed) < 15 THEN 'jam'
        WHEN AVG(AvgSpeed) < 30 THEN 'heavy'
        WHEN AVG(AvgSpeed) < 50 THEN 'moderate'
        ELSE 'free'
    END AS Congestion,
    System.Timestamp() AS WindowEnd
INTO SegmentCongestion
FROM traffic TIMESTAMP BY EventTime
GROUP BY SegmentId, TumblingWindow(second, 10)";

pub fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let (data_dir, temp_dir) = match args.data_dir {
        Some(dir) => (dir, None),
        None => {
            let temp = tempfile::Builder::new().prefix("eddy-demo-").tempdir()?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let config = ServerConfig {
        data_dir,
        http: args.http,
        ..ServerConfig::default()
    };
    crate::runtime()?.block_on(async {
        let server = serve::start(config).await?;
        let spec = JobSpec {
            name: "congestion".into(),
            query: CONGESTION_QUERY.into(),
            // The backfilled history is older than any finite tolerance.
            late_arrival_tolerance_s: -1.0,
            out_of_order_tolerance_s: 0.0,
            out_of_order_action: Default::default(),
            outputs: Default::default(),
            references: Default::default(),
        };
        match server.create_job(spec) {
            Ok(()) | Err(ServerError::JobExists(_)) => {}
            Err(err) => return Err(err).context("creating the congestion job"),
        }
        println!("dashboard: http://{}/", server.http_addr());
        let fed = feed(&server, args.duration_s).await;
        tracing::info!("shutting down");
        server.shutdown().await.context("shutting down")?;
        fed
    })?;
    drop(temp_dir);
    Ok(())
}

/// Ingests a backfill, then readings every [`TICK`] until Ctrl-C or the duration ends.
async fn feed(server: &eddy_server::Server, duration_s: Option<u64>) -> anyhow::Result<()> {
    let mut generator = TrafficGenerator::new(SEED, SENSORS);
    let progress = ProgressBar::new_spinner().with_style(ProgressStyle::with_template(
        "{spinner} {pos} readings ingested into 'traffic' ({per_sec})",
    )?);
    progress.enable_steady_tick(Duration::from_millis(250));
    let start_ms = now_ms();
    for second in (1..=BACKFILL_S).rev() {
        let readings = generator.readings(start_ms - second * 1000);
        progress.inc(server.ingest(STREAM, &readings)? as u64);
    }
    let deadline = async {
        match duration_s {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let signal = serve::shutdown_signal();
    tokio::pin!(signal);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            result = &mut signal => { result?; break }
            _ = ticker.tick() => {
                let readings = generator.readings(now_ms());
                progress.inc(server.ingest(STREAM, &readings).context("ingesting readings")? as u64);
            }
        }
    }
    progress.finish_and_clear();
    Ok(())
}

fn now_ms() -> i64 {
    eddy_engine::time::now_ticks() / (eddy_engine::time::TICKS_PER_SECOND / 1000)
}
