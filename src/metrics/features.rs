//! Feature matrices `[N, D]` (one row per image) as produced by a feature extractor, and their statistics.

use crate::metrics::error::{MetricError, check_finite_f32};
use crate::metrics::linalg;

/// A row-major `rows x cols` matrix of finite `f32` features.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl FeatureMatrix {
    /// Wraps row-major `data` of `rows * cols` finite values; needs `rows >= 1` and `cols >= 1`.
    pub fn new(data: Vec<f32>, rows: usize, cols: usize) -> Result<Self, MetricError> {
        if rows == 0 {
            return Err(MetricError::TooFew { what: "feature matrix rows", needed: 1, actual: 0 });
        }
        if cols == 0 {
            return Err(MetricError::TooFew { what: "feature matrix columns", needed: 1, actual: 0 });
        }
        let expected = rows.checked_mul(cols).ok_or(MetricError::InvalidArgument {
            what: "feature matrix shape",
            reason: format!("{rows}x{cols} overflows"),
        })?;
        if data.len() != expected {
            return Err(MetricError::LengthMismatch {
                what: "feature data vs rows*cols",
                left: data.len(),
                right: expected,
            });
        }
        check_finite_f32("feature matrix", &data)?;
        Ok(Self { rows, cols, data })
    }

    /// From one vector per image; all must have the same length.
    pub fn from_rows(rows: &[Vec<f32>]) -> Result<Self, MetricError> {
        let cols = rows.first().map_or(0, Vec::len);
        let mut data = Vec::with_capacity(rows.len() * cols);
        for row in rows {
            if row.len() != cols {
                return Err(MetricError::ShapeMismatch {
                    what: "feature vectors",
                    left: cols.to_string(),
                    right: row.len().to_string(),
                });
            }
            data.extend_from_slice(row);
        }
        Self::new(data, rows.len(), cols)
    }

    /// Number of rows (images).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (feature dimension).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row-major values.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Row `index` (panics never: an out-of-range index gives an empty slice).
    pub fn row(&self, index: usize) -> &[f32] {
        self.data.get(index * self.cols..(index + 1) * self.cols).unwrap_or(&[])
    }
}

/// Mean and unbiased (N-1) covariance of a feature matrix, in `f64`: what `np.mean(axis=0)` and
/// `np.cov(rowvar=False)` give.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStatistics {
    /// Number of rows the statistics come from.
    pub count: usize,
    /// Feature dimension D.
    pub dim: usize,
    /// Mean vector, length D.
    pub mean: Vec<f64>,
    /// Covariance, row-major D x D.
    pub covariance: Vec<f64>,
}

impl FeatureStatistics {
    /// Statistics of `features`; needs at least 2 rows.
    pub fn from_features(features: &FeatureMatrix) -> Result<Self, MetricError> {
        let (n, d) = (features.rows, features.cols);
        if n < 2 {
            return Err(MetricError::TooFew { what: "feature rows for an unbiased covariance", needed: 2, actual: n });
        }
        let mut mean = vec![0.0f64; d];
        for r in 0..n {
            for (m, &v) in mean.iter_mut().zip(features.row(r)) {
                *m += f64::from(v);
            }
        }
        for m in &mut mean {
            *m /= n as f64;
        }
        // Centred, transposed (D x N) so each covariance entry is a contiguous dot product.
        let mut centred_t = vec![0.0f64; d * n];
        for r in 0..n {
            for (c, (&v, m)) in features.row(r).iter().zip(&mean).enumerate() {
                centred_t[c * n + r] = f64::from(v) - m;
            }
        }
        let mut covariance = linalg::gram_symmetric(&centred_t, d, n);
        let scale = 1.0 / (n as f64 - 1.0);
        for v in &mut covariance {
            *v *= scale;
        }
        Ok(Self { count: n, dim: d, mean, covariance })
    }
}
