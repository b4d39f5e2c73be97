//! Network input preparation from a gray image, exactly as the original Python pipelines compute it.
//!
//! Classifier (reproduce-chexnet): PIL `convert('RGB')` (gray replicated), torchvision `Resize(224)` (shorter side to
//! 224, bilinear, which on a PIL image is Pillow's antialiasing resampler on 8-bit data), `CenterCrop(224)`,
//! `ToTensor` (/255) and `Normalize(ImageNet mean, std)`. Pillow's 8-bit resampler is reproduced here bit for bit
//! (coefficients in double precision, then 22-bit fixed point, horizontal pass first), so the result matches
//! torchvision to float32 rounding (the parity test measures it).
//!
//! CycleGAN (junyanz, `--preprocess none`): sides rounded to the nearest multiple of 4 with Pillow bicubic
//! (`__make_power_2`), `ToTensor`, `Normalize(0.5, 0.5)` to [-1, 1].
//!
//! Input buffers are gray f32 in [0, 1], row-major. The original pipelines saw 8-bit images, so values are first
//! quantised to 8 bits (round(x * 255)), as PIL's `convert('RGB')` would hold them.

use candle_core::{Device, Tensor};

use crate::models::card::InputNormalization;
use crate::models::densenet::{IMAGENET_MEAN, IMAGENET_STD, INPUT_SIZE_PX};
use crate::models::error::ModelError;

/// Largest intermediate image the classifier resize may make (a 1:2000 strip would need gigabytes).
const MAX_RESIZED_PX: usize = 64 * 1024 * 1024;
/// Pillow's fixed-point precision for 8-bit resampling (`PRECISION_BITS = 32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// The resampling filters of Pillow this module reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// `Image.BILINEAR` (triangle, support 1).
    Bilinear,
    /// `Image.BICUBIC` (Keys cubic with a = -0.5, support 2).
    Bicubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// An 8-bit gray image, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Gray8 {
    pub width_px: usize,
    pub height_px: usize,
    pub pixels: Vec<u8>,
}

impl Gray8 {
    /// Quantises a gray f32 buffer in [0, 1] to 8 bits (values outside are clamped).
    pub fn from_f32(gray: &[f32], width_px: usize, height_px: usize) -> Result<Self, ModelError> {
        if width_px == 0 || height_px == 0 || width_px.checked_mul(height_px) != Some(gray.len()) {
            return Err(ModelError::BadInput {
                argument: "image".to_owned(),
                reason: format!("{} values do not make a {width_px}x{height_px} image", gray.len()),
            });
        }
        let pixels = gray
            .iter()
            .map(|&v| {
                let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
                (v * 255.0).round() as u8
            })
            .collect();
        Ok(Self { width_px, height_px, pixels })
    }
}

/// Pillow `precompute_coeffs` + `normalize_coeffs_8bpc`: for each output pixel, the first input pixel, the count,
/// and fixed-point weights.
fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> (usize, Vec<(usize, usize)>, Vec<i64>) {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    let kernel_size = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i64; out_size * kernel_size];
    for out in 0..out_size {
        let center = (out as f64 + 0.5) * scale;
        let inverse_scale = 1.0 / filter_scale;
        // C casts truncate towards zero; clamping makes the sign of the truncation irrelevant.
        let min = ((center - support + 0.5) as i64).max(0) as usize;
        let max = ((center + support + 0.5) as i64).min(in_size as i64).max(min as i64) as usize;
        let count = (max - min).min(kernel_size);
        let raw: Vec<f64> =
            (0..count).map(|x| filter.weight((x as f64 + min as f64 - center + 0.5) * inverse_scale)).collect();
        let total: f64 = raw.iter().sum();
        for (x, w) in raw.iter().enumerate() {
            let w = if total != 0.0 { w / total } else { *w };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            weights[out * kernel_size + x] = if w < 0.0 { (fixed - 0.5) as i64 } else { (fixed + 0.5) as i64 };
        }
        bounds.push((min, count));
    }
    (kernel_size, bounds, weights)
}

fn clip8(accumulator: i64) -> u8 {
    (accumulator >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize` of an 8-bit single-band image (`ImagingResample`, no box, no reducing gap): a horizontal
/// pass over the rows the vertical pass needs, rounded to 8 bits, then a vertical pass.
pub fn pil_resize(image: &Gray8, width_px: usize, height_px: usize, filter: Filter) -> Gray8 {
    if width_px == image.width_px && height_px == image.height_px || width_px == 0 || height_px == 0 {
        return image.clone();
    }
    let (in_w, in_h) = (image.width_px, image.height_px);
    let (k_h, bounds_h, weights_h) = coefficients(in_w, width_px, filter);
    let (k_v, bounds_v, weights_v) = coefficients(in_h, height_px, filter);
    let need_horizontal = width_px != in_w;
    let need_vertical = height_px != in_h;
    // Rows the vertical pass reads: from the first output row's first input row to the last one's end.
    let (first_row, last_row) = if need_vertical {
        let first = bounds_v.first().map_or(0, |b| b.0);
        let last = bounds_v.last().map_or(in_h, |b| b.0 + b.1);
        (first, last)
    } else {
        (0, in_h)
    };
    let mut temp = Gray8 { width_px: in_w, height_px: in_h, pixels: image.pixels.clone() };
    let mut row_offset = 0;
    if need_horizontal {
        let rows = last_row - first_row;
        let mut pixels = vec![0u8; width_px * rows];
        for y in 0..rows {
            let source = &image.pixels[(y + first_row) * in_w..(y + first_row + 1) * in_w];
            for (x, &(min, count)) in bounds_h.iter().enumerate() {
                let kernel = &weights_h[x * k_h..x * k_h + count];
                let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                for (k, &w) in kernel.iter().enumerate() {
                    acc += i64::from(source[min + k]) * w;
                }
                pixels[y * width_px + x] = clip8(acc);
            }
        }
        temp = Gray8 { width_px, height_px: rows, pixels };
        row_offset = first_row;
    }
    if !need_vertical {
        return temp;
    }
    let width = temp.width_px;
    let mut pixels = vec![0u8; width * height_px];
    for (y, &(min, count)) in bounds_v.iter().enumerate() {
        let kernel = &weights_v[y * k_v..y * k_v + count];
        let min = min - row_offset;
        for x in 0..width {
            let mut acc: i64 = 1 << (PRECISION_BITS - 1);
            for (k, &w) in kernel.iter().enumerate() {
                acc += i64::from(temp.pixels[(min + k) * width + x]) * w;
            }
            pixels[y * width + x] = clip8(acc);
        }
    }
    Gray8 { width_px: width, height_px, pixels }
}

/// torchvision `Resize(size)` output size for an int size: the shorter side becomes `size`, the longer
/// `int(size * long / short)`.
pub fn shorter_side_size(width_px: usize, height_px: usize, size_px: usize) -> (usize, usize) {
    let (short, long) = if width_px <= height_px { (width_px, height_px) } else { (height_px, width_px) };
    let new_long = (size_px as f64 * long as f64 / short.max(1) as f64) as usize;
    if width_px <= height_px { (size_px, new_long) } else { (new_long, size_px) }
}

/// Python's `round` (half to even) of a non-negative value, as torchvision's `CenterCrop` and junyanz use it.
fn round_half_even(value: f64) -> f64 {
    let rounded = value.round();
    if (value - value.trunc()).abs() == 0.5 && rounded % 2.0 != 0.0 { rounded - value.signum() } else { rounded }
}

/// torchvision `CenterCrop(size)` of an image at least `size` on both sides.
fn center_crop(image: &Gray8, size_px: usize) -> Gray8 {
    let top = round_half_even((image.height_px - size_px) as f64 / 2.0) as usize;
    let left = round_half_even((image.width_px - size_px) as f64 / 2.0) as usize;
    let mut pixels = Vec::with_capacity(size_px * size_px);
    for y in top..top + size_px {
        pixels.extend_from_slice(&image.pixels[y * image.width_px + left..y * image.width_px + left + size_px]);
    }
    Gray8 { width_px: size_px, height_px: size_px, pixels }
}

/// The classifier input [1, 3, 224, 224] from a gray image in [0, 1], with the card's normalisation (ImageNet when
/// `None`).
pub fn classifier_input(
    gray: &[f32],
    width_px: usize,
    height_px: usize,
    normalization: Option<&InputNormalization>,
    device: &Device,
) -> Result<Tensor, ModelError> {
    classifier_input_sized(gray, width_px, height_px, normalization, INPUT_SIZE_PX, device)
}

/// The input side a classifier card asks for: its `resolution`, or 224 px when the card says any size (0).
pub fn classifier_side_px(card: &crate::models::card::ModelCard) -> usize {
    if card.resolution == 0 { INPUT_SIZE_PX } else { card.resolution }
}

/// torchvision `Resize(side)` (Pillow bilinear on 8 bits) then `CenterCrop(side)`: the gray pixels the classifier
/// sees before normalisation. The classifier trainer prepares its images with this too.
pub fn classifier_gray8(image: &Gray8, side_px: usize) -> Result<Gray8, ModelError> {
    if side_px == 0 {
        return Err(ModelError::BadInput { argument: "classifier input side".to_owned(), reason: "0 px".to_owned() });
    }
    let (new_w, new_h) = shorter_side_size(image.width_px, image.height_px, side_px);
    if new_w.saturating_mul(new_h) > MAX_RESIZED_PX || new_w < side_px || new_h < side_px {
        return Err(ModelError::BadInput {
            argument: "image".to_owned(),
            reason: format!(
                "{}x{} is too elongated: resizing it would give {new_w}x{new_h} px",
                image.width_px, image.height_px
            ),
        });
    }
    let resized = pil_resize(image, new_w, new_h, Filter::Bilinear);
    Ok(center_crop(&resized, side_px))
}

/// [`classifier_input`] at `side_px` x `side_px` (a classifier card's resolution, see [`classifier_side_px`]).
pub fn classifier_input_sized(
    gray: &[f32],
    width_px: usize,
    height_px: usize,
    normalization: Option<&InputNormalization>,
    side_px: usize,
    device: &Device,
) -> Result<Tensor, ModelError> {
    let image = Gray8::from_f32(gray, width_px, height_px)?;
    let (mean, std) = match normalization {
        Some(n) => (n.mean.clone(), n.std.clone()),
        None => (IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec()),
    };
    if mean.len() != 3 || std.len() != 3 || std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
        return Err(ModelError::BadInput {
            argument: "model card input_normalization".to_owned(),
            reason: format!("need 3 means and 3 non-zero standard deviations, got {mean:?} and {std:?}"),
        });
    }
    let cropped = classifier_gray8(&image, side_px)?;
    let plane = side_px * side_px;
    let mut values = Vec::with_capacity(3 * plane);
    for (m, s) in mean.iter().zip(&std) {
        // ToTensor divides by 255 in f32; Normalize subtracts then divides, in f32.
        values.extend(cropped.pixels.iter().map(|&p| normalized_value(p, *m, *s)));
    }
    Ok(Tensor::from_vec(values, (1, 3, side_px, side_px), device)?)
}

/// One 8-bit pixel as the classifier sees it: `ToTensor` (/255 in f32) then `Normalize` (subtract, divide, in f32).
pub fn normalized_value(pixel: u8, mean: f32, std: f32) -> f32 {
    (f32::from(pixel) / 255.0 - mean) / std
}

/// The smallest side a CycleGAN generator takes (two stride-2 convolutions down and back up).
pub const MIN_CYCLEGAN_SIDE_PX: usize = 8;

/// Refuses a `width_px` x `height_px` image below [`MIN_CYCLEGAN_SIDE_PX`] on a side, as it is or at its
/// `network_size`. The image's own size counts too: at the training scale a 256x3 strip would be stretched to
/// 5460x64 and "translated", though it holds nothing to translate.
pub fn check_cyclegan_size(width_px: usize, height_px: usize, network_size: (usize, usize)) -> Result<(), ModelError> {
    let (new_w, new_h) = network_size;
    if width_px.min(height_px).min(new_w).min(new_h) >= MIN_CYCLEGAN_SIDE_PX {
        return Ok(());
    }
    Err(ModelError::BadInput {
        argument: "image".to_owned(),
        reason: format!(
            "{width_px}x{height_px} is too small for the generator (at least {MIN_CYCLEGAN_SIDE_PX}x\
             {MIN_CYCLEGAN_SIDE_PX} px, both as it is and at the network size, here {new_w}x{new_h})"
        ),
    })
}

/// junyanz `__make_power_2(img, base=4)`: each side rounded to the nearest multiple of 4.
pub fn cyclegan_size(width_px: usize, height_px: usize) -> (usize, usize) {
    let round = |side: usize| (round_half_even(side as f64 / 4.0) * 4.0) as usize;
    (round(width_px), round(height_px))
}

/// The CycleGAN input [1, channels, H, W] in [-1, 1] from a gray image in [0, 1], resized with Pillow bicubic (as
/// junyanz does) to `network_size` = (width, height): [`cyclegan_size`] of the image's own size, or of the training
/// scale's (`style_transfer::network_size`). Gray is replicated when the generator takes 3 channels.
pub fn cyclegan_input(
    gray: &[f32],
    width_px: usize,
    height_px: usize,
    network_size: (usize, usize),
    channels: usize,
    device: &Device,
) -> Result<Tensor, ModelError> {
    let image = Gray8::from_f32(gray, width_px, height_px)?;
    check_cyclegan_size(width_px, height_px, network_size)?;
    let (new_w, new_h) = network_size;
    let resized = pil_resize(&image, new_w, new_h, Filter::Bicubic);
    let plane: Vec<f32> = resized.pixels.iter().map(|&p| (f32::from(p) / 255.0 - 0.5) / 0.5).collect();
    let mut values = Vec::with_capacity(channels * plane.len());
    for _ in 0..channels {
        values.extend_from_slice(&plane);
    }
    Ok(Tensor::from_vec(values, (1, channels, new_h, new_w), device)?)
}

/// A generator output plane in [-1, 1] to 8-bit pixels, `clip(rint((x + 1) * 127.5))`.
pub fn to_gray8(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .map(|&v| {
            let v = if v.is_nan() { -1.0 } else { v };
            ((v + 1.0) * 127.5).round_ties_even().clamp(0.0, 255.0) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyclegan_sizes_below_eight_px_are_refused_as_they_are_and_at_the_network_size() {
        assert!(check_cyclegan_size(256, 256, (64, 64)).is_ok());
        assert!(check_cyclegan_size(8, 8, (8, 8)).is_ok());
        // Stretched to the training side, a 3 px strip would pass at the network size: its own size refuses it.
        let error = check_cyclegan_size(256, 3, (5460, 64)).unwrap_err().to_string();
        assert!(error.contains("256x3 is too small") && error.contains("here 5460x64"), "{error}");
        assert!(check_cyclegan_size(10, 10, (12, 4)).is_err(), "too small at the network size");
    }

    #[test]
    fn resize_size_follows_torchvision() {
        assert_eq!(shorter_side_size(1024, 1024, 224), (224, 224));
        assert_eq!(shorter_side_size(640, 666, 224), (224, 233));
        assert_eq!(shorter_side_size(666, 640, 224), (233, 224));
    }

    #[test]
    fn python_rounding_is_half_to_even() {
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(4.5), 4.0);
        assert_eq!(round_half_even(4.4), 4.0);
        assert_eq!(cyclegan_size(258, 254), (256, 256));
        assert_eq!(cyclegan_size(262, 250), (264, 248));
    }

    #[test]
    fn resizing_a_constant_image_keeps_it_constant() {
        let image = Gray8 { width_px: 37, height_px: 53, pixels: vec![173; 37 * 53] };
        for filter in [Filter::Bilinear, Filter::Bicubic] {
            let resized = pil_resize(&image, 16, 90, filter);
            assert_eq!((resized.width_px, resized.height_px), (16, 90));
            assert!(resized.pixels.iter().all(|&p| p == 173));
        }
    }

    #[test]
    fn wrong_buffer_length_is_named() {
        let message = classifier_input(&[0.0; 10], 4, 4, None, &Device::Cpu).err().unwrap().to_string();
        assert!(message.contains("image") && message.contains("4x4"), "{message}");
    }

    #[test]
    fn extremely_elongated_images_are_refused() {
        let message = classifier_input(&vec![0.5; 400_000], 1, 400_000, None, &Device::Cpu).err().unwrap().to_string();
        assert!(message.contains("too elongated"), "{message}");
    }

    #[test]
    fn generator_output_maps_to_pixels() {
        assert_eq!(to_gray8(&[-1.0, 0.0, 1.0, 2.0, f32::NAN]), vec![0, 128, 255, 255, 0]);
    }
}
