//! A write the UI hands to a helper thread (an export of files), and its outcome reported to the UI once: the one
//! way exporters keep disk work off the UI thread.

use crossbeam_channel::{Receiver, Sender};

/// What a finished write says: the status line's message, or the error naming the file.
pub type WriteOutcome = Result<String, String>;

/// Writes run on named helper threads; each outcome is returned once by [`BackgroundWrite::take_outcome`].
pub struct BackgroundWrite {
    /// A helper thread is writing and has not reported yet.
    writing: bool,
    done_tx: Sender<WriteOutcome>,
    done_rx: Receiver<WriteOutcome>,
}

impl Default for BackgroundWrite {
    fn default() -> Self {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        Self { writing: false, done_tx, done_rx }
    }
}

impl BackgroundWrite {
    /// Runs `write` on a thread named `thread_name` and wakes the UI when it is done. `what` names the work in the
    /// error when no thread can be started ("the heatmap export").
    pub fn spawn(
        &mut self,
        ctx: &egui::Context,
        thread_name: &str,
        what: &str,
        write: impl FnOnce() -> WriteOutcome + Send + 'static,
    ) {
        let (tx, ctx) = (self.done_tx.clone(), ctx.clone());
        let spawned = std::thread::Builder::new().name(thread_name.to_owned()).spawn(move || {
            tx.send(write()).ok();
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => self.writing = true,
            Err(e) => self.report(Err(format!("cannot start {what}: {e}"))),
        }
    }

    /// Reports `outcome` as if a write had ended with it (a dialog that could not open, nothing left to write).
    pub fn report(&self, outcome: WriteOutcome) {
        // The receiver lives as long as `self`: the send cannot fail.
        self.done_tx.send(outcome).ok();
    }

    /// Whether a write is running.
    pub fn is_writing(&self) -> bool {
        self.writing
    }

    /// The next outcome not yet taken, if any. Call once per frame.
    pub fn take_outcome(&mut self) -> Option<WriteOutcome> {
        let outcome = self.done_rx.try_recv().ok();
        if outcome.is_some() {
            self.writing = false;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for_outcome(write: &mut BackgroundWrite) -> Option<WriteOutcome> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Some(outcome) = write.take_outcome() {
                return Some(outcome);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        None
    }

    #[test]
    fn a_write_is_reported_once_and_ends_the_writing_state() {
        let mut write = BackgroundWrite::default();
        let ctx = egui::Context::default();
        let (go_tx, go_rx) = crossbeam_channel::bounded::<()>(0);
        write.spawn(&ctx, "test-write", "the test write", move || {
            go_rx.recv().ok();
            Ok("written".to_owned())
        });
        assert!(write.is_writing());
        assert_eq!(write.take_outcome(), None, "not done before the thread ends");
        go_tx.send(()).unwrap();
        assert_eq!(wait_for_outcome(&mut write), Some(Ok("written".to_owned())));
        assert!(!write.is_writing());
        assert_eq!(write.take_outcome(), None, "reported once");
    }

    #[test]
    fn a_reported_error_comes_back_without_a_thread() {
        let mut write = BackgroundWrite::default();
        write.report(Err("no dialog".to_owned()));
        assert!(!write.is_writing());
        assert_eq!(write.take_outcome(), Some(Err("no dialog".to_owned())));
    }
}
