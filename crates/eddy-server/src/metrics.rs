//! Counters per stream and per HTTP route, event rates for the dashboard, and the
//! Prometheus text rendering of those plus each job's engine counters.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use std::sync::Arc;

use eddy_mqtt::MqttStats;
use parking_lot::Mutex;

use crate::jobs::{JobState, JobView, MetricsView};
use eddy_engine::InputMetrics;

/// (metric name suffix, help text, how to read it from a job's counters).
type JobCounter = (&'static str, &'static str, fn(&MetricsView) -> u64);
/// (metric name suffix, help text, how to read it from one input's counters).
type InputCounter = (&'static str, &'static str, fn(&InputMetrics) -> u64);

/// Seconds of history behind a stream's events/s rate.
const RATE_WINDOW_S: i64 = 5;

#[derive(Default)]
struct StreamCounters {
    events: u64,
    bytes: u64,
    /// (unix second, events appended in it), for the last `RATE_WINDOW_S + 1` seconds.
    recent: [(i64, u64); RATE_WINDOW_S as usize + 1],
}

/// Server-wide counters; shared by the ingest path, job threads and the HTTP layer.
#[derive(Default)]
pub(crate) struct Metrics {
    /// Keyed by lowercase stream name.
    streams: Mutex<HashMap<String, StreamCounters>>,
    /// (method, route, status) → requests.
    http: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Stream → (files captured from its folder, lines sent to its dead-letter stream).
    folders: Mutex<BTreeMap<String, (u64, u64)>>,
    /// The MQTT listener's counters, once it is started; rendered only then.
    mqtt: std::sync::OnceLock<Arc<MqttStats>>,
}

impl Metrics {
    /// Counts records appended to `stream` at `now_ms`.
    pub fn record_append(&self, stream: &str, events: u64, bytes: u64, now_ms: i64) {
        let mut streams = self.streams.lock();
        let counters = streams.entry(stream.to_lowercase()).or_default();
        counters.events += events;
        counters.bytes += bytes;
        let second = now_ms.div_euclid(1000);
        let slot = &mut counters.recent[second.rem_euclid(RATE_WINDOW_S + 1) as usize];
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 += events;
    }

    /// Counts a file captured from `stream`'s folder and its lines that were not events.
    pub fn record_folder_file(&self, stream: &str, bad_lines: u64) {
        let mut folders = self.folders.lock();
        let counters = folders.entry(stream.to_string()).or_default();
        counters.0 += 1;
        counters.1 += bad_lines;
    }

    /// Events/s appended to `stream` over the last complete `RATE_WINDOW_S` seconds.
    pub fn rate(&self, stream: &str, now_ms: i64) -> f64 {
        let streams = self.streams.lock();
        let Some(counters) = streams.get(&stream.to_lowercase()) else {
            return 0.0;
        };
        let now = now_ms.div_euclid(1000);
        let events: u64 = counters
            .recent
            .iter()
            .filter(|(s, _)| (now - RATE_WINDOW_S..now).contains(s))
            .map(|(_, n)| n)
            .sum();
        events as f64 / RATE_WINDOW_S as f64
    }

    /// The counters the MQTT listener updates (created on first use).
    pub fn mqtt_stats(&self) -> Arc<MqttStats> {
        self.mqtt.get_or_init(Arc::default).clone()
    }

    /// Counts one answered HTTP request.
    pub fn record_http(&self, method: &str, route: &str, status: u16) {
        *self
            .http
            .lock()
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self, jobs: &[JobView], now_ticks: i64) -> String {
        let mut out = String::new();
        {
            let streams = self.streams.lock();
            let mut names: Vec<&String> = streams.keys().collect();
            names.sort();
            header(
                &mut out,
                "eddy_stream_events_appended_total",
                "counter",
                "Events appended to a stream.",
            );
            for name in &names {
                let _ = writeln!(
                    out,
                    "eddy_stream_events_appended_total{{stream=\"{}\"}} {}",
                    escape(name),
                    streams[*name].events
                );
            }
            header(
                &mut out,
                "eddy_stream_bytes_appended_total",
                "counter",
                "Event payload bytes appended to a stream.",
            );
            for name in &names {
                let _ = writeln!(
                    out,
                    "eddy_stream_bytes_appended_total{{stream=\"{}\"}} {}",
                    escape(name),
                    streams[*name].bytes
                );
            }
        }
        let job_counters: [JobCounter; 9] = [
            ("input_events", "Events read by the job.", |m| m.input),
            ("output_events", "Rows written by the job.", |m| m.output),
            (
                "late_events",
                "Events beyond the late-arrival tolerance.",
                |m| m.late,
            ),
            (
                "early_events",
                "Events more than 5 minutes ahead of arrival (dropped).",
                |m| m.early,
            ),
            (
                "out_of_order_events",
                "Events beyond the out-of-order tolerance.",
                |m| m.out_of_order,
            ),
            (
                "adjusted_events",
                "Events whose timestamp was adjusted.",
                |m| m.adjusted,
            ),
            ("dropped_events", "Events dropped by a time policy.", |m| {
                m.dropped
            }),
            (
                "errors",
                "Events that failed conversion or evaluation.",
                |m| m.errors,
            ),
            (
                "malformed_events",
                "Payloads not in their format, sent to the dead-letter stream.",
                |m| m.malformed,
            ),
        ];
        for (name, help, get) in job_counters {
            let metric = format!("eddy_job_{name}_total");
            header(&mut out, &metric, "counter", help);
            for job in jobs {
                let _ = writeln!(
                    out,
                    "{metric}{{job=\"{}\"}} {}",
                    escape(&job.spec.name),
                    get(&job.status.metrics)
                );
            }
        }
        let input_counters: [InputCounter; 7] = [
            ("events", "Events pushed from this input.", |i| {
                i.input_events
            }),
            (
                "late_events",
                "Events beyond the late-arrival tolerance.",
                |i| i.late_events,
            ),
            (
                "early_events",
                "Events more than 5 minutes ahead of arrival (dropped).",
                |i| i.early_events,
            ),
            (
                "out_of_order_events",
                "Events beyond the out-of-order tolerance.",
                |i| i.out_of_order_events,
            ),
            (
                "adjusted_events",
                "Events whose timestamp was adjusted.",
                |i| i.adjusted_events,
            ),
            ("dropped_events", "Events dropped by a time policy.", |i| {
                i.dropped_events
            }),
            (
                "conversion_errors",
                "Events dropped because they could not be decoded or converted.",
                |i| i.conversion_errors,
            ),
        ];
        for (name, help, get) in input_counters {
            let metric = format!("eddy_input_{name}_total");
            header(&mut out, &metric, "counter", help);
            for job in jobs {
                for input in &job.status.metrics.inputs {
                    let _ = writeln!(
                        out,
                        "{metric}{{job=\"{}\",input=\"{}\"}} {}",
                        escape(&job.spec.name),
                        escape(&input.name),
                        get(input)
                    );
                }
            }
        }
        header(
            &mut out,
            "eddy_job_join_buffered_rows",
            "gauge",
            "Rows the job's stream joins hold while they may still match (state ≈ rate × bound).",
        );
        for job in jobs {
            let _ = writeln!(
                out,
                "eddy_job_join_buffered_rows{{job=\"{}\"}} {}",
                escape(&job.spec.name),
                job.status.metrics.join_buffered_rows
            );
        }
        header(
            &mut out,
            "eddy_job_running",
            "gauge",
            "1 while the job runs, 0 once it failed or stopped.",
        );
        for job in jobs {
            let running = u8::from(job.status.state == JobState::Running);
            let _ = writeln!(
                out,
                "eddy_job_running{{job=\"{}\"}} {running}",
                escape(&job.spec.name)
            );
        }
        header(
            &mut out,
            "eddy_job_watermark_delay_seconds",
            "gauge",
            "Wall clock minus the job's watermark.",
        );
        for job in jobs {
            if let Some(watermark) = job.status.metrics.watermark {
                let delay = (now_ticks - watermark) as f64 / 1e7;
                let _ = writeln!(
                    out,
                    "eddy_job_watermark_delay_seconds{{job=\"{}\"}} {delay}",
                    escape(&job.spec.name)
                );
            }
        }
        header(
            &mut out,
            "eddy_job_input_lag_events",
            "gauge",
            "Records of an input stream the job has not read yet.",
        );
        for job in jobs {
            for (stream, lag) in &job.status.lag {
                let _ = writeln!(
                    out,
                    "eddy_job_input_lag_events{{job=\"{}\",stream=\"{}\"}} {lag}",
                    escape(&job.spec.name),
                    escape(stream)
                );
            }
        }
        header(
            &mut out,
            "eddy_http_requests_total",
            "counter",
            "HTTP requests answered.",
        );
        for ((method, route, status), n) in self.http.lock().iter() {
            let _ = writeln!(
                out,
                "eddy_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        if let Some(mqtt) = self.mqtt.get() {
            render_mqtt(&mut out, &mqtt.snapshot());
        }
        out
    }
}

impl Metrics {
    /// Folder-capture lines: files captured and dead-lettered lines per stream.
    pub(crate) fn render_folders(&self) -> String {
        let mut out = String::new();
        let folders = self.folders.lock();
        header(
            &mut out,
            "eddy_folder_files_captured_total",
            "counter",
            "Files of a watched folder ingested into a stream.",
        );
        for (stream, (files, _)) in folders.iter() {
            let _ = writeln!(
                out,
                "eddy_folder_files_captured_total{{stream=\"{}\"}} {files}",
                escape(stream)
            );
        }
        header(
            &mut out,
            "eddy_dead_letters_total",
            "counter",
            "Lines of captured files that were not events, sent to the dead-letter stream.",
        );
        for (stream, (_, bad)) in folders.iter() {
            let _ = writeln!(
                out,
                "eddy_dead_letters_total{{stream=\"{}\"}} {bad}",
                escape(stream)
            );
        }
        out
    }
}

/// The MQTT listener's connection and message counters.
fn render_mqtt(out: &mut String, m: &eddy_mqtt::MqttStatsSnapshot) {
    let lines: [(&str, &str, &str, u64); 7] = [
        (
            "eddy_mqtt_connections",
            "gauge",
            "MQTT connections open.",
            m.connections_open,
        ),
        (
            "eddy_mqtt_connections_accepted_total",
            "counter",
            "MQTT CONNECTs accepted.",
            m.connections_accepted,
        ),
        (
            "eddy_mqtt_connections_refused_total",
            "counter",
            "MQTT CONNECTs refused (credentials, version, client id).",
            m.connections_refused,
        ),
        (
            "eddy_mqtt_messages_received_total",
            "counter",
            "MQTT PUBLISH packets received.",
            m.messages_received,
        ),
        (
            "eddy_mqtt_events_appended_total",
            "counter",
            "Events appended from MQTT messages.",
            m.events_appended,
        ),
        (
            "eddy_mqtt_malformed_payloads_total",
            "counter",
            "MQTT payloads refused as not JSON events.",
            m.malformed_payloads,
        ),
        (
            "eddy_mqtt_protocol_errors_total",
            "counter",
            "MQTT connections closed for a protocol error or keep-alive timeout.",
            m.protocol_errors,
        ),
    ];
    for (name, kind, help, value) in lines {
        header(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// Consumer-group lag lines: events between each group's commit and the partition end.
pub(crate) fn render_group_lag(lags: &[crate::http::GroupLag]) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "eddy_consumer_group_lag_events",
        "gauge",
        "Events appended to a partition after the group's committed offset.",
    );
    for g in lags {
        let _ = writeln!(
            out,
            "eddy_consumer_group_lag_events{{group=\"{}\",stream=\"{}\",partition=\"{}\"}} {}",
            escape(&g.group),
            escape(&g.stream),
            g.partition,
            g.lag
        );
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_counters_render_once_the_listener_exists() {
        let metrics = Metrics::default();
        assert!(!metrics.render(&[], 0).contains("eddy_mqtt_"));
        let _stats = metrics.mqtt_stats();
        let text = metrics.render(&[], 0);
        assert!(text.contains("eddy_mqtt_connections 0\n"), "{text}");
        assert!(
            text.contains("eddy_mqtt_malformed_payloads_total 0\n"),
            "{text}"
        );
    }

    #[test]
    fn rate_counts_only_recent_complete_seconds() {
        let metrics = Metrics::default();
        metrics.record_append("S", 50, 500, 10_000);
        metrics.record_append("s", 50, 500, 11_500);
        metrics.record_append("s", 7, 70, 15_100); // the current second is not counted yet
        assert_eq!(metrics.rate("s", 15_200), 20.0);
        assert_eq!(metrics.rate("s", 30_000), 0.0);
        let text = metrics.render(&[], 0);
        assert!(
            text.contains("eddy_stream_events_appended_total{stream=\"s\"} 107"),
            "{text}"
        );
    }
}
