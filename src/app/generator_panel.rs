//! The generator controls: model picker, pathology sliders in the card's order, seed.

use crate::engine::{ModelSource, Request};
use crate::models::card::ModelKind;
use crate::models::registry::{EmbeddedModel, embedded_models};

/// What the side panel shows for the conditional generator.
pub struct GeneratorPanel {
    models: Vec<EmbeddedModel>,
    selected: usize,
    /// Slider values in the selected card's label order.
    pub labels: Vec<f32>,
    pub seed: u32,
    /// Milliseconds the last image took on the worker.
    pub last_run_ms: Option<f64>,
}

impl Default for GeneratorPanel {
    fn default() -> Self {
        let models: Vec<EmbeddedModel> =
            embedded_models().into_iter().filter(|m| m.card.kind == ModelKind::ProganGenerator).collect();
        // Prefer a trained model when one ships.
        let selected = models.iter().position(|m| !m.card.untrained).unwrap_or(0);
        let labels = models.get(selected).map_or_else(Vec::new, |m| vec![0.0; m.card.labels.len()]);
        Self { models, selected, labels, seed: 1000, last_run_ms: None }
    }
}

impl GeneratorPanel {
    pub fn current(&self) -> Option<&EmbeddedModel> {
        self.models.get(self.selected)
    }

    /// The request for the current settings, if a generator is available.
    pub fn request(&self) -> Option<Request> {
        let model = self.current()?;
        Some(Request::Generate {
            model: ModelSource::Embedded { file_name: model.file_name, bytes: model.bytes },
            labels: self.labels.clone(),
            seed: self.seed,
        })
    }

    /// Draws the controls; returns true when a new image should be generated.
    pub fn ui(&mut self, ui: &mut egui::Ui) -> bool {
        let mut changed = false;
        let Some(model) = self.models.get(self.selected) else {
            ui.label(egui::RichText::new("No generator is embedded in this build.").weak());
            return false;
        };
        let card = model.card.clone();
        let mut selected = self.selected;
        let model_label = ui.label("Model");
        egui::ComboBox::from_id_salt("generator_model")
            .selected_text(card.name.clone())
            .width(ui.available_width() - 8.0)
            .show_ui(ui, |ui| {
                for (index, option) in self.models.iter().enumerate() {
                    ui.selectable_value(&mut selected, index, option.card.name.clone());
                }
            })
            .response
            .labelled_by(model_label.id)
            .on_hover_text(card_summary(model));
        if selected != self.selected {
            self.selected = selected;
            self.labels = vec![0.0; self.models.get(selected).map_or(0, |m| m.card.labels.len())];
            changed = true;
        }
        if card.untrained {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "UNTRAINED: random weights, output is noise-like, not a radiograph",
            );
        }

        ui.horizontal(|ui| {
            let seed_label = ui.label("Seed");
            if ui.small_button("-").clicked() {
                self.seed = self.seed.wrapping_sub(1);
                changed = true;
            }
            changed |= ui.add(egui::DragValue::new(&mut self.seed).speed(1.0)).labelled_by(seed_label.id).changed();
            if ui.small_button("+").clicked() {
                self.seed = self.seed.wrapping_add(1);
                changed = true;
            }
            if ui.small_button("Random").on_hover_text("Random seed").clicked() {
                self.seed = random_seed();
                changed = true;
            }
            if ui.small_button("Reset labels").clicked() {
                self.labels.iter_mut().for_each(|v| *v = 0.0);
                changed = true;
            }
        });

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
        if let Some(ms) = self.last_run_ms {
            ui.label(egui::RichText::new(format!("{ms:.0} ms per image")).weak());
        }
        changed
    }
}

fn card_summary(model: &EmbeddedModel) -> String {
    let card = &model.card;
    format!(
        "{}\n{} px, {} labels{}\nSource: {}\nSHA-256: {}...",
        card.name,
        card.resolution,
        card.labels.len(),
        if card.untrained { ", UNTRAINED" } else { "" },
        card.provenance.source,
        model.sha256.get(..16).unwrap_or(&model.sha256)
    )
}

/// A seed from the clock; reproducibility comes from the seed shown, not from how it was picked.
fn random_seed() -> u32 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    nanos.wrapping_mul(2_654_435_761)
}
