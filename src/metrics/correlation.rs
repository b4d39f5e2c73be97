//! Pearson correlation (`scipy.stats.pearsonr`'s r) and Thorax_GAN's pathology correlation matrix.
//!
//! The matrix follows `Correlation/*.ipynb`: for control label p (images generated with label p ~ U(0, 1), the others
//! 0) and classifier output k, cell `[p][k]` is Pearson's r between the control values and the classifier's
//! probability of k over those images. Rows are control labels, columns classifier outputs (the notebook plots the
//! transpose; see research/seed.md section 6). A constant column (zero variance) has no correlation: the cell is
//! `None` and listed in `undefined_cells`, where scipy would warn and return NaN. p-values are not computed.

use crate::metrics::error::{MetricError, check_finite_f64};

/// Pearson's r of `x` and `y`; `Ok(None)` when either is constant. Needs at least 2 pairs.
pub fn pearson(x: &[f64], y: &[f64]) -> Result<Option<f64>, MetricError> {
    if x.len() != y.len() {
        return Err(MetricError::LengthMismatch { what: "Pearson x vs y", left: x.len(), right: y.len() });
    }
    if x.len() < 2 {
        return Err(MetricError::TooFew { what: "Pearson pairs", needed: 2, actual: x.len() });
    }
    check_finite_f64("Pearson x", x)?;
    check_finite_f64("Pearson y", y)?;
    let constant = |v: &[f64]| v.iter().all(|&a| a == v[0]);
    if constant(x) || constant(y) {
        return Ok(None);
    }
    let n = x.len() as f64;
    let mean_x = x.iter().sum::<f64>() / n;
    let mean_y = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (dx, dy) = (a - mean_x, b - mean_y);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return Ok(None);
    }
    Ok(Some((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)))
}

/// The experiment of one control label: its control values and the classifier's probabilities for each image.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlExperiment {
    /// Name of the label that was varied.
    pub control_label: String,
    /// Control value of each image.
    pub control_values: Vec<f64>,
    /// Classifier probabilities of each image, one vector per image in `output_labels` order.
    pub probabilities: Vec<Vec<f64>>,
}

/// Correlation matrix, rows = control labels, columns = classifier outputs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CorrelationMatrix {
    /// Row names.
    pub control_labels: Vec<String>,
    /// Column names.
    pub output_labels: Vec<String>,
    /// Pearson's r per cell; `None` where a column is constant.
    pub r: Vec<Vec<Option<f64>>>,
    /// Images per row.
    pub counts: Vec<usize>,
    /// (row, column) of the undefined cells.
    pub undefined_cells: Vec<(usize, usize)>,
}

/// Builds the matrix from one experiment per control label.
pub fn correlation_matrix(
    experiments: &[ControlExperiment],
    output_labels: &[String],
) -> Result<CorrelationMatrix, MetricError> {
    if experiments.is_empty() {
        return Err(MetricError::TooFew { what: "correlation experiments", needed: 1, actual: 0 });
    }
    let k = output_labels.len();
    let mut r = Vec::with_capacity(experiments.len());
    let mut undefined_cells = Vec::new();
    for (row, experiment) in experiments.iter().enumerate() {
        if experiment.probabilities.len() != experiment.control_values.len() {
            return Err(MetricError::LengthMismatch {
                what: "control values vs probability vectors",
                left: experiment.control_values.len(),
                right: experiment.probabilities.len(),
            });
        }
        if let Some(bad) = experiment.probabilities.iter().find(|p| p.len() != k) {
            return Err(MetricError::LengthMismatch {
                what: "probability vector vs output labels",
                left: bad.len(),
                right: k,
            });
        }
        let mut cells = Vec::with_capacity(k);
        for column in 0..k {
            let outputs: Vec<f64> = experiment.probabilities.iter().map(|p| p[column]).collect();
            let value = pearson(&experiment.control_values, &outputs)?;
            if value.is_none() {
                undefined_cells.push((row, column));
            }
            cells.push(value);
        }
        r.push(cells);
    }
    Ok(CorrelationMatrix {
        control_labels: experiments.iter().map(|e| e.control_label.clone()).collect(),
        output_labels: output_labels.to_vec(),
        r,
        counts: experiments.iter().map(|e| e.control_values.len()).collect(),
        undefined_cells,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_constant_and_errors() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap().unwrap() - 1.0).abs() < 1e-15);
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[5.0, 5.0, 5.0]).unwrap(), None);
        assert!(pearson(&[1.0], &[1.0]).is_err());
        assert!(pearson(&[1.0, f64::NAN], &[1.0, 2.0]).is_err());
        let experiment = ControlExperiment {
            control_label: "A".into(),
            control_values: vec![0.1, 0.5, 0.9],
            probabilities: vec![vec![0.2, 0.3], vec![0.5, 0.3], vec![0.7, 0.3]],
        };
        let m = correlation_matrix(&[experiment], &["A".into(), "B".into()]).unwrap();
        assert_eq!(m.undefined_cells, vec![(0, 1)]);
        assert!(m.r[0][0].unwrap() > 0.99);
    }
}
