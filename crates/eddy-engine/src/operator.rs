//! Operators, one per SELECT: analytic functions run on every input event first; events
//! are then joined or expanded (APPLY), carrying those values into each row they give;
//! the filter runs on each row, then either a projection or a window aggregation that
//! emits when the watermark passes a window's end.

use crate::agg::AggKind;
use crate::analytic::{Analytic, AnalyticState};
use crate::error::{EngineError, EvalError};
use crate::expr::{AggSpec, Ctx, Eval, ExprCompiler, FieldPositions, truthy, unsupported};
use crate::join::{JoinSources, JoinState, Joins};
use crate::value::{Record, Row, Value};
use crate::window::{ClosedRows, Input, KeyMap, Table, Window};
use eddy_sql::ast::{Expr, Join as JoinDef, JoinKind, JoinTarget, Select, SelectItem};
use eddy_sql::plan::WindowSpec;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Bounds the work and state one event can cause in a hopping window (size / hop).
const MAX_WINDOWS_PER_EVENT: i64 = 10_000;

/// Where an operator's rows go.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// An output of the job, by index.
    Output(usize),
    /// A `WITH` step, by index; its rows are events for the statements that read it.
    Step(usize),
}

/// One output column: a named expression or a `*` expansion.
enum Item {
    Expr(Arc<str>, Eval),
    /// `*` (empty path) or `path.*`: the fields of that record.
    Wildcard(Vec<Arc<str>>),
}

/// The SELECT list, with column names shared by every row when they are fixed.
struct Projection {
    items: Vec<Item>,
    /// `Some` when no item is a wildcard.
    columns: Option<Arc<[Arc<str>]>>,
}

impl Projection {
    fn row(&self, ctx: &Ctx) -> Result<Row, EvalError> {
        if let Some(columns) = &self.columns {
            // Sized once: an output row costs exactly one allocation.
            let mut values = Vec::with_capacity(self.items.len());
            for item in &self.items {
                values.push(match item {
                    Item::Expr(_, e) => e(ctx)?,
                    Item::Wildcard(_) => Value::Null,
                });
            }
            return Ok(Row {
                columns: columns.clone(),
                values,
            });
        }
        if let ([Item::Wildcard(path)], Value::Record(r)) = (self.items.as_slice(), ctx.record)
            && path.is_empty()
        {
            return Ok(Row {
                columns: r.names().clone(),
                values: r.values().to_vec(),
            });
        }
        let (mut names, mut values) = (Vec::<Arc<str>>::new(), Vec::new());
        for item in &self.items {
            match item {
                Item::Expr(name, e) => {
                    names.push(name.clone());
                    values.push(e(ctx)?);
                }
                Item::Wildcard(path) => {
                    let mut v = ctx.record.clone();
                    for p in path {
                        v = match &v {
                            Value::Record(r) => r.get(p).cloned().unwrap_or(Value::Null),
                            _ => Value::Null,
                        };
                    }
                    if let Value::Record(r) = v {
                        for (n, v) in r.names().iter().zip(r.values()) {
                            // On a clash the leftmost column wins, as in ASA.
                            if !names.iter().any(|x| x.eq_ignore_ascii_case(n)) {
                                names.push(n.clone());
                                values.push(v.clone());
                            }
                        }
                    }
                }
            }
        }
        Ok(Row {
            columns: names.into(),
            values,
        })
    }
}

/// One window of a GROUP BY: the only one, or one of `Windows(...)`.
struct WindowSlot {
    /// `Window('id', ...)`: the id, appended to the group key of every row so that
    /// `System.Window().Id` can read it; `None` without ids.
    id: Option<Value>,
    window: Window,
    /// Session `OVER (PARTITION BY ...)` keys.
    partition: Vec<Eval>,
}

struct Grouped {
    /// Whether SELECT or HAVING reads the event outside aggregates and GROUP BY keys.
    keep_first: bool,
    /// Every event is aggregated in each of these windows.
    slots: Vec<WindowSlot>,
    keys: Vec<Eval>,
    aggs: Vec<AggSpec>,
    kinds: Vec<AggKind>,
    having: Option<Eval>,
    /// One table per slot.
    tables: Vec<Table>,
    /// `TIMESTAMP BY ... OVER k`: the substream key, and tables per key (one per slot),
    /// each closed by its own key's watermark.
    over: Vec<Eval>,
    sub_tables: KeyMap<Vec<Table>>,
    /// Reused per event so the hot path does not allocate.
    part_buf: Vec<Value>,
    key_buf: Vec<Value>,
    arg_buf: Vec<Value>,
    /// Reused by every close, so emitting rows does not allocate per close.
    closed_buf: ClosedRows,
}

enum Kind {
    Plain,
    Grouped(Box<Grouped>),
}

/// A compiled SELECT.
pub(crate) struct Operator {
    pub target: Target,
    /// The JOINs (streams and reference data); events then come from several sides.
    join: Option<Joins>,
    /// LAG, LAST and ISFIRST calls, evaluated first on every event, and their state.
    analytics: Vec<Analytic>,
    analytic_state: Vec<AnalyticState>,
    /// `CROSS APPLY` / `OUTER APPLY`, in order: each expands an event into several.
    applies: Vec<Apply>,
    filter: Option<Eval>,
    projection: Projection,
    kind: Kind,
    /// Where the fields the expressions read sit in the current event's shape.
    positions: FieldPositions,
    /// Whether an expression reads event metadata (see [`Operator::reads_metadata`]).
    reads_metadata: bool,
}

/// `CROSS APPLY GetArrayElements(x) AS e` and friends: the alias becomes a field of
/// each expanded event (`e.ArrayIndex`, `e.ArrayValue` / `e.PropertyName`, `e.PropertyValue`).
struct Apply {
    outer: bool,
    arg: Eval,
    alias: Arc<str>,
    /// The element field names (`ArrayIndex`, `ArrayValue` or the property pair).
    element_names: Arc<[Arc<str>]>,
    array: bool,
    /// Last input names and the names with the alias prepended, reused while equal.
    names_cache: Option<(Names, Names)>,
}

impl Apply {
    fn compile(text: &str, join: &JoinDef, c: &mut ExprCompiler) -> Result<Apply, EngineError> {
        let outer = match join.kind {
            JoinKind::CrossApply => false,
            JoinKind::OuterApply => true,
            JoinKind::Inner | JoinKind::LeftOuter => {
                return Err(unsupported(text, join.span, "JOIN"));
            }
        };
        let JoinTarget::Function {
            call: Expr::Function(call),
            alias,
        } = &join.right
        else {
            return Err(unsupported(text, join.span, "APPLY of this source"));
        };
        let name = call.dotted_name().to_ascii_lowercase();
        let array = match name.as_str() {
            "getarrayelements" => true,
            "getrecordproperties" => false,
            _ => {
                return Err(unsupported(
                    text,
                    call.span,
                    format!("APPLY {}", call.dotted_name()),
                ));
            }
        };
        let [arg] = call.args.as_slice() else {
            return Err(unsupported(
                text,
                call.span,
                format!("{}(...) without exactly one argument", call.dotted_name()),
            ));
        };
        let element_names: [&str; 2] = if array {
            ["ArrayIndex", "ArrayValue"]
        } else {
            ["PropertyName", "PropertyValue"]
        };
        Ok(Apply {
            outer,
            arg: c.compile(arg)?,
            alias: alias.name.as_str().into(),
            element_names: element_names.iter().map(|n| Arc::from(*n)).collect(),
            array,
            names_cache: None,
        })
    }

    fn expand(&mut self, time: i64, record: &Value, out: &mut Vec<Value>) -> Result<(), EvalError> {
        let v = (self.arg)(&Ctx::event(record, time))?;
        let pair =
            |a: Value, b: Value| Value::from(Record::new(self.element_names.clone(), vec![a, b]));
        let mut elements: Vec<Value> = match (&v, self.array) {
            (Value::Array(items), true) => items
                .iter()
                .enumerate()
                .map(|(i, x)| pair(Value::BigInt(i as i64), x.clone()))
                .collect(),
            (Value::Record(r), false) => r
                .fields()
                .map(|(n, x)| pair(Value::from(n), x.clone()))
                .collect(),
            _ => Vec::new(),
        };
        if elements.is_empty() && self.outer {
            elements.push(Value::Null);
        }
        let Value::Record(base) = record else {
            return Ok(());
        };
        let names = match &self.names_cache {
            Some((from, to)) if Arc::ptr_eq(from, base.names()) => to.clone(),
            _ => {
                let to: Arc<[Arc<str>]> = std::iter::once(self.alias.clone())
                    .chain(base.names().iter().cloned())
                    .collect();
                self.names_cache = Some((base.names().clone(), to.clone()));
                to
            }
        };
        for el in elements {
            let values = std::iter::once(el)
                .chain(base.values().iter().cloned())
                .collect();
            out.push(Record::new(names.clone(), values).into());
        }
        Ok(())
    }
}

/// A shared list of field names.
type Names = Arc<[Arc<str>]>;

/// How a SELECT reads its source, decided by the job compiler.
pub(crate) struct SourceInfo<'a> {
    /// The name expressions use for the source (alias or name).
    pub reference: String,
    /// The job's reference inputs, and the steps defined before this SELECT.
    pub joins: JoinSources<'a>,
}

fn is_window_call(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => matches!(
            f.dotted_name().to_ascii_lowercase().as_str(),
            "tumblingwindow"
                | "tumbling"
                | "hoppingwindow"
                | "hopping"
                | "slidingwindow"
                | "sliding"
                | "sessionwindow"
                | "session"
                | "windows"
                | "system.timestamp"
        ),
        Expr::Nested(inner, _) => is_window_call(inner),
        _ => false,
    }
}

fn default_name(e: &Expr, i: usize) -> String {
    match e {
        Expr::Column(parts, _) => parts.last().map_or_else(String::new, |p| p.name.clone()),
        Expr::Function(f) => f
            .name
            .last()
            .map_or_else(String::new, |p| p.name.to_ascii_lowercase()),
        Expr::Nested(inner, _) => default_name(inner, i),
        _ => format!("column{}", i + 1),
    }
}

impl Operator {
    /// Compiles one SELECT (already bound) reading `source`, its rows going to `target`.
    pub(crate) fn compile(
        text: &str,
        select: &Select,
        window: Option<&WindowSpec>,
        source: SourceInfo,
        target: Target,
    ) -> Result<Operator, EngineError> {
        let join_sources = source.joins;
        if select.distinct {
            return Err(unsupported(text, select.span, "SELECT DISTINCT"));
        }
        let grouped = !select.group_by.is_empty() || window.is_some();
        let mut c = ExprCompiler {
            aggs: grouped.then(Vec::new),
            ..ExprCompiler::new(text, source.reference)
        };
        c.group_keys = select
            .group_by
            .iter()
            .filter(|g| !is_window_call(g))
            .map(|g| c.normalized(g.span()))
            .collect();
        let saved = c.aggs.take();
        let (applies, join) = match select.from.joins.as_slice() {
            joins
                if !joins.is_empty()
                    && joins
                        .iter()
                        .all(|j| matches!(j.right, JoinTarget::Source(_))) =>
            {
                (
                    Vec::new(),
                    Some(Joins::compile(text, select, &join_sources, &mut c)),
                )
            }
            joins => {
                if let Some(j) = joins
                    .iter()
                    .find(|j| matches!(j.right, JoinTarget::Source(_)))
                {
                    return Err(unsupported(text, j.span, "a JOIN together with an APPLY"));
                }
                let mut applies = Vec::new();
                for j in joins {
                    applies.push(Apply::compile(text, j, &mut c)?);
                    if !c.analytics.is_empty() {
                        return Err(unsupported(
                            text,
                            j.span,
                            "an analytic function in an APPLY argument",
                        ));
                    }
                }
                c.apply_aliases = applies.iter().map(|a| a.alias.to_string()).collect();
                (applies, None)
            }
        };
        c.aggs = saved;
        let join = join.transpose()?;
        if join.is_some()
            && let Some(SelectItem::Wildcard(span)) = select
                .items
                .iter()
                .find(|i| matches!(i, SelectItem::Wildcard(_)))
        {
            return Err(unsupported(text, *span, "SELECT * in a JOIN (use alias.*)"));
        }
        let filter = {
            let saved = c.aggs.take();
            let f = select.filter.as_ref().map(|f| c.compile(f)).transpose();
            c.aggs = saved;
            f?
        };
        let mut items = Vec::new();
        for (i, item) in select.items.iter().enumerate() {
            match item {
                SelectItem::Wildcard(span) if grouped => {
                    return Err(unsupported(text, *span, "SELECT * with GROUP BY"));
                }
                SelectItem::Wildcard(_) => items.push(Item::Wildcard(Vec::new())),
                SelectItem::QualifiedWildcard(path) => {
                    if grouped {
                        let span = path.first().map(|p| p.span).unwrap_or(select.span);
                        return Err(unsupported(text, span, "SELECT x.* with GROUP BY"));
                    }
                    let mut p = c.path(path);
                    if path.len() == 1 && path[0].eq_ignore_case(&c.source) {
                        p.clear();
                    }
                    items.push(Item::Wildcard(p));
                }
                SelectItem::Expr { expr, alias } => {
                    let name = alias
                        .as_ref()
                        .map_or_else(|| default_name(expr, i), |a| a.name.clone());
                    items.push(Item::Expr(name.into(), c.compile(expr)?));
                }
            }
        }
        let columns = items
            .iter()
            .map(|i| match i {
                Item::Expr(name, _) => Some(name.clone()),
                Item::Wildcard(_) => None,
            })
            .collect::<Option<Arc<[Arc<str>]>>>();
        let projection = Projection { items, columns };
        let kind = if grouped {
            let having = select.having.as_ref().map(|h| c.compile(h)).transpose()?;
            let window_span = select
                .group_by
                .iter()
                .find(|g| is_window_call(g))
                .map_or(select.span, Expr::span);
            let specs: Vec<(Option<&str>, &WindowSpec)> = match window {
                Some(WindowSpec::Multiple(list)) => {
                    list.iter().map(|(id, w)| (id.as_deref(), w)).collect()
                }
                Some(w) => vec![(None, w)],
                None => return Err(unsupported(text, select.span, "GROUP BY without a window")),
            };
            let mut resolved = Vec::new();
            for (id, spec) in specs {
                let (w, partition_exprs) = resolve_window(text, window_span, spec)?;
                resolved.push((id, w, partition_exprs));
            }
            let saved = c.aggs.take();
            let keys = select
                .group_by
                .iter()
                .filter(|g| !is_window_call(g))
                .map(|g| c.compile(g))
                .collect::<Result<Vec<_>, _>>()?;
            let mut slots = Vec::new();
            for (id, window, partition_exprs) in resolved {
                let partition = partition_exprs
                    .iter()
                    .map(|p| c.compile(p))
                    .collect::<Result<Vec<_>, _>>()?;
                slots.push(WindowSlot {
                    id: id.map(Value::from),
                    window,
                    partition,
                });
            }
            let over = match &select.from.source.timestamp_by {
                Some(ts) => ts
                    .over
                    .iter()
                    .map(|k| c.compile(k))
                    .collect::<Result<Vec<_>, _>>()?,
                None => Vec::new(),
            };
            c.aggs = saved;
            let aggs = c.aggs.take().unwrap_or_default();
            Kind::Grouped(Box::new(Grouped {
                keep_first: c.reads_record,
                tables: slots.iter().map(|s| Table::new(s.window)).collect(),
                slots,
                keys,
                kinds: aggs.iter().map(|a| a.kind).collect(),
                aggs,
                having,
                over,
                sub_tables: KeyMap::default(),
                part_buf: Vec::new(),
                key_buf: Vec::new(),
                arg_buf: Vec::new(),
                closed_buf: ClosedRows::default(),
            }))
        } else {
            if let Some(h) = &select.having {
                return Err(unsupported(text, h.span(), "HAVING without GROUP BY"));
            }
            Kind::Plain
        };
        let mut join = join;
        if let Some(j) = &mut join {
            if let Some(a) = c.analytics.iter().find(|a| j.is_reference(a.source)) {
                return Err(unsupported(
                    text,
                    a.span,
                    "an analytic function over reference data (its rows are not events)",
                ));
            }
            let sources: Vec<usize> = c.analytics.iter().map(|a| a.source).collect();
            j.set_analytics(&sources);
        }
        Ok(Operator {
            target,
            positions: FieldPositions::new(std::mem::take(&mut c.fields)),
            reads_metadata: c.reads_metadata,
            analytic_state: c
                .analytics
                .iter()
                .map(|_| AnalyticState::default())
                .collect(),
            analytics: c.analytics,
            join,
            applies,
            filter,
            projection,
            kind,
        })
    }

    /// Processes one event in time order; a plain SELECT appends its rows to `out` at once.
    /// `side` is 0, or 1 for the right side of a join. An event (or an APPLY element or
    /// join pair) that fails to evaluate is dropped and counted.
    pub(crate) fn process(
        &mut self,
        time: i64,
        side: usize,
        record: &Value,
        out: &mut Vec<Row>,
        errors: &mut u64,
    ) {
        let mut emit = |r: Result<Option<Row>, EvalError>, errors: &mut u64| match r {
            Ok(Some(row)) => out.push(row),
            Ok(None) => {}
            Err(e) => count(errors, e),
        };
        if let Some(j) = &mut self.join {
            // Analytic calls on this source see the event before the join; their values
            // travel with it into every row it joins.
            let mut values = Vec::new();
            if j.has_analytics(side) {
                let single = j.single(side, time, record);
                let ctx = Ctx::event(&single, time);
                for (a, state) in self.analytics.iter().zip(&mut self.analytic_state) {
                    if a.source == side {
                        match a.eval(&ctx, state) {
                            Ok(v) => values.push(v),
                            Err(e) => return count(errors, e),
                        }
                    }
                }
            }
            let offset = j.analytic_offset();
            let mut joined = Vec::new();
            j.add(side, time, record, values, errors, &mut joined);
            for (t, r) in &joined {
                emit(
                    self.process_one(*t, r, Some(analytic_values(r, offset))),
                    errors,
                );
            }
            return;
        }
        if self.applies.is_empty() {
            return emit(self.process_one(time, record, None), errors);
        }
        // Analytic calls see the input event once, before APPLY expands it.
        let mut values = Vec::new();
        if !self.analytics.is_empty() {
            let ctx = Ctx::event(record, time);
            for (a, state) in self.analytics.iter().zip(&mut self.analytic_state) {
                match a.eval(&ctx, state) {
                    Ok(v) => values.push(v),
                    Err(e) => return count(errors, e),
                }
            }
        }
        let mut current = vec![record.clone()];
        for a in &mut self.applies {
            let mut next = Vec::new();
            for r in &current {
                if let Err(e) = a.expand(time, r, &mut next) {
                    count(errors, e);
                }
            }
            current = next;
        }
        for r in &current {
            emit(self.process_one(time, r, Some(&values)), errors);
        }
    }

    /// Filters and projects (or aggregates) one row. `analytics` holds the analytic
    /// values computed before a join or APPLY; `None`: compute them on `record` now.
    fn process_one(
        &mut self,
        time: i64,
        record: &Value,
        analytics: Option<&[Value]>,
    ) -> Result<Option<Row>, EvalError> {
        let fields = self.positions.resolve(record);
        let mut own = Vec::new();
        if analytics.is_none() && !self.analytics.is_empty() {
            let ctx = Ctx {
                record,
                time,
                keys: &[],
                aggs: &[],
                fields,
            };
            for (a, state) in self.analytics.iter().zip(&mut self.analytic_state) {
                own.push(a.eval(&ctx, state)?);
            }
        }
        let ctx = Ctx {
            record,
            time,
            keys: &[],
            aggs: analytics.unwrap_or(&own),
            fields,
        };
        if let Some(f) = &self.filter
            && !truthy(&f(&ctx)?)?
        {
            return Ok(None);
        }
        let g = match &mut self.kind {
            Kind::Plain => return self.projection.row(&ctx).map(Some),
            Kind::Grouped(g) => g,
        };
        g.key_buf.clear();
        for k in &g.keys {
            g.key_buf.push(k(&ctx)?);
        }
        g.arg_buf.clear();
        for a in &g.aggs {
            g.arg_buf.push(match &a.arg {
                Some(e) => e(&ctx)?,
                None => Value::Bit(true),
            });
        }
        let tables = if g.over.is_empty() {
            &mut g.tables
        } else {
            let sub: Box<[Value]> = g.over.iter().map(|k| k(&ctx)).collect::<Result<_, _>>()?;
            let slots = &g.slots;
            g.sub_tables
                .0
                .entry(sub)
                .or_insert_with(|| slots.iter().map(|s| Table::new(s.window)).collect())
        };
        let null = Value::Null;
        let mut result = Ok(None);
        for (slot, table) in g.slots.iter().zip(tables.iter_mut()) {
            g.part_buf.clear();
            for p in &slot.partition {
                g.part_buf.push(p(&ctx)?);
            }
            let input = Input {
                time,
                partition: &g.part_buf,
                key: &g.key_buf,
                args: &g.arg_buf,
                record: if g.keep_first { record } else { &null },
            };
            if let Err(e) = table.add(slot.window, &g.kinds, &input) {
                result = Err(e);
            }
        }
        result
    }

    /// Whether an expression of this SELECT reads event metadata, so the job must make
    /// each event's metadata current before running it.
    pub(crate) fn reads_metadata(&self) -> bool {
        self.reads_metadata
    }

    /// Whether this SELECT can read a `TIMESTAMP BY ... OVER` source: no join or APPLY,
    /// and its rows go to an output (substreams are ordered per key only).
    pub(crate) fn takes_substreams(&self) -> bool {
        self.join.is_none() && self.applies.is_empty() && matches!(self.target, Target::Output(_))
    }

    /// Like [`Operator::close`] for a SELECT over substreams: each key's windows close at
    /// that key's watermark, `watermark_of(key)`.
    pub(crate) fn close_substreams(
        &mut self,
        watermark_of: &dyn Fn(&[Value]) -> i64,
        errors: &mut u64,
        out: &mut Vec<(i64, Row)>,
    ) {
        let Kind::Grouped(g) = &mut self.kind else {
            return;
        };
        let mut closed = std::mem::take(&mut g.closed_buf);
        for (key, tables) in &mut g.sub_tables.0 {
            close_slots(&g.slots, tables, &g.kinds, watermark_of(key), &mut closed);
        }
        closed.sort_from(0);
        self.emit_closed(closed, errors, out);
    }

    /// Emits every window ending at or before `watermark`, ordered by end then group key.
    /// Rows whose HAVING or SELECT fails to evaluate are dropped and counted in `errors`.
    pub(crate) fn close(&mut self, watermark: i64, errors: &mut u64, out: &mut Vec<(i64, Row)>) {
        if let Some(j) = &mut self.join {
            let mut expired = Vec::new();
            j.expire(watermark, errors, &mut expired);
            let offset = j.analytic_offset();
            for (time, r) in &expired {
                match self.process_one(*time, r, Some(analytic_values(r, offset))) {
                    Ok(Some(row)) => out.push((*time, row)),
                    Ok(None) => {}
                    Err(e) => count(errors, e),
                }
            }
        }
        let Kind::Grouped(g) = &mut self.kind else {
            return;
        };
        let mut closed = std::mem::take(&mut g.closed_buf);
        close_slots(&g.slots, &mut g.tables, &g.kinds, watermark, &mut closed);
        self.emit_closed(closed, errors, out);
    }

    /// Evaluates HAVING and the SELECT list on closed groups, in order.
    /// The buffer is handed back to the operator, cleared, for the next close.
    fn emit_closed(&mut self, mut closed: ClosedRows, errors: &mut u64, out: &mut Vec<(i64, Row)>) {
        let Kind::Grouped(g) = &mut self.kind else {
            return;
        };
        out.reserve(closed.rows.len());
        for c in &closed.rows {
            let ctx = Ctx {
                record: &c.first,
                time: c.end,
                keys: closed.key(c),
                aggs: closed.results(c),
                fields: &[],
            };
            let row = match &g.having {
                Some(h) => h(&ctx).and_then(|v| truthy(&v)),
                None => Ok(true),
            }
            .and_then(|keep| keep.then(|| self.projection.row(&ctx)).transpose());
            match row {
                Ok(Some(row)) => out.push((c.end, row)),
                Ok(None) => {}
                Err(e) => {
                    *errors += 1;
                    crate::error::log_runtime_error("window row", &e);
                }
            }
        }
        closed.clear();
        g.closed_buf = closed;
    }

    /// Replaces the rows of reference input `reference` wherever this SELECT joins it.
    pub(crate) fn set_reference(
        &mut self,
        reference: usize,
        rows: &Arc<[Value]>,
        errors: &mut u64,
    ) {
        if let Some(j) = &mut self.join {
            j.set_reference(reference, rows, errors);
        }
    }

    /// Rows its stream joins hold, waiting for a match.
    pub(crate) fn join_buffered_rows(&self) -> usize {
        self.join.as_ref().map_or(0, Joins::buffered_rows)
    }

    /// The operator's state for a snapshot.
    pub(crate) fn snapshot(&self) -> OperatorState {
        OperatorState {
            tables: match &self.kind {
                Kind::Grouped(g) => Some(g.tables.clone()),
                Kind::Plain => None,
            },
            sub_tables: match &self.kind {
                Kind::Grouped(g) => g.sub_tables.clone(),
                Kind::Plain => KeyMap::default(),
            },
            join: self.join.as_ref().map(Joins::state),
            analytics: self.analytic_state.clone(),
        }
    }

    /// Replaces the operator's state with a snapshot's.
    pub(crate) fn restore(&mut self, snap: OperatorState) -> Result<(), String> {
        if snap.analytics.len() != self.analytics.len() {
            return Err("the analytic state does not fit this query".into());
        }
        self.analytic_state = snap.analytics;
        match (&mut self.join, snap.join) {
            (Some(j), Some(state)) => j.restore(state)?,
            (None, None) => {}
            _ => return Err("the join state does not fit this query".into()),
        }
        match (&mut self.kind, snap.tables) {
            (Kind::Plain, None) => Ok(()),
            (Kind::Grouped(g), Some(t))
                if tables_fit(&g.slots, &t, g.kinds.len())
                    && snap
                        .sub_tables
                        .0
                        .values()
                        .all(|s| tables_fit(&g.slots, s, g.kinds.len())) =>
            {
                g.tables = t;
                g.sub_tables = snap.sub_tables;
                Ok(())
            }
            _ => Err("the window state does not fit this query".into()),
        }
    }
}

/// What a snapshot keeps of one operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OperatorState {
    /// One table per window of the GROUP BY.
    tables: Option<Vec<Table>>,
    sub_tables: KeyMap<Vec<Table>>,
    join: Option<Vec<JoinState>>,
    analytics: Vec<AnalyticState>,
}

/// Whether snapshot tables fit the windows of this query.
fn tables_fit(slots: &[WindowSlot], tables: &[Table], aggs: usize) -> bool {
    slots.len() == tables.len()
        && slots
            .iter()
            .zip(tables)
            .all(|(s, t)| t.fits(s.window, aggs))
}

/// Closes every window's table up to `watermark` into `out`, ordered by end then key;
/// with window ids, each row's key ends with its window's id.
fn close_slots(
    slots: &[WindowSlot],
    tables: &mut [Table],
    kinds: &[AggKind],
    watermark: i64,
    out: &mut ClosedRows,
) {
    let from = out.rows.len();
    for (slot, table) in slots.iter().zip(tables.iter_mut()) {
        let start = out.rows.len();
        table.close(slot.window, kinds, watermark, out);
        if let Some(id) = &slot.id {
            out.extend_keys_from(start, id);
        }
    }
    if slots.len() > 1 {
        out.sort_from(from);
    }
}

/// Turns one resolved window of the plan into the engine's, with its session
/// `PARTITION BY` expressions; rejects windows the engine cannot run.
fn resolve_window<'w>(
    text: &str,
    span: eddy_sql::span::Span,
    spec: &'w WindowSpec,
) -> Result<(Window, &'w [Expr]), EngineError> {
    let window = match spec {
        WindowSpec::Tumbling { size, offset } => Window::Tumbling {
            size: *size,
            offset: *offset,
        },
        WindowSpec::Hopping { size, hop, offset } => {
            if *hop <= 0 || *size / *hop > MAX_WINDOWS_PER_EVENT {
                let what = format!(
                    "a hopping window whose hop is not positive or gives more than \
                     {MAX_WINDOWS_PER_EVENT} windows per event"
                );
                return Err(unsupported(text, span, what));
            }
            Window::Hopping {
                size: *size,
                hop: *hop,
                offset: *offset,
            }
        }
        WindowSpec::Snapshot => Window::Snapshot,
        WindowSpec::Sliding { size } => Window::Sliding { size: *size },
        WindowSpec::Session {
            timeout,
            max_duration,
            partition_by,
        } => {
            return Ok((
                Window::Session {
                    timeout: *timeout,
                    max_duration: *max_duration,
                },
                partition_by,
            ));
        }
        WindowSpec::Multiple(_) => return Err(unsupported(text, span, "nested Windows(...)")),
    };
    if let Window::Tumbling { size, .. } | Window::Hopping { size, .. } | Window::Sliding { size } =
        window
        && size <= 0
    {
        return Err(unsupported(text, span, "a window of non-positive size"));
    }
    Ok((window, &[]))
}

/// The analytic values a join composite carries (see `join.rs`).
fn analytic_values(composite: &Value, offset: usize) -> &[Value] {
    match composite {
        Value::Record(r) => r.values().get(offset..).unwrap_or(&[]),
        _ => &[],
    }
}

/// Counts a runtime evaluation error; the event (or row) it hit is dropped, never silently.
fn count(errors: &mut u64, e: EvalError) {
    *errors += 1;
    crate::error::log_runtime_error("event", &e);
}
