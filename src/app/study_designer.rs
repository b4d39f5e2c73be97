//! "New study...": design a blinded reading from a folder of real images and a folder of artificial images or
//! the generator in use, then create the study database on a background thread and open it.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use crate::app::artificial_size_survey::ArtificialSizeSurvey;
use crate::app::path_dialog::{DialogKind, PathDialogs};
use crate::engine::ModelSource;
use crate::study::design::MAX_BORDER_CROP_PERCENT;
use crate::study::generator_source::GeneratorSource;
use crate::study::harmonise::RealImageTransform;
use crate::study::randomise::derive_seed;
use crate::study::resolution_match::{ResolutionMatch, SIDE_SURVEY_SAMPLE, survey_sides};
use crate::study::{
    ArtificialSource, CaseMix, ConfidenceScale, DisplayBitDepth, DisplaySpec, FolderArtificialSource,
    OptionalQuestions, RealImageFolder, StudyDesign, StudySummary, create_study_harmonised,
};

/// The generator in use, offered as the artificial source.
#[derive(Clone, Debug)]
pub struct GeneratorChoice {
    pub source: ModelSource,
    pub name: String,
    /// The side panel's slider values, in the card's order.
    pub slider_labels: Vec<f32>,
    /// The side of the images it makes.
    pub side_px: u32,
    /// Random weights: its images are noise.
    pub untrained: bool,
}

/// Where the artificial cases come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtificialChoice {
    Folder,
    /// The generator with the real cases' labels replayed (needs a labels CSV).
    GeneratorReplay,
    /// The generator with the side panel's slider labels for every case.
    GeneratorSliders,
}

/// Which path a file dialog fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PathField {
    Real,
    Labels,
    Artificial,
    Output,
}

/// Everything the form holds.
#[derive(Clone, Debug, PartialEq)]
pub struct StudyForm {
    pub title: String,
    pub real: Option<PathBuf>,
    pub labels_csv: Option<PathBuf>,
    pub artificial_choice: ArtificialChoice,
    pub artificial: Option<PathBuf>,
    pub readers: String,
    pub cases: usize,
    pub practice: usize,
    pub artificial_fraction: f64,
    pub seed: u64,
    pub slider_confidence: bool,
    pub allow_back: bool,
    pub practice_feedback: bool,
    pub free_text: bool,
    pub giveaway_click: bool,
    pub display_size_px: u32,
    pub sixteen_bit: bool,
    /// Percent of each side cut off every case before display (burned-in text sits near real films' edges).
    pub border_crop_percent: u32,
    /// Bring real images down to the artificial images' resolution before display.
    pub match_resolution: bool,
    pub output: Option<PathBuf>,
}

impl Default for StudyForm {
    fn default() -> Self {
        Self {
            title: "Real or artificial?".to_owned(),
            real: None,
            labels_csv: None,
            artificial_choice: ArtificialChoice::Folder,
            artificial: None,
            readers: "reader1, reader2".to_owned(),
            cases: 20,
            practice: 2,
            artificial_fraction: 0.5,
            // Random, so that nobody can rebuild the study (and its answer key) by trying small seeds; it is
            // shown and recorded, so the study can still be made again. 53 bits: the seed field edits it as an
            // f64, which holds every integer up to 2^53 exactly.
            seed: uuid::Uuid::new_v4().as_u64_pair().0 >> 11,
            slider_confidence: false,
            allow_back: false,
            practice_feedback: true,
            free_text: false,
            giveaway_click: false,
            display_size_px: 512,
            sixteen_bit: false,
            border_crop_percent: 0,
            match_resolution: true,
            output: None,
        }
    }
}

impl StudyForm {
    /// The design and case mix, or what is missing.
    pub fn plan(&self) -> Result<(StudyDesign, CaseMix), String> {
        let readers: Vec<String> =
            self.readers.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned).collect();
        if readers.is_empty() {
            return Err("name at least one reader".to_owned());
        }
        if self.real.is_none() {
            return Err("pick the folder of real images".to_owned());
        }
        match self.artificial_choice {
            ArtificialChoice::Folder if self.artificial.is_none() => {
                return Err("pick the folder of artificial images".to_owned());
            }
            ArtificialChoice::GeneratorReplay if self.labels_csv.is_none() => {
                return Err("replaying real labels needs the real images' labels CSV".to_owned());
            }
            _ => {}
        }
        if self.output.is_none() {
            return Err("choose where to save the study".to_owned());
        }
        let display = DisplaySpec {
            size_px: self.display_size_px,
            bit_depth: if self.sixteen_bit { DisplayBitDepth::Sixteen } else { DisplayBitDepth::Eight },
            border_crop_percent: self.border_crop_percent,
        };
        let design = StudyDesign {
            // Only a study with a crop gets the newer version: older builds still open every other study.
            format_version: display.format_version(),
            title: self.title.trim().to_owned(),
            readers,
            confidence_scale: if self.slider_confidence {
                ConfidenceScale::Slider100
            } else {
                ConfidenceScale::FiveLevel
            },
            allow_back: self.allow_back,
            practice_feedback: self.practice_feedback,
            questions: OptionalQuestions { free_text: self.free_text, giveaway_click: self.giveaway_click },
            display,
            modality: "blinded".to_owned(),
            seed: self.seed,
        };
        let mix = CaseMix {
            main_cases: self.cases,
            practice_cases: self.practice,
            artificial_fraction: self.artificial_fraction,
            replay_real_labels: self.artificial_choice == ArtificialChoice::GeneratorReplay,
        };
        Ok((design, mix))
    }
}

/// Creates the study described by `form` (blocking: run it off the UI thread). Returns the database path.
pub fn create_from_form(
    form: &StudyForm,
    generator: Option<&GeneratorChoice>,
) -> Result<(PathBuf, StudySummary), String> {
    let (design, mix) = form.plan()?;
    let (Some(real_dir), Some(output)) = (&form.real, &form.output) else {
        return Err("the real folder and the output file are needed".to_owned());
    };
    let real = RealImageFolder::open(real_dir, form.labels_csv.as_deref()).map_err(|e| e.to_string())?;
    let (mut artificial, artificial_side_px): (Box<dyn ArtificialSource>, Option<u32>) = match form.artificial_choice {
        ArtificialChoice::Folder => {
            let folder = form.artificial.as_ref().ok_or("pick the folder of artificial images")?;
            let source = FolderArtificialSource::open(folder, derive_seed(form.seed, "artificial-folder"))
                .map_err(|e| e.to_string())?;
            let side_px = survey_sides(source.files(), SIDE_SURVEY_SAMPLE).map(|survey| survey.median_px);
            (Box::new(source), side_px)
        }
        ArtificialChoice::GeneratorReplay | ArtificialChoice::GeneratorSliders => {
            let generator = generator.ok_or("no generator is loaded in the workbench")?;
            if generator.untrained {
                return Err(format!(
                    "{} is an untrained placeholder: its images are noise, which every reader would tell from a \
                     radiograph. Pick a trained generator in the side panel.",
                    generator.name
                ));
            }
            let bytes = match &generator.source {
                ModelSource::Embedded { bytes, .. } => bytes.to_vec(),
                ModelSource::File(path) => {
                    std::fs::read(path).map_err(|e| format!("reading the generator {}: {e}", path.display()))?
                }
            };
            let chosen =
                (form.artificial_choice == ArtificialChoice::GeneratorSliders).then(|| generator.slider_labels.clone());
            // The study is built on the CPU: the worker keeps the GPU for the live views.
            let base_seed = derive_seed(form.seed, "generator") as u32;
            let source = GeneratorSource::from_model_bytes(
                &bytes,
                &generator.name,
                &candle_core::Device::Cpu,
                base_seed,
                chosen,
            )
            .map_err(|e| e.to_string())?;
            (Box::new(source), Some(generator.side_px))
        }
    };
    let mut matcher = match (form.match_resolution, artificial_side_px) {
        (true, Some(side_px)) if side_px > 0 => Some(ResolutionMatch { side_px }),
        _ => None,
    };
    let transform = matcher.as_mut().map(|m| m as &mut dyn RealImageTransform);
    let (_store, summary) = create_study_harmonised(output, &design, &mix, &real, artificial.as_mut(), transform)
        .map_err(|e| e.to_string())?;
    Ok((output.clone(), summary))
}

/// State of the "New study" window.
pub struct StudyDesigner {
    pub open: bool,
    pub form: StudyForm,
    /// Why the last creation failed.
    pub error: Option<String>,
    /// A study is being created.
    pub creating: bool,
    dialogs: PathDialogs<PathField>,
    /// Whether the chosen artificial folder mixes image sizes.
    artificial_sizes: ArtificialSizeSurvey,
    done_tx: Sender<Result<(PathBuf, StudySummary), String>>,
    done_rx: Receiver<Result<(PathBuf, StudySummary), String>>,
}

impl Default for StudyDesigner {
    fn default() -> Self {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        Self {
            open: false,
            form: StudyForm::default(),
            error: None,
            creating: false,
            dialogs: PathDialogs::default(),
            artificial_sizes: ArtificialSizeSurvey::default(),
            done_tx,
            done_rx,
        }
    }
}

impl StudyDesigner {
    /// Starts creating the study on a background thread (the form is copied; the UI keeps answering).
    pub fn create(&mut self, ctx: &egui::Context, generator: Option<GeneratorChoice>) {
        if self.creating {
            return;
        }
        if let Err(e) = self.form.plan() {
            self.error = Some(e);
            return;
        }
        self.creating = true;
        self.error = None;
        let form = self.form.clone();
        let tx = self.done_tx.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new().name("thorax-study-create".to_owned()).spawn(move || {
            tx.send(create_from_form(&form, generator.as_ref())).ok();
            ctx.request_repaint();
        });
        if let Err(e) = spawned {
            self.creating = false;
            self.error = Some(format!("cannot start the study creation: {e}"));
        }
    }

    /// A finished creation, once: the new study's path and summary.
    pub fn poll(&mut self) -> Option<(PathBuf, StudySummary)> {
        match self.done_rx.try_recv() {
            Ok(Ok(created)) => {
                self.creating = false;
                self.open = false;
                Some(created)
            }
            Ok(Err(e)) => {
                self.creating = false;
                self.error = Some(e);
                None
            }
            Err(_) => None,
        }
    }

    fn pick(&mut self, ctx: &egui::Context, field: PathField) {
        let (title, kind) = match field {
            PathField::Real | PathField::Artificial => ("Pick a folder of images", DialogKind::PickFolder),
            PathField::Labels => ("Labels CSV", DialogKind::PickFile { filter_name: "CSV", extensions: &["csv"] }),
            PathField::Output => (
                "Save the study as",
                DialogKind::SaveFile {
                    file_name: "study.sqlite".to_owned(),
                    filter_name: "Study database",
                    extensions: &["sqlite"],
                    new_only: true,
                },
            ),
        };
        if let Err(e) = self.dialogs.request(ctx, field, title, kind, None) {
            self.error = Some(e);
        }
    }

    /// Fills the field a dialog answered for.
    fn poll_dialogs(&mut self, ctx: &egui::Context) {
        if let Some((field, path)) = self.dialogs.poll(ctx) {
            self.error = None;
            match field {
                PathField::Real => self.form.real = Some(path),
                PathField::Labels => self.form.labels_csv = Some(path),
                PathField::Artificial => self.form.artificial = Some(path),
                PathField::Output => self.form.output = Some(path),
            }
        }
    }

    /// The window; `generator` is the generator in use (offered as the artificial source).
    pub fn window_ui(&mut self, ctx: &egui::Context, generator: Option<GeneratorChoice>) {
        if !self.open {
            return;
        }
        self.poll_dialogs(ctx);
        let folder =
            self.form.artificial.as_deref().filter(|_| self.form.artificial_choice == ArtificialChoice::Folder);
        self.artificial_sizes.update(ctx, folder);
        let mut open = true;
        // The form scrolls inside a window no taller than the screen, so "Create study" stays reachable in a small
        // window (800 x 600 cut it off).
        let top_px = 70.0;
        let max_height = (ctx.content_rect().height() - top_px - 50.0).max(160.0);
        egui::Window::new("New study").open(&mut open).default_width(460.0).default_pos([340.0, top_px]).show(
            ctx,
            |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("study_form_scroll")
                    .max_height(max_height)
                    .show(ui, |ui| self.form_ui(ui, generator));
            },
        );
        if !open {
            self.open = false;
        }
    }

    fn path_row(&mut self, ui: &mut egui::Ui, label: &str, field: PathField, button: &str) {
        let value = match field {
            PathField::Real => &self.form.real,
            PathField::Labels => &self.form.labels_csv,
            PathField::Artificial => &self.form.artificial,
            PathField::Output => &self.form.output,
        };
        let text = value.as_ref().map_or_else(|| "(none)".to_owned(), |p| p.display().to_string());
        ui.label(label);
        ui.horizontal(|ui| {
            if ui.button(button).clicked() {
                self.pick(ui.ctx(), field);
            }
            ui.add(egui::Label::new(egui::RichText::new(text).weak()).truncate());
        });
        ui.end_row();
    }

    fn form_ui(&mut self, ui: &mut egui::Ui, generator: Option<GeneratorChoice>) {
        let before = self.form.clone();
        let folder_chosen = self.form.artificial_choice == ArtificialChoice::Folder;
        egui::Grid::new("study_form").num_columns(2).spacing([10.0, 6.0]).show(ui, |ui| {
            let title = ui.label("Title");
            ui.text_edit_singleline(&mut self.form.title).labelled_by(title.id);
            ui.end_row();
            self.path_row(ui, "Real images", PathField::Real, "Folder...");
            self.path_row(ui, "Labels CSV (optional)", PathField::Labels, "File...");
            ui.label("Artificial images");
            ui.vertical(|ui| {
                let choice = &mut self.form.artificial_choice;
                ui.radio_value(choice, ArtificialChoice::Folder, "From a folder");
                let name = generator.as_ref().map_or("no generator loaded".to_owned(), |g| g.name.clone());
                ui.add_enabled_ui(generator.is_some(), |ui| {
                    ui.radio_value(
                        choice,
                        ArtificialChoice::GeneratorReplay,
                        format!("Generator ({name}), labels replayed from the real cases"),
                    );
                    ui.radio_value(
                        choice,
                        ArtificialChoice::GeneratorSliders,
                        "Generator, the side panel's slider labels for every case",
                    );
                });
            });
            ui.end_row();
            if self.form.artificial_choice == ArtificialChoice::Folder {
                self.path_row(ui, "Artificial folder", PathField::Artificial, "Folder...");
            }
            let readers = ui.label("Readers (comma separated)");
            ui.text_edit_singleline(&mut self.form.readers).labelled_by(readers.id);
            ui.end_row();
            let cases = ui.label("Cases");
            ui.add(egui::DragValue::new(&mut self.form.cases).range(2..=10_000)).labelled_by(cases.id);
            ui.end_row();
            let practice = ui.label("Practice cases");
            ui.add(egui::DragValue::new(&mut self.form.practice).range(0..=100)).labelled_by(practice.id);
            ui.end_row();
            let fraction = ui.label("Artificial fraction");
            ui.add(egui::Slider::new(&mut self.form.artificial_fraction, 0.0..=1.0)).labelled_by(fraction.id);
            ui.end_row();
            let seed = ui.label("Seed");
            ui.add(egui::DragValue::new(&mut self.form.seed)).labelled_by(seed.id);
            ui.end_row();
            ui.label("Confidence");
            ui.horizontal(|ui| {
                ui.radio_value(&mut self.form.slider_confidence, false, "1-5");
                ui.radio_value(&mut self.form.slider_confidence, true, "0-100 slider");
            });
            ui.end_row();
            ui.label("Questions");
            ui.vertical(|ui| {
                ui.checkbox(&mut self.form.free_text, "Free-text comment");
                ui.checkbox(&mut self.form.giveaway_click, "Click on what gave it away");
                ui.checkbox(&mut self.form.allow_back, "Readers may go back");
                ui.checkbox(&mut self.form.practice_feedback, "Feedback after practice cases");
            });
            ui.end_row();
            let size = ui.label("Display size (px)");
            ui.add(egui::DragValue::new(&mut self.form.display_size_px).range(64..=4096)).labelled_by(size.id);
            ui.end_row();
            ui.label("Display depth");
            ui.horizontal(|ui| {
                ui.radio_value(&mut self.form.sixteen_bit, false, "8-bit");
                ui.radio_value(&mut self.form.sixteen_bit, true, "16-bit");
            });
            ui.end_row();
            let crop = ui.label("Crop border (%)");
            ui.add(egui::DragValue::new(&mut self.form.border_crop_percent).range(0..=MAX_BORDER_CROP_PERCENT))
                .labelled_by(crop.id)
                .on_hover_text(
                    "Cut this percent of the width off the left and the right, and of the height off the top and \
                     the bottom, of every case, real and artificial alike, before display. Real films carry burned-in \
                     text near their edges (side markers L/R, \"Liegend\", device labels, dates) that artificial ones \
                     lack: readers would tell them apart by the border alone. A study with a crop needs this build \
                     or a newer one to open.",
                );
            ui.end_row();
            ui.label("Resolution");
            let side = match self.form.artificial_choice {
                ArtificialChoice::Folder => "the artificial images'".to_owned(),
                _ => generator
                    .as_ref()
                    .map_or("the generator's".to_owned(), |g| format!("the generator's {} px", g.side_px)),
            };
            ui.checkbox(&mut self.form.match_resolution, format!("Real images brought down to {side} resolution"))
                .on_hover_text(
                    "Upscaled to the display size, real films larger than the artificial images stay sharp while the \
                     artificial ones are soft: readers then tell them apart by sharpness alone",
                );
            ui.end_row();
            if let Some(warning) = self.artificial_sizes.warning().filter(|_| folder_chosen) {
                ui.label("");
                ui.label(egui::RichText::new(format!("Warning: {warning}.")).color(ui.visuals().warn_fg_color));
                ui.end_row();
            }
            self.path_row(ui, "Save as", PathField::Output, "File...");
        });
        ui.label(
            egui::RichText::new(
                "Every case goes through the same display pipeline (border crop, size, depth, resampling); no names \
                 or metadata reach the reader. Pixels do: burned-in text, side markers and devices appear on real \
                 films only. Text near the edges goes with \"Crop border (%)\", cut from every case alike; choose \
                 real films without text or devices further in.",
            )
            .weak()
            .small(),
        );
        ui.horizontal(|ui| {
            if ui.add_enabled(!self.creating, egui::Button::new("Create study")).clicked() {
                self.create(ui.ctx(), generator.clone());
            }
            if self.creating {
                ui.spinner();
                ui.label("Creating the study");
            }
        });
        if self.form != before {
            // The error was about the inputs as they were.
            self.error = None;
        }
        if let Some(error) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names_what_is_missing() {
        let mut form = StudyForm::default();
        assert_eq!(form.plan().unwrap_err(), "pick the folder of real images");
        form.real = Some(PathBuf::from("/tmp/real"));
        assert_eq!(form.plan().unwrap_err(), "pick the folder of artificial images");
        form.artificial_choice = ArtificialChoice::GeneratorReplay;
        assert!(form.plan().unwrap_err().contains("labels CSV"));
        form.artificial_choice = ArtificialChoice::GeneratorSliders;
        assert_eq!(form.plan().unwrap_err(), "choose where to save the study");
        form.output = Some(PathBuf::from("/tmp/s.sqlite"));
        form.readers = " , ".to_owned();
        assert_eq!(form.plan().unwrap_err(), "name at least one reader");
        form.readers = "ann, ben".to_owned();
        let (design, mix) = form.plan().unwrap();
        assert_eq!(design.readers, ["ann", "ben"]);
        assert!(!mix.replay_real_labels);
        assert_eq!(design.display.border_crop_percent, 0);
        assert_eq!(design.format_version, 1, "a study without a crop stays readable by older builds");
        form.border_crop_percent = 10;
        let (design, _) = form.plan().unwrap();
        assert_eq!(design.display.border_crop_percent, 10);
        assert_eq!(design.format_version, 2, "older builds refuse a study with a crop");
    }

    #[test]
    fn an_untrained_generator_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let form = StudyForm {
            real: Some(dir.path().to_path_buf()),
            output: Some(dir.path().join("s.sqlite")),
            artificial_choice: ArtificialChoice::GeneratorSliders,
            ..StudyForm::default()
        };
        let placeholder = GeneratorChoice {
            source: ModelSource::File(dir.path().join("never-read.safetensors")),
            name: "ProGAN (untrained placeholder)".to_owned(),
            slider_labels: vec![0.0; 14],
            side_px: 64,
            untrained: true,
        };
        let error = create_from_form(&form, Some(&placeholder)).unwrap_err();
        assert!(error.contains("untrained placeholder: its images are noise"), "{error}");
        assert!(!dir.path().join("s.sqlite").exists());
    }
}
