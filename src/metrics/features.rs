//! Feature matrices `[N, D]` (one row per image) as produced by a feature extractor, and their statistics.

use crate::metrics::error::{MetricError, check_finite_f32, check_finite_f64};
use crate::metrics::linalg;

/// A row-major `rows x cols` matrix of finite features, kept at the precision it came in: float32 features (what
/// the extractors produce) take half the memory, and float64 files keep every digit (read as float32, features with
/// a large offset lost enough to move FD by 7.5e-3 relative).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    rows: usize,
    cols: usize,
    values: Values,
}

#[derive(Debug, Clone, PartialEq)]
enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// The values of one row as f64, whatever the matrix stores.
#[derive(Debug, Clone)]
pub enum RowValues<'a> {
    F32(std::slice::Iter<'a, f32>),
    F64(std::slice::Iter<'a, f64>),
}

impl Iterator for RowValues<'_> {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        match self {
            Self::F32(values) => values.next().map(|&v| f64::from(v)),
            Self::F64(values) => values.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Self::F32(values) => values.size_hint(),
            Self::F64(values) => values.size_hint(),
        }
    }
}

impl ExactSizeIterator for RowValues<'_> {}

/// Checks the shape of `len` values as `rows x cols` (both at least 1).
fn check_shape(len: usize, rows: usize, cols: usize) -> Result<(), MetricError> {
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
    if len != expected {
        return Err(MetricError::LengthMismatch { what: "feature data vs rows*cols", left: len, right: expected });
    }
    Ok(())
}

impl FeatureMatrix {
    /// Wraps row-major `data` of `rows * cols` finite values; needs `rows >= 1` and `cols >= 1`.
    pub fn new(data: Vec<f32>, rows: usize, cols: usize) -> Result<Self, MetricError> {
        check_shape(data.len(), rows, cols)?;
        check_finite_f32("feature matrix", &data)?;
        Ok(Self { rows, cols, values: Values::F32(data) })
    }

    /// [`Self::new`] for float64 values. Values that are all exactly float32 are stored as float32 (half the memory,
    /// nothing lost); any other keeps float64.
    pub fn new_f64(data: Vec<f64>, rows: usize, cols: usize) -> Result<Self, MetricError> {
        check_shape(data.len(), rows, cols)?;
        check_finite_f64("feature matrix", &data)?;
        let values = if data.iter().all(|&v| f64::from(v as f32) == v) {
            Values::F32(data.iter().map(|&v| v as f32).collect())
        } else {
            Values::F64(data)
        };
        Ok(Self { rows, cols, values })
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

    /// Whether the values are kept as float64 (they are not all exactly float32).
    pub fn is_f64(&self) -> bool {
        matches!(self.values, Values::F64(_))
    }

    /// Row `index` as f64 values (panics never: an out-of-range index gives an empty row).
    pub fn row_f64(&self, index: usize) -> RowValues<'_> {
        let range = index * self.cols..(index + 1) * self.cols;
        match &self.values {
            Values::F32(data) => RowValues::F32(data.get(range).unwrap_or(&[]).iter()),
            Values::F64(data) => RowValues::F64(data.get(range).unwrap_or(&[]).iter()),
        }
    }

    /// Rows `indices` (repeats allowed) as a new matrix of the same precision.
    pub fn select_rows(&self, indices: &[usize]) -> Result<Self, MetricError> {
        fn gather<T: Copy>(data: &[T], cols: usize, rows: usize, indices: &[usize]) -> Result<Vec<T>, MetricError> {
            let mut out = Vec::with_capacity(indices.len() * cols);
            for &i in indices {
                let row = data.get(i * cols..(i + 1) * cols).ok_or_else(|| MetricError::InvalidArgument {
                    what: "feature row index",
                    reason: format!("row {i} out of range for {rows} rows"),
                })?;
                out.extend_from_slice(row);
            }
            Ok(out)
        }
        let values = match &self.values {
            Values::F32(data) => Values::F32(gather(data, self.cols, self.rows, indices)?),
            Values::F64(data) => Values::F64(gather(data, self.cols, self.rows, indices)?),
        };
        check_shape(indices.len() * self.cols, indices.len(), self.cols)?;
        Ok(Self { rows: indices.len(), cols: self.cols, values })
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
            for (m, v) in mean.iter_mut().zip(features.row_f64(r)) {
                *m += v;
            }
        }
        for m in &mut mean {
            *m /= n as f64;
        }
        // Centred, transposed (D x N) so each covariance entry is a contiguous dot product.
        let mut centred_t = vec![0.0f64; d * n];
        for r in 0..n {
            for (c, (v, m)) in features.row_f64(r).zip(&mean).enumerate() {
                centred_t[c * n + r] = v - m;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float64_values_keep_their_digits_and_float32_exact_ones_take_half_the_memory() {
        let offset = FeatureMatrix::new_f64(vec![1e5 + 0.001, 1e5 - 0.002, 1.0, 2.0], 2, 2).unwrap();
        assert!(offset.is_f64());
        assert_eq!(offset.row_f64(0).collect::<Vec<_>>(), vec![1e5 + 0.001, 1e5 - 0.002]);
        let exact = FeatureMatrix::new_f64(vec![0.5, 3.0, -2.25, 7.0], 2, 2).unwrap();
        assert!(!exact.is_f64());
        assert_eq!(exact, FeatureMatrix::new(vec![0.5, 3.0, -2.25, 7.0], 2, 2).unwrap());
        let picked = offset.select_rows(&[1, 0, 1]).unwrap();
        assert_eq!((picked.rows(), picked.row_f64(2).collect::<Vec<_>>()), (3, vec![1.0, 2.0]));
        assert!(offset.select_rows(&[2]).is_err());
        assert!(FeatureMatrix::new_f64(vec![f64::NAN, 0.0], 1, 2).is_err());
    }
}
