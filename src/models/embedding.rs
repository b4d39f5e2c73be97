//! Embeddings of radiographs: the classifier's globally pooled `norm5` features ([N, 1024] for DenseNet-121),
//! used for FD-DenseNet, KID and the memorisation audit. Preprocessing is the classifier's own.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use sha2::{Digest as _, Sha256};

use crate::imaging::{DecodeError, GrayImage, load_image};
use crate::models::card::ModelKind;
use crate::models::densenet::DenseNet121;
use crate::models::error::ModelError;
use crate::models::preprocess::{classifier_input_sized, classifier_side_px};
use crate::models::weights::Weights;

/// Images per forward pass: large enough to keep the CPU kernels busy, small enough for a laptop's memory
/// (16 x 3 x 224 x 224 f32 is 9.6 MB of input; DenseNet's concatenations peak near 1 GB at this size).
pub const DEFAULT_EMBED_BATCH: usize = 16;

/// Why images could not be embedded. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Image(#[from] DecodeError),
    #[error("embedding {path}: {source}")]
    Model {
        path: String,
        #[source]
        source: ModelError,
    },
    #[error("cancelled after {done} of {total} images")]
    Cancelled { done: usize, total: usize },
}

/// A classifier used as an embedder, with the identity a result records.
pub struct Embedder {
    pub classifier: DenseNet121,
    /// File name or "embedded default classifier".
    pub model_name: String,
    pub model_sha256: String,
    device: Device,
}

impl Embedder {
    /// Loads the classifier at `path`, or the embedded default (`default_bytes`) when `path` is `None`.
    pub fn load(path: Option<&Path>, default_bytes: Option<&[u8]>, device: &Device) -> Result<Self, ModelError> {
        let (bytes, name) = match path {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| ModelError::BadInput {
                    argument: path.display().to_string(),
                    reason: format!("cannot read the classifier: {e}"),
                })?;
                (bytes, path.display().to_string())
            }
            None => {
                let bytes = default_bytes.ok_or_else(|| ModelError::BadInput {
                    argument: "classifier".to_owned(),
                    reason: "no model given and this build embeds no default classifier".to_owned(),
                })?;
                (bytes.to_vec(), "embedded default classifier".to_owned())
            }
        };
        let weights = Weights::from_bytes(&bytes, Path::new(&name), ModelKind::Densenet121Classifier, device)?;
        let classifier = DenseNet121::from_weights(weights)?;
        let model_sha256 = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self { classifier, model_name: name, model_sha256, device: device.clone() })
    }

    /// An embedder around an already built classifier.
    pub fn new(classifier: DenseNet121, model_name: String, model_sha256: String, device: &Device) -> Self {
        Self { classifier, model_name, model_sha256, device: device.clone() }
    }

    /// Feature dimension (1024 for DenseNet-121).
    pub fn dimension(&self) -> usize {
        self.classifier.config().num_features()
    }
}

/// One feature row per image.
pub type FeatureRows = Vec<Vec<f32>>;

/// A network that turns images into one feature row each. Implementors give the per-image input and the batched
/// forward pass; batching, file loading, progress and cancel are shared here.
pub trait ImageEmbedding {
    /// The network input for one image ([1, C, H, W]).
    fn network_input(&self, image: &GrayImage) -> Result<Tensor, ModelError>;

    /// One feature row per input of a batch.
    fn forward_batch(&self, inputs: &[Tensor]) -> Result<Vec<Vec<f32>>, ModelError>;

    /// Images per forward pass when the caller does not choose.
    fn default_batch(&self) -> usize;

    /// Features of in-memory images, one row each.
    fn embed_images(&self, images: &[GrayImage]) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut rows = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.default_batch().max(1)) {
            let inputs = chunk.iter().map(|image| self.network_input(image)).collect::<Result<Vec<_>, _>>()?;
            rows.extend(self.forward_batch(&inputs)?);
        }
        Ok(rows)
    }

    /// Features of image files (PNG, JPEG, TIFF, DICOM) in order, `batch_size` at a time.
    /// `progress(done, total)` is called after each batch; returning `false` cancels.
    fn embed_files(
        &self,
        files: &[PathBuf],
        batch_size: usize,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<FeatureRows, EmbedError> {
        embed_file_batches(self, files, batch_size, false, progress).map(|(rows, _)| rows)
    }

    /// Features of image files and of their left-right mirror images: `(rows, mirrored_rows)`, each in file order.
    /// Each file is read once; the mirror is taken of the network input, so both rows see the same preprocessing.
    fn embed_files_and_mirrors(
        &self,
        files: &[PathBuf],
        batch_size: usize,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<(FeatureRows, FeatureRows), EmbedError> {
        embed_file_batches(self, files, batch_size, true, progress)
    }
}

/// The batch loop of [`ImageEmbedding::embed_files`]; with `mirrors`, also the rows of the mirrored inputs.
fn embed_file_batches<E: ImageEmbedding + ?Sized>(
    embedding: &E,
    files: &[PathBuf],
    batch_size: usize,
    mirrors: bool,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<(FeatureRows, FeatureRows), EmbedError> {
    let total = files.len();
    let (mut rows, mut mirrored_rows) = (Vec::with_capacity(total), Vec::new());
    for chunk in files.chunks(batch_size.max(1)) {
        let mut inputs = Vec::with_capacity(chunk.len());
        let mut mirrored = Vec::new();
        for path in chunk {
            let image = load_image(path)?;
            let input = embedding.network_input(&image).map_err(|source| model_error(path, source))?;
            if mirrors {
                mirrored.push(mirror_width(&input).map_err(|source| model_error(path, source.into()))?);
            }
            inputs.push(input);
        }
        let first = chunk.first().map_or(Path::new("batch"), PathBuf::as_path);
        rows.extend(embedding.forward_batch(&inputs).map_err(|source| model_error(first, source))?);
        if mirrors {
            mirrored_rows.extend(embedding.forward_batch(&mirrored).map_err(|source| model_error(first, source))?);
        }
        if !progress(rows.len(), total) {
            return Err(EmbedError::Cancelled { done: rows.len(), total });
        }
    }
    Ok((rows, mirrored_rows))
}

/// `input` ([N, C, H, W]) mirrored left-right.
fn mirror_width(input: &Tensor) -> candle_core::Result<Tensor> {
    let width = input.dim(3)?;
    let reversed: Vec<u32> = (0..width as u32).rev().collect();
    let index = Tensor::from_vec(reversed, width, input.device())?;
    input.index_select(&index, 3)
}

impl ImageEmbedding for Embedder {
    /// The classifier's input [1, 3, 224, 224] with its own preprocessing.
    fn network_input(&self, image: &GrayImage) -> Result<Tensor, ModelError> {
        let unit = image.to_unit_range();
        let normalization = self.classifier.card().input_normalization.as_ref();
        let side_px = classifier_side_px(self.classifier.card());
        classifier_input_sized(&unit, image.width_px(), image.height_px(), normalization, side_px, &self.device)
    }

    fn forward_batch(&self, inputs: &[Tensor]) -> Result<Vec<Vec<f32>>, ModelError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let batch = Tensor::cat(inputs, 0)?;
        Ok(self.classifier.pooled_features(&batch)?.to_vec2::<f32>()?)
    }

    fn default_batch(&self) -> usize {
        DEFAULT_EMBED_BATCH
    }
}

pub(crate) fn model_error(path: &Path, source: ModelError) -> EmbedError {
    EmbedError::Model { path: path.display().to_string(), source }
}

/// Image files (PNG, JPEG, TIFF, DICOM by extension) directly in `folder`, sorted by name.
pub fn image_files_in(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        let is_image = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg" | "tif" | "tiff" | "dcm" | "dicom")
        });
        if path.is_file() && is_image {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::BitDepth;
    use crate::models::registry::default_model_bytes;

    fn gradient(width: usize, height: usize, offset: f32) -> GrayImage {
        let pixels = (0..width * height).map(|i| ((i % width) as f32 * 0.7 + offset).min(255.0).round()).collect();
        GrayImage::new(width, height, BitDepth::U8, pixels).unwrap()
    }

    #[test]
    fn batched_embedding_equals_one_by_one_and_files_match_memory() {
        let device = Device::Cpu;
        let embedder = Embedder::load(None, default_model_bytes(ModelKind::Densenet121Classifier), &device).unwrap();
        let images: Vec<_> = (0..3).map(|i| gradient(240, 256, i as f32 * 20.0)).collect();
        let batched = embedder.embed_images(&images).unwrap();
        assert_eq!(batched.len(), 3);
        assert_eq!(batched[0].len(), embedder.dimension());
        for (image, row) in images.iter().zip(&batched) {
            let single = embedder.embed_images(std::slice::from_ref(image)).unwrap();
            let max_diff = single[0].iter().zip(row).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(max_diff < 1e-4, "batched vs single differ by {max_diff}");
        }
        assert_ne!(batched[0], batched[2], "different images embed differently");

        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (i, image) in images.iter().enumerate() {
            let bytes: Vec<u8> = image.pixels().iter().map(|&v| v as u8).collect();
            let path = dir.path().join(format!("img{i}.png"));
            image::GrayImage::from_raw(240, 256, bytes).unwrap().save(&path).unwrap();
            files.push(path);
        }
        let mut calls = Vec::new();
        let from_files = embedder
            .embed_files(&files, 2, &mut |done, total| {
                calls.push((done, total));
                true
            })
            .unwrap();
        assert_eq!(calls, vec![(2, 3), (3, 3)]);
        for (a, b) in from_files.iter().zip(&batched) {
            let max_diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(max_diff < 1e-4);
        }
        let cancelled = embedder.embed_files(&files, 1, &mut |_, _| false).unwrap_err();
        assert!(matches!(cancelled, EmbedError::Cancelled { done: 1, total: 3 }), "{cancelled:?}");
        let broken = dir.path().join("broken.png");
        std::fs::write(&broken, b"\x89PNG\r\n\x1a\nnot really").unwrap();
        let error = embedder.embed_files(&[broken], 4, &mut |_, _| true).unwrap_err();
        assert!(error.to_string().contains("broken.png"), "{error}");
    }
}
