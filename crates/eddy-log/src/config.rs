//! Log configuration: fsync policy, segment size, retention, default partitions.

use std::str::FromStr;

/// When appended bytes are forced from the OS page cache to the disk.
///
/// Every policy survives a crash of the eddy process (`kill -9`): an append returns only after
/// write(2). They differ on power loss / kernel crash: `Always` loses nothing acknowledged,
/// `IntervalMs(n)` loses at most the last ~n ms of acknowledged appends, `Never` may lose
/// everything the OS had not written back yet (typically up to 30 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fdatasync before every append returns (~4 ms each on this machine).
    Always,
    /// Group commit: a background thread fsyncs dirty partitions every n ms.
    IntervalMs(u64),
    /// Leave write-back to the OS.
    Never,
}

/// Default group-commit interval: bounds power-loss exposure to ~0.1 s of acknowledged data
/// while costing at most ten fsync rounds per second, and only for partitions written meanwhile.
pub const DEFAULT_FSYNC_INTERVAL_MS: u64 = 100;

impl Default for FsyncPolicy {
    fn default() -> Self {
        FsyncPolicy::IntervalMs(DEFAULT_FSYNC_INTERVAL_MS)
    }
}

/// Why a fsync policy string was rejected (unknown values are errors, never a silent default).
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid fsync policy {0:?}: expected \"always\", \"never\" or \"interval:<ms>\" with ms >= 1"
)]
pub struct ParseFsyncPolicyError(pub String);

impl FromStr for FsyncPolicy {
    type Err = ParseFsyncPolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseFsyncPolicyError(s.to_string());
        match s.trim().to_ascii_lowercase().as_str() {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            other => {
                let ms = other.strip_prefix("interval:").ok_or_else(err)?;
                match ms.trim().parse::<u64>() {
                    Ok(ms) if ms >= 1 => Ok(FsyncPolicy::IntervalMs(ms)),
                    _ => Err(err()),
                }
            }
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsyncPolicy::Always => f.write_str("always"),
            FsyncPolicy::IntervalMs(ms) => write!(f, "interval:{ms}"),
            FsyncPolicy::Never => f.write_str("never"),
        }
    }
}

/// Tuning of a `Log`; `Default` suits the embedded server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// When appends are fsynced.
    pub fsync: FsyncPolicy,
    /// A segment rolls once it would grow past this; also bounds the recovery scan at open.
    pub segment_bytes: u64,
    /// Per partition: delete oldest closed segments while the partition is larger than this.
    pub retention_bytes: Option<u64>,
    /// Delete closed segments whose newest record timestamp is older than now minus this.
    pub retention_ms: Option<i64>,
    /// Partition count for streams created implicitly by `get_or_create_stream`.
    pub default_partitions: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            fsync: FsyncPolicy::default(),
            // 64 MiB: recovery CRC-scans at most this much per partition; retention frees in these steps.
            segment_bytes: 64 << 20,
            retention_bytes: None,
            // 7 days, the longest ASA window.
            retention_ms: Some(7 * 24 * 3600 * 1000),
            // Event Hubs' default, which ASA jobs are used to.
            default_partitions: 4,
        }
    }
}
