//! An 8- or 16-bit grayscale raster, the form artificial images are exported in.

use super::error::DicomError;

/// Samples of a [`GrayImage`], row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum GraySamples {
    U8(Vec<u8>),
    U16(Vec<u16>),
}

/// A grayscale image with 8 or 16 bits per pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct GrayImage {
    pub width: u32,
    pub height: u32,
    pub samples: GraySamples,
}

impl GrayImage {
    /// Checks that the sample count matches `width * height` and that neither is zero.
    pub fn new(width: u32, height: u32, samples: GraySamples) -> Result<GrayImage, DicomError> {
        let expected = width as usize * height as usize;
        let actual = match &samples {
            GraySamples::U8(v) => v.len(),
            GraySamples::U16(v) => v.len(),
        };
        if width == 0 || height == 0 || actual != expected {
            return Err(DicomError::InvalidArgument {
                what: "grayscale image",
                reason: format!("{width}x{height} needs {expected} samples, got {actual}"),
            });
        }
        Ok(GrayImage { width, height, samples })
    }

    /// 8 or 16.
    pub fn bits_per_sample(&self) -> u16 {
        match self.samples {
            GraySamples::U8(_) => 8,
            GraySamples::U16(_) => 16,
        }
    }
}
