//! A job's files under `<data_dir>/jobs/<name>/`, each replaced atomically
//! (temp file, fsync, rename, fsync of the directory):
//! - `job.json`: the [`JobSpec`] and the sequence base of each output, written once at creation.
//! - `checkpoint.bin`: engine snapshot + next offset per input partition + file sink lengths
//!   + stream sink end offsets.
//!
//! `checkpoint.bin` layout (little-endian): magic `EDDYCKP1`, u32 header length, header JSON,
//! u64 snapshot length, snapshot bytes, u32 CRC-32 of everything before it. A checkpoint that
//! fails any check is an error, never silently ignored: restarting from offset 0 would replay
//! the whole input into sinks that cannot deduplicate.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use serde::{Deserialize, Serialize};

use crate::{JobSpec, ServerError};

const MAGIC: &[u8; 8] = b"EDDYCKP1";
const JOB_FILE: &str = "job.json";
const CHECKPOINT_FILE: &str = "checkpoint.bin";

/// What is persisted once per job: the spec and where each output's sequence numbers start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobFile {
    /// The job as the user posted it.
    pub spec: JobSpec,
    /// Per output (lowercase alias): the store's last sequence for this writer when the job
    /// was created, added to the engine's per-output sequence so that a re-created job of the
    /// same name is not mistaken for a replay of the old one.
    pub seq_base: BTreeMap<String, u64>,
}

/// The header of a checkpoint: where to resume reading, and how long file sinks were.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CheckpointHeader {
    /// (stream, partition, next offset to read).
    pub offsets: Vec<(String, u32, u64)>,
    /// File sink path → its length once everything before this checkpoint was written.
    pub file_lengths: BTreeMap<PathBuf, u64>,
    /// Stream sink → its end offset per partition at this checkpoint.
    #[serde(default)]
    pub stream_ends: BTreeMap<String, Vec<u64>>,
}

/// A decoded checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Checkpoint {
    pub header: CheckpointHeader,
    pub snapshot: Vec<u8>,
}

pub(crate) fn write_job_file(dir: &Path, job: &JobFile) -> Result<(), ServerError> {
    let bytes = serde_json::to_vec_pretty(job).map_err(|e| ServerError::Invalid(e.to_string()))?;
    write_atomic(dir, JOB_FILE, &bytes)
}

pub(crate) fn read_job_file(dir: &Path) -> Result<JobFile, ServerError> {
    let path = dir.join(JOB_FILE);
    let bytes =
        fs::read(&path).map_err(|e| ServerError::io(format!("reading {}", path.display()), e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ServerError::Invalid(format!("{}: {e}", path.display())))
}

pub(crate) fn write_checkpoint(dir: &Path, checkpoint: &Checkpoint) -> Result<(), ServerError> {
    let header =
        serde_json::to_vec(&checkpoint.header).map_err(|e| ServerError::Invalid(e.to_string()))?;
    let header_len = u32::try_from(header.len())
        .map_err(|_| ServerError::Invalid("checkpoint header too large".into()))?;
    let mut out = Vec::with_capacity(header.len() + checkpoint.snapshot.len() + 24);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&(checkpoint.snapshot.len() as u64).to_le_bytes());
    out.extend_from_slice(&checkpoint.snapshot);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    write_atomic(dir, CHECKPOINT_FILE, &out)
}

/// Writes a job's checkpoints on a thread of their own, so that their fsyncs never hold up
/// the job's events (a checkpoint that lands later only means a longer replay after a crash).
/// Newest wins: a checkpoint still waiting when the next one comes is replaced by it.
pub(crate) struct CheckpointWriter {
    shared: Arc<(Mutex<WriterState>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct WriterState {
    pending: Option<Checkpoint>,
    writing: bool,
    closed: bool,
    /// The first failed write, reported by the next `submit` or `flush`.
    failed: Option<ServerError>,
}

impl CheckpointWriter {
    pub fn start(dir: PathBuf, job: &str) -> Result<CheckpointWriter, ServerError> {
        let shared = Arc::new((Mutex::new(WriterState::default()), Condvar::new()));
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ckpt-{job}"))
            .spawn(move || {
                let (state, changed) = &*worker;
                let mut guard = state.lock();
                loop {
                    if let Some(checkpoint) = guard.pending.take() {
                        guard.writing = true;
                        drop(guard);
                        let result = write_checkpoint(&dir, &checkpoint);
                        guard = state.lock();
                        guard.writing = false;
                        if let Err(e) = result {
                            guard.failed.get_or_insert(e);
                        }
                        changed.notify_all();
                    } else if guard.closed {
                        return;
                    } else {
                        changed.wait(&mut guard);
                    }
                }
            })
            .map_err(|e| ServerError::io("spawning a checkpoint thread", e))?;
        Ok(CheckpointWriter {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `checkpoint`; fails if an earlier one could not be written.
    pub fn submit(&self, checkpoint: Checkpoint) -> Result<(), ServerError> {
        let (state, changed) = &*self.shared;
        let mut guard = state.lock();
        if let Some(e) = guard.failed.take() {
            return Err(e);
        }
        guard.pending = Some(checkpoint);
        changed.notify_all();
        Ok(())
    }

    /// Waits until every submitted checkpoint is on disk (a stopping job's last one).
    pub fn flush(&self) -> Result<(), ServerError> {
        let (state, changed) = &*self.shared;
        let mut guard = state.lock();
        while guard.pending.is_some() || guard.writing {
            changed.wait(&mut guard);
        }
        match guard.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        let (state, changed) = &*self.shared;
        state.lock().closed = true;
        changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The last checkpoint, or `None` if the job never wrote one.
pub(crate) fn read_checkpoint(dir: &Path) -> Result<Option<Checkpoint>, ServerError> {
    let path = dir.join(CHECKPOINT_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ServerError::io(format!("reading {}", path.display()), e)),
    };
    decode(&bytes)
        .map(Some)
        .ok_or_else(|| ServerError::Invalid(format!("{} is corrupt", path.display())))
}

fn decode(bytes: &[u8]) -> Option<Checkpoint> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let rest = body.strip_prefix(MAGIC)?;
    let (len, rest) = rest.split_at_checked(4)?;
    let (header, rest) = rest.split_at_checked(u32::from_le_bytes(len.try_into().ok()?) as usize)?;
    let (len, snapshot) = rest.split_at_checked(8)?;
    if u64::from_le_bytes(len.try_into().ok()?) != snapshot.len() as u64 {
        return None;
    }
    Some(Checkpoint {
        header: serde_json::from_slice(header).ok()?,
        snapshot: snapshot.to_vec(),
    })
}

/// Replaces `dir/name` so that a crash leaves either the old or the new content, never a mix.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ServerError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    let io = |what: &str, e| ServerError::io(format!("{what} {}", tmp.display()), e);
    let mut file = File::create(&tmp).map_err(|e| io("creating", e))?;
    file.write_all(bytes).map_err(|e| io("writing", e))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    drop(file);
    fs::rename(&tmp, &target).map_err(|e| io("renaming", e))?;
    // The rename is durable only once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ServerError::io(format!("syncing {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), None);
        let checkpoint = Checkpoint {
            header: CheckpointHeader {
                offsets: vec![("s".into(), 1, 42)],
                file_lengths: BTreeMap::from([(PathBuf::from("/tmp/out.ndjson"), 7)]),
                stream_ends: BTreeMap::from([("alerts".to_string(), vec![3, 0])]),
            },
            snapshot: vec![1, 2, 3, 255],
        };
        write_checkpoint(dir.path(), &checkpoint).unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), Some(checkpoint));

        let path = dir.path().join(CHECKPOINT_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 6;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(read_checkpoint(dir.path()).is_err());
        fs::write(&path, &bytes[..3]).unwrap();
        assert!(read_checkpoint(dir.path()).is_err());
    }
}
