//! One job's thread: read input partitions from the log, feed the engine, write outputs to
//! their sinks, checkpoint. Ingestion never waits on it: it only reads what the log holds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use eddy_connectors::files::NdjsonSink;
use eddy_connectors::formats::{EventFormat, decode_payload};
use eddy_connectors::reference::{FileVersion, file_version, read_reference};
use eddy_engine::{Arrival, EventError, EventExtras, Job, OutputRow};
use eddy_log::{LogError, StoredRecord};
use parking_lot::Mutex;

use super::checkpoint::{self, Checkpoint, CheckpointHeader, CheckpointWriter, JobFile};
use super::sink::{self, Sink};
use super::{Ctx, JobState, JobStatus, MetricsView};
use crate::{OutputTarget, ServerError};

/// Records read per partition per round: bounds memory and keeps partitions interleaved.
const READ_BATCH_MAX: usize = 1024;
/// How long an idle job sleeps before advancing idle partitions' watermarks by arrival time.
const IDLE_TICK: Duration = Duration::from_millis(100);
/// How often a job looks for partitions added to its inputs (Kafka CreatePartitions).
const PARTITION_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How often a job with progress checkpoints.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

struct Input {
    stream: String,
    /// Next offset to read, per partition.
    next: Vec<u64>,
}

/// A reference input: its file, and what the job last loaded from it.
struct Reference {
    /// Index in `Job::references`.
    index: usize,
    alias: String,
    path: PathBuf,
    /// `None`: loaded once at start.
    refresh: Option<Duration>,
    last_check: Instant,
    /// The version of the file the table was loaded from.
    loaded: FileVersion,
}

impl Reference {
    /// Reads the file and replaces the job's table; the old table stays on failure.
    fn load(&mut self, job: &mut Job) -> Result<(), ServerError> {
        let invalid = |e: &dyn std::fmt::Display| {
            ServerError::Invalid(format!("reference '{}': {e}", self.alias))
        };
        // The version is taken before reading, so a write during the read is seen again.
        let version = file_version(&self.path).map_err(|e| invalid(&e))?;
        let rows = read_reference(&self.path).map_err(|e| invalid(&e))?;
        job.set_reference_json(self.index, rows.iter().map(Vec::as_slice))
            .map_err(|e| invalid(&format!("{}: {e}", self.path.display())))?;
        self.loaded = version;
        Ok(())
    }
}

/// A prepared job, ready to run on its own thread.
pub(crate) struct Runner {
    name: String,
    job: Job,
    inputs: Vec<Input>,
    references: Vec<Reference>,
    sinks: Vec<Sink>,
    ctx: Ctx,
    status: Arc<Mutex<JobStatus>>,
    stop: Arc<AtomicBool>,
    /// Woken by the log subscriptions (new data) and by `stop`; capacity 1, so wakes coalesce.
    wake: Receiver<()>,
    /// Dropped with the runner; that ends the subscription forwarders on the tokio runtime.
    _done: tokio::sync::watch::Sender<()>,
    /// For the forwarders of partitions added to an input while the job runs.
    done_rx: tokio::sync::watch::Receiver<()>,
    wake_tx: SyncSender<()>,
    /// When the inputs' partition counts were last compared with the log's.
    partitions_checked: Instant,
    /// Payloads that were not events of their format, sent to the dead-letter stream.
    malformed: u64,
    /// Writes the periodic checkpoints off this thread.
    writer: CheckpointWriter,
}

/// The output bindings in the order of `job.outputs()`, defaulting to the table of that name.
pub(crate) fn resolve_targets(
    job_file: &JobFile,
    outputs: &[String],
) -> Result<Vec<OutputTarget>, ServerError> {
    for alias in job_file.spec.outputs.keys() {
        if !outputs.iter().any(|o| o.eq_ignore_ascii_case(alias)) {
            return Err(ServerError::Invalid(format!(
                "outputs: the query has no output {alias:?} (it writes {})",
                outputs.join(", ")
            )));
        }
    }
    Ok(outputs
        .iter()
        .map(|o| {
            let bound = job_file
                .spec
                .outputs
                .iter()
                .find(|(alias, _)| alias.eq_ignore_ascii_case(o));
            bound
                .map(|(_, t)| t.clone())
                .unwrap_or_else(|| OutputTarget::Table { name: o.clone() })
        })
        .collect())
}

/// The store writer id of one output: a job's rows are deduplicated per (table, writer).
pub(crate) fn writer_id(job: &str, output: &str) -> String {
    format!("{}/{}", job.to_lowercase(), output.to_lowercase())
}

/// Maps a compile failure to the diagnostic the API returns.
pub(crate) fn engine_error(query: &str, error: eddy_engine::EngineError) -> ServerError {
    match error {
        eddy_engine::EngineError::Sql(d) => ServerError::Query {
            rendered: d.render(query),
            diagnostic: Box::new(d),
        },
        other => ServerError::Engine(other.to_string()),
    }
}

impl Runner {
    /// Opens the sinks, restores the last checkpoint (or writes the first one) and subscribes
    /// to the inputs. Returns the runner and the handle that wakes it (for `stop`).
    pub fn prepare(
        ctx: Ctx,
        dir: PathBuf,
        job_file: &JobFile,
        mut job: Job,
        status: Arc<Mutex<JobStatus>>,
        stop: Arc<AtomicBool>,
    ) -> Result<(Runner, SyncSender<()>), ServerError> {
        let spec = &job_file.spec;
        let outputs = job.outputs().to_vec();
        let targets = resolve_targets(job_file, &outputs)?;
        let mut inputs = Vec::new();
        for (index, stream) in job.inputs().to_vec().into_iter().enumerate() {
            let info = ctx.log.get_or_create_stream(&stream)?;
            job.declare_partitions(index, info.partitions.len() as u32);
            inputs.push(Input {
                stream,
                next: info.partitions.iter().map(|p| p.start_offset).collect(),
            });
        }
        let mut references = Vec::new();
        for (index, alias) in job.references().to_vec().into_iter().enumerate() {
            let Some((_, input)) = spec
                .references
                .iter()
                .find(|(a, _)| a.eq_ignore_ascii_case(&alias))
            else {
                return Err(ServerError::Invalid(format!(
                    "references: no file for the query's reference input {alias:?}"
                )));
            };
            references.push(Reference {
                index,
                alias,
                path: input.path.clone(),
                refresh: input.refresh_interval_s.map(Duration::from_secs_f64),
                last_check: Instant::now(),
                loaded: FileVersion {
                    modified: None,
                    len: 0,
                },
            });
        }
        for alias in spec.references.keys() {
            if job.reference_index(alias).is_none() {
                return Err(ServerError::Invalid(format!(
                    "references: the query joins no reference input {alias:?}"
                )));
            }
        }
        // Reference tables are not in the snapshot: they are read from their files, before
        // the restore, so no restored event can be processed without them.
        for reference in &mut references {
            reference.load(&mut job)?;
        }
        let restored = checkpoint::read_checkpoint(&dir)?;
        if let Some(cp) = &restored {
            job.restore(&cp.snapshot)
                .map_err(|e| engine_error(&spec.query, e))?;
            // The snapshot knows the partitions of its time; a stream may have grown since.
            for (index, input) in inputs.iter().enumerate() {
                job.declare_partitions(index, input.next.len() as u32);
            }
            for (stream, partition, next) in &cp.header.offsets {
                let input = inputs
                    .iter_mut()
                    .find(|i| i.stream.eq_ignore_ascii_case(stream));
                if let Some(slot) = input.and_then(|i| i.next.get_mut(*partition as usize)) {
                    *slot = *next;
                }
            }
        }
        let mut sinks = Vec::new();
        for (output, target) in outputs.iter().zip(targets) {
            sinks.push(match target {
                OutputTarget::Table { name } => Sink::Table {
                    writer: writer_id(&spec.name, output),
                    seq_base: job_file
                        .seq_base
                        .get(&output.to_lowercase())
                        .copied()
                        .unwrap_or(0),
                    table: name,
                },
                OutputTarget::Stream { name } => {
                    ctx.log.get_or_create_stream(&name)?;
                    let writer = writer_id(&spec.name, output);
                    let ends = restored
                        .as_ref()
                        .and_then(|cp| cp.header.stream_ends.get(&name));
                    let written_through = match ends {
                        Some(ends) => sink::last_seq_in_stream(&ctx.log, &name, ends, &writer)?,
                        None => 0,
                    };
                    Sink::Stream {
                        stream: name,
                        writer,
                        written_through,
                    }
                }
                OutputTarget::File { path } => {
                    let checkpointed = restored
                        .as_ref()
                        .and_then(|cp| cp.header.file_lengths.get(&path));
                    if let Some(len) = checkpointed {
                        truncate_to(&path, *len)?;
                    }
                    let file = NdjsonSink::create(&path).map_err(|e| {
                        ServerError::Invalid(format!("output file {}: {e}", path.display()))
                    })?;
                    Sink::File { path, file }
                }
            });
        }
        {
            let mut s = status.lock();
            s.inputs = inputs.iter().map(|i| i.stream.clone()).collect();
            s.outputs = outputs
                .iter()
                .zip(&sinks)
                .map(|(o, sink)| (o.clone(), sink.describe()))
                .collect();
        }

        let (wake_tx, wake) = sync_channel(1);
        let (done, done_rx) = tokio::sync::watch::channel(());
        for input in &inputs {
            for partition in 0..input.next.len() as u32 {
                subscribe(&ctx, &input.stream, partition, &wake_tx, &done_rx)?;
            }
        }
        let writer = CheckpointWriter::start(dir.clone(), &spec.name)?;
        let mut runner = Runner {
            name: spec.name.clone(),
            job,
            inputs,
            references,
            sinks,
            ctx,
            status,
            stop,
            wake,
            _done: done,
            done_rx,
            wake_tx: wake_tx.clone(),
            partitions_checked: Instant::now(),
            malformed: 0,
            writer,
        };
        if restored.is_none() {
            // A first checkpoint pins the starting offsets and file lengths, so a crash before
            // the next one replays from here and not from wherever the log starts by then.
            runner.checkpoint()?;
            runner.writer.flush()?;
        }
        runner.publish();
        Ok((runner, wake_tx))
    }

    /// Runs until stopped or failed; a failure is recorded in the job's status.
    pub fn run(mut self) {
        let result = self.run_loop();
        let mut status = self.status.lock();
        match result {
            Ok(()) => status.state = JobState::Stopped,
            Err(e) => {
                tracing::error!(job = %self.name, error = %e, "job failed");
                status.state = JobState::Failed;
                status.error = Some(e.to_string());
            }
        }
    }

    fn run_loop(&mut self) -> Result<(), ServerError> {
        let mut last_checkpoint = Instant::now();
        let mut dirty = false;
        let mut rows: Vec<OutputRow> = Vec::new();
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            self.refresh_references();
            if self.partitions_checked.elapsed() >= PARTITION_CHECK_INTERVAL {
                self.partitions_checked = Instant::now();
                self.add_new_partitions()?;
            }
            let mut backlog = false;
            let now = eddy_engine::time::now_ticks();
            for index in 0..self.inputs.len() {
                for partition in 0..self.inputs[index].next.len() {
                    let records = self.read(index, partition)?;
                    if records.is_empty() {
                        // Idle partition: let arrival time move its watermark on.
                        self.job.advance_arrival(index, partition as u32, now);
                        continue;
                    }
                    backlog |= records.len() == READ_BATCH_MAX;
                    dirty = true;
                    self.push(index, partition, &records);
                }
            }
            self.job.drain_output(&mut rows);
            if !rows.is_empty() {
                dirty = true;
                self.write_outputs(&mut rows)?;
            }
            self.publish();
            if dirty && (stopping || last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL) {
                self.checkpoint()?;
                dirty = false;
                last_checkpoint = Instant::now();
            }
            if stopping {
                return self.writer.flush();
            }
            if !backlog {
                match self.wake.recv_timeout(IDLE_TICK) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                }
            }
        }
    }

    /// Starts reading partitions added to an input stream since the job last looked, from
    /// their first record: every event of the stream reaches the job, as it does for a
    /// Kafka consumer group after CreatePartitions.
    fn add_new_partitions(&mut self) -> Result<(), ServerError> {
        for index in 0..self.inputs.len() {
            let Some(info) = self.ctx.log.stream(&self.inputs[index].stream) else {
                continue;
            };
            let known = self.inputs[index].next.len();
            if info.partitions.len() <= known {
                continue;
            }
            for partition in &info.partitions[known..] {
                subscribe(
                    &self.ctx,
                    &info.name,
                    partition.partition,
                    &self.wake_tx,
                    &self.done_rx,
                )?;
                self.inputs[index].next.push(partition.start_offset);
            }
            let total = self.inputs[index].next.len();
            self.job.declare_partitions(index, total as u32);
            tracing::info!(job = %self.name, stream = %info.name, from = known, to = total, "input partitions added");
        }
        Ok(())
    }

    /// Re-reads each reference file whose refresh interval has passed and that changed.
    /// A file that fails to load is logged and the job keeps the table it had.
    fn refresh_references(&mut self) {
        for reference in &mut self.references {
            let Some(every) = reference.refresh else {
                continue;
            };
            if reference.last_check.elapsed() < every {
                continue;
            }
            reference.last_check = Instant::now();
            match file_version(&reference.path) {
                Ok(v) if v == reference.loaded => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(job = %self.name, reference = %reference.alias, error = %e, "reference file not refreshed");
                    continue;
                }
            }
            match reference.load(&mut self.job) {
                Ok(()) => {
                    tracing::info!(job = %self.name, reference = %reference.alias, path = %reference.path.display(), "reference data reloaded")
                }
                Err(e) => {
                    tracing::warn!(job = %self.name, error = %e, "reference data kept: the changed file could not be loaded")
                }
            }
        }
    }

    fn read(&mut self, index: usize, partition: usize) -> Result<Vec<StoredRecord>, ServerError> {
        let input = &mut self.inputs[index];
        match self.ctx.log.read(
            &input.stream,
            partition as u32,
            input.next[partition],
            READ_BATCH_MAX,
        ) {
            Err(LogError::OffsetOutOfRange { start, .. }) if start > input.next[partition] => {
                // Retention removed records the job had not read: skip ahead, loudly.
                tracing::warn!(job = %self.name, stream = %input.stream, partition, from = input.next[partition], to = start,
                    "input records were removed by retention before the job read them");
                input.next[partition] = start;
                Ok(Vec::new())
            }
            result => Ok(result?),
        }
    }

    fn push(&mut self, index: usize, partition: usize, records: &[StoredRecord]) {
        let declared = self
            .ctx
            .log
            .stream(&self.inputs[index].stream)
            .map(|info| crate::http::stream_format(&info))
            .unwrap_or_default();
        for record in records {
            let arrival = Arrival::At(record.timestamp_ms.saturating_mul(10_000));
            let format = record
                .headers
                .iter()
                .find(|(k, _)| k == crate::ingest::FORMAT_HEADER)
                .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<EventFormat>().ok())
                .unwrap_or(declared);
            let extras = event_extras(record);
            let single_object = format == EventFormat::Json
                && record.value.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
            if single_object {
                self.push_event(index, partition, record, arrival, extras, &record.value);
                continue;
            }
            match decode_payload(format, &record.value) {
                Ok(events) => {
                    for event in &events {
                        self.push_event(index, partition, record, arrival, extras.clone(), event);
                    }
                }
                Err(e) => self.dead_letter(index, partition, record, &e.to_string()),
            }
        }
        if let Some(last) = records.last() {
            self.inputs[index].next[partition] = last.offset + 1;
        }
    }

    fn push_event(
        &mut self,
        index: usize,
        partition: usize,
        record: &StoredRecord,
        arrival: Arrival,
        extras: Option<Arc<EventExtras>>,
        event: &[u8],
    ) {
        match self.job.push_json_with_extras(
            index,
            partition as u32,
            record.offset,
            arrival,
            extras,
            event,
        ) {
            Ok(()) => {}
            Err(e @ (EventError::Json { .. } | EventError::NotARecord { .. })) => {
                self.dead_letter(index, partition, record, &e.to_string());
            }
            Err(e) => {
                // The engine counts it in `errors`; the event is dropped, never the job.
                tracing::debug!(job = %self.name, partition, offset = record.offset, error = %e, "event dropped");
            }
        }
    }

    /// A payload that is not events of its format: counted, logged with its offset, and
    /// appended to `<stream>-deadletter` (at least once: a replay after a crash may repeat it).
    fn dead_letter(&mut self, index: usize, partition: usize, record: &StoredRecord, reason: &str) {
        let stream = &self.inputs[index].stream;
        self.malformed += 1;
        tracing::warn!(job = %self.name, stream = %stream, partition, offset = record.offset, reason,
            "malformed event sent to the dead-letter stream");
        let letter = serde_json::json!({
            "source": "job",
            "job": self.name,
            "stream": stream,
            "partition": partition,
            "offset": record.offset,
            "reason": reason,
            "text": String::from_utf8_lossy(&record.value[..record.value.len().min(4096)]),
        });
        let dead = format!("{stream}{}", crate::DEAD_LETTER_SUFFIX);
        let appended = self.ctx.log.get_or_create_stream(&dead).and_then(|info| {
            let target = (partition as u32).min(info.partitions.len().saturating_sub(1) as u32);
            let letter = eddy_log::Record {
                timestamp_ms: crate::jobs::now_ms(),
                key: None,
                value: bytes::Bytes::from(letter.to_string()),
                headers: Vec::new(),
            };
            self.ctx.log.append(&info.name, target, &[letter])
        });
        if let Err(e) = appended {
            tracing::error!(job = %self.name, error = %e, "cannot write to the dead-letter stream");
        }
    }

    fn write_outputs(&mut self, rows: &mut Vec<OutputRow>) -> Result<(), ServerError> {
        let mut per_output: Vec<Vec<OutputRow>> =
            (0..self.sinks.len()).map(|_| Vec::new()).collect();
        for row in rows.drain(..) {
            if let Some(list) = per_output.get_mut(row.output) {
                list.push(row);
            }
        }
        for (sink, rows) in self.sinks.iter_mut().zip(&per_output) {
            if rows.is_empty() {
                continue;
            }
            sink.write(rows, &self.ctx.log, &self.ctx.store, &self.ctx.metrics)?;
        }
        Ok(())
    }

    /// Called only after the outputs of everything it covers were written: the store's
    /// write-ahead file and the files already hold them, so a crash replays, never skips.
    /// The snapshot is taken here; the writer thread puts it on disk.
    fn checkpoint(&mut self) -> Result<(), ServerError> {
        let mut header = CheckpointHeader::default();
        for input in &self.inputs {
            for (partition, next) in input.next.iter().enumerate() {
                header
                    .offsets
                    .push((input.stream.clone(), partition as u32, *next));
            }
        }
        for sink in &self.sinks {
            match sink {
                Sink::File { path, .. } => {
                    let len = std::fs::metadata(path)
                        .map_err(|e| ServerError::io(format!("stat {}", path.display()), e))?
                        .len();
                    header.file_lengths.insert(path.clone(), len);
                }
                Sink::Stream { stream, .. } => {
                    let info = self.ctx.log.stream(stream);
                    let ends = info.map(|i| i.partitions.iter().map(|p| p.end_offset).collect());
                    header
                        .stream_ends
                        .insert(stream.clone(), ends.unwrap_or_default());
                }
                Sink::Table { .. } => {}
            }
        }
        let snapshot = self
            .job
            .snapshot()
            .map_err(|e| ServerError::Engine(e.to_string()))?;
        self.writer.submit(Checkpoint { header, snapshot })
    }

    fn publish(&self) {
        let mut lag = BTreeMap::new();
        for input in &self.inputs {
            let end: Vec<u64> = match self.ctx.log.stream(&input.stream) {
                Some(info) => info.partitions.iter().map(|p| p.end_offset).collect(),
                None => Vec::new(),
            };
            let behind: u64 = input
                .next
                .iter()
                .zip(&end)
                .map(|(next, end)| end.saturating_sub(*next))
                .sum();
            *lag.entry(input.stream.clone()).or_insert(0) += behind;
        }
        let mut metrics = MetricsView::from(&self.job.metrics());
        metrics.malformed = self.malformed;
        let mut status = self.status.lock();
        status.state = JobState::Running;
        status.metrics = metrics;
        status.lag = lag;
    }
}

/// The producer's key and headers for metadata functions (`[Kafka].[Key]`, `[User].[h]`);
/// eddy's own bookkeeping headers (`eddy-…`, `eddy.…`) are left out.
fn event_extras(record: &StoredRecord) -> Option<Arc<EventExtras>> {
    let text = |b: &[u8]| -> Arc<str> { String::from_utf8_lossy(b).into() };
    let headers: Vec<(Arc<str>, Arc<str>)> = record
        .headers
        .iter()
        .filter(|(k, _)| !k.starts_with("eddy-") && !k.starts_with("eddy."))
        .map(|(k, v)| (Arc::from(k.as_str()), text(v)))
        .collect();
    if record.key.is_none() && headers.is_empty() {
        return None;
    }
    Some(Arc::new(EventExtras {
        key: record.key.as_deref().map(text),
        headers,
    }))
}

/// Wakes the job whenever `partition` of `stream` gets records, until the runner is dropped.
fn subscribe(
    ctx: &Ctx,
    stream: &str,
    partition: u32,
    wake_tx: &SyncSender<()>,
    done_rx: &tokio::sync::watch::Receiver<()>,
) -> Result<(), ServerError> {
    let mut data = ctx.log.subscribe(stream, partition)?;
    let (wake_tx, mut done_rx) = (wake_tx.clone(), done_rx.clone());
    ctx.runtime.spawn(async move {
        loop {
            tokio::select! {
                changed = data.changed() => {
                    if changed.is_err() { break; }
                    let _ = wake_tx.try_send(());
                }
                _ = done_rx.changed() => break,
            }
        }
    });
    Ok(())
}

/// Cuts a file sink back to its checkpointed length: lines past it are replayed anyway.
fn truncate_to(path: &std::path::Path, len: u64) -> Result<(), ServerError> {
    let io = |e| ServerError::io(format!("truncating {}", path.display()), e);
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(file) => {
            if file.metadata().map_err(io)?.len() > len {
                file.set_len(len).map_err(io)?;
                file.sync_all().map_err(io)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(e)),
    }
}
