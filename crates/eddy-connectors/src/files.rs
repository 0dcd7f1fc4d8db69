//! Events from files and NDJSON lines into files.
//!
//! A source file holds a JSON array of objects or NDJSON (see [`crate::ndjson`]); a sink
//! file receives one JSON object per line, so it can be read back as a source.

use crate::ndjson;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why a file could not be read or written, naming the file (and line for bad events).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The operating system refused the read or write.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a JSON array of objects or NDJSON.
    #[error("{}:{line}: {message}", path.display())]
    BadEvent {
        /// The file concerned.
        path: PathBuf,
        /// 1-based line of the bad event.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads every event of a JSON-array or NDJSON file, as each event's JSON bytes.
pub fn read_events(path: &Path) -> Result<Vec<Vec<u8>>, FileError> {
    let body = std::fs::read(path).map_err(io_error(path))?;
    let events = ndjson::split_events(&body).map_err(|err| FileError::BadEvent {
        path: path.to_path_buf(),
        line: err.line,
        message: err.message,
    })?;
    Ok(events.into_iter().map(<[u8]>::to_vec).collect())
}

/// Appends one JSON document per line to a file; buffered until [`NdjsonSink::flush`].
#[derive(Debug)]
pub struct NdjsonSink {
    path: PathBuf,
    out: BufWriter<File>,
}

impl NdjsonSink {
    /// Opens `path` for appending (creating it), so restarts keep earlier lines.
    pub fn create(path: &Path) -> Result<Self, FileError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_error(path))?;
        Ok(NdjsonSink {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    /// Creates or empties `path`, for one-shot runs whose output must not mix with an
    /// earlier run's.
    pub fn truncate(path: &Path) -> Result<Self, FileError> {
        let file = File::create(path).map_err(io_error(path))?;
        Ok(NdjsonSink {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    /// Writes `json` (one line, without its newline) followed by a newline.
    pub fn write_line(&mut self, json: &[u8]) -> Result<(), FileError> {
        let path = &self.path;
        self.out.write_all(json).map_err(io_error(path))?;
        self.out.write_all(b"\n").map_err(io_error(path))
    }

    /// Hands every written line to the operating system.
    pub fn flush(&mut self) -> Result<(), FileError> {
        self.out.flush().map_err(io_error(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ndjson_and_array_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ndjson = dir.path().join("a.ndjson");
        std::fs::write(&ndjson, "{\"a\":1}\n{\"a\":2}\n").expect("write");
        assert_eq!(
            read_events(&ndjson).expect("read"),
            [b"{\"a\":1}".to_vec(), b"{\"a\":2}".to_vec()]
        );
        let array = dir.path().join("a.json");
        std::fs::write(&array, "[{\"a\":1}, {\"a\":2}]").expect("write");
        assert_eq!(read_events(&array).expect("read").len(), 2);
    }

    #[test]
    fn bad_event_names_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.ndjson");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":\n").expect("write");
        let err = read_events(&path).expect_err("bad file");
        assert!(matches!(err, FileError::BadEvent { line: 2, .. }), "{err}");
        assert!(err.to_string().contains("bad.ndjson:2: "), "{err}");
        let missing = read_events(&dir.path().join("missing.json")).expect_err("missing");
        assert!(matches!(missing, FileError::Io { .. }));
    }

    #[test]
    fn sink_appends_lines_and_truncate_starts_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.json");
        for value in [1, 2] {
            let mut sink = NdjsonSink::create(&path).expect("create");
            sink.write_line(format!("{{\"v\":{value}}}").as_bytes())
                .expect("write");
            sink.flush().expect("flush");
        }
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"v\":1}\n{\"v\":2}\n"
        );
        assert_eq!(read_events(&path).expect("read back").len(), 2);
        let mut sink = NdjsonSink::truncate(&path).expect("truncate");
        sink.write_line(b"{}").expect("write");
        sink.flush().expect("flush");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{}\n");
    }
}
