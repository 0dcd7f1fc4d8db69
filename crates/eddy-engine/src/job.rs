//! A running job: time policies and watermarks per input partition, the buffer that
//! re-sorts events, the operator graph, outputs, metrics and snapshots.
//!
//! Events are buffered as they are pushed and processed in batches: when output is
//! drained (or every [`FLUSH_EVERY`] pushes) the job watermark is computed, buffered
//! events at or before it run through the operators in (event time, arrival) order, and
//! then every window ending at or before it is emitted, statement by statement.

use crate::error::{EngineError, EventError, EvalError};
use crate::expr::{Ctx, Eval, ExprCompiler, unsupported};
use crate::operator::{GroupSnapshot, Operator, SourceInfo, Target};
use crate::time::{TICKS_PER_SECOND, now_ticks, parse_datetime};
use crate::value::{Row, Value};
use eddy_sql::ast::{Query, Select, Statement};
use serde::{Deserialize, Serialize};

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
}

impl Default for JobOptions {
    fn default() -> JobOptions {
        JobOptions {
            late_arrival_tolerance: Some(5 * TICKS_PER_SECOND),
            out_of_order_tolerance: 0,
            out_of_order_action: OutOfOrderAction::Adjust,
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
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct PartitionState {
    watermark: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    time: i64,
    seq: u64,
    source: usize,
    record: Value,
}

/// Everything that changes while the job runs; what a snapshot holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// Per source (FROM over an input), per partition.
    partitions: Vec<Vec<PartitionState>>,
    pending: Vec<Pending>,
    next_seq: u64,
    output_seqs: Vec<u64>,
    output: Vec<OutputRow>,
    metrics: JobMetrics,
    finished: bool,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    query: String,
    state: State,
    groups: Vec<Option<GroupSnapshot>>,
}

/// A FROM clause that reads an input, with its own event-time expression.
struct Source {
    timestamp: Option<Eval>,
    consumer: usize,
}

/// A compiled, running query. `Send`, so a job can move to a worker thread.
pub struct Job {
    query: String,
    options: JobOptions,
    inputs: Vec<String>,
    outputs: Vec<String>,
    sources: Vec<Source>,
    /// Per input, the sources reading it.
    input_sources: Vec<Vec<usize>>,
    operators: Vec<Operator>,
    /// Per step, the operators reading it.
    step_consumers: Vec<Vec<usize>>,
    since_flush: u32,
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
        let bound = eddy_sql::compile(query)?;
        if let Some(Statement::CreateTable { span, .. }) =
            bound.script.statements.iter().find(|s| matches!(s, Statement::CreateTable { .. }))
        {
            return Err(unsupported(query, *span, "CREATE TABLE"));
        }
        let mut job = Job {
            query: query.to_string(),
            options,
            inputs: bound.inputs.clone(),
            outputs: bound.outputs.clone(),
            sources: Vec::new(),
            input_sources: vec![Vec::new(); bound.inputs.len()],
            operators: Vec::new(),
            step_consumers: Vec::new(),
            since_flush: 0,
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
                let op = Operator::compile(query, select, window, SourceInfo { reference: reference.clone() }, target)?;
                let op_index = job.operators.len();
                job.operators.push(op);
                if let Some(step) = position_ci(&steps, &src.name.name) {
                    if let Some(ts) = &src.timestamp_by {
                        return Err(unsupported(query, ts.expr.span(), "TIMESTAMP BY on a step"));
                    }
                    job.step_consumers[step].push(op_index);
                    continue;
                }
                let input = position_ci(&job.inputs, &src.name.name)
                    .ok_or_else(|| unsupported(query, src.name.span, format!("unknown input {}", src.name.name)))?;
                let timestamp = match &src.timestamp_by {
                    None => None,
                    Some(ts) => {
                        if let Some(k) = ts.over.first() {
                            return Err(unsupported(query, k.span(), "TIMESTAMP BY ... OVER (substreams)"));
                        }
                        let mut c = ExprCompiler { text: query, source: reference, aggs: None };
                        Some(c.compile(&ts.expr)?)
                    }
                };
                job.input_sources[input].push(job.sources.len());
                job.sources.push(Source { timestamp, consumer: op_index });
                job.state.partitions.push(vec![PartitionState::default()]);
            }
            if stmt.is_step {
                steps.push(stmt.target.clone());
                job.step_consumers.push(Vec::new());
            }
        }
        job.state.output_seqs = vec![0; job.outputs.len()];
        Ok(job)
    }

    /// Input names, as first written in the query.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
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
    /// for every declared partition.
    pub fn declare_partitions(&mut self, input: usize, partitions: u32) {
        let n = partitions.max(1) as usize;
        for &s in self.input_sources.get(input).into_iter().flatten() {
            self.state.partitions[s].resize(n, PartitionState::default());
        }
    }

    /// Decodes one JSON object and pushes it; a bad event is counted and returned as `Err`.
    pub fn push_json(&mut self, input: usize, partition: u32, offset: u64, arrival: Arrival, json: &[u8]) -> Result<(), EventError> {
        match Value::from_json_slice(json) {
            Ok(v) => self.push_record(input, partition, offset, arrival, v),
            Err(e) => {
                self.state.metrics.input_events += 1;
                self.state.metrics.errors += 1;
                Err(e)
            }
        }
    }

    /// Pushes one event (a record); applies the time policies and buffers it.
    pub fn push_record(&mut self, input: usize, partition: u32, _offset: u64, arrival: Arrival, record: Value) -> Result<(), EventError> {
        let sources = self.input_sources.get(input).ok_or(EventError::UnknownInput { input })?;
        let declared = sources.first().map_or(1, |&s| self.state.partitions[s].len());
        if partition as usize >= declared {
            return Err(EventError::UnknownPartition { input: self.inputs[input].clone(), partition, declared: declared as u32 });
        }
        let m = &mut self.state.metrics;
        m.input_events += 1;
        if !matches!(record, Value::Record(_)) {
            m.errors += 1;
            return Err(EventError::NotARecord { found: record.type_name() });
        }
        let seq = self.state.next_seq;
        self.state.next_seq += 1;
        for &s in sources {
            let time = match &self.sources[s].timestamp {
                None => None,
                Some(f) => match event_time(f(&Ctx { record: &record, time: 0, aggs: &[] })) {
                    Ok(t) => Some(t),
                    Err(message) => {
                        m.errors += 1;
                        let what = format!("TIMESTAMP BY of input '{}'", self.inputs[input]);
                        return Err(EventError::Conversion { what, message });
                    }
                },
            };
            let arrival = match arrival {
                Arrival::At(t) => t,
                Arrival::FromPayload => match (record_field_time(&record), time) {
                    (Some(t), _) | (None, Some(t)) => t,
                    (None, None) => now_ticks(),
                },
            };
            let Some(time) = apply_policies(&self.options, m, &mut self.state.partitions[s][partition as usize], time.unwrap_or(arrival), arrival)
            else {
                continue;
            };
            self.state.pending.push(Pending { time, seq, source: s, record: record.clone() });
        }
        self.since_flush += 1;
        if self.since_flush >= FLUSH_EVERY {
            self.flush();
        }
        Ok(())
    }

    /// Moves an idle partition's watermark with the arrival clock (`now` − late tolerance).
    pub fn advance_arrival(&mut self, input: usize, partition: u32, now: i64) {
        let Some(tol) = self.options.late_arrival_tolerance else { return };
        for &s in self.input_sources.get(input).into_iter().flatten() {
            if let Some(p) = self.state.partitions[s].get_mut(partition as usize) {
                let w = now.saturating_sub(tol);
                p.watermark = Some(p.watermark.map_or(w, |x| x.max(w)));
            }
        }
    }

    /// End of all input: every buffered event is processed and every open window emitted.
    pub fn finish(&mut self) {
        self.state.finished = true;
        self.flush();
    }

    /// Processes what the watermark allows and moves the resulting rows into `out`.
    pub fn drain_output(&mut self, out: &mut Vec<OutputRow>) {
        self.flush();
        out.append(&mut self.state.output);
    }

    /// Counters and the job watermark.
    pub fn metrics(&self) -> JobMetrics {
        JobMetrics { watermark: self.watermark(), ..self.state.metrics.clone() }
    }

    /// All state (windows, buffers, watermarks, metrics, sequence numbers) as bytes.
    pub fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let snap = Snapshot {
            query: self.query.clone(),
            state: self.state.clone(),
            groups: self.operators.iter().map(Operator::snapshot).collect(),
        };
        serde_json::to_vec(&snap).map_err(|e| EngineError::Snapshot(e.to_string()))
    }

    /// Restores a snapshot taken from a job compiled from the same query.
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), EngineError> {
        let snap: Snapshot = serde_json::from_slice(snapshot).map_err(|e| EngineError::Snapshot(e.to_string()))?;
        if snap.query != self.query {
            return Err(EngineError::Snapshot("it was taken from a different query".into()));
        }
        let s = &snap.state;
        if s.partitions.len() != self.sources.len()
            || s.output_seqs.len() != self.outputs.len()
            || snap.groups.len() != self.operators.len()
            || s.pending.iter().any(|p| p.source >= self.sources.len())
        {
            return Err(EngineError::Snapshot("it does not match this job's shape".into()));
        }
        for (op, g) in self.operators.iter_mut().zip(snap.groups) {
            op.restore(g).map_err(EngineError::Snapshot)?;
        }
        self.state = snap.state;
        Ok(())
    }

    /// Minimum watermark over every partition of every source; `None` until all have one.
    fn watermark(&self) -> Option<i64> {
        let mut all = self.state.partitions.iter().flatten().map(|p| p.watermark);
        let first = all.next()??;
        all.try_fold(first, |acc, w| w.map(|w| acc.min(w)))
    }

    /// Runs buffered events up to the watermark through the operators, then closes windows.
    fn flush(&mut self) {
        self.since_flush = 0;
        let wm = if self.state.finished { i64::MAX } else {
            match self.watermark() {
                Some(w) => w,
                None => return,
            }
        };
        let pending = &mut self.state.pending;
        pending.sort_unstable_by_key(|p| (p.time, p.seq));
        let n = pending.partition_point(|p| p.time <= wm);
        let released: Vec<Pending> = pending.drain(..n).collect();
        for p in released {
            self.deliver(self.sources[p.source].consumer, p.time, &p.record);
        }
        let mut rows = Vec::new();
        for op in 0..self.operators.len() {
            self.operators[op].close(wm, &mut self.state.metrics.errors, &mut rows);
            let target = self.operators[op].target;
            for (time, row) in rows.drain(..) {
                self.route(target, time, row);
            }
        }
    }

    fn deliver(&mut self, op: usize, time: i64, record: &Value) {
        match self.operators[op].process(time, record) {
            Ok(Some(row)) => self.route(self.operators[op].target, time, row),
            Ok(None) => {}
            Err(e) => self.runtime_error(e),
        }
    }

    fn route(&mut self, target: Target, time: i64, row: Row) {
        match target {
            Target::Output(output) => {
                let seq = &mut self.state.output_seqs[output];
                *seq += 1;
                self.state.output.push(OutputRow { output, seq: *seq, row });
                self.state.metrics.output_events += 1;
            }
            Target::Step(step) => {
                let record = row.into_record();
                for i in 0..self.step_consumers[step].len() {
                    self.deliver(self.step_consumers[step][i], time, &record);
                }
            }
        }
    }

    fn runtime_error(&mut self, e: EvalError) {
        self.state.metrics.errors += 1;
        tracing::debug!(error = %e, "dropped an event");
    }
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
    let Value::Record(r) = record else { return None };
    match r.get("EventEnqueuedUtcTime")? {
        Value::DateTime(t) => Some(*t),
        Value::String(s) => parse_datetime(s),
        _ => None,
    }
}

/// Early, late and out-of-order policies, in ASA's order; returns the (possibly adjusted)
/// event time, or `None` when the event is dropped. Updates the partition's watermark.
fn apply_policies(o: &JobOptions, m: &mut JobMetrics, p: &mut PartitionState, mut time: i64, arrival: i64) -> Option<i64> {
    let adjust = o.out_of_order_action == OutOfOrderAction::Adjust;
    if time > arrival.saturating_add(EARLY_LIMIT) {
        m.early_events += 1;
        m.dropped_events += 1;
        return None;
    }
    if let Some(tol) = o.late_arrival_tolerance
        && time < arrival.saturating_sub(tol)
    {
        m.late_events += 1;
        if !adjust {
            m.dropped_events += 1;
            return None;
        }
        m.adjusted_events += 1;
        time = arrival.saturating_sub(tol);
    }
    if let Some(wm) = p.watermark
        && time < wm
    {
        m.out_of_order_events += 1;
        if !adjust {
            m.dropped_events += 1;
            return None;
        }
        m.adjusted_events += 1;
        time = wm;
    }
    let w = time.saturating_sub(o.out_of_order_tolerance);
    p.watermark = Some(p.watermark.map_or(w, |x| x.max(w)));
    Some(time)
}
