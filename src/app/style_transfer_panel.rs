//! The style transfer controls: CycleGAN model, direction (named with the card's domains), apply to the real image,
//! and whether the third viewport shows the translation or its |difference| from the real image.

use crate::app::model_shelf::{ModelChoice, ModelShelf, ShelfAction};
use crate::engine::Request;
use crate::engine::request::TranslatedImage;
use crate::imaging::GrayImage;
use crate::models::card::ModelKind;
use crate::models::cyclegan::Direction;
use crate::models::style_transfer::{NetworkScale, card_direction, direction_label, generator_name};

/// What the style transfer controls asked for this frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StyleTransferAction {
    /// Model, direction or the toggle changed: the translation is due again (or the pane hides).
    pub retranslate: bool,
    /// The difference toggle changed: the pane shows the other image.
    pub display_changed: bool,
    /// "Open model..." was chosen.
    pub open_model: bool,
}

/// Style transfer settings and the newest result.
pub struct StyleTransferPanel {
    pub models: ModelShelf,
    /// The direction the user asked for; the selected generator must map it.
    pub direction: Direction,
    /// "Apply to real image": the third viewport shows the translated real image.
    pub enabled: bool,
    /// The third viewport shows |translated - real| instead of the translation.
    pub show_difference: bool,
    /// Whether the generator sees the image at its training scale or at the image's own pixels.
    pub scale: NetworkScale,
    /// The newest translation of the real image shown.
    pub result: Option<TranslatedImage>,
    /// Milliseconds the last translation took on the worker.
    pub last_run_ms: Option<f64>,
}

impl Default for StyleTransferPanel {
    fn default() -> Self {
        let models = ModelShelf::embedded(ModelKind::CycleganGenerator);
        let direction = models.current().and_then(|m| card_direction(&m.card)).unwrap_or(Direction::AToB);
        Self {
            models,
            direction,
            enabled: false,
            show_difference: false,
            scale: NetworkScale::Training,
            result: None,
            last_run_ms: None,
        }
    }
}

impl StyleTransferPanel {
    /// The selected generator, when it maps the chosen direction.
    pub fn generator(&self) -> Option<&ModelChoice> {
        self.models.current().filter(|m| card_direction(&m.card) == Some(self.direction))
    }

    /// The translation request for `image`, when style transfer is on and a generator maps the direction.
    pub fn request(&self, image: &GrayImage) -> Option<Request> {
        if !self.enabled {
            return None;
        }
        let model = self.generator()?;
        let (model, direction, scale) = (model.source.clone(), self.direction, self.scale);
        Some(Request::Translate { model, direction, scale, image: image.clone() })
    }

    /// Selects the opened generator and takes its direction.
    pub fn add_model(&mut self, choice: ModelChoice) {
        if let Some(direction) = card_direction(&choice.card) {
            self.direction = direction;
        }
        self.models.add(choice);
    }

    /// Chooses `direction` and selects a generator that maps it: the current one, else the first one whose card
    /// names the same domains. Without one, the direction stays chosen and nothing is translated.
    pub fn set_direction(&mut self, direction: Direction) {
        self.direction = direction;
        if self.generator().is_some() {
            return;
        }
        let domains = self.models.current().map(|m| m.card.labels.clone());
        let matching = self.models.choices().iter().position(|m| {
            card_direction(&m.card) == Some(direction) && domains.as_ref().is_none_or(|d| *d == m.card.labels)
        });
        if let Some(index) = matching {
            self.models.select(index);
        }
    }

    /// The image the third viewport shows: the translation, or its |difference|.
    pub fn shown(&self) -> Option<&crate::engine::request::PreparedImage> {
        self.result.as_ref().map(|r| if self.show_difference { &r.difference } else { &r.translated })
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) -> StyleTransferAction {
        let mut action = StyleTransferAction::default();
        match self.models.ui(ui, "cyclegan_model") {
            ShelfAction::Selected => {
                if let Some(direction) = self.models.current().and_then(|m| card_direction(&m.card)) {
                    self.direction = direction;
                }
                action.retranslate = true;
            }
            ShelfAction::OpenRequested => action.open_model = true,
            ShelfAction::Nothing => {}
        }
        let Some(card) = self.models.current().map(|m| m.card.clone()) else {
            ui.label(egui::RichText::new("No CycleGAN: Open model... a generator .safetensors file").weak());
            return action;
        };
        let direction_text =
            |direction| format!("{} ({})", direction_label(&card, direction), generator_name(direction));
        let mut direction = self.direction;
        ui.horizontal(|ui| {
            let direction_label_widget = ui.label("Direction");
            egui::ComboBox::from_id_salt("cyclegan_direction")
                .selected_text(direction_text(direction))
                .width((ui.available_width() - 8.0).max(40.0))
                .truncate()
                .show_ui(ui, |ui| {
                    for option in [Direction::AToB, Direction::BToA] {
                        ui.selectable_value(&mut direction, option, direction_text(option));
                    }
                })
                .response
                .labelled_by(direction_label_widget.id)
                .on_hover_text("A CycleGAN file holds one generator: G_A maps A to B, G_B maps B to A");
        });
        if direction != self.direction {
            self.set_direction(direction);
            action.retranslate = true;
        }
        if self.generator().is_none() {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "No {} generator ({}) is loaded: Open model... its file",
                    direction_label(&card, self.direction),
                    generator_name(self.direction)
                ),
            );
        }
        if card.untrained {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "UNTRAINED: random weights, the translation is noise-like, not a style",
            );
        }
        if let Some(note) = card.training_limits_note() {
            ui.label(egui::RichText::new(note).small());
        }
        // Wrapped, so a narrow panel puts the second box under the first instead of past its edge.
        ui.horizontal_wrapped(|ui| {
            action.retranslate |= ui
                .checkbox(&mut self.enabled, "Apply to real image")
                .on_hover_text("Shows the translated real image in a third viewport")
                .changed();
            action.display_changed |= ui
                .add_enabled(self.enabled, egui::Checkbox::new(&mut self.show_difference, "Show |difference|"))
                .on_hover_text("|translated - real| in 8-bit units, instead of the translation")
                .changed();
        });
        if let Some(side_px) = card.training_side_px() {
            let mut at_training_scale = self.scale == NetworkScale::Training;
            let changed = ui
                .add_enabled(
                    self.enabled,
                    egui::Checkbox::new(&mut at_training_scale, format!("At training scale ({side_px} px)")),
                )
                .on_hover_text(format!(
                    "The generator learned its style on {side_px} px images: it sees the image resized so that the \
                     shorter side is {side_px} px, and the result is brought back to the image's size (softer). \
                     Off: it runs on the image's own pixels, sharper but on structures larger than it was trained on"
                ))
                .changed();
            if changed {
                self.scale = if at_training_scale { NetworkScale::Training } else { NetworkScale::Native };
                action.retranslate = true;
            }
        }
        if let Some(ms) = self.last_run_ms {
            ui.label(egui::RichText::new(format!("{ms:.0} ms per translation")).weak());
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ModelSource;

    /// The embedded placeholder's card with the other direction: the G_B of the same pair.
    fn g_b() -> ModelChoice {
        let mut choice = ModelShelf::embedded(ModelKind::CycleganGenerator).current().unwrap().clone();
        choice.card.hyper.insert("direction_b2a".to_owned(), 1.0);
        choice.card.name = "G_B".to_owned();
        choice.source = ModelSource::File("/models/g_b.safetensors".into());
        choice
    }

    #[test]
    fn the_direction_follows_the_generator_and_picks_one_that_maps_it() {
        let mut panel = StyleTransferPanel::default();
        assert_eq!(panel.direction, Direction::AToB, "the default is G_A (NIH -> Guangzhou)");
        let image = GrayImage::new(8, 8, crate::imaging::BitDepth::U8, vec![0.0; 64]).unwrap();
        assert!(panel.request(&image).is_none(), "off until applied");
        panel.enabled = true;
        assert!(matches!(panel.request(&image), Some(Request::Translate { direction: Direction::AToB, .. })));
        // The embedded defaults hold both directions of the pair: B -> A picks the embedded G_B.
        panel.set_direction(Direction::BToA);
        let embedded_b = panel.generator().expect("the embedded G_B").clone();
        assert_eq!(card_direction(&embedded_b.card), Some(Direction::BToA));
        assert!(matches!(embedded_b.source, ModelSource::Embedded { .. }), "{:?}", embedded_b.source);
        // A G_B opened from a file joins the shelf and becomes the selection.
        panel.add_model(g_b());
        assert_eq!(panel.generator().unwrap().card.name, "G_B");
        // Back to A -> B selects the G_A of the same domains, and B -> A the G_B again.
        panel.set_direction(Direction::AToB);
        assert_eq!(card_direction(&panel.generator().unwrap().card), Some(Direction::AToB));
        panel.set_direction(Direction::BToA);
        let Some(Request::Translate { model, direction, .. }) = panel.request(&image) else { panic!("no request") };
        // One of the two G_B of this pair (the embedded one or the opened file) runs, in the B -> A direction.
        assert_eq!(direction, Direction::BToA);
        assert!(model == embedded_b.source || model == ModelSource::File("/models/g_b.safetensors".into()));
    }
}
