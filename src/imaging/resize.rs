//! Resampling radiographs (antialiased triangle filter, as PIL's bilinear does when shrinking).

use image::{ImageBuffer, Luma, imageops::FilterType};

use crate::imaging::gray_image::{GrayImage, ShapeMismatch};

/// Resizes to exactly `width_px` x `height_px`, keeping the bit depth and original units.
pub fn resize(image: &GrayImage, width_px: usize, height_px: usize) -> Result<GrayImage, ShapeMismatch> {
    if (width_px, height_px) == (image.width_px(), image.height_px()) {
        return Ok(image.clone());
    }
    let shape_error =
        || ShapeMismatch { width_px: image.width_px(), height_px: image.height_px(), len: image.pixels().len() };
    let (w, h) = (
        u32::try_from(image.width_px()).map_err(|_| shape_error())?,
        u32::try_from(image.height_px()).map_err(|_| shape_error())?,
    );
    let (new_w, new_h) =
        (u32::try_from(width_px).map_err(|_| shape_error())?, u32::try_from(height_px).map_err(|_| shape_error())?);
    // The image crate clamps f32 samples to [0, 1] when resampling, so map the data there and back.
    let (lo, hi) =
        image.pixels().iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let unit: Vec<f32> = image.pixels().iter().map(|&v| (v - lo) / span).collect();
    let source: ImageBuffer<Luma<f32>, Vec<f32>> = ImageBuffer::from_raw(w, h, unit).ok_or_else(shape_error)?;
    let resized = image::imageops::resize(&source, new_w, new_h, FilterType::Triangle);
    let pixels = resized.into_raw().into_iter().map(|v| lo + v * span).collect();
    GrayImage::new(width_px, height_px, image.depth(), pixels)
}

/// Resizes so the longer side is at most `max_side_px`, keeping the aspect ratio (for display and thumbnails).
pub fn fit_within(image: &GrayImage, max_side_px: usize) -> Result<GrayImage, ShapeMismatch> {
    let longer = image.width_px().max(image.height_px());
    if longer <= max_side_px {
        return Ok(image.clone());
    }
    let scale = max_side_px as f64 / longer as f64;
    let w = ((image.width_px() as f64 * scale).round() as usize).max(1);
    let h = ((image.height_px() as f64 * scale).round() as usize).max(1);
    resize(image, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::gray_image::BitDepth;

    #[test]
    fn constant_image_stays_constant_and_depth_is_kept() {
        let image = GrayImage::new(64, 32, BitDepth::U16, vec![40_000.0; 64 * 32]).unwrap();
        let small = resize(&image, 16, 8).unwrap();
        assert_eq!((small.width_px(), small.height_px()), (16, 8));
        assert_eq!(small.depth(), BitDepth::U16);
        assert!(small.pixels().iter().all(|&v| (v - 40_000.0).abs() < 0.5));
    }

    #[test]
    fn values_outside_zero_one_survive_resampling() {
        let pixels: Vec<f32> = (0..64 * 64).map(|i| (i % 64) as f32 * 1000.0).collect();
        let image = GrayImage::new(64, 64, BitDepth::U16, pixels).unwrap();
        let small = resize(&image, 32, 32).unwrap();
        let max = small.pixels().iter().copied().fold(0.0_f32, f32::max);
        assert!(max > 60_000.0, "max {max}");
        // A horizontal ramp stays a ramp.
        assert!(small.value_at(31, 5).unwrap() > small.value_at(0, 5).unwrap() + 50_000.0);
    }

    #[test]
    fn fit_within_keeps_aspect() {
        let image = GrayImage::new(400, 200, BitDepth::U8, vec![0.0; 400 * 200]).unwrap();
        let fitted = fit_within(&image, 100).unwrap();
        assert_eq!((fitted.width_px(), fitted.height_px()), (100, 50));
    }
}
