//! Kafka record batches (v2) ⇄ eddy log records.
//!
//! A produced batch becomes one log append (so a fetch from the middle of it returns the whole
//! batch, as Kafka does). The log's record timestamp is the broker's arrival time; the
//! producer's timestamp (CreateTime) is kept as a trailing header [`CREATE_TIME_HEADER`] that
//! Fetch turns back into the record timestamp, so Kafka consumers see what producers sent.
//! The first record of an idempotent producer's batch also carries [`PRODUCER_HEADER`], from
//! which a restarted broker rebuilds that producer's sequence state (`producers.rs`).

use bytes::{BufMut, Bytes, BytesMut};
use eddy_log::{Record, StoredBatch, StoredRecord};
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use crate::error::code;

/// Header holding the producer's timestamp (8 bytes, big-endian ms since the epoch) on records
/// that came in over Kafka; eddy jobs see it, Kafka consumers get it back as the timestamp.
pub const CREATE_TIME_HEADER: &str = "eddy.kafka.create_time_ms";

/// Header on the first record of an idempotent producer's batch: producer id (i64), epoch
/// (i16), base sequence (i32) and record count (i32), big-endian; stripped by Fetch.
pub const PRODUCER_HEADER: &str = "eddy.kafka.producer";

/// Header marking which parts of a record were null rather than empty, which the log's record
/// cannot tell apart: bit 0 of byte 0 is the value, bit `i + 1` (little-endian over the bytes)
/// header `i`'s value. Present only when something was null; stripped by Fetch.
pub const NULLS_HEADER: &str = "eddy.kafka.nulls";

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
    let mut records = if info.compression == Compression::None {
        decode_plain(
            bytes,
            info.record_count as usize,
            now_ms,
            info.producer_id >= 0,
        )?
    } else {
        decode_compressed(bytes, now_ms)?
    };
    if info.producer_id >= 0
        && let Some(first) = records.first_mut()
    {
        let mut p = Vec::with_capacity(18);
        p.extend_from_slice(&info.producer_id.to_be_bytes());
        p.extend_from_slice(&info.producer_epoch.to_be_bytes());
        p.extend_from_slice(&info.base_sequence.to_be_bytes());
        p.extend_from_slice(&info.record_count.to_be_bytes());
        // Before the create-time header, which stays last.
        let at = first.headers.len().saturating_sub(1);
        first
            .headers
            .insert(at, (PRODUCER_HEADER.to_string(), Bytes::from(p)));
    }
    Ok(ProducedBatch {
        producer_id: info.producer_id,
        producer_epoch: info.producer_epoch,
        base_sequence: info.base_sequence,
        record_count: info.record_count,
        transactional: info.transactional,
        records,
    })
}

/// Decodes a compressed batch through `kafka-protocol` (which inflates it).
fn decode_compressed(bytes: &Bytes, now_ms: i64) -> Result<Vec<Record>, i16> {
    let set = RecordBatchDecoder::decode(&mut bytes.clone()).map_err(|_| code::CORRUPT_MESSAGE)?;
    Ok(set
        .records
        .into_iter()
        .map(|r| {
            let mut headers: Vec<(String, Bytes)> = Vec::with_capacity(r.headers.len() + 3);
            let mut nulls = Nulls::default();
            nulls.set(0, r.value.is_none());
            for (i, (k, v)) in r.headers.into_iter().enumerate() {
                nulls.set(i + 1, v.is_none());
                headers.push((k.to_string(), v.unwrap_or_default()));
            }
            nulls.push_to(&mut headers);
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
        .collect())
}

/// Decodes an uncompressed batch in place: keys, values and header values are slices of the
/// request's bytes (no copy), and the create times of all records share one buffer.
fn decode_plain(
    bytes: &Bytes,
    count: usize,
    now_ms: i64,
    idempotent: bool,
) -> Result<Vec<Record>, i16> {
    // The CRC covers attributes to the end; kafka-protocol checks it on the compressed path.
    let stored_crc = bytes
        .get(17..21)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .ok_or(code::CORRUPT_MESSAGE)?;
    let covered = bytes.get(21..).ok_or(code::CORRUPT_MESSAGE)?;
    if crc32c::crc32c(covered) != stored_crc {
        return Err(code::CORRUPT_MESSAGE);
    }
    let base_ts = bytes
        .get(27..35)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(i64::from_be_bytes)
        .ok_or(code::CORRUPT_MESSAGE)?;
    let mut times = BytesMut::with_capacity(count * 8);
    let mut cur = Cursor {
        buf: bytes,
        pos: BATCH_HEADER_BYTES,
    };
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::try_from(cur.varint()?).map_err(|_| code::CORRUPT_MESSAGE)?;
        let end = cur.pos.checked_add(len).ok_or(code::CORRUPT_MESSAGE)?;
        if end > bytes.len() {
            return Err(code::CORRUPT_MESSAGE);
        }
        let mut rec = Cursor {
            buf: bytes,
            pos: cur.pos,
        };
        rec.take(1)?; // attributes: unused by v2 records
        let ts = base_ts.wrapping_add(rec.varint()?);
        rec.varint()?; // offset delta: the log assigns dense offsets
        let key = rec.nullable()?;
        let value = rec.nullable()?;
        let mut nulls = Nulls::default();
        nulls.set(0, value.is_none());
        let value = value.unwrap_or_default();
        let n = usize::try_from(rec.varint()?).map_err(|_| code::CORRUPT_MESSAGE)?;
        if n > len {
            return Err(code::CORRUPT_MESSAGE);
        }
        let mut headers = Vec::with_capacity(n + 1 + usize::from(idempotent));
        for i in 0..n {
            let name = rec.nullable()?.ok_or(code::CORRUPT_MESSAGE)?;
            let name = std::str::from_utf8(&name).map_err(|_| code::CORRUPT_MESSAGE)?;
            let value = rec.nullable()?;
            nulls.set(i + 1, value.is_none());
            headers.push((name.to_string(), value.unwrap_or_default()));
        }
        nulls.push_to(&mut headers);
        if rec.pos != end {
            return Err(code::CORRUPT_MESSAGE);
        }
        // Record i's create time is bytes 8i..8i+8 of `times`, set below once it is frozen.
        times.put_i64(ts);
        headers.push((CREATE_TIME_HEADER.to_string(), Bytes::new()));
        records.push(Record {
            timestamp_ms: now_ms,
            key,
            value,
            headers,
        });
        cur.pos = end;
    }
    if cur.pos != bytes.len() {
        return Err(code::CORRUPT_MESSAGE);
    }
    let times = times.freeze();
    for (i, r) in records.iter_mut().enumerate() {
        if let Some((_, v)) = r.headers.last_mut() {
            *v = times.slice(i * 8..i * 8 + 8);
        }
    }
    Ok(records)
}

/// Which of a record's value and header values were null ([`NULLS_HEADER`]).
#[derive(Default)]
struct Nulls(Vec<u8>);

impl Nulls {
    /// Marks bit `i` when `null`.
    fn set(&mut self, i: usize, null: bool) {
        if null {
            if self.0.len() <= i / 8 {
                self.0.resize(i / 8 + 1, 0);
            }
            self.0[i / 8] |= 1 << (i % 8);
        }
    }

    /// Whether bit `i` of a stored marker is set.
    fn get(marker: Option<&Bytes>, i: usize) -> bool {
        marker
            .and_then(|m| m.get(i / 8))
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    /// Appends the marker header when anything was null.
    fn push_to(self, headers: &mut Vec<(String, Bytes)>) {
        if !self.0.is_empty() {
            headers.push((NULLS_HEADER.to_string(), Bytes::from(self.0)));
        }
    }
}

/// Reads Kafka's varints and length-prefixed fields from a record batch, bounds-checked.
struct Cursor<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Cursor<'_> {
    /// A zigzag varint of at most 10 bytes (Kafka's varint and varlong).
    fn varint(&mut self) -> Result<i64, i16> {
        let mut z: u64 = 0;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(code::CORRUPT_MESSAGE)?;
            self.pos += 1;
            z |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(code::CORRUPT_MESSAGE)
    }

    /// `n` bytes as a slice of the buffer.
    fn take(&mut self, n: usize) -> Result<Bytes, i16> {
        let end = self.pos.checked_add(n).ok_or(code::CORRUPT_MESSAGE)?;
        if end > self.buf.len() {
            return Err(code::CORRUPT_MESSAGE);
        }
        let out = self.buf.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }

    /// A varint length (-1 = null) and that many bytes.
    fn nullable(&mut self) -> Result<Option<Bytes>, i16> {
        match self.varint()? {
            -1 => Ok(None),
            n => {
                let n = usize::try_from(n).map_err(|_| code::CORRUPT_MESSAGE)?;
                self.take(n).map(Some)
            }
        }
    }
}

/// Appends `batch` to `out` as one uncompressed v2 record batch with the same offsets.
///
/// Written directly rather than through `kafka-protocol`'s encoder, which would first build a
/// record (and a header map) per stored record: fetch is the hot path of every consumer.
pub(crate) fn encode_stored(batch: &StoredBatch, out: &mut BytesMut) -> Result<(), String> {
    let count = i32::try_from(batch.records.len()).map_err(|e| e.to_string())?;
    let last = batch.records.last().ok_or("empty stored batch")?;
    let last_delta =
        i32::try_from(last.offset.saturating_sub(batch.base_offset)).map_err(|e| e.to_string())?;
    // The producer's timestamps; the base is their minimum so every delta is non-negative.
    let (mut base_ts, mut max_ts) = (i64::MAX, i64::MIN);
    for r in &batch.records {
        let ts = kafka_view(r).timestamp;
        base_ts = base_ts.min(ts);
        max_ts = max_ts.max(ts);
    }
    let start = out.len();
    out.put_i64(batch.base_offset as i64);
    out.put_i32(0); // batch length, patched below
    out.put_i32(0); // partition leader epoch
    out.put_i8(2); // magic
    out.put_u32(0); // crc, patched below
    let crc_from = out.len();
    out.put_i16(0); // attributes: no compression, CreateTime, not transactional
    out.put_i32(last_delta);
    out.put_i64(base_ts);
    out.put_i64(max_ts);
    out.put_i64(-1); // producer id
    out.put_i16(-1); // producer epoch
    out.put_i32(-1); // base sequence
    out.put_i32(count);
    for r in &batch.records {
        let KafkaView {
            timestamp: ts,
            headers,
            nulls,
        } = kafka_view(r);
        let key_len = r.key.as_ref().map_or(-1, |k| k.len() as i64);
        let value_len = if Nulls::get(nulls, 0) {
            -1
        } else {
            r.value.len() as i64
        };
        let header_len = |i: usize, v: &Bytes| {
            if Nulls::get(nulls, i + 1) {
                -1
            } else {
                v.len() as i64
            }
        };
        let mut body = 1 // attributes
            + varint_len(ts - base_ts)
            + varint_len(r.offset.saturating_sub(batch.base_offset) as i64)
            + varint_len(key_len)
            + r.key.as_ref().map_or(0, |k| k.len())
            + varint_len(value_len)
            + r.value.len()
            + varint_len(headers.len() as i64);
        for (i, (name, value)) in headers.iter().enumerate() {
            body += varint_len(name.len() as i64)
                + name.len()
                + varint_len(header_len(i, value))
                + value.len();
        }
        out.reserve(body + 5);
        put_varint(out, body as i64);
        out.put_i8(0);
        put_varint(out, ts - base_ts);
        put_varint(out, r.offset.saturating_sub(batch.base_offset) as i64);
        put_varint(out, key_len);
        if let Some(k) = &r.key {
            out.put_slice(k);
        }
        put_varint(out, value_len);
        out.put_slice(&r.value);
        put_varint(out, headers.len() as i64);
        for (i, (name, value)) in headers.iter().enumerate() {
            put_varint(out, name.len() as i64);
            out.put_slice(name.as_bytes());
            put_varint(out, header_len(i, value));
            out.put_slice(value);
        }
    }
    let length = i32::try_from(out.len() - start - 12).map_err(|e| e.to_string())?;
    out[start + 8..start + 12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&out[crc_from..]);
    out[crc_from - 4..crc_from].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// A stored record as Kafka consumers see it.
struct KafkaView<'a> {
    /// The producer's timestamp (from [`CREATE_TIME_HEADER`]), else the log's.
    timestamp: i64,
    /// The headers without eddy's own trailing ones.
    headers: &'a [(String, Bytes)],
    /// The [`NULLS_HEADER`] marker, if the record had one.
    nulls: Option<&'a Bytes>,
}

/// Splits eddy's trailing headers (create time, producer mark, nulls) off a stored record.
fn kafka_view(r: &StoredRecord) -> KafkaView<'_> {
    let mut view = KafkaView {
        timestamp: r.timestamp_ms,
        headers: r.headers.as_slice(),
        nulls: None,
    };
    if let Some(((name, value), rest)) = view.headers.split_last()
        && name == CREATE_TIME_HEADER
        && let Ok(ms) = <[u8; 8]>::try_from(value.as_ref())
    {
        view.timestamp = i64::from_be_bytes(ms);
        view.headers = rest;
        if let Some(((name, _), rest)) = view.headers.split_last()
            && name == PRODUCER_HEADER
        {
            view.headers = rest;
        }
        if let Some(((name, marker), rest)) = view.headers.split_last()
            && name == NULLS_HEADER
        {
            view.nulls = Some(marker);
            view.headers = rest;
        }
    }
    view
}

/// The timestamp Kafka consumers see for a stored record (the producer's, CreateTime).
pub(crate) fn kafka_timestamp(r: &StoredRecord) -> i64 {
    kafka_view(r).timestamp
}

/// Bytes of `v` as a zigzag varint (Kafka's varint and varlong).
fn varint_len(v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

/// Writes `v` as a zigzag varint.
fn put_varint(out: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.put_u8((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.put_u8(z as u8);
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
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

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
    fn uncompressed_batches_decode_nulls_headers_and_negative_deltas_like_kafka_protocol() {
        let mut recs = vec![
            kafka_record(0, 2000, "a"),
            kafka_record(1, 1000, "b"),
            kafka_record(2, 3000, "c"),
        ];
        recs[1].key = None;
        recs[1].value = None;
        recs[2].headers.insert(StrBytes::from_static_str("n"), None);
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &recs, &options).unwrap();
        let b = decode_produced(&buf.freeze(), 5).unwrap();
        let create = |r: &Record| {
            let (name, v) = r.headers.last().unwrap();
            assert_eq!(name, CREATE_TIME_HEADER);
            i64::from_be_bytes(v.as_ref().try_into().unwrap())
        };
        assert_eq!(
            b.records.iter().map(create).collect::<Vec<_>>(),
            [2000, 1000, 3000]
        );
        assert_eq!(b.records[1].key, None);
        assert!(b.records[1].value.is_empty());
        assert_eq!(b.records[0].headers[1].0, PRODUCER_HEADER);
        assert_eq!(b.records[2].headers[1], ("n".into(), Bytes::new()));
    }

    #[test]
    fn null_values_and_header_values_come_back_null_not_empty() {
        for compression in [Compression::None, Compression::Lz4] {
            let mut recs = vec![kafka_record(0, 1, "a"), kafka_record(1, 2, "b")];
            recs[0].value = None;
            recs[1].headers.insert(StrBytes::from_static_str("n"), None);
            recs[1].value = Some(Bytes::new());
            let mut buf = BytesMut::new();
            let options = RecordEncodeOptions {
                version: 2,
                compression,
            };
            RecordBatchEncoder::encode(&mut buf, &recs, &options).unwrap();
            let produced = decode_produced(&buf.freeze(), 5).unwrap();
            let stored = StoredBatch {
                base_offset: 0,
                first_timestamp_ms: 5,
                max_timestamp_ms: 5,
                records: produced
                    .records
                    .into_iter()
                    .zip(0..)
                    .map(|(r, offset)| StoredRecord {
                        offset,
                        timestamp_ms: r.timestamp_ms,
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                    })
                    .collect(),
            };
            let mut out = BytesMut::new();
            encode_stored(&stored, &mut out).unwrap();
            let set = RecordBatchDecoder::decode(&mut out.freeze()).unwrap();
            let r = &set.records;
            assert_eq!((r[0].value.clone(), r[0].timestamp), (None, 1));
            assert_eq!(r[0].headers.len(), 1, "eddy's own headers stripped");
            assert_eq!(r[1].value, Some(Bytes::new()), "empty stays empty");
            let h: Vec<_> = r[1]
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            assert_eq!(
                h,
                [
                    ("h".to_string(), Some(Bytes::from_static(b"x"))),
                    ("n".to_string(), None)
                ]
            );
        }
    }

    #[test]
    fn truncated_or_flipped_uncompressed_batches_are_errors_not_panics() {
        let recs = [kafka_record(0, 1, "a"), kafka_record(1, 2, "b")];
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &recs, &options).unwrap();
        let whole = buf.freeze();
        for len in 0..whole.len() {
            assert!(decode_produced(&whole.slice(..len), 0).is_err(), "{len}");
        }
        for at in 21..whole.len() {
            let mut b = BytesMut::from(&whole[..]);
            b[at] ^= 0x40;
            assert!(decode_produced(&b.freeze(), 0).is_err(), "flip at {at}");
        }
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
