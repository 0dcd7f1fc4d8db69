//! The event decoder: JSON straight into [`Value`], keeping only the top-level fields the
//! query reads and reusing one field-name list across events of the same shape, so a
//! homogeneous stream allocates no names per event.

use crate::error::EventError;
use crate::value::{JsonSeed, Record, Value};
use eddy_sql::ast::{Expr, Ident, JoinTarget, Select, SelectItem};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use std::fmt;
use std::sync::Arc;

/// Decodes the events of one input.
#[derive(Default)]
pub(crate) struct Decoder {
    /// Top-level fields to keep (any case); `None` keeps all.
    wanted: Option<Vec<String>>,
    /// Names of the last decoded event, reused when the next has the same.
    last_names: Option<Arc<[Arc<str>]>>,
    /// Every key of the last decoded object in order, with the name it was kept under
    /// (`None`: skipped): a key equal to the one at its place last time is decided by one
    /// comparison instead of a search of `wanted`, and keeps the same shared name.
    keys: Vec<(Box<str>, Option<Arc<str>>)>,
}

impl Decoder {
    /// Narrows the fields kept to `fields` (`None`: every field is needed).
    pub(crate) fn want(&mut self, fields: Option<Vec<String>>, first: bool) {
        self.keys.clear();
        self.wanted = match (first, &mut self.wanted, fields) {
            (true, _, f) => f,
            (false, Some(w), Some(f)) => {
                w.extend(f);
                return;
            }
            _ => None,
        };
    }

    /// Decodes one JSON document; objects lose the fields the query never reads.
    pub(crate) fn decode(&mut self, json: &[u8]) -> Result<Value, EventError> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let v = TopSeed(self)
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v));
        v.map_err(|e| EventError::Json {
            message: e.to_string(),
            line: e.line(),
            column: e.column(),
        })
    }
}

struct TopSeed<'a>(&'a mut Decoder);

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
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
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Array(Arc::new([])))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let dec = self.0;
        let last = dec.last_names.take();
        // Sized for the last event's shape, so a stream of one shape grows no vectors.
        let mut values = Vec::with_capacity(last.as_ref().map_or(0, |l| l.len()));
        let mut same = true;
        let mut index = 0;
        while let Some(kept) = map.next_key_seed(KeySeed {
            wanted: dec.wanted.as_deref(),
            keys: &mut dec.keys,
            index,
        })? {
            if kept {
                // Compared by address, without taking a reference: the names list is
                // built only when the shape changed.
                let name = dec.keys.get(index).and_then(|(_, n)| n.as_ref());
                same &= last
                    .as_ref()
                    .and_then(|l| l.get(values.len()))
                    .zip(name)
                    .is_some_and(|(p, n)| Arc::ptr_eq(p, n));
                values.push(map.next_value_seed(JsonSeed)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            index += 1;
        }
        dec.keys.truncate(index);
        let names: Arc<[Arc<str>]> = match last {
            Some(l) if same && l.len() == values.len() => l,
            _ => dec.keys.iter().filter_map(|(_, n)| n.clone()).collect(),
        };
        dec.last_names = Some(names.clone());
        Ok(Value::Record(Arc::new(Record::new(names, values))))
    }
}

/// Reads key number `index` of an object into `keys`: whether the query uses it (its
/// name there is then the last object's when that key is the same).
struct KeySeed<'a> {
    wanted: Option<&'a [String]>,
    keys: &'a mut Vec<(Box<str>, Option<Arc<str>>)>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        if let Some((key, kept)) = self.keys.get(self.index)
            && **key == *s
        {
            return Ok(kept.is_some());
        }
        let kept = match self.wanted {
            Some(w) if !w.iter().any(|x| x.eq_ignore_ascii_case(s)) => None,
            _ => Some(Arc::from(s)),
        };
        let is_kept = kept.is_some();
        let entry = (Box::from(s), kept);
        match self.keys.get_mut(self.index) {
            Some(slot) => *slot = entry,
            None => self.keys.push(entry),
        }
        Ok(is_kept)
    }
}

/// The top-level fields of `reference` a SELECT reads; `None` when it needs them all
/// (`*`, `s.*`). `EventEnqueuedUtcTime` is always kept, for `Arrival::FromPayload`.
pub(crate) fn fields_read(select: &Select, reference: &str) -> Option<Vec<String>> {
    let mut fields = vec!["EventEnqueuedUtcTime".to_string()];
    let mut whole = false;
    let mut add = |parts: &[Ident]| {
        // No parts: a function that returns the whole event (TopOne, CollectTop).
        whole |= parts.is_empty() || parts.len() == 1 && parts[0].eq_ignore_case(reference);
        let skip = usize::from(parts.len() > 1 && parts[0].eq_ignore_case(reference));
        if let Some(p) = parts.get(skip) {
            fields.push(p.name.clone());
        }
    };
    let mut exprs: Vec<&Expr> = Vec::new();
    for item in &select.items {
        match item {
            SelectItem::Expr { expr, .. } => exprs.push(expr),
            _ => return None,
        }
    }
    exprs.extend(
        select
            .filter
            .iter()
            .chain(&select.group_by)
            .chain(&select.having),
    );
    for join in &select.from.joins {
        match &join.right {
            JoinTarget::Function { call, .. } => exprs.push(call),
            JoinTarget::Source(_) => return None,
        }
        exprs.extend(join.on.iter());
    }
    let src = &select.from.source;
    exprs.extend(src.partition_by.iter());
    if let Some(ts) = &src.timestamp_by {
        exprs.push(&ts.expr);
        exprs.extend(&ts.over);
    }
    for e in exprs {
        walk(e, &mut add);
    }
    (!whole).then_some(fields)
}

fn walk(e: &Expr, f: &mut impl FnMut(&[Ident])) {
    match e {
        Expr::Literal(..) => {}
        Expr::Column(parts, _) => f(parts),
        Expr::Function(call) => {
            let name = call.dotted_name();
            // These read whole events (Collect only without an argument).
            if name.eq_ignore_ascii_case("topone")
                || name.eq_ignore_ascii_case("collecttop")
                || name.eq_ignore_ascii_case("collect") && call.args.is_empty()
            {
                f(&[]);
            }
            call.args.iter().for_each(|a| walk(a, f));
            if let Some(o) = &call.over {
                o.partition_by
                    .iter()
                    .chain(o.order_by.iter().map(|(e, _)| e))
                    .chain(&o.when)
                    .for_each(|a| walk(a, f));
            }
        }
        Expr::Binary { left, right, .. } => {
            walk(left, f);
            walk(right, f);
        }
        Expr::Unary { expr, .. }
        | Expr::Cast { expr, .. }
        | Expr::IsNull { expr, .. }
        | Expr::Member { expr, .. }
        | Expr::Nested(expr, _) => walk(expr, f),
        Expr::Case {
            operand,
            branches,
            else_result,
            ..
        } => {
            operand.iter().chain(else_result).for_each(|e| walk(e, f));
            branches.iter().for_each(|(w, t)| {
                walk(w, f);
                walk(t, f);
            });
        }
        Expr::Between {
            expr, low, high, ..
        } => [expr, low, high].into_iter().for_each(|e| walk(e, f)),
        Expr::InList { expr, list, .. } => {
            walk(expr, f);
            list.iter().for_each(|e| walk(e, f));
        }
        Expr::Like { expr, pattern, .. } => {
            walk(expr, f);
            walk(pattern, f);
        }
    }
}
