//! The on-disk batch: one append = one batch = one write(2).
//!
//! Layout (little-endian), `HEADER_LEN` = 40 bytes then the records:
//! ```text
//!  0 base_offset u64     offset of the first record (not under the CRC: assigned at append)
//!  8 length      u32     whole batch including this header
//! 12 crc         u32     CRC-32 (IEEE) of bytes 16..length
//! 16 magic u8 = 1, attributes u8 = 0, reserved u16 = 0
//! 20 record_count u32    >= 1; record i has offset base_offset + i
//! 24 first_timestamp_ms i64, 32 max_timestamp_ms i64
//! 40 records: timestamp_ms i64, key_len i32 (-1 = no key), key, value_len u32, value,
//!    header_count u32, then per header: name_len u16, name (UTF-8), value_len u32, value
//! ```

use bytes::Bytes;

use crate::{LogError, Record, StoredRecord};

/// Bytes of the fixed batch header.
pub(crate) const HEADER_LEN: usize = 40;
/// Largest batch one append may write; bigger appends must be split by the caller.
pub const MAX_BATCH_BYTES: usize = 16 << 20;
const MAGIC: u8 = 1;
/// The CRC starts after base offset, length and itself, so offsets can be assigned after encoding.
const CRC_START: usize = 16;
// The header layout above: base offset, length, crc, magic/attributes/reserved, count, 2 timestamps.
const _: () = assert!(HEADER_LEN == 8 + 4 + 4 + 4 + 4 + 8 + 8 && CRC_START == 8 + 4 + 4);
// Lengths are stored as u32.
const _: () = assert!(MAX_BATCH_BYTES <= u32::MAX as usize);

/// A batch read back whole, for layers (Kafka) that serve batches rather than records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Smallest record timestamp as appended first.
    pub first_timestamp_ms: i64,
    /// Largest record timestamp in the batch.
    pub max_timestamp_ms: i64,
    /// All records of the batch, in offset order.
    pub records: Vec<StoredRecord>,
}

/// The parsed fixed header; trusted only after `check_crc`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchHeader {
    pub base_offset: u64,
    pub length: u32,
    pub crc: u32,
    pub record_count: u32,
    pub first_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
}

impl BatchHeader {
    /// Offset after the batch's last record.
    pub fn next_offset(&self) -> u64 {
        self.base_offset + u64::from(self.record_count)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Parses and sanity-checks a header; `Err` names the check that failed (a torn or foreign tail).
pub(crate) fn parse_header(b: &[u8]) -> Result<BatchHeader, &'static str> {
    if b.len() < HEADER_LEN {
        return Err("short header");
    }
    let header = BatchHeader {
        base_offset: u64_at(b, 0),
        length: u32_at(b, 8),
        crc: u32_at(b, 12),
        record_count: u32_at(b, 20),
        first_timestamp_ms: u64_at(b, 24) as i64,
        max_timestamp_ms: u64_at(b, 32) as i64,
    };
    if b[16] != MAGIC || b[17] != 0 {
        return Err("bad magic or attributes");
    }
    let length = header.length as usize;
    if !(HEADER_LEN..=MAX_BATCH_BYTES).contains(&length) {
        return Err("batch length out of bounds");
    }
    // Each record takes at least 20 bytes, which bounds the count by the length.
    if header.record_count == 0 || header.record_count as usize > (length - HEADER_LEN) / 20 {
        return Err("record count out of bounds");
    }
    Ok(header)
}

/// True when the whole batch `b` (header included) matches its CRC.
pub(crate) fn check_crc(header: &BatchHeader, b: &[u8]) -> bool {
    b.len() == header.length as usize && crc32fast::hash(&b[CRC_START..]) == header.crc
}

/// Encodes `records` (at least one) into one batch with base offset 0; `set_base_offset` fixes
/// it at append.
pub(crate) fn encode(records: &[Record]) -> Result<(Vec<u8>, BatchHeader), LogError> {
    let too_large = |bytes: usize, max: usize| LogError::BatchTooLarge {
        bytes: bytes as u64,
        max: max as u64,
    };
    let mut size = HEADER_LEN;
    for r in records {
        size += 20 + r.key.as_ref().map_or(0, |k| k.len()) + r.value.len();
        for (name, value) in &r.headers {
            if name.len() > usize::from(u16::MAX) {
                return Err(too_large(name.len(), usize::from(u16::MAX)));
            }
            size += 6 + name.len() + value.len();
        }
    }
    if size > MAX_BATCH_BYTES {
        return Err(too_large(size, MAX_BATCH_BYTES));
    }
    let first_ts = records.first().map_or(0, |r| r.timestamp_ms);
    let max_ts = records.iter().map(|r| r.timestamp_ms).max().unwrap_or(0);
    let mut buf = Vec::with_capacity(size);
    buf.extend_from_slice(&0u64.to_le_bytes());
    buf.extend_from_slice(&(size as u32).to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(&[MAGIC, 0, 0, 0]);
    buf.extend_from_slice(&(records.len() as u32).to_le_bytes());
    buf.extend_from_slice(&first_ts.to_le_bytes());
    buf.extend_from_slice(&max_ts.to_le_bytes());
    for r in records {
        buf.extend_from_slice(&r.timestamp_ms.to_le_bytes());
        match &r.key {
            Some(k) => {
                buf.extend_from_slice(&(k.len() as i32).to_le_bytes());
                buf.extend_from_slice(k);
            }
            None => buf.extend_from_slice(&(-1i32).to_le_bytes()),
        }
        buf.extend_from_slice(&(r.value.len() as u32).to_le_bytes());
        buf.extend_from_slice(&r.value);
        buf.extend_from_slice(&(r.headers.len() as u32).to_le_bytes());
        for (name, value) in &r.headers {
            buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
            buf.extend_from_slice(value);
        }
    }
    debug_assert_eq!(buf.len(), size);
    let crc = crc32fast::hash(&buf[CRC_START..]);
    buf[12..16].copy_from_slice(&crc.to_le_bytes());
    let header = BatchHeader {
        base_offset: 0,
        length: size as u32,
        crc,
        record_count: records.len() as u32,
        first_timestamp_ms: first_ts,
        max_timestamp_ms: max_ts,
    };
    Ok((buf, header))
}

/// Stamps the offset assigned at append into an encoded batch (outside the CRC by design).
pub(crate) fn set_base_offset(batch: &mut [u8], base_offset: u64) {
    batch[0..8].copy_from_slice(&base_offset.to_le_bytes());
}

/// Bounds-checked cursor over a CRC-verified batch; values are zero-copy slices of it.
struct Cursor {
    buf: Bytes,
    pos: usize,
}

impl Cursor {
    fn take(&mut self, n: usize) -> Result<Bytes, &'static str> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or("record overruns batch")?;
        let out = self.buf.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }
    fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32_at(&self.take(4)?, 0))
    }
    fn i64(&mut self) -> Result<i64, &'static str> {
        Ok(u64_at(&self.take(8)?, 0) as i64)
    }
}

/// Decodes the records of a CRC-verified batch with offset >= `from`, at most `max` of them.
pub(crate) fn decode(
    header: &BatchHeader,
    batch: Bytes,
    from: u64,
    max: usize,
    out: &mut Vec<StoredRecord>,
) -> Result<(), &'static str> {
    let mut cur = Cursor {
        buf: batch,
        pos: HEADER_LEN,
    };
    let mut taken = 0;
    for i in 0..u64::from(header.record_count) {
        if taken == max {
            break;
        }
        let timestamp_ms = cur.i64()?;
        let key_len = cur.u32()? as i32;
        let key = if key_len < 0 {
            None
        } else {
            Some(cur.take(key_len as usize)?)
        };
        let value_len = cur.u32()? as usize;
        let value = cur.take(value_len)?;
        let header_count = cur.u32()?;
        let mut headers = Vec::new();
        for _ in 0..header_count {
            let name_len = usize::from(cur.u16()?);
            let name = cur.take(name_len)?;
            let name = std::str::from_utf8(&name)
                .map_err(|_| "header name is not UTF-8")?
                .to_string();
            let value_len = cur.u32()? as usize;
            headers.push((name, cur.take(value_len)?));
        }
        let offset = header.base_offset + i;
        if offset >= from {
            out.push(StoredRecord {
                offset,
                timestamp_ms,
                key,
                value,
                headers,
            });
            taken += 1;
        }
    }
    Ok(())
}
