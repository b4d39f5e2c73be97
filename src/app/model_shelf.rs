//! The models of one kind the user can pick from: the embedded ones and the files opened with "Open model...".

use crate::engine::ModelSource;
use crate::engine::request::LoadedModel;
use crate::models::card::{ModelCard, ModelKind};
use crate::models::registry::{EmbeddedModel, embedded_models};

/// One pickable model: where its weights come from and its card.
#[derive(Clone, Debug)]
pub struct ModelChoice {
    pub source: ModelSource,
    pub card: ModelCard,
    pub sha256: String,
}

impl From<EmbeddedModel> for ModelChoice {
    fn from(model: EmbeddedModel) -> Self {
        Self {
            source: ModelSource::Embedded { file_name: model.file_name, bytes: model.bytes },
            card: model.card,
            sha256: model.sha256,
        }
    }
}

impl From<LoadedModel> for ModelChoice {
    fn from(model: LoadedModel) -> Self {
        Self { source: model.source, card: model.card, sha256: model.sha256 }
    }
}

impl ModelChoice {
    /// The hover text of a picker: card, source and hash.
    pub fn summary(&self) -> String {
        let card = &self.card;
        format!(
            "{}\n{}\n{}{}\nSource: {}\nSHA-256: {}...",
            card.name,
            self.source.name(),
            card.shape_summary(),
            if card.untrained { ", UNTRAINED" } else { "" },
            card.provenance.source,
            self.sha256.get(..16).unwrap_or(&self.sha256)
        )
    }
}

/// What the user did with a picker this frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShelfAction {
    Nothing,
    /// Another model was selected.
    Selected,
    /// "Open model..." was chosen: the caller shows a file dialog.
    OpenRequested,
}

/// The models of one kind and which one is selected.
#[derive(Clone, Debug)]
pub struct ModelShelf {
    kind: ModelKind,
    choices: Vec<ModelChoice>,
    selected: usize,
}

impl ModelShelf {
    /// The embedded models of `kind`, a trained one selected when one ships.
    pub fn embedded(kind: ModelKind) -> Self {
        let choices: Vec<ModelChoice> =
            embedded_models().into_iter().filter(|m| m.card.kind == kind).map(ModelChoice::from).collect();
        let selected = choices.iter().position(|m| !m.card.untrained).unwrap_or(0);
        Self { kind, choices, selected }
    }

    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    pub fn current(&self) -> Option<&ModelChoice> {
        self.choices.get(self.selected)
    }

    pub fn choices(&self) -> &[ModelChoice] {
        &self.choices
    }

    /// Selects choice `index`; false when there is none.
    pub fn select(&mut self, index: usize) -> bool {
        let exists = index < self.choices.len();
        if exists {
            self.selected = index;
        }
        exists
    }

    /// Adds (or, for the same source, replaces) a model and selects it.
    pub fn add(&mut self, choice: ModelChoice) {
        match self.choices.iter().position(|c| c.source == choice.source) {
            Some(index) => {
                if let Some(slot) = self.choices.get_mut(index) {
                    *slot = choice;
                }
                self.selected = index;
            }
            None => {
                self.choices.push(choice);
                self.selected = self.choices.len() - 1;
            }
        }
    }

    /// A "Model" combo box listing every choice and "Open model...".
    pub fn ui(&mut self, ui: &mut egui::Ui, id_salt: &str) -> ShelfAction {
        let mut action = ShelfAction::Nothing;
        let mut selected = self.selected;
        let mut open = false;
        let model_label = ui.label("Model");
        let shown = self.current().map_or_else(|| "(none)".to_owned(), |m| m.card.name.clone());
        let combo = egui::ComboBox::from_id_salt(id_salt)
            .selected_text(shown)
            .width(ui.available_width() - 8.0)
            .show_ui(ui, |ui| {
                for (index, option) in self.choices.iter().enumerate() {
                    ui.selectable_value(&mut selected, index, option.card.name.clone())
                        .on_hover_text(option.source.name());
                }
                ui.separator();
                open = ui.selectable_label(false, "Open model...").clicked();
            })
            .response
            .labelled_by(model_label.id);
        if let Some(current) = self.current() {
            combo.on_hover_text(current.summary());
        }
        if open {
            action = ShelfAction::OpenRequested;
        } else if selected != self.selected && self.select(selected) {
            action = ShelfAction::Selected;
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(path: &str, name: &str) -> ModelChoice {
        let mut card = ModelShelf::embedded(ModelKind::CycleganGenerator).current().unwrap().card.clone();
        card.name = name.to_owned();
        ModelChoice { source: ModelSource::File(path.into()), card, sha256: "00".to_owned() }
    }

    #[test]
    fn an_opened_model_is_added_once_and_selected() {
        let mut shelf = ModelShelf::embedded(ModelKind::CycleganGenerator);
        let embedded = shelf.choices().len();
        assert!(embedded >= 1, "the placeholder CycleGAN is embedded");
        shelf.add(choice("/m/g_b.safetensors", "first"));
        assert_eq!(shelf.choices().len(), embedded + 1);
        assert_eq!(shelf.current().unwrap().card.name, "first");
        assert!(shelf.select(0));
        shelf.add(choice("/m/g_b.safetensors", "again"));
        assert_eq!(shelf.choices().len(), embedded + 1, "the same file replaces its entry");
        assert_eq!(shelf.current().unwrap().card.name, "again");
        assert!(!shelf.select(99));
    }
}
