//! The reading session a UI drives case by case: `next_case` gives pixels and an opaque token, `submit` stores the
//! answer durably before it returns, `progress` says "case k of n", `pause`/`resume` stop and restart the clock.
//! The clock of the case on screen is checkpointed in the study file (when the case is shown, on pause and resume,
//! and from `checkpoint_clock`, which a UI calls every second or so), so after a crash the case resumes with the
//! time read so far, less at most one checkpoint interval, and its answer says that its time spans a restart.
//! Reading time is kept per case: a reader who goes back (where the study allows it) and returns goes on with the
//! time already read on the case left, and an answer's time is all the time spent on its case up to that answer, so
//! a revised answer's time includes the first answer's and that of every visit since.
//! Nothing here tells the screen where a case came from: the truth is only revealed for practice cases, after the
//! answer, when the study asks for practice feedback.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::answer::Answer;
use super::design::{Provenance, StudyDesign};
use super::display::DisplayImage;
use super::error::{StudyError, StudyResult};
use super::store::{OrderEntry, StoredCaseClock, StudyStore};

/// How often `checkpoint_clock` writes the clock of a case being read. A crash loses at most this much reading time
/// plus the time between two calls (the reading screen calls every second).
pub const CLOCK_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// Opaque handle of the case on screen; hand it back to `submit`. It carries a position in the reader's own
/// order and nothing about the case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CaseToken {
    position: u32,
}

/// Practice cases come first and get feedback; main cases are the study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadingPhase {
    /// Practice cases, excluded from statistics.
    Practice,
    /// The study's cases.
    Main,
}

/// "Case k of n" of the current phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CaseProgress {
    /// Phase of the case on screen.
    pub phase: ReadingPhase,
    /// 1-based number of the case in its phase.
    pub case_number: u32,
    /// Cases in the phase.
    pub case_count: u32,
}

/// Everything the reading screen may know about a case.
#[derive(Clone, Debug)]
pub struct CaseForDisplay {
    /// Pass back to `submit`.
    pub token: CaseToken,
    /// The pixels.
    pub image: DisplayImage,
    /// "Case k of n".
    pub progress: CaseProgress,
    /// The reader's earlier answer when they went back to this case (only in studies that allow it).
    pub previous_answer: Option<Answer>,
}

/// The truth of a practice case, shown after the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PracticeFeedback {
    /// What the case really was.
    pub truth: Provenance,
    /// Whether the call was right.
    pub call_correct: bool,
}

/// What `submit` returns once the answer is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubmitReceipt {
    /// Id of the stored answer (increasing).
    pub answer_id: i64,
    /// Feedback for practice cases when the study gives it.
    pub practice_feedback: Option<PracticeFeedback>,
}

/// A reader's overall progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReaderProgress {
    /// Practice cases answered.
    pub practice_answered: u32,
    /// Practice cases in the study.
    pub practice_count: u32,
    /// Main cases answered.
    pub main_answered: u32,
    /// Main cases in the study.
    pub main_count: u32,
    /// Whether every case is answered.
    pub finished: bool,
    /// Whether the reader has begun: an answer, or reading time kept for a case seen but not answered.
    pub started: bool,
    /// Whether the clock is paused.
    pub paused: bool,
}

/// Reading-clock state of the case a reader is on.
struct CaseClock {
    position: u32,
    active_ms_before: u64,
    running_since: Option<Instant>,
    /// Part of the time was read in an earlier session (resumed from the study file): the reading spans a restart.
    resumed_after_restart: bool,
    /// When the clock was last written to the study file (or tried to be), to throttle `checkpoint_clock`.
    checkpoint_attempted_at: Option<Instant>,
}

impl CaseClock {
    /// A running clock that starts at `active_ms_before` (0 for a case shown for the first time).
    fn start(position: u32, active_ms_before: u64, resumed_after_restart: bool) -> Self {
        Self {
            position,
            active_ms_before,
            running_since: Some(Instant::now()),
            resumed_after_restart,
            checkpoint_attempted_at: None,
        }
    }

    fn elapsed_ms(&self) -> u64 {
        self.elapsed_ms_at(Instant::now())
    }

    /// The time read up to `at` (a moment the UI saw, which a worker thread may handle later).
    fn elapsed_ms_at(&self, at: Instant) -> u64 {
        let running = self
            .running_since
            .map_or(0, |since| u64::try_from(at.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX));
        self.active_ms_before.saturating_add(running)
    }

    fn pause_at(&mut self, at: Instant) {
        self.active_ms_before = self.elapsed_ms_at(at);
        self.running_since = None;
    }

    fn resume_at(&mut self, at: Instant) {
        if self.running_since.is_none() {
            self.running_since = Some(at);
        }
    }
}

/// Reading time of a case that is not on screen.
#[derive(Clone, Copy, Debug, Default)]
struct KeptTime {
    active_ms: u64,
    spans_restart: bool,
}

/// Per-reader state that lives only as long as the session (a crash resets it to the first unanswered case, whose
/// clock resumes from its checkpoint).
#[derive(Default)]
struct ReaderState {
    clock: Option<CaseClock>,
    /// Exact reading time of the cases left during this session without an answer since (the study file holds the
    /// same time, but cannot tell whether it was read in this session).
    left: HashMap<u32, KeptTime>,
    /// Position the reader went back to, when the study allows it.
    back_cursor: Option<u32>,
    paused: bool,
}

/// A blinded reading session over one study file (one process holds it at a time).
pub struct ReadingSession {
    store: StudyStore,
    design: StudyDesign,
    readers: HashMap<String, ReaderState>,
    clock_checkpoint_interval: Duration,
}

impl ReadingSession {
    /// Opens the study for reading.
    pub fn open(path: &Path) -> StudyResult<Self> {
        let mut store = StudyStore::open(path)?;
        let design = store.design()?;
        store.log_event(None, "session_open")?;
        Ok(Self { store, design, readers: HashMap::new(), clock_checkpoint_interval: CLOCK_CHECKPOINT_INTERVAL })
    }

    /// Changes how often `checkpoint_clock` writes (`CLOCK_CHECKPOINT_INTERVAL` unless changed; tests shorten it).
    pub fn set_clock_checkpoint_interval(&mut self, interval: Duration) {
        self.clock_checkpoint_interval = interval;
    }

    /// The study's design (questions, scale, flags) so the UI can lay out its answer widgets.
    pub fn design(&self) -> &StudyDesign {
        &self.design
    }

    /// Reader ids of the study.
    pub fn reader_ids(&self) -> &[String] {
        &self.design.readers
    }

    fn check_reader(&self, reader: &str) -> StudyResult<()> {
        if self.design.readers.iter().any(|known| known == reader) {
            Ok(())
        } else {
            Err(StudyError::UnknownReader { reader: reader.to_owned() })
        }
    }

    /// Position of the case the reader is on: the back cursor, else the first unanswered position.
    fn current_entry(&self, reader: &str) -> StudyResult<Option<(OrderEntry, Vec<OrderEntry>)>> {
        let order = self.store.reader_order(reader)?;
        let answered = self.store.answered_positions(reader)?;
        let cursor = self.readers.get(reader).and_then(|state| state.back_cursor);
        let position = match cursor {
            Some(position) => Some(position),
            None => order.iter().map(|entry| entry.position).find(|position| answered.binary_search(position).is_err()),
        };
        let Some(entry) = position.and_then(|position| order.iter().find(|entry| entry.position == position)) else {
            return Ok(None);
        };
        Ok(Some((entry.clone(), order)))
    }

    fn progress_of(entry: &OrderEntry, order: &[OrderEntry]) -> CaseProgress {
        let same_phase = order.iter().filter(|other| other.practice == entry.practice);
        let case_count = u32::try_from(same_phase.clone().count()).unwrap_or(u32::MAX);
        let before = same_phase.filter(|other| other.position < entry.position).count();
        CaseProgress {
            phase: if entry.practice { ReadingPhase::Practice } else { ReadingPhase::Main },
            case_number: u32::try_from(before + 1).unwrap_or(u32::MAX),
            case_count,
        }
    }

    /// Shows the case at `entry`; the case left for it stops reading at `left_at`.
    fn display(
        &mut self,
        reader: &str,
        entry: &OrderEntry,
        order: &[OrderEntry],
        left_at: Instant,
    ) -> StudyResult<CaseForDisplay> {
        let image = self.store.display_image(&entry.case_id)?;
        let previous_answer = self.store.latest_answer(reader, entry.position)?;
        let keep_clock = self
            .readers
            .get(reader)
            .and_then(|state| state.clock.as_ref())
            .is_some_and(|clock| clock.position == entry.position);
        let mut clock_changed = !keep_clock;
        if !keep_clock {
            self.leave_case(reader, left_at)?;
            let kept = self.kept_time(reader, entry.position)?;
            let state = self.readers.entry(reader.to_owned()).or_default();
            // From now on the clock holds the case's time (and an answer will).
            state.left.remove(&entry.position);
            state.clock = Some(CaseClock::start(entry.position, kept.active_ms, kept.spans_restart));
        }
        let state = self.readers.entry(reader.to_owned()).or_default();
        // Showing a case means reading has resumed.
        let was_paused = state.paused;
        if state.paused {
            state.paused = false;
            if let Some(clock) = state.clock.as_mut() {
                clock.resume_at(Instant::now());
            }
            clock_changed = true;
        }
        if clock_changed {
            self.save_clock(reader)?;
        }
        if was_paused {
            self.store.log_event(Some(reader), "resume")?;
        }
        Ok(CaseForDisplay {
            token: CaseToken { position: entry.position },
            image,
            progress: Self::progress_of(entry, order),
            previous_answer,
        })
    }

    /// Stops the clock of the case the reader is leaving for another and keeps its time, in the session and in the
    /// study file, for when the reader comes back to it.
    fn leave_case(&mut self, reader: &str, at: Instant) -> StudyResult<()> {
        let Some(state) = self.readers.get_mut(reader) else {
            return Ok(());
        };
        let Some(clock) = state.clock.take() else {
            return Ok(());
        };
        let kept = KeptTime { active_ms: clock.elapsed_ms_at(at), spans_restart: clock.resumed_after_restart };
        state.left.insert(clock.position, kept);
        self.store.save_case_clock(reader, &StoredCaseClock { position: clock.position, active_ms: kept.active_ms })
    }

    /// The reading time a case shown again starts from: what this session kept when the reader left it, else the
    /// study file's kept time (an earlier session's, so the reading spans a restart: the time read before a crash
    /// counts, the time the station was down does not), else the case's latest answer time, else 0. A kept time
    /// below the answer's (a merge can leave one) gives way to the answer's.
    fn kept_time(&self, reader: &str, position: u32) -> StudyResult<KeptTime> {
        if let Some(kept) = self.readers.get(reader).and_then(|state| state.left.get(&position)) {
            return Ok(*kept);
        }
        let stored = self
            .store
            .case_clock(reader, position)?
            .map(|clock| KeptTime { active_ms: clock.active_ms, spans_restart: true });
        let answered = self
            .store
            .latest_answer_time(reader, position)?
            .map(|(active_ms, spans_restart)| KeptTime { active_ms, spans_restart });
        Ok(match (stored, answered) {
            (Some(stored), Some(answered)) if answered.active_ms > stored.active_ms => answered,
            (Some(kept), _) | (None, Some(kept)) => kept,
            (None, None) => KeptTime::default(),
        })
    }

    /// The case the reader should read now, or `None` when the reader has answered everything.
    /// Calling it again without submitting returns the same case and keeps its clock running.
    pub fn next_case(&mut self, reader: &str) -> StudyResult<Option<CaseForDisplay>> {
        self.check_reader(reader)?;
        let Some((entry, order)) = self.current_entry(reader)? else {
            return Ok(None);
        };
        self.display(reader, &entry, &order, Instant::now()).map(Some)
    }

    /// Tells the session when the case of `token` appeared on screen: its clock runs from then, not from when
    /// `next_case` or `go_back` read it, so the time a slow study file (or a worker's queue) took to deliver the case
    /// is not reading time. Ignored for a case that is not current, a paused clock, or a moment before the clock
    /// started. Writes nothing.
    pub fn case_shown(&mut self, reader: &str, token: CaseToken, shown_at: Instant) {
        let clock = self.readers.get_mut(reader).and_then(|state| state.clock.as_mut());
        if let Some(clock) = clock.filter(|clock| clock.position == token.position)
            && let Some(since) = clock.running_since
            && shown_at > since
        {
            clock.running_since = Some(shown_at);
        }
    }

    /// Goes back one case within the same phase (only when the study allows it); `None` at the first case.
    pub fn go_back(&mut self, reader: &str) -> StudyResult<Option<CaseForDisplay>> {
        self.go_back_at(reader, Instant::now())
    }

    /// `go_back`, with the case left stopping its clock at `asked_at` (when the reader asked, not when a worker
    /// got to it).
    pub fn go_back_at(&mut self, reader: &str, asked_at: Instant) -> StudyResult<Option<CaseForDisplay>> {
        self.check_reader(reader)?;
        if !self.design.allow_back {
            return Err(StudyError::BackNotAllowed);
        }
        let order = self.store.reader_order(reader)?;
        let current = match self.current_entry(reader)? {
            Some((entry, _)) => entry.position,
            None => u32::try_from(order.len()).unwrap_or(u32::MAX),
        };
        let current_practice = order.iter().find(|entry| entry.position == current).map(|entry| entry.practice);
        let Some(previous) =
            current.checked_sub(1).and_then(|position| order.iter().find(|entry| entry.position == position))
        else {
            return Ok(None);
        };
        // Practice and main cases are separate blocks: never go back from the study into practice.
        if current_practice.is_some_and(|practice| practice != previous.practice) {
            return Ok(None);
        }
        let previous = previous.clone();
        self.readers.entry(reader.to_owned()).or_default().back_cursor = Some(previous.position);
        self.display(reader, &previous, &order, asked_at).map(Some)
    }

    /// Stores the answer for the case of `token`. When this returns `Ok`, the answer is on disk.
    /// On `Err` nothing changed: the same case is still current and the answer can be submitted again.
    pub fn submit(&mut self, reader: &str, token: CaseToken, answer: &Answer) -> StudyResult<SubmitReceipt> {
        self.submit_at(reader, token, answer, Instant::now())
    }

    /// `submit`, with the answer's reading time ending at `answered_at` (when the reader gave it): the time the
    /// write waits in a worker's queue or on a slow disk is not reading time.
    pub fn submit_at(
        &mut self,
        reader: &str,
        token: CaseToken,
        answer: &Answer,
        answered_at: Instant,
    ) -> StudyResult<SubmitReceipt> {
        self.check_reader(reader)?;
        answer.validate(&self.design)?;
        let Some((entry, order)) = self.current_entry(reader)? else {
            return Err(StudyError::StaleToken { reader: reader.to_owned() });
        };
        if entry.position != token.position {
            return Err(StudyError::StaleToken { reader: reader.to_owned() });
        }
        let (time_ms, time_spans_restart) = self
            .readers
            .get(reader)
            .and_then(|state| state.clock.as_ref())
            .filter(|clock| clock.position == entry.position)
            .map_or((0, false), |clock| (clock.elapsed_ms_at(answered_at), clock.resumed_after_restart));
        let rating = answer.rating(&self.design);
        let answer_id = self.store.insert_answer(reader, &entry, answer, rating, time_ms, time_spans_restart)?;
        // Only after the answer is durable does the session move on.
        let state = self.readers.entry(reader.to_owned()).or_default();
        state.clock = None;
        if let Some(cursor) = state.back_cursor {
            let next = cursor + 1;
            let answered = self.store.answered_positions(reader)?;
            let next_is_answered =
                order.iter().any(|other| other.position == next) && answered.binary_search(&next).is_ok();
            state.back_cursor = next_is_answered.then_some(next);
        }
        let practice_feedback = if entry.practice && self.design.practice_feedback {
            let truth = self.store.provenance(&entry.case_id)?;
            Some(PracticeFeedback { truth, call_correct: truth.is_artificial() == answer.call.is_artificial() })
        } else {
            None
        };
        Ok(SubmitReceipt { answer_id, practice_feedback })
    }

    /// Stops the reading clock (the case stays current); logged.
    pub fn pause(&mut self, reader: &str) -> StudyResult<()> {
        self.pause_at(reader, Instant::now())
    }

    /// `pause`, with the clock stopped at `asked_at` (when the reader asked).
    pub fn pause_at(&mut self, reader: &str, asked_at: Instant) -> StudyResult<()> {
        self.check_reader(reader)?;
        let state = self.readers.entry(reader.to_owned()).or_default();
        if state.paused {
            return Ok(());
        }
        state.paused = true;
        if let Some(clock) = state.clock.as_mut() {
            clock.pause_at(asked_at);
        }
        self.save_clock(reader)?;
        self.store.log_event(Some(reader), "pause")
    }

    /// Restarts the reading clock; logged. (`next_case` also resumes.)
    pub fn resume(&mut self, reader: &str) -> StudyResult<()> {
        self.resume_at(reader, Instant::now())
    }

    /// `resume`, with the clock restarted at `asked_at` (when the reader asked and the case showed again).
    pub fn resume_at(&mut self, reader: &str, asked_at: Instant) -> StudyResult<()> {
        self.check_reader(reader)?;
        let state = self.readers.entry(reader.to_owned()).or_default();
        if !state.paused {
            return Ok(());
        }
        state.paused = false;
        if let Some(clock) = state.clock.as_mut() {
            clock.resume_at(asked_at);
        }
        self.save_clock(reader)?;
        self.store.log_event(Some(reader), "resume")
    }

    /// Writes the running clock of the case `reader` is on to the study file when the last write is at least the
    /// checkpoint interval old; otherwise does nothing, so a UI may call it every frame. One small synced write at
    /// most every `CLOCK_CHECKPOINT_INTERVAL`, like an answer's.
    pub fn checkpoint_clock(&mut self, reader: &str) -> StudyResult<()> {
        self.check_reader(reader)?;
        let interval = self.clock_checkpoint_interval;
        let due = self.readers.get(reader).and_then(|state| state.clock.as_ref()).is_some_and(|clock| {
            clock.running_since.is_some() && clock.checkpoint_attempted_at.is_none_or(|at| at.elapsed() >= interval)
        });
        if due { self.save_clock(reader) } else { Ok(()) }
    }

    /// Writes the reader's case clock, if there is one, to the study file.
    fn save_clock(&mut self, reader: &str) -> StudyResult<()> {
        let Some(clock) = self.readers.get_mut(reader).and_then(|state| state.clock.as_mut()) else {
            return Ok(());
        };
        // A failed write is retried at the next interval, not on every call.
        clock.checkpoint_attempted_at = Some(Instant::now());
        let stored = StoredCaseClock { position: clock.position, active_ms: clock.elapsed_ms() };
        self.store.save_case_clock(reader, &stored)
    }

    /// Answered and total cases per phase.
    pub fn progress(&self, reader: &str) -> StudyResult<ReaderProgress> {
        self.check_reader(reader)?;
        let mut progress = reader_progress(&self.store, reader)?;
        progress.paused = self.readers.get(reader).is_some_and(|state| state.paused);
        Ok(progress)
    }

    /// The underlying store, for analysis in the same process (the Results view).
    pub fn store(&self) -> &StudyStore {
        &self.store
    }

    /// Test hook: slows every write of this session (see `StudyStore::set_commit_delay`).
    pub fn set_commit_delay(&mut self, delay: Duration) {
        self.store.set_commit_delay(delay);
    }

    /// Caps database growth (see `StudyStore::limit_size_pages`).
    pub fn limit_size_pages(&self, pages: u64) -> StudyResult<u64> {
        self.store.limit_size_pages(pages)
    }
}

/// A reader's progress read from the store alone (no session needed, nothing written; `paused` is false).
pub fn reader_progress(store: &StudyStore, reader: &str) -> StudyResult<ReaderProgress> {
    if !store.has_reader(reader)? {
        return Err(StudyError::UnknownReader { reader: reader.to_owned() });
    }
    let order = store.reader_order(reader)?;
    let answered = store.answered_positions(reader)?;
    let count = |practice: bool, only_answered: bool| {
        let n = order
            .iter()
            .filter(|entry| entry.practice == practice)
            .filter(|entry| !only_answered || answered.binary_search(&entry.position).is_ok())
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    Ok(ReaderProgress {
        practice_answered: count(true, true),
        practice_count: count(true, false),
        main_answered: count(false, true),
        main_count: count(false, false),
        finished: order.iter().all(|entry| answered.binary_search(&entry.position).is_ok()),
        started: !answered.is_empty() || !store.case_clocks(reader)?.is_empty(),
        paused: false,
    })
}
