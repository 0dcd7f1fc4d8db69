//! What a user configures: the server itself, and each job with its output bindings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use eddy_engine::{JobOptions, OutOfOrderAction};
use serde::{Deserialize, Serialize};

use crate::ServerError;

/// Largest late-arrival tolerance ASA accepts (about 21 days), in seconds.
const LATE_TOLERANCE_S_MAX: f64 = 21.0 * 24.0 * 3600.0;
/// Largest out-of-order tolerance we accept (ASA allows minutes; a day bounds buffered state).
const OUT_OF_ORDER_TOLERANCE_S_MAX: f64 = 24.0 * 3600.0;
const TICKS_PER_SECOND: f64 = 10_000_000.0;

/// How the server is started: where its data lives, where it listens, how durable writes are.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Root of all state: `log/`, `store/` and `jobs/` live under it.
    pub data_dir: PathBuf,
    /// Address of the HTTP API and dashboard (port 0 picks a free port).
    pub http: SocketAddr,
    /// When the log fsyncs appended records.
    pub fsync: eddy_log::FsyncPolicy,
    /// When set, every API route requires `Authorization: Bearer <token>`.
    pub auth_token: Option<String>,
    /// Partitions of a stream created implicitly (first event, or a job input).
    pub default_partitions: u32,
    /// Address of the Kafka protocol listener; `None` serves no Kafka (port 0 picks a free port).
    pub kafka: Option<SocketAddr>,
    /// Folders whose new files are captured into streams, each file exactly once.
    pub folders: Vec<crate::FolderSource>,
    /// How long a file must stay unchanged before it is read as complete.
    pub folder_settle: std::time::Duration,
    /// Streams captured to Parquet files partitioned by date and hour.
    pub parquet_captures: Vec<crate::ParquetCapture>,
    /// How often each capture writes what arrived since its last pass.
    pub capture_interval: std::time::Duration,
    /// Address of the MQTT listener; `None` serves no MQTT (port 0 picks a free port).
    pub mqtt: Option<SocketAddr>,
    /// Which stream each MQTT topic's events go to.
    pub mqtt_routes: eddy_mqtt::Routes,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("./eddy-data"),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            fsync: eddy_log::FsyncPolicy::IntervalMs(100),
            auth_token: None,
            default_partitions: 4,
            kafka: None,
            folders: Vec::new(),
            folder_settle: std::time::Duration::from_secs(2),
            parquet_captures: Vec::new(),
            capture_interval: std::time::Duration::from_secs(60),
            mqtt: None,
            mqtt_routes: eddy_mqtt::Routes::default(),
        }
    }
}

/// A continuous query and its time policies, as posted to `POST /api/jobs` and persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Unique (case-insensitive) job name: letters, digits, `_` and `-`.
    pub name: String,
    /// The ASA query text.
    pub query: String,
    /// Seconds an event may lag its arrival before Adjust/Drop applies; -1 = unlimited.
    #[serde(default = "default_late_tolerance")]
    pub late_arrival_tolerance_s: f64,
    /// Seconds within which out-of-order events are re-sorted.
    #[serde(default)]
    pub out_of_order_tolerance_s: f64,
    /// What happens to events outside the tolerances.
    #[serde(default)]
    pub out_of_order_action: OutOfOrderPolicy,
    /// Sink per output alias; an output not listed goes to the store table of its name.
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputTarget>,
    /// Reference inputs by alias: joined without a time bound, read from a file and
    /// re-read when it changes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub references: BTreeMap<String, ReferenceInput>,
}

/// A reference input of a job: a file read whole into a table the query joins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceInput {
    /// A JSON array, NDJSON, or CSV with a header row (by the `.csv` extension).
    pub path: PathBuf,
    /// Seconds between checks of the file; when it changed it is re-read and replaces
    /// the table without a restart. Absent: read once, when the job starts.
    #[serde(default)]
    pub refresh_interval_s: Option<f64>,
}

/// Shortest refresh interval: the job loop wakes every 100 ms at least, so shorter would
/// only promise what it cannot keep.
pub(crate) const REFRESH_INTERVAL_S_MIN: f64 = 0.1;
/// Longest refresh interval, one day; beyond it a restart is the simpler tool.
const REFRESH_INTERVAL_S_MAX: f64 = 24.0 * 3600.0;

fn default_late_tolerance() -> f64 {
    5.0
}

/// ASA's event-ordering action, spelled as users write it in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutOfOrderPolicy {
    /// Move the event's timestamp to the bound; keep the event.
    #[default]
    Adjust,
    /// Discard the event.
    Drop,
}

/// Where one output of a job is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum OutputTarget {
    /// A store table (exactly-once).
    Table {
        /// Table name (case-insensitive).
        name: String,
    },
    /// A log stream, one record per row (exactly-once for one writer, via `eddy-seq` headers).
    Stream {
        /// Stream name; created with the default partition count if missing.
        name: String,
    },
    /// An NDJSON file, one line per row (exactly-once for a single writer).
    File {
        /// File path; appended to.
        path: PathBuf,
    },
}

impl JobSpec {
    /// Checks the name and tolerances and turns them into the engine's options.
    pub(crate) fn job_options(&self) -> Result<JobOptions, ServerError> {
        validate_name("job", &self.name)?;
        let late = self.late_arrival_tolerance_s;
        let late_arrival_tolerance = if late == -1.0 {
            None
        } else if (0.0..=LATE_TOLERANCE_S_MAX).contains(&late) {
            Some(seconds_to_ticks(late))
        } else {
            return Err(ServerError::Invalid(format!(
                "late_arrival_tolerance_s must be -1 (unlimited) or between 0 and {LATE_TOLERANCE_S_MAX}, got {late}"
            )));
        };
        let ooo = self.out_of_order_tolerance_s;
        if !(0.0..=OUT_OF_ORDER_TOLERANCE_S_MAX).contains(&ooo) {
            return Err(ServerError::Invalid(format!(
                "out_of_order_tolerance_s must be between 0 and {OUT_OF_ORDER_TOLERANCE_S_MAX}, got {ooo}"
            )));
        }
        for (alias, reference) in &self.references {
            if let Some(s) = reference.refresh_interval_s
                && !(REFRESH_INTERVAL_S_MIN..=REFRESH_INTERVAL_S_MAX).contains(&s)
            {
                return Err(ServerError::Invalid(format!(
                    "references.{alias}.refresh_interval_s must be between {REFRESH_INTERVAL_S_MIN} and {REFRESH_INTERVAL_S_MAX}, got {s}"
                )));
            }
        }
        Ok(JobOptions {
            reference_inputs: self.references.keys().cloned().collect(),
            late_arrival_tolerance,
            out_of_order_tolerance: seconds_to_ticks(ooo),
            out_of_order_action: match self.out_of_order_action {
                OutOfOrderPolicy::Adjust => OutOfOrderAction::Adjust,
                OutOfOrderPolicy::Drop => OutOfOrderAction::Drop,
            },
        })
    }
}

fn seconds_to_ticks(seconds: f64) -> i64 {
    (seconds * TICKS_PER_SECOND).round() as i64
}

/// Names become file and directory names, so keep them to a safe alphabet.
pub(crate) fn validate_name(kind: &str, name: &str) -> Result<(), ServerError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ServerError::Invalid(format!(
            "invalid {kind} name {name:?}: use 1 to 128 letters, digits, '_', '-' or '.', not starting with '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_defaults_follow_asa() {
        let spec: JobSpec = serde_json::from_str(r#"{"name":"j","query":"SELECT 1"}"#).unwrap();
        assert_eq!(spec.late_arrival_tolerance_s, 5.0);
        assert_eq!(spec.out_of_order_tolerance_s, 0.0);
        assert_eq!(spec.out_of_order_action, OutOfOrderPolicy::Adjust);
        let options = spec.job_options().unwrap();
        assert_eq!(options.late_arrival_tolerance, Some(50_000_000));
    }

    #[test]
    fn unlimited_late_tolerance_and_output_bindings_parse() {
        let spec: JobSpec = serde_json::from_str(
            r#"{"name":"j","query":"q","late_arrival_tolerance_s":-1,"out_of_order_action":"drop",
                "outputs":{"a":{"type":"stream","name":"s"},"b":{"type":"file","path":"/tmp/x"}}}"#,
        )
        .unwrap();
        assert_eq!(spec.job_options().unwrap().late_arrival_tolerance, None);
        assert_eq!(spec.outputs["a"], OutputTarget::Stream { name: "s".into() });
    }

    #[test]
    fn reference_inputs_parse_and_become_engine_options() {
        let spec: JobSpec = serde_json::from_str(
            r#"{"name":"j","query":"q","references":{"Sites":{"path":"/data/sites.csv","refresh_interval_s":30}}}"#,
        )
        .unwrap();
        assert_eq!(spec.references["Sites"].refresh_interval_s, Some(30.0));
        assert_eq!(spec.job_options().unwrap().reference_inputs, ["Sites"]);
        let mut bad = spec.clone();
        bad.references.get_mut("Sites").unwrap().refresh_interval_s = Some(0.0);
        assert!(bad.job_options().is_err());
        assert!(
            serde_json::from_str::<JobSpec>(
                r#"{"name":"j","query":"q","references":{"s":{"path":"x","every":1}}}"#
            )
            .is_err()
        );
    }

    #[test]
    fn unknown_fields_and_bad_values_are_rejected() {
        assert!(serde_json::from_str::<JobSpec>(r#"{"name":"j","query":"q","late":1}"#).is_err());
        assert!(
            serde_json::from_str::<JobSpec>(
                r#"{"name":"j","query":"q","out_of_order_action":"keep"}"#
            )
            .is_err()
        );
        let mut spec: JobSpec = serde_json::from_str(r#"{"name":"j","query":"q"}"#).unwrap();
        spec.late_arrival_tolerance_s = -2.0;
        assert!(spec.job_options().is_err());
        spec.late_arrival_tolerance_s = 1.0;
        spec.name = "../etc".into();
        assert!(spec.job_options().is_err());
    }
}
