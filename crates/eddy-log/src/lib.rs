//! eddy-log: the durable, partitioned, append-only log that ingestion writes to and jobs read from.
//!
//! Layout of the crate (data flows top to bottom on append, bottom to top on read):
//! - [`Log`] (`log.rs`): the registry of named streams (case-insensitive names, kept as first
//!   written), stream metadata on disk, the group-commit fsync thread, retention and recovery.
//! - `partition.rs`: one partition = an ordered list of segments, the last one active; appends
//!   are serialized by the partition's mutex, reads locate under it and do their I/O outside.
//! - `segment.rs`: one segment = `<base>.log` (CRC-checked batches) + `<base>.index` (sparse
//!   offset → position entries); recovery truncates a torn tail.
//! - `batch.rs`: the on-disk batch format (header with base offset, count, timestamps, CRC).
//! - `offsets.rs`: committed consumer-group offsets (with optional commit metadata), an
//!   append-only CRC-checked file.
//!
//! On-disk format and crash behaviour are described in `docs/internals/log.md`.
#![deny(missing_docs)]

mod batch;
mod config;
mod error;
mod log;
mod offsets;
mod partition;
mod segment;

pub use batch::{MAX_BATCH_BYTES, StoredBatch};
pub use config::{DEFAULT_FSYNC_INTERVAL_MS, FsyncPolicy, LogConfig, ParseFsyncPolicyError};
pub use error::LogError;
pub use log::{Log, MAX_PARTITIONS, validate_stream_name};
pub use offsets::MAX_COMMIT_METADATA_BYTES;

use bytes::Bytes;

/// A record to append; the log assigns its offset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Event or arrival time in ms since the Unix epoch (drives time retention).
    pub timestamp_ms: i64,
    /// Optional key, used for partitioning and carried to consumers.
    pub key: Option<Bytes>,
    /// The payload.
    pub value: Bytes,
    /// Application headers, in order (Kafka record headers).
    pub headers: Vec<(String, Bytes)>,
}

/// A record read back, with the offset the log gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Position in its partition; dense, starting at 0.
    pub offset: u64,
    /// As appended.
    pub timestamp_ms: i64,
    /// As appended.
    pub key: Option<Bytes>,
    /// As appended.
    pub value: Bytes,
    /// As appended.
    pub headers: Vec<(String, Bytes)>,
}

/// A stream's shape and size, for listings and the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The name as first written.
    pub name: String,
    /// One entry per partition, in partition order.
    pub partitions: Vec<PartitionInfo>,
    /// The payload format the stream declared at creation (`None`: JSON by default).
    pub format: Option<String>,
}

/// A consumer group's committed position in one partition, for lag reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    /// The consumer group (a Kafka group id or a job's checkpoint group).
    pub group: String,
    /// The stream's name as first written.
    pub stream: String,
    /// Partition number.
    pub partition: u32,
    /// The next offset the group will read.
    pub offset: u64,
}

/// One partition's offset range and disk usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition number.
    pub partition: u32,
    /// Oldest offset still stored (grows with retention).
    pub start_offset: u64,
    /// Offset the next append gets (the high-water mark).
    pub end_offset: u64,
    /// Bytes of segment files.
    pub bytes: u64,
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first appended record.
    pub base_offset: u64,
    /// Offset after the last appended record (the new end offset).
    pub next_offset: u64,
}

/// Picks a partition for a record: Kafka's murmur2 hash of the key (so keyed records land where a
/// Kafka client would put them), else `round_robin % partitions`.
pub fn partition_for_key(key: Option<&[u8]>, partitions: u32, round_robin: u64) -> u32 {
    if partitions == 0 {
        return 0;
    }
    match key {
        Some(key) => (murmur2(key) & 0x7fff_ffff) % partitions,
        None => (round_robin % u64::from(partitions)) as u32,
    }
}

/// Kafka's murmur2 variant (seed 0x9747b28c), as used by its default partitioner.
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Vectors from Kafka's own partitioner tests, so keyed routing agrees with Kafka clients.
        assert_eq!(murmur2(b"21") as i32, -973_932_308);
        assert_eq!(murmur2(b"foobar") as i32, -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985_981_536);
        assert_eq!(
            murmur2(b"a-little-bit-longer-string") as i32,
            -1_486_304_829
        );
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58_897_971
        );
        assert_eq!(murmur2(b"abc") as i32, 479_470_107);
    }

    #[test]
    fn keyless_records_round_robin_and_keys_are_stable() {
        assert_eq!(partition_for_key(None, 4, 6), 2);
        let p = partition_for_key(Some(b"device-7"), 8, 0);
        assert_eq!(p, partition_for_key(Some(b"device-7"), 8, 99));
        assert!(p < 8);
        assert_eq!(partition_for_key(Some(b"x"), 0, 0), 0);
    }
}
