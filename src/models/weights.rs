//! Reading and writing weights files: safetensors with the model card in the metadata.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::models::card::{ModelCard, ModelKind};
use crate::models::error::ModelError;

/// The tensors of a weights file, on a device, with its card.
pub struct Weights {
    pub card: ModelCard,
    pub tensors: HashMap<String, Tensor>,
}

impl Weights {
    /// Loads a safetensors file, checks its card names the expected kind, and converts tensors to f32 on `device`.
    pub fn load(path: &Path, expected: ModelKind, device: &Device) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
        Self::from_bytes(&bytes, path, expected, device)
    }

    /// Same as [`Self::load`] from bytes already in memory (embedded defaults); `path` only names them in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path, expected: ModelKind, device: &Device) -> Result<Self, ModelError> {
        let invalid = |reason: String| ModelError::Safetensors { path: path.to_path_buf(), reason };
        let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| invalid(e.to_string()))?;
        let card_map = metadata.metadata().clone().unwrap_or_default();
        let card = ModelCard::from_metadata(&card_map)
            .map_err(|source| ModelError::Card { path: path.to_path_buf(), source })?;
        if card.kind != expected {
            return Err(ModelError::WrongKind { path: path.to_path_buf(), expected, found: card.kind });
        }
        let loaded = candle_core::safetensors::load_buffer(bytes, &Device::Cpu).map_err(|e| invalid(e.to_string()))?;
        let mut tensors = HashMap::with_capacity(loaded.len());
        for (name, tensor) in loaded {
            let tensor = tensor.to_dtype(DType::F32)?;
            let finite = tensor.flatten_all()?.to_vec1::<f32>()?.iter().all(|v| v.is_finite());
            if !finite {
                return Err(ModelError::NonFinite { name });
            }
            tensors.insert(name, tensor.to_device(device)?);
        }
        Ok(Self { card, tensors })
    }

    /// The tensor `name`, checked against the shape the architecture needs.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let tensor = self.tensors.get(name).ok_or_else(|| ModelError::MissingTensor { name: name.to_owned() })?;
        if tensor.dims() != shape {
            return Err(ModelError::WrongShape {
                name: name.to_owned(),
                expected: shape.to_vec(),
                found: tensor.dims().to_vec(),
            });
        }
        Ok(tensor.clone())
    }
}

/// Writes tensors and the card to a safetensors file.
pub fn save(path: &Path, tensors: &HashMap<String, Tensor>, card: &ModelCard) -> Result<(), ModelError> {
    let metadata: HashMap<String, String> = card.to_metadata().into_iter().collect();
    let views: Vec<(String, Tensor)> = {
        let mut sorted: Vec<_> = tensors.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        sorted
    };
    let data: Vec<(String, candle_core::Tensor)> =
        views.into_iter().map(|(k, v)| v.to_device(&Device::Cpu).map(|v| (k, v))).collect::<Result<_, _>>()?;
    let refs: Vec<(&str, &Tensor)> = data.iter().map(|(k, v)| (k.as_str(), v)).collect();
    crate::models::safetensors_file::write_safetensors(&refs, metadata, path)
        .map_err(|reason| ModelError::Safetensors { path: path.to_path_buf(), reason })
}
