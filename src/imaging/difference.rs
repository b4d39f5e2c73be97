//! |a - b| of two radiographs, to see what a style transfer changed.

use crate::imaging::gray_image::{BitDepth, GrayImage, ShapeMismatch};
use crate::imaging::resize::resize;

/// Each pixel in 8-bit units of its image's nominal range, so an 8-bit and a 16-bit image compare like for like.
fn in_eight_bit_units(image: &GrayImage) -> Vec<f32> {
    let (lo, hi) = image.nominal_range();
    let span = (hi - lo).max(f32::EPSILON);
    image.pixels().iter().map(|&v| (v - lo) / span * 255.0).collect()
}

/// |changed - reference| per pixel in 8-bit units (0..=255), at `reference`'s size: `changed` is resampled to it
/// when the sizes differ. The result is float data, so the viewer windows it on its own percentiles.
pub fn absolute_difference(reference: &GrayImage, changed: &GrayImage) -> Result<GrayImage, ShapeMismatch> {
    let (width_px, height_px) = (reference.width_px(), reference.height_px());
    let changed = resize(changed, width_px, height_px)?;
    let pixels =
        in_eight_bit_units(reference).iter().zip(in_eight_bit_units(&changed)).map(|(&r, c)| (c - r).abs()).collect();
    GrayImage::new(width_px, height_px, BitDepth::F32, pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_is_absolute_and_in_eight_bit_units() {
        let reference = GrayImage::new(2, 2, BitDepth::U8, vec![0.0, 100.0, 200.0, 255.0]).unwrap();
        let changed = GrayImage::new(2, 2, BitDepth::U8, vec![10.0, 90.0, 200.0, 0.0]).unwrap();
        let difference = absolute_difference(&reference, &changed).unwrap();
        assert_eq!(difference.depth(), BitDepth::F32);
        assert_eq!(difference.pixels(), &[10.0, 10.0, 0.0, 255.0]);
        // A 16-bit reference is compared in the same units: 65535 is white, as 255 is.
        let deep = GrayImage::new(2, 2, BitDepth::U16, vec![0.0, 65535.0, 0.0, 65535.0]).unwrap();
        let white = GrayImage::new(2, 2, BitDepth::U8, vec![255.0; 4]).unwrap();
        let difference = absolute_difference(&deep, &white).unwrap();
        for (value, expected) in difference.pixels().iter().zip([255.0, 0.0, 255.0, 0.0]) {
            assert!((value - expected).abs() < 1e-3, "{:?}", difference.pixels());
        }
    }

    #[test]
    fn a_differently_sized_image_is_resampled_to_the_reference() {
        let reference = GrayImage::new(30, 18, BitDepth::U8, vec![50.0; 30 * 18]).unwrap();
        let changed = GrayImage::new(32, 16, BitDepth::U8, vec![80.0; 32 * 16]).unwrap();
        let difference = absolute_difference(&reference, &changed).unwrap();
        assert_eq!((difference.width_px(), difference.height_px()), (30, 18));
        assert!(difference.pixels().iter().all(|&v| (v - 30.0).abs() < 1e-3), "{:?}", difference.pixels());
    }
}
