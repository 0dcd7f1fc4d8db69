//! The listener: accepts connections under a semaphore and stops everything on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use eddy_log::Log;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::coordinator::Coordinator;
use crate::groups::CommitExtras;
use crate::producers::Producers;
use crate::{KafkaConfig, KafkaError, conn};

/// How often group members are checked for expired sessions and rebalance deadlines.
const GROUP_TICK: Duration = Duration::from_millis(100);

/// Shared by every connection of one listener.
pub(crate) struct Broker {
    /// The log every topic lives in.
    pub log: Arc<Log>,
    /// Validated configuration, with the advertised port resolved.
    pub config: KafkaConfig,
    /// Consumer groups (in memory; committed offsets go to the log).
    pub groups: Coordinator,
    /// Idempotent producers' ids and sequences (in memory).
    pub producers: Producers,
    /// What a commit carries that the log's offset store cannot hold (in memory).
    pub commit_extras: CommitExtras,
}

/// Serves the Kafka protocol on `listener` over `log` until `shutdown` resolves; the broker is
/// node 0 at the advertised address. Per-connection errors are logged and close only that
/// connection; on shutdown every connection task is stopped before this returns.
pub async fn serve(
    listener: TcpListener,
    log: Arc<Log>,
    mut config: KafkaConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), KafkaError> {
    if config.auto_create_partitions == 0
        || config.auto_create_partitions > eddy_log::MAX_PARTITIONS
    {
        return Err(KafkaError::Config(format!(
            "auto_create_partitions must be 1..={}",
            eddy_log::MAX_PARTITIONS
        )));
    }
    if config.max_connections == 0 || config.max_frame_bytes < 64 {
        return Err(KafkaError::Config(
            "max_connections must be positive and max_frame_bytes at least 64".into(),
        ));
    }
    if config.advertised_port == 0 {
        config.advertised_port = listener.local_addr()?.port();
    }
    tracing::info!(addr = %listener.local_addr()?, advertised = %format!("{}:{}", config.advertised_host, config.advertised_port), "kafka listener started");
    // Owned here: every task below is aborted when `tasks` is shut down after `shutdown` fires.
    let mut tasks = JoinSet::new();
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let groups = Coordinator::with_initial_delay(std::time::Duration::from_millis(
        config.group_initial_rebalance_delay_ms,
    ));
    let broker = Arc::new(Broker {
        log,
        config,
        groups,
        producers: Producers::new(),
        commit_extras: CommitExtras::default(),
    });
    let ticker = Arc::clone(&broker);
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(GROUP_TICK);
        loop {
            tick.tick().await;
            ticker.groups.expire(std::time::Instant::now());
        }
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
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Typically EMFILE; back off instead of spinning.
                    tracing::warn!(error = %e, "kafka accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let broker = Arc::clone(&broker);
        tasks.spawn(async move {
            conn::run(broker, stream, peer).await;
            drop(permit);
        });
        // Reap finished connections so the set stays as small as the open ones.
        while tasks.try_join_next().is_some() {}
    }
    tracing::info!("kafka listener stopping");
    tasks.shutdown().await;
    Ok(())
}

#[cfg(test)]
impl Broker {
    /// A broker over a fresh log in `dir`, for handler tests.
    pub(crate) fn for_test(dir: &std::path::Path) -> Arc<Broker> {
        Arc::new(Broker {
            log: Arc::new(Log::open(dir, eddy_log::LogConfig::default()).expect("open log")),
            config: KafkaConfig::default(),
            groups: Coordinator::default(),
            producers: Producers::new(),
            commit_extras: CommitExtras::default(),
        })
    }
}
