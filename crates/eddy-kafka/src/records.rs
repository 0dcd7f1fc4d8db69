//! Kafka record batches (v2) ⇄ eddy log records.
//!
//! A produced batch becomes one log append (so a fetch from the middle of it returns the whole
//! batch, as Kafka does). The log's record timestamp is the broker's arrival time; the
//! producer's timestamp (CreateTime) is kept as a trailing header [`CREATE_TIME_HEADER`] that
//! Fetch turns back into the record timestamp, so Kafka consumers see what producers sent.
//! The first record of an idempotent producer's batch also carries [`PRODUCER_HEADER`], from
//! which a restarted broker rebuilds that producer's sequence state (`producers.rs`).

use bytes::{Bytes, BytesMut};
use eddy_log::{Record, StoredBatch};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};

use crate::error::code;

/// Header holding the producer's timestamp (8 bytes, big-endian ms since the epoch) on records
/// that came in over Kafka; eddy jobs see it, Kafka consumers get it back as the timestamp.
pub const CREATE_TIME_HEADER: &str = "eddy.kafka.create_time_ms";

/// Header on the first record of an idempotent producer's batch: producer id (i64), epoch
/// (i16), base sequence (i32) and record count (i32), big-endian; stripped by Fetch.
pub const PRODUCER_HEADER: &str = "eddy.kafka.producer";

/// Records one produced batch may carry; bounds the decoder's up-front allocation, which the
/// batch header (not the bytes actually sent) would otherwise size.
const MAX_RECORDS_PER_BATCH: i32 = 500_000;
/// Smallest encoded record v2: length, attributes, timestamp delta, offset delta, key length,
/// value length and header count, one byte each.
const MIN_RECORD_BYTES: usize = 7;
/// Bytes of a v2 batch header before the records.
const BATCH_HEADER_BYTES: usize = 61;

/// A produced batch, decoded and ready to append.
#[derive(Debug)]
pub(crate) struct ProducedBatch {
    /// -1 unless the producer is idempotent.
    pub producer_id: i64,
    /// The producer's epoch (with `producer_id`).
    pub producer_epoch: i16,
    /// Sequence of the first record (-1 when not idempotent).
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
    /// Part of a transaction (unsupported: rejected by the caller).
    pub transactional: bool,
    /// The records as the log stores them.
    pub records: Vec<Record>,
}

/// Decodes the `records` of one partition of a Produce request; `Err` is a Kafka error code.
pub(crate) fn decode_produced(bytes: &Bytes, now_ms: i64) -> Result<ProducedBatch, i16> {
    let infos = RecordBatchDecoder::decode_batch_info(&mut bytes.clone())
        .map_err(|_| code::CORRUPT_MESSAGE)?;
    // Produce v3+ carries exactly one batch of magic 2 (older formats stop decode_batch_info).
    let [info] = infos.as_slice() else {
        return Err(code::INVALID_RECORD);
    };
    let body = bytes.len().saturating_sub(BATCH_HEADER_BYTES);
    let count_ok = info.record_count > 0
        && info.record_count <= MAX_RECORDS_PER_BATCH
        && (info.compression != Compression::None
            || (info.record_count as usize) * MIN_RECORD_BYTES <= body);
    if !count_ok || info.control {
        return Err(code::INVALID_RECORD);
    }
    let set = RecordBatchDecoder::decode(&mut bytes.clone()).map_err(|_| code::CORRUPT_MESSAGE)?;
    let records = set
        .records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let mut headers: Vec<(String, Bytes)> = r
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.unwrap_or_default()))
                .collect();
            if i == 0 && info.producer_id >= 0 {
                let mut p = Vec::with_capacity(18);
                p.extend_from_slice(&info.producer_id.to_be_bytes());
                p.extend_from_slice(&info.producer_epoch.to_be_bytes());
                p.extend_from_slice(&info.base_sequence.to_be_bytes());
                p.extend_from_slice(&info.record_count.to_be_bytes());
                headers.push((PRODUCER_HEADER.to_string(), Bytes::from(p)));
            }
            headers.push((
                CREATE_TIME_HEADER.to_string(),
                Bytes::copy_from_slice(&r.timestamp.to_be_bytes()),
            ));
            Record {
                timestamp_ms: now_ms,
                key: r.key,
                value: r.value.unwrap_or_default(),
                headers,
            }
        })
        .collect();
    Ok(ProducedBatch {
        producer_id: info.producer_id,
        producer_epoch: info.producer_epoch,
        base_sequence: info.base_sequence,
        record_count: info.record_count,
        transactional: info.transactional,
        records,
    })
}

/// Appends `batch` to `out` as one uncompressed v2 record batch with the same offsets.
pub(crate) fn encode_stored(batch: &StoredBatch, out: &mut BytesMut) -> Result<(), String> {
    let records: Vec<KafkaRecord> = batch
        .records
        .iter()
        .map(|r| {
            let mut headers = r.headers.as_slice();
            let mut timestamp = r.timestamp_ms;
            if let Some(((name, value), rest)) = headers.split_last()
                && name == CREATE_TIME_HEADER
                && let Ok(ms) = <[u8; 8]>::try_from(value.as_ref())
            {
                timestamp = i64::from_be_bytes(ms);
                headers = rest;
                if let Some(((name, _), rest)) = headers.split_last()
                    && name == PRODUCER_HEADER
                {
                    headers = rest;
                }
            }
            let delta = r.offset - batch.base_offset;
            KafkaRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: r.offset as i64,
                // Chosen so the encoder keeps every record in one batch (it splits where
                // offset - sequence changes) and writes base sequence -1 (no producer).
                sequence: (delta as i32).wrapping_sub(1),
                timestamp,
                key: r.key.clone(),
                value: Some(r.value.clone()),
                headers: headers
                    .iter()
                    .map(|(k, v)| (StrBytes::from_string(k.clone()), Some(v.clone())))
                    .collect::<IndexMap<_, _>>(),
            }
        })
        .collect();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(out, &records, &options).map_err(|e| e.to_string())
}

/// An idempotent producer's batch as recorded by [`PRODUCER_HEADER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerMark {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

/// Reads the producer mark of a stored batch (on its first record), if it has one.
pub(crate) fn producer_mark(batch: &StoredBatch) -> Option<ProducerMark> {
    let first = batch.records.first()?;
    let (_, v) = first
        .headers
        .iter()
        .rev()
        .find(|(n, _)| n == PRODUCER_HEADER)?;
    let v: &[u8; 18] = v.as_ref().try_into().ok()?;
    Some(ProducerMark {
        producer_id: i64::from_be_bytes(v[0..8].try_into().ok()?),
        epoch: i16::from_be_bytes([v[8], v[9]]),
        base_sequence: i32::from_be_bytes(v[10..14].try_into().ok()?),
        record_count: i32::from_be_bytes(v[14..18].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_log::StoredRecord;

    fn kafka_record(offset: i64, ts: i64, key: &str) -> KafkaRecord {
        KafkaRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 7,
            producer_epoch: 1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: 40 + offset as i32,
            timestamp: ts,
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            value: Some(Bytes::from_static(b"v")),
            headers: [(
                StrBytes::from_static_str("h"),
                Some(Bytes::from_static(b"x")),
            )]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn produced_batches_keep_producer_state_and_create_time_for_every_codec() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let recs = [kafka_record(0, 1000, "a"), kafka_record(1, 1005, "b")];
            let mut buf = BytesMut::new();
            let options = RecordEncodeOptions {
                version: 2,
                compression,
            };
            RecordBatchEncoder::encode(&mut buf, &recs, &options).unwrap();
            let b = decode_produced(&buf.freeze(), 99).unwrap();
            assert_eq!(
                (b.producer_id, b.producer_epoch, b.base_sequence),
                (7, 1, 40)
            );
            assert_eq!(b.records.len(), 2);
            assert_eq!(b.records[1].timestamp_ms, 99, "log time is arrival time");
            assert_eq!(b.records[1].key.as_deref(), Some(&b"b"[..]));
            assert_eq!(
                b.records[1].headers[0],
                ("h".into(), Bytes::from_static(b"x"))
            );
            assert_eq!(b.records[1].headers[1].0, CREATE_TIME_HEADER);
            assert_eq!(b.records[0].headers[1].0, PRODUCER_HEADER);
        }
    }

    #[test]
    fn stored_batches_encode_back_with_offsets_and_create_time() {
        let stored = StoredBatch {
            base_offset: 10,
            first_timestamp_ms: 5,
            max_timestamp_ms: 5,
            records: (10..13)
                .map(|o| StoredRecord {
                    offset: o,
                    timestamp_ms: 5,
                    key: None,
                    value: Bytes::from(format!("v{o}")),
                    headers: vec![
                        ("k".into(), Bytes::from_static(b"1")),
                        (
                            CREATE_TIME_HEADER.into(),
                            Bytes::copy_from_slice(&777i64.to_be_bytes()),
                        ),
                    ],
                })
                .collect(),
        };
        let mut out = BytesMut::new();
        encode_stored(&stored, &mut out).unwrap();
        let mut bytes = out.freeze();
        let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
        assert_eq!(sets.len(), 1, "one stored batch is one Kafka batch");
        let r = &sets[0].records;
        assert_eq!(r.iter().map(|r| r.offset).collect::<Vec<_>>(), [10, 11, 12]);
        assert!(
            r.iter()
                .all(|r| r.timestamp == 777 && r.headers.len() == 1 && r.producer_id == -1)
        );
    }

    #[test]
    fn garbage_and_lying_record_counts_are_typed_errors() {
        assert_eq!(
            decode_produced(&Bytes::from_static(b"nonsense"), 0).unwrap_err(),
            code::CORRUPT_MESSAGE
        );
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &[kafka_record(0, 1, "a")], &options).unwrap();
        // Claim two billion records: must be refused before anything is allocated for them.
        buf[57..61].copy_from_slice(&2_000_000_000i32.to_be_bytes());
        let crc = crc32c(&buf[21..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            decode_produced(&buf.freeze(), 0).unwrap_err(),
            code::INVALID_RECORD
        );
    }

    /// CRC-32C, bitwise; only the test needs to forge a checksum.
    fn crc32c(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
