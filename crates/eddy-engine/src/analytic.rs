//! Analytic functions, evaluated on every event before WHERE and grouping:
//! `LAG(x [, offset [, default]])` (`LAG(*)`: the whole event), `LAST(x [, default])`,
//! `ISFIRST(unit, n)` and the windowless aggregates `SUM/AVG/MIN/MAX/COUNT(x)`, each
//! `OVER ([PARTITION BY k] [LIMIT DURATION(unit, n)] [WHEN cond])`. Each keeps, per
//! partition key, only the recent values it can still return (for aggregates: the
//! matching events within LIMIT DURATION, the current one included).
//!
//! In a JOIN each call belongs to the one source its columns name (the FROM source when
//! they name none) and runs on that source's events as they reach the join, before it;
//! the value travels with the event into every joined row (see `join.rs`). With APPLY
//! it runs once per input event, before the expansion.

use crate::error::{EngineError, EvalError};
use crate::expr::{Ctx, Eval, ExprCompiler, truthy, unsupported};
use crate::value::Value;
use crate::window::KeyMap;
use eddy_sql::ast::{Expr, FunctionCall, Ident, Literal};
use eddy_sql::span::Span;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::VecDeque;

enum Kind {
    /// The `offset`-th previous matching event's value.
    Lag { offset: usize },
    /// The most recent matching event's value, the current one included.
    Last,
    /// 1 for the first matching event of each aligned interval of this length, else 0.
    IsFirst { interval: i64 },
    /// A windowless aggregate over the matching events within LIMIT DURATION.
    Aggregate(AggOp),
}

/// The aggregates that run without a window, over `OVER (... LIMIT DURATION ...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    CountStar,
}

impl AggOp {
    fn parse(name: &str, star: bool) -> Option<AggOp> {
        Some(match name {
            "sum" => AggOp::Sum,
            "avg" => AggOp::Avg,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "count" if star => AggOp::CountStar,
            "count" => AggOp::Count,
            _ => return None,
        })
    }

    /// Adds a matching event's value to `h`.
    fn push(self, h: &mut History, time: i64, v: Value) -> Result<(), EvalError> {
        match self {
            AggOp::Sum | AggOp::Avg => h.totals.add(&v, 1)?,
            AggOp::Count => h.totals.non_null += u64::from(!v.is_null()),
            AggOp::CountStar => h.totals.non_null += 1,
            AggOp::Min | AggOp::Max if !v.is_null() => {
                while let Some((_, last)) = h.extremes.back() {
                    let o = v.sql_cmp(last).map_err(EvalError::Type)?;
                    let dominated = match self {
                        AggOp::Min => o != Some(Ordering::Greater),
                        _ => o != Some(Ordering::Less),
                    };
                    if !dominated {
                        break;
                    }
                    h.extremes.pop_back();
                }
                h.extremes.push_back((time, v.clone()));
            }
            AggOp::Min | AggOp::Max => {}
        }
        h.items.push_back((time, v));
        Ok(())
    }

    /// Drops the values older than `oldest` from `h`.
    fn expire(self, h: &mut History, oldest: i64) -> Result<(), EvalError> {
        while h.items.front().is_some_and(|(t, _)| *t < oldest) {
            let Some((_, v)) = h.items.pop_front() else {
                break;
            };
            match self {
                AggOp::Sum | AggOp::Avg => h.totals.add(&v, -1)?,
                AggOp::Count => h.totals.non_null -= u64::from(!v.is_null()),
                AggOp::CountStar => h.totals.non_null -= 1,
                AggOp::Min | AggOp::Max => {}
            }
        }
        while h.extremes.front().is_some_and(|(t, _)| *t < oldest) {
            h.extremes.pop_front();
        }
        Ok(())
    }

    /// The aggregate over `h`; NULLs are ignored (COUNT(*) counts every event), and an
    /// empty SUM, AVG, MIN or MAX is NULL.
    fn result(self, h: &History) -> Result<Value, EvalError> {
        let t = &h.totals;
        Ok(match self {
            AggOp::Count | AggOp::CountStar => Value::BigInt(t.non_null as i64),
            AggOp::Sum | AggOp::Avg if t.non_null == 0 => Value::Null,
            AggOp::Sum if t.float_values == 0 => {
                Value::BigInt(i64::try_from(t.ints).map_err(|_| EvalError::Overflow)?)
            }
            AggOp::Sum => Value::Float(t.ints as f64 + t.floats),
            AggOp::Avg => Value::Float((t.ints as f64 + t.floats) / t.non_null as f64),
            AggOp::Min | AggOp::Max => h.extremes.front().map_or(Value::Null, |(_, v)| v.clone()),
        })
    }
}

/// One analytic call of a SELECT.
pub(crate) struct Analytic {
    kind: Kind,
    value: Option<Eval>,
    default: Option<Eval>,
    partition: Vec<Eval>,
    when: Option<Eval>,
    /// LIMIT DURATION in ticks (`i64::MAX` when absent).
    duration: i64,
    /// In a join, the slot of the source whose events it sees (0: the FROM source).
    pub(crate) source: usize,
    /// Where the call was written, for diagnostics.
    pub(crate) span: Span,
}

/// Per analytic call, per partition key: its history.
pub(crate) type AnalyticState = KeyMap<History>;

/// Recent (time, value) pairs of one partition key, and for windowless aggregates the
/// running results over them, so each event costs O(1) amortised, however many events
/// LIMIT DURATION holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct History {
    items: VecDeque<(i64, Value)>,
    /// SUM/AVG/COUNT: totals over the non-NULL values of `items`.
    #[serde(default)]
    totals: Totals,
    /// MIN/MAX: the values that can still become the result, oldest first, each strictly
    /// better than every later one (a monotonic queue).
    #[serde(default)]
    extremes: VecDeque<(i64, Value)>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Totals {
    non_null: u64,
    ints: i128,
    floats: f64,
    float_values: u64,
}

impl Totals {
    fn add(&mut self, v: &Value, sign: i8) -> Result<(), EvalError> {
        match v {
            Value::Null => return Ok(()),
            Value::BigInt(i) => self.ints += i128::from(*i) * i128::from(sign),
            v => {
                let x = v
                    .as_f64()
                    .ok_or_else(|| EvalError::Type(format!("SUM/AVG of {}", v.type_name())))?;
                self.floats += x * f64::from(sign);
                if sign > 0 {
                    self.float_values += 1;
                } else {
                    self.float_values -= 1;
                }
                if self.float_values == 0 {
                    // No float left: drop accumulated rounding error.
                    self.floats = 0.0;
                }
            }
        }
        if sign > 0 {
            self.non_null += 1;
        } else {
            self.non_null -= 1;
        }
        Ok(())
    }
}

/// The join slot whose events `call` sees: the one source alias its arguments,
/// PARTITION BY and WHEN name (0, the FROM source, when they name none). Naming two
/// sources, or an APPLY alias, is an error: the call runs on input events before the
/// JOIN or APPLY.
fn source_of(c: &ExprCompiler, call: &FunctionCall) -> Result<usize, EngineError> {
    let mut columns: Vec<&[Ident]> = Vec::new();
    let mut collect = |parts| columns.push(parts);
    let over = call.over.as_ref();
    // ISFIRST's arguments are a time unit and a count, never columns.
    let args = if call.dotted_name().eq_ignore_ascii_case("isfirst") {
        &[][..]
    } else {
        &call.args[..]
    };
    for e in args
        .iter()
        .chain(over.into_iter().flat_map(|o| o.partition_by.iter()))
        .chain(over.and_then(|o| o.when.as_ref()))
    {
        visit_columns(e, &mut collect);
    }
    let first = |parts: &[Ident], names: &[String]| {
        parts
            .first()
            .and_then(|p| names.iter().position(|n| p.eq_ignore_case(n)))
    };
    if let Some(parts) = columns
        .iter()
        .find(|p| first(p, &c.apply_aliases).is_some())
    {
        let alias = &parts[0].name;
        return Err(unsupported(
            c.text,
            call.span,
            format!(
                "{}(...) reading APPLY alias '{alias}': an analytic function sees the input \
                 events, before CROSS/OUTER APPLY expands them",
                call.dotted_name()
            ),
        ));
    }
    let Some(aliases) = &c.join else {
        return Ok(0);
    };
    let mut slots: Vec<usize> = columns.iter().filter_map(|p| first(p, aliases)).collect();
    slots.sort_unstable();
    slots.dedup();
    match slots.as_slice() {
        [] => Ok(0),
        [one] => Ok(*one),
        many => {
            let names: Vec<&str> = many.iter().map(|i| aliases[*i].as_str()).collect();
            Err(unsupported(
                c.text,
                call.span,
                format!(
                    "{}(...) reading more than one join source ({}): an analytic function \
                     runs on the events of one input, before the JOIN",
                    call.dotted_name(),
                    names.join(", ")
                ),
            ))
        }
    }
}

/// Calls `f` with the parts of every column `e` reads, at any depth.
fn visit_columns<'e>(e: &'e Expr, f: &mut impl FnMut(&'e [Ident])) {
    match e {
        Expr::Column(parts, _) => f(parts),
        Expr::Literal(..) => {}
        Expr::Nested(inner, _)
        | Expr::Unary { expr: inner, .. }
        | Expr::Cast { expr: inner, .. }
        | Expr::IsNull { expr: inner, .. }
        | Expr::Member { expr: inner, .. } => visit_columns(inner, f),
        Expr::Binary { left, right, .. }
        | Expr::Like {
            expr: left,
            pattern: right,
            ..
        } => {
            visit_columns(left, f);
            visit_columns(right, f);
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            visit_columns(expr, f);
            visit_columns(low, f);
            visit_columns(high, f);
        }
        Expr::InList { expr, list, .. } => {
            visit_columns(expr, f);
            list.iter().for_each(|x| visit_columns(x, f));
        }
        Expr::Case {
            operand,
            branches,
            else_result,
            ..
        } => {
            operand.iter().for_each(|x| visit_columns(x, f));
            for (w, t) in branches {
                visit_columns(w, f);
                visit_columns(t, f);
            }
            else_result.iter().for_each(|x| visit_columns(x, f));
        }
        Expr::Function(call) => {
            // The first argument of DATEADD, DATEDIFF, DATEPART and DATENAME is a unit.
            let unit_first = matches!(
                call.dotted_name().to_ascii_lowercase().as_str(),
                "dateadd" | "datediff" | "datepart" | "datename"
            );
            let skip = usize::from(unit_first);
            call.args
                .iter()
                .skip(skip)
                .for_each(|x| visit_columns(x, f));
            if let Some(o) = &call.over {
                o.partition_by.iter().for_each(|x| visit_columns(x, f));
                o.when.iter().for_each(|x| visit_columns(x, f));
            }
        }
    }
}

fn literal_int(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(Literal::Integer(i), _) => Some(*i),
        Expr::Nested(inner, _) => literal_int(inner),
        _ => None,
    }
}

/// `(unit, n)` arguments in ticks, as in `Duration(second, 5)` or `ISFIRST(minute, 1)`.
fn unit_count(args: &[Expr]) -> Option<i64> {
    let [Expr::Column(unit, _), n] = args else {
        return None;
    };
    let ticks = eddy_sql::time_unit(&unit.first()?.name)?.ticks();
    literal_int(n)?.checked_mul(ticks).filter(|t| *t > 0)
}

impl Analytic {
    /// Compiles `call` (name in lower case) if it is an analytic function.
    pub(crate) fn compile(
        c: &mut ExprCompiler,
        name: &str,
        call: &FunctionCall,
    ) -> Result<Analytic, EngineError> {
        let bad = |what: &str| {
            unsupported(
                c.text,
                call.span,
                format!("{}(...) {what}", call.dotted_name()),
            )
        };
        let Some(over) = &call.over else {
            return Err(bad("without OVER"));
        };
        if !over.order_by.is_empty() {
            return Err(bad("with OVER (ORDER BY ...)"));
        }
        let duration = match &over.limit_duration {
            Some(Expr::Function(d)) => {
                unit_count(&d.args).ok_or_else(|| bad("with this LIMIT DURATION"))?
            }
            Some(_) => return Err(bad("with this LIMIT DURATION")),
            None => i64::MAX,
        };
        let source = source_of(c, call)?;
        let (kind, value, default) = match (name, call.args.as_slice()) {
            ("lag", []) if call.star => {
                // LAG(*): the previous event itself (in a join, its source's slot).
                let whole: Eval = match &c.join {
                    Some(aliases) => {
                        let alias: std::sync::Arc<str> = aliases[source].as_str().into();
                        Box::new(move |c| {
                            Ok(match c.record {
                                Value::Record(r) => r.get(&alias).cloned().unwrap_or(Value::Null),
                                _ => Value::Null,
                            })
                        })
                    }
                    None => Box::new(|c| Ok(c.record.clone())),
                };
                (Kind::Lag { offset: 1 }, Some(whole), None)
            }
            ("lag", [x, rest @ ..]) if rest.len() <= 2 => {
                let offset = match rest.first() {
                    Some(o) => literal_int(o)
                        .and_then(|o| usize::try_from(o).ok())
                        .filter(|o| *o >= 1),
                    None => Some(1),
                }
                .ok_or_else(|| bad("with an offset that is not a positive integer"))?;
                (Kind::Lag { offset }, Some(c.compile(x)?), rest.get(1))
            }
            ("last", [x, rest @ ..]) if rest.len() <= 1 => {
                (Kind::Last, Some(c.compile(x)?), rest.first())
            }
            ("isfirst", args) => {
                let interval = unit_count(args).ok_or_else(|| bad("with these arguments"))?;
                (Kind::IsFirst { interval }, None, None)
            }
            (agg, args) if AggOp::parse(agg, call.star).is_some() => {
                if over.limit_duration.is_none() {
                    return Err(bad("OVER (...) without LIMIT DURATION"));
                }
                if call.distinct {
                    return Err(bad("with DISTINCT in OVER (...)"));
                }
                let op = AggOp::parse(agg, call.star).unwrap_or(AggOp::CountStar);
                let value = match (op, args) {
                    (AggOp::CountStar, _) => None,
                    (_, [x]) => Some(c.compile(x)?),
                    _ => return Err(bad("without exactly one argument")),
                };
                (Kind::Aggregate(op), value, None)
            }
            _ => return Err(bad("")),
        };
        Ok(Analytic {
            kind,
            value,
            default: default.map(|d| c.compile(d)).transpose()?,
            partition: over
                .partition_by
                .iter()
                .map(|p| c.compile(p))
                .collect::<Result<_, _>>()?,
            when: over.when.as_ref().map(|w| c.compile(w)).transpose()?,
            duration,
            source,
            span: call.span,
        })
    }

    /// The function's value for the event in `ctx`, updating `state`.
    pub(crate) fn eval(&self, ctx: &Ctx, state: &mut AnalyticState) -> Result<Value, EvalError> {
        let key: Vec<Value> = self
            .partition
            .iter()
            .map(|p| p(ctx))
            .collect::<Result<_, _>>()?;
        let matches = match &self.when {
            Some(w) => truthy(&w(ctx)?)?,
            None => true,
        };
        let history = match state.0.get_mut(key.as_slice()) {
            Some(h) => h,
            None => state.0.entry(key.into_boxed_slice()).or_default(),
        };
        let oldest = ctx.time.saturating_sub(self.duration);
        if let Kind::Aggregate(op) = self.kind {
            op.expire(history, oldest)?;
            if matches {
                op.push(history, ctx.time, self.value(ctx)?)?;
            }
            return op.result(history);
        }
        let history = &mut history.items;
        while history.front().is_some_and(|(t, _)| *t < oldest) {
            history.pop_front();
        }
        let default = |ctx: &Ctx| self.default.as_ref().map_or(Ok(Value::Null), |d| d(ctx));
        Ok(match self.kind {
            Kind::Lag { offset } => {
                let result = match history.len().checked_sub(offset) {
                    Some(i) => history[i].1.clone(),
                    None => default(ctx)?,
                };
                if matches {
                    history.push_back((ctx.time, self.value(ctx)?));
                    if history.len() > offset {
                        history.pop_front();
                    }
                }
                result
            }
            Kind::Last => {
                if matches {
                    history.clear();
                    history.push_back((ctx.time, self.value(ctx)?));
                }
                match history.back() {
                    Some((_, v)) => v.clone(),
                    None => default(ctx)?,
                }
            }
            Kind::IsFirst { interval } => {
                // The interval is identified by its end, aligned like a tumbling window.
                let a = ctx.time as i128;
                let k = a.div_euclid(interval as i128)
                    + i128::from(a.rem_euclid(interval as i128) != 0);
                let end = Value::BigInt(i64::try_from(k * interval as i128).unwrap_or(i64::MAX));
                let first = history.back().is_none_or(|(_, e)| *e != end);
                if !matches {
                    return Ok(Value::BigInt(0));
                }
                history.clear();
                history.push_back((ctx.time, end));
                Value::BigInt(i64::from(first))
            }
            Kind::Aggregate(_) => Value::Null, // handled above
        })
    }

    fn value(&self, ctx: &Ctx) -> Result<Value, EvalError> {
        // COUNT(*) has no argument: every event counts as a non-NULL value.
        self.value.as_ref().map_or(Ok(Value::Bit(true)), |v| v(ctx))
    }
}
