//! The classifier's probabilities for the real and the artificial image, as paired bars.

use std::collections::HashMap;

use crate::engine::Slot;
use crate::engine::request::Classification;

/// Latest probabilities per viewport.
#[derive(Default)]
pub struct ClassifierPanel {
    pub results: HashMap<Slot, Classification>,
}

const REAL_COLOR: egui::Color32 = egui::Color32::from_rgb(90, 160, 230);
const ARTIFICIAL_COLOR: egui::Color32 = egui::Color32::from_rgb(240, 160, 70);

impl ClassifierPanel {
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
                    ui.allocate_exact_size(egui::vec2(ui.available_width().max(80.0), 14.0), egui::Sense::hover());
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
