//! One partition: a directory of segments, the last one active.
//!
//! Appends hold the partition mutex for the write (one pwrite) and, under `FsyncPolicy::Always`,
//! the fsync. Reads hold it only to plan (which segment, which file position) and scan outside it.
//! Under `FsyncPolicy::IntervalMs` a roll leaves the closed segment's fsync to the group commit,
//! so no append waits for the disk; at most one closed segment (the one before the active one)
//! is ever waiting, and recovery CRC-scans both whole.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::batch::{self, BatchHeader};
use crate::segment::{ReadPlan, Segment, log_file_name};
use crate::{AppendInfo, FsyncPolicy, LogConfig, LogError, PartitionInfo};

/// A partition of a stream; `Send + Sync`, shared by all tasks that use the stream.
pub(crate) struct Partition {
    /// Partition number.
    pub id: u32,
    state: Mutex<State>,
    /// Publishes the end offset after each append; owned here, so receivers see the channel
    /// close when the stream is deleted and the partition dropped.
    end_tx: watch::Sender<u64>,
}

struct State {
    dir: PathBuf,
    /// Never empty; sorted by base offset; the last one takes appends.
    segments: Vec<Segment>,
    /// Written since the last fsync (group commit).
    dirty: bool,
    /// Set when an fsync failed: the kernel may have dropped those pages, so acknowledging more
    /// appends would promise durability we cannot give. Cleared only by reopening the log.
    failed: Option<String>,
    /// Set by `delete_stream`; later appends fail as if the stream never existed.
    deleted: bool,
    /// A segment closed by a roll whose fsync, and the fsync of the directory entry of the
    /// segment after it, the group commit still owes (`IntervalMs` only).
    unsynced_roll: Option<Rolled>,
}

/// What the group commit needs to make a rolled segment durable without the partition lock.
#[derive(Clone)]
struct Rolled {
    file: Arc<File>,
    index_file: Arc<File>,
    path: PathBuf,
}

impl Rolled {
    /// fsyncs the closed segment, its index and the directory (which names the new segment).
    fn sync(&self, dir: &Path) -> Result<(), LogError> {
        let io = |what: &str| {
            let context = format!("fsync {what}{}", self.path.display());
            move |e| LogError::io(context, e)
        };
        self.file.sync_data().map_err(io(""))?;
        self.index_file.sync_data().map_err(io("index of "))?;
        sync_dir(dir)
    }
}

impl State {
    fn active(&mut self) -> &mut Segment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }
    fn start_offset(&self) -> u64 {
        self.segments[0].base_offset
    }
    fn end_offset(&self) -> u64 {
        self.segments[self.segments.len() - 1].next_offset
    }
}

/// fsyncs a directory so a created, renamed or deleted entry in it survives power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(format!("fsync directory {}", dir.display()), e))
}

impl Partition {
    /// Opens (creating if needed) the partition directory and recovers its segments.
    pub fn open(dir: PathBuf, id: u32, config: &LogConfig) -> Result<Partition, LogError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| LogError::io(format!("create {}", dir.display()), e))?;
        let mut bases = Vec::new();
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| LogError::io(format!("list {}", dir.display()), e))?;
        for entry in entries {
            let path = entry
                .map_err(|e| LogError::io(format!("list {}", dir.display()), e))?
                .path();
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            match (
                path.extension().and_then(|s| s.to_str()),
                stem.parse::<u64>(),
            ) {
                (Some("log"), Ok(base)) if stem.len() == 20 => bases.push(base),
                (Some("index"), Ok(_)) if !path.with_extension("log").exists() => {
                    // Left behind by a crash during a retention delete.
                    let _ = std::fs::remove_file(&path);
                }
                _ => {}
            }
        }
        bases.sort_unstable();
        let mut segments = Vec::with_capacity(bases.len().max(1));
        for (i, &base) in bases.iter().enumerate() {
            // The last closed segment too: its roll fsync may not have run before a power loss.
            let scan_whole = i + 2 >= bases.len();
            let seg = Segment::open(dir.join(log_file_name(base)), base, scan_whole)?;
            if let Some(prev) = segments.last().map(|s: &Segment| s.next_offset)
                && seg.base_offset < prev
            {
                return Err(LogError::corrupt(
                    &seg.path,
                    format!("segment overlaps the previous one ending at {prev}"),
                ));
            }
            segments.push(seg);
        }
        if segments.is_empty() {
            segments.push(Segment::create(&dir, 0)?);
            if config.fsync != FsyncPolicy::Never {
                sync_dir(&dir)?;
            }
        }
        let end = segments[segments.len() - 1].next_offset;
        let (end_tx, _) = watch::channel(end);
        Ok(Partition {
            id,
            state: Mutex::new(State {
                dir,
                segments,
                dirty: false,
                failed: None,
                deleted: false,
                unsynced_roll: None,
            }),
            end_tx,
        })
    }

    /// Appends one encoded batch; returns once it reached the OS (and the disk under `Always`).
    pub fn append(
        &self,
        stream: &str,
        mut bytes: Vec<u8>,
        header: BatchHeader,
        config: &LogConfig,
    ) -> Result<AppendInfo, LogError> {
        let mut st = self.state.lock();
        if st.deleted {
            return Err(LogError::UnknownStream(stream.to_string()));
        }
        if let Some(why) = &st.failed {
            return Err(LogError::io(
                format!(
                    "partition {} of {stream:?} refuses appends after a failed fsync; reopen the log",
                    self.id
                ),
                std::io::Error::other(why.clone()),
            ));
        }
        let base_offset = st.end_offset();
        let len = bytes.len() as u64;
        let active = st.active();
        if active.size > 0 && active.size + len > config.segment_bytes {
            self.roll(&mut st, config)?;
        }
        batch::set_base_offset(&mut bytes, base_offset);
        let header = BatchHeader {
            base_offset,
            ..header
        };
        st.active().append(&bytes, &header)?;
        match config.fsync {
            FsyncPolicy::Always => {
                if let Err(e) = st.active().sync() {
                    st.failed = Some(e.to_string());
                    return Err(e);
                }
            }
            FsyncPolicy::IntervalMs(_) => st.dirty = true,
            FsyncPolicy::Never => {}
        }
        let next_offset = header.next_offset();
        drop(st);
        self.end_tx.send_replace(next_offset);
        Ok(AppendInfo {
            base_offset,
            next_offset,
        })
    }

    /// Closes the active segment and starts a new one at the end offset. The closed segment and
    /// the new directory entry are fsynced here under `Always`, by the next group-commit round
    /// under `IntervalMs` (inline only if the previous roll's is still owed), never under `Never`.
    fn roll(&self, st: &mut State, config: &LogConfig) -> Result<(), LogError> {
        match config.fsync {
            FsyncPolicy::Always => {
                if let Err(e) = st.active().sync() {
                    st.failed = Some(e.to_string());
                    return Err(e);
                }
            }
            FsyncPolicy::IntervalMs(_) => {
                // Rolling faster than the group commit: keep at most one closed segment owed.
                if let Some(prev) = st.unsynced_roll.take()
                    && let Err(e) = prev.sync(&st.dir)
                {
                    st.failed = Some(e.to_string());
                    return Err(e);
                }
            }
            FsyncPolicy::Never => {}
        }
        let closed = {
            let active = st.active();
            Rolled {
                file: Arc::clone(&active.file),
                index_file: Arc::clone(&active.index_file),
                path: active.path.clone(),
            }
        };
        let seg = Segment::create(&st.dir, st.end_offset())?;
        match config.fsync {
            FsyncPolicy::Always => sync_dir(&st.dir)?,
            FsyncPolicy::IntervalMs(_) => {
                st.unsynced_roll = Some(closed);
                st.dirty = true;
            }
            FsyncPolicy::Never => {}
        }
        tracing::debug!(path = %seg.path.display(), "rolled to a new segment");
        st.segments.push(seg);
        Ok(())
    }

    /// Where a read from `from` should start and whether that is the active segment, or `None`
    /// at the end; `OffsetOutOfRange` outside the partition.
    fn plan(&self, from: u64) -> Result<Option<(ReadPlan, bool)>, LogError> {
        let st = self.state.lock();
        let (start, end) = (st.start_offset(), st.end_offset());
        if from < start || from > end {
            return Err(LogError::OffsetOutOfRange {
                offset: from,
                start,
                end,
            });
        }
        if from == end {
            return Ok(None);
        }
        let mut i = st.segments.partition_point(|s| s.base_offset <= from) - 1;
        // A segment truncated by recovery leaves a gap up to the next one: skip it.
        if st.segments[i].next_offset <= from {
            i += 1;
        }
        let seg = &st.segments[i];
        Ok(Some((
            seg.plan(from.max(seg.base_offset)),
            i + 1 == st.segments.len(),
        )))
    }

    /// Feeds `f` every batch holding offsets >= `from`, across segments, until it returns false.
    /// Stops at the end offset seen when it reaches the active segment, so a reader never chases
    /// a writer forever.
    pub fn scan(
        &self,
        from: u64,
        mut f: impl FnMut(&BatchHeader, Bytes) -> Result<bool, &'static str>,
    ) -> Result<(), LogError> {
        let mut next = from;
        let mut first = true;
        loop {
            let (plan, active) = match self.plan(next) {
                Ok(Some(found)) => found,
                Ok(None) => return Ok(()),
                // Retention overtook a read that already returned data: stop there.
                Err(_) if !first => return Ok(()),
                Err(e) => return Err(e),
            };
            first = false;
            let mut more = true;
            plan.scan(|h, b| {
                more = f(h, b)?;
                Ok(more)
            })?;
            if !more || active || plan.next_offset <= next {
                return Ok(());
            }
            next = plan.next_offset;
        }
    }

    /// A receiver of the end offset, updated after every append.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.end_tx.subscribe()
    }

    /// Offsets and size, for `StreamInfo`.
    pub fn info(&self) -> PartitionInfo {
        let st = self.state.lock();
        PartitionInfo {
            partition: self.id,
            start_offset: st.start_offset(),
            end_offset: st.end_offset(),
            bytes: st.segments.iter().map(|s| s.size).sum(),
        }
    }

    /// The group-commit step: fsyncs the active segment if written since the last call, and
    /// first a segment closed by a roll meanwhile.
    pub fn sync_if_dirty(&self) -> Result<(), LogError> {
        let (file, path, rolled, dir) = {
            let mut st = self.state.lock();
            if !std::mem::take(&mut st.dirty) {
                return Ok(());
            }
            let rolled = st.unsynced_roll.clone();
            let dir = st.dir.clone();
            let seg = st.active();
            (Arc::clone(&seg.file), seg.path.clone(), rolled, dir)
        };
        // Outside the lock: appends continue while the disk works; the next round covers them.
        if let Some(rolled) = rolled {
            if let Err(e) = rolled.sync(&dir) {
                return Err(self.sync_failed(e));
            }
            let mut st = self.state.lock();
            // A later roll may have synced it and owe a newer one meanwhile.
            if st
                .unsynced_roll
                .as_ref()
                .is_some_and(|r| r.path == rolled.path)
            {
                st.unsynced_roll = None;
            }
        }
        if let Err(e) = file.sync_data() {
            return Err(self.sync_failed(LogError::io(format!("fsync {}", path.display()), e)));
        }
        Ok(())
    }

    /// Marks the partition as refusing appends after a failed fsync, unless it was deleted
    /// meanwhile (its directory is gone, so a failure there means nothing).
    fn sync_failed(&self, e: LogError) -> LogError {
        let mut st = self.state.lock();
        if !st.deleted {
            st.failed = Some(e.to_string());
        }
        e
    }

    /// fsyncs the active segment, its index and a segment still owed by a roll, now.
    pub fn sync(&self) -> Result<(), LogError> {
        let mut st = self.state.lock();
        st.dirty = false;
        if let Some(rolled) = st.unsynced_roll.take()
            && let Err(e) = rolled.sync(&st.dir)
        {
            st.failed = Some(e.to_string());
            return Err(e);
        }
        if let Err(e) = st.active().sync() {
            st.failed = Some(e.to_string());
            return Err(e);
        }
        Ok(())
    }

    /// Deletes the oldest closed segments beyond `retention_bytes` or older than `retention_ms`;
    /// returns bytes freed. The active segment always stays, so offsets keep counting up.
    pub fn apply_retention(&self, now_ms: i64, config: &LogConfig) -> Result<u64, LogError> {
        let mut st = self.state.lock();
        let mut total: u64 = st.segments.iter().map(|s| s.size).sum();
        let mut freed = 0;
        while st.segments.len() > 1 {
            let seg = &st.segments[0];
            let too_big = config.retention_bytes.is_some_and(|max| total > max);
            let too_old = config
                .retention_ms
                .is_some_and(|ms| seg.max_timestamp_ms < now_ms.saturating_sub(ms));
            if !(too_big || too_old) {
                break;
            }
            seg.remove()?;
            total -= seg.size;
            freed += seg.size;
            tracing::info!(path = %seg.path.display(), bytes = seg.size, too_big, too_old, "retention deleted segment");
            st.segments.remove(0);
        }
        Ok(freed)
    }

    /// Makes every later append fail with `UnknownStream` (the stream is being deleted).
    pub fn mark_deleted(&self) {
        self.state.lock().deleted = true;
    }
}
