//! One segment: `<base>.log` holds whole batches back to back, `<base>.index` a sparse index.
//!
//! The index has one 24-byte entry (offset u64, position u64, max timestamp of the batches
//! before it i64, little-endian) for the segment's first batch and then for the first batch
//! after every `INDEX_INTERVAL_BYTES` of log. It is only a hint: recovery validates it and
//! rebuilds what is missing, so it is never fsynced on the append path.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::LogError;
use crate::batch::{self, BatchHeader, HEADER_LEN};

/// Log bytes between index entries: a lookup then reads at most this much before its target.
const INDEX_INTERVAL_BYTES: u64 = 4096;
const INDEX_ENTRY_LEN: usize = 24;
/// A scan's first pread(2) covers the index interval plus a typical batch, so a small read costs
/// one small syscall; each further one doubles, up to the max, so long scans cost few syscalls.
const FIRST_READ_BYTES: usize = 2 * INDEX_INTERVAL_BYTES as usize;
const MAX_READ_BYTES: usize = 256 << 10;
// A lookup lands at most one interval before its batch; the first read should reach the batch.
const _: () = assert!(FIRST_READ_BYTES >= INDEX_INTERVAL_BYTES as usize + HEADER_LEN);

/// File name of the segment starting at `base_offset`; zero-padded so names sort by offset.
pub(crate) fn log_file_name(base_offset: u64) -> String {
    format!("{base_offset:020}.log")
}

fn index_path(log_path: &Path) -> PathBuf {
    log_path.with_extension("index")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexEntry {
    offset: u64,
    position: u64,
    max_timestamp_before_ms: i64,
}

impl IndexEntry {
    fn encode(&self) -> [u8; INDEX_ENTRY_LEN] {
        let mut b = [0; INDEX_ENTRY_LEN];
        b[0..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..16].copy_from_slice(&self.position.to_le_bytes());
        b[16..24].copy_from_slice(&self.max_timestamp_before_ms.to_le_bytes());
        b
    }
}

/// An open segment and what recovery or appends learnt about it.
pub(crate) struct Segment {
    /// Offset of the first record the segment may hold (from its file name).
    pub base_offset: u64,
    /// Offset after the last batch written.
    pub next_offset: u64,
    /// Bytes of valid batches; the next append writes here.
    pub size: u64,
    /// Largest record timestamp in the segment (`i64::MIN` when empty); drives time retention.
    pub max_timestamp_ms: i64,
    /// Shared with in-flight reads and the fsync thread, which outlive a retention delete safely.
    pub file: Arc<File>,
    /// Path of the `.log` file.
    pub path: PathBuf,
    /// Shared with the fsync thread, which syncs a rolled segment's index off the append path.
    pub index_file: Arc<File>,
    index: Vec<IndexEntry>,
    bytes_since_index: u64,
}

/// What a reader needs to scan one segment without holding the partition lock.
pub(crate) struct ReadPlan {
    pub file: Arc<File>,
    pub path: PathBuf,
    /// First offset wanted in this segment.
    pub from: u64,
    pub start_pos: u64,
    /// Size of the segment when planned; bytes beyond may be a write in progress.
    pub end_pos: u64,
    /// Segment's next offset when planned, consistent with `end_pos`.
    pub next_offset: u64,
}

/// Buffers chunked preads of a file and hands out zero-copy slices.
struct ChunkReader<'a> {
    file: &'a File,
    end: u64,
    buf: Bytes,
    buf_start: u64,
    chunk: usize,
}

impl<'a> ChunkReader<'a> {
    fn new(file: &'a File, end: u64) -> Self {
        ChunkReader {
            file,
            end,
            buf: Bytes::new(),
            buf_start: 0,
            chunk: FIRST_READ_BYTES,
        }
    }

    /// Bytes `pos..pos+len`, or `None` if they extend past `end`.
    fn get(&mut self, pos: u64, len: usize) -> std::io::Result<Option<Bytes>> {
        let want_end = pos + len as u64;
        if want_end > self.end {
            return Ok(None);
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if pos < self.buf_start || want_end > buf_end {
            let n = (len.max(self.chunk) as u64).min(self.end - pos) as usize;
            self.chunk = (self.chunk * 2).min(MAX_READ_BYTES);
            let mut v = vec![0; n];
            self.file.read_exact_at(&mut v, pos)?;
            self.buf = Bytes::from(v);
            self.buf_start = pos;
        }
        let at = (pos - self.buf_start) as usize;
        Ok(Some(self.buf.slice(at..at + len)))
    }
}

/// Why a scan stopped before the end of the file.
struct ScanStop {
    pos: u64,
    reason: &'static str,
}

impl Segment {
    /// Creates a new, empty segment file pair; fails if it already exists.
    pub fn create(dir: &Path, base_offset: u64) -> Result<Segment, LogError> {
        let path = dir.join(log_file_name(base_offset));
        let open_new = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(p)
                .map_err(|e| LogError::io(format!("create {}", p.display()), e))
        };
        let file = open_new(&path)?;
        let index_file = open_new(&index_path(&path))?;
        Ok(Segment {
            base_offset,
            next_offset: base_offset,
            size: 0,
            max_timestamp_ms: i64::MIN,
            file: Arc::new(file),
            path,
            index_file: Arc::new(index_file),
            index: Vec::new(),
            bytes_since_index: 0,
        })
    }

    /// Opens and recovers a segment. With `scan_whole` (the active segment and the one before
    /// it, whose roll fsync may not have run yet) it is CRC-scanned whole; older ones, fsynced
    /// before the next roll, only from their last valid index entry. A torn or garbage tail is
    /// logged and truncated, so it is never served.
    pub fn open(path: PathBuf, base_offset: u64, scan_whole: bool) -> Result<Segment, LogError> {
        let ctx = |what: &str, p: &Path| format!("{what} {}", p.display());
        let open = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
                .map_err(|e| LogError::io(ctx("open", p), e))
        };
        let file = open(&path)?;
        let ipath = index_path(&path);
        let index_file = open(&ipath)?;
        let file_len = file
            .metadata()
            .map_err(|e| LogError::io(ctx("stat", &path), e))?
            .len();
        let loaded = load_index(&index_file, &ipath, base_offset, file_len)?;
        let index_len = index_file
            .metadata()
            .map_err(|e| LogError::io(ctx("stat", &ipath), e))?
            .len();
        let mut seg = Segment {
            base_offset,
            next_offset: base_offset,
            size: 0,
            max_timestamp_ms: i64::MIN,
            file: Arc::new(file),
            path,
            index_file: Arc::new(index_file),
            index: Vec::new(),
            bytes_since_index: 0,
        };
        if let Some(last) = loaded.last().copied().filter(|_| !scan_whole) {
            seg.index = loaded.clone();
            seg.index.pop();
            seg.size = last.position;
            seg.next_offset = last.offset;
            seg.max_timestamp_ms = last.max_timestamp_before_ms;
            // Forces an entry for the batch at `last.position` again, exactly as it was.
            seg.bytes_since_index = INDEX_INTERVAL_BYTES;
        }
        if let Some(stop) = seg.scan_tail(file_len)? {
            tracing::warn!(
                path = %seg.path.display(),
                valid_bytes = stop.pos,
                file_bytes = file_len,
                reason = stop.reason,
                "torn tail in log segment: truncating to the last valid batch"
            );
            seg.file
                .set_len(stop.pos)
                .map_err(|e| LogError::io(ctx("truncate", &seg.path), e))?;
            seg.file
                .sync_all()
                .map_err(|e| LogError::io(ctx("fsync", &seg.path), e))?;
        }
        // Also when the file holds entries past the valid ones, which later appends would not
        // all overwrite.
        if seg.index != loaded || index_len != (loaded.len() * INDEX_ENTRY_LEN) as u64 {
            seg.rewrite_index(&ipath)?;
        }
        Ok(seg)
    }

    /// Walks CRC-checked batches from `self.size` up to `file_len`, indexing them; returns where
    /// and why it stopped early.
    fn scan_tail(&mut self, file_len: u64) -> Result<Option<ScanStop>, LogError> {
        let file = Arc::clone(&self.file);
        let mut reader = ChunkReader::new(&file, file_len);
        let shown = self.path.display().to_string();
        let io = |e| LogError::io(format!("read {shown}"), e);
        while self.size < file_len {
            let pos = self.size;
            let stop = |reason| Ok(Some(ScanStop { pos, reason }));
            let Some(head) = reader.get(pos, HEADER_LEN).map_err(io)? else {
                return stop("incomplete batch header");
            };
            let header = match batch::parse_header(&head) {
                Ok(h) => h,
                Err(reason) => return stop(reason),
            };
            if header.base_offset != self.next_offset {
                return stop("batch base offset does not continue the segment");
            }
            let Some(bytes) = reader.get(pos, header.length as usize).map_err(io)? else {
                return stop("batch extends past the end of the file");
            };
            if !batch::check_crc(&header, &bytes) {
                return stop("batch CRC mismatch");
            }
            self.note_batch(&header, pos);
        }
        Ok(None)
    }

    /// Advances in-memory state past a batch written at `pos`; returns a new index entry, if any.
    fn note_batch(&mut self, header: &BatchHeader, pos: u64) -> Option<IndexEntry> {
        let due = self.index.is_empty() || self.bytes_since_index >= INDEX_INTERVAL_BYTES;
        let entry = due.then_some(IndexEntry {
            offset: header.base_offset,
            position: pos,
            max_timestamp_before_ms: self.max_timestamp_ms,
        });
        if let Some(e) = entry {
            self.index.push(e);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += u64::from(header.length);
        self.size = pos + u64::from(header.length);
        self.next_offset = header.next_offset();
        self.max_timestamp_ms = self.max_timestamp_ms.max(header.max_timestamp_ms);
        entry
    }

    fn rewrite_index(&mut self, ipath: &Path) -> Result<(), LogError> {
        let bytes: Vec<u8> = self.index.iter().flat_map(|e| e.encode()).collect();
        let io = |e| LogError::io(format!("rewrite {}", ipath.display()), e);
        self.index_file.set_len(0).map_err(io)?;
        self.index_file.write_all_at(&bytes, 0).map_err(io)?;
        self.index_file.sync_all().map_err(io)
    }

    /// Writes one encoded batch (its base offset already stamped) with a single pwrite(2).
    pub fn append(&mut self, bytes: &[u8], header: &BatchHeader) -> Result<(), LogError> {
        if let Err(e) = self.file.write_all_at(bytes, self.size) {
            // Drop a partial write so a later append does not leave a hole before it.
            let _ = self.file.set_len(self.size);
            return Err(LogError::io(format!("write {}", self.path.display()), e));
        }
        if let Some(entry) = self.note_batch(header, self.size) {
            let at = ((self.index.len() - 1) * INDEX_ENTRY_LEN) as u64;
            if let Err(e) = self.index_file.write_all_at(&entry.encode(), at) {
                // The index is a hint that recovery rebuilds; the batch itself is safe.
                tracing::warn!(path = %self.path.display(), error = %e, "could not write index entry");
            }
        }
        Ok(())
    }

    /// fsyncs the log file and the index, e.g. before a segment is closed by a roll.
    pub fn sync(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(|e| LogError::io(format!("fsync {}", self.path.display()), e))?;
        self.index_file
            .sync_data()
            .map_err(|e| LogError::io(format!("fsync index of {}", self.path.display()), e))
    }

    /// Plans a read of this segment from `from` (which must be inside it) using the sparse index.
    pub fn plan(&self, from: u64) -> ReadPlan {
        let i = self.index.partition_point(|e| e.offset <= from);
        let start_pos = i.checked_sub(1).map_or(0, |i| self.index[i].position);
        ReadPlan {
            file: Arc::clone(&self.file),
            path: self.path.clone(),
            from,
            start_pos,
            end_pos: self.size,
            next_offset: self.next_offset,
        }
    }

    /// Deletes both files (a retry after a partial failure succeeds); open handles, e.g. reads
    /// in flight, keep working on Unix.
    pub fn remove(&self) -> Result<(), LogError> {
        for p in [self.path.clone(), index_path(&self.path)] {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(LogError::io(format!("delete {}", p.display()), e));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl ReadPlan {
    /// Calls `f` with each CRC-checked batch holding offsets >= `from`, until it returns false;
    /// an `Err` from `f` (a batch that does not decode) becomes `Corrupt` naming file and position.
    pub fn scan(
        &self,
        mut f: impl FnMut(&BatchHeader, Bytes) -> Result<bool, &'static str>,
    ) -> Result<(), LogError> {
        let mut reader = ChunkReader::new(&self.file, self.end_pos);
        let mut pos = self.start_pos;
        let io = |e| LogError::io(format!("read {}", self.path.display()), e);
        let corrupt =
            |pos: u64, why: &str| LogError::corrupt(&self.path, format!("at byte {pos}: {why}"));
        while pos < self.end_pos {
            let head = reader
                .get(pos, HEADER_LEN)
                .map_err(io)?
                .ok_or_else(|| corrupt(pos, "truncated header"))?;
            let header = batch::parse_header(&head).map_err(|why| corrupt(pos, why))?;
            if header.next_offset() > self.from {
                let bytes = reader
                    .get(pos, header.length as usize)
                    .map_err(io)?
                    .ok_or_else(|| corrupt(pos, "truncated batch"))?;
                if !batch::check_crc(&header, &bytes) {
                    return Err(corrupt(pos, "batch CRC mismatch"));
                }
                if !f(&header, bytes).map_err(|why| corrupt(pos, why))? {
                    return Ok(());
                }
            }
            pos += u64::from(header.length);
        }
        Ok(())
    }
}

/// Reads the persisted index, keeping its longest prefix that is consistent with the log file.
fn load_index(
    file: &File,
    path: &Path,
    base_offset: u64,
    log_len: u64,
) -> Result<Vec<IndexEntry>, LogError> {
    let len = file
        .metadata()
        .map_err(|e| LogError::io(format!("stat {}", path.display()), e))?
        .len();
    let mut bytes = vec![0; len as usize];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| LogError::io(format!("read {}", path.display()), e))?;
    let mut out: Vec<IndexEntry> = Vec::new();
    for chunk in bytes.chunks_exact(INDEX_ENTRY_LEN) {
        let word = |i: usize| {
            let mut a = [0; 8];
            a.copy_from_slice(&chunk[i..i + 8]);
            u64::from_le_bytes(a)
        };
        let e = IndexEntry {
            offset: word(0),
            position: word(8),
            max_timestamp_before_ms: word(16) as i64,
        };
        let ok = match out.last() {
            None => e.offset == base_offset && e.position == 0,
            Some(p) => e.offset > p.offset && e.position > p.position,
        };
        if !ok || e.position >= log_len {
            break;
        }
        out.push(e);
    }
    Ok(out)
}
