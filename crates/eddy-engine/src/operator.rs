//! Operators, one per SELECT: a filter, then either a projection per event or a
//! window aggregation that emits when the watermark passes a window's end.

use crate::agg::AggState;
use crate::error::{EngineError, EvalError};
use crate::expr::{AggSpec, Ctx, Eval, ExprCompiler, truthy, unsupported};
use crate::value::{Row, Value};
use eddy_sql::ast::{Expr, Select, SelectItem};
use eddy_sql::plan::WindowSpec;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where an operator's rows go.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// An output of the job, by index.
    Output(usize),
    /// A `WITH` step, by index; its rows are events for the statements that read it.
    Step(usize),
}

/// Window assignment; every window is `(end - size, end]`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Window {
    Tumbling { size: i64, offset: i64 },
    Hopping { size: i64, hop: i64, offset: i64 },
    /// `GROUP BY System.Timestamp()`: events with equal timestamps.
    Snapshot,
}

fn ceil_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b) + i64::from(a.rem_euclid(b) != 0)
}

impl Window {
    /// Calls `f` with the end of every window containing time `t`, earliest first.
    pub(crate) fn for_each_end(self, t: i64, mut f: impl FnMut(i64)) {
        match self {
            Window::Tumbling { size, offset } => f(ceil_div(t - offset, size) * size + offset),
            Window::Hopping { size, hop, offset } => {
                let mut end = ceil_div(t - offset, hop) * hop + offset;
                while end - size < t {
                    f(end);
                    end += hop;
                }
            }
            Window::Snapshot => f(t),
        }
    }
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
            let values = self.items.iter().map(|i| match i {
                Item::Expr(_, e) => e(ctx),
                Item::Wildcard(_) => Ok(Value::Null),
            });
            return Ok(Row { columns: columns.clone(), values: values.collect::<Result<_, _>>()? });
        }
        if let ([Item::Wildcard(path)], Value::Record(r)) = (self.items.as_slice(), ctx.record)
            && path.is_empty()
        {
            return Ok(Row { columns: r.names().clone(), values: r.values().to_vec() });
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
        Ok(Row { columns: names.into(), values })
    }

}

/// Per-window groups of a grouped SELECT, ordered by window end.
#[derive(Default)]
pub(crate) struct GroupTable {
    windows: BTreeMap<i64, HashMap<Box<[Value]>, Group>>,
    /// Windows ending at or before this have been emitted; late contributions are ignored.
    closed: Option<i64>,
}

/// One group in one window: its first event (for non-aggregate expressions) and its
/// aggregate states.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Group {
    first: Value,
    aggs: Vec<AggState>,
}

/// The serialisable form of a [`GroupTable`], sorted so snapshots are deterministic.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct GroupSnapshot {
    windows: Vec<(i64, Vec<(Box<[Value]>, Group)>)>,
    closed: Option<i64>,
}

struct Grouped {
    window: Window,
    keys: Vec<Eval>,
    aggs: Vec<AggSpec>,
    having: Option<Eval>,
    table: GroupTable,
    /// Reused per event so the hot path does not allocate.
    key_buf: Vec<Value>,
    arg_buf: Vec<Value>,
}

enum Kind {
    Plain,
    Grouped(Box<Grouped>),
}

/// A compiled SELECT.
pub(crate) struct Operator {
    pub target: Target,
    filter: Option<Eval>,
    projection: Projection,
    kind: Kind,
}

/// How a SELECT reads its source, decided by the job compiler.
pub(crate) struct SourceInfo {
    /// The name expressions use for the source (alias or name).
    pub reference: String,
}

fn is_window_call(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => matches!(
            f.dotted_name().to_ascii_lowercase().as_str(),
            "tumblingwindow" | "tumbling" | "hoppingwindow" | "hopping" | "slidingwindow" | "sliding"
                | "sessionwindow" | "session" | "windows" | "system.timestamp"
        ),
        Expr::Nested(inner, _) => is_window_call(inner),
        _ => false,
    }
}

fn default_name(e: &Expr, i: usize) -> String {
    match e {
        Expr::Column(parts, _) => parts.last().map_or_else(String::new, |p| p.name.clone()),
        Expr::Function(f) => f.name.last().map_or_else(String::new, |p| p.name.to_ascii_lowercase()),
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
        if let Some(join) = select.from.joins.first() {
            return Err(unsupported(text, join.span, "JOIN and APPLY"));
        }
        if select.distinct {
            return Err(unsupported(text, select.span, "SELECT DISTINCT"));
        }
        let grouped = !select.group_by.is_empty() || window.is_some();
        let mut c = ExprCompiler { text, source: source.reference, aggs: grouped.then(Vec::new) };
        let filter = {
            let saved = c.aggs.take();
            let f = select.filter.as_ref().map(|f| c.compile(f)).transpose();
            c.aggs = saved;
            f?
        };
        let mut items = Vec::new();
        for (i, item) in select.items.iter().enumerate() {
            match item {
                SelectItem::Wildcard(span) if grouped => return Err(unsupported(text, *span, "SELECT * with GROUP BY")),
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
                    let name = alias.as_ref().map_or_else(|| default_name(expr, i), |a| a.name.clone());
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
            let window_span = select.group_by.iter().find(|g| is_window_call(g)).map_or(select.span, Expr::span);
            let window = match window {
                Some(WindowSpec::Tumbling { size, offset }) => Window::Tumbling { size: *size, offset: *offset },
                Some(WindowSpec::Hopping { size, hop, offset }) => Window::Hopping { size: *size, hop: *hop, offset: *offset },
                Some(WindowSpec::Snapshot) => Window::Snapshot,
                Some(other) => {
                    let name = match other {
                        WindowSpec::Sliding { .. } => "SlidingWindow",
                        WindowSpec::Session { .. } => "SessionWindow",
                        _ => "Windows(...)",
                    };
                    return Err(unsupported(text, window_span, name));
                }
                None => return Err(unsupported(text, select.span, "GROUP BY without a window")),
            };
            if let Window::Tumbling { size, .. } | Window::Hopping { size, .. } = window
                && size <= 0
            {
                return Err(unsupported(text, window_span, "a window of non-positive size"));
            }
            if let Window::Hopping { hop, .. } = window
                && hop <= 0
            {
                return Err(unsupported(text, window_span, "a hopping window with a non-positive hop"));
            }
            let mut keys = Vec::new();
            let saved = c.aggs.take();
            for g in select.group_by.iter().filter(|g| !is_window_call(g)) {
                keys.push(c.compile(g)?);
            }
            c.aggs = saved;
            Kind::Grouped(Box::new(Grouped {
                window,
                keys,
                aggs: c.aggs.take().unwrap_or_default(),
                having,
                table: GroupTable::default(),
                key_buf: Vec::new(),
                arg_buf: Vec::new(),
            }))
        } else {
            if let Some(h) = &select.having {
                return Err(unsupported(text, h.span(), "HAVING without GROUP BY"));
            }
            Kind::Plain
        };
        Ok(Operator { target, filter, projection, kind })
    }

    /// Processes one event in time order; a plain SELECT returns its row at once.
    pub(crate) fn process(&mut self, time: i64, record: &Value) -> Result<Option<Row>, EvalError> {
        let ctx = Ctx { record, time, aggs: &[] };
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
        let Grouped { window, aggs, table, key_buf, arg_buf, .. } = &mut **g;
        let mut result = Ok(());
        window.for_each_end(time, |end| {
            if table.closed.is_some_and(|c| end <= c) {
                return;
            }
            let groups = table.windows.entry(end).or_default();
            let group = match groups.get_mut(key_buf.as_slice()) {
                Some(g) => g,
                None => groups.entry(key_buf.clone().into_boxed_slice()).or_insert_with(|| Group {
                    first: record.clone(),
                    aggs: aggs.iter().map(|a| AggState::new(a.kind)).collect(),
                }),
            };
            for (state, arg) in group.aggs.iter_mut().zip(arg_buf.iter()) {
                if let Err(e) = state.update(arg) {
                    result = Err(e);
                }
            }
        });
        result.map(|()| None)
    }

    /// Emits every window ending at or before `watermark`, ordered by end then group key.
    /// Rows whose HAVING or SELECT fails to evaluate are dropped and counted in `errors`.
    pub(crate) fn close(&mut self, watermark: i64, errors: &mut u64, out: &mut Vec<(i64, Row)>) {
        let Kind::Grouped(g) = &mut self.kind else { return };
        while let Some(entry) = g.table.windows.first_entry() {
            if *entry.key() > watermark {
                break;
            }
            let (end, groups) = entry.remove_entry();
            let mut groups: Vec<_> = groups.into_iter().collect();
            groups.sort_unstable_by(|a, b| cmp_keys(&a.0, &b.0));
            for (_, group) in groups {
                let results: Vec<Value> = group.aggs.iter().map(AggState::result).collect();
                let ctx = Ctx { record: &group.first, time: end, aggs: &results };
                let row = match &g.having {
                    Some(h) => h(&ctx).and_then(|v| truthy(&v)),
                    None => Ok(true),
                }
                .and_then(|keep| keep.then(|| self.projection.row(&ctx)).transpose());
                match row {
                    Ok(Some(row)) => out.push((end, row)),
                    Ok(None) => {}
                    Err(e) => {
                        *errors += 1;
                        tracing::debug!(error = %e, "dropped a window row");
                    }
                }
            }
        }
        g.table.closed = Some(g.table.closed.map_or(watermark, |c| c.max(watermark)));
    }

    /// The group state for a snapshot (`None` for a plain SELECT).
    pub(crate) fn snapshot(&self) -> Option<GroupSnapshot> {
        let Kind::Grouped(g) = &self.kind else { return None };
        let windows = g
            .table
            .windows
            .iter()
            .map(|(end, groups)| {
                let mut v: Vec<_> = groups.iter().map(|(k, g)| (k.clone(), g.clone())).collect();
                v.sort_unstable_by(|a, b| cmp_keys(&a.0, &b.0));
                (*end, v)
            })
            .collect();
        Some(GroupSnapshot { windows, closed: g.table.closed })
    }

    /// Replaces the group state with a snapshot's.
    pub(crate) fn restore(&mut self, snap: Option<GroupSnapshot>) -> Result<(), String> {
        match (&mut self.kind, snap) {
            (Kind::Plain, None) => Ok(()),
            (Kind::Grouped(g), Some(s)) => {
                if s.windows.iter().flat_map(|w| &w.1).any(|(_, grp)| grp.aggs.len() != g.aggs.len()) {
                    return Err("aggregate count differs".into());
                }
                g.table.windows = s.windows.into_iter().map(|(end, v)| (end, v.into_iter().collect())).collect();
                g.table.closed = s.closed;
                Ok(())
            }
            _ => Err("operator kinds differ".into()),
        }
    }
}

fn cmp_keys(a: &[Value], b: &[Value]) -> std::cmp::Ordering {
    a.iter().zip(b).map(|(x, y)| x.total_cmp(y)).find(|o| o.is_ne()).unwrap_or_else(|| a.len().cmp(&b.len()))
}
