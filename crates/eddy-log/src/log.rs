//! The `Log`: named streams on disk, their metadata, the fsync thread, retention and offsets.
//!
//! Directory layout under the data dir:
//! ```text
//! streams/<lower-case name>/meta.json        {"name": <as first written>, "partitions": n}
//! streams/<lower-case name>/<p>/<base>.log   segments; <base>.index beside each
//! offsets.log                                committed consumer-group offsets
//! tmp/                                       staging for create/delete; emptied at open
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::batch::{self, StoredBatch};
use crate::offsets::{MAX_COMMIT_METADATA_BYTES, Offsets};
use crate::partition::{Partition, sync_dir};
use crate::{AppendInfo, FsyncPolicy, LogConfig, LogError, Record, StoredRecord, StreamInfo};

/// Most partitions a stream may have; bounds open files and memory per stream.
pub const MAX_PARTITIONS: u32 = 1024;
/// Longest stream name, as in Kafka (file names must stay short).
const MAX_NAME_LEN: usize = 249;

/// Checks a stream name against Kafka's rules, which also rule out path traversal.
pub fn validate_stream_name(name: &str) -> Result<(), LogError> {
    let bad = |reason| {
        Err(LogError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return bad("must be 1 to 249 characters");
    }
    if name == "." || name == ".." {
        return bad("must not be \".\" or \"..\"");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct StreamMeta {
    name: String,
    partitions: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<String>,
}

/// A stream's shape at one moment. Never mutated: `add_partitions` installs a new `Stream`
/// sharing the old partitions, so appends and reads take no extra lock.
struct Stream {
    name: String,
    partitions: Vec<Arc<Partition>>,
    format: Option<String>,
}

impl Stream {
    fn info(&self) -> StreamInfo {
        StreamInfo {
            name: self.name.clone(),
            partitions: self.partitions.iter().map(|p| p.info()).collect(),
            format: self.format.clone(),
        }
    }

    fn partition(&self, partition: u32) -> Result<&Partition, LogError> {
        self.partitions
            .get(partition as usize)
            .map(|p| &**p)
            .ok_or_else(|| LogError::UnknownPartition {
                stream: self.name.clone(),
                partition,
                partitions: self.partitions.len() as u32,
            })
    }
}

struct Inner {
    dir: PathBuf,
    config: LogConfig,
    /// Keyed by the lower-case name, so lookups are case-insensitive.
    streams: RwLock<HashMap<String, Arc<Stream>>>,
    /// Serializes create/delete, whose disk work must not hold the `streams` lock.
    admin: Mutex<()>,
    offsets: Mutex<Offsets>,
}

impl Inner {
    fn streams_snapshot(&self) -> Vec<Arc<Stream>> {
        self.streams.read().values().cloned().collect()
    }
}

// Shared behind `Arc` by many tokio tasks: keep it `Send + Sync`.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
};

/// The durable partitioned log; `Send + Sync`, meant to be shared behind an `Arc`.
pub struct Log {
    inner: Arc<Inner>,
    /// The group-commit thread (`IntervalMs` only). Dropping the sender wakes it for a final
    /// fsync round; `Drop` then joins it.
    syncer: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> LogError {
    let context = format!("{what} {}", path.display());
    move |e| LogError::io(context, e)
}

impl Log {
    /// Opens (creating) the log in `dir` and recovers every partition of every stream.
    pub fn open(dir: &Path, config: LogConfig) -> Result<Log, LogError> {
        if config.default_partitions == 0 || config.default_partitions > MAX_PARTITIONS {
            return Err(LogError::InvalidPartitions(config.default_partitions));
        }
        let streams_dir = dir.join("streams");
        std::fs::create_dir_all(&streams_dir).map_err(io("create", &streams_dir))?;
        let tmp = dir.join("tmp");
        if tmp.exists() {
            // Half-created or deleted streams from before a crash.
            std::fs::remove_dir_all(&tmp).map_err(io("clean", &tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io("create", &tmp))?;
        let mut streams = HashMap::new();
        for entry in std::fs::read_dir(&streams_dir).map_err(io("list", &streams_dir))? {
            let path = entry.map_err(io("list", &streams_dir))?.path();
            if !path.is_dir() {
                tracing::warn!(path = %path.display(), "ignoring stray file among streams");
                continue;
            }
            let meta_path = path.join("meta.json");
            let text = std::fs::read_to_string(&meta_path).map_err(io("read", &meta_path))?;
            let meta: StreamMeta = serde_json::from_str(&text)
                .map_err(|e| LogError::corrupt(&meta_path, e.to_string()))?;
            let key = meta.name.to_ascii_lowercase();
            if validate_stream_name(&meta.name).is_err() || path.file_name() != Some(key.as_ref()) {
                return Err(LogError::corrupt(
                    &meta_path,
                    "stream name does not match its directory",
                ));
            }
            let partitions = (0..meta.partitions)
                .map(|p| Partition::open(path.join(p.to_string()), p, &config).map(Arc::new))
                .collect::<Result<_, _>>()?;
            streams.insert(
                key,
                Arc::new(Stream {
                    name: meta.name,
                    partitions,
                    format: meta.format,
                }),
            );
        }
        let offsets = Offsets::open(dir, config.fsync != FsyncPolicy::Never)?;
        tracing::info!(dir = %dir.display(), streams = streams.len(), "log opened");
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            config,
            streams: RwLock::new(streams),
            admin: Mutex::new(()),
            offsets: Mutex::new(offsets),
        });
        let syncer = match inner.config.fsync {
            FsyncPolicy::IntervalMs(ms) => {
                Some(spawn_syncer(Arc::clone(&inner), Duration::from_millis(ms))?)
            }
            _ => None,
        };
        Ok(Log { inner, syncer })
    }

    /// The configuration the log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    fn get(&self, name: &str) -> Result<Arc<Stream>, LogError> {
        self.inner
            .streams
            .read()
            .get(&name.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| LogError::UnknownStream(name.to_string()))
    }

    /// Creates a stream; `StreamExists` if one of that name exists in any case.
    pub fn create_stream(&self, name: &str, partitions: u32) -> Result<StreamInfo, LogError> {
        self.create_stream_with_format(name, partitions, None)
    }

    /// Creates a stream that declares the format of its payloads (e.g. `csv`); the log
    /// keeps it as metadata for readers and does not interpret it.
    pub fn create_stream_with_format(
        &self,
        name: &str,
        partitions: u32,
        format: Option<&str>,
    ) -> Result<StreamInfo, LogError> {
        validate_stream_name(name)?;
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(LogError::InvalidPartitions(partitions));
        }
        let _admin = self.inner.admin.lock();
        let key = name.to_ascii_lowercase();
        if let Some(s) = self.inner.streams.read().get(&key) {
            return Err(LogError::StreamExists(s.name.clone()));
        }
        // Built in tmp/ and renamed into place, so a crash never leaves a stream without metadata.
        let staged = self.inner.dir.join("tmp").join(&key);
        if staged.exists() {
            std::fs::remove_dir_all(&staged).map_err(io("clean", &staged))?;
        }
        for p in 0..partitions {
            let pdir = staged.join(p.to_string());
            std::fs::create_dir_all(&pdir).map_err(io("create", &pdir))?;
        }
        let meta = serde_json::to_vec(&StreamMeta {
            name: name.to_string(),
            partitions,
            format: format.map(str::to_string),
        })
        .map_err(|e| LogError::io("encode stream metadata", std::io::Error::other(e)))?;
        let meta_path = staged.join("meta.json");
        std::fs::write(&meta_path, meta).map_err(io("write", &meta_path))?;
        let durable = self.inner.config.fsync != FsyncPolicy::Never;
        if durable {
            std::fs::File::open(&meta_path)
                .and_then(|f| f.sync_all())
                .map_err(io("fsync", &meta_path))?;
            sync_dir(&staged)?;
        }
        let dir = self.inner.dir.join("streams").join(&key);
        std::fs::rename(&staged, &dir).map_err(io("rename into place", &dir))?;
        if durable {
            sync_dir(&self.inner.dir.join("streams"))?;
        }
        let parts = (0..partitions)
            .map(|p| Partition::open(dir.join(p.to_string()), p, &self.inner.config).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let stream = Arc::new(Stream {
            name: name.to_string(),
            partitions: parts,
            format: format.map(str::to_string),
        });
        let info = stream.info();
        self.inner.streams.write().insert(key, stream);
        tracing::info!(stream = name, partitions, "stream created");
        Ok(info)
    }

    /// Grows a stream to `new_total` partitions (Kafka CreatePartitions); existing partitions and
    /// their data are untouched. `PartitionsNotIncreased` unless `new_total` is above the current
    /// count; durable (survives `kill -9`, and power loss unless the policy is `Never`) on return.
    pub fn add_partitions(&self, name: &str, new_total: u32) -> Result<StreamInfo, LogError> {
        let _admin = self.inner.admin.lock();
        let old = self.get(name)?;
        check_growth(&old, new_total)?;
        let key = old.name.to_ascii_lowercase();
        let dir = self.inner.dir.join("streams").join(&key);
        let durable = self.inner.config.fsync != FsyncPolicy::Never;
        let current = old.partitions.len() as u32;
        // New partition directories first: until meta.json names them they are ignored at open,
        // so a crash here leaves the stream as it was. A leftover of such a crash is emptied,
        // since nothing in it was ever readable.
        let mut added = Vec::with_capacity((new_total - current) as usize);
        for p in current..new_total {
            let pdir = dir.join(p.to_string());
            if pdir.exists() {
                tracing::warn!(path = %pdir.display(), "removing partition left by an interrupted add_partitions");
                std::fs::remove_dir_all(&pdir).map_err(io("clean", &pdir))?;
            }
            added.push(Arc::new(Partition::open(pdir, p, &self.inner.config)?));
        }
        if durable {
            sync_dir(&dir)?;
        }
        // Then the new count, replacing meta.json atomically (write, fsync, rename, fsync dir).
        let meta = serde_json::to_vec(&StreamMeta {
            name: old.name.clone(),
            partitions: new_total,
            format: old.format.clone(),
        })
        .map_err(|e| LogError::io("encode stream metadata", std::io::Error::other(e)))?;
        let staged = dir.join("meta.json.tmp");
        std::fs::write(&staged, meta).map_err(io("write", &staged))?;
        if durable {
            std::fs::File::open(&staged)
                .and_then(|f| f.sync_all())
                .map_err(io("fsync", &staged))?;
        }
        let meta_path = dir.join("meta.json");
        std::fs::rename(&staged, &meta_path).map_err(io("rename into place", &meta_path))?;
        if durable {
            sync_dir(&dir)?;
        }
        let mut partitions = old.partitions.clone();
        partitions.extend(added);
        let stream = Arc::new(Stream {
            name: old.name.clone(),
            partitions,
            format: old.format.clone(),
        });
        let info = stream.info();
        self.inner.streams.write().insert(key, stream);
        tracing::info!(stream = %old.name, from = current, to = new_total, "partitions added");
        Ok(info)
    }

    /// Checks what `add_partitions(name, new_total)` would check, changing nothing (Kafka's
    /// `validate_only`).
    pub fn validate_add_partitions(&self, name: &str, new_total: u32) -> Result<(), LogError> {
        check_growth(&*self.get(name)?, new_total)
    }

    /// The stream's current partition count (`None`: no such stream). Cheap (one read lock);
    /// jobs and consumers poll it to notice partitions added while they run.
    pub fn partition_count(&self, name: &str) -> Option<u32> {
        self.get(name).ok().map(|s| s.partitions.len() as u32)
    }

    /// Returns the stream, creating it with `default_partitions` if absent.
    pub fn get_or_create_stream(&self, name: &str) -> Result<StreamInfo, LogError> {
        if let Ok(s) = self.get(name) {
            return Ok(s.info());
        }
        match self.create_stream(name, self.inner.config.default_partitions) {
            Err(LogError::StreamExists(_)) => self.get(name).map(|s| s.info()),
            other => other,
        }
    }

    /// Deletes a stream, its data and its committed offsets.
    pub fn delete_stream(&self, name: &str) -> Result<(), LogError> {
        let _admin = self.inner.admin.lock();
        let key = name.to_ascii_lowercase();
        let stream = self
            .inner
            .streams
            .write()
            .remove(&key)
            .ok_or_else(|| LogError::UnknownStream(name.to_string()))?;
        for p in &stream.partitions {
            p.mark_deleted();
        }
        // Renamed out first (atomic), so a crash mid-delete never leaves half a stream behind.
        let dir = self.inner.dir.join("streams").join(&key);
        let trash = self.inner.dir.join("tmp").join(format!("{key}.deleted"));
        if trash.exists() {
            std::fs::remove_dir_all(&trash).map_err(io("clean", &trash))?;
        }
        std::fs::rename(&dir, &trash).map_err(io("move out", &dir))?;
        sync_dir(&self.inner.dir.join("streams"))?;
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            tracing::warn!(path = %trash.display(), error = %e, "could not remove deleted stream; removed at next open");
        }
        self.inner.offsets.lock().remove_stream(&key)?;
        tracing::info!(stream = %stream.name, "stream deleted");
        Ok(())
    }

    /// The stream's shape and offsets, if it exists (any case).
    pub fn stream(&self, name: &str) -> Option<StreamInfo> {
        self.get(name).ok().map(|s| s.info())
    }

    /// All streams, sorted by lower-case name.
    pub fn streams(&self) -> Vec<StreamInfo> {
        let mut all: Vec<_> = self
            .inner
            .streams
            .read()
            .iter()
            .map(|(k, s)| (k.clone(), Arc::clone(s)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.iter().map(|(_, s)| s.info()).collect()
    }

    /// Appends `records` as one batch (one write(2)); returns after the bytes reached the OS,
    /// and the disk too under `FsyncPolicy::Always`. An empty slice appends nothing.
    pub fn append(
        &self,
        stream: &str,
        partition: u32,
        records: &[Record],
    ) -> Result<AppendInfo, LogError> {
        let s = self.get(stream)?;
        let p = s.partition(partition)?;
        if records.is_empty() {
            let end = p.info().end_offset;
            return Ok(AppendInfo {
                base_offset: end,
                next_offset: end,
            });
        }
        // Encoded before taking the partition lock, which then covers only the write.
        let (bytes, header) = batch::encode(records)?;
        p.append(&s.name, bytes, header, &self.inner.config)
    }

    /// Up to `max_records` records with offset >= `offset`, in order; empty at the end offset;
    /// `OffsetOutOfRange` below the start or beyond the end.
    pub fn read(
        &self,
        stream: &str,
        partition: u32,
        offset: u64,
        max_records: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let s = self.get(stream)?;
        let p = s.partition(partition)?;
        let mut out = Vec::new();
        if max_records == 0 {
            return Ok(out);
        }
        p.scan(offset, |header, bytes| {
            batch::decode(header, bytes, offset, max_records - out.len(), &mut out)?;
            Ok(out.len() < max_records)
        })?;
        Ok(out)
    }

    /// Whole batches covering offsets >= `offset` (the first may start before it), until about
    /// `max_bytes` of batches (at least one); for layers that serve batches, like Kafka fetch.
    pub fn read_batches(
        &self,
        stream: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
    ) -> Result<Vec<StoredBatch>, LogError> {
        let s = self.get(stream)?;
        let p = s.partition(partition)?;
        let mut out = Vec::new();
        let mut bytes_read = 0;
        p.scan(offset, |header, bytes| {
            bytes_read += bytes.len();
            let mut records = Vec::with_capacity(header.record_count as usize);
            batch::decode(header, bytes, 0, usize::MAX, &mut records)?;
            out.push(StoredBatch {
                base_offset: header.base_offset,
                first_timestamp_ms: header.first_timestamp_ms,
                max_timestamp_ms: header.max_timestamp_ms,
                records,
            });
            Ok(bytes_read < max_bytes)
        })?;
        Ok(out)
    }

    /// Watches the partition's end offset, so consumers at the end wait instead of polling.
    pub fn subscribe(
        &self,
        stream: &str,
        partition: u32,
    ) -> Result<watch::Receiver<u64>, LogError> {
        Ok(self.get(stream)?.partition(partition)?.subscribe())
    }

    /// Records `offset` as the group's position; on return it survives `kill -9` (and power loss
    /// unless the policy is `Never`). `OffsetOutOfRange` beyond the end offset.
    pub fn commit_offset(
        &self,
        group: &str,
        stream: &str,
        partition: u32,
        offset: u64,
    ) -> Result<(), LogError> {
        self.commit_offset_with_metadata(group, stream, partition, offset, "")
    }

    /// `commit_offset` plus an opaque string stored with the offset (Kafka's commit metadata),
    /// durable the same way; at most `MAX_COMMIT_METADATA_BYTES` (else `BatchTooLarge`).
    pub fn commit_offset_with_metadata(
        &self,
        group: &str,
        stream: &str,
        partition: u32,
        offset: u64,
        metadata: &str,
    ) -> Result<(), LogError> {
        if metadata.len() > MAX_COMMIT_METADATA_BYTES {
            return Err(LogError::BatchTooLarge {
                bytes: metadata.len() as u64,
                max: MAX_COMMIT_METADATA_BYTES as u64,
            });
        }
        if group.is_empty() || group.len() > usize::from(u16::MAX) {
            return Err(LogError::InvalidName {
                name: group.to_string(),
                reason: "group must be 1 to 65535 bytes",
            });
        }
        let s = self.get(stream)?;
        let info = s.partition(partition)?.info();
        if offset > info.end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start: info.start_offset,
                end: info.end_offset,
            });
        }
        self.inner.offsets.lock().commit(
            (group.to_string(), stream.to_ascii_lowercase(), partition),
            offset,
            metadata,
        )
    }

    /// The group's last committed offset for the partition, if any.
    pub fn committed_offset(&self, group: &str, stream: &str, partition: u32) -> Option<u64> {
        self.committed_offset_with_metadata(group, stream, partition)
            .map(|(offset, _)| offset)
    }

    /// The group's last committed offset for the partition and the metadata committed with it
    /// (empty if none), as Kafka's OffsetFetch answers.
    pub fn committed_offset_with_metadata(
        &self,
        group: &str,
        stream: &str,
        partition: u32,
    ) -> Option<(u64, String)> {
        self.inner
            .offsets
            .lock()
            .get(&(group.to_string(), stream.to_ascii_lowercase(), partition))
            .cloned()
    }

    /// Every group's committed offsets, sorted by group, stream and partition; offsets of
    /// streams deleted since are left out.
    pub fn committed_offsets(&self) -> Vec<crate::GroupOffset> {
        let entries = self.inner.offsets.lock().all();
        let mut out: Vec<crate::GroupOffset> = entries
            .into_iter()
            .filter_map(|((group, key, partition), offset)| {
                let stream = self.stream(&key)?.name;
                Some(crate::GroupOffset {
                    group,
                    stream,
                    partition,
                    offset,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.group, &a.stream, a.partition).cmp(&(&b.group, &b.stream, b.partition))
        });
        out
    }

    /// Deletes old closed segments per the retention settings; returns bytes freed.
    /// The active segment is never deleted. Call it periodically (e.g. every minute).
    pub fn apply_retention(&self, now_ms: i64) -> Result<u64, LogError> {
        let mut freed = 0;
        for s in self.inner.streams_snapshot() {
            for p in &s.partitions {
                freed += p.apply_retention(now_ms, &self.inner.config)?;
            }
        }
        Ok(freed)
    }

    /// fsyncs every partition and the offsets file now (e.g. at shutdown).
    pub fn sync(&self) -> Result<(), LogError> {
        for s in self.inner.streams_snapshot() {
            for p in &s.partitions {
                p.sync()?;
            }
        }
        self.inner.offsets.lock().sync()
    }
}

/// `new_total` must exceed the stream's partition count and stay within `MAX_PARTITIONS`.
fn check_growth(stream: &Stream, new_total: u32) -> Result<(), LogError> {
    let current = stream.partitions.len() as u32;
    if new_total > MAX_PARTITIONS {
        return Err(LogError::InvalidPartitions(new_total));
    }
    if new_total <= current {
        return Err(LogError::PartitionsNotIncreased {
            stream: stream.name.clone(),
            current,
            requested: new_total,
        });
    }
    Ok(())
}

/// Starts the group-commit thread: every `interval` it fsyncs partitions written meanwhile.
fn spawn_syncer(
    inner: Arc<Inner>,
    interval: Duration,
) -> Result<(mpsc::Sender<()>, JoinHandle<()>), LogError> {
    let (tx, rx) = mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("eddy-log-fsync".into())
        .spawn(move || {
            loop {
                let stop = !matches!(rx.recv_timeout(interval), Err(mpsc::RecvTimeoutError::Timeout));
                for s in inner.streams_snapshot() {
                    for p in &s.partitions {
                        if let Err(e) = p.sync_if_dirty() {
                            tracing::error!(stream = %s.name, partition = p.id, error = %e, "group-commit fsync failed; partition refuses appends");
                        }
                    }
                }
                if stop {
                    return;
                }
            }
        })
        .map_err(|e| LogError::io("spawn fsync thread", e))?;
    Ok((tx, handle))
}

impl Drop for Log {
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.syncer.take() {
            drop(tx);
            if handle.join().is_err() {
                tracing::error!("fsync thread panicked");
            }
        }
    }
}
