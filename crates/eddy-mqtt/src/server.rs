//! The listener: accepts connections under a semaphore and stops them all on shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy_log::Log;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::{MqttConfig, MqttError, MqttStats, OnAppend, conn};

/// How long open connections get to answer what they read and say goodbye on shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Shared by every connection of one listener.
pub(crate) struct Broker {
    /// The log every stream lives in.
    pub log: Arc<Log>,
    /// Validated configuration.
    pub config: MqttConfig,
    /// Counters for `/metrics`.
    pub stats: Arc<MqttStats>,
    /// The server's hook for its stream counters.
    pub on_append: Option<OnAppend>,
    /// Client id → (connection number, how to end it): a new connection with the same id
    /// takes over, as MQTT requires. Entries are removed by the connection that made them.
    pub sessions: Mutex<HashMap<String, (u64, Arc<Notify>)>>,
}

impl Broker {
    /// Registers connection `conn` as the one of `client_id`; the one before it is told to end.
    pub(crate) fn take_over(&self, client_id: &str, conn: u64) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, old)) = sessions.insert(client_id.to_string(), (conn, notify.clone())) {
            // notify_one keeps a permit, so the old connection sees it even if not waiting yet.
            old.notify_one();
        }
        notify
    }

    /// Forgets `client_id` if connection `conn` still owns it.
    pub(crate) fn release(&self, client_id: &str, conn: u64) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions
            .get(client_id)
            .is_some_and(|(owner, _)| *owner == conn)
        {
            sessions.remove(client_id);
        }
    }
}

/// Serves MQTT on `listener`, appending to `log`, until `shutdown` resolves. Per-connection
/// errors are logged and close only that connection; on shutdown each connection answers
/// what it has read, v5 clients get DISCONNECT "server shutting down", and every connection
/// task has ended before this returns.
pub async fn serve(
    listener: TcpListener,
    log: Arc<Log>,
    config: MqttConfig,
    stats: Arc<MqttStats>,
    on_append: Option<OnAppend>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MqttError> {
    if config.max_connections == 0
        || !(64..=crate::MAX_PACKET_BYTES_MAX).contains(&config.max_packet_bytes)
    {
        return Err(MqttError::Config(format!(
            "max_connections must be positive and max_packet_bytes between 64 and {}",
            crate::MAX_PACKET_BYTES_MAX
        )));
    }
    if config.auth_token.as_deref().is_some_and(str::is_empty) {
        return Err(MqttError::Config("the auth token must not be empty".into()));
    }
    tracing::info!(addr = %listener.local_addr()?, "mqtt listener started");
    // Owned here: `stop` tells every connection to wind down; `tasks` holds them so none
    // outlives this function.
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let broker = Arc::new(Broker {
        log,
        config,
        stats,
        on_append,
        sessions: Mutex::default(),
    });
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (socket, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Typically EMFILE; back off instead of spinning.
                    tracing::warn!(error = %e, "mqtt accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let broker = Arc::clone(&broker);
        let stopped = stopped.clone();
        tasks.spawn(async move {
            conn::run(broker, socket, peer, stopped).await;
            drop(permit);
        });
        // Reap finished connections so the set stays as small as the open ones.
        while tasks.try_join_next().is_some() {}
    }
    tracing::info!("mqtt listener stopping");
    let _ = stop.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.shutdown().await;
    }
    Ok(())
}
