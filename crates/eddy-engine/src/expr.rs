//! Compiles syntax-tree expressions once into closures; per event only the closures run.
//!
//! In a grouped SELECT, aggregate calls become slots filled when a window closes
//! ([`ExprCompiler::aggs`]), and the rest of the expression reads the group's first event
//! (every GROUP BY key has one value per group).

use crate::agg::{AggKind, Ordered};
use crate::error::{EngineError, EvalError};
use crate::functions;
use crate::time::parse_datetime;
use crate::value::Value;
use eddy_sql::ast::{BinaryOp, DataType, Expr, FunctionCall, Literal, UnaryOp};
use eddy_sql::span::Span;
use std::cmp::Ordering;
use std::sync::Arc;

/// What an expression can see: the event (or a group's first event), its time, and the
/// group's key values and aggregate results.
pub(crate) struct Ctx<'a> {
    pub record: &'a Value,
    pub time: i64,
    pub keys: &'a [Value],
    pub aggs: &'a [Value],
    /// Where the compiler's fields ([`ExprCompiler::fields`]) sit in `record`, as
    /// [`FieldPositions::resolve`] found them for it; empty: columns look names up.
    pub fields: &'a [usize],
}

impl<'a> Ctx<'a> {
    /// An event alone, outside any group, its columns looked up by name.
    pub(crate) fn event(record: &'a Value, time: i64) -> Ctx<'a> {
        Ctx {
            record,
            time,
            keys: &[],
            aggs: &[],
            fields: &[],
        }
    }
}

/// Positions of one compiler's fields in records of the last shape seen, so that a
/// stream of same-shaped records costs one pointer comparison per event instead of a
/// case-insensitive name search per column.
#[derive(Default)]
pub(crate) struct FieldPositions {
    names: Vec<Arc<str>>,
    /// The shape the positions are for; held, so its address cannot name another shape.
    shape: Option<Arc<[Arc<str>]>>,
    /// Per name, its first case-insensitive match in `shape`; `usize::MAX` when absent.
    positions: Vec<usize>,
}

impl FieldPositions {
    /// Positions for the fields a compiler handed out ([`ExprCompiler::fields`]).
    pub(crate) fn new(names: Vec<Arc<str>>) -> FieldPositions {
        FieldPositions {
            names,
            ..FieldPositions::default()
        }
    }

    /// The positions for `record`, recomputed only when its shape differs from the last;
    /// empty for a value that is not a record.
    pub(crate) fn resolve(&mut self, record: &Value) -> &[usize] {
        let Value::Record(r) = record else {
            return &[];
        };
        if self.names.is_empty() {
            return &[];
        }
        if !self
            .shape
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, r.names()))
        {
            self.positions.clear();
            self.positions.extend(self.names.iter().map(|n| {
                r.names()
                    .iter()
                    .position(|x| x.eq_ignore_ascii_case(n))
                    .unwrap_or(usize::MAX)
            }));
            self.shape = Some(r.names().clone());
        }
        &self.positions
    }
}

/// Top-level field `name` (the compiler's field `slot`) of the context's record: at its
/// resolved position when the context has one, else by name.
fn slot_field(c: &Ctx, slot: usize, name: &str) -> Value {
    if let (Some(&at), Value::Record(r)) = (c.fields.get(slot), c.record) {
        return r.values().get(at).cloned().unwrap_or(Value::Null);
    }
    field(c.record, name)
}

/// A compiled expression.
pub(crate) type Eval = Box<dyn Fn(&Ctx) -> Result<Value, EvalError> + Send + Sync>;

/// An aggregate call found while compiling a grouped SELECT.
pub(crate) struct AggSpec {
    pub kind: AggKind,
    /// The argument, evaluated per event (`None` for `COUNT(*)`).
    pub arg: Option<Eval>,
    /// Normalised call text, so `COUNT(*)` in SELECT and HAVING share one slot.
    key: String,
}

/// Compiles expressions of one SELECT.
pub(crate) struct ExprCompiler<'a> {
    /// The query text, for line:column in errors.
    pub text: &'a str,
    /// The FROM source's reference name; `s.x` with this prefix reads field `x`.
    pub source: String,
    /// In a join, the sources' reference names in slot order: `a.x` reads slot `a`, `a`
    /// alone is its event time, and an unqualified `x` is looked up slot by slot.
    pub join: Option<Vec<String>>,
    /// `Some` in a grouped SELECT: aggregate calls found so far.
    pub aggs: Option<Vec<AggSpec>>,
    /// Normalised text of the GROUP BY keys; a grouped expression equal to one reads the key.
    pub group_keys: Vec<String>,
    /// Set when a grouped expression reads the event outside aggregates and keys, so
    /// each group must keep its first event.
    pub reads_record: bool,
    /// Analytic calls (LAG, LAST, ISFIRST) found so far; their values are passed in
    /// `Ctx::aggs` while per-event expressions run.
    pub analytics: Vec<crate::analytic::Analytic>,
    /// `CROSS/OUTER APPLY` aliases so far: analytic functions run before APPLY, so they
    /// cannot read them.
    pub apply_aliases: Vec<String>,
    /// Top-level fields the compiled columns read, one slot each: a context's
    /// [`Ctx::fields`] says where each sits in its record.
    pub fields: Vec<Arc<str>>,
    /// Set when an expression reads event metadata (`GetMetadataPropertyValue`, or a
    /// metadata column the payload may lack), so the job must say which event runs.
    pub reads_metadata: bool,
}

/// Builds the "not supported yet" error at `span`.
pub(crate) fn unsupported(text: &str, span: Span, what: impl Into<String>) -> EngineError {
    let (line, column) = span.line_col(text);
    EngineError::Unsupported {
        message: what.into(),
        line,
        column,
        span,
    }
}

/// A diagnostic for a construct the engine rejects as written (e.g. a bad pattern).
pub(crate) fn invalid(text: &str, span: Span, message: impl Into<String>) -> EngineError {
    EngineError::Sql(eddy_sql::Diagnostic::new(message, span, text))
}

/// WHERE, HAVING and CASE conditions: only bit `true` passes; NULL does not.
pub(crate) fn truthy(v: &Value) -> Result<bool, EvalError> {
    match v {
        Value::Bit(b) => Ok(*b),
        Value::Null => Ok(false),
        other => Err(EvalError::Type(format!(
            "expected a condition, found {}",
            other.type_name()
        ))),
    }
}

/// A column in a join (see [`ExprCompiler::join`]). Slot `i` of a composite is its value
/// `i` and the slot's time its value `sides.len() + i`, so columns read them by position
/// (checking the name there) and borrow down to the field, cloning only what they return.
fn join_column(sides: &[String], parts: &[eddy_sql::ast::Ident]) -> Eval {
    let names: Vec<Arc<str>> = parts.iter().map(|p| Arc::from(p.name.as_str())).collect();
    let side = sides.iter().position(|a| parts[0].eq_ignore_case(a));
    let slots = sides.len();
    match (side, names.len()) {
        (Some(i), 1) => {
            let time = crate::join::time_field(i);
            Box::new(move |c| Ok(composite_part(c.record, slots + i, &time).clone()))
        }
        (Some(i), _) => Box::new(move |c| {
            let slot = composite_part(c.record, i, &names[0]);
            Ok(names[1..].iter().fold(slot, |v, p| field_ref(v, p)).clone())
        }),
        (None, _) => {
            let sides: Vec<Arc<str>> = sides.iter().map(|s| Arc::from(s.as_str())).collect();
            Box::new(move |c| {
                for (i, s) in sides.iter().enumerate() {
                    let slot = composite_part(c.record, i, s);
                    let v = names.iter().fold(slot, |v, p| field_ref(v, p));
                    if !v.is_null() {
                        return Ok(v.clone());
                    }
                }
                Ok(Value::Null)
            })
        }
    }
}

/// What a missing field reads as, to borrow.
static NULL: Value = Value::Null;

/// Field `name` of a join composite, found at `at` when the name there is `name` (as in
/// every composite a join builds; the names before it are other aliases and times, so it
/// is also the first match), else by name.
fn composite_part<'v>(composite: &'v Value, at: usize, name: &str) -> &'v Value {
    match composite {
        Value::Record(r) => match (r.names().get(at), r.values().get(at)) {
            (Some(n), Some(v)) if n.eq_ignore_ascii_case(name) => v,
            _ => r.get(name).unwrap_or(&NULL),
        },
        _ => &NULL,
    }
}

/// A record field by name, borrowed (NULL when absent or not a record).
fn field_ref<'v>(v: &'v Value, name: &str) -> &'v Value {
    match v {
        Value::Record(r) => r.get(name).unwrap_or(&NULL),
        _ => &NULL,
    }
}

/// A record field by name, case-insensitively (`System.Window().id` reads `Id`).
fn field_ci(v: &Value, name: &str) -> Value {
    match v {
        Value::Record(r) => r
            .fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(Value::Null, |(_, v)| v.clone()),
        _ => Value::Null,
    }
}

fn field(v: &Value, name: &str) -> Value {
    match v {
        Value::Record(r) => r.get(name).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

impl<'a> ExprCompiler<'a> {
    /// A compiler for per-event expressions over `source` (its reference name).
    pub(crate) fn new(text: &'a str, source: String) -> ExprCompiler<'a> {
        ExprCompiler {
            text,
            source,
            join: None,
            aggs: None,
            group_keys: Vec::new(),
            reads_record: false,
            analytics: Vec::new(),
            apply_aliases: Vec::new(),
            fields: Vec::new(),
            reads_metadata: false,
        }
    }

    /// The slot of top-level field `name` in [`ExprCompiler::fields`] (names equal but
    /// for case share one, as they find the same field).
    fn field_slot(&mut self, name: &Arc<str>) -> usize {
        match self
            .fields
            .iter()
            .position(|f| f.eq_ignore_ascii_case(name))
        {
            Some(i) => i,
            None => {
                self.fields.push(name.clone());
                self.fields.len() - 1
            }
        }
    }

    fn unsupported(&self, span: Span, what: impl Into<String>) -> EngineError {
        unsupported(self.text, span, what)
    }

    /// Strips a leading source alias from a column path (`s.a.b` reads `a.b`).
    pub(crate) fn path(&self, parts: &[eddy_sql::ast::Ident]) -> Vec<Arc<str>> {
        let skip = usize::from(parts.len() > 1 && parts[0].eq_ignore_case(&self.source));
        parts[skip..]
            .iter()
            .map(|p| Arc::from(p.name.as_str()))
            .collect()
    }

    /// The text of `span` without whitespace, lower case: how equal expressions are found.
    pub(crate) fn normalized(&self, span: Span) -> String {
        let text = self.text.get(span.start..span.end).unwrap_or("");
        text.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect()
    }

    /// Compiles one expression.
    pub(crate) fn compile(&mut self, e: &Expr) -> Result<Eval, EngineError> {
        if self.aggs.is_some() && !self.group_keys.is_empty() {
            let text = self.normalized(e.span());
            if let Some(i) = self.group_keys.iter().position(|k| *k == text) {
                return Ok(Box::new(move |c| {
                    Ok(c.keys.get(i).cloned().unwrap_or(Value::Null))
                }));
            }
        }
        Ok(match e {
            Expr::Literal(lit, _) => {
                let v = match lit {
                    Literal::Null => Value::Null,
                    Literal::Bool(b) => Value::Bit(*b),
                    Literal::Integer(i) => Value::BigInt(*i),
                    Literal::Float(f) => Value::Float(*f),
                    Literal::String(s) => Value::String(s.as_str().into()),
                };
                Box::new(move |_| Ok(v.clone()))
            }
            Expr::Column(parts, _) => {
                self.reads_record |= self.aggs.is_some();
                if let Some(sides) = &self.join {
                    return Ok(join_column(sides, parts));
                }
                let path = self.path(parts);
                if parts.len() == 1 && parts[0].eq_ignore_case(&self.source) {
                    // The source alias alone is the whole event, e.g. GetRecordProperties(s).
                    return Ok(Box::new(|c| Ok(c.record.clone())));
                }
                match path.as_slice() {
                    [one] if parts.len() == 1 && crate::meta::Property::column(one).is_some() => {
                        // EventEnqueuedUtcTime, EventProcessedUtcTime, PartitionId: the
                        // payload's own field when present, else the event's metadata.
                        self.reads_metadata = true;
                        let one = one.clone();
                        let slot = self.field_slot(&one);
                        let prop = crate::meta::Property::column(&one);
                        Box::new(move |c| match slot_field(c, slot, &one) {
                            Value::Null => Ok(prop.as_ref().map_or(Value::Null, |p| p.read())),
                            v => Ok(v),
                        })
                    }
                    [one] => {
                        let one = one.clone();
                        let slot = self.field_slot(&one);
                        Box::new(move |c| Ok(slot_field(c, slot, &one)))
                    }
                    [first, rest @ ..] => {
                        let (first, rest) = (first.clone(), rest.to_vec());
                        let slot = self.field_slot(&first);
                        Box::new(move |c| {
                            let mut v = slot_field(c, slot, &first);
                            for p in &rest {
                                v = field(&v, p);
                            }
                            Ok(v)
                        })
                    }
                    [] => Box::new(|c| Ok(c.record.clone())),
                }
            }
            Expr::Nested(inner, _) => self.compile(inner)?,
            Expr::Function(call) => self.function(call)?,
            Expr::Member {
                expr, field: name, ..
            } => {
                let inner = self.compile(expr)?;
                let name: Arc<str> = name.name.as_str().into();
                Box::new(move |c| Ok(field_ci(&inner(c)?, &name)))
            }
            Expr::Binary {
                op, left, right, ..
            } => {
                let (l, r) = (self.compile(left)?, self.compile(right)?);
                match op {
                    BinaryOp::And => Box::new(move |c| {
                        let a = l(c)?;
                        if let Value::Bit(false) = a {
                            return Ok(a);
                        }
                        and_or(a, r(c)?, false)
                    }),
                    BinaryOp::Or => Box::new(move |c| {
                        let a = l(c)?;
                        if let Value::Bit(true) = a {
                            return Ok(a);
                        }
                        and_or(a, r(c)?, true)
                    }),
                    _ => {
                        let f = binary_fn(*op);
                        Box::new(move |c| f(l(c)?, r(c)?))
                    }
                }
            }
            Expr::Unary { op, expr, .. } => {
                let x = self.compile(expr)?;
                match op {
                    UnaryOp::Not => Box::new(move |c| match x(c)? {
                        Value::Null => Ok(Value::Null),
                        v => Ok(Value::Bit(!truthy(&v)?)),
                    }),
                    UnaryOp::Neg => Box::new(move |c| match x(c)? {
                        Value::BigInt(i) => i
                            .checked_neg()
                            .map(Value::BigInt)
                            .ok_or(EvalError::Overflow),
                        Value::Float(f) => Ok(Value::Float(-f)),
                        Value::Null => Ok(Value::Null),
                        v => Err(EvalError::Type(format!("cannot negate {}", v.type_name()))),
                    }),
                    UnaryOp::Plus => x,
                    UnaryOp::BitNot => Box::new(move |c| match x(c)? {
                        Value::BigInt(i) => Ok(Value::BigInt(!i)),
                        Value::Null => Ok(Value::Null),
                        v => Err(EvalError::Type(format!("~ of {}", v.type_name()))),
                    }),
                }
            }
            Expr::Case {
                operand,
                branches,
                else_result,
                ..
            } => {
                let operand = operand.as_deref().map(|o| self.compile(o)).transpose()?;
                let branches = branches
                    .iter()
                    .map(|(w, t)| Ok((self.compile(w)?, self.compile(t)?)))
                    .collect::<Result<Vec<_>, EngineError>>()?;
                let otherwise = else_result
                    .as_deref()
                    .map(|e| self.compile(e))
                    .transpose()?;
                Box::new(move |c| {
                    let subject = operand.as_ref().map(|o| o(c)).transpose()?;
                    for (when, then) in &branches {
                        let w = when(c)?;
                        let hit = match &subject {
                            Some(s) => {
                                s.sql_cmp(&w).map_err(EvalError::Type)? == Some(Ordering::Equal)
                            }
                            None => truthy(&w)?,
                        };
                        if hit {
                            return then(c);
                        }
                    }
                    otherwise.as_ref().map_or(Ok(Value::Null), |e| e(c))
                })
            }
            Expr::Cast {
                expr,
                target,
                try_cast,
                ..
            } => {
                let (x, target, try_cast) = (self.compile(expr)?, *target, *try_cast);
                Box::new(move |c| match cast(x(c)?, target) {
                    Err(EvalError::Cast(_)) if try_cast => Ok(Value::Null),
                    r => r,
                })
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
                ..
            } => {
                let (x, lo, hi, neg) = (
                    self.compile(expr)?,
                    self.compile(low)?,
                    self.compile(high)?,
                    *negated,
                );
                Box::new(move |c| {
                    let v = x(c)?;
                    let ge = compare(&v, &lo(c)?, |o| o != Ordering::Less)?;
                    let le = compare(&v, &hi(c)?, |o| o != Ordering::Greater)?;
                    not_if(and_or(ge, le, false)?, neg)
                })
            }
            Expr::InList {
                expr,
                list,
                negated,
                ..
            } => {
                let x = self.compile(expr)?;
                let list = list
                    .iter()
                    .map(|e| self.compile(e))
                    .collect::<Result<Vec<_>, _>>()?;
                let neg = *negated;
                Box::new(move |c| {
                    let v = x(c)?;
                    let mut result = Value::Bit(false);
                    for item in &list {
                        match compare(&v, &item(c)?, |o| o == Ordering::Equal)? {
                            Value::Bit(true) => return not_if(Value::Bit(true), neg),
                            Value::Null => result = Value::Null,
                            _ => {}
                        }
                    }
                    not_if(result, neg)
                })
            }
            Expr::Like {
                expr,
                pattern,
                negated,
                ..
            } => {
                let (x, neg) = (self.compile(expr)?, *negated);
                // A literal pattern is translated once; others per event.
                if let Expr::Literal(Literal::String(p), span) = pattern.as_ref() {
                    let re = like_regex(p).map_err(|e| {
                        invalid(self.text, *span, e).with_help(
                            "LIKE takes % (any run), _ (one character), [abc], [a-z] and [^abc]; write [[] for a literal [",
                        )
                    })?;
                    return Ok(Box::new(move |c| match x(c)? {
                        Value::Null => Ok(Value::Null),
                        Value::String(s) => not_if(Value::Bit(re.is_match(&s)), neg),
                        a => Err(EvalError::Type(format!(
                            "{} LIKE nvarchar(max)",
                            a.type_name()
                        ))),
                    }));
                }
                let p = self.compile(pattern)?;
                Box::new(move |c| match (x(c)?, p(c)?) {
                    (Value::Null, _) | (_, Value::Null) => Ok(Value::Null),
                    (Value::String(s), Value::String(p)) => {
                        let re = like_regex(&p).map_err(EvalError::Type)?;
                        not_if(Value::Bit(re.is_match(&s)), neg)
                    }
                    (a, b) => Err(EvalError::Type(format!(
                        "{} LIKE {}",
                        a.type_name(),
                        b.type_name()
                    ))),
                })
            }
            Expr::IsNull { expr, negated, .. } => {
                let (x, neg) = (self.compile(expr)?, *negated);
                Box::new(move |c| Ok(Value::Bit(x(c)?.is_null() != neg)))
            }
        })
    }

    fn function(&mut self, call: &FunctionCall) -> Result<Eval, EngineError> {
        let name = call.dotted_name().to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "topone" | "collecttop" | "percentile_cont" | "percentile_disc"
        ) {
            return self.ordered_aggregate(call, &name);
        }
        let windowless =
            call.over.is_some() && matches!(name.as_str(), "sum" | "avg" | "min" | "max" | "count");
        if windowless || matches!(name.as_str(), "lag" | "last" | "isfirst") {
            if self.aggs.is_some() {
                return Err(
                    self.unsupported(call.span, format!("{name}(...) in a grouped SELECT list"))
                );
            }
            let a = crate::analytic::Analytic::compile(self, &name, call)?;
            self.analytics.push(a);
            let slot = self.analytics.len() - 1;
            return Ok(Box::new(move |c| {
                Ok(c.aggs.get(slot).cloned().unwrap_or(Value::Null))
            }));
        }
        if call.over.is_some() {
            return Err(self.unsupported(call.span, format!("{name}(...) OVER (...)")));
        }
        let kind = match name.as_str() {
            "system.timestamp" => return Ok(Box::new(|c| Ok(Value::DateTime(c.time)))),
            "system.window" => {
                // The window id is the group key after the GROUP BY keys (see operator.rs).
                let at = self.group_keys.len();
                let names: Arc<[Arc<str>]> = [Arc::from("Id")].into();
                return Ok(Box::new(move |c| {
                    let id = c.keys.get(at).cloned().unwrap_or(Value::Null);
                    Ok(crate::value::Record::new(names.clone(), vec![id]).into())
                }));
            }
            "count" if call.star => Some(AggKind::CountStar),
            "count" if call.distinct => Some(AggKind::CountDistinct),
            "count" => Some(AggKind::Count),
            "sum" => Some(AggKind::Sum),
            "avg" => Some(AggKind::Avg),
            "min" => Some(AggKind::Min),
            "max" => Some(AggKind::Max),
            "stdev" => Some(AggKind::Stdev),
            "stdevp" => Some(AggKind::StdevP),
            "var" => Some(AggKind::Var),
            "varp" => Some(AggKind::VarP),
            "collect" => Some(AggKind::Collect),
            _ => None,
        };
        if let Some(kind) = kind {
            return self.aggregate(call, kind);
        }
        functions::compile_scalar(self, &name, call)
    }

    /// `TopOne()`, `CollectTop(n)`, `PERCENTILE_CONT(p)`, `PERCENTILE_DISC(p)`, each
    /// `OVER (ORDER BY x [DESC])`: the argument is `[x, event]`.
    fn ordered_aggregate(&mut self, call: &FunctionCall, name: &str) -> Result<Eval, EngineError> {
        let bad = |c: &Self, what: &str| {
            c.unsupported(call.span, format!("{}(...) {what}", call.dotted_name()))
        };
        let Some(over) = &call.over else {
            return Err(bad(self, "without OVER (ORDER BY ...)"));
        };
        let percentile = matches!(name, "percentile_cont" | "percentile_disc");
        if over.order_by.is_empty() || over.order_by.len() > 64 {
            return Err(bad(self, "without ORDER BY expressions"));
        }
        if percentile && over.order_by.len() != 1 {
            return Err(bad(self, "without exactly one ORDER BY expression"));
        }
        let desc = over
            .order_by
            .iter()
            .enumerate()
            .fold(0u64, |bits, (i, (_, d))| bits | (u64::from(*d) << i));
        if !over.partition_by.is_empty() || over.limit_duration.is_some() || over.when.is_some() {
            return Err(bad(self, "with PARTITION BY, LIMIT DURATION or WHEN"));
        }
        let number = |e: Option<&Expr>| match e {
            Some(Expr::Literal(Literal::Integer(i), _)) => Some(*i as f64),
            Some(Expr::Literal(Literal::Float(f), _)) => Some(*f),
            _ => None,
        };
        let which = match (name, number(call.args.first())) {
            ("topone", None) if call.args.is_empty() => Ordered::TopOne,
            ("collecttop", Some(n)) if n >= 1.0 && n.fract() == 0.0 && call.args.len() <= 2 => {
                Ordered::CollectTop(n as usize)
            }
            ("percentile_cont", Some(p)) if (0.0..=1.0).contains(&p) => Ordered::PercentileCont(p),
            ("percentile_disc", Some(p)) if (0.0..=1.0).contains(&p) => Ordered::PercentileDisc(p),
            _ => return Err(bad(self, "with these arguments")),
        };
        if self.aggs.is_none() {
            return Err(self.unsupported(call.span, "an aggregate outside a grouped SELECT"));
        }
        let key = self.normalized(call.span);
        let outer = self.aggs.take();
        let compiled = (|| {
            let orders = over
                .order_by
                .iter()
                .map(|(e, _)| self.compile(e))
                .collect::<Result<Vec<_>, _>>()?;
            // CollectTop(n, expr): the projection collected instead of the event.
            let projection = match (which, call.args.get(1)) {
                (Ordered::CollectTop(_), Some(e)) => Some(self.compile(e)?),
                _ => None,
            };
            Ok::<_, EngineError>((orders, projection))
        })();
        self.aggs = outer;
        let (mut orders, projection) = compiled?;
        let arg: Eval = if percentile {
            let order = orders.pop().ok_or_else(|| bad(self, "without ORDER BY"))?;
            Box::new(move |c| Ok(Value::Array(vec![order(c)?, Value::Null].into())))
        } else {
            Box::new(move |c| {
                let key = orders.iter().map(|o| o(c)).collect::<Result<_, _>>()?;
                let event = match &projection {
                    Some(p) => p(c)?,
                    None => c.record.clone(),
                };
                Ok(Value::Array(vec![Value::Array(key), event].into()))
            })
        };
        let aggs = self.aggs.get_or_insert_with(Vec::new);
        aggs.push(AggSpec {
            kind: AggKind::Ordered { which, desc },
            arg: Some(arg),
            key,
        });
        let slot = aggs.len() - 1;
        Ok(Box::new(move |c| {
            Ok(c.aggs.get(slot).cloned().unwrap_or(Value::Null))
        }))
    }

    fn aggregate(&mut self, call: &FunctionCall, kind: AggKind) -> Result<Eval, EngineError> {
        if self.aggs.is_none() {
            return Err(self.unsupported(call.span, "an aggregate outside a grouped SELECT"));
        }
        if call.distinct && kind != AggKind::CountDistinct {
            return Err(self.unsupported(call.span, "DISTINCT in an aggregate other than COUNT"));
        }
        let key = self.normalized(call.span);
        let existing = self
            .aggs
            .as_ref()
            .and_then(|a| a.iter().position(|s| s.key == key && !key.is_empty()));
        let slot = match existing {
            Some(i) => i,
            None => {
                let arg = match (kind, call.args.as_slice()) {
                    (AggKind::CountStar, _) => None,
                    // Collect() gathers whole events.
                    (AggKind::Collect, []) => {
                        Some(Box::new(|c: &Ctx| Ok(c.record.clone())) as Eval)
                    }
                    (_, [a]) => {
                        // Arguments are per-event expressions: no nested aggregates.
                        let outer = self.aggs.take();
                        let arg = self.compile(a);
                        self.aggs = outer;
                        Some(arg?)
                    }
                    _ => {
                        return Err(self
                            .unsupported(call.span, "an aggregate without exactly one argument"));
                    }
                };
                let aggs = self.aggs.get_or_insert_with(Vec::new);
                aggs.push(AggSpec { kind, arg, key });
                aggs.len() - 1
            }
        };
        Ok(Box::new(move |c| {
            Ok(c.aggs.get(slot).cloned().unwrap_or(Value::Null))
        }))
    }
}

fn not_if(v: Value, negate: bool) -> Result<Value, EvalError> {
    Ok(match v {
        Value::Bit(b) => Value::Bit(b != negate),
        other => other,
    })
}

/// Three-valued AND (`is_or` false) or OR.
fn and_or(a: Value, b: Value, is_or: bool) -> Result<Value, EvalError> {
    let (a, b) = (bool3(&a)?, bool3(&b)?);
    Ok(match (a, b) {
        (Some(x), Some(y)) => Value::Bit(if is_or { x || y } else { x && y }),
        (Some(x), None) | (None, Some(x)) if x == is_or => Value::Bit(x),
        _ => Value::Null,
    })
}

fn bool3(v: &Value) -> Result<Option<bool>, EvalError> {
    match v {
        Value::Null => Ok(None),
        v => truthy(v).map(Some),
    }
}

fn compare(a: &Value, b: &Value, pred: fn(Ordering) -> bool) -> Result<Value, EvalError> {
    Ok(match a.sql_cmp(b).map_err(EvalError::Type)? {
        None => Value::Null,
        Some(o) => Value::Bit(pred(o)),
    })
}

type BinFn = fn(Value, Value) -> Result<Value, EvalError>;

fn binary_fn(op: BinaryOp) -> BinFn {
    match op {
        BinaryOp::Eq => |a, b| compare(&a, &b, |o| o == Ordering::Equal),
        BinaryOp::NotEq => |a, b| compare(&a, &b, |o| o != Ordering::Equal),
        BinaryOp::Lt => |a, b| compare(&a, &b, |o| o == Ordering::Less),
        BinaryOp::LtEq => |a, b| compare(&a, &b, |o| o != Ordering::Greater),
        BinaryOp::Gt => |a, b| compare(&a, &b, |o| o == Ordering::Greater),
        BinaryOp::GtEq => |a, b| compare(&a, &b, |o| o != Ordering::Less),
        BinaryOp::Add => |a, b| arith(BinaryOp::Add, a, b),
        BinaryOp::Sub => |a, b| arith(BinaryOp::Sub, a, b),
        BinaryOp::Mul => |a, b| arith(BinaryOp::Mul, a, b),
        BinaryOp::Div => |a, b| arith(BinaryOp::Div, a, b),
        BinaryOp::Mod => |a, b| arith(BinaryOp::Mod, a, b),
        BinaryOp::BitAnd => |a, b| bits(a, b, |x, y| x & y),
        BinaryOp::BitOr => |a, b| bits(a, b, |x, y| x | y),
        BinaryOp::BitXor => |a, b| bits(a, b, |x, y| x ^ y),
        BinaryOp::And => |a, b| and_or(a, b, false),
        BinaryOp::Or => |a, b| and_or(a, b, true),
    }
}

fn bits(a: Value, b: Value, f: fn(i64, i64) -> i64) -> Result<Value, EvalError> {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => Ok(Value::Null),
        (Value::BigInt(x), Value::BigInt(y)) => Ok(Value::BigInt(f(x, y))),
        (a, b) => Err(EvalError::Type(format!(
            "bitwise {} and {}",
            a.type_name(),
            b.type_name()
        ))),
    }
}

/// `+ - * / %`: bigint with bigint stays bigint (checked); with a float it is float;
/// `+` on two strings concatenates.
pub(crate) fn arith(op: BinaryOp, a: Value, b: Value) -> Result<Value, EvalError> {
    use Value::*;
    match (a, b) {
        (Null, _) | (_, Null) => Ok(Null),
        (BigInt(x), BigInt(y)) => {
            let r = match op {
                BinaryOp::Add => x.checked_add(y),
                BinaryOp::Sub => x.checked_sub(y),
                BinaryOp::Mul => x.checked_mul(y),
                BinaryOp::Div | BinaryOp::Mod if y == 0 => return Err(EvalError::DivideByZero),
                BinaryOp::Div => x.checked_div(y),
                _ => x.checked_rem(y),
            };
            r.map(BigInt).ok_or(EvalError::Overflow)
        }
        (String(x), String(y)) if op == BinaryOp::Add => Ok(String(format!("{x}{y}").into())),
        (a @ (BigInt(_) | Float(_)), b @ (BigInt(_) | Float(_))) => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            if y == 0.0 && matches!(op, BinaryOp::Div | BinaryOp::Mod) {
                return Err(EvalError::DivideByZero);
            }
            Ok(Float(match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div => x / y,
                _ => x % y,
            }))
        }
        (a, b) => Err(EvalError::Type(format!(
            "{} {op:?} {}",
            a.type_name(),
            b.type_name()
        ))),
    }
}

/// CAST semantics; errors are [`EvalError::Cast`] so TRY_CAST can turn them into NULL.
pub(crate) fn cast(v: Value, target: DataType) -> Result<Value, EvalError> {
    let fail =
        |v: &Value| EvalError::Cast(format!("cannot convert {} to {target:?}", v.type_name()));
    Ok(match (target, v) {
        (_, Value::Null) => Value::Null,
        (DataType::BigInt, v @ Value::BigInt(_)) => v,
        (DataType::BigInt, Value::Float(f)) if f.is_finite() && f.abs() < 9.2e18 => {
            Value::BigInt(f.trunc() as i64)
        }
        (DataType::BigInt, Value::Bit(b)) => Value::BigInt(b as i64),
        (DataType::BigInt, Value::String(s)) => Value::BigInt(
            s.trim()
                .parse()
                .map_err(|_| EvalError::Cast(format!("'{s}' is not a bigint")))?,
        ),
        (DataType::Float, v @ (Value::BigInt(_) | Value::Float(_) | Value::Bit(_))) => {
            Value::Float(v.as_f64().unwrap_or(0.0))
        }
        (DataType::Float, Value::String(s)) => Value::Float(
            s.trim()
                .parse()
                .map_err(|_| EvalError::Cast(format!("'{s}' is not a float")))?,
        ),
        (DataType::NVarChar, v) => Value::String(functions::to_text(&v).into()),
        (DataType::DateTime, v @ Value::DateTime(_)) => v,
        (DataType::DateTime, Value::String(s)) => Value::DateTime(
            parse_datetime(&s)
                .ok_or_else(|| EvalError::Cast(format!("'{s}' is not a datetime")))?,
        ),
        (DataType::Bit, v @ Value::Bit(_)) => v,
        (DataType::Bit, Value::BigInt(i)) => Value::Bit(i != 0),
        (DataType::Bit, Value::Float(f)) => Value::Bit(f != 0.0),
        (DataType::Bit, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Value::Bit(true),
            "false" | "0" => Value::Bit(false),
            _ => return Err(EvalError::Cast(format!("'{s}' is not a bit"))),
        },
        (DataType::Record, v @ Value::Record(_)) | (DataType::Array, v @ Value::Array(_)) => v,
        (_, v) => return Err(fail(&v)),
    })
}

/// The regular expression of a `LIKE` pattern (case-sensitive, anchored at both ends):
/// `%` any run, `_` one character, `[abc]`, `[a-z]` and `[^abc]` one character of a set.
pub(crate) fn like_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?s:{})$", like_body(pattern)?))
        .map_err(|e| format!("LIKE pattern '{pattern}': {e}"))
}

/// The unanchored regular-expression text of a `LIKE` pattern.
pub(crate) fn like_body(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '[' => {
                let mut set = String::from("[");
                let mut first = true;
                loop {
                    match chars.next() {
                        None => {
                            return Err(format!("LIKE pattern '{pattern}' has an unclosed '['"));
                        }
                        Some(']') if !first => break,
                        Some('^') if first => set.push('^'),
                        Some('-') => set.push('-'),
                        Some(c) => set.push_str(&regex::escape(&c.to_string())),
                    }
                    first = false;
                }
                set.push(']');
                out.push_str(&set);
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_wildcards_and_sets() {
        let m = |s: &str, p: &str| like_regex(p).unwrap().is_match(s);
        assert!(m("hello", "h%o"));
        assert!(m("hello", "_ello"));
        assert!(m("hello", "%"));
        assert!(!m("hello", "h_o"));
        assert!(m("a%b", "a%b"));
        assert!(!m("", "_"));
        assert!(m("cat", "[bc]at"));
        assert!(!m("rat", "[bc]at"));
        assert!(m("rat", "[^bc]at"));
        assert!(m("d9", "[a-f][0-9]"));
        assert!(m("a.b", "a.b"));
        assert!(!m("axb", "a.b"));
        assert!(!m("Hello", "h%"));
        assert!(like_regex("[ab").is_err());
    }

    #[test]
    fn arithmetic_keeps_types_and_reports_errors() {
        assert_eq!(
            arith(BinaryOp::Add, Value::BigInt(1), Value::BigInt(2)),
            Ok(Value::BigInt(3))
        );
        assert_eq!(
            arith(BinaryOp::Add, Value::BigInt(1), Value::Float(0.5)),
            Ok(Value::Float(1.5))
        );
        assert_eq!(
            arith(BinaryOp::Div, Value::BigInt(1), Value::BigInt(0)),
            Err(EvalError::DivideByZero)
        );
        assert_eq!(
            arith(BinaryOp::Mul, Value::BigInt(i64::MAX), Value::BigInt(2)),
            Err(EvalError::Overflow)
        );
        assert!(matches!(
            arith(BinaryOp::Add, Value::BigInt(1), "a".into()),
            Err(EvalError::Type(_))
        ));
    }

    #[test]
    fn cast_converts_or_fails() {
        assert_eq!(cast("42".into(), DataType::BigInt), Ok(Value::BigInt(42)));
        assert_eq!(
            cast(Value::Float(2.9), DataType::BigInt),
            Ok(Value::BigInt(2))
        );
        assert!(matches!(
            cast("x".into(), DataType::BigInt),
            Err(EvalError::Cast(_))
        ));
        assert_eq!(
            cast("2024-01-01T00:00:00Z".into(), DataType::DateTime),
            Ok(Value::DateTime(parse_datetime("2024-01-01").unwrap()))
        );
        assert_eq!(cast(Value::BigInt(0), DataType::Bit), Ok(Value::Bit(false)));
        assert_eq!(cast(Value::BigInt(7), DataType::NVarChar), Ok("7".into()));
    }
}
