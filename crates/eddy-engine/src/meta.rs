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
use std::cell::Cell;
use std::sync::Arc;

/// Where and when one event arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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
}

thread_local! {
    static CURRENT: Cell<Option<EventMeta>> = const { Cell::new(None) };
}

/// Makes `meta` the metadata of the event about to be processed (`None`: no event, e.g.
/// while windows close).
pub(crate) fn set_current(meta: Option<EventMeta>) {
    CURRENT.with(|c| c.set(meta));
}

/// A metadata property a query can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Every user property as one record (`[User]`); eddy carries none yet, so empty.
    User,
    /// A property eddy does not carry (e.g. `[User].[x]`, headers): always NULL.
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
            Some(("user", _)) => return Some(Property::Absent),
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
            "partitionkey"
            | "iotconnectiondeviceid"
            | "connectiondeviceid"
            | "messageid"
            | "correlationid"
            | "key" => Property::Absent,
            _ => return None,
        })
    }

    /// The property of the current event; NULL outside an event.
    pub(crate) fn read(self) -> Value {
        let Some(m) = CURRENT.with(Cell::get) else {
            return Value::Null;
        };
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
                .map(Property::read)
                .to_vec();
                crate::value::Record::new(Arc::from(names), values).into()
            }
            Property::User => crate::value::Record::new(Arc::from(Vec::new()), Vec::new()).into(),
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
        assert_eq!(p("[User].[anything]"), Some(Property::Absent));
        assert_eq!(p("Nonsense"), None);
    }

    #[test]
    fn reads_the_current_event() {
        set_current(Some(EventMeta {
            input: 1,
            partition: 3,
            offset: 7,
            arrival: 42,
        }));
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
