//! The worker's loaded networks, keyed by where they came from, so a slider move does not reload weights.

use std::collections::HashMap;

use candle_core::Device;

use crate::engine::request::ModelSource;
use crate::models::card::ModelKind;
use crate::models::cyclegan::CycleGanGenerator;
use crate::models::densenet::DenseNet121;
use crate::models::error::ModelError;
use crate::models::progan::ProganGenerator;
use crate::models::weights::Weights;

/// Networks loaded on one device.
#[derive(Default)]
pub struct ModelCache {
    generators: HashMap<ModelSource, ProganGenerator>,
    classifiers: HashMap<ModelSource, DenseNet121>,
    cyclegans: HashMap<ModelSource, CycleGanGenerator>,
}

fn load_weights(source: &ModelSource, kind: ModelKind, device: &Device) -> Result<Weights, ModelError> {
    match source {
        ModelSource::Embedded { file_name, bytes } => {
            Weights::from_bytes(bytes, std::path::Path::new(file_name), kind, device)
        }
        ModelSource::File(path) => Weights::load(path, kind, device),
    }
}

impl ModelCache {
    /// Drops any network loaded from `source`, so the next use reads it again (a re-opened file may have changed).
    pub fn forget(&mut self, source: &ModelSource) {
        self.generators.remove(source);
        self.classifiers.remove(source);
        self.cyclegans.remove(source);
    }

    pub fn generator(&mut self, source: &ModelSource, device: &Device) -> Result<&ProganGenerator, ModelError> {
        if !self.generators.contains_key(source) {
            let weights = load_weights(source, ModelKind::ProganGenerator, device)?;
            self.generators.insert(source.clone(), ProganGenerator::from_weights(weights)?);
        }
        self.generators.get(source).ok_or_else(|| ModelError::BadInput {
            argument: "generator".to_owned(),
            reason: "vanished from the cache".to_owned(),
        })
    }

    pub fn classifier(&mut self, source: &ModelSource, device: &Device) -> Result<&DenseNet121, ModelError> {
        if !self.classifiers.contains_key(source) {
            let weights = load_weights(source, ModelKind::Densenet121Classifier, device)?;
            self.classifiers.insert(source.clone(), DenseNet121::from_weights(weights)?);
        }
        self.classifiers.get(source).ok_or_else(|| ModelError::BadInput {
            argument: "classifier".to_owned(),
            reason: "vanished from the cache".to_owned(),
        })
    }

    pub fn cyclegan(&mut self, source: &ModelSource, device: &Device) -> Result<&CycleGanGenerator, ModelError> {
        if !self.cyclegans.contains_key(source) {
            let weights = load_weights(source, ModelKind::CycleganGenerator, device)?;
            self.cyclegans.insert(source.clone(), CycleGanGenerator::from_weights(weights)?);
        }
        self.cyclegans.get(source).ok_or_else(|| ModelError::BadInput {
            argument: "CycleGAN generator".to_owned(),
            reason: "vanished from the cache".to_owned(),
        })
    }
}
