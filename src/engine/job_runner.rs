//! What runs a job. The worker thread owns one runner (and with it the device and loaded models).

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;

use crate::engine::EngineError;
use crate::engine::device::ComputeDevice;
use crate::engine::model_cache::ModelCache;
use crate::engine::request::{
    Classification, GeneratedImage, HeatmapOverlay, ImageSource, LoadedModel, ModelSource, Output, PreparedImage,
    Request, Slot, TranslatedImage,
};
use crate::imaging::difference::absolute_difference;
use crate::imaging::resize::resize;
use crate::imaging::tensor::{InputSpec, image_to_tensor};
use crate::imaging::{BitDepth, GrayImage};
use crate::imaging::{ImageStats, decode_radiograph, load_radiograph};
use crate::models::card::ModelKind;
use crate::models::cyclegan::Direction;
use crate::models::error::ModelError;
use crate::models::heatmap::{HeatmapMethod, HeatmapOptions, heatmaps_for_gray_image};
use crate::models::progan::{latents_from_seed, to_png_u8};
use crate::models::registry::sha256_hex;
use crate::models::style_transfer::{NetworkScale, direction_label, generator_name, translate_gray_at};

/// Runs one request to completion on the worker thread.
pub trait JobRunner: Send + 'static {
    /// A label for the compute device, shown in the status bar.
    fn device_label(&self) -> String;

    fn run(&mut self, request: Request) -> Result<Output, EngineError>;
}

/// Side of the tensor prepared for each image until model-specific preprocessing takes over.
pub const DEFAULT_INPUT_SIDE_PX: usize = 256;

/// The production runner: decodes, preprocesses and runs networks on its device.
pub struct ModelRunner {
    device: ComputeDevice,
    /// The newest prepared input tensor per viewport, kept on the device for the networks.
    prepared_inputs: HashMap<Slot, Tensor>,
    models: ModelCache,
}

impl ModelRunner {
    pub fn new(device: ComputeDevice) -> Self {
        Self { device, prepared_inputs: HashMap::new(), models: ModelCache::default() }
    }

    fn generate(&mut self, model: &ModelSource, labels: &[f32], seed: u32) -> Result<Output, EngineError> {
        let device = self.device.device.clone();
        let generator = self.models.generator(model, &device)?;
        let architecture = generator.architecture();
        let (latent_size, label_size) = (architecture.latent_size, architecture.label_size);
        if labels.len() != label_size {
            return Err(ModelError::BadInput {
                argument: "labels".to_owned(),
                reason: format!("{} values given, the generator takes {label_size}", labels.len()),
            }
            .into());
        }
        let latents = Tensor::from_vec(latents_from_seed(seed, 1, latent_size), (1, latent_size), &device)
            .map_err(ModelError::from)?;
        let label_tensor = Tensor::from_vec(labels.to_vec(), (1, label_size), &device).map_err(ModelError::from)?;
        let output = generator.forward(&latents, &label_tensor)?;
        let (_, _, height, width) = output.dims4().map_err(ModelError::from)?;
        // Shown exactly as the exported PNG would be: clip(rint((x + 1) * 127.5)) on the first channel.
        let pixels: Vec<f32> = output
            .narrow(1, 0, 1)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(ModelError::from)?
            .into_iter()
            .map(|x| f32::from(to_png_u8(x)))
            .collect();
        let image = GrayImage::new(width, height, BitDepth::U8, pixels)
            .map_err(|e| ModelError::BadInput { argument: "generator output".to_owned(), reason: e.to_string() })?;
        let stats = ImageStats::compute(&image);
        Ok(Output::Generated(Box::new(GeneratedImage {
            prepared: PreparedImage {
                name: format!("seed {seed}"),
                tensor_dims: output.dims().to_vec(),
                tensor_mean: 0.0,
                image,
                stats: std::sync::Arc::new(stats),
                stored_window: None,
                dicom: None,
            },
            model_name: model.name(),
            seed,
            labels: labels.to_vec(),
        })))
    }

    fn heatmap(
        &mut self,
        model: &ModelSource,
        image: &GrayImage,
        label: &str,
        method: HeatmapMethod,
    ) -> Result<Output, EngineError> {
        let device = self.device.device.clone();
        let classifier = self.models.classifier(model, &device)?;
        let target = classifier.card().label_index(label).ok_or_else(|| ModelError::BadInput {
            argument: "heatmap target".to_owned(),
            reason: format!("the classifier has no label `{label}`"),
        })?;
        let gray = image.to_unit_range();
        let heatmaps = heatmaps_for_gray_image(
            classifier,
            &gray,
            image.width_px(),
            image.height_px(),
            &[target],
            HeatmapOptions::new(method),
            &device,
        )?;
        let Some(heatmap) = heatmaps.into_iter().next() else {
            return Err(
                ModelError::BadInput { argument: "heatmap".to_owned(), reason: "no map computed".to_owned() }.into()
            );
        };
        let at_image = heatmap.at_image_size(image.width_px(), image.height_px());
        let map = GrayImage::new(at_image.width_px, at_image.height_px, BitDepth::F32, at_image.values)
            .map_err(|e| ModelError::BadInput { argument: "heatmap".to_owned(), reason: e.to_string() })?;
        Ok(Output::Heatmap(Box::new(HeatmapOverlay {
            map,
            label: heatmap.label,
            probability: heatmap.probability,
            note: heatmap.note,
            image_id: image.id(),
        })))
    }

    fn classify(&mut self, model: &ModelSource, image: &GrayImage) -> Result<Output, EngineError> {
        let device = self.device.device.clone();
        let classifier = self.models.classifier(model, &device)?;
        let card = classifier.card().clone();
        let gray = image.to_unit_range();
        let input = crate::models::preprocess::classifier_input_sized(
            &gray,
            image.width_px(),
            image.height_px(),
            card.input_normalization.as_ref(),
            crate::models::preprocess::classifier_side_px(&card),
            &device,
        )?;
        let probabilities: Vec<f32> =
            classifier.forward(&input)?.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(ModelError::from)?;
        Ok(Output::Classified(Box::new(Classification {
            model_name: model.name(),
            labels: card.labels.clone(),
            probabilities,
            image_id: image.id(),
        })))
    }

    fn translate(
        &mut self,
        model: &ModelSource,
        direction: Direction,
        scale: NetworkScale,
        image: &GrayImage,
    ) -> Result<Output, EngineError> {
        let device = self.device.device.clone();
        let generator = self.models.cyclegan(model, &device)?;
        let own = generator.config().direction;
        if own != direction {
            let card = generator.card();
            return Err(ModelError::BadInput {
                argument: "style transfer direction".to_owned(),
                reason: format!(
                    "{} ({}) translates {}, not {}; open the other generator of the pair",
                    card.name,
                    generator_name(own),
                    direction_label(card, own),
                    direction_label(card, direction)
                ),
            }
            .into());
        }
        let (width_px, height_px) = (image.width_px(), image.height_px());
        let planes = translate_gray_at(generator, &image.to_unit_range(), width_px, height_px, scale, &device)?;
        let label = direction_label(generator.card(), direction);
        let shape_error = |e: crate::imaging::gray_image::ShapeMismatch| ModelError::BadInput {
            argument: "translated image".to_owned(),
            reason: e.to_string(),
        };
        let network_sized = GrayImage::new(
            planes.width_px,
            planes.height_px,
            BitDepth::U8,
            planes.first_plane().iter().map(|&p| f32::from(p)).collect(),
        )
        .map_err(shape_error)?;
        // The network works on sides rounded to multiples of 4; shown beside the input, it gets the input's size.
        let translated = resize(&network_sized, image.width_px(), image.height_px()).map_err(shape_error)?;
        let difference = absolute_difference(image, &translated).map_err(shape_error)?;
        let tensor_dims = vec![1, planes.channels, planes.height_px, planes.width_px];
        let prepared = |name: String, image: GrayImage| PreparedImage {
            name,
            stats: std::sync::Arc::new(ImageStats::compute(&image)),
            image,
            tensor_dims: tensor_dims.clone(),
            tensor_mean: 0.0,
            stored_window: None,
            dicom: None,
        };
        Ok(Output::Translated(Box::new(TranslatedImage {
            translated: prepared(label.clone(), translated),
            difference: prepared(format!("|difference| {label}"), difference),
            model_name: model.name(),
            direction,
            image_id: image.id(),
        })))
    }

    fn load_model(&mut self, kind: ModelKind, path: &Path) -> Result<Output, EngineError> {
        let device = self.device.device.clone();
        let source = ModelSource::File(path.to_path_buf());
        // Opening a file again reads it again: it may have changed on disk.
        self.models.forget(&source);
        let card = match kind {
            ModelKind::ProganGenerator => self.models.generator(&source, &device)?.card().clone(),
            ModelKind::Densenet121Classifier => self.models.classifier(&source, &device)?.card().clone(),
            ModelKind::CycleganGenerator => self.models.cyclegan(&source, &device)?.card().clone(),
            ModelKind::InceptionV3 => {
                return Err(ModelError::BadInput {
                    argument: format!("model file {}", path.display()),
                    reason: "the workbench has no view that uses an Inception-v3 network".to_owned(),
                }
                .into());
            }
        };
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
        Ok(Output::ModelLoaded(Box::new(LoadedModel { source, card, sha256: sha256_hex(&bytes) })))
    }

    fn prepare_image(&mut self, slot: Slot, source: &ImageSource) -> Result<Output, EngineError> {
        let radiograph = match source {
            ImageSource::File(path) => load_radiograph(path)?,
            ImageSource::Bytes { name, bytes } => decode_radiograph(bytes, name)?,
        };
        let image = radiograph.image;
        let stats = ImageStats::compute(&image);
        let tensor = image_to_tensor(&image, &InputSpec::gan(DEFAULT_INPUT_SIDE_PX), &self.device.device)?;
        let tensor_mean =
            tensor.mean_all().and_then(|m| m.to_scalar::<f32>()).map_err(crate::models::error::ModelError::from)?;
        let tensor_dims = tensor.dims().to_vec();
        self.prepared_inputs.insert(slot, tensor);
        Ok(Output::PreparedImage(Box::new(PreparedImage {
            name: source.display_name(),
            image,
            stats: std::sync::Arc::new(stats),
            tensor_dims,
            tensor_mean,
            stored_window: radiograph.stored_window,
            dicom: radiograph.dicom,
        })))
    }
}

impl JobRunner for ModelRunner {
    fn device_label(&self) -> String {
        self.device.label.clone()
    }

    fn run(&mut self, request: Request) -> Result<Output, EngineError> {
        match request {
            Request::PrepareImage { slot, source } => self.prepare_image(slot, &source),
            Request::Generate { model, labels, seed } => self.generate(&model, &labels, seed),
            Request::Classify { model, image, .. } => self.classify(&model, &image),
            Request::Heatmap { model, image, label, method, .. } => self.heatmap(&model, &image, &label, method),
            Request::Translate { model, direction, scale, image } => self.translate(&model, direction, scale, &image),
            Request::LoadModel { kind, path } => self.load_model(kind, &path),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::engine::device::{DeviceChoice, open_device};
    use crate::models::densenet::DenseNet121;
    use crate::models::preprocess::{classifier_input_sized, classifier_side_px};

    fn repository_file(relative: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
    }

    /// The probabilities `thorax classify` computes for `image` (the reference the workbench must agree with).
    fn command_line_probabilities(model: &Path, image: &GrayImage) -> Vec<f32> {
        let net = DenseNet121::load(model, &candle_core::Device::Cpu).unwrap();
        let card = net.card().clone();
        let input = classifier_input_sized(
            &image.to_unit_range(),
            image.width_px(),
            image.height_px(),
            card.input_normalization.as_ref(),
            classifier_side_px(&card),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        net.forward(&input).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn the_workbench_classifies_and_maps_an_image_as_the_command_line_does() {
        // The workbench once fed the classifier 0..255 values where it expects 0..1: every image came out white and
        // got the same probabilities whatever it showed.
        let model_path = repository_file("assets/models/densenet-cxr-128px.safetensors");
        let model = ModelSource::File(model_path.clone());
        let mut runner = ModelRunner::new(open_device(DeviceChoice::Cpu).unwrap());
        let mut seen = Vec::new();
        for sample in ["tests/fixtures/densenet/cxr_0001.png", "tests/fixtures/densenet/cxr_0054.png"] {
            let image = crate::imaging::load_image(&repository_file(sample)).unwrap();
            let Output::Classified(classified) =
                runner.run(Request::Classify { slot: Slot::Real, model: model.clone(), image: image.clone() }).unwrap()
            else {
                panic!("a classification was asked for");
            };
            let expected = command_line_probabilities(&model_path, &image);
            let worst = classified.probabilities.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(worst < 1e-5, "{sample}: workbench {:?} vs command line {expected:?}", classified.probabilities);
            let label = classified.labels[0].clone();
            let request =
                Request::Heatmap { slot: Slot::Real, model: model.clone(), image, label, method: HeatmapMethod::Cam };
            let Output::Heatmap(overlay) = runner.run(request).unwrap() else {
                panic!("a heatmap was asked for");
            };
            assert!((overlay.probability - expected[0]).abs() < 1e-5, "{sample}: heatmap of another input");
            seen.push(expected);
        }
        assert_ne!(seen[0], seen[1], "two radiographs, two sets of probabilities");
    }
}
