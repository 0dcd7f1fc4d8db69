//! Checks a parsed script against the dialect's rules and resolves what the engine needs:
//! which FROM names are steps and which are inputs, where each statement writes, and the
//! window of every grouped SELECT (in 100-ns ticks). Every rejection is a [`Diagnostic`]
//! pointing at the offending text.

use std::collections::HashMap;

use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::functions::{DATE_PARTS, FUNCTIONS, TIME_UNIT_NAMES, lookup, suggest, time_unit};
use crate::plan::{BoundScript, BoundStatement, FunctionKind, TimeUnit, WindowSpec};
use crate::span::Span;

/// The longest window, join bound or session ASA accepts.
const MAX_WINDOW_TICKS: i64 = 7 * 864_000_000_000;

/// Where an expression stands, which decides what it may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    Select,
    Where,
    GroupBy,
    Having,
    /// ON, TIMESTAMP BY, PARTITION BY, APPLY.
    From,
}

impl Clause {
    fn name(self) -> &'static str {
        match self {
            Clause::Select => "SELECT",
            Clause::Where => "WHERE",
            Clause::GroupBy => "GROUP BY",
            Clause::Having => "HAVING",
            Clause::From => "FROM",
        }
    }
}

/// What binding must know beyond the query text: which input names are reference data
/// (a job declares them; the text cannot tell a reference input from a stream).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindOptions {
    /// Input names (case-insensitive) that are reference data, joinable without a time bound.
    pub reference_inputs: Vec<String>,
}

/// Checks `script` (parsed from `text`) and resolves windows, steps, inputs and outputs.
pub fn bind(script: Script, text: &str) -> Result<BoundScript, Diagnostic> {
    bind_with(script, text, &BindOptions::default())
}

/// [`bind`] for a job that declares reference inputs.
pub fn bind_with(
    script: Script,
    text: &str,
    options: &BindOptions,
) -> Result<BoundScript, Diagnostic> {
    let mut b = Binder {
        text,
        columns: HashMap::new(),
        all_steps: HashMap::new(),
        defined: HashMap::new(),
        bound: Vec::new(),
        inputs: Vec::new(),
        input_spans: Vec::new(),
        outputs: Vec::new(),
        declared_references: &options.reference_inputs,
        references: Vec::new(),
    };
    for statement in &script.statements {
        if let Statement::With { steps, .. } = statement {
            for step in steps {
                let key = step.name.name.to_lowercase();
                if let Some(first) = b.all_steps.get(&key) {
                    return Err(b
                        .err(
                            format!("step '{}' is defined twice", step.name.name),
                            step.name.span,
                        )
                        .with_note(b.at("first defined", *first))
                        .with_help("give each step its own name"));
                }
                b.all_steps.insert(key, step.name.span);
            }
        }
    }
    for statement in &script.statements {
        if let Statement::CreateTable { name, columns, .. } = statement {
            b.columns.insert(
                name.name.to_lowercase(),
                columns.iter().map(|(c, _)| c.name.clone()).collect(),
            );
        }
    }
    for statement in &script.statements {
        match statement {
            Statement::With { steps, body } => {
                for step in steps {
                    b.statement(&step.query, Some(&step.name))?;
                    if let Some(names) = output_columns(&step.query) {
                        b.columns.insert(step.name.name.to_lowercase(), names);
                    }
                    b.defined
                        .insert(step.name.name.to_lowercase(), step.name.span);
                }
                b.statement(body, None)?;
            }
            Statement::Query(q) => b.statement(q, None)?,
            Statement::CreateTable { .. } => {}
        }
    }
    Ok(BoundScript {
        script,
        statements: b.bound,
        inputs: b.inputs,
        outputs: b.outputs,
        input_spans: b.input_spans,
        references: b.references,
    })
}

struct Binder<'a> {
    text: &'a str,
    /// Known columns of an input (`CREATE TABLE`) or step (its SELECT list), by lower-case
    /// name: a column read from it must be one of them.
    columns: HashMap<String, Vec<String>>,
    /// Every step of the script, lower-cased, to tell "used too early" from "an input".
    all_steps: HashMap<String, Span>,
    /// Steps defined so far.
    defined: HashMap<String, Span>,
    bound: Vec<BoundStatement>,
    inputs: Vec<String>,
    input_spans: Vec<Span>,
    outputs: Vec<String>,
    /// Reference input names the job declared.
    declared_references: &'a [String],
    /// Reference inputs read so far, as first written.
    references: Vec<String>,
}

impl Binder<'_> {
    fn err(&self, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic::new(message, span, self.text)
    }

    fn at(&self, what: &str, span: Span) -> String {
        let (line, column) = span.line_col(self.text);
        format!("{what} at line {line}, column {column}")
    }

    /// Binds one step (`step` is its name) or output query.
    fn statement(&mut self, query: &Query, step: Option<&Ident>) -> Result<(), Diagnostic> {
        let mut selects = Vec::new();
        flatten(query, &mut selects);
        let mut windows = Vec::new();
        let mut into: Option<&Ident> = None;
        for select in &selects {
            if let Some(out) = &select.into {
                if let Some(step) = step {
                    return Err(self
                        .err("INTO is not allowed inside a WITH step", out.span)
                        .with_help(format!(
                            "later statements read this step with FROM {}; put INTO on the statement that does",
                            step.name
                        )));
                }
                if let Some(first) = into
                    && !first.eq_ignore_case(&out.name)
                {
                    return Err(self
                        .err(
                            "all branches of a UNION must write to the same output",
                            out.span,
                        )
                        .with_note(self.at(
                            &format!("the first branch writes to '{}'", first.name),
                            first.span,
                        )));
                }
                into = into.or(Some(out));
            }
            windows.push(self.select(select)?);
        }
        let target = match (step, into) {
            (Some(s), _) => s.name.clone(),
            (None, Some(out)) => out.name.clone(),
            (None, None) => "output".to_string(),
        };
        if step.is_none() && !self.outputs.iter().any(|o| o.eq_ignore_ascii_case(&target)) {
            self.outputs.push(target.clone());
        }
        self.bound.push(BoundStatement {
            target,
            is_step: step.is_some(),
            query: query.clone(),
            windows,
        });
        Ok(())
    }

    /// Whether a FROM or JOIN name reads reference data (a declared reference input that
    /// no step shadows).
    fn is_reference(&self, source: &Source) -> bool {
        let name = &source.name.name;
        !self.all_steps.contains_key(&name.to_lowercase())
            && self
                .declared_references
                .iter()
                .any(|r| r.eq_ignore_ascii_case(name))
    }

    /// Records a reference input read on the right of a JOIN.
    fn reference(&mut self, source: &Source) -> Result<(), Diagnostic> {
        if let Some(ts) = &source.timestamp_by {
            return Err(self
                .err("reference data has no event time", ts.expr.span())
                .with_note(format!("'{}' is a reference input", source.name.name))
                .with_help("remove TIMESTAMP BY; a joined event keeps the stream's time"));
        }
        if let Some(p) = &source.partition_by {
            return Err(self.err("reference data cannot be partitioned", p.span()));
        }
        let name = &source.name.name;
        if !self.references.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            self.references.push(name.clone());
        }
        Ok(())
    }

    /// Records a FROM name as a step read or an input.
    fn source(&mut self, source: &Source) -> Result<(), Diagnostic> {
        let name = &source.name;
        let key = name.name.to_lowercase();
        if self.is_reference(source) {
            return Err(self
                .err(
                    "reference data can only be read on the right of a JOIN",
                    name.span,
                )
                .with_note(format!("'{}' is a reference input", name.name))
                .with_help(format!(
                    "read a stream and join it: FROM stream JOIN {} ON ...",
                    name.name
                )));
        }
        if !self.defined.contains_key(&key) {
            if let Some(def) = self.all_steps.get(&key) {
                return Err(self
                    .err(
                        format!("step '{}' is used before it is defined", name.name),
                        name.span,
                    )
                    .with_note(self.at("it is defined", *def))
                    .with_help("a step can only read inputs and steps defined above it"));
            }
            if !self
                .inputs
                .iter()
                .any(|i| i.eq_ignore_ascii_case(&name.name))
            {
                self.inputs.push(name.name.clone());
                self.input_spans.push(name.span);
            }
        }
        if let Some(e) = &source.partition_by {
            self.expr(e, Clause::From, false)?;
        }
        if let Some(ts) = &source.timestamp_by {
            self.expr(&ts.expr, Clause::From, false)?;
            for k in &ts.over {
                self.expr(k, Clause::From, false)?;
            }
        }
        Ok(())
    }

    /// Checks one SELECT and returns its window.
    fn select(&mut self, s: &Select) -> Result<Option<WindowSpec>, Diagnostic> {
        self.source(&s.from.source)?;
        let mut refs = vec![s.from.source.reference_name().name.clone()];
        for join in &s.from.joins {
            let mut reference = false;
            match &join.right {
                JoinTarget::Source(src) if self.is_reference(src) => {
                    self.reference(src)?;
                    reference = true;
                    refs.push(src.reference_name().name.clone());
                }
                JoinTarget::Source(src) => {
                    self.source(src)?;
                    refs.push(src.reference_name().name.clone());
                }
                JoinTarget::Function { call, alias } => {
                    self.expr(call, Clause::From, false)?;
                    refs.push(alias.name.clone());
                }
            }
            if let Some(on) = &join.on {
                self.expr(on, Clause::From, false)?;
                if !reference && !contains_call(on, "DATEDIFF") {
                    let right = match &join.right {
                        JoinTarget::Source(src) => src.name.name.as_str(),
                        JoinTarget::Function { alias, .. } => alias.name.as_str(),
                    };
                    return Err(self
                        .err("a join between streams needs a time bound", join.span)
                        .with_help("add DATEDIFF(unit, left, right) BETWEEN low AND high to the ON condition")
                        .with_note(format!("'{right}' is a stream; only a join with reference data needs no bound (declare '{right}' as a reference input of the job if it is one)")));
                }
            }
        }
        for item in &s.items {
            if let SelectItem::Expr { expr, .. } = item {
                self.expr(expr, Clause::Select, false)?;
            }
        }
        if let Some(f) = &s.filter {
            self.expr(f, Clause::Where, false)?;
        }
        self.known_columns(s)?;
        if let Some(h) = &s.having {
            self.expr(h, Clause::Having, false)?;
        }
        let mut window: Option<(WindowSpec, Span)> = None;
        let mut keys = Vec::new();
        for item in &s.group_by {
            let inner = unnest(item);
            let spec = match inner {
                Expr::Function(call) if function_kind_of(call) == Some(FunctionKind::Window) => {
                    Some(self.window(call)?)
                }
                Expr::Function(call)
                    if call.dotted_name().eq_ignore_ascii_case("System.Timestamp") =>
                {
                    self.expr(inner, Clause::GroupBy, false)?;
                    Some(WindowSpec::Snapshot)
                }
                _ => None,
            };
            match (spec, &window) {
                (Some(_), Some((_, first))) => {
                    return Err(self
                        .err("a GROUP BY can contain only one window", item.span())
                        .with_note(self.at("the first window is", *first))
                        .with_help("combine several windows with Windows(w1, w2, ...)"));
                }
                (Some(spec), None) => window = Some((spec, item.span())),
                (None, _) => {
                    self.expr(item, Clause::GroupBy, false)?;
                    keys.push(item);
                }
            }
        }
        if window.is_none() && !s.group_by.is_empty() {
            let span = s.group_by[0]
                .span()
                .to(s.group_by[s.group_by.len() - 1].span());
            return Err(self
                .err("GROUP BY on a stream needs a window", span)
                .with_help("add a window, e.g. GROUP BY key, TumblingWindow(minute, 1)"));
        }
        if window.is_some() {
            self.grouped(s, &keys, &refs)?;
        } else if let Some(span) = s
            .items
            .iter()
            .filter_map(|i| match i {
                SelectItem::Expr { expr, .. } => Some(expr),
                _ => None,
            })
            .chain(&s.having)
            .find_map(find_aggregate)
        {
            return Err(self
                .err("an aggregate needs a GROUP BY with a window", span)
                .with_help("add e.g. GROUP BY TumblingWindow(minute, 1), or use OVER (LIMIT DURATION(...)) for a running aggregate"));
        }
        Ok(window.map(|(w, _)| w))
    }

    /// In a grouped SELECT every column outside an aggregate must be a group key.
    fn grouped(&self, s: &Select, keys: &[&Expr], refs: &[String]) -> Result<(), Diagnostic> {
        for item in &s.items {
            match item {
                SelectItem::Wildcard(span) => {
                    return Err(self
                        .err("SELECT * cannot be used with GROUP BY", *span)
                        .with_help("list the group keys and aggregates instead"));
                }
                SelectItem::QualifiedWildcard(path) => {
                    let span = path[0].span.to(path[path.len() - 1].span);
                    return Err(self.err("a wildcard cannot be used with GROUP BY", span));
                }
                SelectItem::Expr { expr, .. } => self.keyed(expr, keys, refs)?,
            }
        }
        if let Some(h) = &s.having {
            self.keyed(h, keys, refs)?;
        }
        Ok(())
    }

    fn keyed(&self, e: &Expr, keys: &[&Expr], refs: &[String]) -> Result<(), Diagnostic> {
        if keys.iter().any(|k| self.same(k, e, refs)) {
            return Ok(());
        }
        match e {
            Expr::Column(path, span) => {
                let name: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
                Err(self
                    .err(
                        format!(
                            "column '{}' is neither a GROUP BY key nor inside an aggregate",
                            name.join(".")
                        ),
                        *span,
                    )
                    .with_help("add it to GROUP BY or wrap it in an aggregate such as MAX(...)"))
            }
            Expr::Function(call) if is_aggregate_use(call) => Ok(()),
            _ => {
                let skip = unit_arg(e);
                children(e)
                    .into_iter()
                    .filter(|c| !same_node(c, skip))
                    .try_for_each(|c| self.keyed(c, keys, refs))
            }
        }
    }

    /// Same expression as written, ignoring spacing, case and a leading source alias.
    fn same(&self, a: &Expr, b: &Expr, refs: &[String]) -> bool {
        if let (Expr::Column(p, _), Expr::Column(q, _)) = (unnest(a), unnest(b)) {
            let strip = |p: &[Ident]| -> Vec<String> {
                let skip = p.len() > 1 && refs.iter().any(|r| p[0].eq_ignore_case(r));
                p[usize::from(skip)..]
                    .iter()
                    .map(|i| i.name.to_lowercase())
                    .collect()
            };
            return strip(p) == strip(q);
        }
        let norm = |e: &Expr| -> String {
            let s = e.span();
            self.text
                .get(s.start..s.end)
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_whitespace())
                .flat_map(char::to_lowercase)
                .collect()
        };
        norm(a) == norm(b)
    }

    /// Checks function calls inside `e`: known names, argument counts, and where
    /// aggregates and windows may stand.
    fn expr(&self, e: &Expr, clause: Clause, in_aggregate: bool) -> Result<(), Diagnostic> {
        let mut in_aggregate = in_aggregate;
        if let Expr::Function(call) = e {
            let name = call.dotted_name();
            let Some(info) = lookup(&name) else {
                return Err(self.unknown_function(call));
            };
            let given = call.args.len() + usize::from(call.star);
            if given < info.min_args || info.max_args.is_some_and(|m| given > m) {
                let expected = match info.max_args {
                    Some(m) if m == info.min_args => plural(m, "argument"),
                    Some(m) => format!("{} to {m} arguments", info.min_args),
                    None => format!("at least {}", plural(info.min_args, "argument")),
                };
                return Err(self.err(
                    format!("{} takes {expected}, found {given}", info.name),
                    call.span,
                ));
            }
            if call.star
                && !["COUNT", "LAG"]
                    .iter()
                    .any(|n| name.eq_ignore_ascii_case(n))
            {
                return Err(self
                    .err(format!("{} does not accept *", info.name), call.span)
                    .with_help("only COUNT(*) and LAG(*) take *"));
            }
            if call.distinct && info.kind != FunctionKind::Aggregate {
                return Err(self.err(
                    format!(
                        "DISTINCT is only allowed in aggregates, not in {}",
                        info.name
                    ),
                    call.span,
                ));
            }
            match info.kind {
                FunctionKind::Window if clause == Clause::GroupBy => {
                    return Err(self
                        .err(format!("{} must be a GROUP BY item of its own", info.name), call.span)
                        .with_help("write it directly in the GROUP BY list, e.g. GROUP BY key, TumblingWindow(minute, 1)"));
                }
                FunctionKind::Window => {
                    return Err(self
                        .err(format!("window function {} is only allowed in GROUP BY", info.name), call.span)
                        .with_help("group by it, e.g. GROUP BY TumblingWindow(minute, 1), and read the window end with System.Timestamp()"));
                }
                FunctionKind::Aggregate if is_aggregate_use(call) => {
                    if in_aggregate {
                        return Err(self.err("aggregates cannot be nested", call.span));
                    }
                    if !matches!(clause, Clause::Select | Clause::Having) {
                        return Err(self
                            .err(
                                format!(
                                    "aggregate {} is not allowed in {}",
                                    info.name,
                                    clause.name()
                                ),
                                call.span,
                            )
                            .with_help("filter aggregated values with HAVING"));
                    }
                    in_aggregate = true;
                }
                FunctionKind::Analytic => self.analytic(call, info.name)?,
                _ => {}
            }
            self.unit_args(call)?;
            if let Some(over) = &call.over
                && let Some(limit) = &over.limit_duration
            {
                self.named_amount(limit, "Duration")?;
            }
        }
        let skip = unit_arg(e);
        let limit = match e {
            Expr::Function(call) => call.over.as_ref().and_then(|o| o.limit_duration.as_ref()),
            _ => None,
        };
        for c in children(e) {
            if !same_node(c, skip) && !same_node(c, limit) {
                self.expr(c, clause, in_aggregate)?;
            }
        }
        Ok(())
    }

    /// LAG and LAST need LIMIT DURATION, ISFIRST takes none (its interval is its
    /// arguments), and no analytic function may be nested in another's arguments.
    fn analytic(&self, call: &FunctionCall, name: &str) -> Result<(), Diagnostic> {
        let limit = call.over.as_ref().and_then(|o| o.limit_duration.as_ref());
        let upper = name.to_ascii_uppercase();
        if matches!(upper.as_str(), "LAG" | "LAST") && limit.is_none() {
            return Err(self
                .err(format!("{name} needs OVER (... LIMIT DURATION(unit, n) ...)"), call.span)
                .with_help(format!(
                    "e.g. {name}(x) OVER (PARTITION BY key LIMIT DURATION(hour, 1)); the duration bounds how far back it looks"
                )));
        }
        if upper == "ISFIRST"
            && let Some(limit) = limit
        {
            return Err(self
                .err("ISFIRST takes no LIMIT DURATION", limit.span())
                .with_help("its interval is its arguments: ISFIRST(minute, 10) OVER ([PARTITION BY key] [WHEN condition])"));
        }
        if let Some(inner) = call.args.iter().find_map(find_analytic) {
            return Err(self
                .err(
                    format!("an analytic function cannot be an argument of {name}"),
                    inner,
                )
                .with_help("compute it in an earlier WITH step and read its column here"));
        }
        Ok(())
    }

    /// Where the source's columns are known (a `CREATE TABLE` input or a step without
    /// wildcards) and the SELECT reads it alone, every column read must be one of them.
    fn known_columns(&self, s: &Select) -> Result<(), Diagnostic> {
        let source = &s.from.source;
        if !s.from.joins.is_empty() {
            return Ok(());
        }
        let Some(known) = self.columns.get(&source.name.name.to_lowercase()) else {
            return Ok(());
        };
        let reference = source.reference_name();
        let mut exprs: Vec<&Expr> = Vec::new();
        for item in &s.items {
            if let SelectItem::Expr { expr, .. } = item {
                exprs.push(expr);
            }
        }
        exprs.extend(&s.filter);
        exprs.extend(&s.having);
        exprs.extend(&s.group_by);
        exprs.extend(&source.partition_by);
        if let Some(ts) = &source.timestamp_by {
            exprs.push(&ts.expr);
            exprs.extend(&ts.over);
        }
        let mut columns = Vec::new();
        for e in exprs {
            column_refs(e, &mut columns);
        }
        for path in columns {
            let first = match path {
                [only] if only.eq_ignore_case(&reference.name) => continue,
                [alias, next, ..] if alias.eq_ignore_case(&reference.name) => next,
                [first, ..] => first,
                [] => continue,
            };
            if known.iter().any(|k| first.eq_ignore_case(k))
                || METADATA_COLUMNS
                    .iter()
                    .any(|m| first.name.eq_ignore_ascii_case(m))
            {
                continue;
            }
            let what = if self
                .all_steps
                .contains_key(&source.name.name.to_lowercase())
            {
                "step"
            } else {
                "input"
            };
            let d = self
                .err(
                    format!(
                        "{what} '{}' has no column '{}'",
                        source.name.name, first.name
                    ),
                    first.span,
                )
                .with_note(format!("its columns: {}", known.join(", ")));
            return Err(
                match suggest(&first.name, known.iter().map(String::as_str)) {
                    Some(s) => d.with_help(format!("did you mean '{s}'?")),
                    None => d,
                },
            );
        }
        Ok(())
    }

    fn unknown_function(&self, call: &FunctionCall) -> Diagnostic {
        let name = call.dotted_name();
        let span = call.name[0].span.to(call.name[call.name.len() - 1].span);
        let d = self.err(format!("unknown function '{name}'"), span);
        if ["Duration", "Hop", "Offset", "Timeout", "MaxDuration"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&name))
        {
            return d.with_help(format!(
                "{name}(unit, n) is only allowed as an argument of a window function"
            ));
        }
        match suggest(&name, FUNCTIONS.iter().map(|f| f.name)) {
            Some(s) => d.with_help(format!("did you mean '{s}'?")),
            None => d,
        }
    }

    /// Checks the unit argument of DATEADD-like functions and ISFIRST.
    fn unit_args(&self, call: &FunctionCall) -> Result<(), Diagnostic> {
        let name = call.dotted_name().to_ascii_uppercase();
        match name.as_str() {
            "DATEADD" | "DATEDIFF" | "DATEPART" | "DATENAME" => {
                let part = call.args.first().and_then(single_name);
                match part {
                    Some(p) if DATE_PARTS.iter().any(|d| d.eq_ignore_ascii_case(&p.name)) => Ok(()),
                    _ => {
                        let span = call.args.first().map_or(call.span, Expr::span);
                        let d = self.err(format!("{name} needs a date part (year, month, day, hour, minute, ...) as its first argument"), span);
                        Err(
                            match part.and_then(|p| suggest(&p.name, DATE_PARTS.iter().copied())) {
                                Some(s) => d.with_help(format!("did you mean '{s}'?")),
                                None => d,
                            },
                        )
                    }
                }
            }
            "ISFIRST" => {
                let unit = self.unit(&call.args[0])?;
                self.amount(unit, &call.args[1], "interval").map(|_| ())
            }
            _ => Ok(()),
        }
    }

    fn unit(&self, e: &Expr) -> Result<TimeUnit, Diagnostic> {
        let Some(id) = single_name(e) else {
            return Err(self.err(
                "expected a time unit (day, hour, minute, second, millisecond, microsecond)",
                e.span(),
            ));
        };
        time_unit(&id.name).ok_or_else(|| {
            let d = self.err(format!("invalid time unit '{}'", id.name), id.span);
            match suggest(&id.name, TIME_UNIT_NAMES.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean '{s}'?")),
                None => d.with_help("use day (dd, d), hour (hh), minute (mi, n), second (ss, s), millisecond (ms) or microsecond (mcs)"),
            }
        })
    }

    /// An integer literal times `unit`, in ticks; `what` names it in errors.
    fn amount(&self, unit: TimeUnit, e: &Expr, what: &str) -> Result<i64, Diagnostic> {
        let Expr::Literal(Literal::Integer(n), span) = unnest(e) else {
            return Err(self.err(format!("expected an integer {what}"), e.span()));
        };
        n.checked_mul(unit.ticks())
            .filter(|t| t.abs() <= MAX_WINDOW_TICKS)
            .ok_or_else(|| {
                self.err(format!("{what} is longer than 7 days"), *span)
                    .with_help("windows and durations are limited to 7 days")
            })
    }

    /// `Name(unit, n)` (e.g. `Duration(minute, 5)`), in ticks.
    fn named_amount(&self, e: &Expr, name: &str) -> Result<i64, Diagnostic> {
        match unnest(e) {
            Expr::Function(call) if call.dotted_name().eq_ignore_ascii_case(name) => {
                if call.args.len() != 2 {
                    return Err(self.err(
                        format!(
                            "{name} takes (unit, n), found {}",
                            plural(call.args.len(), "argument")
                        ),
                        call.span,
                    ));
                }
                let unit = self.unit(&call.args[0])?;
                self.amount(unit, &call.args[1], &name.to_lowercase())
            }
            _ => Err(self.err(format!("expected {name}(unit, n)"), e.span())),
        }
    }

    /// Resolves one window constructor from GROUP BY.
    fn window(&self, call: &FunctionCall) -> Result<WindowSpec, Diagnostic> {
        let name = call.dotted_name().to_ascii_lowercase();
        let args = &call.args;
        let shape = |usage: &str| {
            self.err(
                format!(
                    "{} takes {usage}, found {}",
                    call.dotted_name(),
                    plural(args.len(), "argument")
                ),
                call.span,
            )
        };
        // Named form: the first argument is a call such as Duration(minute, 5).
        let named = matches!(args.first().map(unnest), Some(Expr::Function(_)));
        let spec = match name.as_str() {
            "tumblingwindow" | "tumbling" => {
                let usage = "(unit, size [, offset]) or (Duration(unit, size) [, Offset(unit, n)])";
                let (size, offset) = if named {
                    if args.len() > 2 {
                        return Err(shape(usage));
                    }
                    let offset = args
                        .get(1)
                        .map(|o| self.named_amount(o, "Offset"))
                        .transpose()?;
                    (self.named_amount(&args[0], "Duration")?, offset)
                } else {
                    if !(2..=3).contains(&args.len()) {
                        return Err(shape(usage));
                    }
                    let unit = self.unit(&args[0])?;
                    let offset = args
                        .get(2)
                        .map(|o| self.amount(unit, o, "offset"))
                        .transpose()?;
                    (self.amount(unit, &args[1], "window size")?, offset)
                };
                WindowSpec::Tumbling {
                    size,
                    offset: offset.unwrap_or(0),
                }
            }
            "hoppingwindow" | "hopping" => {
                let usage = "(unit, size, hop [, offset]) or (Duration(unit, size), Hop(unit, n) [, Offset(unit, n)])";
                let (size, hop, offset) = if named {
                    if !(2..=3).contains(&args.len()) {
                        return Err(shape(usage));
                    }
                    let offset = args
                        .get(2)
                        .map(|o| self.named_amount(o, "Offset"))
                        .transpose()?;
                    (
                        self.named_amount(&args[0], "Duration")?,
                        self.named_amount(&args[1], "Hop")?,
                        offset,
                    )
                } else {
                    if !(3..=4).contains(&args.len()) {
                        return Err(shape(usage));
                    }
                    let unit = self.unit(&args[0])?;
                    let offset = args
                        .get(3)
                        .map(|o| self.amount(unit, o, "offset"))
                        .transpose()?;
                    (
                        self.amount(unit, &args[1], "window size")?,
                        self.amount(unit, &args[2], "hop size")?,
                        offset,
                    )
                };
                if hop <= 0 {
                    return Err(self.err(
                        "the hop size must be positive",
                        args[if named { 1 } else { 2 }].span(),
                    ));
                }
                WindowSpec::Hopping {
                    size,
                    hop,
                    offset: offset.unwrap_or(0),
                }
            }
            "slidingwindow" | "sliding" => {
                let usage = "(unit, size) or (Duration(unit, size))";
                let size = match (named, args.len()) {
                    (true, 1) => self.named_amount(&args[0], "Duration")?,
                    (false, 2) => self.amount(self.unit(&args[0])?, &args[1], "window size")?,
                    _ => return Err(shape(usage)),
                };
                WindowSpec::Sliding { size }
            }
            "sessionwindow" | "session" => {
                let usage =
                    "(unit, timeout, max_duration) or (Timeout(unit, n), MaxDuration(unit, n))";
                let (timeout, max_duration) = match (named, args.len()) {
                    (true, 2) => (
                        self.named_amount(&args[0], "Timeout")?,
                        self.named_amount(&args[1], "MaxDuration")?,
                    ),
                    (false, 3) => {
                        let unit = self.unit(&args[0])?;
                        (
                            self.amount(unit, &args[1], "timeout")?,
                            self.amount(unit, &args[2], "maximum duration")?,
                        )
                    }
                    _ => return Err(shape(usage)),
                };
                if timeout <= 0 || max_duration < timeout {
                    return Err(
                        self.err("a session needs 0 < timeout <= maximum duration", call.span)
                    );
                }
                let partition_by = call
                    .over
                    .as_ref()
                    .map(|o| o.partition_by.clone())
                    .unwrap_or_default();
                for k in &partition_by {
                    self.expr(k, Clause::GroupBy, false)?;
                }
                return Ok(WindowSpec::Session {
                    timeout,
                    max_duration,
                    partition_by,
                });
            }
            "windows" => return self.windows(call),
            _ => {
                return Err(self.err("Window(...) is only allowed inside Windows(...)", call.span));
            }
        };
        let (size, offset) = match &spec {
            WindowSpec::Tumbling { size, offset } | WindowSpec::Hopping { size, offset, .. } => {
                (*size, *offset)
            }
            WindowSpec::Sliding { size } => (*size, 0),
            _ => (1, 0),
        };
        // The size is the first named argument or the one after the unit; the offset is last.
        let arg_span = |i: Option<usize>| i.and_then(|i| args.get(i)).map_or(call.span, Expr::span);
        if size <= 0 {
            let span = arg_span(Some(usize::from(!named)));
            return Err(self.err("the window size must be positive", span));
        }
        if offset.abs() >= size {
            let span = arg_span(args.len().checked_sub(1));
            return Err(self.err("the window offset must be smaller than its size", span));
        }
        Ok(spec)
    }

    /// `Windows(w1, w2, ...)` or `Windows(Window('id', w1), ...)`: ids all or none.
    fn windows(&self, call: &FunctionCall) -> Result<WindowSpec, Diagnostic> {
        let mut out: Vec<(Option<String>, WindowSpec)> = Vec::new();
        for arg in &call.args {
            let Expr::Function(inner) = unnest(arg) else {
                return Err(self.err("expected a window inside Windows(...)", arg.span()));
            };
            let inner_name = inner.dotted_name();
            let (id, w) = if inner_name.eq_ignore_ascii_case("Window") {
                let (Some(Expr::Literal(Literal::String(id), id_span)), Some(Expr::Function(w))) = (
                    inner.args.first().map(unnest),
                    inner.args.get(1).map(unnest),
                ) else {
                    return Err(self.err("Window takes ('id', window)", inner.span));
                };
                if out
                    .iter()
                    .any(|(o, _)| o.as_ref().is_some_and(|o| o.eq_ignore_ascii_case(id)))
                {
                    return Err(self.err(format!("window id '{id}' is used twice"), *id_span));
                }
                (Some(id.clone()), w)
            } else {
                (None, inner)
            };
            if out
                .first()
                .is_some_and(|(first, _)| first.is_some() != id.is_some())
            {
                return Err(self.err(
                    "either every window in Windows(...) has an id or none does",
                    arg.span(),
                ));
            }
            if w.dotted_name().eq_ignore_ascii_case("Windows") {
                return Err(self
                    .err("Windows(...) cannot be nested", w.span)
                    .with_help("list every window in one Windows(...)"));
            }
            if function_kind_of(w) != Some(FunctionKind::Window) {
                return Err(self.err("expected a window inside Windows(...)", w.span));
            }
            out.push((id, self.window(w)?));
        }
        Ok(WindowSpec::Multiple(out))
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn flatten<'q>(q: &'q Query, out: &mut Vec<&'q Select>) {
    match q {
        Query::Select(s) => out.push(s),
        Query::Union { left, right, .. } => {
            flatten(left, out);
            flatten(right, out);
        }
    }
}

/// Columns every input has in ASA: its metadata.
const METADATA_COLUMNS: [&str; 3] = [
    "EventEnqueuedUtcTime",
    "EventProcessedUtcTime",
    "PartitionId",
];

/// The column names a step's query produces, when all are known (no wildcard, every
/// item named by an alias or a column); for a UNION, the first branch's.
fn output_columns(q: &Query) -> Option<Vec<String>> {
    let mut selects = Vec::new();
    flatten(q, &mut selects);
    let first = selects.first()?;
    first
        .items
        .iter()
        .map(|item| match item {
            SelectItem::Expr { alias: Some(a), .. } => Some(a.name.clone()),
            SelectItem::Expr {
                expr: Expr::Column(path, _),
                ..
            } => path.last().map(|i| i.name.clone()),
            _ => None,
        })
        .collect()
}

/// The column paths an expression reads, leaving out names that are not columns: the
/// unit of DATEADD-like calls and the arguments of window and duration calls.
fn column_refs<'e>(e: &'e Expr, out: &mut Vec<&'e [Ident]>) {
    match e {
        Expr::Column(path, _) => out.push(path),
        Expr::Function(call)
            if function_kind_of(call) == Some(FunctionKind::Window)
                || ["Duration", "Hop", "Offset", "Timeout", "MaxDuration"]
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&call.dotted_name())) => {}
        _ => {
            let unit = unit_arg(e);
            for c in children(e) {
                if !same_node(c, unit) {
                    column_refs(c, out);
                }
            }
        }
    }
}

/// Identity, not equality: is `a` the very node `b`?
fn same_node(a: &Expr, b: Option<&Expr>) -> bool {
    b.is_some_and(|b| std::ptr::eq(a, b))
}

fn unnest(e: &Expr) -> &Expr {
    match e {
        Expr::Nested(inner, _) => unnest(inner),
        _ => e,
    }
}

fn single_name(e: &Expr) -> Option<&Ident> {
    match e {
        Expr::Column(path, _) if path.len() == 1 => path.first(),
        _ => None,
    }
}

fn function_kind_of(call: &FunctionCall) -> Option<FunctionKind> {
    lookup(&call.dotted_name()).map(|i| i.kind)
}

/// An aggregate used as one: not a running aggregate with `OVER (LIMIT DURATION ...)`.
fn is_aggregate_use(call: &FunctionCall) -> bool {
    function_kind_of(call) == Some(FunctionKind::Aggregate)
        && call
            .over
            .as_ref()
            .is_none_or(|o| o.limit_duration.is_none())
}

/// The argument that names a unit rather than a value (`minute` in `DATEADD(minute, ...)`).
fn unit_arg(e: &Expr) -> Option<&Expr> {
    let Expr::Function(call) = e else { return None };
    let name = call.dotted_name();
    ["DATEADD", "DATEDIFF", "DATEPART", "DATENAME", "ISFIRST"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(&name))
        .then(|| call.args.first())
        .flatten()
}

fn find_analytic(e: &Expr) -> Option<Span> {
    match e {
        Expr::Function(call) if function_kind_of(call) == Some(FunctionKind::Analytic) => {
            Some(call.span)
        }
        _ => children(e).into_iter().find_map(find_analytic),
    }
}

fn find_aggregate(e: &Expr) -> Option<Span> {
    match e {
        Expr::Function(call) if is_aggregate_use(call) => Some(call.span),
        _ => children(e).into_iter().find_map(find_aggregate),
    }
}

fn contains_call(e: &Expr, name: &str) -> bool {
    matches!(e, Expr::Function(c) if c.dotted_name().eq_ignore_ascii_case(name))
        || children(e).into_iter().any(|c| contains_call(c, name))
}

/// Direct sub-expressions, including a call's OVER clause.
fn children(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Literal(..) | Expr::Column(..) => Vec::new(),
        Expr::Function(call) => {
            let mut v: Vec<&Expr> = call.args.iter().collect();
            if let Some(o) = &call.over {
                v.extend(&o.partition_by);
                v.extend(o.order_by.iter().map(|(e, _)| e));
                v.extend(&o.limit_duration);
                v.extend(&o.when);
            }
            v
        }
        Expr::Binary { left, right, .. } => vec![left, right],
        Expr::Unary { expr, .. } | Expr::Nested(expr, _) | Expr::Cast { expr, .. } => vec![expr],
        Expr::IsNull { expr, .. } | Expr::Member { expr, .. } => vec![expr],
        Expr::Case {
            operand,
            branches,
            else_result,
            ..
        } => {
            let mut v: Vec<&Expr> = operand.iter().map(|b| &**b).collect();
            for (w, t) in branches {
                v.push(w);
                v.push(t);
            }
            v.extend(else_result.iter().map(|b| &**b));
            v
        }
        Expr::Between {
            expr, low, high, ..
        } => vec![expr, low, high],
        Expr::InList { expr, list, .. } => {
            let mut v = vec![&**expr];
            v.extend(list);
            v
        }
        Expr::Like { expr, pattern, .. } => vec![expr, pattern],
    }
}
