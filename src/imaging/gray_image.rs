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
        Ok(Self { id: next_image_id(), width_px, height_px, depth, pixels: Arc::new(pixels) })
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
            BitDepth::F32 => {
                let (min, max) =
                    self.pixels.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                if min.is_finite() && max > min { (min, max) } else { (0.0, 1.0) }
            }
        }
    }

    /// Values mapped from the nominal range to [0, 1] (clamped): what network preprocessing starts from.
    pub fn to_unit_range(&self) -> Vec<f32> {
        let (lo, hi) = self.nominal_range();
        let span = (hi - lo).max(f32::EPSILON);
        self.pixels.iter().map(|&v| ((v - lo) / span).clamp(0.0, 1.0)).collect()
    }
}
