//! Aggregate state per group and window: small, updated in place, serialisable for
//! snapshots.

use crate::error::EvalError;
use crate::value::Value;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

/// Aggregates over `OVER (ORDER BY x [DESC])`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) enum Ordered {
    /// `TopOne()`: the first event in that order.
    TopOne,
    /// `CollectTop(n)`: the first n events as `{rank, value}` records.
    CollectTop(usize),
    /// `PERCENTILE_CONT(p)`: interpolated percentile of x.
    PercentileCont(f64),
    /// `PERCENTILE_DISC(p)`: the first x whose cumulative share reaches p.
    PercentileDisc(f64),
}

/// Which aggregate a SELECT or HAVING calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AggKind {
    CountStar,
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    Stdev,
    StdevP,
    Var,
    VarP,
    Collect,
    /// Fed `[sort key, event]` arrays; for TopOne and CollectTop the sort key is an
    /// array with one value per ORDER BY column.
    Ordered {
        which: Ordered,
        /// Bit i set: ORDER BY column i is DESC.
        desc: u64,
    },
}

/// Running state of one aggregate in one group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum AggState {
    Count(i64),
    /// Boxed: rare, and unboxed it would make every state of every group larger.
    #[allow(clippy::box_collection)]
    Distinct(Box<HashSet<Value>>),
    Sum(SumAcc),
    Avg(AvgAcc),
    Min(Value),
    Max(Value),
    /// STDEV/STDEVP/VAR/VARP (boxed: rare and larger than the other states).
    Moments(Box<Moments>),
    Collect(Vec<Value>),
    Ordered(Box<OrderedState>),
}

/// State of an [`Ordered`] aggregate: the (sort key, event) pairs it may still return,
/// best first for TopOne/CollectTop, in arrival order for percentiles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OrderedState {
    which: Ordered,
    desc: u64,
    items: Vec<(Value, Value)>,
}

impl OrderedState {
    fn update(&mut self, v: &Value) {
        let Value::Array(pair) = v else { return };
        let [key, event] = &pair[..] else { return };
        if key.is_null() {
            return;
        }
        let limit = match self.which {
            Ordered::TopOne => 1,
            Ordered::CollectTop(n) => n,
            Ordered::PercentileCont(_) | Ordered::PercentileDisc(_) => {
                self.items.push((key.clone(), Value::Null));
                return;
            }
        };
        let desc = self.desc;
        // After every equal key, so ties keep arrival order.
        let at = self
            .items
            .partition_point(|(k, _)| order_cmp(k, key, desc) != Ordering::Greater);
        if at < limit {
            self.items.insert(at, (key.clone(), event.clone()));
            self.items.truncate(limit);
        }
    }

    fn result(&self) -> Value {
        match self.which {
            Ordered::TopOne => self.items.first().map_or(Value::Null, |(_, e)| e.clone()),
            Ordered::CollectTop(_) => {
                let names: std::sync::Arc<[std::sync::Arc<str>]> =
                    ["rank", "value"].iter().map(|n| (*n).into()).collect();
                let ranked = self.items.iter().enumerate().map(|(i, (_, e))| {
                    Value::from(crate::value::Record::new(
                        names.clone(),
                        vec![Value::BigInt(i as i64 + 1), e.clone()],
                    ))
                });
                Value::Array(ranked.collect())
            }
            Ordered::PercentileCont(p) | Ordered::PercentileDisc(p) => {
                let mut keys: Vec<&Value> = self.items.iter().map(|(k, _)| k).collect();
                keys.sort_by(|a, b| order_cmp(a, b, self.desc));
                if keys.is_empty() {
                    return Value::Null;
                }
                if let Ordered::PercentileDisc(_) = self.which {
                    let i = ((p * keys.len() as f64).ceil() as usize).clamp(1, keys.len()) - 1;
                    return keys[i].clone();
                }
                let pos = p * (keys.len() - 1) as f64;
                let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
                match (keys[lo].as_f64(), keys[hi.min(keys.len() - 1)].as_f64()) {
                    (Some(a), Some(b)) => Value::Float(a + (b - a) * (pos - lo as f64)),
                    _ => Value::Null,
                }
            }
        }
    }
}

impl AggState {
    /// The empty state of `kind`.
    pub(crate) fn new(kind: AggKind) -> AggState {
        match kind {
            AggKind::CountStar | AggKind::Count => AggState::Count(0),
            AggKind::CountDistinct => AggState::Distinct(Box::default()),
            AggKind::Sum => AggState::Sum(SumAcc::Null),
            AggKind::Avg => AggState::Avg(AvgAcc::default()),
            AggKind::Min => AggState::Min(Value::Null),
            AggKind::Max => AggState::Max(Value::Null),
            AggKind::Stdev | AggKind::StdevP | AggKind::Var | AggKind::VarP => {
                AggState::Moments(Box::new(Moments::new(kind)))
            }
            AggKind::Collect => AggState::Collect(Vec::new()),
            AggKind::Ordered { which, desc } => AggState::Ordered(Box::new(OrderedState {
                which,
                desc,
                items: Vec::new(),
            })),
        }
    }

    /// Adds one input value; `COUNT(*)` passes `Value::Bit(true)` so it always counts.
    pub(crate) fn update(&mut self, v: &Value) -> Result<(), EvalError> {
        if v.is_null() {
            return Ok(());
        }
        match self {
            AggState::Count(n) => *n += 1,
            AggState::Distinct(set) => {
                if !set.contains(v) {
                    set.insert(v.clone());
                }
            }
            AggState::Sum(acc) => acc.add(v)?,
            AggState::Avg(acc) => acc.add(v)?,
            AggState::Moments(m) => m.add(number(v, "STDEV/VAR")?),
            AggState::Collect(items) => items.push(v.clone()),
            AggState::Ordered(state) => state.update(v),
            AggState::Min(acc) => keep_if(acc, v, Ordering::Less)?,
            AggState::Max(acc) => keep_if(acc, v, Ordering::Greater)?,
        }
        Ok(())
    }

    /// The aggregate's result: COUNT is bigint, AVG float, SUM keeps the input type.
    pub(crate) fn result(&self) -> Value {
        match self {
            AggState::Count(n) => Value::BigInt(*n),
            AggState::Distinct(set) => Value::BigInt(set.len() as i64),
            AggState::Sum(acc) => acc.result(),
            AggState::Avg(acc) => acc.result(),
            AggState::Min(v) | AggState::Max(v) => v.clone(),
            AggState::Moments(m) => m.result(),
            AggState::Collect(items) => Value::Array(items.as_slice().into()),
            AggState::Ordered(state) => state.result(),
        }
    }
}

/// Running SUM, 16 bytes: NULL until the first non-NULL input, bigint while every input
/// is bigint. Snapshots write it as the [`Value`] it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub(crate) enum SumAcc {
    Null,
    Int(i64),
    Float(f64),
}

impl SumAcc {
    /// Adds one non-NULL input; a bigint overflow or a non-number leaves the sum as it was.
    fn add(&mut self, v: &Value) -> Result<(), EvalError> {
        *self = match (*self, v) {
            (SumAcc::Null, Value::BigInt(b)) => SumAcc::Int(*b),
            (SumAcc::Null, Value::Float(b)) => SumAcc::Float(*b),
            (SumAcc::Int(a), Value::BigInt(b)) => {
                SumAcc::Int(a.checked_add(*b).ok_or(EvalError::Overflow)?)
            }
            (SumAcc::Int(a), Value::Float(b)) => SumAcc::Float(a as f64 + b),
            (SumAcc::Float(a), Value::BigInt(b)) => SumAcc::Float(a + *b as f64),
            (SumAcc::Float(a), Value::Float(b)) => SumAcc::Float(a + b),
            _ => return Err(EvalError::Type(format!("SUM of {}", v.type_name()))),
        };
        Ok(())
    }

    fn result(&self) -> Value {
        Value::from(*self)
    }
}

impl From<SumAcc> for Value {
    fn from(acc: SumAcc) -> Value {
        match acc {
            SumAcc::Null => Value::Null,
            SumAcc::Int(i) => Value::BigInt(i),
            SumAcc::Float(f) => Value::Float(f),
        }
    }
}

impl TryFrom<Value> for SumAcc {
    type Error = String;

    fn try_from(v: Value) -> Result<SumAcc, String> {
        match v {
            Value::Null => Ok(SumAcc::Null),
            Value::BigInt(i) => Ok(SumAcc::Int(i)),
            Value::Float(f) => Ok(SumAcc::Float(f)),
            other => Err(format!("a SUM of {}", other.type_name())),
        }
    }
}

/// Running AVG: float sum and count of the non-NULL inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct AvgAcc {
    sum: f64,
    count: i64,
}

impl AvgAcc {
    /// Adds one non-NULL input; a non-number is an error and changes nothing.
    fn add(&mut self, v: &Value) -> Result<(), EvalError> {
        match v {
            Value::BigInt(_) | Value::Float(_) => {
                self.sum += v.as_f64().unwrap_or(0.0);
                self.count += 1;
                Ok(())
            }
            _ => Err(EvalError::Type(format!("AVG of {}", v.type_name()))),
        }
    }

    fn result(&self) -> Value {
        if self.count == 0 {
            Value::Null
        } else {
            Value::Float(self.sum / self.count as f64)
        }
    }
}

/// One aggregate's state for every group of a table, indexed by group id: COUNT, SUM
/// and AVG as plain arrays of their few bytes, so a group costs no allocation and no
/// enum padding; other aggregates as [`AggState`]s.
#[derive(Debug, Clone)]
pub(crate) enum Column {
    Count(Vec<i64>),
    Sum(Vec<SumAcc>),
    Avg(Vec<AvgAcc>),
    Any(Vec<AggState>),
}

impl Column {
    /// An empty column for `kind`.
    pub(crate) fn new(kind: AggKind, capacity: usize) -> Column {
        match kind {
            AggKind::CountStar | AggKind::Count => Column::Count(Vec::with_capacity(capacity)),
            AggKind::Sum => Column::Sum(Vec::with_capacity(capacity)),
            AggKind::Avg => Column::Avg(Vec::with_capacity(capacity)),
            _ => Column::Any(Vec::with_capacity(capacity)),
        }
    }

    /// Appends the empty state of a new group.
    pub(crate) fn push(&mut self, kind: AggKind) {
        match self {
            Column::Count(c) => c.push(0),
            Column::Sum(c) => c.push(SumAcc::Null),
            Column::Avg(c) => c.push(AvgAcc::default()),
            Column::Any(c) => c.push(AggState::new(kind)),
        }
    }

    /// Appends a group's state as a snapshot holds it; a state of another kind than the
    /// column's turns the column into [`Column::Any`].
    pub(crate) fn push_state(&mut self, state: AggState) {
        match (&mut *self, state) {
            (Column::Count(c), AggState::Count(n)) => c.push(n),
            (Column::Sum(c), AggState::Sum(acc)) => c.push(acc),
            (Column::Avg(c), AggState::Avg(acc)) => c.push(acc),
            (Column::Any(c), state) => c.push(state),
            (_, state) => {
                let mut all: Vec<AggState> =
                    (0..self.len()).filter_map(|i| self.state(i)).collect();
                all.push(state);
                *self = Column::Any(all);
            }
        }
    }

    /// The column a snapshot's first state starts.
    pub(crate) fn for_state(state: &AggState) -> Column {
        match state {
            AggState::Count(_) => Column::Count(Vec::new()),
            AggState::Sum(_) => Column::Sum(Vec::new()),
            AggState::Avg(_) => Column::Avg(Vec::new()),
            _ => Column::Any(Vec::new()),
        }
    }

    /// Groups held.
    pub(crate) fn len(&self) -> usize {
        match self {
            Column::Count(c) => c.len(),
            Column::Sum(c) => c.len(),
            Column::Avg(c) => c.len(),
            Column::Any(c) => c.len(),
        }
    }

    /// Adds one input to group `id`, as [`AggState::update`] does.
    #[inline]
    pub(crate) fn update(&mut self, id: usize, v: &Value) -> Result<(), EvalError> {
        if v.is_null() {
            return Ok(());
        }
        match self {
            Column::Count(c) => {
                if let Some(n) = c.get_mut(id) {
                    *n += 1;
                }
            }
            Column::Sum(c) => {
                if let Some(acc) = c.get_mut(id) {
                    acc.add(v)?;
                }
            }
            Column::Avg(c) => {
                if let Some(acc) = c.get_mut(id) {
                    acc.add(v)?;
                }
            }
            Column::Any(c) => {
                if let Some(state) = c.get_mut(id) {
                    state.update(v)?;
                }
            }
        }
        Ok(())
    }

    /// Group `id`'s result, typed as [`AggState::result`]; NULL past the end.
    pub(crate) fn result(&self, id: usize) -> Value {
        match self {
            Column::Count(c) => c.get(id).map_or(Value::Null, |n| Value::BigInt(*n)),
            Column::Sum(c) => c.get(id).map_or(Value::Null, SumAcc::result),
            Column::Avg(c) => c.get(id).map_or(Value::Null, AvgAcc::result),
            Column::Any(c) => c.get(id).map_or(Value::Null, AggState::result),
        }
    }

    /// Group `id`'s state as a snapshot writes it.
    pub(crate) fn state(&self, id: usize) -> Option<AggState> {
        match self {
            Column::Count(c) => c.get(id).map(|n| AggState::Count(*n)),
            Column::Sum(c) => c.get(id).map(|acc| AggState::Sum(*acc)),
            Column::Avg(c) => c.get(id).map(|acc| AggState::Avg(*acc)),
            Column::Any(c) => c.get(id).cloned(),
        }
    }
}

/// A value ordered by [`Value::total_cmp`], optionally reversed, so it can key a BTreeMap.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OrdKey {
    value: Value,
    desc: u64,
}

/// ORDER BY comparison: NULL is the smallest value; `desc` bit i reverses column i of
/// an array key (or the whole key when it is not an array).
pub(crate) fn order_cmp(a: &Value, b: &Value, desc: u64) -> Ordering {
    let flip = |o: Ordering, i: usize| {
        if i < 64 && desc & (1 << i) != 0 {
            o.reverse()
        } else {
            o
        }
    };
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x
            .iter()
            .zip(y.iter())
            .enumerate()
            .map(|(i, (p, q))| flip(p.total_cmp(q), i))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        _ => flip(a.total_cmp(b), 0),
    }
}

impl PartialEq for OrdKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for OrdKey {}

impl PartialOrd for OrdKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdKey {
    fn cmp(&self, other: &Self) -> Ordering {
        order_cmp(&self.value, &other.value, self.desc)
    }
}

/// Aggregate state that can also take an input back out, for windows whose content
/// both grows and shrinks (hopping and sliding): each event is added when it enters and
/// retracted when it leaves, so no window is recomputed from its events.
///
/// Inputs leave in the order they entered (oldest first); `seq` numbers them within a
/// group so ordered aggregates can find the one that leaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum RetractState {
    Count(i64),
    /// Multiplicity of each distinct value.
    Distinct(#[serde(with = "entries")] HashMap<Value, u32>),
    /// Exact bigint part, float part, inputs and how many were floats.
    Sum {
        int: i128,
        float: f64,
        count: i64,
        floats: i64,
    },
    Avg {
        sum: f64,
        count: i64,
    },
    Moments(Box<Moments>),
    /// Monotonic deque of (seq, value): the front is the extreme of the window.
    Extreme {
        items: VecDeque<(u64, Value)>,
        /// MAX rather than MIN.
        max: bool,
    },
    /// The window's non-NULL inputs in arrival order.
    Collect(VecDeque<Value>),
    /// Ordered multiset of (sort key, seq) to the event, for TopOne, CollectTop and
    /// the percentiles.
    Ordered {
        which: Ordered,
        desc: u64,
        #[serde(with = "entries")]
        items: BTreeMap<(OrdKey, u64), Value>,
    },
}

/// Serde for maps whose keys are not strings (snapshots are JSON): a list of entries.
mod entries {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<'a, M, K, V, S>(map: &'a M, s: S) -> Result<S::Ok, S::Error>
    where
        &'a M: IntoIterator<Item = (&'a K, &'a V)>,
        K: Serialize + 'a,
        V: Serialize + 'a,
        S: Serializer,
    {
        s.collect_seq(map)
    }

    pub(super) fn deserialize<'de, M, K, V, D>(d: D) -> Result<M, D::Error>
    where
        M: FromIterator<(K, V)>,
        K: Deserialize<'de>,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

fn number(v: &Value, what: &str) -> Result<f64, EvalError> {
    match v {
        Value::BigInt(_) | Value::Float(_) => Ok(v.as_f64().unwrap_or(0.0)),
        _ => Err(EvalError::Type(format!("{what} of {}", v.type_name()))),
    }
}

impl RetractState {
    /// The empty state of `kind`.
    pub(crate) fn new(kind: AggKind) -> RetractState {
        match kind {
            AggKind::CountStar | AggKind::Count => RetractState::Count(0),
            AggKind::CountDistinct => RetractState::Distinct(HashMap::new()),
            AggKind::Sum => RetractState::Sum {
                int: 0,
                float: 0.0,
                count: 0,
                floats: 0,
            },
            AggKind::Avg => RetractState::Avg { sum: 0.0, count: 0 },
            AggKind::Min | AggKind::Max => RetractState::Extreme {
                items: VecDeque::new(),
                max: kind == AggKind::Max,
            },
            AggKind::Stdev | AggKind::StdevP | AggKind::Var | AggKind::VarP => {
                RetractState::Moments(Box::new(Moments::new(kind)))
            }
            AggKind::Collect => RetractState::Collect(VecDeque::new()),
            AggKind::Ordered { which, desc } => RetractState::Ordered {
                which,
                desc,
                items: BTreeMap::new(),
            },
        }
    }

    /// Checks an input before it is queued, so that a bad event is dropped as a whole
    /// and never half-added.
    pub(crate) fn check(kind: AggKind, v: &Value) -> Result<(), EvalError> {
        if v.is_null() {
            return Ok(());
        }
        match kind {
            AggKind::Sum => number(v, "SUM").map(drop),
            AggKind::Avg => number(v, "AVG").map(drop),
            AggKind::Stdev | AggKind::StdevP | AggKind::Var | AggKind::VarP => {
                number(v, "STDEV/VAR").map(drop)
            }
            _ => Ok(()),
        }
    }

    /// Adds input number `seq` (checked by [`RetractState::check`]).
    pub(crate) fn add(&mut self, v: &Value, seq: u64) {
        if v.is_null() {
            return;
        }
        match self {
            RetractState::Count(n) => *n += 1,
            RetractState::Distinct(m) => match m.get_mut(v) {
                Some(n) => *n += 1,
                None => {
                    m.insert(v.clone(), 1);
                }
            },
            RetractState::Sum {
                int,
                float,
                count,
                floats,
            } => {
                *count += 1;
                match v {
                    Value::BigInt(i) => *int += i128::from(*i),
                    _ => {
                        *floats += 1;
                        *float += v.as_f64().unwrap_or(0.0);
                    }
                }
            }
            RetractState::Avg { sum, count } => {
                *sum += v.as_f64().unwrap_or(0.0);
                *count += 1;
            }
            RetractState::Moments(m) => m.add(v.as_f64().unwrap_or(0.0)),
            RetractState::Extreme { items, max } => {
                let want = if *max {
                    Ordering::Greater
                } else {
                    Ordering::Less
                };
                // Older values that the new one beats can never be the answer again; on a
                // tie the older one stays the answer, as in the running MIN/MAX.
                while items.back().is_some_and(|(_, b)| {
                    let o = match v.sql_cmp(b) {
                        Ok(Some(o)) => o,
                        _ => v.total_cmp(b),
                    };
                    o == want
                }) {
                    items.pop_back();
                }
                items.push_back((seq, v.clone()));
            }
            RetractState::Collect(items) => items.push_back(v.clone()),
            RetractState::Ordered { desc, items, .. } => {
                let Value::Array(pair) = v else { return };
                let [key, event] = &pair[..] else { return };
                if key.is_null() {
                    return;
                }
                let k = OrdKey {
                    value: key.clone(),
                    desc: *desc,
                };
                items.insert((k, seq), event.clone());
            }
        }
    }

    /// Takes input number `seq` back out; it must be the oldest still in.
    pub(crate) fn retract(&mut self, v: &Value, seq: u64) {
        if v.is_null() {
            return;
        }
        match self {
            RetractState::Count(n) => *n -= 1,
            RetractState::Distinct(m) => {
                if let Some(n) = m.get_mut(v) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(v);
                    }
                }
            }
            RetractState::Sum {
                int,
                float,
                count,
                floats,
            } => {
                *count -= 1;
                match v {
                    Value::BigInt(i) => *int -= i128::from(*i),
                    _ => {
                        *floats -= 1;
                        *float -= v.as_f64().unwrap_or(0.0);
                    }
                }
                // No float rounding left behind once the floats are gone.
                if *floats == 0 {
                    *float = 0.0;
                }
            }
            RetractState::Avg { sum, count } => {
                *count -= 1;
                *sum = if *count == 0 {
                    0.0
                } else {
                    *sum - v.as_f64().unwrap_or(0.0)
                };
            }
            RetractState::Moments(m) => m.retract(v.as_f64().unwrap_or(0.0)),
            RetractState::Extreme { items, .. } => {
                if items.front().is_some_and(|(s, _)| *s == seq) {
                    items.pop_front();
                }
            }
            RetractState::Collect(items) => {
                items.pop_front();
            }
            RetractState::Ordered { desc, items, .. } => {
                let Value::Array(pair) = v else { return };
                let Some(key) = pair.first() else { return };
                let k = OrdKey {
                    value: key.clone(),
                    desc: *desc,
                };
                items.remove(&(k, seq));
            }
        }
    }

    /// The aggregate's result over the inputs now in, typed as [`AggState::result`].
    pub(crate) fn result(&self) -> Value {
        match self {
            RetractState::Count(n) => Value::BigInt(*n),
            RetractState::Distinct(m) => Value::BigInt(m.len() as i64),
            RetractState::Sum { count: 0, .. } => Value::Null,
            RetractState::Sum {
                int, float, floats, ..
            } => {
                if *floats == 0
                    && let Ok(i) = i64::try_from(*int)
                {
                    Value::BigInt(i)
                } else {
                    Value::Float(*int as f64 + *float)
                }
            }
            RetractState::Avg { count: 0, .. } => Value::Null,
            RetractState::Avg { sum, count } => Value::Float(sum / *count as f64),
            RetractState::Moments(m) => m.result(),
            RetractState::Extreme { items, .. } => {
                items.front().map_or(Value::Null, |(_, v)| v.clone())
            }
            RetractState::Collect(items) => Value::Array(items.iter().cloned().collect()),
            RetractState::Ordered { which, items, .. } => {
                let keys = || items.keys().map(|(k, _)| &k.value);
                ordered_result(*which, items.len(), keys, items.values())
            }
        }
    }
}

/// One retractable aggregate's state for every group of a hopping or sliding window,
/// indexed by group id: COUNT as an `i64` and AVG as a float sum and count per group, so
/// those cost no enum padding; other aggregates as [`RetractState`]s.
#[derive(Debug, Clone)]
pub(crate) enum RetractColumn {
    Count(Vec<i64>),
    Sum(Vec<FlatSum>),
    /// Sum and count, as [`RetractState::Avg`].
    Avg(Vec<(f64, i64)>),
    Any(Vec<RetractState>),
}

impl RetractColumn {
    /// An empty column for `kind`.
    pub(crate) fn new(kind: AggKind) -> RetractColumn {
        match kind {
            AggKind::CountStar | AggKind::Count => RetractColumn::Count(Vec::new()),
            AggKind::Sum => RetractColumn::Sum(Vec::new()),
            AggKind::Avg => RetractColumn::Avg(Vec::new()),
            _ => RetractColumn::Any(Vec::new()),
        }
    }

    /// The column a snapshot's first state starts.
    pub(crate) fn for_state(state: &RetractState) -> RetractColumn {
        match state {
            RetractState::Count(_) => RetractColumn::Count(Vec::new()),
            RetractState::Sum { .. } => RetractColumn::Sum(Vec::new()),
            RetractState::Avg { .. } => RetractColumn::Avg(Vec::new()),
            _ => RetractColumn::Any(Vec::new()),
        }
    }

    /// Groups held.
    pub(crate) fn len(&self) -> usize {
        match self {
            RetractColumn::Count(c) => c.len(),
            RetractColumn::Sum(c) => c.len(),
            RetractColumn::Avg(c) => c.len(),
            RetractColumn::Any(c) => c.len(),
        }
    }

    /// Gives group `id` the empty state of `kind`, growing the column when `id` is new
    /// (slots of forgotten groups are reused).
    pub(crate) fn reset(&mut self, id: usize, kind: AggKind) {
        let fresh = || RetractState::new(kind);
        match self {
            RetractColumn::Count(c) => set_or_push(c, id, 0, || 0),
            RetractColumn::Sum(c) => set_or_push(c, id, FlatSum::default(), FlatSum::default),
            RetractColumn::Avg(c) => set_or_push(c, id, (0.0, 0), || (0.0, 0)),
            RetractColumn::Any(c) => set_or_push(c, id, fresh(), fresh),
        }
    }

    /// Appends a group's state as a snapshot holds it; a state of another kind than the
    /// column's turns the column into [`RetractColumn::Any`].
    pub(crate) fn push_state(&mut self, state: RetractState) {
        match (&mut *self, state) {
            (RetractColumn::Count(c), RetractState::Count(n)) => c.push(n),
            (RetractColumn::Sum(c), state @ RetractState::Sum { .. }) => {
                c.push(FlatSum::from_state(&state))
            }
            (RetractColumn::Avg(c), RetractState::Avg { sum, count }) => c.push((sum, count)),
            (RetractColumn::Any(c), state) => c.push(state),
            (_, state) => {
                let mut all: Vec<RetractState> =
                    (0..self.len()).filter_map(|i| self.state(i)).collect();
                all.push(state);
                *self = RetractColumn::Any(all);
            }
        }
    }

    /// Adds input number `seq` to group `id`, as [`RetractState::add`] does.
    #[inline]
    pub(crate) fn add(&mut self, id: usize, v: &Value, seq: u64) {
        if v.is_null() {
            return;
        }
        match self {
            RetractColumn::Count(c) => {
                if let Some(n) = c.get_mut(id) {
                    *n += 1;
                }
            }
            RetractColumn::Sum(c) => {
                if let Some(acc) = c.get_mut(id) {
                    let mut state = acc.state();
                    state.add(v, seq);
                    *acc = FlatSum::from_state(&state);
                }
            }
            RetractColumn::Avg(c) => {
                if let Some((sum, count)) = c.get_mut(id) {
                    *sum += v.as_f64().unwrap_or(0.0);
                    *count += 1;
                }
            }
            RetractColumn::Any(c) => {
                if let Some(state) = c.get_mut(id) {
                    state.add(v, seq);
                }
            }
        }
    }

    /// Takes input number `seq` back out of group `id`, as [`RetractState::retract`].
    #[inline]
    pub(crate) fn retract(&mut self, id: usize, v: &Value, seq: u64) {
        if v.is_null() {
            return;
        }
        match self {
            RetractColumn::Count(c) => {
                if let Some(n) = c.get_mut(id) {
                    *n -= 1;
                }
            }
            RetractColumn::Sum(c) => {
                if let Some(acc) = c.get_mut(id) {
                    let mut state = acc.state();
                    state.retract(v, seq);
                    *acc = FlatSum::from_state(&state);
                }
            }
            RetractColumn::Avg(c) => {
                if let Some((sum, count)) = c.get_mut(id) {
                    *count -= 1;
                    *sum = if *count == 0 {
                        0.0
                    } else {
                        *sum - v.as_f64().unwrap_or(0.0)
                    };
                }
            }
            RetractColumn::Any(c) => {
                if let Some(state) = c.get_mut(id) {
                    state.retract(v, seq);
                }
            }
        }
    }

    /// Group `id`'s result, typed as [`RetractState::result`]; NULL past the end.
    pub(crate) fn result(&self, id: usize) -> Value {
        match self {
            RetractColumn::Count(c) => c.get(id).map_or(Value::Null, |n| Value::BigInt(*n)),
            RetractColumn::Sum(c) => c.get(id).map_or(Value::Null, |acc| acc.state().result()),
            RetractColumn::Avg(c) => match c.get(id) {
                Some(&(sum, count)) if count != 0 => Value::Float(sum / count as f64),
                _ => Value::Null,
            },
            RetractColumn::Any(c) => c.get(id).map_or(Value::Null, RetractState::result),
        }
    }

    /// Group `id`'s state as a snapshot writes it.
    pub(crate) fn state(&self, id: usize) -> Option<RetractState> {
        match self {
            RetractColumn::Count(c) => c.get(id).map(|n| RetractState::Count(*n)),
            RetractColumn::Sum(c) => c.get(id).map(FlatSum::state),
            RetractColumn::Avg(c) => c
                .get(id)
                .map(|&(sum, count)| RetractState::Avg { sum, count }),
            RetractColumn::Any(c) => c.get(id).cloned(),
        }
    }
}

/// [`RetractState::Sum`] in 40 bytes instead of 48: its exact `i128` part is kept as two
/// 8-byte halves, so the array needs no 16-byte alignment. Updates go through
/// [`RetractState`], so both give the same digits.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FlatSum {
    int_low: u64,
    int_high: i64,
    float: f64,
    count: i64,
    floats: i64,
}

impl FlatSum {
    /// The state as a [`RetractState::Sum`].
    fn state(&self) -> RetractState {
        RetractState::Sum {
            int: (i128::from(self.int_high) << 64) | i128::from(self.int_low),
            float: self.float,
            count: self.count,
            floats: self.floats,
        }
    }

    /// Packs a [`RetractState::Sum`] (other states give an empty sum).
    fn from_state(state: &RetractState) -> FlatSum {
        match *state {
            RetractState::Sum {
                int,
                float,
                count,
                floats,
            } => FlatSum {
                int_low: int as u64,
                int_high: (int >> 64) as i64,
                float,
                count,
                floats,
            },
            _ => FlatSum::default(),
        }
    }
}

/// Sets `v[id]`, or appends when `id` is the next index (ids are handed out in order);
/// fills any gap with `fill()`.
fn set_or_push<T>(v: &mut Vec<T>, id: usize, value: T, fill: impl Fn() -> T) {
    if let Some(slot) = v.get_mut(id) {
        *slot = value;
        return;
    }
    while v.len() < id {
        v.push(fill());
    }
    v.push(value);
}

/// Integers below this magnitude are summed exactly (their squares cannot overflow the
/// i128 sums before about 10^14 inputs); larger ones join the float part.
const EXACT_LIMIT: f64 = (1u64 << 40) as f64;

/// The state of STDEV, STDEVP, VAR and VARP: integral inputs as exact i128 sums, other
/// inputs as Welford's running mean and sum of squared deviations, combined when read.
/// Exact sums make the result independent of the order of adds and retracts, so a
/// hopping or sliding window gives the same digits as a tumbling one over the same values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Moments {
    ints: i64,
    int_sum: i128,
    int_squares: i128,
    floats: i64,
    mean: f64,
    m2: f64,
    /// n - 1 rather than n (STDEV, VAR).
    sample: bool,
    /// The square root (STDEV, STDEVP).
    root: bool,
}

impl Moments {
    fn new(kind: AggKind) -> Moments {
        Moments {
            ints: 0,
            int_sum: 0,
            int_squares: 0,
            floats: 0,
            mean: 0.0,
            m2: 0.0,
            sample: matches!(kind, AggKind::Stdev | AggKind::Var),
            root: matches!(kind, AggKind::Stdev | AggKind::StdevP),
        }
    }

    fn exact(x: f64) -> Option<i128> {
        (x.fract() == 0.0 && x.abs() < EXACT_LIMIT).then_some(x as i128)
    }

    fn add(&mut self, x: f64) {
        if let Some(i) = Self::exact(x) {
            self.ints += 1;
            self.int_sum += i;
            self.int_squares += i * i;
            return;
        }
        self.floats += 1;
        let delta = x - self.mean;
        self.mean += delta / self.floats as f64;
        self.m2 += delta * (x - self.mean);
    }

    fn retract(&mut self, x: f64) {
        if let Some(i) = Self::exact(x) {
            self.ints -= 1;
            self.int_sum -= i;
            self.int_squares -= i * i;
            return;
        }
        if self.floats <= 1 {
            (self.floats, self.mean, self.m2) = (0, 0.0, 0.0);
            return;
        }
        let n = self.floats as f64;
        let old_mean = (n * self.mean - x) / (n - 1.0);
        self.m2 = (self.m2 - (x - old_mean) * (x - self.mean)).max(0.0);
        self.mean = old_mean;
        self.floats -= 1;
    }

    fn result(&self) -> Value {
        let n = self.ints + self.floats;
        let denominator = n - i64::from(self.sample);
        if denominator <= 0 {
            return Value::Null;
        }
        // n * Σx² - (Σx)² = n * (sum of squared deviations), exact for the integers.
        let int_numerator = i128::from(self.ints)
            .checked_mul(self.int_squares)
            .and_then(|a| a.checked_sub(self.int_sum.checked_mul(self.int_sum)?));
        let var = if self.floats == 0
            && let Some(num) = int_numerator
        {
            num as f64 / (self.ints as f64 * denominator as f64)
        } else {
            // Chan et al.'s combination of the two parts.
            let (ni, nf) = (self.ints as f64, self.floats as f64);
            let (m2_ints, mean_ints) = if self.ints == 0 {
                (0.0, 0.0)
            } else {
                let m2 = match int_numerator {
                    Some(num) => num as f64 / ni,
                    None => self.int_squares as f64 - (self.int_sum as f64).powi(2) / ni,
                };
                (m2, self.int_sum as f64 / ni)
            };
            let delta = self.mean - mean_ints;
            let m2 = m2_ints + self.m2 + delta * delta * ni * nf / (ni + nf);
            m2 / denominator as f64
        };
        let var = var.max(0.0);
        Value::Float(if self.root { var.sqrt() } else { var })
    }
}

/// The result of an [`Ordered`] aggregate from its `n` sort keys and events, both best
/// first.
fn ordered_result<'a, K: Iterator<Item = &'a Value>>(
    which: Ordered,
    n: usize,
    keys: impl Fn() -> K,
    events: impl Iterator<Item = &'a Value>,
) -> Value {
    match which {
        Ordered::TopOne => events.into_iter().next().cloned().unwrap_or(Value::Null),
        Ordered::CollectTop(limit) => Value::Array(ranked(events.take(limit))),
        Ordered::PercentileCont(_) | Ordered::PercentileDisc(_) if n == 0 => Value::Null,
        Ordered::PercentileDisc(p) => {
            let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            keys().nth(i).cloned().unwrap_or(Value::Null)
        }
        Ordered::PercentileCont(p) => {
            let pos = p * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let mut it = keys().skip(lo);
            let a = it.next().and_then(Value::as_f64);
            let b = if pos.fract() > 0.0 {
                it.next().and_then(Value::as_f64)
            } else {
                a
            };
            match (a, b) {
                (Some(a), Some(b)) => Value::Float(a + (b - a) * (pos - lo as f64)),
                _ => Value::Null,
            }
        }
    }
}

/// `CollectTop` output: `{rank, value}` records, ranks from 1.
fn ranked<'a>(events: impl Iterator<Item = &'a Value>) -> Arc<[Value]> {
    let names: Arc<[Arc<str>]> = ["rank", "value"].iter().map(|n| Arc::from(*n)).collect();
    events
        .enumerate()
        .map(|(i, e)| {
            Value::from(crate::value::Record::new(
                names.clone(),
                vec![Value::BigInt(i as i64 + 1), e.clone()],
            ))
        })
        .collect()
}

fn keep_if(acc: &mut Value, v: &Value, want: Ordering) -> Result<(), EvalError> {
    if acc.is_null() || v.sql_cmp(acc).map_err(EvalError::Type)? == Some(want) {
        *acc = v.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn flat_sums_keep_every_exact_part_in_40_bytes() {
        assert_eq!(std::mem::size_of::<FlatSum>(), 40);
        for int in [
            0i128,
            1,
            -1,
            i128::from(i64::MAX) * 3,
            i128::from(i64::MIN) * 5,
        ] {
            let state = RetractState::Sum {
                int,
                float: 0.5,
                count: 7,
                floats: 1,
            };
            let back = FlatSum::from_state(&state).state();
            assert!(
                matches!(back, RetractState::Sum { int: i, count: 7, floats: 1, .. } if i == int)
            );
        }
    }
    use super::*;

    /// Every kind of aggregate, as the engine compiles them.
    fn all_kinds() -> Vec<AggKind> {
        let mut kinds = vec![
            AggKind::CountStar,
            AggKind::Count,
            AggKind::CountDistinct,
            AggKind::Sum,
            AggKind::Avg,
            AggKind::Min,
            AggKind::Max,
            AggKind::Stdev,
            AggKind::StdevP,
            AggKind::Var,
            AggKind::VarP,
            AggKind::Collect,
        ];
        for desc in [0, 1] {
            for which in [Ordered::PercentileCont(0.3), Ordered::PercentileDisc(0.5)] {
                kinds.push(AggKind::Ordered { which, desc });
            }
            for which in [Ordered::TopOne, Ordered::CollectTop(3)] {
                kinds.push(AggKind::Ordered { which, desc });
            }
        }
        kinds
    }

    /// The input `AggKind` takes for event `i` with value `x`.
    fn input(kind: AggKind, i: usize, x: &Value) -> Value {
        match kind {
            AggKind::CountStar => Value::Bit(true),
            AggKind::Ordered {
                which: Ordered::TopOne | Ordered::CollectTop(_),
                ..
            } => Value::Array(
                vec![
                    Value::Array(vec![x.clone()].into()),
                    Value::BigInt(i as i64),
                ]
                .into(),
            ),
            AggKind::Ordered { .. } => Value::Array(vec![x.clone(), Value::Null].into()),
            _ => x.clone(),
        }
    }

    fn close(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            _ => a == b,
        }
    }

    #[test]
    fn retractable_state_matches_recomputing_every_window() {
        // A pseudo-random walk of values with NULLs, bigints and floats, through a FIFO
        // window of 5: after every add and every retract the running state must equal a
        // state built from scratch over the window's content.
        let mut seed = 7u64;
        let values: Vec<Value> = (0..300)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                match (seed >> 33) % 9 {
                    0 => Value::Null,
                    1 | 2 => Value::Float(((seed >> 40) % 50) as f64 / 4.0),
                    _ => Value::BigInt(((seed >> 40) % 20) as i64 - 5),
                }
            })
            .collect();
        for kind in all_kinds() {
            let mut running = RetractState::new(kind);
            let mut window: VecDeque<usize> = VecDeque::new();
            for (i, x) in values.iter().enumerate() {
                let v = input(kind, i, x);
                RetractState::check(kind, &v).unwrap();
                running.add(&v, i as u64);
                window.push_back(i);
                if window.len() > 5 {
                    let old = window.pop_front().unwrap();
                    running.retract(&input(kind, old, &values[old]), old as u64);
                }
                let mut fresh = AggState::new(kind);
                for &j in &window {
                    fresh.update(&input(kind, j, &values[j])).unwrap();
                }
                let (got, want) = (running.result(), fresh.result());
                assert!(
                    close(&got, &want),
                    "{kind:?} at {i}: running {got:?}, recomputed {want:?}"
                );
            }
        }
    }

    #[test]
    fn aggregate_state_stays_small() {
        // Per-group memory is mostly this, times the number of aggregates.
        assert!(
            std::mem::size_of::<AggState>() <= 32,
            "{}",
            std::mem::size_of::<AggState>()
        );
    }
}
