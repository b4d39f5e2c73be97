//! The Study panel: open a study database, pick the reader, start or resume the blinded reading, see the results.
//!
//! The panel owns the one `ReadingSession` of the open study (the database is held exclusively while open), except
//! while a reader reads: a `ReadingWorker` thread then holds it and does the reading's database work off the UI
//! thread, and hands it back when the reader leaves (after storing what was queued). The study's home, progress and
//! Results still read the session on the UI thread: they are not on the per-answer path. While a
//! study is open the window is a reading station: `frame_ui` draws the study's home (readers, progress, start) or
//! the reading screen, and the workbench draws nothing else. A reader who pauses or finishes thus never lands on
//! the generator, its ARTIFICIAL badges or the classifier; Close study returns to the workbench. Results stay
//! locked until every reader has finished, since they show which cases were real.

use std::path::{Path, PathBuf};

use crate::app::path_dialog::{DialogKind, PathDialogs};
use crate::app::reading_mode::{ReadingMode, ReadingRequest};
use crate::app::reading_worker::{ReadingWorker, SHUTDOWN_WAIT, WorkerReply, WorkerRequest};
use crate::app::station_lock::StationLock;
use crate::app::study_results::{analyze_store, results_ui};
use crate::study::analysis::AnalysisReport;
use crate::study::{ReadingSession, StudyDesign};

/// Width of the reading station's column.
const STATION_COLUMN_WIDTH_PX: f32 = 560.0;

/// A study open in the panel.
pub struct OpenStudy {
    pub path: PathBuf,
    /// `None` while a reading worker holds it (reading, or storing what was queued before it hands it back).
    pub session: Option<ReadingSession>,
    pub design: StudyDesign,
    /// The reader who reads next.
    pub reader: String,
    /// A reader copy (`thorax study reader-copy`): no truth inside, so no results.
    pub reader_copy: bool,
}

/// State of the Study panel, its reading screen and its Results view.
#[derive(Default)]
pub struct StudyPanel {
    /// Whether the Study window is shown.
    pub window_open: bool,
    pub study: Option<OpenStudy>,
    pub reading: Option<ReadingMode>,
    /// The worker that holds the session while a reader reads, and until it has handed the session back.
    worker: Option<ReadingWorker>,
    /// The latest analysis (or why there is none), shown in the Results window.
    pub results: Option<Result<AnalysisReport, String>>,
    pub results_open: bool,
    pub error: Option<String>,
    /// What the workbench last did for the study (e.g. "Created ..."), shown on the station's home.
    pub notice: Option<String>,
    /// Raise the Results window above the Study window (from which it was asked for) on the next frame.
    results_to_front: bool,
    /// A fullscreen change to send to the window on the next frame.
    fullscreen: Option<bool>,
    dialogs: PathDialogs<()>,
    /// The supervisor's PIN lock on the open study's station.
    pub station_lock: StationLock,
}

impl StudyPanel {
    /// Shows the "open study" dialog (ignored while one is open).
    pub fn open_dialog(&mut self, ctx: &egui::Context) {
        self.window_open = true;
        if self.dialogs.is_open() {
            return;
        }
        let kind =
            DialogKind::PickFile { filter_name: "Study database", extensions: &["sqlite", "db", "sqlite3", "study"] };
        if let Err(e) = self.dialogs.request(ctx, (), "Open study", kind, None) {
            self.error = Some(e);
        }
    }

    /// Opens the study at `path` (closing any open one first); the first reader who has cases left is selected.
    pub fn open_path(&mut self, path: &Path) -> Result<(), String> {
        self.close_study();
        self.window_open = true;
        let result = ReadingSession::open(path).map_err(|e| e.to_string()).map(|session| {
            let design = session.design().clone();
            let reader = design
                .readers
                .iter()
                .find(|r| session.progress(r).is_ok_and(|p| !p.finished))
                .or_else(|| design.readers.first())
                .cloned()
                .unwrap_or_default();
            // A file whose metadata cannot be read is treated as a copy: no results rather than wrong ones.
            let reader_copy = session.store().is_reader_copy().unwrap_or(true);
            OpenStudy { path: path.to_path_buf(), session: Some(session), design, reader, reader_copy }
        });
        match result {
            Ok(study) => {
                self.study = Some(study);
                self.error = None;
                Ok(())
            }
            Err(e) => {
                // Study errors end with the file; the few that do not get it added.
                let file = path.display().to_string();
                let named = if e.contains(&file) { e.clone() } else { format!("{e}: {file}") };
                self.error = Some(format!("Cannot open the study: {named}"));
                Err(e)
            }
        }
    }

    /// Closes the open study (releasing the database). A reading worker first stores everything queued (an answer in
    /// flight included) and hands the session back: the one wait on the UI thread, at most `SHUTDOWN_WAIT`, and only
    /// when the study closes or another opens.
    pub fn close_study(&mut self) {
        self.stop_reading();
        if let Some(worker) = self.worker.take() {
            let deadline = std::time::Instant::now() + SHUTDOWN_WAIT;
            while let Some(reply) = worker.reply_within(deadline.saturating_duration_since(std::time::Instant::now())) {
                match reply {
                    WorkerReply::Left(_) => break,
                    // The home that would show it closes with the study.
                    WorkerReply::SubmitFailed(e) => {
                        log::error!("closing the study: the last answer was not stored: {e}")
                    }
                    _ => {}
                }
            }
            // Dropping the worker waits for its thread (the session closes with it).
            drop(worker);
        }
        self.study = None;
        self.results = None;
        self.results_open = false;
        self.notice = None;
        self.station_lock.clear();
    }

    /// Selects the reader who reads next.
    pub fn select_reader(&mut self, reader: &str) -> Result<(), String> {
        let study = self.study.as_mut().ok_or("no study is open")?;
        if !study.design.readers.iter().any(|r| r == reader) {
            return Err(format!("reader {reader:?} is not part of this study"));
        }
        study.reader = reader.to_owned();
        Ok(())
    }

    /// Enters the full-screen reading of the selected reader: a worker takes the session, and the screen shows their
    /// first unanswered case when the worker has read it.
    pub fn start_reading(&mut self, ctx: &egui::Context) -> Result<(), String> {
        let study = self.study.as_mut().ok_or("no study is open")?;
        let session = study.session.take().ok_or("the last answers are still being saved")?;
        match ReadingWorker::spawn(session, &study.reader, ctx) {
            Ok(worker) => {
                self.reading = Some(ReadingMode::start(&worker, study.design.clone(), &study.reader));
                self.worker = Some(worker);
                self.results = None;
                self.results_open = false;
                self.fullscreen = Some(true);
                self.error = None;
                Ok(())
            }
            Err(e) => {
                // The session went with the thread that could not start: the study is closed.
                self.study = None;
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    pub fn is_reading(&self) -> bool {
        self.reading.is_some()
    }

    /// Whether a reading worker has work the screen waits on: an answer or a case on its way, or the session not yet
    /// handed back after leaving. (Tests wait on it; clock checkpoints do not count.)
    pub fn is_waiting_for_worker(&self) -> bool {
        match (&self.reading, &self.worker) {
            (Some(reading), Some(_)) => reading.pending().is_some(),
            (None, Some(_)) => true,
            _ => false,
        }
    }

    /// Runs `f` on the open study's session, in order with the reading's requests when a worker holds it (tests and
    /// tools: a setting, a size cap). Returns false when no study is open.
    pub fn with_session(&mut self, f: impl FnOnce(&mut ReadingSession) + Send + 'static) -> bool {
        if let Some(worker) = &self.worker {
            worker.send(WorkerRequest::WithSession(Box::new(f)));
            return true;
        }
        match self.study.as_mut().and_then(|study| study.session.as_mut()) {
            Some(session) => {
                f(session);
                true
            }
            None => false,
        }
    }

    /// Leaves the reading screen and shows the panel again. The worker pauses the session after whatever is queued
    /// and hands it back; the home waits for it without blocking.
    pub fn stop_reading(&mut self) {
        if self.reading.take().is_some() {
            if let Some(worker) = &self.worker {
                worker.send(WorkerRequest::Leave { asked_at: std::time::Instant::now() });
            }
            self.fullscreen = Some(false);
        }
    }

    /// A reply that comes after the reading screen was left: the session coming back, or the fate of an answer
    /// that was still being stored.
    fn after_reading_reply(&mut self, reply: WorkerReply) {
        match reply {
            WorkerReply::Left(session) => {
                if let Some(study) = self.study.as_mut() {
                    study.session = Some(*session);
                }
                self.worker = None;
            }
            WorkerReply::SubmitFailed(e) => self.error = Some(format!("The last answer was not stored: {e}")),
            WorkerReply::ClockFailed(e) => self.error = Some(e),
            // Stored, or a case no one will see now.
            WorkerReply::Submitted { .. } | WorkerReply::Case(_) | WorkerReply::Back(_) => {}
        }
    }

    /// Hands the worker's replies to the reading screen, or to the panel once the screen is left.
    fn take_worker_replies(&mut self) {
        while let Some(reply) = self.worker.as_ref().and_then(ReadingWorker::try_reply) {
            match (self.reading.as_mut(), self.worker.as_ref(), reply) {
                (Some(reading), Some(worker), reply) if !matches!(reply, WorkerReply::Left(_)) => {
                    if let Some(error) = reading.on_reply(worker, reply) {
                        // The first case could not be read: back to the home, which says why.
                        self.error = Some(error);
                        self.stop_reading();
                    }
                }
                (_, _, reply) => self.after_reading_reply(reply),
            }
        }
    }

    /// Analyses the answers given so far and opens the Results window.
    pub fn refresh_results(&mut self) {
        let Some(study) = &self.study else {
            return;
        };
        let Some(session) = &study.session else {
            return;
        };
        self.results = Some(analyze_store(session.store()).map_err(|e| e.to_string()));
        self.results_open = true;
        self.results_to_front = true;
    }

    /// One frame: polls the dialog, then draws the reading screen or the open study's home (returns true: draw
    /// nothing else), or the Study window (returns false: the workbench draws as usual underneath).
    pub fn frame_ui(&mut self, ui: &mut egui::Ui) -> bool {
        if let Some(((), path)) = self.dialogs.poll(ui.ctx()) {
            // The error is shown in the panel.
            let _ = self.open_path(&path);
        }
        if let Some(fullscreen) = self.fullscreen.take() {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Fullscreen(fullscreen));
        }
        if self.study.is_some() && self.station_lock.is_locked() && ui.ctx().input(|i| i.viewport().close_requested()) {
            // A locked station is not quit by a reader; the supervisor unlocks first.
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.notice = Some("The station is locked: quitting needs the supervisor PIN.".to_owned());
        }
        self.take_worker_replies();
        if let (Some(reading), Some(worker)) = (self.reading.as_mut(), self.worker.as_ref()) {
            if reading.ui(ui, worker) == ReadingRequest::Leave {
                self.stop_reading();
            }
            return true;
        }
        let ctx = ui.ctx().clone();
        if self.study.is_some() {
            egui::CentralPanel::default().show(ui, |ui| {
                egui::ScrollArea::vertical().id_salt("study_station_scroll").show(ui, |ui| self.station_ui(ui));
            });
            if self.results_open {
                let mut open = true;
                let shown = egui::Window::new("Study results")
                    .open(&mut open)
                    .default_width(900.0)
                    .default_pos([260.0, 120.0])
                    .show(&ctx, |ui| self.results_window_ui(ui));
                if let Some(shown) = shown
                    && std::mem::take(&mut self.results_to_front)
                {
                    ctx.move_to_top(shown.response.layer_id);
                }
                if !open {
                    self.results_open = false;
                }
            }
            return true;
        }
        if self.window_open {
            let mut open = true;
            egui::Window::new("Study")
                .open(&mut open)
                .default_width(420.0)
                .default_pos([320.0, 80.0])
                .show(&ctx, |ui| self.panel_ui(ui));
            if !open {
                self.window_open = false;
            }
        }
        false
    }

    /// The home of the open study: the whole window, so that nothing of the workbench shows between readers.
    fn station_ui(&mut self, ui: &mut egui::Ui) {
        // A centred column a little below the top: the screen a reader sits down to.
        let column_width = STATION_COLUMN_WIDTH_PX.min(ui.available_width());
        let margin = ((ui.available_width() - column_width) / 2.0).max(0.0);
        ui.add_space((ui.ctx().content_rect().height() * 0.1).min(96.0));
        ui.horizontal_top(|ui| {
            ui.add_space(margin);
            ui.vertical(|ui| {
                ui.set_width(column_width);
                ui.heading("Reading station");
                ui.label(
                    egui::RichText::new(
                        "While a study is open the workbench is hidden, so that no reader sees the generator or \
                         labelled images between cases. Close study returns to it.",
                    )
                    .weak(),
                );
                if let Some(notice) = &self.notice {
                    ui.label(notice);
                }
                self.panel_ui(ui);
            });
        });
    }

    fn results_window_ui(&mut self, ui: &mut egui::Ui) {
        match &self.results {
            Some(Ok(report)) => {
                egui::ScrollArea::both().id_salt("study_results_scroll").show(ui, |ui| results_ui(ui, report));
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("No results: {e}"));
            }
            None => {
                ui.label("Open a study and press Results.");
            }
        }
    }

    fn panel_ui(&mut self, ui: &mut egui::Ui) {
        let locked = self.study.is_some() && self.station_lock.is_locked();
        if ui.add_enabled(!locked, egui::Button::new("Open study...")).clicked() {
            self.open_dialog(ui.ctx());
        }
        if self.dialogs.is_open() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Waiting for the file dialog");
            });
        }
        if let Some(error) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        let mut start = false;
        let mut results = false;
        let mut close = false;
        if let Some(study) = self.study.as_mut() {
            ui.separator();
            ui.label(egui::RichText::new(&study.design.title).strong());
            let file_name = study.path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            ui.label(egui::RichText::new(format!("File: {file_name}")).weak());
            if study.reader_copy {
                ui.label(
                    egui::RichText::new(
                        "Reader copy: the truth stays with the master study. Its answers go back with `thorax study \
                         merge MASTER COPY`; results come from the master.",
                    )
                    .weak(),
                );
            }
            let scale = match study.design.confidence_scale {
                crate::study::ConfidenceScale::FiveLevel => "confidence 1-5",
                crate::study::ConfidenceScale::Slider100 => "confidence 0-100",
            };
            let back = if study.design.allow_back { "going back allowed" } else { "no going back" };
            let mut asked = format!("Call plus {scale}");
            if study.design.questions.free_text {
                asked += ", a comment";
            }
            if study.design.questions.giveaway_click {
                asked += ", a click on the giveaway";
            }
            ui.label(egui::RichText::new(format!("{asked}; {back}")).weak());
            ui.label(egui::RichText::new(format!("Display: {}", study.design.display.describe())).weak());
            ui.add_space(4.0);
            // While a reading worker still stores what a reader left queued, the session is not here to ask.
            let saving = study.session.is_none();
            let progress_of = |reader: &str| study.session.as_ref().map(|session| session.progress(reader));
            egui::Grid::new("study_progress").striped(true).show(ui, |ui| {
                for header in ["Reader", "Practice", "Cases", "Status"] {
                    ui.label(egui::RichText::new(header).strong());
                }
                ui.end_row();
                for reader in &study.design.readers {
                    ui.label(reader);
                    match progress_of(reader) {
                        None => {
                            ui.label("");
                            ui.label("");
                            ui.label("saving…");
                        }
                        Some(Ok(p)) => {
                            ui.label(format!("{} / {}", p.practice_answered, p.practice_count));
                            ui.label(format!("{} / {}", p.main_answered, p.main_count));
                            let status = if p.finished {
                                "finished"
                            } else if p.started {
                                "started"
                            } else {
                                "not started"
                            };
                            ui.label(status);
                        }
                        Some(Err(e)) => {
                            ui.label(e.to_string());
                        }
                    }
                    ui.end_row();
                }
            });
            ui.add_space(4.0);
            ui.add_enabled_ui(!locked, |ui| {
                ui.horizontal(|ui| {
                    let label = ui.label("Reader");
                    egui::ComboBox::from_id_salt("study_reader")
                        .selected_text(study.reader.clone())
                        .show_ui(ui, |ui| {
                            for reader in &study.design.readers {
                                ui.selectable_value(&mut study.reader, reader.clone(), reader);
                            }
                        })
                        .response
                        .labelled_by(label.id);
                })
            });
            let unfinished_readers = study
                .design
                .readers
                .iter()
                .filter(|reader| !progress_of(reader).is_some_and(|p| p.is_ok_and(|p| p.finished)))
                .count();
            let progress = progress_of(&study.reader).and_then(Result::ok);
            let finished = progress.is_some_and(|p| p.finished);
            // A reader who saw a case but answered nothing resumes it, with its time so far.
            let started = progress.is_some_and(|p| p.started);
            if saving {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Saving the last answer to the study file…");
                });
            }
            ui.horizontal(|ui| {
                let text = if started { "Resume reading" } else { "Start reading" };
                if ui.add_enabled(!finished && !saving, egui::Button::new(text)).clicked() {
                    start = true;
                }
                let unlocked = unfinished_readers == 0 && !study.reader_copy;
                let results_button = ui.add_enabled(unlocked && !locked && !saving, egui::Button::new("Results"));
                let results_button = results_button.on_disabled_hover_text(if study.reader_copy {
                    "A reader copy holds no truth: merge it into the master study and analyse that".to_owned()
                } else if unlocked {
                    "The station is locked: the supervisor unlocks it to see the results".to_owned()
                } else {
                    format!(
                        "Results unlock when every reader has finished ({unfinished_readers} not yet): they show \
                         which cases were real. For interim results, run `thorax study analyze {}` as the researcher.",
                        study.path.display()
                    )
                });
                if results_button.clicked() {
                    results = true;
                }
                if ui
                    .add_enabled(!locked && !saving, egui::Button::new("Close study"))
                    .on_hover_text(
                        "The workbench holds an open study exclusively, so answers never interleave: `thorax study \
                         status`, `analyze` and `export` read a snapshot of the answers committed so far",
                    )
                    .on_disabled_hover_text(if saving {
                        "The last answer is being saved to the study file"
                    } else {
                        "The station is locked: closing the study needs the supervisor PIN"
                    })
                    .clicked()
                {
                    close = true;
                }
            });
            self.station_lock.ui(ui);
            ui.label(
                egui::RichText::new(
                    "Reading is full screen and keyboard driven; Esc pauses it and comes back here, answers are kept.",
                )
                .weak()
                .small(),
            );
        }
        if start {
            // The error is shown in the panel.
            let _ = self.start_reading(ui.ctx());
        }
        if results {
            self.refresh_results();
        }
        if close {
            self.close_study();
        }
    }
}
