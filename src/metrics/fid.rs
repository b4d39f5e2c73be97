//! Frechet distance between two Gaussians fitted to feature matrices (FID when the features are Inception-v3
//! pool3, "FD-DenseNet" / "FD_XRV" for other extractors):
//!
//! `FD = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2})`
//!
//! in `f64`, with `np.cov`'s unbiased (N-1) covariance. pytorch-fid takes `scipy.linalg.sqrtm(S1 S2)` (and adds
//! `1e-6 I` when that is not finite); here the trace term comes from the eigenvalues of the symmetric PSD matrix
//! `L^T S1 L` with `S2 = L L^T` (pivoted Cholesky), which equal those of `S1 S2` and stay real and stable when the
//! covariances are singular (N <= D). Golden tests: scipy `sqrtm` values within 1e-6 relative.

use crate::metrics::error::MetricError;
use crate::metrics::features::{FeatureMatrix, FeatureStatistics};
use crate::metrics::linalg;

/// The Frechet distance and its parts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrechetDistance {
    /// The distance.
    pub value: f64,
    /// `||mu1 - mu2||^2`.
    pub mean_term: f64,
    /// `Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2})`.
    pub covariance_term: f64,
    /// `Tr((S1 S2)^{1/2})`.
    pub trace_sqrt: f64,
    /// Rows of the first and second feature set.
    pub count_a: usize,
    /// Rows of the second feature set.
    pub count_b: usize,
    /// Feature dimension.
    pub dim: usize,
}

impl FrechetDistance {
    /// A caution when a set has no more images than the features have dimensions: its covariance is then
    /// rank-deficient (rank at most N - 1), and the distance is biased upward and depends strongly on N (Chong and
    /// Forsyth 2020; Heusel et al. advise at least as many images as dimensions, 2048 for Inception).
    pub fn sample_size_caution(&self) -> Option<String> {
        let smaller = self.count_a.min(self.count_b);
        (smaller <= self.dim).then(|| {
            format!(
                "N = {} / {} images against {} feature dimensions: the covariances are rank-deficient, so this FD \
                 is biased upward and varies with N; compare FDs only at equal N, or read KID (unbiased at any N)",
                self.count_a, self.count_b, self.dim
            )
        })
    }
}

/// Frechet distance of two feature matrices with the same number of columns (at least 2 rows each).
pub fn frechet_distance(a: &FeatureMatrix, b: &FeatureMatrix) -> Result<FrechetDistance, MetricError> {
    if a.cols() != b.cols() {
        return Err(MetricError::ShapeMismatch {
            what: "feature dimensions of the two sets",
            left: a.cols().to_string(),
            right: b.cols().to_string(),
        });
    }
    let stats_a = FeatureStatistics::from_features(a)?;
    let stats_b = FeatureStatistics::from_features(b)?;
    frechet_distance_from_statistics(&stats_a, &stats_b)
}

/// Frechet distance from precomputed means and covariances.
pub fn frechet_distance_from_statistics(
    a: &FeatureStatistics,
    b: &FeatureStatistics,
) -> Result<FrechetDistance, MetricError> {
    let d = a.dim;
    if b.dim != d {
        return Err(MetricError::ShapeMismatch {
            what: "feature dimensions of the two statistics",
            left: d.to_string(),
            right: b.dim.to_string(),
        });
    }
    for (what, stats) in [("first statistics", a), ("second statistics", b)] {
        if stats.mean.len() != d || stats.covariance.len() != d * d {
            return Err(MetricError::LengthMismatch { what, left: stats.covariance.len(), right: d * d });
        }
        crate::metrics::error::check_finite_f64(what, &stats.covariance)?;
        crate::metrics::error::check_finite_f64(what, &stats.mean)?;
    }
    let mean_term: f64 = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y) * (x - y)).sum();
    let trace_a: f64 = (0..d).map(|i| a.covariance[i * d + i]).sum();
    let trace_b: f64 = (0..d).map(|i| b.covariance[i * d + i]).sum();
    let (trace_sqrt, _) = linalg::trace_sqrt_product(&a.covariance, &b.covariance, d)?;
    let covariance_term = trace_a + trace_b - 2.0 * trace_sqrt;
    Ok(FrechetDistance {
        value: mean_term + covariance_term,
        mean_term,
        covariance_term,
        trace_sqrt,
        count_a: a.count,
        count_b: b.count,
        dim: d,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_set_gives_zero_and_shift_gives_mean_term() {
        let rows: Vec<Vec<f32>> =
            (0..40).map(|i| (0..6).map(|j| ((i * 7 + j * 3) % 11) as f32 * 0.3 + (j as f32)).collect()).collect();
        let a = FeatureMatrix::from_rows(&rows).unwrap();
        let fd = frechet_distance(&a, &a).unwrap();
        assert!(fd.value.abs() < 1e-9, "{fd:?}");
        let shifted: Vec<Vec<f32>> = rows.iter().map(|r| r.iter().map(|v| v + 2.0).collect()).collect();
        let b = FeatureMatrix::from_rows(&shifted).unwrap();
        let fd = frechet_distance(&a, &b).unwrap();
        assert!((fd.value - 6.0 * 4.0).abs() < 1e-6, "{fd:?}");
    }

    #[test]
    fn few_images_for_the_dimension_get_a_caution() {
        let rows: Vec<Vec<f32>> = (0..6).map(|i| (0..6).map(|j| ((i * 5 + j * 3) % 7) as f32).collect()).collect();
        let six = FeatureMatrix::from_rows(&rows).unwrap();
        let caution = frechet_distance(&six, &six).unwrap().sample_size_caution().unwrap();
        assert!(caution.starts_with("N = 6 / 6 images against 6 feature dimensions"), "{caution}");
        let seven: Vec<Vec<f32>> = rows.iter().cycle().take(7).cloned().collect();
        let seven = FeatureMatrix::from_rows(&seven).unwrap();
        assert!(frechet_distance(&six, &seven).unwrap().sample_size_caution().is_some(), "the smaller set counts");
        assert_eq!(frechet_distance(&seven, &seven).unwrap().sample_size_caution(), None);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let a = FeatureMatrix::new(vec![0.0; 6], 2, 3).unwrap();
        let b = FeatureMatrix::new(vec![0.0; 8], 2, 4).unwrap();
        assert!(matches!(frechet_distance(&a, &b), Err(MetricError::ShapeMismatch { .. })));
        let one = FeatureMatrix::new(vec![0.0; 3], 1, 3).unwrap();
        assert!(matches!(frechet_distance(&a, &one), Err(MetricError::TooFew { .. })));
        assert!(FeatureMatrix::new(vec![f32::NAN; 3], 1, 3).is_err());
        assert!(FeatureMatrix::new(vec![], 0, 3).is_err());
    }
}
