//! Per-pathology MS-SSIM diversity histograms (Thorax_GAN `SSIM/Results`): MS-SSIM of random pairs of distinct
//! images that share a label, in a 50-bin histogram. Pairs come from [`SeededRng`]; each pair draws two different
//! indices uniformly (a pair may repeat). Bins follow `numpy.histogram` on a fixed range (half-open bins, the last
//! one closed; values outside the range are counted apart), so real and generated histograms share their bins.

use std::ops::ControlFlow;

use crate::metrics::error::MetricError;
use crate::metrics::msssim::{GrayImage, MsSsimMode, ms_ssim};
use crate::metrics::rng::SeededRng;

/// Bins of the study's figures.
pub const DEFAULT_BINS: usize = 50;

/// Histogram of pairwise MS-SSIM values within one label.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PairHistogram {
    /// Count per bin.
    pub counts: Vec<u64>,
    /// `bins + 1` bin edges.
    pub bin_edges: Vec<f64>,
    /// Pairs requested.
    pub pairs_requested: usize,
    /// MS-SSIM value of each pair that was defined, in draw order.
    pub values: Vec<f64>,
    /// Pairs whose MS-SSIM was undefined (Thorax_GAN mode with a negative base).
    pub undefined_pairs: usize,
    /// Defined values outside the histogram range.
    pub out_of_range: usize,
    /// Mean of the defined values (0 when none).
    pub mean: f64,
    /// Population SD of the defined values.
    pub std: f64,
    /// Seed of the pair draws.
    pub seed: u64,
}

/// MS-SSIM histogram over `pairs` random pairs of distinct images from `images` (all of one label).
pub fn same_label_pair_histogram(
    images: &[GrayImage],
    pairs: usize,
    seed: u64,
    mode: MsSsimMode,
    bins: usize,
    range: (f64, f64),
) -> Result<PairHistogram, MetricError> {
    same_label_pair_histogram_with_progress(images, pairs, seed, mode, bins, range, &mut |_| ControlFlow::Continue(()))
}

/// [`same_label_pair_histogram`] calling `on_pair(pairs_done)` after every pair; `Break` stops it with
/// [`MetricError::Cancelled`]. The values are the same as without the callback.
pub fn same_label_pair_histogram_with_progress(
    images: &[GrayImage],
    pairs: usize,
    seed: u64,
    mode: MsSsimMode,
    bins: usize,
    range: (f64, f64),
    on_pair: &mut dyn FnMut(usize) -> ControlFlow<()>,
) -> Result<PairHistogram, MetricError> {
    if images.len() < 2 {
        return Err(MetricError::TooFew { what: "images of the label", needed: 2, actual: images.len() });
    }
    let mut rng = SeededRng::new(seed);
    let mut values = Vec::with_capacity(pairs);
    let mut undefined_pairs = 0;
    for pair in 0..pairs {
        let first = rng.below(images.len());
        let mut second = rng.below(images.len() - 1);
        if second >= first {
            second += 1;
        }
        match ms_ssim(&images[first], &images[second], mode) {
            Ok(result) => values.push(result.value),
            Err(MetricError::Undefined { .. }) => undefined_pairs += 1,
            Err(other) => return Err(other),
        }
        if on_pair(pair + 1).is_break() {
            return Err(MetricError::Cancelled { what: "MS-SSIM pair histogram" });
        }
    }
    let (counts, bin_edges, out_of_range) = histogram(&values, bins, range)?;
    let (mean, std) = crate::metrics::bootstrap::mean_and_population_std(&values);
    Ok(PairHistogram {
        counts,
        bin_edges,
        pairs_requested: pairs,
        values,
        undefined_pairs,
        out_of_range,
        mean,
        std,
        seed,
    })
}

/// `numpy.histogram(values, bins, range)`: counts, edges, and the number of values outside the range.
pub fn histogram(values: &[f64], bins: usize, range: (f64, f64)) -> Result<(Vec<u64>, Vec<f64>, usize), MetricError> {
    let (low, high) = range;
    if bins == 0 {
        return Err(MetricError::TooFew { what: "histogram bins", needed: 1, actual: 0 });
    }
    if !(low.is_finite() && high.is_finite() && low < high) {
        return Err(MetricError::InvalidArgument {
            what: "histogram range",
            reason: format!("needs finite low < high, got ({low}, {high})"),
        });
    }
    let width = (high - low) / bins as f64;
    let edges: Vec<f64> = (0..=bins).map(|i| low + i as f64 * width).collect();
    let mut counts = vec![0u64; bins];
    let mut out_of_range = 0;
    for &v in values {
        if !(v >= low && v <= high) {
            out_of_range += 1;
            continue;
        }
        let mut bin = (((v - low) / width) as usize).min(bins - 1);
        // Guard the floating-point division against the edges it must respect.
        if bin > 0 && v < edges[bin] {
            bin -= 1;
        } else if bin + 1 < bins && v >= edges[bin + 1] {
            bin += 1;
        }
        counts[bin] += 1;
    }
    Ok((counts, edges, out_of_range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_like_numpy() {
        // np.histogram([0, 0.5, 1, 1, 2], bins=2, range=(0, 1)) -> [1, 3], one value outside.
        let (counts, edges, outside) = histogram(&[0.0, 0.5, 1.0, 1.0, 2.0], 2, (0.0, 1.0)).unwrap();
        assert_eq!(counts, vec![1, 3]);
        assert_eq!(edges, vec![0.0, 0.5, 1.0]);
        assert_eq!(outside, 1);
        assert!(histogram(&[], 0, (0.0, 1.0)).is_err());
        assert!(histogram(&[], 2, (1.0, 0.0)).is_err());
    }

    #[test]
    fn pair_histogram_is_seeded_and_counts_all_pairs() {
        let images: Vec<GrayImage> = (0..4)
            .map(|k| {
                let pixels = (0..64 * 64).map(|i| (((i % 64) * (k + 1) + (i / 64) * 3) % 256) as f32).collect();
                GrayImage::new(64, 64, pixels).unwrap()
            })
            .collect();
        let mode = MsSsimMode::ThoraxGanCompat;
        let a = same_label_pair_histogram(&images, 12, 5, mode, DEFAULT_BINS, (0.0, 1.0)).unwrap();
        let b = same_label_pair_histogram(&images, 12, 5, mode, DEFAULT_BINS, (0.0, 1.0)).unwrap();
        assert_eq!(a, b);
        let counted: u64 = a.counts.iter().sum();
        assert_eq!(counted as usize + a.out_of_range + a.undefined_pairs, 12);
        assert!(same_label_pair_histogram(&images[..1], 3, 5, mode, 50, (0.0, 1.0)).is_err());
    }
}
