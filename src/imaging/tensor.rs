//! Turning a radiograph into a network input tensor on a device.

use candle_core::{Device, Tensor};

use crate::imaging::gray_image::GrayImage;
use crate::imaging::resize::resize;

/// How an image becomes a network input: side, value mapping and channel replication.
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    /// Square side the image is resized to.
    pub side_px: usize,
    /// Output channels (gray is replicated, e.g. 3 for ImageNet-style classifiers).
    pub channels: usize,
    /// Values are first mapped from the nominal range to [0, 1], then `(x - mean[c]) / std[c]` per channel.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl InputSpec {
    /// [-1, 1] single-channel input, as the GANs of the study use.
    pub fn gan(side_px: usize) -> Self {
        Self { side_px, channels: 1, mean: vec![0.5], std: vec![0.5] }
    }
}

/// Why an image could not become a tensor.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    #[error("input spec is inconsistent: {0}")]
    Spec(String),
    #[error("resizing failed: {0}")]
    Resize(#[from] crate::imaging::gray_image::ShapeMismatch),
    #[error("tensor creation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Resizes, normalises and uploads one image as a `[1, channels, side, side]` f32 tensor on `device`.
pub fn image_to_tensor(image: &GrayImage, spec: &InputSpec, device: &Device) -> Result<Tensor, TensorError> {
    if spec.channels == 0 || spec.mean.len() != spec.channels || spec.std.len() != spec.channels {
        return Err(TensorError::Spec(format!(
            "{} channels with {} means and {} stds",
            spec.channels,
            spec.mean.len(),
            spec.std.len()
        )));
    }
    if spec.std.iter().any(|&s| s == 0.0 || !s.is_finite()) {
        return Err(TensorError::Spec("a channel std is zero or not finite".to_owned()));
    }
    let resized = resize(image, spec.side_px, spec.side_px)?;
    let (lo, hi) = image.nominal_range();
    let span = (hi - lo).max(f32::EPSILON);
    let plane = spec.side_px * spec.side_px;
    let mut data = Vec::with_capacity(plane * spec.channels);
    for (mean, std) in spec.mean.iter().zip(&spec.std) {
        data.extend(resized.pixels().iter().map(|&v| ((v - lo) / span - mean) / std));
    }
    Ok(Tensor::from_vec(data, (1, spec.channels, spec.side_px, spec.side_px), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::gray_image::BitDepth;

    #[test]
    fn gan_spec_maps_eight_bit_range_to_minus_one_one() {
        let image = GrayImage::new(2, 1, BitDepth::U8, vec![0.0, 255.0]).unwrap();
        let spec = InputSpec { side_px: 2, ..InputSpec::gan(2) };
        // Resizing a 2x1 image to 2x2 duplicates rows.
        let t = image_to_tensor(&image, &spec, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[1, 1, 2, 2]);
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        assert!((v[0] + 1.0).abs() < 1e-2 && (v[1] - 1.0).abs() < 1e-2, "{v:?}");
    }

    #[test]
    fn inconsistent_spec_is_an_error() {
        let image = GrayImage::new(1, 1, BitDepth::U8, vec![0.0]).unwrap();
        let spec = InputSpec { side_px: 1, channels: 3, mean: vec![0.5], std: vec![0.5] };
        assert!(matches!(image_to_tensor(&image, &spec, &Device::Cpu), Err(TensorError::Spec(_))));
    }
}
