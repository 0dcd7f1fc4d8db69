//! Folder capture: files dropped into a watched folder become events of a stream, each
//! file exactly once, across restarts and `kill -9`.
//!
//! Per stream, `<data_dir>/folders/<stream>.manifest` records, with an fsync each, a
//! `start` entry (the file's path under the folder and every partition's end offset) before a file's
//! events are appended and a `done` entry after. Every appended record carries the
//! headers `eddy-file` (path under the folder) and `eddy-line`. A file
//! with a `start` and no `done` was cut short by a crash: its records appended since the
//! recorded offsets are found by those headers and only the missing lines are appended.
//! Lines that are not events go to `<stream>-deadletter` with the reason.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use eddy_connectors::folder::{self, FolderScanner, ReadyFile};
use eddy_log::{Log, Record};
use serde::{Deserialize, Serialize};

use crate::ServerError;
use crate::metrics::Metrics;

/// A watched folder and the stream its files feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderSource {
    /// The stream the events go to (created if missing).
    pub stream: String,
    /// The folder watched, subfolders included.
    pub dir: PathBuf,
}

/// Suffix of the stream that receives lines that are not events.
pub const DEAD_LETTER_SUFFIX: &str = "-deadletter";
/// Records per log append, well under the log's batch limit for typical events.
const RECORDS_PER_APPEND: usize = 2000;

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    state: String,
    file: String,
    #[serde(default)]
    ends: Vec<u64>,
    #[serde(default)]
    dead_ends: Vec<u64>,
}

/// One folder's scanner, manifest and ingested-file set.
pub(crate) struct FolderWatcher {
    source: FolderSource,
    scanner: FolderScanner,
    manifest: PathBuf,
    done: HashSet<String>,
    pending: HashMap<String, (Vec<u64>, Vec<u64>)>,
    log: Arc<Log>,
    metrics: Arc<Metrics>,
}

/// A file's identity is its path under the folder: a path is captured once, so a file
/// rewritten after capture is not read again (files are expected not to change once
/// complete; write a new file instead).
fn identity(file: &ReadyFile) -> String {
    file.relative.clone()
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let context = context.into();
    move |e| ServerError::io(context, e)
}

impl FolderWatcher {
    /// Reads the manifest (a torn last line is ignored) and prepares the scanner.
    pub(crate) fn open(
        source: FolderSource,
        data_dir: &Path,
        settle: std::time::Duration,
        log: Arc<Log>,
        metrics: Arc<Metrics>,
    ) -> Result<FolderWatcher, ServerError> {
        eddy_log::validate_stream_name(&source.stream)?;
        let dir = data_dir.join("folders");
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        let manifest = dir.join(format!("{}.manifest", source.stream.to_ascii_lowercase()));
        let mut done = HashSet::new();
        let mut pending = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            // A torn last entry (no newline) is cut off, so the next entry starts clean.
            let whole = text.rfind('\n').map_or(0, |i| i + 1);
            if whole < text.len() {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&manifest)
                    .map_err(io(format!("opening {}", manifest.display())))?;
                file.set_len(whole as u64)
                    .and_then(|()| file.sync_data())
                    .map_err(io(format!("truncating {}", manifest.display())))?;
            }
            for line in text[..whole].lines() {
                let Ok(entry) = serde_json::from_str::<Entry>(line) else {
                    continue;
                };
                if entry.state == "done" {
                    pending.remove(&entry.file);
                    done.insert(entry.file);
                } else {
                    pending.insert(entry.file, (entry.ends, entry.dead_ends));
                }
            }
        }
        Ok(FolderWatcher {
            scanner: FolderScanner::new(&source.dir, settle),
            source,
            manifest,
            done,
            pending,
            log,
            metrics,
        })
    }

    /// Ingests every complete file not ingested before; returns how many files it took.
    pub(crate) fn poll(&mut self) -> Result<usize, ServerError> {
        let mut taken = 0;
        for file in self.scanner.poll() {
            let id = identity(&file);
            if self.done.contains(&id) {
                continue;
            }
            self.ingest(&file, &id)?;
            taken += 1;
        }
        Ok(taken)
    }

    fn write_entry(&self, entry: &Entry) -> Result<(), ServerError> {
        let context = format!("writing {}", self.manifest.display());
        let mut line =
            serde_json::to_vec(entry).map_err(|e| ServerError::Invalid(e.to_string()))?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.manifest)
            .map_err(io(context.clone()))?;
        file.write_all(&line).map_err(io(context.clone()))?;
        file.sync_data().map_err(io(context))
    }

    fn ends(&self, stream: &str) -> Result<Vec<u64>, ServerError> {
        let info = match self.log.stream(stream) {
            Some(info) => info,
            None => self.log.get_or_create_stream(stream)?,
        };
        Ok(info.partitions.iter().map(|p| p.end_offset).collect())
    }

    /// Lines of file `id` already in `stream` after the offsets `ends`.
    fn lines_present(
        &self,
        stream: &str,
        id: &str,
        ends: &[u64],
    ) -> Result<HashSet<u64>, ServerError> {
        let mut lines = HashSet::new();
        for (partition, &from) in ends.iter().enumerate() {
            let mut offset = from;
            loop {
                let records = self.log.read(stream, partition as u32, offset, 4096)?;
                let Some(last) = records.last() else { break };
                offset = last.offset + 1;
                for r in &records {
                    let header =
                        |name: &str| r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
                    if header("eddy-file").is_some_and(|f| f.as_ref() == id.as_bytes())
                        && let Some(line) = header("eddy-line")
                            .and_then(|l| std::str::from_utf8(l).ok()?.parse::<u64>().ok())
                    {
                        lines.insert(line);
                    }
                }
            }
        }
        Ok(lines)
    }

    fn append(&self, stream: &str, id: &str, rows: Vec<(u64, Vec<u8>)>) -> Result<(), ServerError> {
        if rows.is_empty() {
            return Ok(());
        }
        let partitions = self.ends(stream)?.len() as u32;
        let now_ms = crate::jobs::now_ms();
        let mut batches: Vec<Vec<Record>> = (0..partitions).map(|_| Vec::new()).collect();
        let (count, mut bytes) = (rows.len() as u64, 0u64);
        for (line, json) in rows {
            bytes += json.len() as u64;
            let partition = eddy_log::partition_for_key(None, partitions, line);
            batches[partition as usize].push(Record {
                timestamp_ms: now_ms,
                key: None,
                value: Bytes::from(json),
                headers: vec![
                    (
                        "eddy-file".to_string(),
                        Bytes::copy_from_slice(id.as_bytes()),
                    ),
                    ("eddy-line".to_string(), Bytes::from(line.to_string())),
                ],
            });
        }
        for (partition, batch) in batches.iter().enumerate() {
            for chunk in batch.chunks(RECORDS_PER_APPEND) {
                self.log.append(stream, partition as u32, chunk)?;
            }
        }
        self.metrics.record_append(stream, count, bytes, now_ms);
        Ok(())
    }

    fn ingest(&mut self, file: &ReadyFile, id: &str) -> Result<(), ServerError> {
        let stream = self.source.stream.clone();
        let dead = format!("{stream}{DEAD_LETTER_SUFFIX}");
        let (ends, dead_ends, resumed) = match self.pending.remove(id) {
            Some((ends, dead_ends)) => (ends, dead_ends, true),
            None => {
                let entry = Entry {
                    state: "start".into(),
                    file: id.to_string(),
                    ends: self.ends(&stream)?,
                    dead_ends: self.ends(&dead)?,
                };
                self.write_entry(&entry)?;
                (entry.ends, entry.dead_ends, false)
            }
        };
        let (present, dead_present) = if resumed {
            (
                self.lines_present(&stream, id, &ends)?,
                self.lines_present(&dead, id, &dead_ends)?,
            )
        } else {
            (HashSet::new(), HashSet::new())
        };
        let decoded = match folder::decode_file(&file.path, file.kind) {
            Ok(decoded) => decoded,
            Err(e) => {
                // Vanished or unreadable: keep it pending, a later poll retries.
                self.pending.insert(id.to_string(), (ends, dead_ends));
                tracing::warn!(file = %file.path.display(), error = %e, "cannot read a captured file");
                return Ok(());
            }
        };
        let events: Vec<(u64, Vec<u8>)> = decoded
            .events
            .into_iter()
            .map(|e| (e.line as u64, e.json))
            .filter(|(line, _)| !present.contains(line))
            .collect();
        let mut dead_rows = Vec::new();
        for bad in &decoded.bad {
            tracing::warn!(
                file = %file.path.display(),
                line = bad.line,
                reason = %bad.reason,
                "a line of a captured file is not an event; sent to {dead}"
            );
            if dead_present.contains(&(bad.line as u64)) {
                continue;
            }
            let letter = serde_json::json!({
                "source": "folder",
                "file": file.relative,
                "line": bad.line,
                "reason": bad.reason,
                "text": bad.text,
            });
            dead_rows.push((bad.line as u64, letter.to_string().into_bytes()));
        }
        let good = events.len();
        self.append(&stream, id, events)?;
        self.append(&dead, id, dead_rows)?;
        self.log.sync()?;
        self.write_entry(&Entry {
            state: "done".into(),
            file: id.to_string(),
            ends: Vec::new(),
            dead_ends: Vec::new(),
        })?;
        self.done.insert(id.to_string());
        self.metrics
            .record_folder_file(&stream, decoded.bad.len() as u64);
        tracing::info!(file = %file.relative, events = good, bad = decoded.bad.len(), stream = %stream, "captured a file");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn watcher(data: &Path, folder: &Path, log: &Arc<Log>) -> FolderWatcher {
        let source = FolderSource {
            stream: "files".into(),
            dir: folder.to_path_buf(),
        };
        FolderWatcher::open(source, data, Duration::ZERO, log.clone(), Arc::default()).unwrap()
    }

    fn lines_of(log: &Log, stream: &str) -> Vec<String> {
        let mut out = Vec::new();
        for p in 0..log.stream(stream).map_or(0, |s| s.partitions.len() as u32) {
            for r in log.read(stream, p, 0, usize::MAX).unwrap() {
                out.push(String::from_utf8_lossy(&r.value).into_owned());
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_file_cut_short_by_a_crash_is_completed_without_duplicates() {
        let (data, folder) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let log =
            Arc::new(Log::open(&data.path().join("log"), eddy_log::LogConfig::default()).unwrap());
        log.create_stream("files", 2).unwrap();
        std::fs::write(
            folder.path().join("f.ndjson"),
            "{\"n\":1}\n{\"n\":2}\nbad\n{\"n\":3}\n",
        )
        .unwrap();
        // What a crash leaves: a start entry and the first line appended, no done entry.
        let manifest = data.path().join("folders/files.manifest");
        std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
        std::fs::write(&manifest, "{\"state\":\"start\",\"file\":\"f.ndjson\",\"ends\":[0,0],\"dead_ends\":[]}\n{\"state\":\"do").unwrap();
        let record = Record {
            timestamp_ms: 0,
            key: None,
            value: Bytes::from_static(b"{\"n\":1}"),
            headers: vec![
                ("eddy-file".into(), Bytes::from_static(b"f.ndjson")),
                ("eddy-line".into(), Bytes::from_static(b"1")),
            ],
        };
        log.append("files", 1, &[record]).unwrap();
        let mut w = watcher(data.path(), folder.path(), &log);
        assert_eq!(w.poll().unwrap(), 1);
        assert_eq!(
            lines_of(&log, "files"),
            ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]
        );
        let dead = lines_of(&log, "files-deadletter");
        assert_eq!(dead.len(), 1);
        assert!(dead[0].contains("\"line\":3"), "{dead:?}");
        // Done now, also after reopening.
        assert_eq!(w.poll().unwrap(), 0);
        let mut again = watcher(data.path(), folder.path(), &log);
        assert_eq!(again.poll().unwrap(), 0);
        assert_eq!(lines_of(&log, "files").len(), 3);
    }
}
