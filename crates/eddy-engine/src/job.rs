//! A running job: time policies and watermarks per input partition, the buffer that
//! re-sorts events, the operator graph, outputs, metrics and snapshots.
//!
//! Events are buffered as they are pushed and processed in batches: when output is
//! drained (or, stopping one tick short, every [`FLUSH_EVERY`] pushes) the job
//! watermark is computed, buffered
//! events at or before it run through the operators in (event time, arrival) order, and
//! then every window ending at or before it is emitted, statement by statement.

use crate::decode::{Decoder, fields_read, fields_read_in_join};
use crate::error::{EngineError, EvalError, EventError};
use crate::expr::{Ctx, Eval, ExprCompiler, FieldPositions, cast, unsupported};
use crate::join::JoinSources;
use crate::meta::{EventExtras, EventMeta, set_current};
use crate::operator::{Operator, OperatorState, SourceInfo, Target};
use crate::time::{TICKS_PER_SECOND, now_ticks, parse_datetime};
use crate::value::{Record, Row, Value};
use crate::window::KeyMap;

use eddy_sql::ast::{DataType, JoinTarget, Query, Select, Source as SourceDef, Statement};
use serde::{Deserialize, Serialize};
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

/// Events further ahead of their arrival than this are dropped (fixed in ASA).
const EARLY_LIMIT: i64 = 300 * TICKS_PER_SECOND;
/// Pushes between automatic batch runs, so memory stays bounded without a drain.
pub const FLUSH_EVERY: u32 = 4096;

/// What to do with an event outside a tolerance (late arrival or out of order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OutOfOrderAction {
    /// Move its timestamp to the edge of the tolerance (the payload is untouched).
    #[default]
    Adjust,
    /// Discard it.
    Drop,
}

/// Event-ordering policies of a job, as configured in ASA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOptions {
    /// Late-arrival tolerance in ticks; `None` is unlimited.
    pub late_arrival_tolerance: Option<i64>,
    /// Out-of-order tolerance in ticks.
    pub out_of_order_tolerance: i64,
    /// The action for both policies.
    pub out_of_order_action: OutOfOrderAction,
    /// Input names (case-insensitive) that are reference data: joined without a time
    /// bound, loaded with [`Job::set_reference`] instead of pushed as events.
    #[serde(default)]
    pub reference_inputs: Vec<String>,
}

impl Default for JobOptions {
    fn default() -> JobOptions {
        JobOptions {
            late_arrival_tolerance: Some(5 * TICKS_PER_SECOND),
            out_of_order_tolerance: 0,
            out_of_order_action: OutOfOrderAction::Adjust,
            reference_inputs: Vec::new(),
        }
    }
}

/// When an event arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// At this time (ticks), e.g. when the log accepted it.
    At(i64),
    /// From the event's `EventEnqueuedUtcTime` field, else its event time (replays).
    FromPayload,
}

/// A row for one of the job's outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputRow {
    /// Index into [`Job::outputs`].
    pub output: usize,
    /// Per-output sequence number from 1; survives snapshot/restore, so sinks can dedupe.
    pub seq: u64,
    /// The row.
    pub row: Row,
}

/// Counters ASA users expect, plus the job watermark.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobMetrics {
    /// Events pushed.
    pub input_events: u64,
    /// Rows written to outputs.
    pub output_events: u64,
    /// Events beyond the late-arrival tolerance.
    pub late_events: u64,
    /// Events more than 5 minutes ahead of their arrival (dropped).
    pub early_events: u64,
    /// Events older than their partition's watermark.
    pub out_of_order_events: u64,
    /// Events whose timestamp was adjusted.
    pub adjusted_events: u64,
    /// Events dropped by a policy.
    pub dropped_events: u64,
    /// Bad events and runtime errors (each drops one event or row).
    pub errors: u64,
    /// Job watermark in ticks: minimum over every input partition, once all have one.
    pub watermark: Option<i64>,
    /// Rows stream joins hold while they may still match (both sides, every join).
    #[serde(default)]
    pub join_buffered_rows: u64,
    /// The same event counters per input, in [`Job::inputs`] order.
    #[serde(default)]
    pub inputs: Vec<InputMetrics>,
}

/// Event counters of one input: what ASA shows per input, so a misbehaving source can be
/// told from the others.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputMetrics {
    /// The input name, as first written in the query.
    pub name: String,
    /// Events pushed.
    pub input_events: u64,
    /// Events beyond the late-arrival tolerance.
    pub late_events: u64,
    /// Events more than 5 minutes ahead of their arrival (dropped).
    pub early_events: u64,
    /// Events older than their partition's watermark.
    pub out_of_order_events: u64,
    /// Events whose timestamp was adjusted.
    pub adjusted_events: u64,
    /// Events dropped by a policy.
    pub dropped_events: u64,
    /// Events dropped because they could not be decoded or converted.
    pub conversion_errors: u64,
}

impl JobMetrics {
    /// Whether any event was late, early, out of order, adjusted, dropped or in error:
    /// what `eddy run` reports on stderr.
    pub fn has_policy_events(&self) -> bool {
        self.late_events
            + self.early_events
            + self.out_of_order_events
            + self.adjusted_events
            + self.dropped_events
            + self.errors
            > 0
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct PartitionState {
    watermark: Option<i64>,
}

/// A buffered event; ordered so the heap pops the earliest (time, arrival, source) first.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    time: i64,
    seq: u64,
    source: usize,
    record: Value,
    /// Partition, offset and arrival, for metadata functions.
    #[serde(default)]
    meta: EventMeta,
}

impl Pending {
    fn order(&self) -> (i64, u64, usize) {
        (self.time, self.seq, self.source)
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Pending) -> bool {
        self.order() == other.order()
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Pending) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Pending) -> std::cmp::Ordering {
        other.order().cmp(&self.order())
    }
}

/// The substreams of one `TIMESTAMP BY ... OVER k` source: per key a watermark (max event
/// time − out-of-order tolerance), a clock that moves idle keys (arrival − late
/// tolerance), and the events waiting for their key's watermark.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Substreams {
    keys: KeyMap<PartitionState>,
    clock: Option<i64>,
    pending: Vec<(Box<[Value]>, Pending)>,
}

impl Substreams {
    fn watermark(&self, key: &[Value]) -> Option<i64> {
        let own = self.keys.0.get(key).and_then(|p| p.watermark);
        own.max(self.clock)
    }
}

/// Everything that changes while the job runs; what a snapshot holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// Per source (FROM over an input), per partition.
    partitions: Vec<Vec<PartitionState>>,
    /// Events waiting for the watermark, in (time, arrival) order while they arrive in
    /// order; the rest wait in `pending_heap`, a min-heap.
    pending: VecDeque<Pending>,
    pending_heap: BinaryHeap<Pending>,
    next_seq: u64,
    output_seqs: Vec<u64>,
    output: Vec<OutputRow>,
    metrics: JobMetrics,
    finished: bool,
    /// Per source: its substreams (empty unless `TIMESTAMP BY ... OVER`).
    substreams: Vec<Substreams>,
    /// Everything at or before this time has been processed and its windows emitted;
    /// a later event at or before it counts as out of order.
    frontier: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    query: String,
    state: State,
    groups: Vec<OperatorState>,
    /// Per operator, the state of each partition's instance (empty: not partitioned).
    #[serde(default)]
    lanes: Vec<Vec<OperatorState>>,
}

/// One input partition's instance of a `PARTITION BY PartitionId` statement, with the
/// batch of events it processes and the rows it produced, so that partitions can run on
/// separate threads and be merged afterwards.
struct Lane {
    op: Operator,
    events: Vec<(i64, Value, EventMeta)>,
    /// Rows of the batch's events, then rows of the windows it closed.
    rows: Vec<(i64, Row)>,
    closed: Vec<(i64, Row)>,
    /// Reused for the rows of one event.
    row_buf: Vec<Row>,
    errors: u64,
}

impl Lane {
    fn new(op: Operator) -> Lane {
        Lane {
            op,
            events: Vec::new(),
            rows: Vec::new(),
            closed: Vec::new(),
            row_buf: Vec::new(),
            errors: 0,
        }
    }

    /// Runs the batch's events through this partition's instance in time order, then
    /// closes its windows up to `watermark`. Nothing but its own input partition feeds
    /// the instance, so closing here gives what closing with the other statements would.
    fn run(&mut self, watermark: Option<i64>) {
        for (time, record, meta) in self.events.drain(..) {
            set_current(Some(meta));
            self.op
                .process(time, 0, &record, &mut self.row_buf, &mut self.errors);
            self.rows.extend(self.row_buf.drain(..).map(|r| (time, r)));
        }
        set_current(None);
        if let Some(wm) = watermark {
            self.op.close(wm, &mut self.errors, &mut self.closed);
        }
    }
}

/// A batch of lanes sent to a worker, with the watermark to close them at.
type LaneTask = (Vec<Lane>, Option<i64>);

/// A thread that runs lanes for the job; it lives as long as the job. The job owns both
/// channel ends: dropping the job drops `tasks`, which ends the thread's loop.
struct Worker {
    /// Bounded to one batch: the job waits for each batch before sending another.
    tasks: std::sync::mpsc::SyncSender<LaneTask>,
    done: std::sync::mpsc::Receiver<Vec<Lane>>,
}

impl Worker {
    fn spawn() -> Option<Worker> {
        let (tasks, task_rx) = std::sync::mpsc::sync_channel::<LaneTask>(1);
        let (done_tx, done) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("eddy-partition".into())
            .spawn(move || {
                while let Ok((mut lanes, wm)) = task_rx.recv() {
                    lanes.iter_mut().for_each(|l| l.run(wm));
                    if done_tx.send(lanes).is_err() {
                        return;
                    }
                }
            })
            .ok()?;
        Some(Worker { tasks, done })
    }
}

/// Runs every lane of a statement, spread over the job's workers and its own thread
/// in contiguous chunks; each lane is run by one thread only and merged in partition
/// order, so the result does not depend on the number of threads. Lanes come back in
/// their order; a worker that is gone leaves its chunk to the job's thread.
fn run_lanes(mut lanes: Vec<Lane>, workers: &[Worker], wm: Option<i64>) -> Vec<Lane> {
    let threads = (workers.len() + 1).min(lanes.len().max(1));
    if threads <= 1 {
        lanes.iter_mut().for_each(|l| l.run(wm));
        return lanes;
    }
    let per_thread = lanes.len().div_ceil(threads);
    let mut chunks = Vec::new();
    while lanes.len() > per_thread {
        let at = lanes.len() - per_thread;
        chunks.push(lanes.split_off(at));
    }
    chunks.reverse();
    let mut sent = Vec::new();
    for (worker, chunk) in workers.iter().zip(chunks) {
        match worker.tasks.send((chunk, wm)) {
            Ok(()) => sent.push((worker, None)),
            Err(std::sync::mpsc::SendError((chunk, _))) => sent.push((worker, Some(chunk))),
        }
    }
    lanes.iter_mut().for_each(|l| l.run(wm));
    for (worker, unsent) in sent {
        let chunk = match unsent {
            Some(mut chunk) => {
                chunk.iter_mut().for_each(|l| l.run(wm));
                chunk
            }
            None => match worker.done.recv() {
                Ok(chunk) => chunk,
                // The worker died with the chunk (a bug in an operator): those lanes
                // start over empty rather than take the job down.
                Err(_) => {
                    tracing::error!("a partition worker stopped; its partitions' state is lost");
                    Vec::new()
                }
            },
        };
        lanes.extend(chunk);
    }
    lanes
}

/// Takes every lane's rows (`closed`: the rows of closed windows) and errors, ordered
/// by time then partition (stable within a lane, whose rows are in time order).
fn merge_lanes(lanes: &mut [Lane], closed: bool, errors: &mut u64) -> Vec<(i64, usize, Row)> {
    let mut merged = Vec::new();
    for (partition, lane) in lanes.iter_mut().enumerate() {
        *errors += std::mem::take(&mut lane.errors);
        let rows = if closed {
            &mut lane.closed
        } else {
            &mut lane.rows
        };
        merged.extend(rows.drain(..).map(|(t, r)| (t, partition, r)));
    }
    merged.sort_by_key(|(t, partition, _)| (*t, *partition));
    merged
}

/// A FROM clause that reads an input, with its own event-time expression.
struct Source {
    timestamp: Option<Eval>,
    /// `TIMESTAMP BY ... OVER k`: substream keys, each with its own watermark.
    over: Vec<Eval>,
    /// The operator reading it, and which side (1: right side of a join).
    consumer: (usize, usize),
    /// Where the fields `timestamp` and `over` read sit in the current event's shape.
    positions: FieldPositions,
    /// Whether `timestamp` or `over` reads event metadata.
    reads_metadata: bool,
}

/// A compiled, running query. `Send`, so a job can move to a worker thread.
pub struct Job {
    query: String,
    options: JobOptions,
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// Reference inputs the query joins, as first written.
    references: Vec<String>,
    sources: Vec<Source>,
    /// Per input, the sources reading it.
    input_sources: Vec<Vec<usize>>,
    /// Per input, its JSON decoder.
    decoders: Vec<Decoder>,
    /// Per input, the column types declared by `CREATE TABLE` (empty: none).
    schemas: Vec<Vec<(String, DataType)>>,
    operators: Vec<Operator>,
    /// Per operator, the `TIMESTAMP BY ... OVER` source it reads, if any.
    op_substreams: Vec<Option<usize>>,
    /// Per step, the operators (and sides) reading it.
    step_consumers: Vec<Vec<(usize, usize)>>,
    since_flush: u32,
    /// Whether any statement reads event metadata; if none does, the job does not make
    /// each event's metadata current as it runs.
    operators_read_metadata: bool,
    /// Reused for the rows one event produces.
    row_buf: Vec<Row>,
    /// While windows close: output rows, to be ordered by time before they are emitted.
    closing: Option<Vec<(i64, usize, Row)>>,
    /// Emptied buffers of `closing` and of the rows one operator closes, kept between
    /// batches so that a batch with many rows does not grow new ones.
    closing_buf: Vec<(i64, usize, Row)>,
    close_buf: Vec<(i64, Row)>,
    /// Per operator, whether it reads an input `PARTITION BY PartitionId` and can run
    /// one instance per partition (no join, no substreams).
    partitionable: Vec<bool>,
    /// Per operator, one instance per input partition once the input has more than one
    /// (empty otherwise: the operator in `operators` runs alone).
    lanes: Vec<Vec<Lane>>,
    /// Threads that run lanes (1: the job's own thread only).
    threads: usize,
    /// `threads - 1` workers, started when a statement first has lanes.
    workers: Vec<Worker>,
    state: State,
}

fn selects(q: &Query) -> Vec<&Select> {
    match q {
        Query::Select(s) => vec![s],
        Query::Union { left, right, .. } => {
            let mut v = selects(left);
            v.extend(selects(right));
            v
        }
    }
}

fn position_ci(names: &[String], name: &str) -> Option<usize> {
    names.iter().position(|n| n.eq_ignore_ascii_case(name))
}

impl Job {
    /// Parses, binds and compiles `query`.
    pub fn compile(query: &str, options: JobOptions) -> Result<Job, EngineError> {
        let bind = eddy_sql::BindOptions {
            reference_inputs: options.reference_inputs.clone(),
        };
        let bound = eddy_sql::compile_with(query, &bind)?;
        let mut job = Job {
            query: query.to_string(),
            options,
            inputs: bound.inputs.clone(),
            outputs: bound.outputs.clone(),
            references: bound.references.clone(),
            sources: Vec::new(),
            input_sources: vec![Vec::new(); bound.inputs.len()],
            decoders: bound.inputs.iter().map(|_| Decoder::default()).collect(),
            schemas: vec![Vec::new(); bound.inputs.len()],
            operators: Vec::new(),
            step_consumers: Vec::new(),
            op_substreams: Vec::new(),
            since_flush: 0,
            operators_read_metadata: false,
            row_buf: Vec::new(),
            closing: None,
            closing_buf: Vec::new(),
            close_buf: Vec::new(),
            partitionable: Vec::new(),
            lanes: Vec::new(),
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            workers: Vec::new(),
            state: State::default(),
        };
        let mut steps: Vec<String> = Vec::new();
        for stmt in &bound.statements {
            let target = if stmt.is_step {
                Target::Step(steps.len())
            } else {
                match position_ci(&job.outputs, &stmt.target) {
                    Some(i) => Target::Output(i),
                    None => {
                        job.outputs.push(stmt.target.clone());
                        Target::Output(job.outputs.len() - 1)
                    }
                }
            };
            for (i, select) in selects(&stmt.query).into_iter().enumerate() {
                let window = stmt.windows.get(i).and_then(Option::as_ref);
                let src = &select.from.source;
                let reference = src.reference_name().name.clone();
                let op = Operator::compile(
                    query,
                    select,
                    window,
                    SourceInfo {
                        reference: reference.clone(),
                        joins: JoinSources {
                            references: &job.references,
                            steps: &steps,
                        },
                    },
                    target,
                )?;
                let op_index = job.operators.len();
                job.operators.push(op);
                job.op_substreams.push(None);
                job.partitionable.push(false);
                job.lanes.push(Vec::new());
                let right = select.from.joins.iter().filter_map(|j| match &j.right {
                    JoinTarget::Source(s) => Some(s),
                    JoinTarget::Function { .. } => None,
                });
                for (side, src) in std::iter::once(src).chain(right).enumerate() {
                    let is_step = position_ci(&steps, &src.name.name).is_some();
                    if !is_step && position_ci(&job.references, &src.name.name).is_some() {
                        // Reference data is looked up, never pushed.
                        continue;
                    }
                    job.attach(query, &steps, select, src, (op_index, side))?;
                }
            }
            if stmt.is_step {
                steps.push(stmt.target.clone());
                job.step_consumers.push(Vec::new());
            }
        }
        for stmt in &bound.script.statements {
            if let Statement::CreateTable { name, columns, .. } = stmt
                && let Some(input) = position_ci(&job.inputs, &name.name)
            {
                job.schemas[input] = columns.iter().map(|(c, t)| (c.name.clone(), *t)).collect();
            }
        }
        job.operators_read_metadata = job.operators.iter().any(Operator::reads_metadata);
        job.state.output_seqs = vec![0; job.outputs.len()];
        job.state.metrics.inputs = job
            .inputs
            .iter()
            .map(|name| InputMetrics {
                name: name.clone(),
                ..InputMetrics::default()
            })
            .collect();
        Ok(job)
    }

    /// Wires `src` (an input or an earlier step) to side `consumer.1` of operator `consumer.0`.
    fn attach(
        &mut self,
        query: &str,
        steps: &[String],
        select: &Select,
        src: &SourceDef,
        consumer: (usize, usize),
    ) -> Result<(), EngineError> {
        if let Some(step) = position_ci(steps, &src.name.name) {
            if let Some(ts) = &src.timestamp_by {
                return Err(unsupported(query, ts.expr.span(), "TIMESTAMP BY on a step"));
            }
            self.step_consumers[step].push(consumer);
            return Ok(());
        }
        let input = position_ci(&self.inputs, &src.name.name).ok_or_else(|| {
            unsupported(
                query,
                src.name.span,
                format!("unknown input {}", src.name.name),
            )
        })?;
        let reference = src.reference_name().name.clone();
        let (mut timestamp, mut over) = (None, Vec::new());
        let mut c = ExprCompiler::new(query, reference.clone());
        if let Some(ts) = &src.timestamp_by {
            timestamp = Some(c.compile(&ts.expr)?);
            over = ts
                .over
                .iter()
                .map(|k| c.compile(k))
                .collect::<Result<Vec<_>, _>>()?;
            if !c.analytics.is_empty() {
                return Err(unsupported(
                    query,
                    ts.expr.span(),
                    "an analytic function in TIMESTAMP BY",
                ));
            }
            if let Some(k) = ts.over.first()
                && (consumer.1 != 0 || !self.operators[consumer.0].takes_substreams())
            {
                return Err(unsupported(
                    query,
                    k.span(),
                    "TIMESTAMP BY ... OVER in a join, APPLY or step",
                ));
            }
        }
        let first = self.input_sources[input].is_empty();
        let joined = select
            .from
            .joins
            .iter()
            .any(|j| matches!(j.right, JoinTarget::Source(_)));
        let fields = if joined {
            fields_read_in_join(select, consumer.1)
        } else if consumer.1 == 0 {
            fields_read(select, &reference)
        } else {
            None
        };
        self.decoders[input].want(fields, first);
        self.input_sources[input].push(self.sources.len());
        if !over.is_empty() {
            self.op_substreams[consumer.0] = Some(self.sources.len());
        }
        let by_partition_id = matches!(
            &src.partition_by,
            Some(eddy_sql::ast::Expr::Column(parts, _))
                if parts.last().is_some_and(|p| p.name.eq_ignore_ascii_case("PartitionId"))
        );
        if by_partition_id
            && consumer.1 == 0
            && over.is_empty()
            && select
                .from
                .joins
                .iter()
                .all(|j| !matches!(j.right, JoinTarget::Source(_)))
        {
            self.partitionable[consumer.0] = true;
        }
        self.sources.push(Source {
            timestamp,
            over,
            consumer,
            positions: FieldPositions::new(c.fields),
            reads_metadata: c.reads_metadata,
        });
        self.state.substreams.push(Substreams::default());
        self.state.partitions.push(vec![PartitionState::default()]);
        Ok(())
    }

    /// Input names, as first written in the query.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// Reference inputs the query joins (declared in [`JobOptions::reference_inputs`]),
    /// as first written in the query; not among [`Job::inputs`].
    pub fn references(&self) -> &[String] {
        &self.references
    }

    /// The index of a reference input by name, case-insensitive.
    pub fn reference_index(&self, name: &str) -> Option<usize> {
        position_ci(&self.references, name)
    }

    /// Replaces reference table `reference` with `rows` (records), atomically between
    /// events: events the watermark already allows are processed first, with the old
    /// rows; every later event sees only the new ones. Refreshing does not move time.
    pub fn set_reference(&mut self, reference: usize, rows: Vec<Value>) -> Result<(), EngineError> {
        let name = self
            .references
            .get(reference)
            .ok_or_else(|| EngineError::Reference(format!("no reference input #{reference}")))?;
        if let Some(bad) = rows.iter().find(|r| !matches!(r, Value::Record(_))) {
            return Err(EngineError::Reference(format!(
                "reference '{name}': a row must be a record, found {}",
                bad.type_name()
            )));
        }
        self.flush(false);
        let rows: std::sync::Arc<[Value]> = rows.into();
        let errors = &mut self.state.metrics.errors;
        for op in &mut self.operators {
            op.set_reference(reference, &rows, errors);
        }
        Ok(())
    }

    /// [`Job::set_reference`] from JSON objects, one per row.
    pub fn set_reference_json<'a>(
        &mut self,
        reference: usize,
        rows: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), EngineError> {
        let rows = rows
            .into_iter()
            .enumerate()
            .map(|(i, json)| {
                Value::from_json_slice(json)
                    .map_err(|e| EngineError::Reference(format!("row {}: {e}", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.set_reference(reference, rows)
    }

    /// Output names, as first written in the query.
    pub fn outputs(&self) -> &[String] {
        &self.outputs
    }

    /// The index of an input by name, case-insensitive as ASA names are.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        position_ci(&self.inputs, name)
    }

    /// Declares how many partitions an input has (default 1); the job watermark waits
    /// for every declared partition. Partitions added once the job has made progress start
    /// at the job's frontier, so an empty new partition does not hold the job back.
    pub fn declare_partitions(&mut self, input: usize, partitions: u32) {
        let n = partitions.max(1) as usize;
        let sources = self.input_sources.get(input).cloned().unwrap_or_default();
        let fresh = PartitionState {
            watermark: self.state.frontier,
        };
        for s in sources {
            self.state.partitions[s].resize(n, fresh);
            let (op, _) = self.sources[s].consumer;
            if n > 1 && self.partitionable[op] {
                self.add_lanes(op, n);
            }
        }
    }

    /// Sets how many threads run the partitions of `PARTITION BY PartitionId` statements
    /// (default: the machine's parallelism); the output does not depend on it.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
        self.workers.truncate(self.threads - 1);
    }

    /// Gives operator `op` at least `n` per-partition instances, compiled afresh from the
    /// query (operators hold compiled closures and cannot be cloned).
    fn add_lanes(&mut self, op: usize, n: usize) {
        while self.lanes[op].len() < n {
            let fresh = Job::compile(&self.query, self.options.clone())
                .ok()
                .and_then(|mut j| (op < j.operators.len()).then(|| j.operators.swap_remove(op)));
            match fresh {
                Some(o) => self.lanes[op].push(Lane::new(o)),
                // The query compiled once already; should it not, the operator stays whole.
                None => return,
            }
        }
    }

    /// Decodes one JSON object and pushes it; a bad event is counted and returned as `Err`.
    pub fn push_json(
        &mut self,
        input: usize,
        partition: u32,
        offset: u64,
        arrival: Arrival,
        json: &[u8],
    ) -> Result<(), EventError> {
        self.push_json_with_extras(input, partition, offset, arrival, None, json)
    }

    /// Like [`Job::push_json`], with the producer's key and headers for metadata functions.
    pub fn push_json_with_extras(
        &mut self,
        input: usize,
        partition: u32,
        offset: u64,
        arrival: Arrival,
        extras: Option<Arc<EventExtras>>,
        json: &[u8],
    ) -> Result<(), EventError> {
        let decoder = self
            .decoders
            .get_mut(input)
            .ok_or(EventError::UnknownInput { input })?;
        match decoder.decode(json) {
            Ok(v) => self.push_record_with_extras(input, partition, offset, arrival, extras, v),
            Err(e) => {
                let m = &mut self.state.metrics;
                m.input_events += 1;
                m.errors += 1;
                if let Some(i) = m.inputs.get_mut(input) {
                    i.input_events += 1;
                    i.conversion_errors += 1;
                }
                Err(e)
            }
        }
    }

    /// Pushes one event (a record); applies the time policies and buffers it.
    pub fn push_record(
        &mut self,
        input: usize,
        partition: u32,
        offset: u64,
        arrival: Arrival,
        record: Value,
    ) -> Result<(), EventError> {
        self.push_record_with_extras(input, partition, offset, arrival, None, record)
    }

    /// Like [`Job::push_record`], with the producer's key and headers for metadata functions.
    pub fn push_record_with_extras(
        &mut self,
        input: usize,
        partition: u32,
        offset: u64,
        arrival: Arrival,
        extras: Option<Arc<EventExtras>>,
        record: Value,
    ) -> Result<(), EventError> {
        let sources = self
            .input_sources
            .get(input)
            .ok_or(EventError::UnknownInput { input })?;
        let declared = sources
            .first()
            .map_or(1, |&s| self.state.partitions[s].len());
        if partition as usize >= declared {
            return Err(EventError::UnknownPartition {
                input: self.inputs[input].clone(),
                partition,
                declared: declared as u32,
            });
        }
        let m = &mut self.state.metrics;
        m.input_events += 1;
        if m.inputs.len() <= input {
            m.inputs.resize(input + 1, InputMetrics::default());
        }
        m.inputs[input].input_events += 1;
        let record = match conform(&self.inputs[input], &self.schemas[input], record) {
            Ok(r) => r,
            Err(e) => {
                m.errors += 1;
                m.inputs[input].conversion_errors += 1;
                return Err(e);
            }
        };
        // Metadata as TIMESTAMP BY may read it; the arrival is refined per source below.
        let known_arrival = match arrival {
            Arrival::At(t) => Some(t),
            Arrival::FromPayload => record_field_time(&record),
        };
        // Reading the clock costs as much as a simple query: only when metadata is read.
        if sources.iter().any(|&s| self.sources[s].reads_metadata) {
            set_current(Some(EventMeta {
                input: input as u32,
                partition,
                offset,
                arrival: known_arrival.unwrap_or_else(now_ticks),
                extras: extras.clone(),
            }));
        }
        let seq = self.state.next_seq;
        self.state.next_seq += 1;
        for &s in sources {
            let source = &mut self.sources[s];
            let fields = source.positions.resolve(&record);
            let time = match &source.timestamp {
                None => None,
                Some(f) => match event_time(f(&Ctx {
                    record: &record,
                    time: 0,
                    keys: &[],
                    aggs: &[],
                    fields,
                })) {
                    Ok(t) => Some(t),
                    Err(message) => {
                        m.errors += 1;
                        m.inputs[input].conversion_errors += 1;
                        let what = format!("TIMESTAMP BY of input '{}'", self.inputs[input]);
                        return Err(EventError::Conversion { what, message });
                    }
                },
            };
            let arrival = match (known_arrival, time) {
                (Some(t), _) | (None, Some(t)) => t,
                (None, None) => now_ticks(),
            };
            let meta = EventMeta {
                input: input as u32,
                partition,
                offset,
                arrival,
                extras: extras.clone(),
            };
            if !self.sources[s].over.is_empty() {
                let source = &mut self.sources[s];
                let ctx = Ctx {
                    record: &record,
                    time: 0,
                    keys: &[],
                    aggs: &[],
                    fields: source.positions.resolve(&record),
                };
                let key = match source
                    .over
                    .iter()
                    .map(|k| k(&ctx))
                    .collect::<Result<Box<[Value]>, _>>()
                {
                    Ok(k) => k,
                    Err(e) => {
                        m.errors += 1;
                        m.inputs[input].conversion_errors += 1;
                        let what =
                            format!("TIMESTAMP BY ... OVER of input '{}'", self.inputs[input]);
                        return Err(EventError::Conversion {
                            what,
                            message: e.to_string(),
                        });
                    }
                };
                let subs = &mut self.state.substreams[s];
                if let Some(tol) = self.options.late_arrival_tolerance {
                    let c = arrival.saturating_sub(tol);
                    subs.clock = Some(subs.clock.map_or(c, |x| x.max(c)));
                }
                let state = subs.keys.0.entry(key.clone()).or_default();
                let event_time = time.unwrap_or(arrival);
                let Some(time) =
                    apply_policies(&self.options, m, input, state, None, event_time, arrival)
                else {
                    continue;
                };
                let p = Pending {
                    time,
                    seq,
                    source: s,
                    record: record.clone(),
                    meta,
                };
                subs.pending.push((key, p));
                continue;
            }
            let Some(p) = self.state.partitions[s].get_mut(partition as usize) else {
                continue;
            };

            let frontier = self.state.frontier;
            let Some(time) = apply_policies(
                &self.options,
                m,
                input,
                p,
                frontier,
                time.unwrap_or(arrival),
                arrival,
            ) else {
                continue;
            };
            let p = Pending {
                time,
                seq,
                source: s,
                record: record.clone(),
                meta,
            };
            match self.state.pending.back() {
                Some(last) if last.order() > p.order() => self.state.pending_heap.push(p),
                _ => self.state.pending.push_back(p),
            }
        }
        self.since_flush += 1;
        if self.since_flush >= FLUSH_EVERY {
            // Short of the watermark: more events may still carry exactly its timestamp.
            self.flush(true);
        }
        Ok(())
    }

    /// Moves an idle partition's watermark with the arrival clock (`now` − late tolerance).
    pub fn advance_arrival(&mut self, input: usize, partition: u32, now: i64) {
        let Some(tol) = self.options.late_arrival_tolerance else {
            return;
        };
        for &s in self.input_sources.get(input).into_iter().flatten() {
            let subs = &mut self.state.substreams[s];
            let c = now.saturating_sub(tol);
            subs.clock = Some(subs.clock.map_or(c, |x| x.max(c)));
            if let Some(p) = self.state.partitions[s].get_mut(partition as usize) {
                let w = now.saturating_sub(tol);
                p.watermark = Some(p.watermark.map_or(w, |x| x.max(w)));
            }
        }
    }

    /// End of all input: every buffered event is processed and every open window emitted.
    pub fn finish(&mut self) {
        self.state.finished = true;
        self.flush(false);
    }

    /// Processes what the watermark allows and moves the resulting rows into `out`.
    pub fn drain_output(&mut self, out: &mut Vec<OutputRow>) {
        self.flush(false);
        out.append(&mut self.state.output);
    }

    /// Counters and the job watermark.
    pub fn metrics(&self) -> JobMetrics {
        JobMetrics {
            watermark: self.watermark(),
            join_buffered_rows: self
                .operators
                .iter()
                .map(|o| o.join_buffered_rows() as u64)
                .sum(),
            ..self.state.metrics.clone()
        }
    }

    /// All state (windows, buffers, watermarks, metrics, sequence numbers) as bytes.
    pub fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let snap = Snapshot {
            query: self.query.clone(),
            state: self.state.clone(),
            groups: self.operators.iter().map(Operator::snapshot).collect(),
            lanes: (self.lanes.iter())
                .map(|l| l.iter().map(|l| l.op.snapshot()).collect())
                .collect(),
        };
        serde_json::to_vec(&snap).map_err(|e| EngineError::Snapshot(e.to_string()))
    }

    /// Restores a snapshot taken from a job compiled from the same query.
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), EngineError> {
        let snap: Snapshot =
            serde_json::from_slice(snapshot).map_err(|e| EngineError::Snapshot(e.to_string()))?;
        if snap.query != self.query {
            return Err(EngineError::Snapshot(
                "it was taken from a different query".into(),
            ));
        }
        let s = &snap.state;
        if s.partitions.len() != self.sources.len()
            || s.output_seqs.len() != self.outputs.len()
            || snap.groups.len() != self.operators.len()
            || s.substreams.len() != self.sources.len()
            || s.pending
                .iter()
                .chain(&s.pending_heap)
                .any(|p| p.source >= self.sources.len())
            || s.substreams
                .iter()
                .flat_map(|x| &x.pending)
                .any(|(_, p)| p.source >= self.sources.len())
        {
            return Err(EngineError::Snapshot(
                "it does not match this job's shape".into(),
            ));
        }
        if snap.lanes.len() > self.operators.len()
            || (snap.lanes.iter().enumerate())
                .any(|(op, l)| !l.is_empty() && !self.partitionable[op])
        {
            return Err(EngineError::Snapshot(
                "its partitioned statements do not match this job's".into(),
            ));
        }
        for (op, lanes) in snap.lanes.iter().enumerate() {
            self.add_lanes(op, lanes.len());
        }
        for (op, g) in self.operators.iter_mut().zip(snap.groups) {
            op.restore(g).map_err(EngineError::Snapshot)?;
        }
        for (lanes, states) in self.lanes.iter_mut().zip(snap.lanes) {
            for (lane, state) in lanes.iter_mut().zip(states) {
                lane.op.restore(state).map_err(EngineError::Snapshot)?;
            }
        }
        self.state = snap.state;
        Ok(())
    }

    /// Minimum watermark over every partition of every source; `None` until all have one.
    fn watermark(&self) -> Option<i64> {
        let mut all = (self.state.partitions.iter().zip(&self.sources))
            .filter(|(_, s)| s.over.is_empty())
            .flat_map(|(p, _)| p)
            .map(|p| p.watermark);
        let first = all.next()??;
        all.try_fold(first, |acc, w| w.map(|w| acc.min(w)))
    }

    /// Runs buffered events up to the watermark through the operators, then closes windows.
    /// `short`: stop one tick before the watermark (automatic batches), so that events
    /// still to come at exactly the watermark find their windows open.
    fn flush(&mut self, short: bool) {
        self.since_flush = 0;
        let finished = self.state.finished;
        let limit = |w: i64| {
            if finished {
                i64::MAX
            } else if short {
                w.saturating_sub(1)
            } else {
                w
            }
        };
        let wm = if finished {
            Some(i64::MAX)
        } else {
            self.watermark().map(limit)
        };
        if let Some(wm) = wm {
            self.state.frontier = Some(self.state.frontier.map_or(wm, |f| f.max(wm)));
            loop {
                let (front, heap) = (self.state.pending.front(), self.state.pending_heap.peek());
                let p = match (front, heap) {
                    (Some(f), Some(h)) if h.order() < f.order() => self.state.pending_heap.pop(),
                    (Some(_), _) => self.state.pending.pop_front(),
                    (None, Some(_)) => self.state.pending_heap.pop(),
                    (None, None) => None,
                };
                let Some(p) = p else { break };
                if p.time > wm {
                    // Not yet: put it back where it came from (the heap takes any order).
                    self.state.pending_heap.push(p);
                    break;
                }
                let (op, side) = self.sources[p.source].consumer;
                if side == 0
                    && let Some(lane) = self.lanes[op].get_mut(p.meta.partition as usize)
                {
                    lane.events.push((p.time, p.record, p.meta));
                    continue;
                }
                if self.operators_read_metadata {
                    set_current(Some(p.meta));
                }
                self.deliver(self.sources[p.source].consumer, p.time, &p.record);
            }
        }
        // Substreams: each key's events go as far as that key's watermark.
        let mut ready = Vec::new();
        for subs in &mut self.state.substreams {
            let pending = std::mem::take(&mut subs.pending);
            for (key, p) in pending {
                match subs.watermark(&key).map(limit) {
                    Some(w) if p.time <= w || finished => ready.push(p),
                    _ => subs.pending.push((key, p)),
                }
            }
        }
        ready.sort_by_key(Pending::order);
        for p in ready {
            set_current(Some(p.meta));
            self.deliver(self.sources[p.source].consumer, p.time, &p.record);
        }
        set_current(None);
        // Partitioned statements run their partitions' events (in parallel); their rows
        // follow the batch's other rows, ordered by time then partition.
        for op in 0..self.operators.len() {
            if self.lanes[op].is_empty()
                || (wm.is_none() && self.lanes[op].iter().all(|l| l.events.is_empty()))
            {
                continue;
            }
            while self.workers.len() + 1 < self.threads.min(self.lanes[op].len()) {
                match Worker::spawn() {
                    Some(w) => self.workers.push(w),
                    None => break,
                }
            }
            let n = self.lanes[op].len();
            let mut lanes = run_lanes(std::mem::take(&mut self.lanes[op]), &self.workers, wm);
            let merged = merge_lanes(&mut lanes, false, &mut self.state.metrics.errors);
            self.lanes[op] = lanes;
            if self.lanes[op].len() < n {
                self.add_lanes(op, n);
            }
            let target = self.operators[op].target;
            for (time, _, row) in merged {
                self.route(target, time, row);
            }
        }
        // Windows close statement by statement (steps feed later statements at once); the
        // output rows are then ordered by window end across statements and UNION branches.
        let mut rows = std::mem::take(&mut self.close_buf);
        self.closing = Some(std::mem::take(&mut self.closing_buf));
        for op in 0..self.operators.len() {
            let errors = &mut self.state.metrics.errors;
            match (self.op_substreams[op], wm) {
                (Some(s), _) => {
                    let subs = &self.state.substreams[s];
                    let watermark_of = |k: &[Value]| subs.watermark(k).map_or(i64::MIN, limit);
                    self.operators[op].close_substreams(&watermark_of, errors, &mut rows);
                }
                (None, Some(_)) if !self.lanes[op].is_empty() => {
                    // Closed with the batch's events, above.
                    let merged = merge_lanes(&mut self.lanes[op], true, errors);
                    rows.extend(merged.into_iter().map(|(t, _, r)| (t, r)));
                }
                (None, Some(wm)) => self.operators[op].close(wm, errors, &mut rows),
                (None, None) => continue,
            }
            let target = self.operators[op].target;
            for (time, row) in rows.drain(..) {
                self.route(target, time, row);
            }
        }
        self.close_buf = rows;
        let mut closing = self.closing.take().unwrap_or_default();
        // One statement's rows already come in time order: then no sort (and no scratch
        // buffer) is needed; several statements or UNION branches are merged stably.
        if !closing.is_sorted_by_key(|(time, _, _)| *time) {
            closing.sort_by_key(|(time, _, _)| *time);
        }
        self.state.output.reserve(closing.len());
        for (_, output, row) in closing.drain(..) {
            self.emit(output, row);
        }
        self.closing_buf = closing;
    }

    fn emit(&mut self, output: usize, row: Row) {
        let seq = &mut self.state.output_seqs[output];
        *seq += 1;
        self.state.output.push(OutputRow {
            output,
            seq: *seq,
            row,
        });
        self.state.metrics.output_events += 1;
    }

    fn deliver(&mut self, (op, side): (usize, usize), time: i64, record: &Value) {
        // Steps deliver recursively; each level takes the buffer (or a new one) and puts it back.
        let mut rows = std::mem::take(&mut self.row_buf);
        self.operators[op].process(
            time,
            side,
            record,
            &mut rows,
            &mut self.state.metrics.errors,
        );
        let target = self.operators[op].target;
        for row in rows.drain(..) {
            self.route(target, time, row);
        }
        self.row_buf = rows;
    }

    fn route(&mut self, target: Target, time: i64, row: Row) {
        match target {
            Target::Output(output) => match &mut self.closing {
                Some(closing) => closing.push((time, output, row)),
                None => self.emit(output, row),
            },
            Target::Step(step) => {
                let record = row.into_record();
                for i in 0..self.step_consumers[step].len() {
                    self.deliver(self.step_consumers[step][i], time, &record);
                }
            }
        }
    }
}

/// Checks that an event is a record and converts the columns `CREATE TABLE` declared.
fn conform(input: &str, schema: &[(String, DataType)], record: Value) -> Result<Value, EventError> {
    let Value::Record(r) = &record else {
        return Err(EventError::NotARecord {
            found: record.type_name(),
        });
    };
    if schema.is_empty() {
        return Ok(record);
    }
    let mut values = r.values().to_vec();
    for (name, value) in r.names().iter().zip(&mut values) {
        if let Some((column, ty)) = schema.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) {
            *value = cast(std::mem::take(value), *ty).map_err(|e| EventError::Conversion {
                what: format!("column '{column}' of input '{input}'"),
                message: e.to_string(),
            })?;
        }
    }
    Ok(Record::new(r.names().clone(), values).into())
}

/// A TIMESTAMP BY result as ticks: a datetime, or a string holding one.
fn event_time(v: Result<Value, EvalError>) -> Result<i64, String> {
    match v.map_err(|e| e.to_string())? {
        Value::DateTime(t) => Ok(t),
        Value::String(s) => parse_datetime(&s).ok_or_else(|| format!("'{s}' is not a datetime")),
        other => Err(format!("expected a datetime, found {}", other.type_name())),
    }
}

fn record_field_time(record: &Value) -> Option<i64> {
    let Value::Record(r) = record else {
        return None;
    };
    match r.get("EventEnqueuedUtcTime")? {
        Value::DateTime(t) => Some(*t),
        Value::String(s) => parse_datetime(s),
        _ => None,
    }
}

/// Early, late and out-of-order policies, in ASA's order; returns the (possibly adjusted)
/// event time, or `None` when the event is dropped. Updates the partition's watermark.
fn apply_policies(
    o: &JobOptions,
    m: &mut JobMetrics,
    input: usize,
    p: &mut PartitionState,
    frontier: Option<i64>,
    mut time: i64,
    arrival: i64,
) -> Option<i64> {
    let adjust = o.out_of_order_action == OutOfOrderAction::Adjust;
    // The per-input counters always exist (push_record sizes them); a spare keeps the
    // policy itself independent of that.
    let mut spare = InputMetrics::default();
    let i = match m.inputs.get_mut(input) {
        Some(i) => i,
        None => &mut spare,
    };
    if time > arrival.saturating_add(EARLY_LIMIT) {
        m.early_events += 1;
        m.dropped_events += 1;
        i.early_events += 1;
        i.dropped_events += 1;
        return None;
    }
    if let Some(tol) = o.late_arrival_tolerance
        && time < arrival.saturating_sub(tol)
    {
        m.late_events += 1;
        i.late_events += 1;
        if !adjust {
            m.dropped_events += 1;
            i.dropped_events += 1;
            return None;
        }
        m.adjusted_events += 1;
        i.adjusted_events += 1;
        time = arrival.saturating_sub(tol);
    }
    // In order means at or after the partition's watermark and after what the job has
    // already emitted.
    let floor = match (p.watermark, frontier) {
        (Some(w), Some(f)) => Some(w.max(f.saturating_add(1))),
        (w, f) => w.or(f.map(|f| f.saturating_add(1))),
    };
    if let Some(wm) = floor
        && time < wm
    {
        m.out_of_order_events += 1;
        i.out_of_order_events += 1;
        if !adjust {
            m.dropped_events += 1;
            i.dropped_events += 1;
            return None;
        }
        m.adjusted_events += 1;
        i.adjusted_events += 1;
        time = wm;
    }
    let w = time.saturating_sub(o.out_of_order_tolerance);
    p.watermark = Some(p.watermark.map_or(w, |x| x.max(w)));
    Some(time)
}
