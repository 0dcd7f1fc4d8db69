//! The job manager: creates, restores, lists and deletes jobs; each job runs on its own
//! thread (`runner`), writes to its sinks (`sink`) and checkpoints (`checkpoint`).

mod checkpoint;
mod runner;
mod sink;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;

use eddy_engine::{InputMetrics, Job, JobMetrics};
use eddy_log::Log;
use eddy_store::Store;
use parking_lot::Mutex;
use serde::Serialize;

use crate::metrics::Metrics;
use crate::{JobSpec, OutputTarget, ServerError};
use checkpoint::JobFile;
use runner::Runner;

pub(crate) use sink::now_ms;

/// What a job thread needs from the server.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub log: Arc<Log>,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// Runs the tasks that turn log subscriptions into wake-ups of job threads.
    pub runtime: tokio::runtime::Handle,
}

/// Lifecycle of a job as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum JobState {
    Starting,
    Running,
    Failed,
    Stopped,
}

/// The engine's counters, copied out of the job thread after each round.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct MetricsView {
    pub input: u64,
    pub output: u64,
    pub late: u64,
    pub early: u64,
    pub out_of_order: u64,
    pub adjusted: u64,
    pub dropped: u64,
    pub errors: u64,
    /// Payloads that did not decode in their format (sent to the dead-letter stream).
    pub malformed: u64,
    /// Rows stream joins hold while they may still match.
    pub join_buffered_rows: u64,
    /// Ticks (100 ns since the epoch).
    #[serde(skip)]
    pub watermark: Option<i64>,
    /// The event counters per input of the query.
    pub inputs: Vec<InputMetrics>,
}

impl From<&JobMetrics> for MetricsView {
    fn from(m: &JobMetrics) -> Self {
        MetricsView {
            input: m.input_events,
            output: m.output_events,
            late: m.late_events,
            early: m.early_events,
            out_of_order: m.out_of_order_events,
            adjusted: m.adjusted_events,
            dropped: m.dropped_events,
            errors: m.errors,
            malformed: 0,
            join_buffered_rows: m.join_buffered_rows,
            watermark: m.watermark,
            inputs: m.inputs.clone(),
        }
    }
}

/// A job's live status, written by its thread and read by the API and `/metrics`.
#[derive(Debug, Clone)]
pub(crate) struct JobStatus {
    pub state: JobState,
    pub error: Option<String>,
    pub metrics: MetricsView,
    /// Input stream → records not yet read (summed over partitions).
    pub lag: BTreeMap<String, u64>,
    pub inputs: Vec<String>,
    /// Output alias → sink description.
    pub outputs: Vec<(String, String)>,
}

impl JobStatus {
    fn new() -> Self {
        JobStatus {
            state: JobState::Starting,
            error: None,
            metrics: MetricsView::default(),
            lag: BTreeMap::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    fn failed(error: &ServerError) -> Self {
        JobStatus {
            state: JobState::Failed,
            error: Some(error.to_string()),
            ..JobStatus::new()
        }
    }
}

/// A job as listed by the API: its spec and a copy of its status.
#[derive(Debug, Clone)]
pub(crate) struct JobView {
    pub spec: JobSpec,
    pub status: JobStatus,
}

struct Entry {
    spec: JobSpec,
    status: Arc<Mutex<JobStatus>>,
    /// `None` when the job failed before its thread started.
    control: Option<Control>,
}

/// Owned by the manager's entry: how `stop` reaches the job thread.
struct Control {
    stop: Arc<AtomicBool>,
    wake: SyncSender<()>,
    thread: JoinHandle<()>,
}

impl Control {
    /// Asks the thread to write a last checkpoint and exit, and waits for it.
    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.wake.try_send(());
        if self.thread.join().is_err() {
            tracing::error!("a job thread panicked");
        }
    }
}

/// All jobs of the server, keyed by lowercase name, persisted under `<data_dir>/jobs/`.
pub(crate) struct JobManager {
    dir: PathBuf,
    ctx: Ctx,
    jobs: Mutex<BTreeMap<String, Entry>>,
}

impl JobManager {
    /// Opens `dir` and restarts every persisted job from its checkpoint. A job that cannot
    /// restart (e.g. its query no longer compiles) is listed as failed, not dropped.
    pub fn open(dir: PathBuf, ctx: Ctx) -> Result<JobManager, ServerError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| ServerError::io(format!("creating {}", dir.display()), e))?;
        let manager = JobManager {
            dir: dir.clone(),
            ctx,
            jobs: Mutex::new(BTreeMap::new()),
        };
        let listing = std::fs::read_dir(&dir)
            .map_err(|e| ServerError::io(format!("listing {}", dir.display()), e))?;
        let mut jobs = manager.jobs.lock();
        for entry in listing {
            let path = entry
                .map_err(|e| ServerError::io(format!("listing {}", dir.display()), e))?
                .path();
            if !path.is_dir() {
                continue;
            }
            let job_file = match checkpoint::read_job_file(&path) {
                Ok(job_file) => job_file,
                Err(e) => {
                    tracing::error!(dir = %path.display(), error = %e, "skipping a job directory without a readable job.json");
                    continue;
                }
            };
            let key = job_file.spec.name.to_lowercase();
            let entry = manager.start(path, job_file.clone()).unwrap_or_else(|e| {
                tracing::error!(job = %job_file.spec.name, error = %e, "job could not restart");
                Entry {
                    spec: job_file.spec,
                    status: Arc::new(Mutex::new(JobStatus::failed(&e))),
                    control: None,
                }
            });
            jobs.insert(key, entry);
        }
        drop(jobs);
        Ok(manager)
    }

    /// Validates, persists and starts a new job.
    pub fn create(&self, spec: JobSpec) -> Result<(), ServerError> {
        let options = spec.job_options()?;
        let job =
            Job::compile(&spec.query, options).map_err(|e| runner::engine_error(&spec.query, e))?;
        let mut job_file = JobFile {
            spec,
            seq_base: BTreeMap::new(),
        };
        for (output, target) in job
            .outputs()
            .iter()
            .zip(runner::resolve_targets(&job_file, job.outputs())?)
        {
            if let OutputTarget::Table { name } = target {
                let writer = runner::writer_id(&job_file.spec.name, output);
                let base = self.ctx.store.last_seq(&name, &writer).unwrap_or(0);
                job_file.seq_base.insert(output.to_lowercase(), base);
            }
        }
        let key = job_file.spec.name.to_lowercase();
        let mut jobs = self.jobs.lock();
        if jobs.contains_key(&key) {
            return Err(ServerError::JobExists(job_file.spec.name));
        }
        let dir = self.dir.join(&key);
        // A directory without an entry is what a crash during `delete` leaves behind.
        remove_dir(&dir)?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| ServerError::io(format!("creating {}", dir.display()), e))?;
        checkpoint::write_job_file(&dir, &job_file)?;
        match self.start_compiled(dir.clone(), job_file, job) {
            Ok(entry) => {
                jobs.insert(key, entry);
                Ok(())
            }
            Err(e) => {
                remove_dir(&dir)?;
                Err(e)
            }
        }
    }

    fn start(&self, dir: PathBuf, job_file: JobFile) -> Result<Entry, ServerError> {
        let options = job_file.spec.job_options()?;
        let job = Job::compile(&job_file.spec.query, options)
            .map_err(|e| runner::engine_error(&job_file.spec.query, e))?;
        self.start_compiled(dir, job_file, job)
    }

    fn start_compiled(
        &self,
        dir: PathBuf,
        job_file: JobFile,
        job: Job,
    ) -> Result<Entry, ServerError> {
        let status = Arc::new(Mutex::new(JobStatus::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (runner, wake) = Runner::prepare(
            self.ctx.clone(),
            dir,
            &job_file,
            job,
            status.clone(),
            stop.clone(),
        )?;
        let thread = std::thread::Builder::new()
            .name(format!("job-{}", job_file.spec.name))
            .spawn(move || runner.run())
            .map_err(|e| ServerError::io("spawning a job thread", e))?;
        Ok(Entry {
            spec: job_file.spec,
            status,
            control: Some(Control { stop, wake, thread }),
        })
    }

    /// Stops the job (after a last checkpoint) and removes its state. Its output stays.
    pub fn delete(&self, name: &str) -> Result<(), ServerError> {
        let key = name.to_lowercase();
        let mut jobs = self.jobs.lock();
        let entry = jobs
            .remove(&key)
            .ok_or_else(|| ServerError::JobNotFound(name.to_string()))?;
        if let Some(control) = entry.control {
            control.stop();
        }
        remove_dir(&self.dir.join(&key))
    }

    /// Every job, by name.
    pub fn list(&self) -> Vec<JobView> {
        self.jobs
            .lock()
            .values()
            .map(|e| JobView {
                spec: e.spec.clone(),
                status: e.status.lock().clone(),
            })
            .collect()
    }

    /// One job by name (case-insensitive).
    pub fn get(&self, name: &str) -> Option<JobView> {
        let jobs = self.jobs.lock();
        jobs.get(&name.to_lowercase()).map(|e| JobView {
            spec: e.spec.clone(),
            status: e.status.lock().clone(),
        })
    }

    /// Stops every job thread; each writes a final checkpoint. Jobs stay persisted.
    pub fn shutdown(&self) {
        let controls: Vec<Control> = self
            .jobs
            .lock()
            .values_mut()
            .filter_map(|e| e.control.take())
            .collect();
        for control in controls {
            control.stop();
        }
    }
}

fn remove_dir(dir: &std::path::Path) -> Result<(), ServerError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ServerError::io(format!("removing {}", dir.display()), e)),
    }
}
