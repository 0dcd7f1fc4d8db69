//! The eddy streaming engine: runs Azure Stream Analytics queries over events.
//!
//! Layout, in the order data flows:
//! - [`value`]: typed values, records and output rows; JSON in and out;
//! - `decode`: the event decoder (only the fields a query reads, shared field names);
//! - [`time`]: datetimes as 100-ns ticks, ISO-8601 parsing and ASA's output format;
//! - `expr` and `functions`: syntax-tree expressions compiled once into closures;
//!   `analytic`: LAG, LAST, ISFIRST and windowless aggregates; `meta`: event metadata
//!   (partition, offset, arrival); `geo`: GeoJSON points and polygons;
//! - `agg`: aggregate state; `window`: window assignment and per-window group state;
//!   `groups`: the compact group table of one window (encoded keys, flat arrays);
//! - `operator`: one operator per SELECT (APPLY or `join`, filter, then projection or
//!   window aggregation);
//! - [`job`]: a compiled query (`eddy_sql::compile` → operators), time policies and
//!   watermarks per input partition, the re-sorting buffer, outputs, metrics, snapshots;
//! - [`bench`](mod@bench): the throughput benchmark `eddy bench` runs.
//!
//! Decisions where ASA's documentation leaves room (see `/work/shared/asa-reference.md`):
//! - Pushed events are buffered; the work runs in batches: when output is drained (up to
//!   the watermark), every [`job::FLUSH_EVERY`] pushes (up to one tick before it, since
//!   more events may carry exactly its timestamp), and at `finish`. A batch releases
//!   buffered events in (event time, arrival) order, then emits every window whose end is
//!   at or before that point.
//! - An event at or before an instant whose results were already emitted (it can only
//!   equal the watermark) counts as out of order: Adjust moves it one tick later, Drop
//!   drops it.
//! - One policy action (`Adjust`/`Drop`) serves late arrival and out of order, as in ASA.
//! - Substreams (`TIMESTAMP BY x OVER k`): each key's watermark is its max event time −
//!   out-of-order tolerance, or the input's arrival clock − late tolerance if later; its
//!   events and windows wait for that alone. Supported where the statement writes to an
//!   output (not a step, join or APPLY); the job watermark in metrics leaves them out.
//! - A join's output event time is the later of the pair; a LEFT OUTER join emits an
//!   unmatched left event when its DATEDIFF bound has passed, stamped with that instant.
//!   A DATEDIFF join bound is exact elapsed time (`lo × unit ≤ b − a ≤ hi × unit`), not
//!   crossed boundaries; reference data joins keep the stream's time. See
//!   `docs/internals/joins.md`.
//! - Analytic functions in a JOIN run on the events of the one source their columns
//!   name (the FROM source if none), as each reaches the join; every joined row of that
//!   event carries the value. With APPLY they run once per input event, before it is
//!   expanded. See `docs/language.md`.
//! - `CAST(float AS bigint)` truncates; bigint `/` bigint is integer division.
//! - Windows: a session extends to an event exactly `timeout` after the last one (ends
//!   are inclusive); its maximum duration is exceeded at a check instant (a multiple of
//!   it) when the session has lasted strictly longer. `Windows(...)` rows with the same
//!   end are ordered by group key, then window id. `System.Window().Id` is NULL without
//!   ids. Aggregates other than COUNT(*) ignore NULL inputs, Collect included; for
//!   TopOne and CollectTop a NULL sort key is the smallest (as documented for CollectTop).
//! - Running (hopping, sliding) SUM/AVG of floats subtract on retract, so their last
//!   digits can differ from a recomputation; integral inputs of STDEV/VAR are summed
//!   exactly, so those agree with tumbling windows over the same values.
//! - `FROM input PARTITION BY PartitionId` (ASA's parallel query shape): once the input
//!   has more than one partition ([`Job::declare_partitions`]), a statement reading it
//!   (without a join or `TIMESTAMP BY ... OVER`) runs one instance per partition: its
//!   groups, windows and analytic functions (LAG, ISFIRST...) see only that partition's
//!   events, as each of ASA's per-partition query instances does; put PartitionId in
//!   GROUP BY to keep groups apart in the output. Each batch of events is split by
//!   partition and the instances run, then close their windows, on up to
//!   [`Job::set_threads`] threads (default: the machine's parallelism; the workers live
//!   as long as the job). Their rows are merged by time, then partition number, and
//!   follow the batch's other rows; window rows are then ordered by end with the other
//!   statements' as usual. So the output is the same bytes whatever the thread count.
//!   A partitioned step's rows reach the statements reading it in that merged order.
//!   With one partition, or any other PARTITION BY expression, the statement runs whole.
//!   Snapshots keep each instance's state.
//! - String values compare ordinally and case-sensitively (=, <, IN, LIKE, group keys);
//!   names are case-insensitive. More in `docs/language.md`.
//! - Serde on [`Value`] is type-tagged so snapshots round-trip types exactly; use
//!   [`Row::to_json`] / [`Row::write_json`] for plain JSON.
#![deny(missing_docs)]

mod agg;
mod analytic;
pub mod bench;
mod decode;
pub mod error;
mod expr;
mod functions;
mod geo;
mod groups;
pub mod job;
mod join;
mod meta;
mod operator;
pub mod time;
pub mod value;
mod window;

pub use error::{EngineError, EventError};
pub use job::{Arrival, InputMetrics, Job, JobMetrics, JobOptions, OutOfOrderAction, OutputRow};
pub use meta::EventExtras;
pub use value::{Record, Row, Value};
