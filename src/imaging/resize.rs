//! Resampling radiographs (antialiased triangle filter, as PIL's bilinear does when shrinking).

use image::{ImageBuffer, Luma, imageops::FilterType};

use crate::imaging::gray_image::{GrayImage, ShapeMismatch};

/// Resizes to exactly `width_px` x `height_px`, keeping the bit depth and original units.
pub fn resize(image: &GrayImage, width_px: usize, height_px: usize) -> Result<GrayImage, ShapeMismatch> {
    if (width_px, height_px) == (image.width_px(), image.height_px()) {
        return Ok(image.clone());
    }
    let shape_error = || ShapeMismatch {
        width_px: image.width_px(),
        height_px: image.height_px(),
        len: image.pixels().len(),
    };
    let (w, h) = (
        u32::try_from(image.width_px()).map_err(|_| shape_error())?,
        u32::try_from(image.height_px()).map_err(|_| shape_error())?,
    );
    let (new_w, new_h) = (
        u32::try_from(width_px).map_err(|_| shape_error())?,
        u32::try_from(height_px).map_err(|_| shape_error())?,
    );
    let source: ImageBuffer<Luma<f32>, Vec<f32>> =
        ImageBuffer::from_raw(w, h, image.pixels().to_vec()).ok_or_else(shape_error)?;
    let resized = image::imageops::resize(&source, new_w, new_h, FilterType::Triangle);
    GrayImage::new(width_px, height_px, image.depth(), resized.into_raw())
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
    fn fit_within_keeps_aspect() {
        let image = GrayImage::new(400, 200, BitDepth::U8, vec![0.0; 400 * 200]).unwrap();
        let fitted = fit_within(&image, 100).unwrap();
        assert_eq!((fitted.width_px(), fitted.height_px()), (100, 50));
    }
}
