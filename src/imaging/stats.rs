//! Image statistics for the histogram under each viewport and for the initial window.

use crate::imaging::gray_image::GrayImage;

/// Number of histogram bins shown under a viewport.
pub const HISTOGRAM_BINS: usize = 256;

/// Summary of an image's values.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageStats {
    pub min: f32,
    pub max: f32,
    pub mean: f64,
    pub std: f64,
    /// Counts over [`Self::histogram_range`] in [`HISTOGRAM_BINS`] equal bins.
    pub histogram: Vec<u64>,
    /// The value range the histogram spans: the image's nominal range, so images of one depth compare.
    pub histogram_range: (f32, f32),
    /// Values at the 0.5th and 99.5th percentile, a robust default window.
    pub p005: f32,
    pub p995: f32,
}

impl ImageStats {
    /// Computes statistics in one pass over the values plus one pass over the histogram.
    pub fn compute(image: &GrayImage) -> Self {
        let pixels = image.pixels();
        let (lo, hi) = image.display_range();
        let span = (hi - lo).max(f32::EPSILON);
        let mut histogram = vec![0_u64; HISTOGRAM_BINS];
        let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
        let (mut sum, mut sum_sq) = (0.0_f64, 0.0_f64);
        for &v in pixels {
            min = min.min(v);
            max = max.max(v);
            sum += f64::from(v);
            sum_sq += f64::from(v) * f64::from(v);
            let bin = (((v - lo) / span) * HISTOGRAM_BINS as f32).floor();
            let bin = (bin.max(0.0) as usize).min(HISTOGRAM_BINS - 1);
            if let Some(count) = histogram.get_mut(bin) {
                *count += 1;
            }
        }
        let n = pixels.len().max(1) as f64;
        let mean = sum / n;
        let std = (sum_sq / n - mean * mean).max(0.0).sqrt();
        let quantile = |q: f64| -> f32 {
            let target = (q * n).ceil() as u64;
            let mut seen = 0;
            for (i, &count) in histogram.iter().enumerate() {
                seen += count;
                if seen >= target.max(1) {
                    return lo + span * (i as f32 + 0.5) / HISTOGRAM_BINS as f32;
                }
            }
            hi
        };
        Self {
            min,
            max,
            mean,
            std,
            p005: quantile(0.005).max(min),
            p995: quantile(0.995).min(max),
            histogram,
            histogram_range: (lo, hi),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::gray_image::BitDepth;

    #[test]
    fn statistics_of_a_known_ramp() {
        let pixels: Vec<f32> = (0..256).map(|v| v as f32).collect();
        let image = GrayImage::new(16, 16, BitDepth::U8, pixels).unwrap();
        let stats = ImageStats::compute(&image);
        assert_eq!((stats.min, stats.max), (0.0, 255.0));
        assert!((stats.mean - 127.5).abs() < 1e-9);
        // Population std of 0..=255 is sqrt((256^2 - 1) / 12).
        assert!((stats.std - ((256.0_f64 * 256.0 - 1.0) / 12.0).sqrt()).abs() < 1e-9);
        assert!(stats.histogram.iter().all(|&c| c == 1));
        assert!(stats.p005 < 3.0 && stats.p995 > 252.0);
    }

    #[test]
    fn sixteen_bit_values_land_in_their_own_bins() {
        let image = GrayImage::new(2, 1, BitDepth::U16, vec![0.0, 65535.0]).unwrap();
        let stats = ImageStats::compute(&image);
        assert_eq!(stats.histogram[0], 1);
        assert_eq!(stats.histogram[HISTOGRAM_BINS - 1], 1);
        assert_eq!(stats.histogram_range, (0.0, 65535.0));
    }
}
