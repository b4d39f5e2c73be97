//! The Study panel: open a study database, pick the reader, start or resume the blinded reading, see the results.
//!
//! The panel owns the one `ReadingSession` of the open study (the database is held exclusively while open). While
//! a reader reads, `frame_ui` draws only the reading screen and the workbench draws nothing else.

use std::path::{Path, PathBuf};

use crate::app::path_dialog::{DialogKind, PathDialogs};
use crate::app::reading_mode::{ReadingMode, ReadingRequest};
use crate::app::study_results::{analyze_store, results_ui};
use crate::study::analysis::AnalysisReport;
use crate::study::{ReadingSession, StudyDesign};

/// A study open in the panel.
pub struct OpenStudy {
    pub path: PathBuf,
    pub session: ReadingSession,
    pub design: StudyDesign,
    /// The reader who reads next.
    pub reader: String,
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
    /// Results were asked for while readers are still reading: the panel asks for confirmation first, since the
    /// results show the truth of the cases a reader at this screen has read so far.
    pub results_confirming: bool,
    pub error: Option<String>,
    /// Raise the Results window above the Study window (from which it was asked for) on the next frame.
    results_to_front: bool,
    /// A fullscreen change to send to the window on the next frame.
    fullscreen: Option<bool>,
    dialogs: PathDialogs<()>,
}

impl StudyPanel {
    /// Shows the "open study" dialog (ignored while one is open).
    pub fn open_dialog(&mut self, ctx: &egui::Context) {
        self.window_open = true;
        if self.dialogs.is_open() {
            return;
        }
        let kind = DialogKind::PickFile { filter_name: "Study database", extensions: &["sqlite", "db", "sqlite3"] };
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
            OpenStudy { path: path.to_path_buf(), session, design, reader }
        });
        match result {
            Ok(study) => {
                self.study = Some(study);
                self.error = None;
                Ok(())
            }
            Err(e) => {
                self.error = Some(format!("Cannot open {}: {e}", path.display()));
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
                self.results_confirming = false;
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

    /// One frame: polls the dialog, then draws the reading screen (returns true: draw nothing else) or the Study
    /// and Results windows (returns false: the workbench draws as usual underneath).
    pub fn frame_ui(&mut self, ui: &mut egui::Ui) -> bool {
        if let Some(((), path)) = self.dialogs.poll(ui.ctx()) {
            // The error is shown in the panel.
            let _ = self.open_path(&path);
        }
        if let Some(fullscreen) = self.fullscreen.take() {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Fullscreen(fullscreen));
        }
        if let (Some(reading), Some(study)) = (self.reading.as_mut(), self.study.as_mut()) {
            if reading.ui(ui, &mut study.session) == ReadingRequest::Leave {
                self.stop_reading();
            }
            return true;
        }
        let ctx = ui.ctx().clone();
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
        false
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
        if ui.button("Open study...").clicked() {
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
                            } else if p.practice_answered + p.main_answered > 0 {
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
            });
            let unfinished_readers = study
                .design
                .readers
                .iter()
                .filter(|reader| !study.session.progress(reader).is_ok_and(|p| p.finished))
                .count();
            let progress = study.session.progress(&study.reader).ok();
            let finished = progress.is_some_and(|p| p.finished);
            let started = progress.is_some_and(|p| p.practice_answered + p.main_answered > 0);
            ui.horizontal(|ui| {
                let text = if started { "Resume reading" } else { "Start reading" };
                if ui.add_enabled(!finished, egui::Button::new(text)).clicked() {
                    start = true;
                }
                if ui.button("Results").clicked() {
                    if unfinished_readers == 0 {
                        results = true;
                    } else {
                        self.results_confirming = true;
                    }
                }
                if ui
                    .button("Close study")
                    .on_hover_text(
                        "The workbench holds an open study exclusively, so answers never interleave: `thorax study \
                         status`, `analyze` and `export` wait until it is closed",
                    )
                    .clicked()
                {
                    close = true;
                }
            });
            if self.results_confirming {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!(
                        "{unfinished_readers} reader(s) have not finished. The results show which cases were real: \
                         do not show them to a reader who will go on reading."
                    ),
                );
                ui.horizontal(|ui| {
                    if ui.button("Show results anyway").clicked() {
                        self.results_confirming = false;
                        results = true;
                    }
                    if ui.button("Cancel").clicked() {
                        self.results_confirming = false;
                    }
                });
            }
            ui.label(
                egui::RichText::new("Reading is full screen and keyboard driven; Esc leaves it, answers are kept.")
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
