//! The Study panel: open a study database, pick the reader, start or resume the blinded reading, see the results.
//!
//! The panel owns the one `ReadingSession` of the open study (the database is held exclusively while open). While a
//! study is open the window is a reading station: `frame_ui` draws the study's home (readers, progress, start) or
//! the reading screen, and the workbench draws nothing else. A reader who pauses or finishes thus never lands on
//! the generator, its ARTIFICIAL badges or the classifier; Close study returns to the workbench. Results stay
//! locked until every reader has finished, since they show which cases were real.

use std::path::{Path, PathBuf};

use crate::app::path_dialog::{DialogKind, PathDialogs};
use crate::app::reading_mode::{ReadingMode, ReadingRequest};
use crate::app::station_lock::StationLock;
use crate::app::study_results::{analyze_store, results_ui};
use crate::study::analysis::AnalysisReport;
use crate::study::{ReadingSession, StudyDesign};

/// Width of the reading station's column.
const STATION_COLUMN_WIDTH_PX: f32 = 560.0;

/// A study open in the panel.
pub struct OpenStudy {
    pub path: PathBuf,
    pub session: ReadingSession,
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
            OpenStudy { path: path.to_path_buf(), session, design, reader, reader_copy }
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

    /// Closes the open study (releasing the database).
    pub fn close_study(&mut self) {
        if let (Some(reading), Some(study)) = (self.reading.as_mut(), self.study.as_mut()) {
            reading.leave(&mut study.session);
        }
        if self.reading.take().is_some() {
            self.fullscreen = Some(false);
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

    /// Enters the full-screen reading of the selected reader at their first unanswered case.
    pub fn start_reading(&mut self) -> Result<(), String> {
        let study = self.study.as_mut().ok_or("no study is open")?;
        match ReadingMode::start(&mut study.session, &study.reader) {
            Ok(mode) => {
                self.reading = Some(mode);
                self.results = None;
                self.results_open = false;
                self.fullscreen = Some(true);
                self.error = None;
                Ok(())
            }
            Err(e) => {
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    pub fn is_reading(&self) -> bool {
        self.reading.is_some()
    }

    /// Leaves the reading screen (the session is paused) and shows the panel again.
    pub fn stop_reading(&mut self) {
        if let (Some(reading), Some(study)) = (self.reading.as_mut(), self.study.as_mut()) {
            reading.leave(&mut study.session);
        }
        if self.reading.take().is_some() {
            self.fullscreen = Some(false);
        }
    }

    /// Analyses the answers given so far and opens the Results window.
    pub fn refresh_results(&mut self) {
        let Some(study) = &self.study else {
            return;
        };
        self.results = Some(analyze_store(study.session.store()).map_err(|e| e.to_string()));
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
        if let (Some(reading), Some(study)) = (self.reading.as_mut(), self.study.as_mut()) {
            if reading.ui(ui, &mut study.session) == ReadingRequest::Leave {
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
            egui::Grid::new("study_progress").striped(true).show(ui, |ui| {
                for header in ["Reader", "Practice", "Cases", "Status"] {
                    ui.label(egui::RichText::new(header).strong());
                }
                ui.end_row();
                for reader in &study.design.readers {
                    ui.label(reader);
                    match study.session.progress(reader) {
                        Ok(p) => {
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
                        Err(e) => {
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
                .filter(|reader| !study.session.progress(reader).is_ok_and(|p| p.finished))
                .count();
            let progress = study.session.progress(&study.reader).ok();
            let finished = progress.is_some_and(|p| p.finished);
            // A reader who saw a case but answered nothing resumes it, with its time so far.
            let started = progress.is_some_and(|p| p.started);
            ui.horizontal(|ui| {
                let text = if started { "Resume reading" } else { "Start reading" };
                if ui.add_enabled(!finished, egui::Button::new(text)).clicked() {
                    start = true;
                }
                let unlocked = unfinished_readers == 0 && !study.reader_copy;
                let results_button = ui.add_enabled(unlocked && !locked, egui::Button::new("Results"));
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
                    .add_enabled(!locked, egui::Button::new("Close study"))
                    .on_hover_text(
                        "The workbench holds an open study exclusively, so answers never interleave: `thorax study \
                         status`, `analyze` and `export` read a snapshot of the answers committed so far",
                    )
                    .on_disabled_hover_text("The station is locked: closing the study needs the supervisor PIN")
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
            let _ = self.start_reading();
        }
        if results {
            self.refresh_results();
        }
        if close {
            self.close_study();
        }
    }
}
