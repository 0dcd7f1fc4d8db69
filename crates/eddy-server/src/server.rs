//! [`Server`]: opens the log and the store, restores jobs, serves HTTP and runs the
//! background ticks, until [`Server::shutdown`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use eddy_connectors::ndjson::BodyError;
use eddy_log::{Log, LogConfig};
use eddy_store::{Store, StoreConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::jobs::{Ctx, JobManager};
use crate::metrics::Metrics;
use crate::{JobSpec, ServerConfig, ServerError};

/// How often the log drops segments past its retention limits.
const RETENTION_INTERVAL: Duration = Duration::from_secs(30);
/// How often watched folders are scanned for complete files.
const FOLDER_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// State shared by HTTP handlers, background tasks and the public methods.
pub(crate) struct Shared {
    pub log: Arc<Log>,
    pub store: Arc<Store>,
    pub jobs: JobManager,
    pub metrics: Arc<Metrics>,
    /// Where the next request's round-robin spreading starts.
    pub round_robin: AtomicU64,
    pub auth_token: Option<String>,
}

/// A running eddy server. Call [`Server::shutdown`] to checkpoint jobs and close cleanly.
pub struct Server {
    shared: Arc<Shared>,
    http_addr: SocketAddr,
    /// The bound Kafka protocol address, when Kafka is served.
    kafka_addr: Option<SocketAddr>,
    /// The bound MQTT address, when MQTT is served.
    mqtt_addr: Option<SocketAddr>,
    /// Owned here; sending `true` stops the HTTP server (gracefully) and the background tasks.
    shutdown: watch::Sender<bool>,
    /// HTTP server and the retention tick, awaited by `shutdown`.
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Opens `<data_dir>/log` and `<data_dir>/store`, restarts persisted jobs from their
    /// checkpoints, binds the HTTP listener and spawns the background ticks.
    /// Needs a multi-threaded tokio runtime (job threads wake through it).
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        let dir = &config.data_dir;
        if config
            .auth_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(ServerError::Invalid(
                "the auth token must not be empty".into(),
            ));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| ServerError::io(format!("creating {}", dir.display()), e))?;
        let log_config = LogConfig {
            fsync: config.fsync,
            default_partitions: config.default_partitions,
            ..LogConfig::default()
        };
        let log = Arc::new(Log::open(&dir.join("log"), log_config)?);
        // The store flushes to Parquet on its own thread; its write-ahead file covers the rest.
        let store = Arc::new(Store::open(&dir.join("store"), StoreConfig::default())?);
        let metrics = Arc::new(Metrics::default());
        let ctx = Ctx {
            log: log.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            runtime: tokio::runtime::Handle::current(),
        };
        let jobs = JobManager::open(dir.join("jobs"), ctx)?;
        let shared = Arc::new(Shared {
            log,
            store,
            jobs,
            metrics,
            round_robin: AtomicU64::new(0),
            auth_token: config.auth_token.clone(),
        });
        let watchers = config
            .folders
            .iter()
            .map(|source| {
                tracing::info!(dir = %source.dir.display(), stream = %source.stream, "capturing a folder");
                crate::folders::FolderWatcher::open(
                    source.clone(),
                    dir,
                    config.folder_settle,
                    shared.log.clone(),
                    shared.metrics.clone(),
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .inspect_err(|_| shared.jobs.shutdown())?;
        let listener = match tokio::net::TcpListener::bind(config.http).await {
            Ok(listener) => listener,
            Err(e) => {
                shared.jobs.shutdown();
                return Err(ServerError::Http(e));
            }
        };
        let http_addr = listener.local_addr().map_err(ServerError::Http)?;
        let (shutdown, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let kafka_addr = match config.kafka {
            None => None,
            Some(addr) => {
                let (task, bound) = start_kafka(addr, shared.log.clone(), stopped.clone())
                    .await
                    .inspect_err(|_| shared.jobs.shutdown())?;
                tasks.push(task);
                Some(bound)
            }
        };
        let mqtt_addr = match config.mqtt {
            None => None,
            Some(addr) => {
                let (task, bound) = start_mqtt(addr, &config, &shared, stopped.clone())
                    .await
                    .inspect_err(|_| shared.jobs.shutdown())?;
                tasks.push(task);
                Some(bound)
            }
        };
        let app = crate::http::router(shared.clone());
        let mut http_stopped = stopped.clone();
        let http = tokio::spawn(async move {
            let stop = async move {
                let _ = http_stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "http server failed");
            }
        });
        let log = shared.log.clone();
        let retention = tick(stopped, RETENTION_INTERVAL, move || {
            log.apply_retention(crate::jobs::now_ms()).map(|removed| {
                if removed > 0 {
                    tracing::info!(removed, "log retention removed records");
                }
            })?;
            Ok(())
        });
        tracing::info!(addr = %http_addr, data_dir = %dir.display(), "eddy server started");
        tasks.extend([http, retention]);
        for capture in config.parquet_captures.clone() {
            let log = shared.log.clone();
            tracing::info!(stream = %capture.stream, dir = %capture.dir.display(), "capturing to Parquet");
            tasks.push(tick(
                shutdown.subscribe(),
                config.capture_interval,
                move || crate::capture::capture_pass(&log, &capture).map(|_| ()),
            ));
        }
        for watcher in watchers {
            let watcher = parking_lot::Mutex::new(watcher);
            tasks.push(tick(
                shutdown.subscribe(),
                FOLDER_POLL_INTERVAL,
                move || watcher.lock().poll().map(|_| ()),
            ));
        }
        Ok(Server {
            shared,
            http_addr,
            kafka_addr,
            mqtt_addr,
            shutdown,
            tasks,
        })
    }

    /// The bound HTTP address (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The bound Kafka protocol address, if Kafka is served (useful with port 0).
    pub fn kafka_addr(&self) -> Option<SocketAddr> {
        self.kafka_addr
    }

    /// The bound MQTT address, if MQTT is served (useful with port 0).
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.mqtt_addr
    }

    /// Appends JSON objects to `stream` exactly as `POST /api/streams/{stream}/events` does;
    /// returns how many were accepted (all or none). Blocking: call off the async threads.
    pub fn ingest(&self, stream: &str, events: &[serde_json::Value]) -> Result<usize, ServerError> {
        let mut encoded = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            if !event.is_object() {
                let message = "an event must be a JSON object".to_string();
                return Err(ServerError::Body(BodyError {
                    line: i + 1,
                    message,
                }));
            }
            encoded
                .push(serde_json::to_vec(event).map_err(|e| ServerError::Invalid(e.to_string()))?);
        }
        let slices: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        let s = &self.shared;
        crate::ingest::append_events(&s.log, &s.metrics, &s.round_robin, stream, &slices, None)
    }

    /// Compiles, persists and starts a job, as `POST /api/jobs` does. Blocking.
    pub fn create_job(&self, spec: JobSpec) -> Result<(), ServerError> {
        self.shared.jobs.create(spec)
    }

    /// Stops HTTP, checkpoints and stops every job, flushes the store and syncs the log.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a server task panicked");
            }
        }
        let shared = self.shared;
        let closing = tokio::task::spawn_blocking(move || {
            shared.jobs.shutdown();
            shared.store.flush()?;
            shared.log.sync()?;
            Ok(())
        });
        closing
            .await
            .map_err(|e| ServerError::io("shutting down", std::io::Error::other(e.to_string())))?
    }
}

/// Binds the Kafka listener over the same log as HTTP and serves it until `stopped` turns
/// true; topics are streams, so producers on either protocol feed the same jobs.
async fn start_kafka(
    addr: SocketAddr,
    log: Arc<Log>,
    mut stopped: watch::Receiver<bool>,
) -> Result<(JoinHandle<()>, SocketAddr), ServerError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::io(format!("binding the Kafka listener on {addr}"), e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ServerError::io("reading the Kafka listener address", e))?;
    let config = eddy_kafka::KafkaConfig {
        advertised_host: bound.ip().to_string(),
        advertised_port: bound.port(),
        auto_create_partitions: log.config().default_partitions,
        ..eddy_kafka::KafkaConfig::default()
    };
    let stop = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let task = tokio::spawn(async move {
        if let Err(e) = eddy_kafka::serve(listener, log, config, stop).await {
            tracing::error!(error = %e, "kafka listener failed");
        }
    });
    tracing::info!(addr = %bound, "kafka protocol listening");
    Ok((task, bound))
}

/// Binds the MQTT listener over the same log; devices' events land in the streams the
/// routes name, counted in the server's stream and MQTT metrics. The server's auth token,
/// when set, is the password every device must present.
async fn start_mqtt(
    addr: SocketAddr,
    config: &ServerConfig,
    shared: &Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) -> Result<(JoinHandle<()>, SocketAddr), ServerError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::io(format!("binding the MQTT listener on {addr}"), e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ServerError::io("reading the MQTT listener address", e))?;
    let mqtt_config = eddy_mqtt::MqttConfig {
        routes: config.mqtt_routes.clone(),
        auth_token: config.auth_token.clone(),
        ..eddy_mqtt::MqttConfig::default()
    };
    let stats = shared.metrics.mqtt_stats();
    let metrics = shared.metrics.clone();
    let on_append: eddy_mqtt::OnAppend = Arc::new(move |stream, events, bytes| {
        metrics.record_append(stream, events, bytes, crate::jobs::now_ms());
    });
    let log = shared.log.clone();
    let stop = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let task = tokio::spawn(async move {
        if let Err(e) =
            eddy_mqtt::serve(listener, log, mqtt_config, stats, Some(on_append), stop).await
        {
            tracing::error!(error = %e, "mqtt listener failed");
        }
    });
    tracing::info!(addr = %bound, "mqtt listening");
    Ok((task, bound))
}

/// Runs `work` on the blocking pool every `interval` until `stopped` turns true.
fn tick(
    mut stopped: watch::Receiver<bool>,
    interval: Duration,
    work: impl Fn() -> Result<(), ServerError> + Send + Sync + 'static,
) -> JoinHandle<()> {
    let work = Arc::new(work);
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(interval);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = timer.tick() => {}
                _ = stopped.wait_for(|s| *s) => break,
            }
            let work = work.clone();
            match tokio::task::spawn_blocking(move || work()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "background task failed"),
                Err(e) => tracing::error!(error = %e, "background task panicked"),
            }
        }
    })
}
