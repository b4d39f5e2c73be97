//! FID features of radiographs: pytorch-fid's preprocessing (gray replicated to three channels, values in [0, 1],
//! `F.interpolate(size=(299, 299), mode='bilinear', align_corners=False)`, then `2 * x - 1`) and the FID
//! Inception-v3's 2048-d pool3 output, from the published `.pth` directly or its converted safetensors.
//!
//! pytorch-fid reads files with PIL `convert('RGB')`; for 8-bit images that is value / 255, as here. 16-bit and
//! DICOM images are scaled from their nominal range to [0, 1] instead of PIL's 8-bit clipping.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use sha2::{Digest as _, Sha256};

use crate::convert::pytorch::{ConvertError, TorchError, inception_weights, read_checkpoint_bytes};
use crate::imaging::GrayImage;
use crate::models::card::{ModelKind, Provenance};
use crate::models::embedding::ImageEmbedding;
use crate::models::error::ModelError;
use crate::models::inception::{FID_INPUT_SIZE_PX, FidInceptionV3, PUBLISHED_SHA256_PREFIX};
use crate::models::weights::Weights;

/// Images per forward pass: 8 x 3 x 299 x 299 f32 is 8.6 MB of input; the first layers' maps peak near 50 MB
/// per image.
pub const DEFAULT_INCEPTION_BATCH: usize = 8;

/// Why FID Inception weights could not be loaded; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum InceptionWeightsError {
    #[error("cannot read Inception weights {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Checkpoint(#[from] TorchError),
    #[error(transparent)]
    Convert(#[from] ConvertError),
    #[error("Inception weights {path}: {source}")]
    Model { path: PathBuf, source: ModelError },
}

/// Bilinear resize as PyTorch's `F.interpolate(mode='bilinear', align_corners=False, antialias=False)` on the CPU:
/// source coordinate `(dst + 0.5) * in / out - 0.5` clamped at 0, weights and sums in f32, interpolating along
/// the width first, then the height. Downscaling reads only the two nearest rows and columns (no antialiasing).
pub fn torch_bilinear_resize(
    values: &[f32],
    width_px: usize,
    height_px: usize,
    out_width_px: usize,
    out_height_px: usize,
) -> Result<Vec<f32>, ModelError> {
    if width_px == 0 || height_px == 0 || width_px.checked_mul(height_px) != Some(values.len()) {
        return Err(ModelError::BadInput {
            argument: "image".to_owned(),
            reason: format!("{} values do not make a {width_px}x{height_px} image", values.len()),
        });
    }
    let columns = linear_taps(width_px, out_width_px);
    let rows = linear_taps(height_px, out_height_px);
    let mut out = Vec::with_capacity(out_width_px * out_height_px);
    for &(y0, y1, wy0, wy1) in &rows {
        let (row0, row1) = (&values[y0 * width_px..(y0 + 1) * width_px], &values[y1 * width_px..(y1 + 1) * width_px]);
        for &(x0, x1, wx0, wx1) in &columns {
            let top = row0[x0] * wx0 + row0[x1] * wx1;
            let bottom = row1[x0] * wx0 + row1[x1] * wx1;
            out.push(top * wy0 + bottom * wy1);
        }
    }
    Ok(out)
}

/// For each output index along one axis: the two source indices and their weights (PyTorch's
/// `compute_indices_weights_linear` with `area_pixel_compute_source_index`, in f32).
fn linear_taps(size_in: usize, size_out: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = size_in as f32 / size_out as f32;
    (0..size_out)
        .map(|dst| {
            let source = (scale * (dst as f32 + 0.5) - 0.5).max(0.0);
            let index0 = (source.floor() as usize).min(size_in - 1);
            let lambda1 = (source - index0 as f32).clamp(0.0, 1.0);
            let index1 = if index0 < size_in - 1 { index0 + 1 } else { index0 };
            (index0, index1, 1.0 - lambda1, lambda1)
        })
        .collect()
}

/// The FID Inception input [1, 3, 299, 299] of a gray image in [0, 1]: pytorch-fid's resize and `2 * x - 1`.
pub fn fid_inception_input(
    gray: &[f32],
    width_px: usize,
    height_px: usize,
    device: &Device,
) -> Result<Tensor, ModelError> {
    let side = FID_INPUT_SIZE_PX;
    let resized = torch_bilinear_resize(gray, width_px, height_px, side, side)?;
    let plane: Vec<f32> = resized.iter().map(|&v| 2.0 * v - 1.0).collect();
    let mut values = Vec::with_capacity(3 * plane.len());
    for _ in 0..3 {
        values.extend_from_slice(&plane);
    }
    Ok(Tensor::from_vec(values, (1, 3, side, side), device)?)
}

/// The FID Inception-v3 as an embedder, with the identity a result records.
pub struct InceptionEmbedder {
    pub network: FidInceptionV3,
    /// The weights file as given.
    pub model_name: String,
    /// SHA-256 of the weights file as given (.pth or safetensors).
    pub model_sha256: String,
    /// SHA-256 of the original checkpoint: the file's own for a .pth, the card's provenance for a converted file.
    pub source_sha256: Option<String>,
    device: Device,
}

impl InceptionEmbedder {
    /// Loads the published `pt_inception-2015-12-05-6726825d.pth` (or another checkpoint of the same network) or
    /// its conversion by `thorax convert inception`, told apart by their contents.
    pub fn load(path: &Path, device: &Device) -> Result<Self, InceptionWeightsError> {
        let bytes =
            std::fs::read(path).map_err(|source| InceptionWeightsError::Io { path: path.to_path_buf(), source })?;
        let sha256: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        let model = |source| InceptionWeightsError::Model { path: path.to_path_buf(), source };
        let (weights, source_sha256) = if is_safetensors(&bytes) {
            let weights = Weights::from_bytes(&bytes, path, ModelKind::InceptionV3, device).map_err(model)?;
            let source = weights.card.provenance.source_sha256.clone();
            (weights, source)
        } else {
            let checkpoint = read_checkpoint_bytes(&bytes, path)?;
            let provenance = Provenance {
                source: path.display().to_string(),
                source_sha256: Some(sha256.clone()),
                ..Provenance::default()
            };
            let converted = inception_weights(&checkpoint, "FID Inception-v3", provenance, path)?;
            let tensors = converted
                .weights
                .tensors
                .into_iter()
                .map(|(name, tensor)| tensor.to_device(device).map(|t| (name, t)))
                .collect::<Result<_, _>>()
                .map_err(|e| model(ModelError::Candle(e)))?;
            (Weights { card: converted.weights.card, tensors }, Some(sha256.clone()))
        };
        let network = FidInceptionV3::from_weights(weights).map_err(model)?;
        Ok(Self {
            network,
            model_name: path.display().to_string(),
            model_sha256: sha256,
            source_sha256,
            device: device.clone(),
        })
    }

    /// Wraps a built network (e.g. test weights) with the identity results should record.
    pub fn from_network(network: FidInceptionV3, model_name: &str, model_sha256: &str, device: &Device) -> Self {
        Self {
            network,
            model_name: model_name.to_owned(),
            model_sha256: model_sha256.to_owned(),
            source_sha256: None,
            device: device.clone(),
        }
    }

    /// Whether the weights come from the published FID checkpoint (its SHA-256 starts with the digits in its name);
    /// only then are FID values comparable with published ones.
    pub fn is_published_weights(&self) -> bool {
        self.source_sha256.as_deref().is_some_and(|sha| sha.starts_with(PUBLISHED_SHA256_PREFIX))
    }
}

impl ImageEmbedding for InceptionEmbedder {
    /// pytorch-fid's input: 299 px bilinear, [0, 1] scaled to [-1, 1], gray on three channels.
    fn network_input(&self, image: &GrayImage) -> Result<Tensor, ModelError> {
        fid_inception_input(&image.to_unit_range(), image.width_px(), image.height_px(), &self.device)
    }

    /// pool3 features, one 2048-d row per input.
    fn forward_batch(&self, inputs: &[Tensor]) -> Result<Vec<Vec<f32>>, ModelError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let batch = Tensor::cat(inputs, 0)?;
        Ok(self.network.pool3(&batch)?.to_vec2::<f32>()?)
    }

    fn default_batch(&self) -> usize {
        DEFAULT_INCEPTION_BATCH
    }
}

/// A safetensors file starts with its header length (8 bytes, little-endian) and the JSON header's `{`.
fn is_safetensors(bytes: &[u8]) -> bool {
    bytes.get(8) == Some(&b'{')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_to_the_same_size_is_the_identity_and_constants_stay_constant() {
        let values: Vec<f32> = (0..20).map(|i| i as f32 / 19.0).collect();
        assert_eq!(torch_bilinear_resize(&values, 5, 4, 5, 4).unwrap(), values);
        let flat = vec![0.25f32; 12];
        assert!(torch_bilinear_resize(&flat, 4, 3, 9, 7).unwrap().iter().all(|&v| (v - 0.25).abs() < 1e-7));
    }

    #[test]
    fn upscaling_by_two_matches_torch_weights() {
        // torch: F.interpolate(tensor([[[[0., 1.]]]]), size=(1, 4), mode='bilinear') == [0, 0.25, 0.75, 1].
        let out = torch_bilinear_resize(&[0.0, 1.0], 2, 1, 4, 1).unwrap();
        assert_eq!(out, vec![0.0, 0.25, 0.75, 1.0]);
        // Downscaling 4 -> 2 reads the middle of each pair: [0.5, 2.5] for [0, 1, 2, 3].
        assert_eq!(torch_bilinear_resize(&[0.0, 1.0, 2.0, 3.0], 4, 1, 2, 1).unwrap(), vec![0.5, 2.5]);
    }

    #[test]
    fn bad_buffers_are_refused() {
        assert!(torch_bilinear_resize(&[0.0; 5], 2, 3, 4, 4).is_err());
        assert!(torch_bilinear_resize(&[], 0, 0, 4, 4).is_err());
    }
}
