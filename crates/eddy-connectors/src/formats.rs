//! Payload formats a stream declares: JSON, CSV with a header row, Avro with an embedded
//! schema (an Avro object container file). Each payload decodes to one or more events,
//! each a JSON object, so the engine sees one shape whatever the producer wrote.

use std::fmt;
use std::str::FromStr;

/// How a stream's payloads are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventFormat {
    /// One JSON object, an array of objects, or NDJSON.
    #[default]
    Json,
    /// CSV whose first row names the fields; every value is a string, as in ASA.
    Csv,
    /// An Avro object container file (the schema travels in it); each record is an event.
    Avro,
}

impl EventFormat {
    /// The name used in stream declarations and record headers.
    pub fn name(self) -> &'static str {
        match self {
            EventFormat::Json => "json",
            EventFormat::Csv => "csv",
            EventFormat::Avro => "avro",
        }
    }
}

impl fmt::Display for EventFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not json, csv or avro.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format '{0}': expected json, csv or avro")]
pub struct UnknownFormat(pub String);

impl FromStr for EventFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(EventFormat::Json),
            "csv" => Ok(EventFormat::Csv),
            "avro" => Ok(EventFormat::Avro),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

/// Why a payload is not events of its format, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{format} payload, {position}: {message}")]
pub struct FormatError {
    /// The format expected.
    pub format: EventFormat,
    /// Where the problem is: `line N` (JSON, CSV) or `record N` (Avro).
    pub position: String,
    /// What is wrong.
    pub message: String,
}

/// Decodes a whole payload into events (JSON objects), in order; any bad part fails it all.
pub fn decode_payload(format: EventFormat, payload: &[u8]) -> Result<Vec<Vec<u8>>, FormatError> {
    let error = |position: String, message: String| FormatError {
        format,
        position,
        message,
    };
    match format {
        EventFormat::Json => crate::ndjson::split_events(payload)
            .map(|events| events.into_iter().map(<[u8]>::to_vec).collect())
            .map_err(|e| error(format!("line {}", e.line), e.message)),
        EventFormat::Csv => {
            let decoded = crate::folder::decode_bytes(payload, crate::folder::Format::Csv);
            match decoded.bad.first() {
                Some(bad) => Err(error(format!("line {}", bad.line), bad.reason.clone())),
                None => Ok(decoded.events.into_iter().map(|e| e.json).collect()),
            }
        }
        EventFormat::Avro => decode_avro(payload).map_err(|(record, message)| {
            let position = match record {
                0 => "header".to_string(),
                n => format!("record {n}"),
            };
            error(position, message)
        }),
    }
}

/// Avro container → JSON objects; the error carries the 1-based record (0: the header).
fn decode_avro(payload: &[u8]) -> Result<Vec<Vec<u8>>, (usize, String)> {
    let reader = apache_avro::Reader::new(payload)
        .map_err(|e| (0, format!("not an Avro object container file: {e}")))?;
    let mut events = Vec::new();
    for (i, value) in reader.enumerate() {
        let record = i + 1;
        let value = value.map_err(|e| (record, e.to_string()))?;
        let json = serde_json::Value::try_from(value).map_err(|e| (record, e.to_string()))?;
        if !json.is_object() {
            return Err((record, "an Avro event must be a record".to_string()));
        }
        events.push(serde_json::to_vec(&json).map_err(|e| (record, e.to_string()))?);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Record;
    use apache_avro::{Schema, Writer};

    fn avro_file(rows: &[(i64, &str)]) -> Vec<u8> {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"Reading","fields":[
                {"name":"id","type":"long"},{"name":"site","type":"string"}]}"#,
        )
        .unwrap();
        let mut writer = Writer::new(&schema, Vec::new());
        for (id, site) in rows {
            let mut r = Record::new(writer.schema()).unwrap();
            r.put("id", *id);
            r.put("site", *site);
            writer.append(r).unwrap();
        }
        writer.into_inner().unwrap()
    }

    fn texts(events: Vec<Vec<u8>>) -> Vec<String> {
        events
            .into_iter()
            .map(|e| String::from_utf8(e).unwrap())
            .collect()
    }

    #[test]
    fn avro_records_become_json_objects() {
        let events = decode_payload(EventFormat::Avro, &avro_file(&[(1, "a"), (2, "b")])).unwrap();
        assert_eq!(
            texts(events),
            [r#"{"id":1,"site":"a"}"#, r#"{"id":2,"site":"b"}"#]
        );
    }

    #[test]
    fn bad_payloads_say_where() {
        let err = decode_payload(EventFormat::Avro, b"{\"id\":1}").unwrap_err();
        assert_eq!(err.position, "header");
        let mut file = avro_file(&[(1, "a"), (2, "b")]);
        let cut = file.len() - 20;
        file.truncate(cut);
        assert!(decode_payload(EventFormat::Avro, &file).is_err());
        let err = decode_payload(EventFormat::Csv, b"a,b\n1,2\n3\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "csv payload, line 3: 1 fields where the header names 2"
        );
        let err = decode_payload(EventFormat::Json, b"{\"a\":1}\n{oops}\n").unwrap_err();
        assert_eq!(err.position, "line 2");
    }

    #[test]
    fn csv_and_json_payloads_hold_several_events() {
        let csv = decode_payload(EventFormat::Csv, b"id,site\n1,a\n2,b\n").unwrap();
        assert_eq!(
            texts(csv),
            [r#"{"id":"1","site":"a"}"#, r#"{"id":"2","site":"b"}"#]
        );
        let json = decode_payload(EventFormat::Json, b"[{\"a\":1},{\"a\":2}]").unwrap();
        assert_eq!(json.len(), 2);
        assert_eq!("AVRO".parse::<EventFormat>(), Ok(EventFormat::Avro));
        assert!("xml".parse::<EventFormat>().is_err());
    }
}
