//! Syntax tree of the Stream Analytics dialect, as written by the user.
//!
//! Every node that can be named in a diagnostic carries a [`Span`]. The tree is
//! produced by [`crate::parse`] and checked by [`crate::bind`]; the engine compiles
//! it (after binding) into operators, so it stays a plain data structure.

use crate::span::Span;

/// A name as written, with its position; comparisons are case-insensitive as in ASA.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// The name without brackets (`[user]` is `user`).
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

impl Ident {
    /// ASA names are case-insensitive; this is the one place that rule lives.
    pub fn eq_ignore_case(&self, other: &str) -> bool {
        self.name.eq_ignore_ascii_case(other)
    }
}

/// A whole job: every `WITH` step and `SELECT ... INTO` statement, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// Statements in source order.
    pub statements: Vec<Statement>,
}

/// One top-level statement of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `WITH a AS (...), b AS (...) SELECT ...`: the steps are visible to every later statement.
    With {
        /// Named steps, in order.
        steps: Vec<Step>,
        /// The query that follows the steps.
        body: Box<Query>,
    },
    /// A bare `SELECT ... [INTO out] ...`.
    Query(Box<Query>),
    /// `CREATE TABLE input (col type, ...)`: declares an input's schema.
    CreateTable {
        /// The input it describes.
        name: Ident,
        /// Declared columns.
        columns: Vec<(Ident, DataType)>,
        /// Span of the statement.
        span: Span,
    },
}

/// A named step (`name AS (query)`) that later statements read with `FROM name`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The step's name.
    pub name: Ident,
    /// The step's query (INTO is not allowed here).
    pub query: Query,
}

/// A SELECT, possibly a UNION of several.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// One SELECT.
    Select(Box<Select>),
    /// `left UNION right`: duplicates kept (ASA's UNION is UNION ALL).
    Union {
        /// The first branch.
        left: Box<Query>,
        /// The second branch.
        right: Box<Query>,
        /// Where `UNION` was written.
        span: Span,
    },
}

/// `SELECT items [INTO out] FROM source [WHERE] [GROUP BY] [HAVING]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// `SELECT DISTINCT` was written.
    pub distinct: bool,
    /// Projected items.
    pub items: Vec<SelectItem>,
    /// `INTO output`; `None` means the default output `output` (or a step's own rows).
    pub into: Option<Ident>,
    /// `FROM` clause.
    pub from: FromClause,
    /// `WHERE` predicate.
    pub filter: Option<Expr>,
    /// `GROUP BY` items (keys and at most one window expression, as function calls).
    pub group_by: Vec<Expr>,
    /// `HAVING` predicate.
    pub having: Option<Expr>,
    /// Span of the whole SELECT.
    pub span: Span,
}

/// One SELECT list item.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`
    Wildcard(Span),
    /// `alias.*` or `record.field.*`: the path before `.*`.
    QualifiedWildcard(Vec<Ident>),
    /// `expr [AS alias]` or `alias = expr`.
    Expr {
        /// The value.
        expr: Expr,
        /// The output column name, if given.
        alias: Option<Ident>,
    },
}

/// `FROM first [joins...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FromClause {
    /// The first source.
    pub source: Source,
    /// Joins and APPLYs that follow, left to right.
    pub joins: Vec<Join>,
}

/// An input or step read by a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The input or step name.
    pub name: Ident,
    /// `AS alias` (or bare alias).
    pub alias: Option<Ident>,
    /// `PARTITION BY key`.
    pub partition_by: Option<Expr>,
    /// `TIMESTAMP BY expr [OVER k1, k2]`.
    pub timestamp_by: Option<TimestampBy>,
}

impl Source {
    /// The name a query uses to refer to this source: its alias, else its name.
    pub fn reference_name(&self) -> &Ident {
        self.alias.as_ref().unwrap_or(&self.name)
    }
}

/// `TIMESTAMP BY expr [OVER keys]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TimestampBy {
    /// Event-time expression.
    pub expr: Expr,
    /// Substream keys (`OVER k1, k2`); empty when absent.
    pub over: Vec<Expr>,
}

/// Kind of join or apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// `[INNER] JOIN`
    Inner,
    /// `LEFT [OUTER] JOIN`
    LeftOuter,
    /// `CROSS APPLY`
    CrossApply,
    /// `OUTER APPLY`
    OuterApply,
}

/// One join or apply in a FROM clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    /// Join or apply kind.
    pub kind: JoinKind,
    /// Right side: a source for joins.
    pub right: JoinTarget,
    /// `ON` condition (joins only).
    pub on: Option<Expr>,
    /// Span of the join keyword(s).
    pub span: Span,
}

/// What stands on the right of a join or apply.
#[derive(Debug, Clone, PartialEq)]
pub enum JoinTarget {
    /// A stream, step or reference input.
    Source(Source),
    /// `GetArrayElements(expr) AS alias` or `GetRecordProperties(expr) AS alias`.
    Function {
        /// The function call.
        call: Expr,
        /// Its alias (required by ASA).
        alias: Ident,
    },
}

/// Literal values.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `NULL`
    Null,
    /// `TRUE` / `FALSE` (bit)
    Bool(bool),
    /// Integer literal (bigint).
    Integer(i64),
    /// Literal with a decimal point or exponent (float).
    Float(f64),
    /// `'text'` with `''` unescaped.
    String(String),
}

/// Binary operators, by precedence group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `=`
    Eq,
    /// `<>` or `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND`
    And,
    /// `OR`
    Or,
    /// `&`
    BitAnd,
    /// `|`
    BitOr,
    /// `^`
    BitXor,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `NOT`
    Not,
    /// `-`
    Neg,
    /// `+`
    Plus,
    /// `~`
    BitNot,
}

/// An expression. Every variant carries the span of the whole expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Literal(Literal, Span),
    /// A column or a path into records: `a`, `t.a`, `t.rec.field`, `[my field]`.
    /// Brackets are stripped; whether the first part is a source alias is decided by the binder.
    Column(Vec<Ident>, Span),
    /// `name(args)`, including aggregates, window functions (`TumblingWindow(...)`,
    /// `Duration(...)`), `System.Timestamp()` (name `System.Timestamp`), `udf.f(...)`.
    /// Time-unit arguments such as `minute` in `TumblingWindow(minute, 5)` arrive as
    /// `Expr::Column` with one part; the binder interprets them.
    Function(Box<FunctionCall>),
    /// `left op right`
    Binary {
        /// Operator.
        op: BinaryOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
        /// Span of the whole expression.
        span: Span,
    },
    /// `op expr`
    Unary {
        /// Operator.
        op: UnaryOp,
        /// Operand.
        expr: Box<Expr>,
        /// Span of the whole expression.
        span: Span,
    },
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`
    Case {
        /// Present for the simple form `CASE x WHEN 1 THEN ...`.
        operand: Option<Box<Expr>>,
        /// `(when, then)` pairs.
        branches: Vec<(Expr, Expr)>,
        /// `ELSE` value.
        else_result: Option<Box<Expr>>,
        /// Span of the whole expression.
        span: Span,
    },
    /// `CAST(expr AS type)` or `TRY_CAST(expr AS type)`.
    Cast {
        /// Value to convert.
        expr: Box<Expr>,
        /// Target type.
        target: DataType,
        /// `TRY_CAST` (NULL on failure) rather than `CAST` (error).
        try_cast: bool,
        /// Span of the whole expression.
        span: Span,
    },
    /// `expr [NOT] BETWEEN low AND high`
    Between {
        /// Tested value.
        expr: Box<Expr>,
        /// Lower bound (inclusive).
        low: Box<Expr>,
        /// Upper bound (inclusive).
        high: Box<Expr>,
        /// `NOT BETWEEN`
        negated: bool,
        /// Span of the whole expression.
        span: Span,
    },
    /// `expr [NOT] IN (a, b, ...)`
    InList {
        /// Tested value.
        expr: Box<Expr>,
        /// Candidates.
        list: Vec<Expr>,
        /// `NOT IN`
        negated: bool,
        /// Span of the whole expression.
        span: Span,
    },
    /// `expr [NOT] LIKE pattern`
    Like {
        /// Tested value.
        expr: Box<Expr>,
        /// Pattern with `%` and `_`.
        pattern: Box<Expr>,
        /// `NOT LIKE`
        negated: bool,
        /// Span of the whole expression.
        span: Span,
    },
    /// `expr IS [NOT] NULL`
    IsNull {
        /// Tested value.
        expr: Box<Expr>,
        /// `IS NOT NULL`
        negated: bool,
        /// Span of the whole expression.
        span: Span,
    },
    /// `(expr)` kept so that spans point at what the user wrote.
    Nested(Box<Expr>, Span),
    /// `call(...).field`: a field of a function's record result, as in
    /// `System.Window().Id`.
    Member {
        /// The call whose result is read.
        expr: Box<Expr>,
        /// The field name.
        field: Ident,
        /// Span of the whole expression.
        span: Span,
    },
}

impl Expr {
    /// Where this expression was written.
    pub fn span(&self) -> Span {
        match self {
            Expr::Literal(_, s) | Expr::Column(_, s) | Expr::Nested(_, s) => *s,
            Expr::Function(f) => f.span,
            Expr::Binary { span, .. }
            | Expr::Unary { span, .. }
            | Expr::Case { span, .. }
            | Expr::Cast { span, .. }
            | Expr::Between { span, .. }
            | Expr::InList { span, .. }
            | Expr::Like { span, .. }
            | Expr::IsNull { span, .. }
            | Expr::Member { span, .. } => *span,
        }
    }
}

/// A function call with ASA's optional clauses.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionCall {
    /// Name parts: `["COUNT"]`, `["System", "Timestamp"]`, `["udf", "f"]`.
    pub name: Vec<Ident>,
    /// Arguments (`COUNT(*)` has `star = true` and no args).
    pub args: Vec<Expr>,
    /// `f(*)`
    pub star: bool,
    /// `COUNT(DISTINCT x)`
    pub distinct: bool,
    /// `OVER (...)` for analytic functions, session windows, TopOne/CollectTop.
    pub over: Option<OverClause>,
    /// Span of the whole call.
    pub span: Span,
}

impl FunctionCall {
    /// The name as one dotted string, e.g. `System.Timestamp`.
    pub fn dotted_name(&self) -> String {
        let parts: Vec<&str> = self.name.iter().map(|i| i.name.as_str()).collect();
        parts.join(".")
    }
}

/// `OVER ([PARTITION BY k, ...] [ORDER BY x [ASC|DESC], ...] [LIMIT DURATION(unit, n)] [WHEN cond])`.
#[derive(Debug, Clone, PartialEq)]
pub struct OverClause {
    /// `PARTITION BY` keys.
    pub partition_by: Vec<Expr>,
    /// `ORDER BY` items: `(expr, descending)`.
    pub order_by: Vec<(Expr, bool)>,
    /// `LIMIT DURATION(unit, n)` as the `Duration(...)` call expression.
    pub limit_duration: Option<Expr>,
    /// `WHEN cond`.
    pub when: Option<Expr>,
    /// Span of the OVER clause.
    pub span: Span,
}

/// Types usable in CAST and CREATE TABLE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// `bigint`
    BigInt,
    /// `float`
    Float,
    /// `nvarchar(max)`
    NVarChar,
    /// `datetime`
    DateTime,
    /// `bit`
    Bit,
    /// `record`
    Record,
    /// `array`
    Array,
}
