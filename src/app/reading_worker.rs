//! The reading session's database work, off the UI thread. While a reader reads, a worker thread owns the
//! `ReadingSession`: the reading screen sends it requests (answer, go back, pause, resume, checkpoint, leave) over a
//! channel, the worker handles them in order and replies, waking the UI with `request_repaint`. A synced commit takes
//! 0.4 ms on a local disk but 100s of ms on a network share or USB stick, where it would freeze every frame.
//!
//! Times travel with the requests (the moment the reader pressed the key, the moment a case appeared), so the time a
//! request waits in the queue or on the disk is never reading time. Leaving hands the session back through the reply
//! channel after every request queued before it; dropping the worker (closing the study, quitting) also lets it
//! finish its queue, waiting at most `SHUTDOWN_WAIT`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::study::{Answer, CaseForDisplay, CaseToken, ReadingSession, SubmitReceipt};

/// The longest a closing study or a quitting app waits for the worker to store what is queued. A queue holds at
/// most an answer, a pause and a few clock checkpoints: three or four commits, well under this even at a second a
/// commit. A worker still busy after it keeps running (a commit is atomic), but is no longer waited for.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// A case to show, `None` once every case is answered, or why it could not be read.
pub type CaseOutcome = Result<Option<CaseForDisplay>, String>;

/// Work for the worker, handled in the order sent.
pub enum WorkerRequest {
    /// Resumes the reader's clock and reads the case to show (the reading screen opens).
    Start,
    /// Stores the answer given at `answered_at`, then reads the next case unless practice feedback is due.
    Submit { token: CaseToken, answer: Answer, answered_at: Instant },
    /// Reads the case to show now (after practice feedback).
    Next,
    /// Goes back one case; the case left stops its clock at `asked_at`.
    Back { asked_at: Instant },
    /// The case of `token` appeared on screen at `shown_at`: its clock runs from then.
    Shown { token: CaseToken, shown_at: Instant },
    /// Stops the clock at `asked_at`.
    Pause { asked_at: Instant },
    /// Restarts the clock at `asked_at`.
    Resume { asked_at: Instant },
    /// Writes the clock if a checkpoint is due; a failure is only logged.
    CheckpointClock,
    /// Runs a closure on the session in order with the other requests (tests and tools: a setting, a size cap).
    WithSession(Box<dyn FnOnce(&mut ReadingSession) + Send>),
    /// Pauses the clock at `asked_at`, hands the session back and ends the worker.
    Leave { asked_at: Instant },
}

/// What the worker reports.
pub enum WorkerReply {
    /// From `Start` and `Next`.
    Case(CaseOutcome),
    /// The answer is on disk; `next` is the next case, or `None` when practice feedback is shown first.
    Submitted { receipt: SubmitReceipt, next: Option<CaseOutcome> },
    /// The answer was not stored (the error names the study file and the reason); nothing changed.
    SubmitFailed(String),
    /// From `Back`: the case gone back to, `None` at the first case of the block.
    Back(CaseOutcome),
    /// A pause or resume could not be written.
    ClockFailed(String),
    /// After `Leave`: the session, with everything queued before it done. The worker has ended.
    Left(Box<ReadingSession>),
}

/// The UI's handle on the worker thread that holds a reader's session.
pub struct ReadingWorker {
    /// `None` once dropped: the worker then drains its queue and ends.
    requests: Option<Sender<WorkerRequest>>,
    replies: Receiver<WorkerReply>,
    thread: Option<JoinHandle<()>>,
    /// A checkpoint request is queued and not yet handled: the UI asks every frame, the queue needs one.
    checkpoint_queued: Arc<AtomicBool>,
}

impl ReadingWorker {
    /// Starts a worker that owns `session` for `reader`. When no thread can be started the session is lost (it is
    /// closed, nothing unsaved is in it) and the error says so.
    pub fn spawn(session: ReadingSession, reader: &str, ctx: &egui::Context) -> Result<Self, String> {
        let (request_tx, request_rx) = crossbeam_channel::unbounded();
        let (reply_tx, reply_rx) = crossbeam_channel::unbounded();
        let checkpoint_queued = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            session,
            reader: reader.to_owned(),
            replies: reply_tx,
            ctx: ctx.clone(),
            checkpoint_queued: Arc::clone(&checkpoint_queued),
        };
        let thread = std::thread::Builder::new()
            .name("reading-session".to_owned())
            .spawn(move || worker.run(&request_rx))
            .map_err(|e| format!("cannot start the reading session's worker thread ({e}); open the study again"))?;
        Ok(Self { requests: Some(request_tx), replies: reply_rx, thread: Some(thread), checkpoint_queued })
    }

    /// Queues `request`. A worker that has ended (after `Leave`) takes no more; the request is dropped.
    pub fn send(&self, request: WorkerRequest) {
        if let Some(requests) = &self.requests
            && requests.send(request).is_err()
        {
            log::warn!("the reading session's worker has ended; a request was dropped");
        }
    }

    /// Asks for a clock checkpoint unless one is already queued (the session decides whether one is due).
    pub fn checkpoint_clock(&self) {
        if !self.checkpoint_queued.swap(true, Ordering::AcqRel) {
            self.send(WorkerRequest::CheckpointClock);
        }
    }

    /// The next reply, if one has come. Call every frame.
    pub fn try_reply(&self) -> Option<WorkerReply> {
        self.replies.try_recv().ok()
    }

    /// Waits up to `limit` for the next reply (closing a study, where waiting is the point).
    pub fn reply_within(&self, limit: Duration) -> Option<WorkerReply> {
        self.replies.recv_timeout(limit).ok()
    }
}

impl Drop for ReadingWorker {
    /// Lets the worker finish every queued request (an answer in flight is stored), waiting at most `SHUTDOWN_WAIT`.
    fn drop(&mut self) {
        self.requests = None;
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                log::error!(
                    "the reading session's worker is still writing after {} s; not waiting for it any longer",
                    SHUTDOWN_WAIT.as_secs()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if thread.join().is_err() {
            log::error!("the reading session's worker panicked");
        }
    }
}

/// The worker thread's side: the session and where replies go.
struct Worker {
    session: ReadingSession,
    reader: String,
    replies: Sender<WorkerReply>,
    ctx: egui::Context,
    checkpoint_queued: Arc<AtomicBool>,
}

impl Worker {
    /// Handles requests until `Leave`, or until the UI drops its sender and the queue is empty.
    fn run(mut self, requests: &Receiver<WorkerRequest>) {
        while let Ok(request) = requests.recv() {
            if let WorkerRequest::Leave { asked_at } = request {
                if let Err(e) = self.session.pause_at(&self.reader, asked_at) {
                    log::error!("cannot pause the reading session: {e}");
                }
                let Self { session, replies, ctx, .. } = self;
                // The UI may be gone (quitting): the session then closes here.
                replies.send(WorkerReply::Left(Box::new(session))).ok();
                ctx.request_repaint();
                return;
            }
            if let Some(reply) = self.handle(request) {
                self.replies.send(reply).ok();
                self.ctx.request_repaint();
            }
        }
    }

    fn next_case(&mut self) -> CaseOutcome {
        self.session.next_case(&self.reader).map_err(|e| e.to_string())
    }

    fn handle(&mut self, request: WorkerRequest) -> Option<WorkerReply> {
        let reader = self.reader.as_str();
        match request {
            WorkerRequest::Start => {
                if let Err(e) = self.session.resume(reader) {
                    return Some(WorkerReply::Case(Err(e.to_string())));
                }
                Some(WorkerReply::Case(self.next_case()))
            }
            WorkerRequest::Submit { token, answer, answered_at } => {
                match self.session.submit_at(reader, token, &answer, answered_at) {
                    Ok(receipt) => {
                        let next = receipt.practice_feedback.is_none().then(|| self.next_case());
                        Some(WorkerReply::Submitted { receipt, next })
                    }
                    Err(e) => Some(WorkerReply::SubmitFailed(e.to_string())),
                }
            }
            WorkerRequest::Next => Some(WorkerReply::Case(self.next_case())),
            WorkerRequest::Back { asked_at } => {
                Some(WorkerReply::Back(self.session.go_back_at(reader, asked_at).map_err(|e| e.to_string())))
            }
            WorkerRequest::Shown { token, shown_at } => {
                self.session.case_shown(reader, token, shown_at);
                None
            }
            WorkerRequest::Pause { asked_at } => {
                self.session.pause_at(reader, asked_at).err().map(|e| WorkerReply::ClockFailed(e.to_string()))
            }
            WorkerRequest::Resume { asked_at } => {
                self.session.resume_at(reader, asked_at).err().map(|e| WorkerReply::ClockFailed(e.to_string()))
            }
            WorkerRequest::CheckpointClock => {
                self.checkpoint_queued.store(false, Ordering::Release);
                // A failed checkpoint costs only crash protection; the next answer's write reports a real problem.
                if let Err(e) = self.session.checkpoint_clock(reader) {
                    log::warn!("cannot checkpoint the reading clock: {e}");
                }
                None
            }
            WorkerRequest::WithSession(run) => {
                run(&mut self.session);
                None
            }
            // Handled by `run`, which ends the worker.
            WorkerRequest::Leave { .. } => None,
        }
    }
}
