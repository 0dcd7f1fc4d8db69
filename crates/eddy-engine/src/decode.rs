//! The event decoder: JSON straight into [`Value`], keeping only the top-level fields the
//! query reads and reusing one field-name list across events of the same shape, so a
//! homogeneous stream allocates no names per event. A top-level object is read by a
//! hand-written pass that skips unread values without building them; serde_json decodes
//! (or reports) whatever that pass does not accept, so it stays the reference for what is
//! valid and for error positions (a test compares the two). The pass exists for speed: it
//! took Nexmark q1 from NDJSON from 1.15 M to 1.6 M events/s per core (BENCHMARKS.md).

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
    ///
    /// A top-level object of plain keys is read by [`Fast`], which skips unread values
    /// without building them; anything it does not handle or finds malformed goes through
    /// serde_json from the start, so errors (message, line, column) are serde_json's.
    pub(crate) fn decode(&mut self, json: &[u8]) -> Result<Value, EventError> {
        let last = self.last_names.take();
        match self.decode_fast(json, &last) {
            Some(v) => Ok(v),
            None => {
                self.last_names = last;
                self.decode_serde(json)
            }
        }
    }

    /// The general path: serde_json over the whole document.
    fn decode_serde(&mut self, json: &[u8]) -> Result<Value, EventError> {
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
        Ok(decide_key(self.wanted, self.keys, self.index, s))
    }
}

/// Whether key number `index` is kept, recording it in `keys` when it is not the key at
/// that place in the last object.
fn decide_key(
    wanted: Option<&[String]>,
    keys: &mut Vec<(Box<str>, Option<Arc<str>>)>,
    index: usize,
    s: &str,
) -> bool {
    if let Some((key, kept)) = keys.get(index)
        && **key == *s
    {
        return kept.is_some();
    }
    let kept = match wanted {
        Some(w) if !w.iter().any(|x| x.eq_ignore_ascii_case(s)) => None,
        _ => Some(Arc::from(s)),
    };
    let is_kept = kept.is_some();
    let entry = (Box::from(s), kept);
    match keys.get_mut(index) {
        Some(slot) => *slot = entry,
        None => keys.push(entry),
    }
    is_kept
}

impl Decoder {
    /// The fast path: `None` when the document is not a top-level object of unescaped
    /// keys, or is malformed anywhere (serde_json then decodes it, or reports the error).
    /// Accepts exactly what serde_json accepts for the documents it handles: the whole
    /// line is checked as UTF-8 first, and skipped values are checked against the JSON
    /// grammar (not built).
    fn decode_fast(&mut self, json: &[u8], last: &Option<Arc<[Arc<str>]>>) -> Option<Value> {
        let text = std::str::from_utf8(json).ok()?;
        let mut c = Fast {
            b: json,
            s: text,
            i: 0,
        };
        c.ws();
        c.eat(b'{')?;
        c.ws();
        let mut values = Vec::with_capacity(last.as_ref().map_or(0, |l| l.len()));
        let mut same = true;
        let mut index = 0;
        if c.peek() == Some(b'}') {
            c.i += 1;
        } else {
            loop {
                if c.peek()? != b'"' {
                    return None;
                }
                // The key at this place last time, when the document repeats it here
                // (it had no escapes or control characters, so the same bytes followed by
                // a quote are the same string): no scan, no search.
                let cached = self.keys.get(index).and_then(|(k, kept)| {
                    let end = c.i + 1 + k.len();
                    let same =
                        json.get(c.i + 1..end)? == k.as_bytes() && json.get(end) == Some(&b'"');
                    same.then_some((end + 1, kept.is_some()))
                });
                let kept = match cached {
                    Some((next, kept)) => {
                        c.i = next;
                        kept
                    }
                    None => {
                        let (ks, ke) = c.string()?.plain()?;
                        let key = text.get(ks..ke)?;
                        decide_key(self.wanted.as_deref(), &mut self.keys, index, key)
                    }
                };
                c.ws();
                c.eat(b':')?;
                c.ws();
                if kept {
                    let name = self.keys.get(index).and_then(|(_, n)| n.as_ref());
                    same &= last
                        .as_ref()
                        .and_then(|l| l.get(values.len()))
                        .zip(name)
                        .is_some_and(|(p, n)| Arc::ptr_eq(p, n));
                    values.push(c.value()?);
                } else {
                    c.skip(0)?;
                }
                index += 1;
                c.ws();
                match c.peek()? {
                    b',' => {
                        c.i += 1;
                        c.ws();
                    }
                    b'}' => {
                        c.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        c.ws();
        if c.i != json.len() {
            return None;
        }
        self.keys.truncate(index);
        let names: Arc<[Arc<str>]> = match last {
            Some(l) if same && l.len() == values.len() => l.clone(),
            _ => self.keys.iter().filter_map(|(_, n)| n.clone()).collect(),
        };
        self.last_names = Some(names.clone());
        Some(Value::Record(Arc::new(Record::new(names, values))))
    }
}

/// Nesting depth past which the fast path leaves a document to serde_json (whose own
/// limit is 128).
const MAX_DEPTH: usize = 100;

/// A cursor over one JSON document for the fast path; every method returns `None` on
/// anything it does not accept.
struct Fast<'a> {
    /// The document's bytes.
    b: &'a [u8],
    /// The same, checked as UTF-8 once: strings are sliced out of it without a check.
    s: &'a str,
    i: usize,
}

/// A scanned string: its contents' range, and whether it holds escapes.
struct Scanned {
    start: usize,
    end: usize,
    escaped: bool,
}

impl Scanned {
    /// The range when the string has no escapes (its bytes are then its text).
    fn plain(self) -> Option<(usize, usize)> {
        (!self.escaped).then_some((self.start, self.end))
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each of 8 bytes (read little-endian) that may be a quote, a backslash
/// or a control character; the lowest one set is exact (borrows only carry upward), so
/// its byte is the first such.
fn special(w: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    zero(w ^ (ONES * u64::from(b'"')))
        | zero(w ^ (ONES * u64::from(b'\\')))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
}

impl Fast<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// A string, at its opening quote; checks escapes and control characters as
    /// serde_json does (UTF-8 was checked for the whole document).
    fn string(&mut self) -> Option<Scanned> {
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            while let Some(chunk) = self.b.get(self.i..self.i + 8) {
                let w = u64::from_le_bytes(chunk.try_into().ok()?);
                let m = special(w);
                if m != 0 {
                    self.i += (m.trailing_zeros() / 8) as usize;
                    break;
                }
                self.i += 8;
            }
            match self.peek()? {
                b'"' => {
                    let end = self.i;
                    self.i += 1;
                    return Some(Scanned {
                        start,
                        end,
                        escaped,
                    });
                }
                b'\\' => {
                    escaped = true;
                    match *self.b.get(self.i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        b'u' => {
                            let hex = self.b.get(self.i + 2..self.i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 6;
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    /// A number, checked against the JSON grammar; its range.
    fn number(&mut self) -> Option<(usize, usize)> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some((start, self.i))
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// Passes over one value without building it.
    fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            open @ (b'{' | b'[') => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                self.ws();
                if self.peek()? == close {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        if self.peek()? != b'"' {
                            return None;
                        }
                        self.string()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                    }
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => {
                            self.i += 1;
                            self.ws();
                        }
                        c if c == close => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }

    /// Builds one value, as [`JsonSeed`] would.
    fn value(&mut self) -> Option<Value> {
        let start = self.i;
        Some(match self.peek()? {
            b'"' => {
                let (s, e) = self.string()?.plain()?;
                Value::String(Arc::from(self.s.get(s..e)?))
            }
            b't' => self.literal(b"true").map(|()| Value::Bit(true))?,
            b'f' => self.literal(b"false").map(|()| Value::Bit(false))?,
            b'n' => self.literal(b"null").map(|()| Value::Null)?,
            b'-' | b'0'..=b'9' => {
                let (s, e) = self.number()?;
                let n = self.b.get(s..e)?;
                match small_int(n) {
                    Some(i) => Value::BigInt(i),
                    None => serde_slice(n)?,
                }
            }
            _ => {
                self.skip(0)?;
                serde_slice(self.b.get(start..self.i)?)?
            }
        })
    }
}

/// An integer of at most 18 digits (no `-0`, which serde_json reads as a float).
fn small_int(n: &[u8]) -> Option<i64> {
    let (neg, digits) = match n.split_first()? {
        (b'-', d) => (true, d),
        _ => (false, n),
    };
    if digits.is_empty() || digits.len() > 18 || neg && digits == b"0" {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(d - b'0');
    }
    Some(if neg { -v } else { v })
}

/// One checked value decoded by serde_json (numbers out of the fast range, nested values).
fn serde_slice(json: &[u8]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let v = JsonSeed.deserialize(&mut de).ok()?;
    de.end().ok().map(|()| v)
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
    exprs.extend(filters_and_groups(select));
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

/// The top-level fields of slot `slot`'s events that a SELECT with stream or reference
/// JOINs reads (`None`: all of them). In a join `a.x` reads slot `a`, `a` alone is that
/// slot's event time, and an unqualified `x` is looked up slot by slot (so every slot keeps
/// it); `a.*`, `LAG(*)` and the functions that return whole events keep everything. The
/// slot's own TIMESTAMP BY and PARTITION BY read its raw event, as in a single-source query.
pub(crate) fn fields_read_in_join(select: &Select, slot: usize) -> Option<Vec<String>> {
    let mut sources = vec![&select.from.source];
    for join in &select.from.joins {
        match &join.right {
            JoinTarget::Source(s) => sources.push(s),
            JoinTarget::Function { .. } => return None,
        }
    }
    let own = *sources.get(slot)?;
    let aliases: Vec<&Ident> = sources.iter().map(|s| s.reference_name()).collect();
    let mut fields = vec!["EventEnqueuedUtcTime".to_string()];
    let mut whole = false;
    let mut exprs: Vec<&Expr> = Vec::new();
    for item in &select.items {
        match item {
            SelectItem::Expr { expr, .. } => exprs.push(expr),
            SelectItem::QualifiedWildcard(path) => match path.as_slice() {
                [a] if aliases.iter().any(|x| x.eq_ignore_case(&a.name)) => {
                    whole |= a.eq_ignore_case(&aliases[slot].name);
                }
                _ => return None,
            },
            SelectItem::Wildcard(_) => return None,
        }
    }
    exprs.extend(filters_and_groups(select));
    for join in &select.from.joins {
        exprs.extend(join.on.iter());
    }
    for e in exprs {
        walk_calls(e, &mut |parts: &[Ident]| {
            match parts
                .first()
                .and_then(|p| aliases.iter().position(|a| p.eq_ignore_case(&a.name)))
            {
                // `a.x`: slot a's field x; `a` alone: its time.
                Some(i) => {
                    if let (true, Some(p)) = (i == slot, parts.get(1)) {
                        fields.push(p.name.clone());
                    }
                }
                None => match parts.first() {
                    Some(p) => fields.push(p.name.clone()),
                    None => whole = true,
                },
            }
        });
    }
    let reference = &aliases[slot].name;
    let mut raw = |parts: &[Ident]| {
        whole |= parts.is_empty() || parts.len() == 1 && parts[0].eq_ignore_case(reference);
        let skip = usize::from(parts.len() > 1 && parts[0].eq_ignore_case(reference));
        if let Some(p) = parts.get(skip) {
            fields.push(p.name.clone());
        }
    };
    for e in own.partition_by.iter().chain(
        own.timestamp_by
            .iter()
            .flat_map(|ts| std::iter::once(&ts.expr).chain(&ts.over)),
    ) {
        walk_calls(e, &mut raw);
    }
    (!whole).then_some(fields)
}

/// The WHERE, GROUP BY and HAVING expressions of `select`, which every field scan reads.
fn filters_and_groups(select: &Select) -> impl Iterator<Item = &Expr> {
    select
        .filter
        .iter()
        .chain(&select.group_by)
        .chain(&select.having)
}

/// [`walk`], where a call with `*` other than `COUNT(*)` (`LAG(*)`) reads a whole event.
fn walk_calls(e: &Expr, f: &mut impl FnMut(&[Ident])) {
    walk(e, &mut |parts: &[Ident]| f(parts));
    visit_calls(e, &mut |call| {
        if call.star && !call.dotted_name().eq_ignore_ascii_case("count") {
            f(&[]);
        }
    });
}

fn visit_calls(e: &Expr, f: &mut impl FnMut(&eddy_sql::ast::FunctionCall)) {
    each_expr(e, &mut |e| {
        if let Expr::Function(call) = e {
            f(call);
        }
    });
}

/// Calls `f` with every column reference in `e`, and with `&[]` for a call that reads
/// whole events.
fn walk(e: &Expr, f: &mut impl FnMut(&[Ident])) {
    each_expr(e, &mut |e| match e {
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
        }
        _ => {}
    });
}

/// Calls `f` with `e` and every expression inside it, parents before children (a call's
/// arguments, then its OVER clause's).
fn each_expr<'e>(e: &'e Expr, f: &mut impl FnMut(&'e Expr)) {
    f(e);
    match e {
        Expr::Literal(..) | Expr::Column(..) => {}
        Expr::Function(call) => {
            call.args.iter().for_each(|a| each_expr(a, f));
            if let Some(o) = &call.over {
                o.partition_by
                    .iter()
                    .chain(o.order_by.iter().map(|(e, _)| e))
                    .chain(&o.when)
                    .for_each(|a| each_expr(a, f));
            }
        }
        Expr::Binary { left, right, .. }
        | Expr::Like {
            expr: left,
            pattern: right,
            ..
        } => {
            each_expr(left, f);
            each_expr(right, f);
        }
        Expr::Unary { expr, .. }
        | Expr::Cast { expr, .. }
        | Expr::IsNull { expr, .. }
        | Expr::Member { expr, .. }
        | Expr::Nested(expr, _) => each_expr(expr, f),
        Expr::Case {
            operand,
            branches,
            else_result,
            ..
        } => {
            operand
                .iter()
                .chain(else_result)
                .for_each(|e| each_expr(e, f));
            branches.iter().for_each(|(w, t)| {
                each_expr(w, f);
                each_expr(t, f);
            });
        }
        Expr::Between {
            expr, low, high, ..
        } => [expr, low, high].into_iter().for_each(|e| each_expr(e, f)),
        Expr::InList { expr, list, .. } => {
            each_expr(expr, f);
            list.iter().for_each(|e| each_expr(e, f));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lowest flagged byte is the first quote, backslash or control character, after
    /// any mix of ordinary bytes (high ones included) before it.
    #[test]
    fn special_finds_the_first_byte() {
        for pos in 0..8 {
            for hit in [b'"', b'\\', 0, 0x1f] {
                for fill in [b'a', 0x20, 0x21, 0x5d, 0xff, 0x80] {
                    let mut bytes = [fill; 8];
                    bytes[pos] = hit;
                    if pos < 7 {
                        bytes[pos + 1] = b'"';
                    }
                    let m = special(u64::from_le_bytes(bytes));
                    assert_eq!(m.trailing_zeros() / 8, pos as u32, "{bytes:?}");
                }
            }
            assert_eq!(special(u64::from_le_bytes([b'~'; 8])), 0);
        }
    }

    fn join_fields(q: &str, slot: usize) -> Option<Vec<String>> {
        let script = eddy_sql::parse(q).unwrap_or_else(|e| panic!("{e}"));
        let Some(eddy_sql::ast::Statement::Query(query)) = script.statements.first() else {
            panic!("one SELECT expected");
        };
        let eddy_sql::ast::Query::Select(select) = &**query else {
            panic!("one SELECT expected");
        };
        let mut fields = fields_read_in_join(select, slot)?;
        fields.sort();
        fields.dedup();
        Some(fields)
    }

    /// Each side of a join keeps its own qualified fields and every unqualified one; a
    /// bare alias is a time and reads no field; `a.*` and `LAG(*)` keep everything.
    #[test]
    fn join_sides_keep_the_fields_read_through_their_alias() {
        let q = "SELECT P.name, A.id, reserve FROM auction A TIMESTAMP BY dateTime \
                 JOIN person P TIMESTAMP BY ts \
                 ON A.seller = P.id AND DATEDIFF(millisecond, A, P) BETWEEN 0 AND 10 \
                 WHERE A.category = 10 AND P.state = 'or'";
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            join_fields(q, 0),
            Some(strings(&[
                "EventEnqueuedUtcTime",
                "category",
                "dateTime",
                "id",
                "millisecond",
                "reserve",
                "seller"
            ]))
        );
        assert_eq!(
            join_fields(q, 1),
            Some(strings(&[
                "EventEnqueuedUtcTime",
                "id",
                "millisecond",
                "name",
                "reserve",
                "state",
                "ts"
            ]))
        );
        let star = q.replace("SELECT P.name,", "SELECT P.*,");
        assert_eq!(join_fields(&star, 1), None);
        assert!(join_fields(&star, 0).is_some());
        let lag = q.replace(
            "reserve FROM",
            "LAG(*) OVER (LIMIT DURATION(hour, 1)) AS l FROM",
        );
        assert_eq!(join_fields(&lag, 0), None);
    }

    /// The fast path and serde_json agree on values, kept fields and errors.
    #[test]
    fn fast_path_matches_serde() {
        let docs: &[&str] = &[
            r#"{"a":1,"b":"x","c":{"d":[1,2,{"e":null}]},"A":true}"#,
            r#" { "a" : -12 , "b" : "y\"z" , "c" : [ ] } "#,
            r#"{"a":-0,"b":1e3,"c":1.5,"d":123456789012345678901}"#,
            r#"{"a":9223372036854775807,"b":-9223372036854775808,"c":18446744073709551615}"#,
            r#"{"a":"\u00e9t\u00E9","b":"é","c":"\ud800"}"#,
            r#"{"x":"\q","a":1}"#,
            r#"{"x":01,"a":1}"#,
            r#"{"x":1.,"a":1}"#,
            r#"{"x":[1,],"a":1}"#,
            r#"{"x":{"k":1,},"a":1}"#,
            r#"{"x":tru,"a":1}"#,
            r#"{"x":"a	b","a":1}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"{"a":1"#,
            r#"{"a\n":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"ab":1,"a":2}"#,
            r#"{"a\"":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{}"#,
            r#"[1,2]"#,
            r#""s""#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":{"b":{"c":[[[]]]}},"b":[true,false,null]}"#,
        ];
        let wanted = Some(vec!["A".to_string(), "b".to_string()]);
        for want in [None, wanted] {
            let (mut fast, mut slow) = (Decoder::default(), Decoder::default());
            fast.want(want.clone(), true);
            slow.want(want, true);
            // Twice, so the second pass runs with the key cache of the first.
            for doc in docs.iter().chain(docs) {
                let f = fast.decode(doc.as_bytes());
                let s = slow.decode_serde(doc.as_bytes());
                assert_eq!(format!("{f:?}"), format!("{s:?}"), "{doc}");
            }
        }
        let mut bad = b"{\"x\":\"".to_vec();
        bad.extend_from_slice(&[0xff, b'"', b',', b'"', b'a', b'"', b':', b'1', b'}']);
        let (f, s) = (
            Decoder::default().decode(&bad),
            Decoder::default().decode_serde(&bad),
        );
        assert_eq!(format!("{f:?}"), format!("{s:?}"));
    }
}
