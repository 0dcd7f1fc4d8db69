//! One table: schema, in-memory batches, Parquet files and writer seqs, plus its WAL.
//!
//! Files in the table directory: `wal-<lsn>.log` segments (see `wal.rs`) and
//! `part-<n>.parquet` files whose key-value metadata holds `eddy.lsn` (the last WAL record
//! the file covers) and `eddy.writers` (every writer's last seq at that point, as JSON).

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;
use parking_lot::Mutex;

use crate::rows::{adapt, merge_schema, rows_to_batch, type_name};
use crate::wal::{self, Wal};
use crate::{Row, StoreError, TableInfo};

const META_LSN: &str = "eddy.lsn";
const META_WRITERS: &str = "eddy.writers";
/// Trailing batches smaller than this are merged so many tiny writes do not slow queries.
const SMALL_BATCH_ROWS: usize = 8192;
/// How many small trailing batches accumulate before they are merged into one.
const SMALL_BATCHES_MAX: usize = 32;

/// A table shared by writers, queries and the flusher.
#[derive(Debug)]
pub(crate) struct Table {
    /// Name as first written.
    pub name: String,
    dir: PathBuf,
    state: Mutex<State>,
    /// Serializes flushes (and drop) so only one Parquet file is in flight per table.
    flush_lock: Mutex<()>,
}

#[derive(Debug)]
struct State {
    schema: SchemaRef,
    /// Rows not yet in Parquet, all in `schema`.
    batches: Vec<RecordBatch>,
    /// `batches[..frozen]` are being written to Parquet and must not be merged.
    frozen: usize,
    mem_rows: usize,
    files: Vec<(PathBuf, u64)>,
    file_rows: u64,
    writers: HashMap<String, u64>,
    next_lsn: u64,
    next_file_no: u64,
    /// `None` when the store is read-only.
    wal: Option<Wal>,
    /// Older WAL segments, deleted once a Parquet file covers them.
    segments: Vec<PathBuf>,
    oldest_unflushed: Option<Instant>,
    dropped: bool,
}

/// What a query reads: a consistent list of batches and files.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub files: Vec<PathBuf>,
}

/// Schema change computed before a write is logged, applied after.
type Evolution = Option<(SchemaRef, Vec<RecordBatch>)>;

impl State {
    fn prepare(&self, batch: &RecordBatch) -> Result<(Evolution, RecordBatch), StoreError> {
        match merge_schema(&self.schema, &batch.schema()) {
            None => Ok((None, adapt(batch, &self.schema)?)),
            Some(schema) => {
                let old = self
                    .batches
                    .iter()
                    .map(|b| adapt(b, &schema))
                    .collect::<Result<_, _>>()?;
                let batch = adapt(batch, &schema)?;
                Ok((Some((schema, old)), batch))
            }
        }
    }

    fn commit(
        &mut self,
        evolution: Evolution,
        batch: RecordBatch,
        writer: Option<(&str, u64)>,
        lsn: u64,
    ) {
        if let Some((schema, batches)) = evolution {
            self.schema = schema;
            self.batches = batches;
        }
        self.mem_rows += batch.num_rows();
        self.batches.push(batch);
        self.merge_small_batches();
        if let Some((name, seq)) = writer {
            self.writers.insert(name.to_string(), seq);
        }
        self.next_lsn = lsn + 1;
        self.oldest_unflushed.get_or_insert_with(Instant::now);
    }

    fn merge_small_batches(&mut self) {
        let tail = self.batches[self.frozen..]
            .iter()
            .rev()
            .take_while(|b| b.num_rows() < SMALL_BATCH_ROWS)
            .count();
        if tail < SMALL_BATCHES_MAX {
            return;
        }
        let start = self.batches.len() - tail;
        match concat_batches(&self.schema, &self.batches[start..]) {
            Ok(merged) => {
                self.batches.truncate(start);
                self.batches.push(merged);
            }
            Err(e) => tracing::warn!(error = %e, "cannot merge small batches"),
        }
    }
}

impl Table {
    /// Creates an empty table in `dir` (which must exist).
    pub(crate) fn create(dir: PathBuf, name: String) -> Result<Table, StoreError> {
        let wal = Wal::open(&dir, 1)?;
        Ok(Table::new(dir, name, State::empty(Some(wal))))
    }

    fn new(dir: PathBuf, name: String, state: State) -> Table {
        Table {
            name,
            dir,
            state: Mutex::new(state),
            flush_lock: Mutex::new(()),
        }
    }

    /// Recovers a table from its Parquet files and WAL segments.
    pub(crate) fn open(dir: PathBuf, name: String, read_only: bool) -> Result<Table, StoreError> {
        let mut files = Vec::new();
        let mut segments = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))? {
            let path = entry.map_err(|e| StoreError::io(&dir, e))?.path();
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(lsn) = wal::segment_lsn(file_name) {
                segments.push((lsn, path));
            } else if let Some(no) = part_no(file_name) {
                files.push((no, path));
            } else if file_name.ends_with(".tmp") && !read_only {
                // A flush died before its rename; the WAL still holds these rows.
                fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            }
        }
        files.sort();
        segments.sort();
        let mut st = State::empty(None);
        let mut covered = 0u64;
        for (no, path) in files {
            let meta = read_part_meta(&path)?;
            if let Some(schema) = merge_schema(&st.schema, &meta.schema) {
                st.schema = schema;
            }
            covered = covered.max(meta.lsn);
            for (w, seq) in meta.writers {
                let last = st.writers.entry(w).or_insert(seq);
                *last = (*last).max(seq);
            }
            st.file_rows += meta.rows;
            st.files.push((path, meta.rows));
            st.next_file_no = no + 1;
        }
        let mut last_lsn = covered;
        for (_, path) in segments {
            let records = wal::read_segment(&path, read_only)?;
            let live = records.iter().any(|r| r.lsn > covered);
            for record in records.into_iter().filter(|r| r.lsn > covered) {
                let batch = rows_to_batch(&record.rows)?;
                let (evolution, batch) = st.prepare(&batch)?;
                let writer = record.writer.as_ref().map(|(w, s)| (w.as_str(), *s));
                st.commit(evolution, batch, writer, record.lsn);
                last_lsn = last_lsn.max(record.lsn);
            }
            if live || read_only {
                st.segments.push(path);
            } else {
                fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            }
        }
        st.next_lsn = last_lsn + 1;
        if !read_only {
            st.wal = Some(Wal::open(&dir, st.next_lsn)?);
        }
        tracing::debug!(table = %name, rows = st.file_rows + st.mem_rows as u64, "table recovered");
        Ok(Table::new(dir, name, st))
    }

    /// Logs and applies one write; with a writer, rows at or below its last seq are skipped.
    /// Returns the number of rows written.
    pub(crate) fn write(
        &self,
        writer: Option<(&str, u64)>,
        rows: &[Row],
    ) -> Result<usize, StoreError> {
        loop {
            let last = writer.and_then(|(name, _)| self.state.lock().writers.get(name).copied());
            let skip = match (writer, last) {
                (Some((_, first)), Some(last)) if last >= first => {
                    usize::try_from(last - first + 1)
                        .unwrap_or(usize::MAX)
                        .min(rows.len())
                }
                _ => 0,
            };
            let rows = &rows[skip..];
            if rows.is_empty() {
                return Ok(0);
            }
            let new_last = match writer {
                None => None,
                Some((name, first)) => {
                    let seq = first
                        .checked_add((skip + rows.len() - 1) as u64)
                        .ok_or_else(|| StoreError::Invalid("writer seq overflows u64".into()))?;
                    Some((name, seq))
                }
            };
            let batch = rows_to_batch(rows)?;
            let mut frame = wal::encode(new_last, rows)?;
            let mut st = self.state.lock();
            if let Some((name, _)) = writer
                && st.writers.get(name).copied() != last
            {
                continue; // another write by the same writer won the race; recompute the skip
            }
            if st.dropped {
                return Err(StoreError::NoSuchTable(self.name.clone()));
            }
            let (evolution, batch) = st.prepare(&batch)?;
            let lsn = st.next_lsn;
            wal::seal(&mut frame, lsn);
            st.wal
                .as_mut()
                .ok_or(StoreError::ReadOnly)?
                .append(&frame)?;
            st.commit(evolution, batch, new_last, lsn);
            return Ok(rows.len());
        }
    }

    /// The writer's last recorded seq.
    pub(crate) fn last_seq(&self, writer: &str) -> Option<u64> {
        self.state.lock().writers.get(writer).copied()
    }

    /// Whether the flusher should flush now.
    pub(crate) fn flush_due(&self, flush_rows: usize, interval_ms: u64) -> bool {
        let st = self.state.lock();
        st.mem_rows > 0
            && (st.mem_rows >= flush_rows
                || st
                    .oldest_unflushed
                    .is_some_and(|t| t.elapsed().as_millis() >= u128::from(interval_ms)))
    }

    /// Fsyncs the WAL if writes arrived since the last sync: one fsync covers them all.
    pub(crate) fn sync_wal(&self) -> Result<(), StoreError> {
        let pending = self.state.lock().wal.as_ref().and_then(Wal::unsynced);
        let Some((file, path, len)) = pending else {
            return Ok(());
        };
        file.sync_data().map_err(|e| StoreError::io(&path, e))?;
        if let Some(wal) = self.state.lock().wal.as_mut()
            && wal.path() == path
        {
            wal.mark_synced(len);
        }
        Ok(())
    }

    /// Unflushed rows, so writers can wake the flusher.
    pub(crate) fn mem_rows(&self) -> usize {
        self.state.lock().mem_rows
    }

    /// Writes the in-memory rows as one Parquet file and deletes the WAL segments it covers.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        let _flushing = self.flush_lock.lock();
        let (batches, schema, lsn, writers, path, old_segments) = {
            let mut st = self.state.lock();
            if st.batches.is_empty() || st.dropped {
                return Ok(());
            }
            let writers =
                serde_json::to_string(&st.writers).map_err(|e| StoreError::Data(e.to_string()))?;
            let current = st
                .wal
                .as_ref()
                .ok_or(StoreError::ReadOnly)?
                .path()
                .to_path_buf();
            // Right after recovery the current segment is already `wal-<next lsn>` and empty
            // (the rows came from older segments): it stays, and only those older ones go.
            if current != wal::segment_path(&self.dir, st.next_lsn) {
                st.wal = Some(Wal::open(&self.dir, st.next_lsn)?);
                st.segments.push(current);
            }
            st.frozen = st.batches.len();
            let path = self
                .dir
                .join(format!("part-{:010}.parquet", st.next_file_no));
            st.next_file_no += 1;
            (
                st.batches.clone(),
                st.schema.clone(),
                st.next_lsn - 1,
                writers,
                path,
                std::mem::take(&mut st.segments),
            )
        };
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if let Err(e) = write_part(&path, &schema, &batches, lsn, writers) {
            let mut st = self.state.lock();
            st.frozen = 0;
            st.segments.extend(old_segments);
            return Err(e);
        }
        {
            let mut st = self.state.lock();
            st.batches.drain(..batches.len());
            st.frozen = 0;
            st.mem_rows -= rows;
            st.files.push((path, rows as u64));
            st.file_rows += rows as u64;
            st.oldest_unflushed = if st.batches.is_empty() {
                None
            } else {
                Some(Instant::now())
            };
        }
        for segment in &old_segments {
            fs::remove_file(segment).map_err(|e| StoreError::io(segment, e))?;
        }
        sync_dir(&self.dir)?;
        tracing::debug!(table = %self.name, rows, lsn, "flushed to Parquet");
        Ok(())
    }

    /// Marks the table dropped (later writes fail) once no flush is in flight; returns its dir.
    pub(crate) fn mark_dropped(&self) -> &Path {
        let _flushing = self.flush_lock.lock();
        self.state.lock().dropped = true;
        &self.dir
    }

    /// Batches and files for a query, taken under the lock.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let st = self.state.lock();
        Snapshot {
            schema: st.schema.clone(),
            batches: st.batches.clone(),
            files: st.files.iter().map(|(p, _)| p.clone()).collect(),
        }
    }

    /// Name, row count and columns.
    pub(crate) fn info(&self) -> TableInfo {
        let st = self.state.lock();
        TableInfo {
            name: self.name.clone(),
            rows: st.file_rows + st.mem_rows as u64,
            columns: st
                .schema
                .fields()
                .iter()
                .map(|f| (f.name().clone(), type_name(f.data_type()).to_string()))
                .collect(),
        }
    }
}

impl State {
    fn empty(wal: Option<Wal>) -> State {
        State {
            schema: Arc::new(Schema::empty()),
            batches: Vec::new(),
            frozen: 0,
            mem_rows: 0,
            files: Vec::new(),
            file_rows: 0,
            writers: HashMap::new(),
            next_lsn: 1,
            next_file_no: 1,
            wal,
            segments: Vec::new(),
            oldest_unflushed: None,
            dropped: false,
        }
    }
}

fn part_no(file_name: &str) -> Option<u64> {
    file_name
        .strip_prefix("part-")?
        .strip_suffix(".parquet")?
        .parse()
        .ok()
}

/// Writes a Parquet file crash-safely: temp name, fsync, rename, fsync of the directory.
fn write_part(
    path: &Path,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    lsn: u64,
    writers: String,
) -> Result<(), StoreError> {
    let tmp = path.with_extension("parquet.tmp");
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(Some(vec![
                KeyValue::new(META_LSN.to_string(), lsn.to_string()),
                KeyValue::new(META_WRITERS.to_string(), writers),
            ]))
            .build();
        let data_err =
            |e: datafusion::parquet::errors::ParquetError| StoreError::Data(e.to_string());
        let mut writer =
            ArrowWriter::try_new(&file, schema.clone(), Some(props)).map_err(data_err)?;
        for batch in batches {
            writer.write(batch).map_err(data_err)?;
        }
        writer.close().map_err(data_err)?;
        file.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Makes renames, creations and deletions in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

struct PartMeta {
    rows: u64,
    schema: SchemaRef,
    lsn: u64,
    writers: HashMap<String, u64>,
}

fn read_part_meta(path: &Path) -> Result<PartMeta, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(e.to_string()))?;
    let meta = builder.metadata().file_metadata();
    let kv = |key: &str| {
        meta.key_value_metadata()
            .and_then(|kvs| kvs.iter().find(|kv| kv.key == key))
            .and_then(|kv| kv.value.clone())
    };
    let lsn = kv(META_LSN)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(format!("missing {META_LSN}")))?;
    let writers = match kv(META_WRITERS) {
        Some(v) => serde_json::from_str(&v).map_err(|e| corrupt(e.to_string()))?,
        None => HashMap::new(),
    };
    Ok(PartMeta {
        rows: meta.num_rows().max(0) as u64,
        schema: builder.schema().clone(),
        lsn,
        writers,
    })
}
