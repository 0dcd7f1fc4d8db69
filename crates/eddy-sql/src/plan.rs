//! What binding adds to the syntax tree: resolved windows, time units, function kinds,
//! and the job's inputs, steps and outputs. The engine compiles a [`BoundScript`].

use crate::ast::{Expr, Script};
use crate::span::Span;

/// Time units of the dialect, with their abbreviations resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    /// `day`, `dd`, `d`
    Day,
    /// `hour`, `hh`
    Hour,
    /// `minute`, `mi`, `n`
    Minute,
    /// `second`, `ss`, `s`
    Second,
    /// `millisecond`, `ms`
    Millisecond,
    /// `microsecond`, `mcs`
    Microsecond,
}

impl TimeUnit {
    /// Length of one unit in 100-nanosecond ticks (ASA's datetime resolution).
    pub fn ticks(self) -> i64 {
        match self {
            TimeUnit::Day => 864_000_000_000,
            TimeUnit::Hour => 36_000_000_000,
            TimeUnit::Minute => 600_000_000,
            TimeUnit::Second => 10_000_000,
            TimeUnit::Millisecond => 10_000,
            TimeUnit::Microsecond => 10,
        }
    }
}

/// A resolved window from GROUP BY. All durations are in 100-ns ticks.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowSpec {
    /// `TumblingWindow(unit, size [, offset])`
    Tumbling {
        /// Window length.
        size: i64,
        /// Alignment offset.
        offset: i64,
    },
    /// `HoppingWindow(unit, size, hop [, offset])`
    Hopping {
        /// Window length.
        size: i64,
        /// Distance between window ends.
        hop: i64,
        /// Alignment offset.
        offset: i64,
    },
    /// `SlidingWindow(unit, size)`
    Sliding {
        /// Window length.
        size: i64,
    },
    /// `SessionWindow(unit, timeout, max_duration) [OVER (PARTITION BY ...)]`
    Session {
        /// Gap that closes a session.
        timeout: i64,
        /// Maximum duration, checked at its multiples.
        max_duration: i64,
        /// `OVER (PARTITION BY ...)` keys.
        partition_by: Vec<Expr>,
    },
    /// `GROUP BY System.Timestamp()`
    Snapshot,
    /// `Windows(w1, w2, ...)`, each with an optional id.
    Multiple(Vec<(Option<String>, WindowSpec)>),
}

/// What kind of function a name denotes; the binder rejects unknown names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// Per-row function (`UPPER`, `DATEADD`, ...).
    Scalar,
    /// Aggregate over a window group (`COUNT`, `SUM`, ...).
    Aggregate,
    /// Analytic function evaluated on every input event (`LAG`, `LAST`, `ISFIRST`).
    Analytic,
    /// A window constructor that may only appear in GROUP BY.
    Window,
}

/// One statement after binding: a step or an output query.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundStatement {
    /// The step's name, or the output the rows go to (`INTO`, default `output`).
    pub target: String,
    /// True for a `WITH` step (read by later statements), false for an output.
    pub is_step: bool,
    /// The checked query.
    pub query: crate::ast::Query,
    /// For each SELECT of `query` (UNION branches left to right): its resolved window,
    /// if its GROUP BY has one.
    pub windows: Vec<Option<WindowSpec>>,
}

/// A checked job: the syntax tree plus everything binding resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundScript {
    /// The parsed text.
    pub script: Script,
    /// Steps and output queries in dependency (source) order.
    pub statements: Vec<BoundStatement>,
    /// Input names read by the job (not steps), first-mention order, as first written.
    pub inputs: Vec<String>,
    /// Output names written by the job, first-mention order.
    pub outputs: Vec<String>,
    /// Where each input was first mentioned, for diagnostics raised later.
    pub input_spans: Vec<Span>,
    /// Reference inputs read by the job (only on the right of a JOIN), as first written;
    /// not in `inputs`.
    pub references: Vec<String>,
}
