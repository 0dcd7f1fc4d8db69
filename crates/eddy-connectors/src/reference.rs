//! Reference data files: a table a job joins without a time bound, read whole.
//!
//! The format follows the file name: `.csv` is CSV with a header row (every value a
//! string, as ASA reads CSV reference data); anything else is a JSON array of objects or
//! NDJSON. Each row comes out as the bytes of one JSON object, for the engine to decode.
//! A bad file is refused whole, with its path and the line of the first bad row, so a
//! refresh never installs half a table.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::ndjson;

/// Largest reference file read, so a wrong path cannot exhaust memory.
pub const REFERENCE_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Why a reference file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The file could not be opened or read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A row is not valid for its format.
    #[error("{path}:{line}: {message}")]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based line of the bad row.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file is larger than [`REFERENCE_BYTES_MAX`].
    #[error(
        "{path}: {bytes} bytes is more than the {REFERENCE_BYTES_MAX} a reference file may hold"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
}

/// What identifies one version of a file: a refresh re-reads it when this changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileVersion {
    /// Last modification time.
    pub modified: Option<SystemTime>,
    /// Length in bytes.
    pub len: u64,
}

/// The version of the file at `path` now.
pub fn file_version(path: &Path) -> Result<FileVersion, ReferenceError> {
    let meta = std::fs::metadata(path).map_err(|source| ReferenceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(FileVersion {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

/// Reads a reference file into one JSON object (as bytes) per row.
pub fn read_reference(path: &Path) -> Result<Vec<Vec<u8>>, ReferenceError> {
    let io = |source| ReferenceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::metadata(path).map_err(io)?.len();
    if bytes > REFERENCE_BYTES_MAX {
        return Err(ReferenceError::TooLarge {
            path: path.to_path_buf(),
            bytes,
        });
    }
    let body = std::fs::read(path).map_err(io)?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        parse_csv(path, &body)
    } else {
        parse_json(path, &body)
    }
}

/// A JSON array of objects or NDJSON.
pub fn parse_json(path: &Path, body: &[u8]) -> Result<Vec<Vec<u8>>, ReferenceError> {
    let rows = ndjson::split_events_with_lines(body).map_err(|e| ReferenceError::Row {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })?;
    Ok(rows.into_iter().map(|r| r.json.to_vec()).collect())
}

/// CSV with a header row; every value becomes a JSON string.
pub fn parse_csv(path: &Path, body: &[u8]) -> Result<Vec<Vec<u8>>, ReferenceError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let row_error = |line: usize, message: String| ReferenceError::Row {
        path: path.to_path_buf(),
        line,
        message,
    };
    let line_of = |e: &csv::Error| e.position().map_or(1, |p| p.line() as usize);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| row_error(line_of(&e), e.to_string()))?
        .clone();
    if let Some(i) = headers.iter().position(str::is_empty) {
        return Err(row_error(
            1,
            format!("column {} of the header row has no name", i + 1),
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let message = match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => {
                    format!("this row has {len} field(s), the header row {expected_len}")
                }
                _ => e.to_string(),
            };
            row_error(line_of(&e), message)
        })?;
        let object: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        let json = serde_json::to_vec(&object).map_err(|e| {
            let line = record.position().map_or(1, |p| p.line() as usize);
            row_error(line, e.to_string())
        })?;
        rows.push(json);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(rows: &[Vec<u8>]) -> Vec<String> {
        rows.iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    #[test]
    fn csv_rows_are_string_objects_named_by_the_header() {
        let rows = parse_csv(
            Path::new("r.csv"),
            b"Id,Name\n1,Main St\n2,\"Elm, North\"\n",
        )
        .expect("valid csv");
        assert_eq!(
            text(&rows),
            [
                r#"{"Id":"1","Name":"Main St"}"#,
                r#"{"Id":"2","Name":"Elm, North"}"#
            ]
        );
    }

    #[test]
    fn a_csv_row_with_the_wrong_field_count_names_file_and_line() {
        let err = parse_csv(Path::new("sites.csv"), b"Id,Name\n1,a\n2\n").unwrap_err();
        assert!(err.to_string().starts_with("sites.csv:3: "), "{err}");
    }

    #[test]
    fn json_arrays_and_ndjson_give_one_object_per_row() {
        let array = parse_json(Path::new("r.json"), br#"[{"a":1},{"a":2}]"#).expect("array");
        let lines = parse_json(Path::new("r.json"), b"{\"a\":1}\n{\"a\":2}\n").expect("ndjson");
        assert_eq!(text(&array), text(&lines));
        let err = parse_json(Path::new("r.json"), b"{\"a\":1}\n{\"a\":\n").unwrap_err();
        assert!(err.to_string().starts_with("r.json:2: "), "{err}");
    }
}
