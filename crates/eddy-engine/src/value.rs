//! Values carry their own type (ASA types belong to values, not columns); records keep
//! field order and share their field names, so passing a row along copies no strings.

use crate::error::EventError;
use crate::time::format_datetime;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// One value of the dialect; serde round-trips it with its type (for snapshots); use
/// [`Value::to_json`] or [`Value::write_json`] for plain JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL (also a missing field).
    #[default]
    Null,
    /// `bit`
    Bit(bool),
    /// `bigint`
    BigInt(i64),
    /// `float`
    Float(f64),
    /// `nvarchar(max)`
    String(Arc<str>),
    /// `datetime` as 100-ns ticks since the Unix epoch (UTC).
    DateTime(i64),
    /// `record`
    Record(Arc<Record>),
    /// `array`
    Array(Arc<[Value]>),
}

/// Ordered named fields; names are shared between records of the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Record {
    names: Arc<[Arc<str>]>,
    values: Box<[Value]>,
}

impl Record {
    /// Builds a record from shared names and their values (extra values are dropped,
    /// missing ones are NULL), so rows of one query share one name list.
    pub fn new(names: Arc<[Arc<str>]>, mut values: Vec<Value>) -> Record {
        values.resize(names.len(), Value::Null);
        Record {
            names,
            values: values.into_boxed_slice(),
        }
    }

    /// Builds a record from `(name, value)` pairs, the convenient form for callers.
    pub fn from_pairs<N: Into<Arc<str>>>(pairs: impl IntoIterator<Item = (N, Value)>) -> Record {
        let (names, values): (Vec<Arc<str>>, Vec<Value>) =
            pairs.into_iter().map(|(n, v)| (n.into(), v)).unzip();
        Record {
            names: names.into(),
            values: values.into_boxed_slice(),
        }
    }

    /// Field by name, case-insensitive as ASA names are; the first match wins.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .and_then(|i| self.values.get(i))
    }

    /// Fields in order, to print or convert a record.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.names.iter().map(|n| &**n).zip(self.values.iter())
    }

    /// The shared name list, so derived rows can reuse it.
    pub fn names(&self) -> &Arc<[Arc<str>]> {
        &self.names
    }

    /// Values in field order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when the record has no fields.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl<N: Into<Arc<str>>> FromIterator<(N, Value)> for Record {
    fn from_iter<I: IntoIterator<Item = (N, Value)>>(pairs: I) -> Record {
        Record::from_pairs(pairs)
    }
}

/// Grouping identity: same type and same content (floats by bits). SQL comparison,
/// where `1 = 1.0`, is [`Value::sql_cmp`].
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bit(a), Value::Bit(b)) => a == b,
            (Value::BigInt(a), Value::BigInt(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::String(a), Value::String(b)) => a == b,
            (Value::DateTime(a), Value::DateTime(b)) => a == b,
            (Value::Record(a), Value::Record(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Value::Null => {}
            Value::Bit(b) => b.hash(state),
            Value::BigInt(i) | Value::DateTime(i) => i.hash(state),
            Value::Float(f) => f.to_bits().hash(state),
            Value::String(s) => s.hash(state),
            Value::Record(r) => r.hash(state),
            Value::Array(a) => a.hash(state),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.into())
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::BigInt(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bit(b)
    }
}

impl From<Record> for Value {
    fn from(r: Record) -> Value {
        Value::Record(Arc::new(r))
    }
}

impl Value {
    /// The ASA type name (as `GetType` reports it), for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bit(_) => "bit",
            Value::BigInt(_) => "bigint",
            Value::Float(_) => "float",
            Value::String(_) => "nvarchar(max)",
            Value::DateTime(_) => "datetime",
            Value::Record(_) => "record",
            Value::Array(_) => "array",
        }
    }

    /// True for NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Decodes one JSON document into a value (objects become records, integers bigint,
    /// other numbers float); the event decoder.
    pub fn from_json_slice(json: &[u8]) -> Result<Value, EventError> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let v = JsonSeed
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v));
        v.map_err(|e| EventError::Json {
            message: e.to_string(),
            line: e.line(),
            column: e.column(),
        })
    }

    /// Plain JSON (datetimes as ASA strings), for callers that want a `serde_json::Value`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bit(b) => J::Bool(*b),
            Value::BigInt(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::String(s) => J::String(s.to_string()),
            Value::DateTime(t) => J::String(format_datetime(*t)),
            Value::Record(r) => J::Object(
                r.fields()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
            Value::Array(a) => J::Array(a.iter().map(Value::to_json).collect()),
        }
    }

    /// Appends plain JSON to `out`: the fast path for sinks.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bit(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::BigInt(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Value::Float(f) if f.is_finite() => {
                // serde_json keeps the decimal point (`1.0`), so the type survives a round trip.
                let _ = serde_json::to_writer(&mut *out, f);
            }
            Value::Float(_) => out.extend_from_slice(b"null"),
            Value::String(s) => write_json_str(s, out),
            Value::DateTime(t) => write_json_str(&format_datetime(*t), out),
            Value::Record(r) => write_json_object(r.fields(), out),
            Value::Array(a) => {
                out.push(b'[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    v.write_json(out);
                }
                out.push(b']');
            }
        }
    }

    /// Number as f64 (bigint, float, bit), for mixed arithmetic and comparison.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Value::BigInt(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Bit(b) => Some(*b as i64 as f64),
            _ => None,
        }
    }

    /// SQL comparison: `None` when either side is NULL; bigint, float and bit compare as
    /// numbers; a string compared with a datetime is parsed as one. Other mixes are errors.
    pub fn sql_cmp(&self, other: &Value) -> Result<Option<Ordering>, String> {
        use Value::*;
        Ok(match (self, other) {
            (Null, _) | (_, Null) => None,
            (BigInt(a), BigInt(b)) => Some(a.cmp(b)),
            (String(a), String(b)) => Some(a.cmp(b)),
            (DateTime(a), DateTime(b)) => Some(a.cmp(b)),
            (Bit(a), Bit(b)) => Some(a.cmp(b)),
            (DateTime(a), String(s)) => Some(a.cmp(&parse_dt(s)?)),
            (String(s), DateTime(b)) => Some(parse_dt(s)?.cmp(b)),
            (a, b) => match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => x.partial_cmp(&y),
                _ => {
                    return Err(format!(
                        "cannot compare {} with {}",
                        a.type_name(),
                        b.type_name()
                    ));
                }
            },
        })
    }

    /// A total order over all values (type rank, then content), so that output ordered
    /// by group key never depends on hash-map order.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        fn rank(v: &Value) -> u8 {
            match v {
                Value::Null => 0,
                Value::Bit(_) => 1,
                Value::BigInt(_) | Value::Float(_) => 2,
                Value::String(_) => 3,
                Value::DateTime(_) => 4,
                Value::Record(_) => 5,
                Value::Array(_) => 6,
            }
        }
        match (self, other) {
            (Value::Bit(a), Value::Bit(b)) => a.cmp(b),
            (Value::BigInt(a), Value::BigInt(b)) | (Value::DateTime(a), Value::DateTime(b)) => {
                a.cmp(b)
            }
            (Value::String(a), Value::String(b)) => a.cmp(b),
            (Value::Record(a), Value::Record(b)) => {
                a.fields().lex_cmp(b.fields(), |(ka, va), (kb, vb)| {
                    ka.cmp(kb).then_with(|| va.total_cmp(vb))
                })
            }
            (Value::Array(a), Value::Array(b)) => a.iter().lex_cmp(b.iter(), Value::total_cmp),
            (a, b) if rank(a) == 2 && rank(b) == 2 => {
                let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                x.total_cmp(&y)
                    .then_with(|| matches!(a, Value::Float(_)).cmp(&matches!(b, Value::Float(_))))
            }
            (a, b) => rank(a).cmp(&rank(b)),
        }
    }
}

fn parse_dt(s: &str) -> Result<i64, String> {
    crate::time::parse_datetime(s).ok_or_else(|| format!("'{s}' is not a datetime"))
}

/// Lexicographic comparison with a custom element order (stable `Iterator::cmp_by` is not).
trait LexCmp: Iterator + Sized {
    fn lex_cmp<I: Iterator>(
        mut self,
        mut other: I,
        f: impl Fn(Self::Item, I::Item) -> Ordering,
    ) -> Ordering {
        loop {
            match (self.next(), other.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(a), Some(b)) => match f(a, b) {
                    Ordering::Equal => {}
                    o => return o,
                },
            }
        }
    }
}

impl<I: Iterator> LexCmp for I {}

fn write_json_str(s: &str, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_json_object<'a>(fields: impl Iterator<Item = (&'a str, &'a Value)>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in fields.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(k, out);
        out.push(b':');
        v.write_json(out);
    }
    out.push(b'}');
}

/// Decodes JSON straight into [`Value`] without an intermediate `serde_json::Value`.
pub(crate) struct JsonSeed;

impl<'de> DeserializeSeed<'de> for JsonSeed {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bit(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::BigInt(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::BigInt))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.into()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(JsonSeed)? {
            items.push(v);
        }
        Ok(Value::Array(items.into()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let (mut names, mut values) = (Vec::<Arc<str>>::new(), Vec::new());
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            names.push(Arc::from(&*k));
            values.push(map.next_value_seed(JsonSeed)?);
        }
        Ok(Value::Record(Arc::new(Record {
            names: names.into(),
            values: values.into_boxed_slice(),
        })))
    }
}

/// One output row: column names shared by every row of a query, values in column order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Column names (SELECT aliases keep their case).
    pub columns: Arc<[Arc<str>]>,
    /// Values, one per column.
    pub values: Vec<Value>,
}

impl Row {
    /// The row as a JSON object in column order.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.columns
                .iter()
                .zip(&self.values)
                .map(|(k, v)| (k.to_string(), v.to_json()))
                .collect(),
        )
    }

    /// Appends the row as one JSON object to `out` (no trailing newline): the sink fast path.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        write_json_object(self.columns.iter().map(|c| &**c).zip(&self.values), out);
    }

    /// Looks a column up by name, case-insensitively.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .and_then(|i| self.values.get(i))
    }

    /// The row as a record, for steps that feed later statements.
    pub(crate) fn into_record(self) -> Value {
        Value::Record(Arc::new(Record::new(self.columns, self.values)))
    }
}
