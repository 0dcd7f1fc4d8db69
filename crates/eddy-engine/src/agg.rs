//! Aggregate state per group and window: small, updated in place, serialisable for
//! snapshots.

use crate::error::EvalError;
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::HashSet;

/// Which aggregate a SELECT or HAVING calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggKind {
    CountStar,
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
}

/// Running state of one aggregate in one group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum AggState {
    Count(i64),
    Distinct(HashSet<Value>),
    /// NULL until the first non-NULL input; bigint while every input is bigint.
    Sum(Value),
    Avg { sum: f64, count: i64 },
    Min(Value),
    Max(Value),
}

impl AggState {
    /// The empty state of `kind`.
    pub(crate) fn new(kind: AggKind) -> AggState {
        match kind {
            AggKind::CountStar | AggKind::Count => AggState::Count(0),
            AggKind::CountDistinct => AggState::Distinct(HashSet::new()),
            AggKind::Sum => AggState::Sum(Value::Null),
            AggKind::Avg => AggState::Avg { sum: 0.0, count: 0 },
            AggKind::Min => AggState::Min(Value::Null),
            AggKind::Max => AggState::Max(Value::Null),
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
        }
    }
}

fn keep_if(acc: &mut Value, v: &Value, want: Ordering) -> Result<(), EvalError> {
    if acc.is_null() || v.sql_cmp(acc).map_err(EvalError::Type)? == Some(want) {
        *acc = v.clone();
    }
    Ok(())
}
