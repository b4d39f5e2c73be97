//! The full-screen blinded reading screen: one case at a time through the radiograph viewer, keyboard driven.
//!
//! Keys: Left = call "real", Right = call "artificial", 1-5 = confidence (the five levels, or 0/25/50/75/100 on a
//! slider study), Up/Down = confidence one step up/down, Enter = submit (or continue after practice feedback),
//! P = pause/resume, I = invert, F = fit, R = reset the window, Backspace = back (only in studies that allow it),
//! Esc = leave reading (pauses; resume from the Study panel). Right-drag sets window/level, the wheel zooms.
//!
//! Nothing on this screen depends on where a case came from: the labels are the same for every case except
//! "Case k of n", the initial view is identical (fitted, full 16-bit window), and the truth is only shown after
//! the answer of a practice case when the study gives practice feedback.
//!
//! The screen never touches the study file: every read and write goes to the `ReadingWorker`, which holds the
//! session. An answer counts as saved once the worker says it is on disk; until then the answer controls are off and
//! "Saving…" shows, and a failed write leaves the answer in the form with the error, to submit again.

use egui::{Key, Modifiers};

use std::time::Instant;

use crate::app::radiograph_viewer::{ViewGeometry, radiograph_viewer_ui};
use crate::app::reading_worker::{CaseOutcome, ReadingWorker, WorkerReply, WorkerRequest};
use crate::app::view_state::ViewState;
use crate::imaging::{BitDepth, GrayImage, Window};
use crate::study::session::PracticeFeedback;
use crate::study::{Answer, Call, CaseForDisplay, ConfidenceScale, GiveawayPoint, ReadingPhase, StudyDesign};

/// Step of the Up/Down keys on a 0-100 slider.
const SLIDER_STEP: u32 = 5;

/// How often the screen wakes while a case is read, so the session can checkpoint its clock (it writes at most
/// every `CLOCK_CHECKPOINT_INTERVAL`) even when the reader does not touch mouse or keyboard.
const CLOCK_CHECKPOINT_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// What the reading screen asks the Study panel to do after a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadingRequest {
    /// Keep reading.
    Stay,
    /// Leave the reading screen (the panel sends the worker `Leave`, which pauses the session).
    Leave,
}

/// A request the screen waits on before the reader can go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// The first case.
    Start,
    /// The answer's write (then the next case).
    Submit,
    /// The case after practice feedback.
    Next,
    /// The case gone back to.
    Back,
}

/// The answer being composed for the case on screen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnswerDraft {
    pub call: Option<Call>,
    pub confidence: Option<u32>,
    pub free_text: String,
    pub giveaway: Option<GiveawayPoint>,
}

impl AnswerDraft {
    fn from_answer(answer: &Answer) -> Self {
        Self {
            call: Some(answer.call),
            confidence: Some(answer.confidence),
            free_text: answer.free_text.clone().unwrap_or_default(),
            giveaway: answer.giveaway,
        }
    }

    /// The answer, once call and confidence are given.
    fn answer(&self, design: &StudyDesign) -> Option<Answer> {
        let free_text = self.free_text.trim();
        Some(Answer {
            call: self.call?,
            confidence: self.confidence?,
            free_text: (design.questions.free_text && !free_text.is_empty()).then(|| free_text.to_owned()),
            giveaway: if design.questions.giveaway_click { self.giveaway } else { None },
        })
    }
}

/// The case on screen, as the viewer needs it.
struct ShownCase {
    case: CaseForDisplay,
    image: GrayImage,
}

/// What the screen shows.
enum Screen {
    /// A case to read.
    Case(Box<ShownCase>),
    /// The truth of the practice case just answered, over its image.
    Feedback(PracticeFeedback, Box<ShownCase>),
    /// Every case is answered.
    Finished,
    /// Waiting for the first case.
    Loading,
}

/// State of the reading screen for one reader.
pub struct ReadingMode {
    reader: String,
    design: StudyDesign,
    screen: Screen,
    /// What the worker is doing for the screen; the answer controls wait for it.
    pending: Option<Pending>,
    pub draft: AnswerDraft,
    pub view: ViewState,
    paused: bool,
    /// Answers stored since the screen opened (for tests and the status line).
    pub submitted: u32,
    /// The last error (a failed submit keeps the case and the draft).
    pub error: Option<String>,
    /// Where the case's viewer was drawn last frame (for the giveaway mark and tests).
    pub viewer_rect: Option<egui::Rect>,
    /// A text field had the keyboard at the end of the last frame. egui drops a field's focus on Escape before this
    /// frame's code runs, so without it the Escape that ends typing a comment also left the reading.
    typing_last_frame: bool,
}

/// The view every case starts with: fitted, the full 16-bit range, not inverted.
fn initial_view() -> ViewState {
    ViewState { window: Window::spanning(0.0, 65535.0), ..ViewState::default() }
}

fn gray_image(case: &CaseForDisplay) -> Option<GrayImage> {
    let image = &case.image;
    let pixels = image.pixels().iter().map(|&v| f32::from(v)).collect();
    GrayImage::new(image.width_px() as usize, image.height_px() as usize, BitDepth::U16, pixels).ok()
}

/// The full 16-bit range of a case image, for the window readout in percent.
const FULL_RANGE: f32 = 65535.0;

/// "Window 50% / 100%": the reader's window centre and width as percentages of the case's full range, so that a
/// reader can report, and repeat, how they windowed.
fn window_readout(view: &ViewState) -> String {
    let percent = |value: f32| (value / FULL_RANGE * 100.0).round();
    format!("Window: centre {:.0}%, width {:.0}%", percent(view.window.center), percent(view.window.width))
}

/// How often `key` was pressed (without modifiers) since the last frame, consuming every press: a quick double
/// press of Up in one frame must count twice, or the stored confidence would differ from the keys pressed.
fn consume_presses(ctx: &egui::Context, key: Key) -> usize {
    ctx.input_mut(|i| i.count_and_consume_key(Modifiers::NONE, key))
}

/// Confidence for digit key `digit` (1-5) on the study's scale.
fn confidence_for_digit(scale: ConfidenceScale, digit: u32) -> u32 {
    match scale {
        ConfidenceScale::FiveLevel => digit,
        ConfidenceScale::Slider100 => (digit - 1) * 25,
    }
}

const DIGIT_KEYS: [(Key, u32); 5] = [(Key::Num1, 1), (Key::Num2, 2), (Key::Num3, 3), (Key::Num4, 4), (Key::Num5, 5)];

impl ReadingMode {
    /// Opens the reading screen for `reader`; the worker (which holds the reader's session) is asked for their first
    /// unanswered case, shown when it comes.
    pub fn start(worker: &ReadingWorker, design: StudyDesign, reader: &str) -> Self {
        worker.send(WorkerRequest::Start);
        Self {
            reader: reader.to_owned(),
            design,
            screen: Screen::Loading,
            pending: Some(Pending::Start),
            draft: AnswerDraft::default(),
            view: initial_view(),
            paused: false,
            submitted: 0,
            error: None,
            viewer_rect: None,
            typing_last_frame: false,
        }
    }

    /// What the screen waits for the worker to do, if anything.
    pub fn pending(&self) -> Option<Pending> {
        self.pending
    }

    pub fn reader(&self) -> &str {
        &self.reader
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.screen, Screen::Finished)
    }

    /// "Case k of n" of the case on screen, if any.
    pub fn progress_text(&self) -> Option<String> {
        match &self.screen {
            Screen::Case(shown) => {
                let p = shown.case.progress;
                let phase = match p.phase {
                    ReadingPhase::Practice => "Practice case",
                    ReadingPhase::Main => "Case",
                };
                Some(format!("{phase} {} of {}", p.case_number, p.case_count))
            }
            _ => None,
        }
    }

    /// Shows `case` and tells the worker when, so that its clock starts now and not when the worker read it.
    fn show(&mut self, worker: &ReadingWorker, case: CaseForDisplay) -> Result<(), String> {
        let image = gray_image(&case).ok_or_else(|| "the case image is empty".to_owned())?;
        worker.send(WorkerRequest::Shown { token: case.token, shown_at: Instant::now() });
        self.draft = case.previous_answer.as_ref().map(AnswerDraft::from_answer).unwrap_or_default();
        self.view = initial_view();
        self.screen = Screen::Case(Box::new(ShownCase { case, image }));
        Ok(())
    }

    /// Shows the case the worker read, or the end; an error leaves the screen as it is.
    fn show_outcome(&mut self, worker: &ReadingWorker, outcome: CaseOutcome) {
        let shown = match outcome {
            Ok(Some(case)) => self.show(worker, case),
            Ok(None) => {
                self.screen = Screen::Finished;
                Ok(())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = shown {
            self.error = Some(e);
        }
    }

    /// Takes a reply of the worker (every one but `Left`, which goes to the panel). Returns an error when the
    /// reading could not begin.
    pub fn on_reply(&mut self, worker: &ReadingWorker, reply: WorkerReply) -> Option<String> {
        let pending = self.pending.take();
        match reply {
            WorkerReply::Case(outcome) => {
                if pending == Some(Pending::Start)
                    && let Err(e) = outcome
                {
                    return Some(e);
                }
                self.error = None;
                self.show_outcome(worker, outcome);
            }
            WorkerReply::Submitted { receipt, next } => {
                self.submitted += 1;
                self.error = None;
                match (receipt.practice_feedback, next) {
                    (Some(feedback), _) => {
                        let screen = std::mem::replace(&mut self.screen, Screen::Finished);
                        if let Screen::Case(shown) = screen {
                            self.screen = Screen::Feedback(feedback, shown);
                        }
                    }
                    (None, Some(next)) => self.show_outcome(worker, next),
                    (None, None) => {}
                }
            }
            // The answer is not stored: the case and the draft stay, the reader can submit again.
            WorkerReply::SubmitFailed(e) => self.error = Some(format!("The answer was not stored: {e}")),
            WorkerReply::Back(Ok(None)) => {}
            WorkerReply::Back(outcome) => self.show_outcome(worker, outcome),
            WorkerReply::ClockFailed(e) => {
                // Not a reply the screen waited on.
                self.pending = pending;
                self.error = Some(e);
            }
            WorkerReply::Left(_) => {
                self.pending = pending;
                log::error!("the reading worker handed its session back while reading went on");
            }
        }
        None
    }

    /// Sends the draft answer to be stored; the screen moves on (or shows practice feedback) once it is.
    pub fn submit(&mut self, worker: &ReadingWorker) {
        let Screen::Case(shown) = &self.screen else {
            return;
        };
        if self.pending.is_some() {
            return;
        }
        let Some(answer) = self.draft.answer(&self.design) else {
            self.error = Some("Choose a call (Left/Right) and a confidence (1-5) first".to_owned());
            return;
        };
        worker.send(WorkerRequest::Submit { token: shown.case.token, answer, answered_at: Instant::now() });
        self.pending = Some(Pending::Submit);
    }

    /// Asks for the case after practice feedback.
    fn next_after_feedback(&mut self, worker: &ReadingWorker) {
        if self.pending.is_none() {
            worker.send(WorkerRequest::Next);
            self.pending = Some(Pending::Next);
        }
    }

    /// Goes back one case when the study allows it.
    pub fn go_back(&mut self, worker: &ReadingWorker) {
        if !self.design.allow_back || self.pending.is_some() {
            return;
        }
        worker.send(WorkerRequest::Back { asked_at: Instant::now() });
        self.pending = Some(Pending::Back);
    }

    /// Pauses or resumes the reading clock; a paused screen hides the image at once, the worker writes the pause.
    pub fn toggle_pause(&mut self, worker: &ReadingWorker) {
        if self.pending.is_some() {
            return;
        }
        let asked_at = Instant::now();
        worker.send(if self.paused { WorkerRequest::Resume { asked_at } } else { WorkerRequest::Pause { asked_at } });
        self.paused = !self.paused;
    }

    fn set_confidence_step(&mut self, scale: ConfidenceScale, up: bool) {
        let step = match scale {
            ConfidenceScale::FiveLevel => 1,
            ConfidenceScale::Slider100 => SLIDER_STEP,
        };
        let current = self.draft.confidence.unwrap_or((scale.min() + scale.max()) / 2);
        let next = if up { current.saturating_add(step) } else { current.saturating_sub(step) };
        self.draft.confidence = Some(next.clamp(scale.min(), scale.max()));
    }

    /// Keyboard shortcuts, taken before any widget sees the keys.
    fn handle_keys(&mut self, ui: &egui::Ui, worker: &ReadingWorker) -> ReadingRequest {
        let ctx = ui.ctx().clone();
        let typing = ctx.egui_wants_keyboard_input() || self.typing_last_frame;
        let consume = |key| ctx.input_mut(|i| i.consume_key(Modifiers::NONE, key));
        if consume(Key::Escape) {
            if typing {
                ctx.memory_mut(|m| m.stop_text_input());
                return ReadingRequest::Stay;
            }
            return ReadingRequest::Leave;
        }
        // While the worker stores the answer or reads a case, only Esc acts.
        if typing || self.pending.is_some() {
            return ReadingRequest::Stay;
        }
        match &self.screen {
            Screen::Loading => {}
            Screen::Finished => {
                if consume(Key::Enter) {
                    return ReadingRequest::Leave;
                }
                if consume(Key::Backspace) {
                    self.go_back(worker);
                }
            }
            Screen::Feedback(..) => {
                if consume(Key::Enter) {
                    self.next_after_feedback(worker);
                }
            }
            Screen::Case(_) => {
                if consume(Key::P) {
                    self.toggle_pause(worker);
                }
                if self.paused {
                    return ReadingRequest::Stay;
                }
                let scale = self.design.confidence_scale;
                if consume(Key::ArrowLeft) {
                    self.draft.call = Some(Call::Real);
                }
                if consume(Key::ArrowRight) {
                    self.draft.call = Some(Call::Artificial);
                }
                for (key, digit) in DIGIT_KEYS {
                    if consume(key) {
                        self.draft.confidence = Some(confidence_for_digit(scale, digit));
                    }
                }
                for _ in 0..consume_presses(&ctx, Key::ArrowUp) {
                    self.set_confidence_step(scale, true);
                }
                for _ in 0..consume_presses(&ctx, Key::ArrowDown) {
                    self.set_confidence_step(scale, false);
                }
                if consume(Key::I) {
                    self.view.inverted = !self.view.inverted;
                }
                if consume(Key::F) {
                    self.view.fit();
                }
                if consume(Key::R) {
                    self.view.window = initial_view().window;
                }
                if consume(Key::Backspace) {
                    self.go_back(worker);
                }
                if consume(Key::Enter) {
                    self.submit(worker);
                }
            }
        }
        ReadingRequest::Stay
    }

    /// Keeps the reading time of the case on screen safe from a crash: fire and forget, the session writes at most
    /// every checkpoint interval and the worker logs a failure.
    fn checkpoint_clock(&self, ctx: &egui::Context, worker: &ReadingWorker) {
        if self.paused || self.pending.is_some() || !matches!(self.screen, Screen::Case(_)) {
            return;
        }
        worker.checkpoint_clock();
        ctx.request_repaint_after(CLOCK_CHECKPOINT_POLL);
    }

    /// Draws the whole screen. Call instead of every other panel, after handing it the worker's replies.
    pub fn ui(&mut self, ui: &mut egui::Ui, worker: &ReadingWorker) -> ReadingRequest {
        let mut request = self.handle_keys(ui, worker);
        self.checkpoint_clock(ui.ctx(), worker);
        let frame = egui::Frame::central_panel(ui.style()).fill(egui::Color32::from_gray(12));
        egui::Panel::top("reading_top").show(ui, |ui| {
            if self.top_bar_ui(ui, worker) {
                request = ReadingRequest::Leave;
            }
        });
        if matches!(self.screen, Screen::Case(_)) {
            egui::Panel::bottom("reading_answer").show(ui, |ui| self.answer_bar_ui(ui, worker));
        }
        egui::CentralPanel::default().frame(frame).show(ui, |ui| {
            if self.central_ui(ui, worker) {
                request = ReadingRequest::Leave;
            }
        });
        self.typing_last_frame = ui.ctx().egui_wants_keyboard_input();
        request
    }

    /// Progress, pause, viewer tools, exit. Returns true when the reader asked to leave.
    fn top_bar_ui(&mut self, ui: &mut egui::Ui, worker: &ReadingWorker) -> bool {
        let mut leave = false;
        ui.horizontal(|ui| {
            if let Some(text) = self.progress_text() {
                ui.label(egui::RichText::new(text).strong().size(16.0));
                ui.separator();
                let pause_text = if self.paused { "Resume (P)" } else { "Pause (P)" };
                if ui.add_enabled(self.pending.is_none(), egui::Button::new(pause_text)).clicked() {
                    self.toggle_pause(worker);
                }
                if !self.paused {
                    ui.separator();
                    ui.checkbox(&mut self.view.inverted, "Invert (I)");
                    if ui.button("Fit (F)").on_hover_text("Also: double-click the image").clicked() {
                        self.view.fit();
                    }
                    if ui.button("Reset window (R)").on_hover_text("Right-drag on the image sets the window").clicked()
                    {
                        self.view.window = initial_view().window;
                    }
                    if self.design.allow_back
                        && ui.add_enabled(self.pending.is_none(), egui::Button::new("Back (Backspace)")).clicked()
                    {
                        self.go_back(worker);
                    }
                    ui.separator();
                    ui.label(egui::RichText::new(window_readout(&self.view)).weak());
                }
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Leave reading (Esc)").clicked() {
                    leave = true;
                }
                ui.label(egui::RichText::new(format!("Reader: {}", self.reader)).weak());
            });
        });
        leave
    }

    /// The answer controls below the image (the same for every case).
    fn answer_bar_ui(&mut self, ui: &mut egui::Ui, worker: &ReadingWorker) {
        let design = self.design.clone();
        ui.add_space(4.0);
        // No second answer while one is being stored.
        ui.add_enabled_ui(!self.paused && self.pending.is_none(), |ui| {
            ui.horizontal(|ui| {
                ui.label(egui::RichText::new("Is this radiograph real or artificial?").strong());
                ui.selectable_value(&mut self.draft.call, Some(Call::Real), "Real (Left)");
                ui.selectable_value(&mut self.draft.call, Some(Call::Artificial), "Artificial (Right)");
                ui.separator();
                let scale = design.confidence_scale;
                let label = ui.label("Confidence");
                match scale {
                    ConfidenceScale::FiveLevel => {
                        for level in 1..=5 {
                            let text = match level {
                                1 => "1 guessing".to_owned(),
                                5 => "5 certain".to_owned(),
                                n => n.to_string(),
                            };
                            ui.selectable_value(&mut self.draft.confidence, Some(level), text);
                        }
                    }
                    ConfidenceScale::Slider100 => {
                        let mut value = self.draft.confidence.unwrap_or(50);
                        let slider = ui.add(egui::Slider::new(&mut value, 0..=100)).labelled_by(label.id);
                        if slider.changed() {
                            self.draft.confidence = Some(value);
                        }
                        ui.label(
                            egui::RichText::new(if self.draft.confidence.is_some() { "" } else { "(not set)" }).weak(),
                        );
                    }
                }
                ui.separator();
                let ready = self.draft.call.is_some() && self.draft.confidence.is_some();
                if ui.add_enabled(ready, egui::Button::new("Submit (Enter)")).clicked() {
                    self.submit(worker);
                }
                if self.pending == Some(Pending::Submit) {
                    ui.spinner();
                    ui.label("Saving…");
                }
            });
            if design.questions.free_text || design.questions.giveaway_click {
                ui.horizontal(|ui| {
                    if design.questions.free_text {
                        let label = ui.label("Comment (optional)");
                        ui.add(egui::TextEdit::singleline(&mut self.draft.free_text).desired_width(360.0))
                            .labelled_by(label.id);
                    }
                    if design.questions.giveaway_click {
                        ui.separator();
                        let text = if self.draft.giveaway.is_some() {
                            "What gave it away: marked (click the image to move)"
                        } else {
                            "What gave it away (optional): click the image"
                        };
                        ui.label(text);
                        if self.draft.giveaway.is_some() && ui.button("Clear mark").clicked() {
                            self.draft.giveaway = None;
                        }
                    }
                });
            }
            ui.label(
                egui::RichText::new(
                    "Left/Right: call | 1-5 or Up/Down: confidence | Enter: submit | P: pause | I: invert | \
                     wheel: zoom | right-drag: window | Esc: leave",
                )
                .weak(),
            );
            if let Some(error) = &self.error {
                ui.colored_label(ui.visuals().error_fg_color, error);
            }
        });
        ui.add_space(4.0);
    }

    /// The image, the pause screen, practice feedback or the end. Returns true when the reader asked to leave.
    fn central_ui(&mut self, ui: &mut egui::Ui, worker: &ReadingWorker) -> bool {
        let mut leave = false;
        match &self.screen {
            Screen::Loading => {
                ui.centered_and_justified(|ui| {
                    ui.spinner();
                });
            }
            Screen::Case(shown) => {
                if self.paused {
                    ui.centered_and_justified(|ui| {
                        ui.heading("Paused. Press P or Resume (P) to continue.");
                    });
                    return false;
                }
                let image = shown.image.clone();
                let viewer_rect = ui.available_rect_before_wrap();
                self.viewer_rect = Some(viewer_rect);
                let id = ui.scope_id().with("study_reading_viewer");
                let output = radiograph_viewer_ui(ui, id, &image, &mut self.view, None);
                if self.design.questions.giveaway_click && self.pending.is_none() {
                    self.giveaway_ui(ui, viewer_rect, &image, output.interacted);
                }
            }
            Screen::Feedback(feedback, shown) => {
                // The truth above the image just judged: a reader learns from seeing the two together.
                let truth = if feedback.truth.is_artificial() { "artificial" } else { "real" };
                let verdict = if feedback.call_correct { "Your call was correct." } else { "Your call was wrong." };
                let image = shown.image.clone();
                let mut next = false;
                ui.vertical_centered(|ui| {
                    ui.heading(format!("Practice case: this radiograph was {truth}. {verdict}"));
                    ui.horizontal(|ui| {
                        ui.label("Practice cases do not count.");
                        next = ui.add_enabled(self.pending.is_none(), egui::Button::new("Next case (Enter)")).clicked();
                    });
                });
                if next {
                    self.next_after_feedback(worker);
                }
                let id = ui.scope_id().with("study_reading_viewer");
                radiograph_viewer_ui(ui, id, &image, &mut self.view, None);
            }
            Screen::Finished => {
                ui.vertical_centered(|ui| {
                    ui.add_space(ui.available_height() * 0.35);
                    ui.heading("All cases are read. Thank you.");
                    if ui.button("Close (Enter)").clicked() {
                        leave = true;
                    }
                    // In a study that allows going back, the last answer stays open to revision until the reader
                    // closes.
                    if self.design.allow_back
                        && ui
                            .add_enabled(self.pending.is_none(), egui::Button::new("Back to the last case (Backspace)"))
                            .clicked()
                    {
                        self.go_back(worker);
                    }
                });
            }
        }
        if let Some(error) = &self.error
            && !matches!(self.screen, Screen::Case(_))
        {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        leave
    }

    /// A plain click on the image marks "what gave it away"; the mark is drawn as a ring.
    fn giveaway_ui(&mut self, ui: &egui::Ui, rect: egui::Rect, image: &GrayImage, interacted: bool) {
        let geometry = ViewGeometry::new(rect, image, &self.view);
        let clicked_at = ui.input(|i| i.pointer.primary_clicked().then(|| i.pointer.interact_pos()).flatten());
        if interacted
            && let Some(pos) = clicked_at
            && rect.contains(pos)
        {
            let p = geometry.image_px_from_point(pos);
            let (x, y) = (p.x / image.width_px() as f32, p.y / image.height_px() as f32);
            if (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y) {
                self.draft.giveaway = Some(GiveawayPoint { x: f64::from(x), y: f64::from(y) });
            }
        }
        if let Some(point) = self.draft.giveaway {
            let image_rect = geometry.image_rect();
            let pos = image_rect.min + egui::vec2(point.x as f32, point.y as f32) * image_rect.size();
            ui.painter().circle_stroke(pos, 14.0, egui::Stroke::new(2.0, egui::Color32::from_rgb(255, 200, 0)));
        }
    }
}
