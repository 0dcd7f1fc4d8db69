//! The store: table map, directory layout, background flusher and the public API.

use std::collections::HashMap;
use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use parking_lot::{Mutex, RwLock};

use crate::query::{StoreSchema, canonicalize_identifiers, to_result};
use crate::table::{Table, sync_dir};
use crate::{QueryResult, Row, StoreConfig, StoreError, TableInfo};

/// Tables by lowercase name, shared with the query catalog and the flusher.
pub(crate) type Tables = Arc<RwLock<HashMap<String, Arc<Table>>>>;

/// Longest accepted table name, in bytes.
const TABLE_NAME_BYTES_MAX: usize = 256;
/// How often the flusher fsyncs WALs and checks tables when nothing wakes it.
const FLUSH_CHECK_MS_MAX: u64 = 100;
/// Prefix of a dropped table's directory while it is being deleted.
const DROPPED_PREFIX: &str = ".dropped-";

/// The analytical store; `Send + Sync`, share it behind an `Arc`.
pub struct Store {
    tables: Tables,
    tables_dir: PathBuf,
    read_only: bool,
    config: StoreConfig,
    /// Serializes table creation and drop so a name maps to one directory.
    create_lock: Mutex<()>,
    ctx: SessionContext,
    /// The flusher thread and the sender that wakes it early; `Drop` drops the sender (the
    /// only one), which ends the thread, then joins it so no flush outlives the store.
    flusher: Option<(SyncSender<()>, JoinHandle<()>)>,
    /// Held open (and exclusively locked) so a second writer cannot open the directory.
    _lock: Option<File>,
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some((wake, thread)) = self.flusher.take() {
            drop(wake);
            if thread.join().is_err() {
                tracing::error!("store flusher panicked");
            }
            // A clean shutdown leaves every acknowledged write on stable storage.
            for t in self.tables.read().values() {
                if let Err(e) = t.sync_wal() {
                    tracing::error!(table = %t.name, error = %e, "WAL fsync at close failed");
                }
            }
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.tables_dir)
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, recovering Parquet files and WALs.
    pub fn open(dir: &Path, config: StoreConfig) -> Result<Store, StoreError> {
        Store::open_with(dir, config, false)
    }

    /// Opens the store for queries only (for `eddy query --data-dir` while nothing writes);
    /// nothing on disk is changed.
    pub fn open_read_only(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, StoreConfig::default(), true)
    }

    fn open_with(dir: &Path, config: StoreConfig, read_only: bool) -> Result<Store, StoreError> {
        // Absolute, because Parquet files are scanned through `file://` URLs.
        let dir = &std::path::absolute(dir).map_err(|e| StoreError::io(dir, e))?;
        let tables_dir = dir.join("tables");
        let lock = if read_only {
            None
        } else {
            fs::create_dir_all(&tables_dir).map_err(|e| StoreError::io(&tables_dir, e))?;
            Some(lock_dir(dir)?)
        };
        let mut map = HashMap::new();
        if tables_dir.exists() {
            for entry in fs::read_dir(&tables_dir).map_err(|e| StoreError::io(&tables_dir, e))? {
                let path = entry.map_err(|e| StoreError::io(&tables_dir, e))?.path();
                let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if file_name.starts_with(DROPPED_PREFIX) {
                    if !read_only {
                        fs::remove_dir_all(&path).map_err(|e| StoreError::io(&path, e))?;
                    }
                    continue;
                }
                let Some(name) = decode_name(file_name) else {
                    tracing::warn!(path = %path.display(), "ignoring unknown entry in the tables directory");
                    continue;
                };
                let table = Table::open(path, name.clone(), read_only)?;
                map.insert(name.to_lowercase(), Arc::new(table));
            }
        }
        let tables: Tables = Arc::new(RwLock::new(map));
        let ctx = session(&tables)?;
        let flusher = if read_only {
            None
        } else {
            Some(spawn_flusher(Arc::downgrade(&tables), config.clone())?)
        };
        tracing::info!(dir = %dir.display(), tables = tables.read().len(), read_only, "store opened");
        Ok(Store {
            tables,
            tables_dir,
            read_only,
            config,
            create_lock: Mutex::new(()),
            ctx,
            flusher,
            _lock: lock,
        })
    }

    /// Appends rows to `table`, creating it on first write; visible to queries on return.
    pub fn write(&self, table: &str, rows: &[Row]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let t = self.table_for_write(table, rows)?;
        t.write(None, rows)?;
        self.nudge_flusher(&t);
        Ok(())
    }

    /// Idempotent append for exactly-once jobs: row `i` has seq `first_seq + i`; rows at or
    /// below `writer`'s last recorded seq are skipped. Returns the number of rows written.
    pub fn write_from(
        &self,
        table: &str,
        writer: &str,
        first_seq: u64,
        rows: &[Row],
    ) -> Result<usize, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let t = self.table_for_write(table, rows)?;
        let written = t.write(Some((writer, first_seq)), rows)?;
        self.nudge_flusher(&t);
        Ok(written)
    }

    /// The last seq recorded for `writer` on `table`, to resume an exactly-once job.
    pub fn last_seq(&self, table: &str, writer: &str) -> Option<u64> {
        self.tables
            .read()
            .get(&table.to_lowercase())?
            .last_seq(writer)
    }

    /// Runs one SQL query (SELECT, EXPLAIN; no DDL or DML) over all tables.
    pub async fn query(&self, sql: &str) -> Result<QueryResult, StoreError> {
        let sql = canonicalize_identifiers(sql, self.known_names())?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let sql_err = crate::query::sql_error;
        let frame = self
            .ctx
            .sql_with_options(&sql, options)
            .await
            .map_err(sql_err)?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await.map_err(sql_err)?;
        to_result(&schema, &batches)
    }

    /// Every table with its row count and columns, sorted by name.
    pub fn tables(&self) -> Vec<TableInfo> {
        let mut infos: Vec<TableInfo> = self.tables.read().values().map(|t| t.info()).collect();
        infos.sort_by_key(|t| t.name.to_lowercase());
        infos
    }

    /// Writes every table's in-memory rows to Parquet and trims the WALs.
    pub fn flush(&self) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        let tables: Vec<Arc<Table>> = self.tables.read().values().cloned().collect();
        tables.iter().try_for_each(|t| t.flush())
    }

    /// Deletes a table and its files.
    pub fn drop_table(&self, table: &str) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        let _creating = self.create_lock.lock();
        let t = self
            .tables
            .write()
            .remove(&table.to_lowercase())
            .ok_or_else(|| StoreError::NoSuchTable(table.to_string()))?;
        let dir = t.mark_dropped();
        let Some(file_name) = dir.file_name().and_then(|n| n.to_str()) else {
            return Err(StoreError::Invalid(format!(
                "bad table directory {}",
                dir.display()
            )));
        };
        // Rename first so a crash mid-delete cannot leave a half-deleted table that reopens.
        let trash = self.tables_dir.join(format!("{DROPPED_PREFIX}{file_name}"));
        fs::rename(dir, &trash).map_err(|e| StoreError::io(dir, e))?;
        sync_dir(&self.tables_dir)?;
        fs::remove_dir_all(&trash).map_err(|e| StoreError::io(&trash, e))?;
        tracing::info!(table = %t.name, "table dropped");
        Ok(())
    }

    /// The table to write `rows` to, created if the rows are acceptable.
    fn table_for_write(&self, name: &str, rows: &[Row]) -> Result<Arc<Table>, StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        let key = name.to_lowercase();
        if let Some(t) = self.tables.read().get(&key) {
            return Ok(t.clone());
        }
        validate_name(name)?;
        crate::rows::rows_to_batch(rows)?; // a rejected first write must not leave a table behind
        let _creating = self.create_lock.lock();
        if let Some(t) = self.tables.read().get(&key) {
            return Ok(t.clone());
        }
        let dir = self.tables_dir.join(encode_name(name));
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        sync_dir(&self.tables_dir)?;
        let table = Arc::new(Table::create(dir, name.to_string())?);
        self.tables.write().insert(key, table.clone());
        tracing::info!(table = name, "table created");
        Ok(table)
    }

    fn nudge_flusher(&self, table: &Table) {
        if let Some((wake, _)) = &self.flusher
            && table.mem_rows() >= self.config.flush_rows
        {
            match wake.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => tracing::error!("store flusher is gone"),
            }
        }
    }

    fn known_names(&self) -> HashMap<String, String> {
        let mut names = HashMap::new();
        let tables: Vec<Arc<Table>> = self.tables.read().values().cloned().collect();
        for t in &tables {
            names
                .entry(t.name.to_lowercase())
                .or_insert_with(|| t.name.clone());
        }
        for t in &tables {
            for (column, _) in t.info().columns {
                names.entry(column.to_lowercase()).or_insert(column);
            }
        }
        names
    }
}

fn session(tables: &Tables) -> Result<SessionContext, StoreError> {
    let mut config = SessionConfig::new().with_information_schema(true);
    // Column names keep their case; `canonicalize_identifiers` makes unquoted ones match.
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let ctx = SessionContext::new_with_config(config);
    let catalog = MemoryCatalogProvider::new();
    catalog
        .register_schema(
            "public",
            Arc::new(StoreSchema {
                tables: tables.clone(),
            }),
        )
        .map_err(|e| StoreError::Sql(e.to_string()))?;
    ctx.register_catalog("datafusion", Arc::new(catalog));
    Ok(ctx)
}

/// Runs on its own thread: flushes tables that are due until the store is dropped.
fn spawn_flusher(
    tables: Weak<RwLock<HashMap<String, Arc<Table>>>>,
    config: StoreConfig,
) -> Result<(SyncSender<()>, JoinHandle<()>), StoreError> {
    let (wake, woken) = sync_channel(1);
    let tick = Duration::from_millis(config.flush_interval_ms.clamp(1, FLUSH_CHECK_MS_MAX));
    let thread = std::thread::Builder::new()
        .name("eddy-store-flush".into())
        .spawn(move || flush_loop(&tables, &config, &woken, tick))
        .map_err(|e| StoreError::io(Path::new("eddy-store-flush thread"), e))?;
    Ok((wake, thread))
}

/// Takes the directory's write lock; the OS releases it when the process dies.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("store.lock");
    let file = File::create(&path).map_err(|e| StoreError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Locked(dir.to_path_buf())),
        Err(TryLockError::Error(e)) => Err(StoreError::io(&path, e)),
    }
}

fn flush_loop(
    tables: &Weak<RwLock<HashMap<String, Arc<Table>>>>,
    config: &StoreConfig,
    woken: &Receiver<()>,
    tick: Duration,
) {
    loop {
        match woken.recv_timeout(tick) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(tables) = tables.upgrade() else {
            return;
        };
        let all: Vec<Arc<Table>> = tables.read().values().cloned().collect();
        drop(tables);
        for t in all {
            if t.flush_due(config.flush_rows, config.flush_interval_ms) {
                if let Err(e) = t.flush() {
                    tracing::error!(table = %t.name, error = %e, "flush failed; rows stay in the WAL");
                }
            } else if let Err(e) = t.sync_wal() {
                tracing::error!(table = %t.name, error = %e, "WAL fsync failed");
            }
        }
    }
}

fn validate_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > TABLE_NAME_BYTES_MAX || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "table name must be 1..={TABLE_NAME_BYTES_MAX} bytes without control characters: {name:?}"
        )));
    }
    Ok(())
}

/// Directory name for a table: ASCII letters, digits, `_` and `-` kept, other bytes `%XX`.
fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_name(file_name: &str) -> Option<String> {
    let bytes = file_name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|n| !n.is_empty())
}
