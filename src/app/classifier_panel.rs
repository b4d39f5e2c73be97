//! The classifier's probabilities for the real and the artificial image, as paired bars.

use std::collections::HashMap;

use crate::app::radiograph_renderer::Colormap;
use crate::engine::Slot;
use crate::engine::request::Classification;
use crate::models::heatmap::HeatmapMethod;

/// What the heatmap overlay shows, for both views alike.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatmapSettings {
    pub enabled: bool,
    /// A classifier label name.
    pub target: String,
    pub method: HeatmapMethod,
    pub opacity: f32,
    /// Map values below this are not drawn.
    pub threshold: f32,
    pub colormap: Colormap,
}

impl Default for HeatmapSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            target: "Cardiomegaly".to_owned(),
            // CAM shows a map for every label; Grad-CAM's positive evidence was blank for the top label of 7 of
            // 12 sample films with the default classifier.
            method: HeatmapMethod::Cam,
            opacity: 0.45,
            threshold: 0.2,
            colormap: Colormap::Jet,
        }
    }
}

/// Latest probabilities per viewport and the heatmap settings.
#[derive(Default)]
pub struct ClassifierPanel {
    pub results: HashMap<Slot, Classification>,
    pub heatmap: HeatmapSettings,
    /// Notes from the last maps (e.g. "blank: zero gradient"), per view.
    pub heatmap_notes: HashMap<Slot, String>,
}

/// What changed in the heatmap controls this frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeatmapChange {
    /// Target, method or on/off changed: maps must be recomputed.
    pub recompute: bool,
    /// Only the look changed (opacity, threshold, colour map).
    pub restyle: bool,
}

const REAL_COLOR: egui::Color32 = egui::Color32::from_rgb(90, 160, 230);
const ARTIFICIAL_COLOR: egui::Color32 = egui::Color32::from_rgb(240, 160, 70);

impl ClassifierPanel {
    /// Heatmap controls: on/off, target label, method, opacity, threshold, colour map.
    pub fn heatmap_ui(&mut self, ui: &mut egui::Ui, labels: &[String]) -> HeatmapChange {
        let before = self.heatmap.clone();
        let settings = &mut self.heatmap;
        ui.checkbox(&mut settings.enabled, "Heatmap overlay");
        ui.add_enabled_ui(settings.enabled, |ui| {
            // Room for the row names and the value; the slider takes what is left of a narrow panel.
            ui.spacing_mut().slider_width = (ui.available_width() - 130.0).clamp(32.0, 100.0);
            egui::Grid::new("heatmap_controls").num_columns(2).spacing([6.0, 2.0]).show(ui, |ui| {
                let target_label = ui.label("Target");
                egui::ComboBox::from_id_salt("heatmap_target")
                    .selected_text(settings.target.replace('_', " "))
                    .show_ui(ui, |ui| {
                        for label in labels {
                            ui.selectable_value(&mut settings.target, label.clone(), label.replace('_', " "));
                        }
                    })
                    .response
                    .labelled_by(target_label.id);
                ui.end_row();
                let method_label = ui.label("Method");
                egui::ComboBox::from_id_salt("heatmap_method")
                    .selected_text(settings.method.to_string())
                    .show_ui(ui, |ui| {
                        for method in HeatmapMethod::ALL {
                            ui.selectable_value(&mut settings.method, method, method.to_string());
                        }
                    })
                    .response
                    .labelled_by(method_label.id);
                ui.end_row();
                let opacity_label = ui.label("Opacity");
                ui.add(egui::Slider::new(&mut settings.opacity, 0.0..=1.0)).labelled_by(opacity_label.id);
                ui.end_row();
                let threshold_label = ui.label("Threshold");
                ui.add(egui::Slider::new(&mut settings.threshold, 0.0..=1.0)).labelled_by(threshold_label.id);
                ui.end_row();
                let colormap_label = ui.label("Colours");
                egui::ComboBox::from_id_salt("heatmap_colormap")
                    .selected_text(settings.colormap.name())
                    .show_ui(ui, |ui| {
                        for option in [Colormap::Jet, Colormap::Viridis, Colormap::Inferno] {
                            ui.selectable_value(&mut settings.colormap, option, option.name());
                        }
                    })
                    .response
                    .labelled_by(colormap_label.id);
                ui.end_row();
            });
        });
        for (slot, note) in &self.heatmap_notes {
            ui.label(egui::RichText::new(format!("{slot:?}: {note}")).weak());
        }
        let after = &self.heatmap;
        HeatmapChange {
            recompute: after.enabled != before.enabled
                || after.target != before.target
                || after.method != before.method,
            restyle: after.opacity != before.opacity
                || after.threshold != before.threshold
                || after.colormap != before.colormap,
        }
    }

    pub fn ui(&self, ui: &mut egui::Ui, untrained: bool) {
        let labels =
            self.results.get(&Slot::Real).or_else(|| self.results.get(&Slot::Artificial)).map(|c| c.labels.clone());
        let Some(labels) = labels else {
            ui.label(egui::RichText::new("No classification yet").weak());
            return;
        };
        if untrained {
            ui.colored_label(ui.visuals().warn_fg_color, "UNTRAINED classifier: probabilities are meaningless");
        }
        ui.horizontal(|ui| {
            ui.colored_label(REAL_COLOR, "Real");
            ui.colored_label(ARTIFICIAL_COLOR, "Artificial");
        });
        let probability = |slot: Slot, index: usize| {
            self.results
                .get(&slot)
                .and_then(|c| (c.labels.get(index) == labels.get(index)).then_some(c))
                .and_then(|c| c.probabilities.get(index).copied())
        };
        egui::Grid::new("classifier_bars").num_columns(2).spacing([6.0, 1.0]).show(ui, |ui| {
            for (index, name) in labels.iter().enumerate() {
                ui.label(name.replace('_', " "));
                let (rect, response) =
                    ui.allocate_exact_size(egui::vec2(ui.available_width().max(24.0), 14.0), egui::Sense::hover());
                let painter = ui.painter_at(rect);
                painter.rect_filled(rect, 1.0, ui.visuals().extreme_bg_color);
                let mut tooltip = String::new();
                for (row, (slot, color)) in
                    [(Slot::Real, REAL_COLOR), (Slot::Artificial, ARTIFICIAL_COLOR)].into_iter().enumerate()
                {
                    if let Some(p) = probability(slot, index) {
                        let top = rect.top() + row as f32 * rect.height() / 2.0;
                        let bar = egui::Rect::from_min_size(
                            egui::pos2(rect.left(), top + 1.0),
                            egui::vec2(rect.width() * p.clamp(0.0, 1.0), rect.height() / 2.0 - 1.0),
                        );
                        painter.rect_filled(bar, 0.0, color);
                        tooltip.push_str(&format!("{slot:?}: {p:.3}\n"));
                    }
                }
                response.on_hover_text(tooltip.trim_end());
                ui.end_row();
            }
        });
    }
}
