//! A single-channel radiograph kept at its original depth.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bit depth of the data a radiograph was decoded from; sets its nominal value range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BitDepth {
    /// 8-bit integers, 0..=255.
    U8,
    /// 16-bit integers, 0..=65535 (12-bit data stays in its own range inside this).
    U16,
    /// Floating point data, e.g. a network output mapped to 8-bit units or a 32-bit TIFF.
    F32,
}

/// A grayscale image with its original values as f32 (exact for 8- and 16-bit data).
///
/// Window/level works on these values, never on an 8-bit copy.
#[derive(Clone, Debug, PartialEq)]
pub struct GrayImage {
    /// Unique per decoded image, so GPU textures can be cached and replaced.
    id: u64,
    width_px: usize,
    height_px: usize,
    depth: BitDepth,
    pixels: Arc<Vec<f32>>,
    /// Smallest and largest finite value, or `None` when there is none (measured once, at construction).
    value_range: Option<(f32, f32)>,
}

fn next_image_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Why a buffer cannot be a [`GrayImage`].
#[derive(Debug, thiserror::Error)]
#[error("image buffer of {len} values does not match {width_px}x{height_px} px")]
pub struct ShapeMismatch {
    pub width_px: usize,
    pub height_px: usize,
    pub len: usize,
}

impl GrayImage {
    /// Wraps row-major pixel values; the length must be `width_px * height_px` and both sides non-zero.
    pub fn new(width_px: usize, height_px: usize, depth: BitDepth, pixels: Vec<f32>) -> Result<Self, ShapeMismatch> {
        if width_px == 0 || height_px == 0 || width_px.checked_mul(height_px) != Some(pixels.len()) {
            return Err(ShapeMismatch { width_px, height_px, len: pixels.len() });
        }
        let value_range = pixels
            .iter()
            .filter(|v| v.is_finite())
            .fold(None, |range: Option<(f32, f32)>, &v| Some(range.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v)))));
        Ok(Self { id: next_image_id(), width_px, height_px, depth, pixels: Arc::new(pixels), value_range })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn width_px(&self) -> usize {
        self.width_px
    }

    pub fn height_px(&self) -> usize {
        self.height_px
    }

    pub fn depth(&self) -> BitDepth {
        self.depth
    }

    /// Row-major pixel values in original units.
    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }

    /// The value at (x, y), or `None` outside the image.
    pub fn value_at(&self, x_px: usize, y_px: usize) -> Option<f32> {
        if x_px >= self.width_px || y_px >= self.height_px {
            return None;
        }
        self.pixels.get(y_px * self.width_px + x_px).copied()
    }

    /// The range the data type can hold: what "full window" means for this image.
    pub fn nominal_range(&self) -> (f32, f32) {
        match self.depth {
            BitDepth::U8 => (0.0, 255.0),
            BitDepth::U16 => (0.0, 65535.0),
            BitDepth::F32 => match self.value_range {
                Some((min, max)) if max > min => (min, max),
                _ => (0.0, 1.0),
            },
        }
    }

    /// The range the viewer's presets, histogram and linked windows are fractions of: the nominal range, except
    /// that 16-bit data is taken at the bit depth its largest value needs (8, 10, 12, 14 or 16 bits). A 12-bit
    /// radiograph saved as a 16-bit PNG fills a sixteenth of 0..65535: its "Lung" preset was black and its histogram
    /// a few bars at the left. Networks and metrics keep [`Self::nominal_range`].
    pub fn display_range(&self) -> (f32, f32) {
        match (self.depth, self.value_range) {
            (BitDepth::U16, Some((_, max))) => {
                let bits = [8u32, 10, 12, 14, 16].into_iter().find(|&b| max <= ((1u32 << b) - 1) as f32).unwrap_or(16);
                (0.0, ((1u32 << bits) - 1) as f32)
            }
            _ => self.nominal_range(),
        }
    }

    /// Values mapped from the nominal range to [0, 1] (clamped): what network preprocessing starts from.
    pub fn to_unit_range(&self) -> Vec<f32> {
        let (lo, hi) = self.nominal_range();
        let span = (hi - lo).max(f32::EPSILON);
        self.pixels.iter().map(|&v| ((v - lo) / span).clamp(0.0, 1.0)).collect()
    }
}

#[cfg(test)]
mod display_range_tests {
    use super::*;

    #[test]
    fn sixteen_bit_data_is_shown_at_the_bit_depth_its_values_need() {
        let image = |depth, values: Vec<f32>| GrayImage::new(values.len(), 1, depth, values).unwrap();
        // A 12-bit radiograph in a 16-bit PNG: presets and histogram span 0..4095, networks still see 0..65535.
        let twelve_bit = image(BitDepth::U16, vec![1000.0, 3990.0]);
        assert_eq!(twelve_bit.display_range(), (0.0, 4095.0));
        assert_eq!(twelve_bit.nominal_range(), (0.0, 65535.0));
        assert_eq!(image(BitDepth::U16, vec![0.0, 1023.0]).display_range(), (0.0, 1023.0));
        assert_eq!(image(BitDepth::U16, vec![0.0, 40000.0]).display_range(), (0.0, 65535.0));
        assert_eq!(image(BitDepth::U8, vec![3.0, 7.0]).display_range(), (0.0, 255.0));
        assert_eq!(image(BitDepth::F32, vec![-5.0, 7.0]).display_range(), (-5.0, 7.0));
        assert_eq!(image(BitDepth::F32, vec![f32::NAN, 2.0]).nominal_range(), (0.0, 1.0), "one finite value");
    }
}
