//! Stream–stream joins: both sides are buffered for as long as the ON condition's
//! `DATEDIFF(unit, a, b) BETWEEN low AND high` bound lets them match a later event.
//!
//! Events of both sides arrive in one time order, so each pair is found exactly once,
//! when the later of the two arrives. Equalities between the sides in ON (`a.k = b.k`)
//! key the buffers, so an event only meets candidates with its key; the whole ON is
//! still evaluated on each candidate pair. The joined event is a record holding each
//! side under its alias (plus both event times, for DATEDIFF); its time is the later
//! event's. A LEFT OUTER join emits an unmatched left event, with the right side NULL,
//! when its bound has passed, stamped with that instant.

use crate::error::{EngineError, EvalError};
use crate::expr::{Ctx, Eval, truthy, unsupported};
use crate::value::{Record, Value};
use crate::window::KeyMap;
use eddy_sql::ast::{BinaryOp, Expr, Ident, Literal, UnaryOp};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// Hidden fields of the joined record holding each side's event time; DATEDIFF(unit, a, b)
/// on source aliases reads them.
pub(crate) const TIME_FIELDS: [&str; 2] = ["\u{1}time:left", "\u{1}time:right"];

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Buffered {
    time: i64,
    record: Value,
    matched: bool,
}

/// One side's buffered events: by key, and in arrival order for expiry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Side {
    by_key: KeyMap<VecDeque<Buffered>>,
    /// (time, key) of every buffered event, oldest first; a key's events are in the
    /// same order in `by_key`.
    order: VecDeque<(i64, Box<[Value]>)>,
}

/// Buffered events of both sides; what a snapshot keeps of a join.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct JoinState {
    sides: [Side; 2],
}

/// A compiled two-way join.
pub(crate) struct Join {
    left_outer: bool,
    on: Eval,
    /// Per side, the expressions of its half of each `a.x = b.y` in ON.
    keys: [Vec<Eval>; 2],
    /// How long after its event time each side may still match (ticks).
    keep: [i64; 2],
    names: Arc<[Arc<str>]>,
    pub state: JoinState,
}

/// The parts of an ON condition a join needs before compiling.
pub(crate) struct OnParts<'a> {
    /// How long each side must be kept, from DATEDIFF ... BETWEEN.
    pub keep: [i64; 2],
    /// `(left expr, right expr)` of each equality between the sides.
    pub equalities: Vec<(&'a Expr, &'a Expr)>,
}

impl<'a> OnParts<'a> {
    /// Reads the time bound and the equalities from the AND-ed conjuncts of `on`.
    pub(crate) fn read(
        text: &str,
        on: &'a Expr,
        aliases: [&str; 2],
    ) -> Result<OnParts<'a>, EngineError> {
        let mut conjuncts = Vec::new();
        flatten_and(on, &mut conjuncts);
        let keep = conjuncts
            .iter()
            .find_map(|c| bound(c, aliases))
            .ok_or_else(|| {
                unsupported(
                    text,
                    on.span(),
                    "a join whose ON has no DATEDIFF(unit, a, b) BETWEEN x AND y on its sources",
                )
            })?;
        let equalities = conjuncts
            .iter()
            .filter_map(|c| match strip(c) {
                Expr::Binary {
                    op: BinaryOp::Eq,
                    left,
                    right,
                    ..
                } => match (side_of(left, aliases), side_of(right, aliases)) {
                    (Some(0), Some(1)) => Some((&**left, &**right)),
                    (Some(1), Some(0)) => Some((&**right, &**left)),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        Ok(OnParts { keep, equalities })
    }
}

impl Join {
    /// Builds the join of `aliases` (left, right) from compiled ON and key expressions.
    pub(crate) fn new(
        aliases: [&str; 2],
        keep: [i64; 2],
        on: Eval,
        keys: [Vec<Eval>; 2],
        left_outer: bool,
    ) -> Join {
        let names = [aliases[0], aliases[1], TIME_FIELDS[0], TIME_FIELDS[1]]
            .iter()
            .map(|n| Arc::from(*n))
            .collect();
        Join {
            left_outer,
            on,
            keys,
            keep,
            names,
            state: JoinState::default(),
        }
    }

    fn joined(&self, left: Option<&Buffered>, right: Option<&Buffered>) -> Value {
        let side = |b: Option<&Buffered>| {
            b.map_or((Value::Null, Value::Null), |b| {
                (b.record.clone(), Value::DateTime(b.time))
            })
        };
        let ((l, lt), (r, rt)) = (side(left), side(right));
        Record::new(self.names.clone(), vec![l, r, lt, rt]).into()
    }

    /// One event of `side` (0 left, 1 right): appends the joined records it completes,
    /// in the order of the buffered events they pair with. Failing pairs are counted.
    pub(crate) fn add(
        &mut self,
        side: usize,
        time: i64,
        record: &Value,
        errors: &mut u64,
        out: &mut Vec<Value>,
    ) {
        let side = side.min(1);
        let ctx = Ctx {
            record,
            time,
            keys: &[],
            aggs: &[],
        };
        let key = match self.keys[side]
            .iter()
            .map(|k| k(&ctx).map(hash_key))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(k) => k.into_boxed_slice(),
            Err(e) => return count(errors, e),
        };
        let mut current = Buffered {
            time,
            record: record.clone(),
            matched: false,
        };
        // SQL equality: a NULL key matches nothing.
        if !key.iter().any(Value::is_null) {
            let other = 1 - side;
            let mut candidates = self.state.sides[other].by_key.0.remove(&key);
            for b in candidates.iter_mut().flatten() {
                let v = if side == 0 {
                    self.joined(Some(&current), Some(b))
                } else {
                    self.joined(Some(b), Some(&current))
                };
                match (self.on)(&Ctx {
                    record: &v,
                    time,
                    keys: &[],
                    aggs: &[],
                })
                .and_then(|c| truthy(&c))
                {
                    Ok(true) => {
                        b.matched = true;
                        current.matched = true;
                        out.push(v);
                    }
                    Ok(false) => {}
                    Err(e) => count(errors, e),
                }
            }
            if let Some(c) = candidates {
                self.state.sides[other].by_key.0.insert(key.clone(), c);
            }
        }
        let s = &mut self.state.sides[side];
        s.order.push_back((time, key.clone()));
        s.by_key.0.entry(key).or_default().push_back(current);
    }

    /// Forgets events that can no longer match once the watermark is at `watermark`;
    /// returns unmatched left events of a LEFT OUTER join with the instant they expired.
    pub(crate) fn expire(&mut self, watermark: i64, out: &mut Vec<(i64, Value)>) {
        for side in 0..2 {
            loop {
                let s = &mut self.state.sides[side];
                let Some((time, _)) = s.order.front() else {
                    break;
                };
                let until = time.saturating_add(self.keep[side]);
                if until >= watermark {
                    break;
                }
                let Some((_, key)) = s.order.pop_front() else {
                    break;
                };
                let Some(events) = s.by_key.0.get_mut(&key) else {
                    continue;
                };
                let b = events.pop_front();
                if events.is_empty() {
                    s.by_key.0.remove(&key);
                }
                if let Some(b) = b
                    && side == 0
                    && self.left_outer
                    && !b.matched
                {
                    out.push((until, self.joined(Some(&b), None)));
                }
            }
        }
    }
}

/// Keys compare as SQL does: an integral float equals the bigint.
fn hash_key(v: Value) -> Value {
    match v {
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::BigInt(f as i64),
        v => v,
    }
}

fn count(errors: &mut u64, e: EvalError) {
    *errors += 1;
    crate::error::log_runtime_error("join event", &e);
}

fn flatten_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match strip(e) {
        Expr::Binary {
            op: BinaryOp::And,
            left,
            right,
            ..
        } => {
            flatten_and(left, out);
            flatten_and(right, out);
        }
        e => out.push(e),
    }
}

/// Which side an expression reads: `Some(i)` when every column is qualified with alias
/// `i` (and there is at least one), `None` otherwise.
fn side_of(e: &Expr, aliases: [&str; 2]) -> Option<usize> {
    let mut sides = Vec::new();
    let mut ok = true;
    visit_columns(e, &mut |parts: &[Ident]| match aliases
        .iter()
        .position(|a| parts[0].eq_ignore_case(a))
    {
        Some(i) if parts.len() > 1 => sides.push(i),
        _ => ok = false,
    });
    match sides.first() {
        Some(&s) if ok && sides.iter().all(|x| *x == s) => Some(s),
        _ => None,
    }
}

fn visit_columns(e: &Expr, f: &mut impl FnMut(&[Ident])) {
    match e {
        Expr::Column(parts, _) if !parts.is_empty() => f(parts),
        Expr::Column(..) | Expr::Literal(..) => {}
        Expr::Nested(inner, _)
        | Expr::Unary { expr: inner, .. }
        | Expr::Cast { expr: inner, .. } => visit_columns(inner, f),
        Expr::Binary { left, right, .. } => {
            visit_columns(left, f);
            visit_columns(right, f);
        }
        Expr::Function(call) if call.over.is_none() => {
            call.args.iter().for_each(|a| visit_columns(a, f))
        }
        // Anything else is not used as a join key.
        _ => f(&[]),
    }
}

/// Turns `DATEDIFF(unit, x, y) BETWEEN lo AND hi` (x, y the two aliases) into how long
/// each side must be kept.
fn bound(e: &Expr, aliases: [&str; 2]) -> Option<[i64; 2]> {
    let Expr::Between {
        expr,
        low,
        high,
        negated: false,
        ..
    } = strip(e)
    else {
        return None;
    };
    let Expr::Function(call) = strip(expr) else {
        return None;
    };
    if !call.dotted_name().eq_ignore_ascii_case("datediff") {
        return None;
    }
    let [
        Expr::Column(unit, _),
        Expr::Column(x, _),
        Expr::Column(y, _),
    ] = call.args.as_slice()
    else {
        return None;
    };
    let unit = eddy_sql::time_unit(&unit.first()?.name)?.ticks();
    let side = |parts: &[Ident]| match parts {
        [p] => aliases.iter().position(|a| p.eq_ignore_case(a)),
        _ => None,
    };
    let (first, second) = (side(x)?, side(y)?);
    if first == second {
        return None;
    }
    let (lo, hi) = (int(low)?, int(high)?);
    // DATEDIFF counts unit boundaries: second - first lies within (lo - 1, hi + 1) units.
    let mut keep = [0; 2];
    keep[first] = hi.saturating_add(1).saturating_mul(unit).max(0);
    keep[second] = 1i64.saturating_sub(lo).saturating_mul(unit).max(0);
    Some(keep)
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Nested(inner, _) => strip(inner),
        e => e,
    }
}

fn int(e: &Expr) -> Option<i64> {
    match strip(e) {
        Expr::Literal(Literal::Integer(i), _) => Some(*i),
        Expr::Unary {
            op: UnaryOp::Neg,
            expr,
            ..
        } => int(expr).map(|i| -i),
        _ => None,
    }
}
