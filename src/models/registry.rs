//! The models embedded in the binary (`assets/models/`), each with its card.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::models::card::ModelCard;

include!(concat!(env!("OUT_DIR"), "/embedded_models.rs"));

/// An embedded weights file and its card.
#[derive(Clone, Debug)]
pub struct EmbeddedModel {
    pub file_name: &'static str,
    pub bytes: &'static [u8],
    pub card: ModelCard,
    pub sha256: String,
}

/// Every embedded model whose card can be read. A file without a valid card is skipped with a warning.
pub fn embedded_models() -> Vec<EmbeddedModel> {
    EMBEDDED_MODELS
        .iter()
        .filter_map(|&(file_name, bytes)| match read_card(bytes) {
            Ok(card) => Some(EmbeddedModel { file_name, bytes, card, sha256: sha256_hex(bytes) }),
            Err(reason) => {
                log::warn!("embedded model {file_name} skipped: {reason}");
                None
            }
        })
        .collect()
}

/// The embedded model of `kind` used when no `--model` is given: the first trained one, else the first one.
pub fn default_model(kind: crate::models::card::ModelKind) -> Option<EmbeddedModel> {
    let mut candidates: Vec<EmbeddedModel> = embedded_models().into_iter().filter(|m| m.card.kind == kind).collect();
    let index = candidates.iter().position(|m| !m.card.untrained).unwrap_or(0);
    (index < candidates.len()).then(|| candidates.swap_remove(index))
}

/// The bytes of [`default_model`], for the CLI.
pub fn default_model_bytes(kind: crate::models::card::ModelKind) -> Option<&'static [u8]> {
    default_model(kind).map(|m| m.bytes)
}

/// Reads only the card from safetensors bytes.
pub fn read_card(bytes: &[u8]) -> Result<ModelCard, String> {
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let map = metadata.metadata().clone().unwrap_or_default();
    ModelCard::from_metadata(&map).map_err(|e| e.to_string())
}

/// Lower-case hex SHA-256, the identity of a weights file in provenance records and caches.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// One line per model for `thorax info`.
#[derive(Clone, Debug, Serialize)]
pub struct ModelSummary {
    pub file: String,
    pub summary: String,
    pub sha256: String,
    pub card: ModelCard,
}

pub fn embedded_model_summaries() -> Vec<ModelSummary> {
    embedded_models()
        .into_iter()
        .map(|model| ModelSummary {
            file: model.file_name.to_owned(),
            summary: format!(
                "{} ({:?}, {}{})",
                model.card.name,
                model.card.kind,
                model.card.shape_summary(),
                if model.card.untrained { ", UNTRAINED" } else { "" }
            ),
            sha256: model.sha256,
            card: model.card,
        })
        .collect()
}
