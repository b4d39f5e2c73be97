//! Percentile bootstrap confidence interval of a Frechet distance: both feature sets are resampled (rows with
//! replacement, each set at its own size) and the distance recomputed, so the interval shows how much the value
//! depends on which N images were drawn.

use serde::{Deserialize, Serialize};

use crate::metrics::MetricError;
use crate::metrics::bootstrap::percentile_sorted;
use crate::metrics::features::FeatureMatrix;
use crate::metrics::fid::frechet_distance;
use crate::metrics::rng::SeededRng;

/// A bootstrap interval of the Frechet distance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FdBootstrap {
    /// The distance of the full sets.
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
    pub resamples: usize,
    pub seed: u64,
    /// Rows of each set (the N of every resample).
    pub count_a: usize,
    pub count_b: usize,
}

/// Rows `indices` of `matrix` as a new matrix.
fn rows_of(matrix: &FeatureMatrix, indices: &[usize]) -> Result<FeatureMatrix, MetricError> {
    let mut data = Vec::with_capacity(indices.len() * matrix.cols());
    for &i in indices {
        data.extend_from_slice(matrix.row(i));
    }
    FeatureMatrix::new(data, indices.len(), matrix.cols())
}

/// The distance of `a` and `b` with a percentile bootstrap interval at `level` from `resamples` resamples.
/// `progress(done)` is called after each resample; returning `false` cancels with `MetricError::Cancelled`.
pub fn frechet_distance_bootstrap(
    a: &FeatureMatrix,
    b: &FeatureMatrix,
    resamples: usize,
    level: f64,
    seed: u64,
    progress: &mut dyn FnMut(usize) -> bool,
) -> Result<FdBootstrap, MetricError> {
    if resamples < 2 {
        return Err(MetricError::TooFew { what: "bootstrap resamples", needed: 2, actual: resamples });
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(MetricError::InvalidArgument {
            what: "confidence level",
            reason: format!("must be in (0, 1), got {level}"),
        });
    }
    let value = frechet_distance(a, b)?.value;
    let mut rng = SeededRng::new(seed);
    let mut values = Vec::with_capacity(resamples);
    for done in 1..=resamples {
        let drawn_a = rows_of(a, &rng.sample_with_replacement(a.rows(), a.rows()))?;
        let drawn_b = rows_of(b, &rng.sample_with_replacement(b.rows(), b.rows()))?;
        values.push(frechet_distance(&drawn_a, &drawn_b)?.value);
        if !progress(done) {
            return Err(MetricError::Cancelled { what: "Frechet distance bootstrap" });
        }
    }
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0 * 100.0;
    Ok(FdBootstrap {
        value,
        lower: percentile_sorted(&values, tail),
        upper: percentile_sorted(&values, 100.0 - tail),
        level,
        resamples,
        seed,
        count_a: a.rows(),
        count_b: b.rows(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian(rows: usize, cols: usize, shift: f64, seed: u64) -> FeatureMatrix {
        let mut rng = SeededRng::new(seed);
        let mut normal = || {
            let (u1, u2) = (rng.unit_f64().max(1e-300), rng.unit_f64());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        };
        let data = (0..rows * cols).map(|_| (normal() + shift) as f32).collect();
        FeatureMatrix::new(data, rows, cols).unwrap()
    }

    #[test]
    fn interval_holds_the_resample_spread_and_is_reproducible_from_its_seed() {
        let (a, b) = (gaussian(200, 4, 0.0, 1), gaussian(150, 4, 0.5, 2));
        let ci = frechet_distance_bootstrap(&a, &b, 200, 0.95, 9, &mut |_| true).unwrap();
        // Shift 0.5 in 4 dimensions: the true distance is about 4 * 0.25 = 1.
        assert!(ci.lower < ci.value && ci.value < ci.upper, "{ci:?}");
        assert!(ci.lower > 0.4 && ci.upper < 2.0, "{ci:?}");
        assert_eq!((ci.count_a, ci.count_b), (200, 150));
        assert_eq!(frechet_distance_bootstrap(&a, &b, 200, 0.95, 9, &mut |_| true).unwrap(), ci);
        let wider = frechet_distance_bootstrap(&a, &b, 200, 0.99, 9, &mut |_| true).unwrap();
        assert!(wider.lower <= ci.lower && wider.upper >= ci.upper);
    }

    #[test]
    fn cancels_and_refuses_bad_arguments() {
        let a = gaussian(20, 3, 0.0, 3);
        let mut calls = 0;
        let cancelled = frechet_distance_bootstrap(&a, &a, 50, 0.95, 1, &mut |_| {
            calls += 1;
            calls < 3
        });
        assert!(matches!(cancelled, Err(MetricError::Cancelled { .. })));
        assert_eq!(calls, 3);
        assert!(matches!(
            frechet_distance_bootstrap(&a, &a, 1, 0.95, 1, &mut |_| true),
            Err(MetricError::TooFew { .. })
        ));
        assert!(matches!(
            frechet_distance_bootstrap(&a, &a, 10, 1.0, 1, &mut |_| true),
            Err(MetricError::InvalidArgument { .. })
        ));
    }
}
