//! The ingest path shared by `POST /api/streams/{name}/events` and [`crate::Server::ingest`]:
//! every event is checked before anything is written, records are spread over partitions,
//! and each partition gets one append; the caller is answered only after the appends return.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use eddy_log::{Log, Record};

use crate::ServerError;
use crate::metrics::Metrics;

/// Appends `events` (each a JSON object's bytes, already validated) to `stream`, creating
/// it with the default partition count if missing. With `key_field`, events with equal
/// values of that field land in the same partition; otherwise (and for events without the
/// field) they go round robin, continuing from `round_robin`.
pub(crate) fn append_events(
    log: &Log,
    metrics: &Metrics,
    round_robin: &AtomicU64,
    stream: &str,
    events: &[&[u8]],
    key_field: Option<&str>,
) -> Result<usize, ServerError> {
    if events.is_empty() {
        return Ok(0);
    }
    let info = match log.stream(stream) {
        Some(info) => info,
        None => log.get_or_create_stream(stream)?,
    };
    let partitions = info.partitions.len() as u32;
    if partitions == 0 {
        return Err(ServerError::Invalid(format!(
            "stream {stream} has no partitions"
        )));
    }
    let base = round_robin.fetch_add(events.len() as u64, Ordering::Relaxed);
    let now_ms = crate::jobs::now_ms();
    let mut batches: Vec<Vec<Record>> = (0..partitions).map(|_| Vec::new()).collect();
    let mut bytes = 0u64;
    for (i, event) in events.iter().enumerate() {
        let key = key_field.and_then(|field| key_of(event, field));
        let partition = eddy_log::partition_for_key(key.as_deref(), partitions, base + i as u64);
        bytes += event.len() as u64;
        batches[partition as usize].push(Record {
            timestamp_ms: now_ms,
            key: key.map(Bytes::from),
            value: Bytes::copy_from_slice(event),
            headers: Vec::new(),
        });
    }
    for (partition, batch) in batches.iter().enumerate() {
        if !batch.is_empty() {
            log.append(&info.name, partition as u32, batch)?;
        }
    }
    metrics.record_append(&info.name, events.len() as u64, bytes, now_ms);
    Ok(events.len())
}

/// The partition key of an event: a string field's text, any other value's JSON text.
/// The field name matches case-insensitively, as ASA column names do.
fn key_of(event: &[u8], field: &str) -> Option<Vec<u8>> {
    let serde_json::Value::Object(map) = serde_json::from_slice(event).ok()? else {
        return None;
    };
    let value = map.get(field).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(field))
            .map(|(_, v)| v)
    })?;
    Some(match value {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    })
}

/// Header naming the format of a record's payload when it differs from the stream's
/// declaration (e.g. a CSV body posted with `?format=csv` to a JSON stream).
pub(crate) const FORMAT_HEADER: &str = "eddy-format";

/// Appends one payload of `format` holding `events` events, as written, to one partition
/// (by `key`, else round robin); jobs decode it into its events.
#[allow(clippy::too_many_arguments)]
pub(crate) fn append_payload(
    log: &Log,
    metrics: &Metrics,
    round_robin: &AtomicU64,
    stream: &str,
    payload: Bytes,
    format: eddy_connectors::formats::EventFormat,
    events: usize,
    key: Option<&str>,
) -> Result<usize, ServerError> {
    let info = match log.stream(stream) {
        Some(info) => info,
        None => log.get_or_create_stream(stream)?,
    };
    let partitions = info.partitions.len() as u32;
    let spread = round_robin.fetch_add(1, Ordering::Relaxed);
    let partition = eddy_log::partition_for_key(key.map(str::as_bytes), partitions, spread);
    let now_ms = crate::jobs::now_ms();
    let bytes = payload.len() as u64;
    let record = Record {
        timestamp_ms: now_ms,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: payload,
        headers: vec![(
            FORMAT_HEADER.to_string(),
            Bytes::from_static(format.name().as_bytes()),
        )],
    };
    log.append(&info.name, partition, &[record])?;
    metrics.record_append(&info.name, events as u64, bytes, now_ms);
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_the_field_text_in_any_case() {
        assert_eq!(
            key_of(br#"{"Sensor":"a1","n":1}"#, "sensor"),
            Some(b"a1".to_vec())
        );
        assert_eq!(key_of(br#"{"n":12}"#, "n"), Some(b"12".to_vec()));
        assert_eq!(key_of(br#"{"n":12}"#, "missing"), None);
    }
}
