//! The inference worker: a dedicated thread that owns the runner, takes stamped requests, keeps only the newest
//! per key, and wakes the UI when a result is ready. The UI thread never waits on it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::engine::compute_pool::run_on_compute_pool;
use crate::engine::job_runner::JobRunner;
use crate::engine::request::{JobKey, Request, Response, Stamp, Timings};

/// What the worker is doing now, for the status bar.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum WorkerActivity {
    #[default]
    Idle,
    Running {
        key: JobKey,
        started: Instant,
    },
    Stopped,
}

/// Shared, cheaply readable worker state.
#[derive(Clone, Debug, Default)]
pub struct WorkerStatus {
    pub activity: WorkerActivity,
    /// Run time of the last finished job.
    pub last_run_ms: Option<f64>,
    pub device_label: String,
    /// Jobs dropped because a newer request of the same key arrived first.
    pub coalesced_count: u64,
}

/// Called when a result is ready (the app passes `ctx.request_repaint()`).
pub type WakeUi = Arc<dyn Fn() + Send + Sync>;

struct Envelope {
    stamp: Stamp,
    queued_at: Instant,
    request: Request,
}

/// The UI's end of the worker.
pub struct WorkerHandle {
    requests: Sender<Envelope>,
    responses: Receiver<Response>,
    status: Arc<Mutex<WorkerStatus>>,
    next_stamp: AtomicU64,
}

fn lock(status: &Mutex<WorkerStatus>) -> MutexGuard<'_, WorkerStatus> {
    // A panic inside a job must not take the status bar down with it.
    status.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl WorkerHandle {
    /// Starts the worker thread with `runner`.
    pub fn spawn(runner: impl JobRunner, wake_ui: WakeUi) -> std::io::Result<Self> {
        let (request_tx, request_rx) = crossbeam_channel::unbounded();
        let (response_tx, response_rx) = crossbeam_channel::unbounded();
        let status =
            Arc::new(Mutex::new(WorkerStatus { device_label: runner.device_label(), ..WorkerStatus::default() }));
        let worker_status = Arc::clone(&status);
        std::thread::Builder::new()
            .name("thorax-worker".to_owned())
            .spawn(move || worker_loop(runner, &request_rx, &response_tx, &worker_status, &wake_ui))?;
        Ok(Self { requests: request_tx, responses: response_rx, status, next_stamp: AtomicU64::new(1) })
    }

    /// Queues a request and returns its stamp at once.
    pub fn submit(&self, request: Request) -> Stamp {
        let stamp = Stamp(self.next_stamp.fetch_add(1, Ordering::Relaxed));
        let envelope = Envelope { stamp, queued_at: Instant::now(), request };
        if self.requests.send(envelope).is_err() {
            lock(&self.status).activity = WorkerActivity::Stopped;
        }
        stamp
    }

    /// All responses that have arrived, without waiting.
    pub fn poll(&self) -> Vec<Response> {
        self.responses.try_iter().collect()
    }

    /// Waits up to `timeout` for one response (for the CLI and tests, never the UI thread).
    pub fn wait(&self, timeout: Duration) -> Option<Response> {
        self.responses.recv_timeout(timeout).ok()
    }

    pub fn status(&self) -> WorkerStatus {
        lock(&self.status).clone()
    }
}

fn worker_loop(
    mut runner: impl JobRunner,
    requests: &Receiver<Envelope>,
    responses: &Sender<Response>,
    status: &Mutex<WorkerStatus>,
    wake_ui: &WakeUi,
) {
    let mut pending: BTreeMap<JobKey, Envelope> = BTreeMap::new();
    loop {
        if pending.is_empty() {
            // Nothing to do: sleep until a request arrives or the UI goes away.
            match requests.recv() {
                Ok(envelope) => {
                    pending.insert(envelope.request.key(), envelope);
                }
                Err(_) => break,
            }
        }
        // Drain everything queued so far, keeping the newest request per key.
        let mut disconnected = false;
        loop {
            match requests.try_recv() {
                Ok(envelope) => {
                    if pending.insert(envelope.request.key(), envelope).is_some() {
                        lock(status).coalesced_count += 1;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    disconnected = true;
                    break;
                }
            }
        }
        if disconnected {
            break;
        }
        let Some((key, envelope)) = pending.pop_first() else {
            continue;
        };
        let started = Instant::now();
        lock(status).activity = WorkerActivity::Running { key, started };
        wake_ui();
        let request = envelope.request;
        let result = run_on_compute_pool(|| runner.run(request));
        let run_ms = started.elapsed().as_secs_f64() * 1e3;
        {
            let mut status = lock(status);
            status.activity = WorkerActivity::Idle;
            status.last_run_ms = Some(run_ms);
        }
        let response = Response {
            key,
            stamp: envelope.stamp,
            timings: Timings { queued_ms: started.duration_since(envelope.queued_at).as_secs_f64() * 1e3, run_ms },
            result,
        };
        if responses.send(response).is_err() {
            break;
        }
        wake_ui();
    }
    lock(status).activity = WorkerActivity::Stopped;
}
