//! Aggregate state per group and window: small, updated in place, serialisable for
//! snapshots.

use crate::error::EvalError;
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::HashSet;

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
    /// Fed `[sort key, event]` arrays.
    Ordered {
        which: Ordered,
        desc: bool,
    },
}

/// Running state of one aggregate in one group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum AggState {
    Count(i64),
    /// Boxed: rare, and unboxed it would make every state of every group larger.
    #[allow(clippy::box_collection)]
    Distinct(Box<HashSet<Value>>),
    /// NULL until the first non-NULL input; bigint while every input is bigint.
    Sum(Value),
    Avg {
        sum: f64,
        count: i64,
    },
    Min(Value),
    Max(Value),
    /// Welford's running mean and sum of squared deviations; `sample` picks n - 1.
    Moments {
        count: i64,
        mean: f64,
        m2: f64,
        sample: bool,
        root: bool,
    },
    Collect(Vec<Value>),
    Ordered(Box<OrderedState>),
}

/// State of an [`Ordered`] aggregate: the (sort key, event) pairs it may still return,
/// best first for TopOne/CollectTop, in arrival order for percentiles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OrderedState {
    which: Ordered,
    desc: bool,
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
        let at = self.items.partition_point(|(k, _)| {
            let o = k.total_cmp(key);
            if desc {
                o != Ordering::Less
            } else {
                o != Ordering::Greater
            }
        });
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
                keys.sort_by(|a, b| {
                    if self.desc {
                        b.total_cmp(a)
                    } else {
                        a.total_cmp(b)
                    }
                });
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
            AggKind::Sum => AggState::Sum(Value::Null),
            AggKind::Avg => AggState::Avg { sum: 0.0, count: 0 },
            AggKind::Min => AggState::Min(Value::Null),
            AggKind::Max => AggState::Max(Value::Null),
            AggKind::Stdev | AggKind::StdevP | AggKind::Var | AggKind::VarP => AggState::Moments {
                count: 0,
                mean: 0.0,
                m2: 0.0,
                sample: matches!(kind, AggKind::Stdev | AggKind::Var),
                root: matches!(kind, AggKind::Stdev | AggKind::StdevP),
            },
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
            AggState::Sum(acc) => {
                *acc = match (&*acc, v) {
                    (Value::Null, Value::BigInt(_) | Value::Float(_)) => v.clone(),
                    (Value::BigInt(a), Value::BigInt(b)) => {
                        Value::BigInt(a.checked_add(*b).ok_or(EvalError::Overflow)?)
                    }
                    (Value::BigInt(_) | Value::Float(_), Value::BigInt(_) | Value::Float(_)) => {
                        Value::Float(acc.as_f64().unwrap_or(0.0) + v.as_f64().unwrap_or(0.0))
                    }
                    _ => return Err(EvalError::Type(format!("SUM of {}", v.type_name()))),
                }
            }
            AggState::Avg { sum, count } => match v {
                Value::BigInt(_) | Value::Float(_) => {
                    *sum += v.as_f64().unwrap_or(0.0);
                    *count += 1;
                }
                _ => return Err(EvalError::Type(format!("AVG of {}", v.type_name()))),
            },
            AggState::Moments {
                count, mean, m2, ..
            } => {
                let x = match v {
                    Value::BigInt(_) | Value::Float(_) => v.as_f64().unwrap_or(0.0),
                    _ => return Err(EvalError::Type(format!("STDEV/VAR of {}", v.type_name()))),
                };
                *count += 1;
                let delta = x - *mean;
                *mean += delta / *count as f64;
                *m2 += delta * (x - *mean);
            }
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
            AggState::Sum(v) | AggState::Min(v) | AggState::Max(v) => v.clone(),
            AggState::Avg { count: 0, .. } => Value::Null,
            AggState::Avg { sum, count } => Value::Float(sum / *count as f64),
            AggState::Moments {
                count,
                m2,
                sample,
                root,
                ..
            } => {
                let n = *count - i64::from(*sample);
                if n <= 0 {
                    return Value::Null;
                }
                let var = m2 / n as f64;
                Value::Float(if *root { var.sqrt() } else { var })
            }
            AggState::Collect(items) => Value::Array(items.as_slice().into()),
            AggState::Ordered(state) => state.result(),
        }
    }
}

fn keep_if(acc: &mut Value, v: &Value, want: Ordering) -> Result<(), EvalError> {
    if acc.is_null() || v.sql_cmp(acc).map_err(EvalError::Type)? == Some(want) {
        *acc = v.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
