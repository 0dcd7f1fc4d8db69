//! Committed consumer-group offsets: an append-only file of CRC-framed entries, last one wins.
//!
//! Entry: `len u32, crc u32 (CRC-32 of payload), payload` where payload is
//! `group_len u16, group, stream_len u16, stream (lower-case key), partition u32, offset u64`,
//! then, only when the commit carried metadata, `metadata_len u32, metadata (UTF-8)`. An entry
//! without metadata is byte-for-byte the original format, so files written before metadata was
//! kept read the same (with empty metadata).
//! One commit = one write (+ one fsync unless `Never`). Open replays the file, truncates a torn
//! tail and compacts it when mostly superseded; deleting a stream compacts its entries away.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::LogError;
use crate::partition::sync_dir;

/// Offsets are keyed by (group, stream key, partition).
type Key = (String, String, u32);

/// Compact at open once the file is this large and four times the live entries.
const COMPACT_MIN_BYTES: u64 = 1 << 20;

/// Longest commit metadata stored (Kafka's own default limit is 4096 bytes).
pub const MAX_COMMIT_METADATA_BYTES: usize = 64 << 10;

/// An offset as committed, with the metadata string that came with it.
type Committed = (u64, String);

/// The committed offsets, in memory and in `offsets.log`.
pub(crate) struct Offsets {
    path: PathBuf,
    file: File,
    len: u64,
    map: HashMap<Key, Committed>,
    fsync: bool,
}

fn encode(key: &Key, offset: u64, metadata: &str) -> Vec<u8> {
    let (group, stream, partition) = key;
    let mut payload = Vec::with_capacity(20 + group.len() + stream.len() + metadata.len());
    payload.extend_from_slice(&(group.len() as u16).to_le_bytes());
    payload.extend_from_slice(group.as_bytes());
    payload.extend_from_slice(&(stream.len() as u16).to_le_bytes());
    payload.extend_from_slice(stream.as_bytes());
    payload.extend_from_slice(&partition.to_le_bytes());
    payload.extend_from_slice(&offset.to_le_bytes());
    if !metadata.is_empty() {
        payload.extend_from_slice(&(metadata.len() as u32).to_le_bytes());
        payload.extend_from_slice(metadata.as_bytes());
    }
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Decodes one entry at the start of `b`: `Some((key, (offset, metadata), entry_len))`, or
/// `None` if torn.
fn decode(b: &[u8]) -> Option<(Key, Committed, usize)> {
    let len = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?);
    let payload = b.get(8..8 + len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let (group, rest) = split_string(payload)?;
    let (stream, rest) = split_string(rest)?;
    let partition = u32::from_le_bytes(rest.get(0..4)?.try_into().ok()?);
    let offset = u64::from_le_bytes(rest.get(4..12)?.try_into().ok()?);
    let metadata = match rest.get(12..) {
        Some([]) => String::new(),
        Some(tail) => {
            let n = u32::from_le_bytes(tail.get(0..4)?.try_into().ok()?) as usize;
            if tail.len() != 4 + n {
                return None;
            }
            String::from_utf8(tail[4..].to_vec()).ok()?
        }
        None => return None,
    };
    Some(((group, stream, partition), (offset, metadata), 8 + len))
}

/// Splits a `u16`-length-prefixed UTF-8 string off the front of `b`.
fn split_string(b: &[u8]) -> Option<(String, &[u8])> {
    let n = usize::from(u16::from_le_bytes(b.get(0..2)?.try_into().ok()?));
    let s = String::from_utf8(b.get(2..2 + n)?.to_vec()).ok()?;
    Some((s, &b[2 + n..]))
}

impl Offsets {
    /// Replays `<dir>/offsets.log`, truncating a torn tail.
    pub fn open(dir: &Path, fsync: bool) -> Result<Offsets, LogError> {
        let path = dir.join("offsets.log");
        let shown = path.display().to_string();
        let io = |what: &str, e| LogError::io(format!("{what} {shown}"), e);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("open", e))?;
        let file_len = file.metadata().map_err(|e| io("stat", e))?.len();
        let mut bytes = vec![0; file_len as usize];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| io("read", e))?;
        let mut map = HashMap::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let Some((key, committed, n)) = decode(&bytes[pos..]) else {
                break;
            };
            map.insert(key, committed);
            pos += n;
        }
        let mut offsets = Offsets {
            path,
            file,
            len: pos as u64,
            map,
            fsync,
        };
        if offsets.len < file_len {
            tracing::warn!(
                path = %offsets.path.display(),
                valid_bytes = offsets.len,
                file_bytes = file_len,
                "torn tail in committed offsets: truncating"
            );
            offsets
                .file
                .set_len(offsets.len)
                .map_err(|e| io("truncate", e))?;
            offsets.file.sync_all().map_err(|e| io("fsync", e))?;
        }
        let live: u64 = offsets
            .map
            .iter()
            .map(|(k, (_, m))| encode(k, 0, m).len() as u64)
            .sum();
        if offsets.len > COMPACT_MIN_BYTES && offsets.len > 4 * live {
            offsets.compact()?;
        }
        Ok(offsets)
    }

    /// Records a commit; on return it survives `kill -9`, and power loss unless fsync is off.
    pub fn commit(&mut self, key: Key, offset: u64, metadata: &str) -> Result<(), LogError> {
        let entry = encode(&key, offset, metadata);
        let io = |what: &str, e| LogError::io(format!("{what} {}", self.path.display()), e);
        if let Err(e) = self.file.write_all_at(&entry, self.len) {
            let _ = self.file.set_len(self.len);
            return Err(io("write", e));
        }
        self.len += entry.len() as u64;
        if self.fsync {
            self.file.sync_data().map_err(|e| io("fsync", e))?;
        }
        self.map.insert(key, (offset, metadata.to_string()));
        Ok(())
    }

    /// The last committed offset and its metadata for (group, stream key, partition).
    pub fn get(&self, key: &Key) -> Option<&Committed> {
        self.map.get(key)
    }

    /// Every committed (group, stream key, partition) and its offset, for lag reporting.
    pub fn all(&self) -> Vec<(Key, u64)> {
        self.map.iter().map(|(k, (o, _))| (k.clone(), *o)).collect()
    }

    /// Forgets every offset of a deleted stream, durably (so a new stream of that name starts clean).
    pub fn remove_stream(&mut self, stream_key: &str) -> Result<(), LogError> {
        let before = self.map.len();
        self.map.retain(|(_, s, _), _| s != stream_key);
        if self.map.len() == before {
            Ok(())
        } else {
            self.compact()
        }
    }

    /// fsyncs the file now.
    pub fn sync(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(|e| LogError::io(format!("fsync {}", self.path.display()), e))
    }

    /// Rewrites the file with only live entries: write a temp file, fsync, rename over, fsync dir.
    fn compact(&mut self) -> Result<(), LogError> {
        let tmp = self.path.with_extension("log.tmp");
        let io = |what: &str, e| LogError::io(format!("{what} {}", tmp.display()), e);
        let bytes: Vec<u8> = self
            .map
            .iter()
            .flat_map(|(k, (o, m))| encode(k, *o, m))
            .collect();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| io("create", e))?;
        file.write_all_at(&bytes, 0).map_err(|e| io("write", e))?;
        file.sync_all().map_err(|e| io("fsync", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io("rename", e))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        self.file = file;
        self.len = bytes.len() as u64;
        Ok(())
    }
}
