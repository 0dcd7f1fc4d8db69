//! The write-ahead file of a table: segments `wal-<first lsn>.log` of CRC-checked records.
//!
//! Frame: `len: u32 LE | crc32(payload): u32 LE | payload`. Payload: `lsn: u64`, writer
//! (`0` or `1, name, last seq: u64`), `rows: u32`, then per row `cells: u32` and per cell
//! `name, tag: u8, value`; strings are `len: u32 | UTF-8`. One record per write call.
//! Recovery reads frames until the first short or damaged one and truncates the file there.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Cell, Row, StoreError};

/// Bytes of a frame header (length and CRC).
const HEADER_BYTES: usize = 8;
/// Largest payload accepted; a larger write is refused and a larger frame read is torn.
pub(crate) const RECORD_BYTES_MAX: usize = 256 << 20;

/// One decoded write.
#[derive(Debug)]
pub(crate) struct Record {
    /// Log sequence number, increasing per table.
    pub lsn: u64,
    /// Writer name and its last seq after this write (for `write_from`).
    pub writer: Option<(String, u64)>,
    /// Rows written.
    pub rows: Vec<Row>,
}

/// Encodes a frame whose lsn is patched in by [`seal`] under the table lock.
pub(crate) fn encode(writer: Option<(&str, u64)>, rows: &[Row]) -> Result<Vec<u8>, StoreError> {
    let mut b = vec![0u8; HEADER_BYTES + 8];
    match writer {
        None => b.push(0),
        Some((name, seq)) => {
            b.push(1);
            put_str(&mut b, name);
            b.extend_from_slice(&seq.to_le_bytes());
        }
    }
    b.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    for row in rows {
        b.extend_from_slice(&(row.len() as u32).to_le_bytes());
        for (name, cell) in row {
            put_str(&mut b, name);
            match cell {
                Cell::Null => b.push(0),
                Cell::Bool(v) => b.extend_from_slice(&[1, *v as u8]),
                Cell::Int(v) => {
                    b.push(2);
                    b.extend_from_slice(&v.to_le_bytes());
                }
                Cell::Float(v) => {
                    b.push(3);
                    b.extend_from_slice(&v.to_bits().to_le_bytes());
                }
                Cell::Str(s) => {
                    b.push(4);
                    put_str(&mut b, s);
                }
                Cell::Timestamp(v) => {
                    b.push(5);
                    b.extend_from_slice(&v.to_le_bytes());
                }
                Cell::Json(s) => {
                    b.push(6);
                    put_str(&mut b, s);
                }
            }
        }
    }
    if b.len() - HEADER_BYTES > RECORD_BYTES_MAX {
        return Err(StoreError::Invalid(format!(
            "write of {} bytes exceeds the {RECORD_BYTES_MAX}-byte record limit",
            b.len()
        )));
    }
    Ok(b)
}

/// Writes the lsn, length and CRC into a frame from [`encode`].
pub(crate) fn seal(frame: &mut [u8], lsn: u64) {
    frame[HEADER_BYTES..HEADER_BYTES + 8].copy_from_slice(&lsn.to_le_bytes());
    let payload_len = (frame.len() - HEADER_BYTES) as u32;
    let crc = crc32fast::hash(&frame[HEADER_BYTES..]);
    frame[0..4].copy_from_slice(&payload_len.to_le_bytes());
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// Reads a payload; `None` means it is malformed although its CRC matched.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn record(&mut self) -> Option<Record> {
        let lsn = self.u64()?;
        let writer = match self.u8()? {
            0 => None,
            1 => Some((self.string()?, self.u64()?)),
            _ => return None,
        };
        let row_count = self.u32()? as usize;
        let mut rows = Vec::with_capacity(row_count.min(self.buf.len()));
        for _ in 0..row_count {
            let cell_count = self.u32()? as usize;
            let mut row = Vec::with_capacity(cell_count.min(self.buf.len()));
            for _ in 0..cell_count {
                let name = self.string()?;
                let cell = match self.u8()? {
                    0 => Cell::Null,
                    1 => Cell::Bool(self.u8()? != 0),
                    2 => Cell::Int(self.u64()? as i64),
                    3 => Cell::Float(f64::from_bits(self.u64()?)),
                    4 => Cell::Str(self.string()?),
                    5 => Cell::Timestamp(self.u64()? as i64),
                    6 => Cell::Json(self.string()?),
                    _ => return None,
                };
                row.push((name, cell));
            }
            rows.push(row);
        }
        self.buf.is_empty().then_some(Record { lsn, writer, rows })
    }
}

/// Reads a segment's records; a torn or damaged tail is cut off (the file truncated unless
/// `read_only`). A damaged record whose CRC matches is corruption, not a torn tail.
pub(crate) fn read_segment(path: &Path, read_only: bool) -> Result<Vec<Record>, StoreError> {
    let data = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let Some(frame) = frame_at(&data, pos) else {
            break;
        };
        let record = Reader { buf: frame }
            .record()
            .ok_or_else(|| StoreError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("undecodable record at byte {pos}"),
            })?;
        records.push(record);
        pos += HEADER_BYTES + frame.len();
    }
    if pos < data.len() {
        tracing::warn!(path = %path.display(), valid_bytes = pos, file_bytes = data.len(), "torn WAL tail");
        if !read_only {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| StoreError::io(path, e))?;
            file.set_len(pos as u64)
                .map_err(|e| StoreError::io(path, e))?;
            file.sync_all().map_err(|e| StoreError::io(path, e))?;
        }
    }
    Ok(records)
}

/// The payload of the frame at `pos` if it is complete and its CRC matches.
fn frame_at(data: &[u8], pos: usize) -> Option<&[u8]> {
    let header = data.get(pos..pos + HEADER_BYTES)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    if len > RECORD_BYTES_MAX {
        return None;
    }
    let payload = data.get(pos + HEADER_BYTES..pos + HEADER_BYTES + len)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// Path of the segment whose first record has `lsn`.
pub(crate) fn segment_path(dir: &Path, lsn: u64) -> PathBuf {
    dir.join(format!("wal-{lsn:020}.log"))
}

/// The first lsn encoded in a segment file name, if `name` is one.
pub(crate) fn segment_lsn(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// The segment being appended to.
#[derive(Debug)]
pub(crate) struct Wal {
    path: PathBuf,
    /// Shared with the flusher thread, which fsyncs it without holding the table lock.
    file: Arc<File>,
    len: u64,
    /// Bytes known to be on stable storage.
    synced_len: u64,
    /// Set when a failed append could not be cut off: appending after the garbage would
    /// make those records unreadable, so the segment takes no more writes.
    broken: bool,
}

impl Wal {
    /// Opens (creating if needed) the segment starting at `lsn` for appending.
    pub(crate) fn open(dir: &Path, lsn: u64) -> Result<Wal, StoreError> {
        let path = segment_path(dir, lsn);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        let len = file.metadata().map_err(|e| StoreError::io(&path, e))?.len();
        Ok(Wal {
            path,
            file: Arc::new(file),
            len,
            synced_len: len,
            broken: false,
        })
    }

    /// Path of this segment.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one frame; on failure the partial frame is cut off so later appends stay readable.
    pub(crate) fn append(&mut self, frame: &[u8]) -> Result<(), StoreError> {
        if self.broken {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                reason: "an earlier failed append could not be cut off; reopen the store".into(),
            });
        }
        if let Err(e) = (&*self.file).write_all(frame) {
            if let Err(cut) = self.file.set_len(self.len) {
                tracing::error!(path = %self.path.display(), error = %cut, "cannot cut a failed WAL append");
                self.broken = true;
            }
            return Err(StoreError::io(&self.path, e));
        }
        self.len += frame.len() as u64;
        Ok(())
    }

    /// The file, its path and length when bytes were appended since the last fsync.
    pub(crate) fn unsynced(&self) -> Option<(Arc<File>, PathBuf, u64)> {
        (self.len > self.synced_len).then(|| (self.file.clone(), self.path.clone(), self.len))
    }

    /// Records that the first `len` bytes are on stable storage.
    pub(crate) fn mark_synced(&mut self, len: u64) {
        self.synced_len = self.synced_len.max(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_kind_survives_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let row: Row = vec![
            ("n".into(), Cell::Null),
            ("b".into(), Cell::Bool(true)),
            ("i".into(), Cell::Int(-7)),
            ("f".into(), Cell::Float(-0.25)),
            ("s".into(), Cell::Str("é\"x".into())),
            ("t".into(), Cell::Timestamp(-1)),
            ("j".into(), Cell::Json("[1]".into())),
        ];
        let mut wal = Wal::open(dir.path(), 5).unwrap();
        for (lsn, writer) in [(5, None), (6, Some(("w", u64::MAX)))] {
            let mut frame = encode(writer, std::slice::from_ref(&row)).unwrap();
            seal(&mut frame, lsn);
            wal.append(&frame).unwrap();
        }
        let records = read_segment(&segment_path(dir.path(), 5), false).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].lsn, &records[0].writer), (5, &None));
        assert_eq!(
            (records[1].lsn, &records[1].writer),
            (6, &Some(("w".into(), u64::MAX)))
        );
        assert_eq!(records[1].rows, vec![row]);
    }

    #[test]
    fn a_flipped_bit_ends_the_readable_log_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), 1).unwrap();
        let row: Row = vec![("a".into(), Cell::Int(1))];
        let mut frame = encode(None, &[row]).unwrap();
        for lsn in 1..=3 {
            seal(&mut frame, lsn);
            wal.append(&frame).unwrap();
        }
        let path = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&path).unwrap();
        bytes[frame.len() + HEADER_BYTES + 3] ^= 1; // inside the second record's payload
        fs::write(&path, &bytes).unwrap();
        let records = read_segment(&path, false).unwrap();
        assert_eq!(records.iter().map(|r| r.lsn).collect::<Vec<_>>(), [1]);
        assert_eq!(fs::metadata(&path).unwrap().len(), frame.len() as u64);
    }
}
