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

use egui::{Key, Modifiers};

use crate::app::radiograph_viewer::{ViewGeometry, radiograph_viewer_ui};
use crate::app::view_state::ViewState;
use crate::imaging::{BitDepth, GrayImage, Window};
use crate::study::session::PracticeFeedback;
use crate::study::{
    Answer, Call, CaseForDisplay, ConfidenceScale, GiveawayPoint, ReadingPhase, ReadingSession, StudyDesign,
};

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
    /// Leave the reading screen (the session is paused).
    Leave,
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
}

/// State of the reading screen for one reader.
pub struct ReadingMode {
    reader: String,
    screen: Screen,
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
    /// Opens the reading screen for `reader` at their first unanswered case.
    pub fn start(session: &mut ReadingSession, reader: &str) -> Result<Self, String> {
        let mut mode = Self {
            reader: reader.to_owned(),
            screen: Screen::Finished,
            draft: AnswerDraft::default(),
            view: initial_view(),
            paused: false,
            submitted: 0,
            error: None,
            viewer_rect: None,
            typing_last_frame: false,
        };
        session.resume(reader).map_err(|e| e.to_string())?;
        mode.load_next(session)?;
        Ok(mode)
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

    fn show(&mut self, case: CaseForDisplay) -> Result<(), String> {
        let image = gray_image(&case).ok_or_else(|| "the case image is empty".to_owned())?;
        self.draft = case.previous_answer.as_ref().map(AnswerDraft::from_answer).unwrap_or_default();
        self.view = initial_view();
        self.screen = Screen::Case(Box::new(ShownCase { case, image }));
        Ok(())
    }

    fn load_next(&mut self, session: &mut ReadingSession) -> Result<(), String> {
        match session.next_case(&self.reader).map_err(|e| e.to_string())? {
            Some(case) => self.show(case),
            None => {
                self.screen = Screen::Finished;
                Ok(())
            }
        }
    }

    /// Stores the draft answer; on success moves on (or shows practice feedback).
    pub fn submit(&mut self, session: &mut ReadingSession) {
        let Screen::Case(shown) = &self.screen else {
            return;
        };
        let Some(answer) = self.draft.answer(session.design()) else {
            self.error = Some("Choose a call (Left/Right) and a confidence (1-5) first".to_owned());
            return;
        };
        match session.submit(&self.reader, shown.case.token, &answer) {
            Ok(receipt) => {
                self.submitted += 1;
                self.error = None;
                match receipt.practice_feedback {
                    Some(feedback) => {
                        let screen = std::mem::replace(&mut self.screen, Screen::Finished);
                        if let Screen::Case(shown) = screen {
                            self.screen = Screen::Feedback(feedback, shown);
                        }
                    }
                    None => {
                        if let Err(e) = self.load_next(session) {
                            self.error = Some(e);
                        }
                    }
                }
            }
            // The answer is not stored: the case and the draft stay, the reader can submit again.
            Err(e) => self.error = Some(format!("The answer was not stored: {e}")),
        }
    }

    /// Goes back one case when the study allows it.
    pub fn go_back(&mut self, session: &mut ReadingSession) {
        if !session.design().allow_back {
            return;
        }
        match session.go_back(&self.reader) {
            Ok(Some(case)) => {
                if let Err(e) = self.show(case) {
                    self.error = Some(e);
                }
            }
            Ok(None) => {}
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Pauses or resumes the reading clock; a paused screen hides the image.
    pub fn toggle_pause(&mut self, session: &mut ReadingSession) {
        let result = if self.paused { session.resume(&self.reader) } else { session.pause(&self.reader) };
        match result {
            Ok(()) => self.paused = !self.paused,
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Stops the clock before the screen is left.
    pub fn leave(&mut self, session: &mut ReadingSession) {
        if let Err(e) = session.pause(&self.reader) {
            log::error!("cannot pause the reading session: {e}");
        }
        self.paused = true;
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
    fn handle_keys(&mut self, ui: &egui::Ui, session: &mut ReadingSession) -> ReadingRequest {
        let ctx = ui.ctx().clone();
        let typing = ctx.egui_wants_keyboard_input() || self.typing_last_frame;
        let consume = |key| ctx.input_mut(|i| i.consume_key(Modifiers::NONE, key));
        if consume(Key::Escape) {
            if typing {
                ctx.memory_mut(|m| m.stop_text_input());
                return ReadingRequest::Stay;
            }
            self.leave(session);
            return ReadingRequest::Leave;
        }
        if typing {
            return ReadingRequest::Stay;
        }
        match &self.screen {
            Screen::Finished => {
                if consume(Key::Enter) {
                    return ReadingRequest::Leave;
                }
                if consume(Key::Backspace) {
                    self.go_back(session);
                }
            }
            Screen::Feedback(..) => {
                if consume(Key::Enter)
                    && let Err(e) = self.load_next(session)
                {
                    self.error = Some(e);
                }
            }
            Screen::Case(_) => {
                if consume(Key::P) {
                    self.toggle_pause(session);
                }
                if self.paused {
                    return ReadingRequest::Stay;
                }
                let scale = session.design().confidence_scale;
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
                    self.go_back(session);
                }
                if consume(Key::Enter) {
                    self.submit(session);
                }
            }
        }
        ReadingRequest::Stay
    }

    /// Keeps the reading time of the case on screen safe from a crash (a cheap call: the session throttles it).
    fn checkpoint_clock(&self, ctx: &egui::Context, session: &mut ReadingSession) {
        if self.paused || !matches!(self.screen, Screen::Case(_)) {
            return;
        }
        // A failed checkpoint costs only crash protection; the next answer's write reports a real problem.
        if let Err(e) = session.checkpoint_clock(&self.reader) {
            log::warn!("cannot checkpoint the reading clock: {e}");
        }
        ctx.request_repaint_after(CLOCK_CHECKPOINT_POLL);
    }

    /// Draws the whole screen. Call instead of every other panel.
    pub fn ui(&mut self, ui: &mut egui::Ui, session: &mut ReadingSession) -> ReadingRequest {
        let mut request = self.handle_keys(ui, session);
        self.checkpoint_clock(ui.ctx(), session);
        let frame = egui::Frame::central_panel(ui.style()).fill(egui::Color32::from_gray(12));
        egui::Panel::top("reading_top").show(ui, |ui| {
            if self.top_bar_ui(ui, session) {
                request = ReadingRequest::Leave;
            }
        });
        if matches!(self.screen, Screen::Case(_)) {
            egui::Panel::bottom("reading_answer").show(ui, |ui| self.answer_bar_ui(ui, session));
        }
        egui::CentralPanel::default().frame(frame).show(ui, |ui| {
            if self.central_ui(ui, session) {
                request = ReadingRequest::Leave;
            }
        });
        self.typing_last_frame = ui.ctx().egui_wants_keyboard_input();
        request
    }

    /// Progress, pause, viewer tools, exit. Returns true when the reader asked to leave.
    fn top_bar_ui(&mut self, ui: &mut egui::Ui, session: &mut ReadingSession) -> bool {
        let mut leave = false;
        ui.horizontal(|ui| {
            if let Some(text) = self.progress_text() {
                ui.label(egui::RichText::new(text).strong().size(16.0));
                ui.separator();
                let pause_text = if self.paused { "Resume (P)" } else { "Pause (P)" };
                if ui.button(pause_text).clicked() {
                    self.toggle_pause(session);
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
                    if session.design().allow_back && ui.button("Back (Backspace)").clicked() {
                        self.go_back(session);
                    }
                    ui.separator();
                    ui.label(egui::RichText::new(window_readout(&self.view)).weak());
                }
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Leave reading (Esc)").clicked() {
                    self.leave(session);
                    leave = true;
                }
                ui.label(egui::RichText::new(format!("Reader: {}", self.reader)).weak());
            });
        });
        leave
    }

    /// The answer controls below the image (the same for every case).
    fn answer_bar_ui(&mut self, ui: &mut egui::Ui, session: &mut ReadingSession) {
        let design = session.design().clone();
        ui.add_space(4.0);
        ui.add_enabled_ui(!self.paused, |ui| {
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
                    self.submit(session);
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
    fn central_ui(&mut self, ui: &mut egui::Ui, session: &mut ReadingSession) -> bool {
        let mut leave = false;
        match &self.screen {
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
                let giveaway_click = session.design().questions.giveaway_click;
                if giveaway_click {
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
                        next = ui.button("Next case (Enter)").clicked();
                    });
                });
                if next && let Err(e) = self.load_next(session) {
                    self.error = Some(e);
                }
                if let Screen::Feedback(..) = self.screen {
                    let id = ui.scope_id().with("study_reading_viewer");
                    radiograph_viewer_ui(ui, id, &image, &mut self.view, None);
                }
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
                    if session.design().allow_back && ui.button("Back to the last case (Backspace)").clicked() {
                        self.go_back(session);
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
