//! The generator controls: model picker, pathology sliders in the card's order, seed.

use crate::app::model_shelf::{ModelChoice, ModelShelf, ShelfAction};
use crate::engine::Request;
use crate::models::card::ModelKind;

/// Width of the seed field: ten digits at the default font.
const SEED_FIELD_WIDTH_PX: f32 = 84.0;

/// What the side panel shows for the conditional generator.
pub struct GeneratorPanel {
    pub models: ModelShelf,
    /// Slider values in the selected card's label order.
    pub labels: Vec<f32>,
    pub seed: u32,
    /// Milliseconds the last image took on the worker.
    pub last_run_ms: Option<f64>,
}

impl Default for GeneratorPanel {
    fn default() -> Self {
        // A trained model is preferred when one ships.
        let models = ModelShelf::embedded(ModelKind::ProganGenerator);
        let labels = models.current().map_or_else(Vec::new, |m| vec![0.0; m.card.labels.len()]);
        Self { models, labels, seed: 1000, last_run_ms: None }
    }
}

/// What the generator controls asked for this frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GeneratorAction {
    /// Model, labels or seed changed: a new image is due.
    pub regenerate: bool,
    /// "Open model..." was chosen.
    pub open_model: bool,
}

impl GeneratorPanel {
    pub fn current(&self) -> Option<&ModelChoice> {
        self.models.current()
    }

    /// Adds an opened generator file, selects it and resets the sliders to its labels.
    pub fn add_model(&mut self, choice: ModelChoice) {
        self.labels = vec![0.0; choice.card.labels.len()];
        self.models.add(choice);
    }

    /// The request for the current settings, if a generator is available.
    pub fn request(&self) -> Option<Request> {
        let model = self.current()?;
        Some(Request::Generate { model: model.source.clone(), labels: self.labels.clone(), seed: self.seed })
    }

    /// Draws the controls; says whether a new image is due and whether a model file should be opened.
    pub fn ui(&mut self, ui: &mut egui::Ui) -> GeneratorAction {
        let mut changed = false;
        let shelf_action = self.models.ui(ui, "generator_model");
        let open_model = shelf_action == ShelfAction::OpenRequested;
        if shelf_action == ShelfAction::Selected {
            self.labels = vec![0.0; self.current().map_or(0, |m| m.card.labels.len())];
            changed = true;
        }
        let Some(model) = self.current() else {
            ui.label(egui::RichText::new("No generator: Open model... a ProGAN .safetensors file").weak());
            return GeneratorAction { regenerate: false, open_model };
        };
        let card = model.card.clone();
        if card.untrained {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "UNTRAINED: random weights, output is noise-like, not a radiograph",
            );
        }
        if let Some(note) = card.training_limits_note() {
            ui.label(egui::RichText::new(note).small());
        }

        ui.horizontal_wrapped(|ui| {
            let seed_label = ui.label("Seed");
            if ui.small_button("-").clicked() {
                self.seed = self.seed.wrapping_sub(1);
                changed = true;
            }
            // Wide enough for any u32 and fixed, so the buttons after it never move under the pointer.
            let seed_size = egui::vec2(SEED_FIELD_WIDTH_PX, ui.spacing().interact_size.y);
            changed |= ui
                .add_sized(seed_size, egui::DragValue::new(&mut self.seed).speed(1.0))
                .labelled_by(seed_label.id)
                .changed();
            if ui.small_button("+").clicked() {
                self.seed = self.seed.wrapping_add(1);
                changed = true;
            }
            if ui.small_button("Random").on_hover_text("Random seed").clicked() {
                self.seed = random_seed();
                changed = true;
            }
        });

        // Room for the longest name ("Pleural Thickening") and the value; the slider takes what is left.
        ui.spacing_mut().slider_width = (ui.available_width() - 160.0).clamp(32.0, 100.0);
        egui::Grid::new("pathology_sliders").num_columns(2).spacing([6.0, 2.0]).show(ui, |ui| {
            for (name, value) in card.labels.iter().zip(self.labels.iter_mut()) {
                let name_label = ui.label(name.replace('_', " "));
                ui.horizontal(|ui| {
                    changed |= ui
                        .add(egui::Slider::new(value, 0.0..=1.0).show_value(false))
                        .labelled_by(name_label.id)
                        .changed();
                    ui.label(format!("{value:.2}"));
                });
                ui.end_row();
            }
        });
        ui.horizontal(|ui| {
            if ui.small_button("Reset labels").clicked() {
                self.labels.iter_mut().for_each(|v| *v = 0.0);
                changed = true;
            }
            if let Some(ms) = self.last_run_ms {
                ui.label(egui::RichText::new(format!("{ms:.0} ms per image")).weak());
            }
        });
        GeneratorAction { regenerate: changed, open_model }
    }

    /// What File ▸ Export label traversal animates for `label_index`: the current generator, seed and sliders.
    pub fn traversal_job(
        &self,
        label_index: usize,
        sweep: crate::app::traversal_export::TraversalSweep,
    ) -> Option<crate::app::traversal_export::TraversalJob> {
        let model = self.current()?.clone();
        (label_index < self.labels.len()).then(|| crate::app::traversal_export::TraversalJob {
            model,
            seed: self.seed,
            labels: self.labels.clone(),
            label_index,
            sweep,
        })
    }
}

/// A seed from the clock; reproducibility comes from the seed shown, not from how it was picked.
fn random_seed() -> u32 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    nanos.wrapping_mul(2_654_435_761)
}
