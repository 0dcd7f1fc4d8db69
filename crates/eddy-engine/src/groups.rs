//! The groups of one window (tumbling, snapshot or one session), laid out for memory:
//! a million group keys must fit in well under 200 bytes each.
//!
//! Each group gets an id, its position in flat arrays: its key is encoded into one byte
//! buffer shared by every group (no allocation per key, no enum padding), the index is a
//! hash table of ids alone (4 bytes a slot), and each aggregate keeps one array over
//! all groups ([`Column`]). The first event of each group is kept only when the query
//! reads it. The whole table is dropped when its window closes, so nothing is ever
//! removed from the arrays.
//!
//! Keys are compared and hashed as their encoding, which is canonical: two keys encode
//! to the same bytes exactly when they are equal [`Value`]s (same types, floats by bits).

use crate::agg::{AggKind, AggState, Column};
use crate::error::EvalError;
use crate::value::{Record, Value};
use crate::window::{ClosedRows, cmp_keys};
use hashbrown::{DefaultHashBuilder, HashTable};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::hash::BuildHasher;
use std::sync::Arc;

/// The groups of one window and their aggregate states.
#[derive(Debug, Clone, Default)]
pub(crate) struct Groups {
    /// Group ids, hashed by their encoded key.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Every group's encoded key, back to back, in id order.
    keys: Vec<u8>,
    /// Where each group's key ends in `keys`.
    ends: Vec<usize>,
    /// First event per group; empty while no group kept one (queries that never read
    /// the event outside aggregates pass NULL).
    firsts: Vec<Value>,
    /// One per aggregate.
    columns: Vec<Column>,
}

impl Groups {
    /// An empty table with room for `capacity` groups (the size of the last window).
    pub(crate) fn with_capacity(capacity: usize) -> Groups {
        Groups {
            index: HashTable::with_capacity(capacity),
            ends: Vec::with_capacity(capacity),
            ..Groups::default()
        }
    }

    /// Groups held.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no group is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Whether the groups hold `aggs` aggregates each (an empty table fits any query).
    pub(crate) fn fits(&self, aggs: usize) -> bool {
        self.is_empty() || self.columns.len() == aggs
    }

    fn key_bytes(&self, id: usize) -> &[u8] {
        key_slice(&self.keys, &self.ends, id)
    }

    /// Feeds one event's aggregate arguments to the group of `key`, creating the group
    /// (with `first` as its first event) when it is new. Every aggregate is updated even
    /// when one fails; the last error is returned.
    pub(crate) fn add(
        &mut self,
        key: &[Value],
        first: &Value,
        kinds: &[AggKind],
        args: &[Value],
    ) -> Result<(), EvalError> {
        if self.columns.len() != kinds.len() && self.is_empty() {
            let capacity = self.ends.capacity();
            self.columns = kinds.iter().map(|k| Column::new(*k, capacity)).collect();
        }
        // The key is encoded at the end of the key buffer: kept there if it is new,
        // cut off again if the group exists.
        let start = self.keys.len();
        for v in key {
            encode(v, &mut self.keys);
        }
        let Groups {
            index,
            hasher,
            keys,
            ends,
            firsts,
            columns,
        } = self;
        let probe = &keys[start..];
        let hash = hasher.hash_one(probe);
        let found = index
            .find(hash, |&id| {
                same_key(key_slice(keys, ends, id as usize), probe)
            })
            .copied();
        let id = match found {
            Some(id) => {
                keys.truncate(start);
                id as usize
            }
            None => {
                let id = ends.len();
                let Ok(id32) = u32::try_from(id) else {
                    keys.truncate(start);
                    return Err(EvalError::Overflow);
                };
                ends.push(keys.len());
                index.insert_unique(hash, id32, |&g| {
                    hasher.hash_one(key_slice(keys, ends, g as usize))
                });
                for (column, kind) in columns.iter_mut().zip(kinds) {
                    column.push(*kind);
                }
                if !first.is_null() {
                    firsts.resize(id, Value::Null);
                    firsts.push(first.clone());
                }
                id
            }
        };
        let mut result = Ok(());
        for (column, arg) in columns.iter_mut().zip(args) {
            if let Err(e) = column.update(id, arg) {
                result = Err(e);
            }
        }
        result
    }

    /// Group `id`'s key as values.
    fn key(&self, id: usize, scratch: &mut Vec<Value>) -> Arc<[Value]> {
        decode_key(self.key_bytes(id), scratch)
    }

    fn first(&self, id: usize) -> Value {
        self.firsts.get(id).cloned().unwrap_or(Value::Null)
    }

    /// Appends every group as a closed row of the window ending at `end`, in key order.
    pub(crate) fn finish(self, end: i64, out: &mut ClosedRows) {
        let from = out.rows.len();
        for id in 0..self.len() {
            let key = |keys: &mut Vec<Value>| decode_into(self.key_bytes(id), keys);
            let first = self.first(id);
            out.push(end, key, first, self.columns.iter().map(|c| c.result(id)));
        }
        out.sort_from(from);
    }
}

/// Whether two encoded keys are equal. An empty key (no GROUP BY key) is compared
/// without calling `memcmp`: with no bytes ever stored its pointer is dangling, and the
/// masked vector load `memcmp` starts with is very slow on such an address (a fault it
/// must suppress), 7 % of Nexmark q7, whose window has no key.
pub(crate) fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

fn key_slice<'a>(keys: &'a [u8], ends: &[usize], id: usize) -> &'a [u8] {
    let start = match id.checked_sub(1) {
        Some(prev) => ends.get(prev).copied().unwrap_or(0),
        None => 0,
    };
    let end = ends.get(id).copied().unwrap_or(start);
    keys.get(start..end).unwrap_or(&[])
}

/// One group as snapshots write it (the layout of the earlier per-group map, so older
/// snapshots still load).
#[derive(Serialize, Deserialize)]
struct SnapshotGroup {
    first: Value,
    aggs: Vec<AggState>,
}

/// Serialised as a key-ordered list of (key, group), like every group map of a snapshot.
impl Serialize for Groups {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut scratch = Vec::new();
        let mut groups: Vec<(Arc<[Value]>, SnapshotGroup)> = (0..self.len())
            .map(|id| {
                let group = SnapshotGroup {
                    first: self.first(id),
                    aggs: self.columns.iter().filter_map(|c| c.state(id)).collect(),
                };
                (self.key(id, &mut scratch), group)
            })
            .collect();
        groups.sort_unstable_by(|a, b| cmp_keys(&a.0, &b.0));
        groups.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Groups {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<(Box<[Value]>, SnapshotGroup)>::deserialize(d)?;
        let mut groups = Groups::with_capacity(list.len());
        for (key, group) in list {
            if groups.is_empty() {
                groups.columns = group.aggs.iter().map(Column::for_state).collect();
            } else if group.aggs.len() != groups.columns.len() {
                return Err(serde::de::Error::custom(
                    "groups of one window with different numbers of aggregates",
                ));
            }
            let start = groups.keys.len();
            for v in key.iter() {
                encode(v, &mut groups.keys);
            }
            let Groups {
                index,
                hasher,
                keys,
                ends,
                ..
            } = &mut groups;
            let probe = &keys[start..];
            let hash = hasher.hash_one(probe);
            if index
                .find(hash, |&id| {
                    same_key(key_slice(keys, ends, id as usize), probe)
                })
                .is_some()
            {
                return Err(serde::de::Error::custom("a group key twice in one window"));
            }
            let id = ends.len();
            let id32 = u32::try_from(id).map_err(serde::de::Error::custom)?;
            ends.push(keys.len());
            index.insert_unique(hash, id32, |&g| {
                hasher.hash_one(key_slice(keys, ends, g as usize))
            });
            for (column, state) in groups.columns.iter_mut().zip(group.aggs) {
                column.push_state(state);
            }
            if !group.first.is_null() {
                groups.firsts.resize(id, Value::Null);
                groups.firsts.push(group.first);
            }
        }
        Ok(groups)
    }
}

/// Type tags of the key encoding.
const NULL: u8 = 0;
const BIT: u8 = 1;
const BIGINT: u8 = 2;
const FLOAT: u8 = 3;
const STRING: u8 = 4;
const DATETIME: u8 = 5;
const RECORD: u8 = 6;
const ARRAY: u8 = 7;

/// Decodes a group key written by [`encode`] (one value after another), using `scratch`
/// as room so that only the returned key is allocated.
pub(crate) fn decode_key(bytes: &[u8], scratch: &mut Vec<Value>) -> Arc<[Value]> {
    scratch.clear();
    decode_into(bytes, scratch);
    // Moved rather than cloned: one allocation, no reference counts touched.
    scratch.drain(..).collect()
}

/// Appends the values of a group key written by [`encode`] to `out`.
pub(crate) fn decode_into(mut bytes: &[u8], out: &mut Vec<Value>) {
    while !bytes.is_empty() {
        match decode(&mut bytes) {
            Some(v) => out.push(v),
            // Only this crate writes keys; a short key is better than a panic.
            None => break,
        }
    }
}

/// Appends `v`'s canonical encoding: a type tag, then bigints as zigzag LEB128, floats
/// by their bits, datetimes as 8 bytes, strings and lists with a LEB128 length first.
pub(crate) fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(NULL),
        Value::Bit(b) => out.extend_from_slice(&[BIT, u8::from(*b)]),
        Value::BigInt(i) => {
            out.push(BIGINT);
            put_varint(out, ((*i << 1) ^ (*i >> 63)) as u64);
        }
        Value::Float(f) => {
            out.push(FLOAT);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::String(s) => {
            out.push(STRING);
            put_bytes(out, s.as_bytes());
        }
        Value::DateTime(t) => {
            out.push(DATETIME);
            out.extend_from_slice(&t.to_le_bytes());
        }
        Value::Record(r) => {
            out.push(RECORD);
            put_varint(out, r.len() as u64);
            for (name, v) in r.fields() {
                put_bytes(out, name.as_bytes());
                encode(v, out);
            }
        }
        Value::Array(items) => {
            out.push(ARRAY);
            put_varint(out, items.len() as u64);
            for v in items.iter() {
                encode(v, out);
            }
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads one value written by [`encode`] off the front of `bytes`.
fn decode(bytes: &mut &[u8]) -> Option<Value> {
    let (&tag, rest) = bytes.split_first()?;
    *bytes = rest;
    Some(match tag {
        NULL => Value::Null,
        BIT => Value::Bit(take(bytes, 1)?.first()? != &0),
        BIGINT => {
            let n = get_varint(bytes)?;
            Value::BigInt(((n >> 1) as i64) ^ -((n & 1) as i64))
        }
        FLOAT => Value::Float(f64::from_bits(u64::from_le_bytes(
            take(bytes, 8)?.try_into().ok()?,
        ))),
        STRING => Value::String(Arc::from(get_str(bytes)?)),
        DATETIME => Value::DateTime(i64::from_le_bytes(take(bytes, 8)?.try_into().ok()?)),
        RECORD => {
            let n = get_varint(bytes)?;
            let mut fields = Vec::new();
            for _ in 0..n {
                let name: Arc<str> = Arc::from(get_str(bytes)?);
                fields.push((name, decode(bytes)?));
            }
            Value::from(Record::from_pairs(fields))
        }
        ARRAY => {
            let n = get_varint(bytes)?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(decode(bytes)?);
            }
            Value::Array(items.into())
        }
        _ => return None,
    })
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if bytes.len() < n {
        return None;
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Some(head)
}

fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

fn get_str<'a>(bytes: &mut &'a [u8]) -> Option<&'a str> {
    let n = usize::try_from(get_varint(bytes)?).ok()?;
    std::str::from_utf8(take(bytes, n)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_values() -> Vec<Value> {
        let record = Value::from(Record::from_pairs([
            ("a", Value::BigInt(1)),
            ("b", Value::from("x")),
        ]));
        vec![
            Value::Null,
            Value::Bit(false),
            Value::Bit(true),
            Value::BigInt(0),
            Value::BigInt(-1),
            Value::BigInt(i64::MIN),
            Value::BigInt(i64::MAX),
            Value::Float(0.0),
            Value::Float(-0.0),
            Value::Float(1.5),
            Value::Float(f64::NAN),
            Value::from(""),
            Value::from("key12345"),
            Value::from("ünïcødé"),
            Value::DateTime(1_704_067_200 * 10_000_000),
            Value::DateTime(-5),
            record.clone(),
            Value::Array(vec![Value::Null, Value::BigInt(3), record].into()),
            Value::Array(Vec::new().into()),
        ]
    }

    #[test]
    fn key_encoding_round_trips_and_equal_bytes_mean_equal_values() {
        let values = sample_values();
        for a in &values {
            let mut bytes = Vec::new();
            encode(a, &mut bytes);
            let mut rest = &bytes[..];
            let back = decode(&mut rest).unwrap();
            assert!(rest.is_empty());
            assert_eq!(format!("{a:?}"), format!("{back:?}"));
            for b in &values {
                let mut other = Vec::new();
                encode(b, &mut other);
                assert_eq!(a == b, bytes == other, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn groups_aggregate_per_key_and_round_trip_through_snapshots() {
        let kinds = [AggKind::CountStar, AggKind::Sum, AggKind::Avg, AggKind::Max];
        let mut groups = Groups::default();
        for i in 0..1000i64 {
            let key = [
                Value::from(format!("k{}", i % 7).as_str()),
                Value::BigInt(i % 2),
            ];
            let v = Value::BigInt(i);
            let args = [Value::Bit(true), v.clone(), v.clone(), v];
            groups.add(&key, &Value::Null, &kinds, &args).unwrap();
        }
        assert_eq!(groups.len(), 14);
        let json = serde_json::to_string(&groups).unwrap();
        let back: Groups = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        let (mut a, mut b) = (ClosedRows::default(), ClosedRows::default());
        groups.finish(1, &mut a);
        back.finish(1, &mut b);
        assert_eq!(a.rows.len(), 14);
        for (x, y) in a.rows.iter().zip(&b.rows) {
            assert_eq!(a.key(x), b.key(y));
            assert_eq!(a.results(x), b.results(y));
        }
        // k0 with 0: i = 0, 14, 28, ... below 1000.
        let first = &a.rows[0];
        assert_eq!(a.key(first), &[Value::from("k0"), Value::BigInt(0)]);
        let n = (0..1000).filter(|i| i % 14 == 0).count() as i64;
        let sum: i64 = (0..1000).filter(|i| i % 14 == 0).sum();
        assert_eq!(
            a.results(first),
            &[
                Value::BigInt(n),
                Value::BigInt(sum),
                Value::Float(sum as f64 / n as f64),
                Value::BigInt(994),
            ]
        );
    }

    #[test]
    fn snapshots_written_before_the_flat_layout_still_load() {
        // A window's groups as the per-group map of earlier versions wrote them.
        let old = r#"[
            [[{"String":"a"}], {"first":"Null","aggs":[{"Count":2},{"Sum":{"BigInt":5}},{"Avg":{"sum":2.5,"count":2}}]}],
            [[{"String":"b"}], {"first":"Null","aggs":[{"Count":1},{"Sum":"Null"},{"Avg":{"sum":0.0,"count":0}}]}]
        ]"#;
        let groups: Groups = serde_json::from_str(old).unwrap();
        assert!(matches!(
            &groups.columns[..],
            [Column::Count(_), Column::Sum(_), Column::Avg(_)]
        ));
        let mut rows = ClosedRows::default();
        groups.clone().finish(7, &mut rows);
        let results: Vec<&[Value]> = rows.rows.iter().map(|r| rows.results(r)).collect();
        assert_eq!(
            results,
            [
                &[Value::BigInt(2), Value::BigInt(5), Value::Float(1.25)][..],
                &[Value::BigInt(1), Value::Null, Value::Null][..],
            ]
        );
        let written: serde_json::Value = serde_json::to_value(&groups).unwrap();
        let expected: serde_json::Value = serde_json::from_str(old).unwrap();
        assert_eq!(written, expected);
    }

    #[test]
    fn a_column_of_mixed_states_loads_as_general_states() {
        let mixed = r#"[
            [[{"BigInt":1}], {"first":"Null","aggs":[{"Count":3}]}],
            [[{"BigInt":2}], {"first":"Null","aggs":[{"Max":{"BigInt":9}}]}]
        ]"#;
        let groups: Groups = serde_json::from_str(mixed).unwrap();
        assert!(matches!(&groups.columns[..], [Column::Any(states)] if states.len() == 2));
        let mut rows = ClosedRows::default();
        groups.finish(1, &mut rows);
        let results: Vec<&[Value]> = rows.rows.iter().map(|r| rows.results(r)).collect();
        assert_eq!(results, [[Value::BigInt(3)], [Value::BigInt(9)]]);
    }

    #[test]
    fn per_group_state_of_count_sum_avg_is_40_bytes() {
        // What a COUNT/SUM/AVG group costs besides its key and its index slot.
        let bytes = std::mem::size_of::<i64>()
            + std::mem::size_of::<crate::agg::SumAcc>()
            + std::mem::size_of::<crate::agg::AvgAcc>();
        assert_eq!(bytes, 40);
    }

    #[test]
    fn first_events_are_kept_only_when_given() {
        let kinds = [AggKind::CountStar];
        let mut groups = Groups::default();
        let args = [Value::Bit(true)];
        groups
            .add(&[Value::BigInt(1)], &Value::Null, &kinds, &args)
            .unwrap();
        assert!(groups.firsts.is_empty());
        groups
            .add(&[Value::BigInt(2)], &Value::from("e2"), &kinds, &args)
            .unwrap();
        groups
            .add(&[Value::BigInt(2)], &Value::from("e3"), &kinds, &args)
            .unwrap();
        assert_eq!(groups.first(0), Value::Null);
        assert_eq!(groups.first(1), Value::from("e2"));
    }
}
