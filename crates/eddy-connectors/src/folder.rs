//! A folder as a source: finding complete files under it and decoding them into events.
//!
//! Files are JSON (one object or an array), NDJSON (`.ndjson`, `.jsonl`), CSV with a
//! header row or Avro container files (`.avro`, whose "line" is the record number), each
//! optionally gzip-compressed (`.gz`). A file counts as complete once
//! its size and modification time have not changed for a settle period; names that
//! writers use while writing (`.tmp`, `.part`, `.partial`, `.crdownload`, a leading `.`
//! or a trailing `~`) are never read, so writing elsewhere and renaming in is also safe.
//! Bad lines do not stop a file: they are returned beside the good events, with their
//! line and reason, for a dead-letter stream.

use crate::ndjson;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How a file's bytes become events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object, an array of objects, or NDJSON: what the HTTP API accepts.
    Json,
    /// CSV with a header row naming the fields; every value is a string, as in ASA.
    Csv,
    /// An Avro object container file (schema embedded); each record is an event.
    Avro,
}

/// What the file name says about its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKind {
    /// The content's format.
    pub format: Format,
    /// Whether the bytes are gzip-compressed.
    pub gzip: bool,
}

/// The kind of a file from its extension (case-insensitive); `None` for files to ignore.
pub fn file_kind(path: &Path) -> Option<FileKind> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    if name.starts_with('.') || name.ends_with('~') {
        return None;
    }
    let (stem, gzip) = match name.strip_suffix(".gz") {
        Some(stem) => (stem, true),
        None => (name.as_str(), false),
    };
    let format = match Path::new(stem).extension()?.to_str()? {
        "json" | "ndjson" | "jsonl" => Format::Json,
        "csv" => Format::Csv,
        "avro" => Format::Avro,
        _ => return None,
    };
    Some(FileKind { format, gzip })
}

/// One event of a file, with the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEvent {
    /// 1-based line of the event (of the data row for CSV).
    pub line: usize,
    /// The event as a JSON object.
    pub json: Vec<u8>,
}

/// A part of a file that is not an event, kept for the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line (0 when the whole file is unreadable, e.g. a corrupt gzip stream).
    pub line: usize,
    /// The offending text, cut to a few hundred bytes.
    pub text: String,
    /// Why it is not an event.
    pub reason: String,
}

/// A decoded file: its events in order and what could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Good events, in file order.
    pub events: Vec<FileEvent>,
    /// Bad lines, in file order.
    pub bad: Vec<BadLine>,
}

/// Longest offending text kept with a bad line.
const BAD_TEXT_MAX: usize = 512;

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(BAD_TEXT_MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

/// Reads and decodes a file; only an I/O error fails, bad content lands in [`Decoded::bad`].
pub fn decode_file(path: &Path, kind: FileKind) -> std::io::Result<Decoded> {
    let raw = std::fs::read(path)?;
    let body = if kind.gzip {
        let mut out = Vec::new();
        if let Err(e) = flate2::read::MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut out) {
            return Ok(Decoded {
                events: Vec::new(),
                bad: vec![BadLine {
                    line: 0,
                    text: String::new(),
                    reason: format!("not a readable gzip file: {e}"),
                }],
            });
        }
        out
    } else {
        raw
    };
    Ok(decode_bytes(&body, kind.format))
}

/// Decodes a file's (uncompressed) bytes.
pub fn decode_bytes(body: &[u8], format: Format) -> Decoded {
    match format {
        Format::Json => decode_json(body),
        Format::Csv => decode_csv(body),
        Format::Avro => {
            match crate::formats::decode_payload(crate::formats::EventFormat::Avro, body) {
                Ok(events) => Decoded {
                    events: events
                        .into_iter()
                        .enumerate()
                        .map(|(i, json)| FileEvent { line: i + 1, json })
                        .collect(),
                    bad: Vec::new(),
                },
                Err(e) => Decoded {
                    events: Vec::new(),
                    bad: vec![BadLine {
                        line: 0,
                        text: String::new(),
                        reason: e.to_string(),
                    }],
                },
            }
        }
    }
}

fn decode_json(body: &[u8]) -> Decoded {
    // A well-formed body (object, array or NDJSON) is taken whole.
    if let Ok(events) = ndjson::split_events_with_lines(body) {
        return Decoded {
            events: events
                .into_iter()
                .map(|e| FileEvent {
                    line: e.line,
                    json: e.json.to_vec(),
                })
                .collect(),
            bad: Vec::new(),
        };
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let starts_array = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'[');
    if starts_array {
        let reason = match ndjson::split_events_with_lines(body) {
            Err(e) => format!("line {}: {}", e.line, e.message),
            Ok(_) => "unreadable JSON array".to_string(),
        };
        return Decoded {
            events: Vec::new(),
            bad: vec![BadLine {
                line: 0,
                text: excerpt(body),
                reason: format!("the JSON array is malformed ({reason})"),
            }],
        };
    }
    // NDJSON with bad lines: keep the good ones.
    let mut decoded = Decoded::default();
    for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
        let json = raw.trim_ascii();
        if json.is_empty() {
            continue;
        }
        match ndjson::check_event(json) {
            Ok(()) => decoded.events.push(FileEvent {
                line: index + 1,
                json: json.to_vec(),
            }),
            Err(reason) => decoded.bad.push(BadLine {
                line: index + 1,
                text: excerpt(json),
                reason,
            }),
        }
    }
    decoded
}

fn decode_csv(body: &[u8]) -> Decoded {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(body);
    let mut decoded = Decoded::default();
    let headers = match reader.headers() {
        Ok(h) => h.iter().map(str::to_string).collect::<Vec<_>>(),
        Err(e) => {
            decoded.bad.push(BadLine {
                line: 1,
                text: excerpt(body.split(|&b| b == b'\n').next().unwrap_or_default()),
                reason: format!("unreadable CSV header: {e}"),
            });
            return decoded;
        }
    };
    for record in reader.byte_records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                decoded.bad.push(BadLine {
                    line,
                    text: String::new(),
                    reason: format!("unreadable CSV row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.len() != headers.len() {
            decoded.bad.push(BadLine {
                line,
                text: excerpt(record.as_slice()),
                reason: format!(
                    "{} fields where the header names {}",
                    record.len(),
                    headers.len()
                ),
            });
            continue;
        }
        let mut object = serde_json::Map::with_capacity(headers.len());
        let mut bad_utf8 = false;
        for (name, field) in headers.iter().zip(record.iter()) {
            match std::str::from_utf8(field) {
                Ok(text) => {
                    object.insert(name.clone(), serde_json::Value::String(text.to_string()));
                }
                Err(_) => bad_utf8 = true,
            }
        }
        if bad_utf8 {
            decoded.bad.push(BadLine {
                line,
                text: excerpt(record.as_slice()),
                reason: "a field is not UTF-8".to_string(),
            });
            continue;
        }
        match serde_json::to_vec(&serde_json::Value::Object(object)) {
            Ok(json) => decoded.events.push(FileEvent { line, json }),
            Err(e) => decoded.bad.push(BadLine {
                line,
                text: String::new(),
                reason: e.to_string(),
            }),
        }
    }
    decoded
}

/// A file that has stopped changing, as found by [`FolderScanner::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its path under the watched folder with `/` separators: its identity.
    pub relative: String,
    /// Size in bytes when found complete.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch when found complete.
    pub modified_ns: i128,
    /// Format and compression.
    pub kind: FileKind,
}

/// Watches a folder tree by polling and reports files whose size and modification time
/// held still for the settle period.
#[derive(Debug)]
pub struct FolderScanner {
    root: PathBuf,
    settle: Duration,
    seen: HashMap<PathBuf, (u64, i128, Instant)>,
}

fn nanos(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

impl FolderScanner {
    /// Watches `root` and its subfolders; a file is ready after `settle` without change.
    pub fn new(root: &Path, settle: Duration) -> FolderScanner {
        FolderScanner {
            root: root.to_path_buf(),
            settle,
            seen: HashMap::new(),
        }
    }

    /// The folder watched.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every supported file that is complete now, sorted by path (each poll reports it
    /// again while it exists; the caller remembers what it ingested). A missing root is
    /// an empty folder.
    pub fn poll(&mut self) -> Vec<ReadyFile> {
        let now = Instant::now();
        let mut present = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                let hidden = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'));
                if meta.is_dir() {
                    if !hidden {
                        stack.push(path);
                    }
                    continue;
                }
                let Some(kind) = file_kind(&path) else {
                    continue;
                };
                let modified = meta.modified().map(nanos).unwrap_or_default();
                present.push((path, meta.len(), modified, kind));
            }
        }
        let mut ready = Vec::new();
        let mut seen = HashMap::with_capacity(present.len());
        for (path, size, modified, kind) in present {
            let since = match self.seen.get(&path) {
                Some(&(s, m, since)) if s == size && m == modified => since,
                _ => now,
            };
            if now.duration_since(since) >= self.settle {
                let relative = path
                    .strip_prefix(&self.root)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                ready.push(ReadyFile {
                    path: path.clone(),
                    relative,
                    size,
                    modified_ns: modified,
                    kind,
                });
            }
            seen.insert(path, (size, modified, since));
        }
        self.seen = seen;
        ready.sort_by(|a, b| a.relative.cmp(&b.relative));
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn kinds_come_from_extensions() {
        let kind = |name: &str| file_kind(Path::new(name));
        assert_eq!(
            kind("a/b.NDJSON"),
            Some(FileKind {
                format: Format::Json,
                gzip: false
            })
        );
        assert_eq!(
            kind("x.csv.gz"),
            Some(FileKind {
                format: Format::Csv,
                gzip: true
            })
        );
        for ignored in [
            "x.csv.tmp",
            "x.json.part",
            ".x.json",
            "x.json~",
            "x.txt",
            "x",
        ] {
            assert_eq!(kind(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn ndjson_keeps_good_lines_and_sets_bad_ones_aside() {
        let d = decode_bytes(b"{\"a\":1}\nnot json\n\n{\"a\":2}\n[1]\n", Format::Json);
        let lines: Vec<usize> = d.events.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 4]);
        let bad: Vec<(usize, &str)> = d.bad.iter().map(|b| (b.line, b.text.as_str())).collect();
        assert_eq!(bad, [(2, "not json"), (5, "[1]")]);
    }

    #[test]
    fn a_json_array_is_all_or_nothing() {
        let good = decode_bytes(b"[{\"a\":1},\n{\"a\":2}]", Format::Json);
        assert_eq!(good.events.len(), 2);
        let bad = decode_bytes(b"[{\"a\":1},\n{\"a\":]", Format::Json);
        assert!(bad.events.is_empty());
        assert_eq!(bad.bad.len(), 1);
        assert!(bad.bad[0].reason.contains("line 2"), "{:?}", bad.bad);
    }

    #[test]
    fn csv_rows_become_objects_of_strings() {
        let d = decode_bytes(b"id,name\n1,\"a, b\"\n2\n3,c\n", Format::Csv);
        let events: Vec<(usize, String)> = d
            .events
            .iter()
            .map(|e| (e.line, String::from_utf8_lossy(&e.json).into_owned()))
            .collect();
        assert_eq!(
            events,
            [
                (2, r#"{"id":"1","name":"a, b"}"#.to_string()),
                (4, r#"{"id":"3","name":"c"}"#.to_string())
            ]
        );
        assert_eq!(d.bad.len(), 1);
        assert_eq!(d.bad[0].line, 3);
    }

    #[test]
    fn gzip_files_are_decompressed_and_corrupt_ones_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.ndjson.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"a\":1}\n{\"a\":2}\n").unwrap();
        let bytes = gz.finish().unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let kind = file_kind(&path).unwrap();
        assert_eq!(decode_file(&path, kind).unwrap().events.len(), 2);
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let d = decode_file(&path, kind).unwrap();
        assert!(d.events.is_empty() && d.bad.len() == 1, "{d:?}");
    }

    #[test]
    fn files_are_ready_only_after_they_stop_changing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let path = dir.path().join("sub/e.json");
        std::fs::write(&path, b"{\"a\":1}").unwrap();
        std::fs::write(dir.path().join("skip.json.tmp"), b"{}").unwrap();
        let mut scanner = FolderScanner::new(dir.path(), Duration::from_millis(150));
        assert!(scanner.poll().is_empty(), "not yet settled");
        std::thread::sleep(Duration::from_millis(200));
        let ready = scanner.poll();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].relative, "sub/e.json");
        // A growing file starts its settle period again.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"\n{\"a\":2}")
            .unwrap();
        assert!(scanner.poll().is_empty());
    }
}
