//! Sources and sinks that know nothing about SQL.
//!
//! - [`ndjson`] splits a request or file body (one object, a JSON array, or NDJSON) into
//!   the raw JSON bytes of each event, with the line of any bad event.
//! - [`folder`] finds complete JSON, NDJSON and CSV files (gzip too) under a folder and
//!   decodes them, setting bad lines aside for a dead-letter stream.
//! - [`formats`] decodes a payload of a declared format (JSON, CSV, Avro container) into
//!   JSON events.
//! - [`files`] reads events from a file and appends NDJSON lines to a file.
//! - [`reference`] reads a reference-data file (JSON array, NDJSON or CSV with a header
//!   row) into one JSON object per row, and tells whether the file changed since.
//! - [`traffic`] generates road-traffic sensor readings for the demo: deterministic for a
//!   seed, with rush hours and occasional jams.
//!
//! Data moves as bytes (`&[u8]` per event) into the log or the engine; nothing here
//! parses an event into a typed value.
#![deny(missing_docs)]

pub mod files;
pub mod folder;
pub mod formats;
pub mod ndjson;
pub mod reference;
pub mod traffic;
