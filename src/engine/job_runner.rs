//! What runs a job. The worker thread owns one runner (and with it the device and loaded models).

use std::collections::HashMap;

use candle_core::Tensor;

use crate::engine::EngineError;
use crate::engine::device::ComputeDevice;
use crate::engine::request::{ImageSource, Output, PreparedImage, Request, Slot};
use crate::imaging::tensor::{InputSpec, image_to_tensor};
use crate::imaging::{ImageStats, decode_image, load_image};

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
}

impl ModelRunner {
    pub fn new(device: ComputeDevice) -> Self {
        Self {
            device,
            prepared_inputs: HashMap::new(),
        }
    }

    fn prepare_image(&mut self, slot: Slot, source: &ImageSource) -> Result<Output, EngineError> {
        let image = match source {
            ImageSource::File(path) => load_image(path)?,
            ImageSource::Bytes { name, bytes } => decode_image(bytes, name)?,
        };
        let stats = ImageStats::compute(&image);
        let tensor = image_to_tensor(&image, &InputSpec::gan(DEFAULT_INPUT_SIDE_PX), &self.device.device)?;
        let tensor_mean = tensor
            .mean_all()
            .and_then(|m| m.to_scalar::<f32>())
            .map_err(crate::models::error::ModelError::from)?;
        let tensor_dims = tensor.dims().to_vec();
        self.prepared_inputs.insert(slot, tensor);
        Ok(Output::PreparedImage(Box::new(PreparedImage {
            name: source.display_name(),
            image,
            stats: std::sync::Arc::new(stats),
            tensor_dims,
            tensor_mean,
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
        }
    }
}
