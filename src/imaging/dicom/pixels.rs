//! From decoded pixel bytes to numbers: stored values (bits stored, sign), the modality LUT, and statistics.

use super::ModalityLut;
use super::lut::LookupTable;
use serde::Serialize;

/// Layout of one decoded frame, as the Image Pixel module describes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PixelLayout {
    pub rows: u32,
    pub columns: u32,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub high_bit: u16,
    pub signed: bool,
    /// True when colour samples are stored plane by plane (Planar Configuration 1).
    pub planar: bool,
}

impl PixelLayout {
    pub fn pixel_count(&self) -> usize {
        self.rows as usize * self.columns as usize
    }

    /// Bytes one decoded frame occupies (1-bit data comes out of the decoder as one byte per sample).
    pub fn decoded_frame_bytes(&self) -> u64 {
        let bytes_per_sample = u64::from(self.bits_allocated.div_ceil(8));
        self.pixel_count() as u64 * u64::from(self.samples_per_pixel) * bytes_per_sample
    }

    /// Bytes one frame occupies in native (uncompressed) Pixel Data.
    pub fn native_frame_bytes(&self) -> u64 {
        let bits = self.pixel_count() as u64 * u64::from(self.samples_per_pixel) * u64::from(self.bits_allocated);
        bits.div_ceil(8)
    }
}

/// How the samples of one pixel are turned into one grey value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SampleModel {
    /// One sample per pixel.
    Gray,
    /// Three samples R, G, B: Rec. 601 luma.
    Rgb,
    /// Three samples Y, Cb, Cr (full range): Y is the luma.
    YbrFull,
}

/// Grey values of one frame, before the modality LUT.
#[derive(Debug, Clone)]
pub(crate) enum StoredValues {
    /// Integer stored values (grey images).
    Integers(Vec<i64>),
    /// Luma of colour images (no modality LUT applies to them).
    Luma(Vec<f32>),
}

/// Reads one frame of decoded bytes (little endian samples) into grey values.
pub(crate) fn stored_values(data: &[u8], layout: &PixelLayout, model: SampleModel) -> Result<StoredValues, String> {
    let needed = layout.decoded_frame_bytes();
    if (data.len() as u64) < needed {
        return Err(format!(
            "decoded frame has {} bytes, {needed} expected for {}x{} pixels x {} samples x {} bits",
            data.len(),
            layout.columns,
            layout.rows,
            layout.samples_per_pixel,
            layout.bits_allocated
        ));
    }
    let samples = usize::from(layout.samples_per_pixel);
    let total = layout.pixel_count() * samples;
    let raw: Vec<u64> = match layout.bits_allocated {
        1 => data.iter().take(total).map(|&b| u64::from(b != 0)).collect(),
        8 => data.iter().take(total).map(|&b| u64::from(b)).collect(),
        16 => data.chunks_exact(2).take(total).map(|c| u64::from(u16::from_le_bytes([c[0], c[1]]))).collect(),
        32 => {
            data.chunks_exact(4).take(total).map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect()
        }
        other => return Err(format!("Bits Allocated {other} is not 1, 8, 16 or 32")),
    };
    let bits_stored = u32::from(layout.bits_stored.clamp(1, layout.bits_allocated.max(1)));
    let shift = (u32::from(layout.high_bit) + 1).saturating_sub(bits_stored);
    let mask = if bits_stored >= 64 { u64::MAX } else { (1u64 << bits_stored) - 1 };
    let sign_bit = 1u64 << (bits_stored - 1);
    let to_value = |word: u64| -> i64 {
        let v = (word >> shift) & mask;
        if layout.signed && layout.bits_allocated > 1 && v & sign_bit != 0 {
            // Two's complement within bits_stored: v - 2^bits_stored.
            v as i64 - (mask as i64 + 1)
        } else {
            v as i64
        }
    };
    match model {
        SampleModel::Gray => {
            if samples != 1 {
                return Err(format!("grey image with {samples} samples per pixel"));
            }
            Ok(StoredValues::Integers(raw.into_iter().map(to_value).collect()))
        }
        SampleModel::Rgb | SampleModel::YbrFull => {
            if samples != 3 {
                return Err(format!("colour image with {samples} samples per pixel"));
            }
            let n = layout.pixel_count();
            let sample = |pixel: usize, channel: usize| -> f32 {
                let index = if layout.planar { channel * n + pixel } else { pixel * 3 + channel };
                raw.get(index).map_or(0.0, |&w| to_value(w) as f32)
            };
            let luma = (0..n)
                .map(|p| match model {
                    SampleModel::Rgb => crate::imaging::decode::luma_601([sample(p, 0), sample(p, 1), sample(p, 2)]),
                    _ => sample(p, 0),
                })
                .collect();
            Ok(StoredValues::Luma(luma))
        }
    }
}

/// The modality transform chosen for an image.
#[derive(Debug, Clone)]
pub(crate) enum ModalityTransform {
    Rescale { slope: f64, intercept: f64 },
    Lut(LookupTable),
}

impl ModalityTransform {
    pub fn describe(&self) -> ModalityLut {
        match self {
            ModalityTransform::Rescale { slope, intercept } => {
                ModalityLut::Rescale { slope: *slope, intercept: *intercept }
            }
            ModalityTransform::Lut(lut) => ModalityLut::LutSequence {
                entries: u32::try_from(lut.len()).unwrap_or(u32::MAX),
                first_mapped: lut.first_mapped,
                bits_per_entry: lut.bits_per_entry,
            },
        }
    }

    /// Applies the transform (PS3.3 C.11.1) to integer stored values.
    pub fn apply(&self, stored: &[i64]) -> Vec<f32> {
        match self {
            ModalityTransform::Rescale { slope, intercept } => {
                stored.iter().map(|&v| (v as f64 * slope + intercept) as f32).collect()
            }
            ModalityTransform::Lut(lut) => stored.iter().map(|&v| f32::from(lut.lookup(v as f64))).collect(),
        }
    }
}

/// Minimum, maximum and mean of a set of values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PixelStats {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

impl PixelStats {
    /// Statistics of `values` (all zero for an empty slice).
    pub fn of<T: Copy + Into<f64>>(values: &[T]) -> PixelStats {
        if values.is_empty() {
            return PixelStats { min: 0.0, max: 0.0, mean: 0.0 };
        }
        let mut min = f64::INFINITY;
        let mut max = f64::NEG_INFINITY;
        let mut sum = 0.0f64;
        for &v in values {
            let v: f64 = v.into();
            min = min.min(v);
            max = max.max(v);
            sum += v;
        }
        PixelStats { min, max, mean: sum / values.len() as f64 }
    }

    /// Statistics of integer values (exact sum).
    pub fn of_integers(values: &[i64]) -> PixelStats {
        let (Some(&min), Some(&max)) = (values.iter().min(), values.iter().max()) else {
            return PixelStats::of::<f64>(&[]);
        };
        let sum: i128 = values.iter().map(|&v| i128::from(v)).sum();
        PixelStats { min: min as f64, max: max as f64, mean: sum as f64 / values.len() as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(bits_allocated: u16, bits_stored: u16, signed: bool) -> PixelLayout {
        PixelLayout {
            rows: 1,
            columns: 3,
            samples_per_pixel: 1,
            bits_allocated,
            bits_stored,
            high_bit: bits_stored - 1,
            signed,
            planar: false,
        }
    }

    #[test]
    fn masks_to_bits_stored_and_sign_extends() {
        // 12 bits stored in 16: 0xF800 has garbage in the top bits; 0x0FFF is -1 when signed.
        let data = [0x00, 0xF8, 0xFF, 0x0F, 0x01, 0x00];
        let StoredValues::Integers(unsigned) = stored_values(&data, &layout(16, 12, false), SampleModel::Gray).unwrap()
        else {
            panic!("grey")
        };
        assert_eq!(unsigned, vec![0x800, 0xFFF, 1]);
        let StoredValues::Integers(signed) = stored_values(&data, &layout(16, 12, true), SampleModel::Gray).unwrap()
        else {
            panic!("grey")
        };
        assert_eq!(signed, vec![-2048, -1, 1]);
    }

    #[test]
    fn short_data_is_an_error_not_a_panic() {
        let error = stored_values(&[0, 0], &layout(16, 16, false), SampleModel::Gray).unwrap_err();
        assert!(error.contains("2 bytes, 6 expected"), "{error}");
    }

    #[test]
    fn rgb_becomes_luma() {
        let mut rgb = layout(8, 8, false);
        rgb.samples_per_pixel = 3;
        rgb.columns = 1;
        let StoredValues::Luma(luma) = stored_values(&[255, 0, 0], &rgb, SampleModel::Rgb).unwrap() else {
            panic!("luma")
        };
        assert!((luma[0] - 0.299 * 255.0).abs() < 1e-3);
    }

    #[test]
    fn rescale_and_stats() {
        let transform = ModalityTransform::Rescale { slope: 2.0, intercept: -1024.0 };
        let values = transform.apply(&[0, 512, 1024]);
        assert_eq!(values, vec![-1024.0, 0.0, 1024.0]);
        let stats = PixelStats::of(&values);
        assert_eq!((stats.min, stats.max, stats.mean), (-1024.0, 1024.0, 0.0));
        let stats = PixelStats::of_integers(&[1, 2, 4]);
        assert!((stats.mean - 7.0 / 3.0).abs() < 1e-12);
    }
}
