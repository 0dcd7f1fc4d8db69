//! From a PUBLISH payload to the events appended: the payload is split as HTTP bodies are
//! (one object, an array of objects, or NDJSON), and each event gains an `IoTHub` record
//! with `ConnectionDeviceId` (the MQTT client id) and `EnqueuedTime`, as ASA's IoT Hub
//! input exposes them, so `SELECT IoTHub.ConnectionDeviceId` works in any job.

use bytes::Bytes;
use eddy_connectors::ndjson::{BodyError, split_events};

/// Turns `payload` into event bytes, each carrying the `IoTHub` record; all or none.
/// `enqueued` is the ISO-8601 UTC text of the time the server received the message.
pub(crate) fn to_events(
    payload: &[u8],
    device_id: &str,
    enqueued: &str,
) -> Result<Vec<Bytes>, BodyError> {
    let events = split_events(payload)?;
    if events.is_empty() {
        return Err(BodyError {
            line: 1,
            message: "the payload holds no JSON object".into(),
        });
    }
    let record = serde_json::json!({
        "ConnectionDeviceId": device_id,
        "EnqueuedTime": enqueued,
    })
    .to_string();
    events
        .into_iter()
        .map(|event| with_iothub(event, &record))
        .collect()
}

/// `event` (a well-formed JSON object) with `"IoTHub": record` as its last property. A
/// device's own top-level `IoTHub` property (any case) is replaced, so the device id a
/// query sees is always the authenticated connection's.
fn with_iothub(event: &[u8], record: &str) -> Result<Bytes, BodyError> {
    if contains_ignore_case(event, b"\"iothub\"") {
        // Rare: rebuild the object without the device's own IoTHub property.
        let mut map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(event)
            .map_err(|e| BodyError {
                line: e.line(),
                message: e.to_string(),
            })?;
        map.retain(|k, _| !k.eq_ignore_ascii_case("iothub"));
        let mut out = serde_json::to_vec(&map).map_err(|e| BodyError {
            line: 1,
            message: e.to_string(),
        })?;
        out.pop(); // the closing brace
        splice(&mut out, record);
        return Ok(Bytes::from(out));
    }
    // `split_events` hands out objects trimmed at both ends: `{` first, `}` last.
    let inner = event
        .strip_prefix(b"{")
        .and_then(|e| e.strip_suffix(b"}"))
        .ok_or_else(|| BodyError {
            line: 1,
            message: "an event must be a JSON object".into(),
        })?;
    let mut out = Vec::with_capacity(event.len() + record.len() + 12);
    out.push(b'{');
    out.extend_from_slice(inner);
    splice(&mut out, record);
    Ok(Bytes::from(out))
}

/// Closes the open object in `out` with `"IoTHub": record`.
fn splice(out: &mut Vec<u8>, record: &str) {
    let empty = out[1..].iter().all(u8::is_ascii_whitespace);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(b"\"IoTHub\":");
    out.extend_from_slice(record.as_bytes());
    out.push(b'}');
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parsed(payload: &str) -> Vec<Value> {
        to_events(payload.as_bytes(), "dev-1", "2024-01-01T00:00:00.0000000Z")
            .expect("valid payload")
            .iter()
            .map(|e| serde_json::from_slice(e).expect("valid JSON out"))
            .collect()
    }

    #[test]
    fn every_event_gets_the_device_record() {
        let iothub =
            json!({"ConnectionDeviceId": "dev-1", "EnqueuedTime": "2024-01-01T00:00:00.0000000Z"});
        assert_eq!(parsed(r#"{"t": 1}"#), [json!({"t": 1, "IoTHub": iothub})]);
        assert_eq!(parsed("{}"), [json!({"IoTHub": iothub})]);
        assert_eq!(parsed("{ }\n{\"a\":[1,{}]}").len(), 2);
        assert_eq!(parsed(r#"[{"a":1},{"a":2}]"#)[1]["a"], 2);
    }

    #[test]
    fn a_device_cannot_spoof_its_id() {
        let events = parsed(r#"{"iothub": {"ConnectionDeviceId": "other"}, "t": 2}"#);
        assert_eq!(events[0]["IoTHub"]["ConnectionDeviceId"], "dev-1");
        assert!(events[0].get("iothub").is_none());
        assert_eq!(events[0]["t"], 2);
    }

    #[test]
    fn malformed_and_empty_payloads_are_refused() {
        let enq = "2024-01-01T00:00:00.0000000Z";
        assert!(to_events(b"{\"t\":", "d", enq).is_err());
        assert!(to_events(b"42", "d", enq).is_err());
        assert!(to_events(b"", "d", enq).is_err());
        assert!(to_events(b"\xff\xfe", "d", enq).is_err());
    }
}
