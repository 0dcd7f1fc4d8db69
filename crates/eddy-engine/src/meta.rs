//! Event metadata: where and when an event arrived (partition, offset, arrival time),
//! read by `GetMetadataPropertyValue(input, 'name')` and by the `PartitionId`,
//! `EventEnqueuedUtcTime` and `EventProcessedUtcTime` columns, as ASA offers them for
//! Event Hub inputs.
//!
//! The metadata of the event being processed lives in a thread-local cell set by the job
//! before it runs the operators, so that the evaluation context (and every operator that
//! builds one) stays as it is and queries that never read metadata pay one small store
//! per event.

use crate::time::now_ticks;
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::sync::Arc;

/// What a producer sent beside the payload (a Kafka key and headers), for
/// `GetMetadataPropertyValue(input, '[Kafka].[Key]')` and `'[User].[header]'`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventExtras {
    /// The record key, as text (invalid UTF-8 replaced).
    pub key: Option<Arc<str>>,
    /// Application headers in order, values as text.
    pub headers: Vec<(Arc<str>, Arc<str>)>,
}

/// Where and when one event arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventMeta {
    /// Index of the input in the job.
    #[serde(default)]
    pub input: u32,
    /// Input partition.
    pub partition: u32,
    /// Offset in that partition.
    pub offset: u64,
    /// Arrival time in ticks (`EventEnqueuedUtcTime`).
    pub arrival: i64,
    /// Key and headers, shared by every copy of the event; `None` when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extras: Option<Arc<EventExtras>>,
}

thread_local! {
    static CURRENT: RefCell<Option<EventMeta>> = const { RefCell::new(None) };
}

/// Makes `meta` the metadata of the event about to be processed (`None`: no event, e.g.
/// while windows close).
pub(crate) fn set_current(meta: Option<EventMeta>) {
    CURRENT.with(|c| *c.borrow_mut() = meta);
}

/// A metadata property a query can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Property {
    /// Arrival time (datetime).
    EnqueuedTime,
    /// Wall-clock time at processing (datetime).
    ProcessedTime,
    /// Input partition (bigint).
    PartitionId,
    /// Offset in the partition (bigint); also answers `SequenceNumber`.
    Offset,
    /// A stable unique id of the event (`EventId`): a GUID-shaped string made of the
    /// input, partition and offset, so a replay gives the same id.
    EventId,
    /// Every adapter property as one record (`EventHub`, `IoTHub`, `Kafka`).
    All,
    /// Every user property (the producer's headers) as one record (`[User]`).
    User,
    /// One user property: the header of that name (`[User].[name]`), NULL when absent.
    Header(Arc<str>),
    /// The producer's record key as text (`[Kafka].[Key]`, `PartitionKey`), NULL when absent.
    Key,
    /// A property eddy does not carry (e.g. `MessageId`): always NULL.
    Absent,
}

impl Property {
    /// Resolves a `GetMetadataPropertyValue` name such as `EventEnqueuedUtcTime` or
    /// `[EventHub].[EventEnqueuedUtcTime]` (case-insensitive); `None` when unknown.
    pub(crate) fn parse(name: &str) -> Option<Property> {
        let plain: String = name
            .chars()
            .filter(|c| !matches!(c, '[' | ']'))
            .collect::<String>()
            .to_ascii_lowercase();
        let last = match plain.split_once('.') {
            Some(("eventhub" | "iothub" | "kafka", rest)) => rest,
            Some(("user", _)) => {
                // The header name keeps its case; only the brackets go.
                let inner: String = name.chars().filter(|c| !matches!(c, '[' | ']')).collect();
                let header = inner.split_once('.').map_or("", |(_, h)| h);
                return Some(Property::Header(header.into()));
            }
            Some(_) => return None,
            None if matches!(plain.as_str(), "eventhub" | "iothub" | "kafka") => {
                return Some(Property::All);
            }
            None if plain == "user" => return Some(Property::User),
            None => plain.as_str(),
        };
        Some(match last {
            "eventenqueuedutctime" | "enqueuedtime" => Property::EnqueuedTime,
            "eventprocessedutctime" => Property::ProcessedTime,
            "partitionid" => Property::PartitionId,
            "offset" | "sequencenumber" => Property::Offset,
            "eventid" => Property::EventId,
            "partitionkey" | "key" => Property::Key,
            "iotconnectiondeviceid" | "connectiondeviceid" | "messageid" | "correlationid" => {
                Property::Absent
            }
            _ => return None,
        })
    }

    /// The property of the current event; NULL outside an event.
    pub(crate) fn read(&self) -> Value {
        CURRENT.with(|c| match &*c.borrow() {
            Some(m) => self.read_from(m),
            None => Value::Null,
        })
    }

    fn read_from(&self, m: &EventMeta) -> Value {
        match self {
            Property::EnqueuedTime => Value::DateTime(m.arrival),
            Property::ProcessedTime => Value::DateTime(now_ticks()),
            Property::PartitionId => Value::BigInt(i64::from(m.partition)),
            Property::Offset => Value::BigInt(i64::try_from(m.offset).unwrap_or(i64::MAX)),
            Property::EventId => Value::String(
                format!(
                    "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                    m.input,
                    m.partition >> 16,
                    m.partition & 0xffff,
                    m.offset >> 48,
                    m.offset & 0xffff_ffff_ffff
                )
                .into(),
            ),
            Property::All => {
                let names: Vec<Arc<str>> = [
                    "EventEnqueuedUtcTime",
                    "EventProcessedUtcTime",
                    "PartitionId",
                    "Offset",
                ]
                .into_iter()
                .map(Into::into)
                .collect();
                let values = [
                    Property::EnqueuedTime,
                    Property::ProcessedTime,
                    Property::PartitionId,
                    Property::Offset,
                ]
                .map(|p| p.read_from(m))
                .to_vec();
                crate::value::Record::new(Arc::from(names), values).into()
            }
            Property::User => {
                let headers = m.extras.as_ref().map_or(&[][..], |e| &e.headers[..]);
                let names: Vec<Arc<str>> = headers.iter().map(|(k, _)| k.clone()).collect();
                let values = headers
                    .iter()
                    .map(|(_, v)| Value::String(v.clone()))
                    .collect();
                crate::value::Record::new(Arc::from(names), values).into()
            }
            Property::Header(name) => {
                let headers = m.extras.as_ref().map_or(&[][..], |e| &e.headers[..]);
                headers
                    .iter()
                    .find(|(k, _)| **k == **name)
                    .or_else(|| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                    .map_or(Value::Null, |(_, v)| Value::String(v.clone()))
            }
            Property::Key => m
                .extras
                .as_ref()
                .and_then(|e| e.key.clone())
                .map_or(Value::Null, Value::String),
            Property::Absent => Value::Null,
        }
    }

    /// The metadata column a bare column name stands for when the payload lacks it.
    pub(crate) fn column(name: &str) -> Option<Property> {
        [
            ("EventEnqueuedUtcTime", Property::EnqueuedTime),
            ("EventProcessedUtcTime", Property::ProcessedTime),
            ("PartitionId", Property::PartitionId),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_names_resolve_with_or_without_brackets() {
        let p = Property::parse;
        assert_eq!(p("EventEnqueuedUtcTime"), Some(Property::EnqueuedTime));
        assert_eq!(
            p("[EventHub].[EventEnqueuedUtcTime]"),
            Some(Property::EnqueuedTime)
        );
        assert_eq!(p("partitionid"), Some(Property::PartitionId));
        assert_eq!(
            p("[User].[Trace-Id]"),
            Some(Property::Header("Trace-Id".into()))
        );
        assert_eq!(p("[Kafka].[Key]"), Some(Property::Key));
        assert_eq!(p("Nonsense"), None);
    }

    #[test]
    fn reads_the_current_event() {
        set_current(Some(EventMeta {
            input: 1,
            partition: 3,
            offset: 7,
            arrival: 42,
            extras: Some(Arc::new(EventExtras {
                key: Some("device-9".into()),
                headers: vec![("Trace-Id".into(), "abc".into())],
            })),
        }));
        assert_eq!(Property::Key.read(), Value::from("device-9"));
        assert_eq!(
            Property::Header("trace-id".into()).read(),
            Value::from("abc")
        );
        assert_eq!(Property::Header("other".into()).read(), Value::Null);
        assert_eq!(Property::PartitionId.read(), Value::BigInt(3));
        assert_eq!(Property::Offset.read(), Value::BigInt(7));
        assert_eq!(Property::EnqueuedTime.read(), Value::DateTime(42));
        assert_eq!(
            Property::EventId.read(),
            Value::from("00000001-0000-0003-0000-000000000007")
        );
        set_current(None);
        assert_eq!(Property::PartitionId.read(), Value::Null);
    }
}
