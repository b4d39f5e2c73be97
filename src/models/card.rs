//! Model cards: what a weights file is, carried inside the safetensors metadata under [`CARD_METADATA_KEY`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The safetensors metadata key that holds the card as a JSON string.
pub const CARD_METADATA_KEY: &str = "thorax.card";

/// Which network a weights file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    ProganGenerator,
    Densenet121Classifier,
    CycleganGenerator,
    InceptionV3,
}

impl ModelKind {
    /// The kind in words, for messages ("holds a DenseNet-121 classifier, but this needs a ProGAN generator").
    pub fn description(self) -> &'static str {
        match self {
            Self::ProganGenerator => "ProGAN generator",
            Self::Densenet121Classifier => "DenseNet-121 classifier",
            Self::CycleganGenerator => "CycleGAN generator",
            Self::InceptionV3 => "Inception-v3 network",
        }
    }
}

/// How raw pixels become the network's input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputNormalization {
    /// Per-channel mean subtracted after scaling pixels to [0, 1].
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided after the mean.
    pub std: Vec<f32>,
}

/// Where the weights came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The checkpoint the weights were converted from, or "trained by thorax".
    pub source: String,
    /// SHA-256 of the source checkpoint, hex.
    #[serde(default)]
    pub source_sha256: Option<String>,
    /// The data the weights were trained on.
    #[serde(default)]
    pub training_data: Option<String>,
    /// Licence of the weights.
    #[serde(default)]
    pub licence: Option<String>,
    /// For our own models: the exact command that trained them.
    #[serde(default)]
    pub training_command: Option<String>,
}

/// Everything the workbench needs to know about a weights file besides its tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub kind: ModelKind,
    /// Human-readable name shown in the model picker.
    pub name: String,
    /// Label names in the network's own order (generator inputs or classifier outputs).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Image side in pixels (generator output, classifier input, or 0 for any size).
    pub resolution: usize,
    /// Image channels at the network's input or output.
    pub channels: usize,
    /// Architecture hyper-parameters (e.g. `latent_size`, `fmap_base`, `fmap_max`, `ngf`, `n_blocks`).
    #[serde(default)]
    pub hyper: BTreeMap<String, f64>,
    #[serde(default)]
    pub input_normalization: Option<InputNormalization>,
    /// Nominal output range, e.g. [-1, 1] for generators, [0, 1] for probabilities.
    #[serde(default)]
    pub output_range: Option<[f32; 2]>,
    /// True when the weights are random: the UI must say "untrained".
    #[serde(default)]
    pub untrained: bool,
    #[serde(default)]
    pub provenance: Provenance,
    /// Measured quality (e.g. per-label AUC, Frechet distance), free-form.
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
}

impl ModelCard {
    /// The square side the model was trained at: its input resolution, else the `training_resolution_px` that
    /// `thorax train` records for size-agnostic networks (CycleGAN); `None` when neither is known.
    pub fn training_side_px(&self) -> Option<u64> {
        match self.resolution {
            0 => self.metrics.get("training_resolution_px").and_then(|v| v.as_u64()).filter(|&side| side > 0),
            side => Some(side as u64),
        }
    }

    /// Input size and outputs in a few words: `128 px, 14 labels`; a CycleGAN (any input size, two domains) as
    /// `any size (trained at 64 px), NIH <-> Guangzhou`.
    pub fn shape_summary(&self) -> String {
        let size = match (self.resolution, self.training_side_px()) {
            (0, Some(side)) => format!("any size (trained at {side} px)"),
            (0, None) => "any size".to_owned(),
            (side, _) => format!("{side} px"),
        };
        match self.kind {
            ModelKind::CycleganGenerator => format!("{size}, {}", self.labels.join(" <-> ")),
            _ => format!("{size}, {} labels", self.labels.len()),
        }
    }

    /// For a model trained by thorax, one line on how little it saw (resolution, images, steps), shown next to it
    /// in the UI so that nobody mistakes it for the study's models; `None` for others.
    pub fn training_limits_note(&self) -> Option<String> {
        if self.untrained || !self.provenance.source.starts_with("trained by thorax") {
            return None;
        }
        let images = match self.metrics.get("training_images") {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::Object(per_domain)) => Some(per_domain.values().filter_map(|v| v.as_u64()).sum()),
            _ => None,
        };
        let steps = self.metrics.get("training_steps").and_then(|v| v.as_u64());
        let side_px = self.training_side_px().unwrap_or(0);
        let mut parts = Vec::new();
        if side_px > 0 {
            parts.push(format!("{side_px} px"));
        }
        if let Some(images) = images {
            parts.push(format!("{images} training images"));
        }
        if let Some(steps) = steps {
            parts.push(format!("{steps} steps"));
        }
        Some(format!("Small demonstration model ({}), not the study's", parts.join(", ")))
    }

    /// The card as the JSON string stored in safetensors metadata.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let mut metadata = BTreeMap::new();
        // Serialising a plain struct of strings and numbers cannot fail.
        let json = serde_json::to_string(self).unwrap_or_default();
        metadata.insert(CARD_METADATA_KEY.to_owned(), json);
        metadata
    }

    /// Reads a card from safetensors metadata.
    pub fn from_metadata(metadata: &std::collections::HashMap<String, String>) -> Result<Self, CardError> {
        let json = metadata.get(CARD_METADATA_KEY).ok_or(CardError::Missing)?;
        let card: Self = serde_json::from_str(json).map_err(CardError::Invalid)?;
        card.check()?;
        Ok(card)
    }

    /// Refuses what no network of ours could have written: a label named twice (outputs are matched by name, and
    /// JSON results keyed by it would lose one) and an input side outside 4..=16384 px (0 means "any" or the
    /// architecture's default).
    fn check(&self) -> Result<(), CardError> {
        for (index, label) in self.labels.iter().enumerate() {
            if self.labels[..index].contains(label) {
                return Err(CardError::Inconsistent(format!("the label {label:?} is listed twice")));
            }
        }
        if self.resolution != 0 && !(4..=16_384).contains(&self.resolution) {
            return Err(CardError::Inconsistent(format!(
                "resolution {} px is outside 4..=16384 (0 for any size)",
                self.resolution
            )));
        }
        Ok(())
    }

    /// Position of a label by name, the only way labels are matched across models.
    pub fn label_index(&self, name: &str) -> Option<usize> {
        self.labels.iter().position(|label| label == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("the file has no model card (metadata key `{CARD_METADATA_KEY}`)")]
    Missing,
    #[error("the model card is not valid JSON for this version: {0}")]
    Invalid(serde_json::Error),
    #[error("the model card is inconsistent: {0}")]
    Inconsistent(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(source: &str, resolution: usize, metrics: serde_json::Value) -> ModelCard {
        ModelCard {
            kind: ModelKind::CycleganGenerator,
            name: "m".to_owned(),
            labels: Vec::new(),
            resolution,
            channels: 1,
            hyper: BTreeMap::new(),
            input_normalization: None,
            output_range: None,
            untrained: false,
            provenance: Provenance { source: source.to_owned(), ..Provenance::default() },
            metrics: serde_json::from_value(metrics).unwrap(),
        }
    }

    #[test]
    fn a_card_with_a_label_twice_or_an_impossible_size_is_refused() {
        let metadata = |card: &ModelCard| card.to_metadata().into_iter().collect();
        let mut twice = card("convert", 128, serde_json::json!({}));
        twice.labels = vec!["Mass".into(), "Edema".into(), "Mass".into()];
        let error = ModelCard::from_metadata(&metadata(&twice)).unwrap_err().to_string();
        assert!(error.contains("\"Mass\" is listed twice"), "{error}");
        for side in [1, 100_000] {
            let error = ModelCard::from_metadata(&metadata(&card("convert", side, serde_json::json!({})))).unwrap_err();
            assert!(error.to_string().contains(&format!("resolution {side} px")), "{error}");
        }
        for side in [0, 4, 256] {
            ModelCard::from_metadata(&metadata(&card("convert", side, serde_json::json!({})))).unwrap();
        }
    }

    #[test]
    fn our_trained_models_state_their_limits_and_others_do_not() {
        let gan = card(
            "trained by thorax (`thorax train gan`)",
            64,
            serde_json::json!({
                "training_images": 1343, "training_steps": 3000
            }),
        );
        assert_eq!(
            gan.training_limits_note().as_deref(),
            Some("Small demonstration model (64 px, 1343 training images, 3000 steps), not the study's")
        );
        let cyclegan = card(
            "trained by thorax (`thorax train cyclegan`)",
            0,
            serde_json::json!({
                "training_images": {"NIH": 600, "Guangzhou": 950}, "training_steps": 10, "training_resolution_px": 64
            }),
        );
        assert_eq!(
            cyclegan.training_limits_note().as_deref(),
            Some("Small demonstration model (64 px, 1550 training images, 10 steps), not the study's")
        );
        assert_eq!(
            card("converted from the study's checkpoint", 256, serde_json::json!({})).training_limits_note(),
            None
        );
        let mut untrained = gan.clone();
        untrained.untrained = true;
        assert_eq!(untrained.training_limits_note(), None);
    }
}
