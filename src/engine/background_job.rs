//! Long computations (metrics over folders, generator experiments) on their own thread, with progress and cancel.
//!
//! The coalescing model worker serves live generation and drops superseded requests, so a job that runs for
//! minutes must not queue there. A [`BackgroundJob`] owns one thread; the UI reads its progress (done / total) and
//! may cancel it through shared atomics, and the outcome arrives once over a channel, after which the thread wakes
//! the UI. A job that was cancelled reports [`JobOutcome::Cancelled`] even if its function happened to return a
//! value, so a partial result is never shown as complete.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

/// Wakes the UI (e.g. `ctx.request_repaint()`).
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// Why a job function stopped without a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// The user cancelled the job (the function noticed at a checkpoint).
    #[error("cancelled")]
    Cancelled,
    /// The computation failed; the message names the input and the reason.
    #[error("{0}")]
    Failed(String),
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome<T> {
    Finished(T),
    Cancelled,
    Failed(String),
}

/// Progress and cancel flag shared between the job thread and the UI.
#[derive(Debug, Default)]
struct Shared {
    cancel: AtomicBool,
    done: AtomicUsize,
    total: AtomicUsize,
    /// What the job is doing now ("extracting features of real images").
    stage: Mutex<String>,
}

/// The job function's handle on its progress and cancel flag.
#[derive(Clone)]
pub struct JobContext {
    shared: Arc<Shared>,
}

impl JobContext {
    /// A context not attached to any thread (for running job functions directly, e.g. in tests).
    pub fn detached() -> Self {
        Self { shared: Arc::new(Shared::default()) }
    }

    /// Starts a stage of `total` steps (progress restarts at 0).
    pub fn start_stage(&self, stage: &str, total: usize) {
        if let Ok(mut current) = self.shared.stage.lock() {
            stage.clone_into(&mut current);
        }
        self.shared.done.store(0, Ordering::Relaxed);
        self.shared.total.store(total, Ordering::Relaxed);
    }

    /// Sets the steps done in the current stage.
    pub fn set_done(&self, done: usize) {
        self.shared.done.store(done, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.shared.cancel.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancel was requested: call it between steps and return the error with `?`.
    pub fn checkpoint(&self) -> Result<(), JobError> {
        if self.is_cancelled() { Err(JobError::Cancelled) } else { Ok(()) }
    }

    /// Asks the job to stop at its next checkpoint.
    pub fn cancel(&self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
    }

    /// (stage, done, total) as last reported.
    pub fn progress(&self) -> JobProgress {
        JobProgress {
            stage: self.shared.stage.lock().map(|s| s.clone()).unwrap_or_default(),
            done: self.shared.done.load(Ordering::Relaxed),
            total: self.shared.total.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of a job's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobProgress {
    pub stage: String,
    pub done: usize,
    pub total: usize,
}

impl JobProgress {
    /// Fraction done in [0, 1] (0 while the total is unknown).
    pub fn fraction(&self) -> f32 {
        if self.total == 0 { 0.0 } else { (self.done as f32 / self.total as f32).clamp(0.0, 1.0) }
    }
}

/// A computation running on its own thread.
pub struct BackgroundJob<T> {
    context: JobContext,
    rx: Receiver<Result<T, JobError>>,
    started: Instant,
    /// The outcome was handed out; the closed channel means nothing after that.
    delivered: bool,
}

impl<T: Send + 'static> BackgroundJob<T> {
    /// Starts `work` on a new thread named `name`; `wake` is called once the outcome is ready.
    pub fn spawn(
        name: &str,
        wake: Wake,
        work: impl FnOnce(&JobContext) -> Result<T, JobError> + Send + 'static,
    ) -> std::io::Result<Self> {
        let context = JobContext::detached();
        let (tx, rx) = crossbeam_channel::bounded(1);
        let thread_context = context.clone();
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            let result = work(&thread_context);
            // The receiver may be gone (the panel dropped the job); nothing is waiting then.
            tx.send(result).ok();
            wake();
        })?;
        Ok(Self { context, rx, started: Instant::now(), delivered: false })
    }
}

impl<T> BackgroundJob<T> {
    /// Asks the job to stop at its next checkpoint; it then reports [`JobOutcome::Cancelled`].
    pub fn cancel(&self) {
        self.context.cancel();
    }

    pub fn is_cancel_requested(&self) -> bool {
        self.context.is_cancelled()
    }

    pub fn progress(&self) -> JobProgress {
        self.context.progress()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The outcome once the job ended (handed out once: later calls return `None`), or `None` while it runs.
    pub fn poll(&mut self) -> Option<JobOutcome<T>> {
        if self.delivered {
            return None;
        }
        let outcome = match self.rx.try_recv() {
            Ok(result) => self.judge(result),
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => Self::vanished(),
        };
        self.delivered = true;
        Some(outcome)
    }

    /// Blocks until the job ends or `timeout` passes (for tests and shutdown; the UI polls instead).
    pub fn wait(&mut self, timeout: Duration) -> Option<JobOutcome<T>> {
        if self.delivered {
            return None;
        }
        let outcome = match self.rx.recv_timeout(timeout) {
            Ok(result) => self.judge(result),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => return None,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Self::vanished(),
        };
        self.delivered = true;
        Some(outcome)
    }

    fn vanished() -> JobOutcome<T> {
        JobOutcome::Failed("the job's thread stopped without an answer (it panicked)".to_owned())
    }

    fn judge(&self, result: Result<T, JobError>) -> JobOutcome<T> {
        match result {
            // A value that arrives after cancel may have skipped work the function never checked: drop it.
            Ok(_) if self.context.is_cancelled() => JobOutcome::Cancelled,
            Ok(value) => JobOutcome::Finished(value),
            Err(JobError::Cancelled) => JobOutcome::Cancelled,
            Err(JobError::Failed(message)) => JobOutcome::Failed(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn no_wake() -> Wake {
        Arc::new(|| {})
    }

    /// Counts to `steps`, one checkpoint per step, sleeping `step_ms` each; returns the count reached.
    fn counting_job(steps: usize, step_ms: u64, reached: Arc<AtomicUsize>) -> BackgroundJob<usize> {
        BackgroundJob::spawn("test-job", no_wake(), move |context| {
            context.start_stage("counting", steps);
            for step in 0..steps {
                context.checkpoint()?;
                std::thread::sleep(Duration::from_millis(step_ms));
                reached.store(step + 1, Ordering::SeqCst);
                context.set_done(step + 1);
            }
            Ok(steps)
        })
        .unwrap()
    }

    #[test]
    fn a_finished_job_reports_its_value_and_full_progress() {
        let woken = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&woken);
        let mut job = BackgroundJob::spawn(
            "test-job",
            Arc::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
            |context| {
                context.start_stage("adding", 3);
                let mut sum = 0;
                for i in 1..=3 {
                    context.checkpoint()?;
                    sum += i;
                    context.set_done(i);
                }
                Ok(sum)
            },
        )
        .unwrap();
        assert_eq!(job.wait(Duration::from_secs(10)), Some(JobOutcome::Finished(6)));
        assert_eq!(job.progress(), JobProgress { stage: "adding".to_owned(), done: 3, total: 3 });
        assert_eq!(job.progress().fraction(), 1.0);
        assert_eq!(woken.load(Ordering::SeqCst), 1, "the UI is woken once");
        assert_eq!(job.poll(), None, "the outcome is handed out once");
    }

    #[test]
    fn a_cancelled_job_stops_early_and_reports_cancelled() {
        let reached = Arc::new(AtomicUsize::new(0));
        let mut job = counting_job(10_000, 1, Arc::clone(&reached));
        while job.progress().done < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        job.cancel();
        assert!(job.is_cancel_requested());
        assert_eq!(job.wait(Duration::from_secs(10)), Some(JobOutcome::Cancelled));
        let stopped_at = reached.load(Ordering::SeqCst);
        assert!(stopped_at < 10_000, "the job ran to the end: {stopped_at}");
        assert!(job.progress().done < job.progress().total);
    }

    #[test]
    fn a_value_returned_after_cancel_is_not_reported_as_complete() {
        // This function ignores the cancel flag and returns a "result" anyway.
        let mut job = BackgroundJob::spawn("test-job", no_wake(), |context| {
            while !context.is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok("partial")
        })
        .unwrap();
        job.cancel();
        assert_eq!(job.wait(Duration::from_secs(10)), Some(JobOutcome::Cancelled));
    }

    #[test]
    fn failures_and_panics_are_reported() {
        let mut failing =
            BackgroundJob::<()>::spawn("test-job", no_wake(), |_| Err(JobError::Failed("bad folder".to_owned())))
                .unwrap();
        assert_eq!(failing.wait(Duration::from_secs(10)), Some(JobOutcome::Failed("bad folder".to_owned())));
        let mut panicking = BackgroundJob::<()>::spawn("test-job", no_wake(), |_| panic!("boom")).unwrap();
        assert!(matches!(panicking.wait(Duration::from_secs(10)), Some(JobOutcome::Failed(_))));
    }
}
