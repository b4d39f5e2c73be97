//! Bootstrap over cases for ROC statistics.
//!
//! * [`bootstrap_auc`]: the conventional protocol, the percentile confidence interval of the AUC (numpy's default
//!   linear-interpolation percentile of the resampled AUCs) over `resamples` draws of `n` cases with replacement.
//! * [`thorax_gan_protocol`]: Thorax_GAN `Analysis/bootstrapping.py`: a corner-closest cutoff chosen once on the
//!   full set from `linspace(0, 1, 10000)`, then per resample the AUC and accuracy, sensitivity, specificity, PPV,
//!   NPV and F1 at that cutoff, summarised as mean and population SD (`np.std`). Defaults: 10,000 resamples of
//!   10,000 cases (or `n` when unset).
//!
//! Differences from the Python scripts, by design: resamples come from [`SeededRng`] (not pandas'
//! `random_state=i`); a resample holding a single class is skipped and counted (sklearn raises there); a threshold
//! statistic with a zero denominator in a resample is left out of that statistic's mean and counted (numpy would
//! turn the whole mean into NaN). Each resample costs O(n): cases are sorted once and a resample is a vector of
//! multiplicities.

use crate::metrics::error::MetricError;
use crate::metrics::rng::SeededRng;
use crate::metrics::roc::{self, ThresholdStatistics};

/// Thorax_GAN's number of candidate cutoffs.
pub const THORAX_GAN_CUTOFF_COUNT: usize = 10_000;

/// Percentile bootstrap of the AUC.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BootstrapAuc {
    /// AUC on all cases.
    pub auc: f64,
    /// Lower end of the percentile interval.
    pub ci_low: f64,
    /// Upper end of the percentile interval.
    pub ci_high: f64,
    /// Confidence level of the interval (e.g. 0.95).
    pub level: f64,
    /// Mean AUC over the resamples used.
    pub mean: f64,
    /// Population SD of the AUC over the resamples used.
    pub std: f64,
    /// Resamples requested.
    pub resamples: usize,
    /// Resamples used (both classes present).
    pub resamples_used: usize,
    /// Resamples skipped because they held a single class.
    pub skipped_one_class: usize,
    /// Seed of the resampling.
    pub seed: u64,
}

/// Percentile bootstrap CI of the AUC with `resamples` draws of `n` cases (with replacement).
pub fn bootstrap_auc(
    truth: &[bool],
    scores: &[f64],
    resamples: usize,
    level: f64,
    seed: u64,
) -> Result<BootstrapAuc, MetricError> {
    if !(level > 0.0 && level < 1.0) {
        return Err(MetricError::InvalidArgument {
            what: "confidence level",
            reason: format!("must lie in (0, 1), got {level}"),
        });
    }
    if resamples == 0 {
        return Err(MetricError::TooFew { what: "bootstrap resamples", needed: 1, actual: 0 });
    }
    let auc = roc::roc_auc(truth, scores)?;
    let order = roc::order_descending(scores);
    let n = truth.len();
    let mut rng = SeededRng::new(seed);
    let mut weights = vec![0u32; n];
    let mut aucs = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        draw_weights(&mut rng, n, n, &mut weights);
        if let Some(value) = roc::weighted_auc_sorted(truth, scores, &order, &weights) {
            aucs.push(value);
        }
    }
    let skipped_one_class = resamples - aucs.len();
    if aucs.is_empty() {
        return Err(MetricError::Undefined {
            what: "bootstrap AUC",
            reason: format!("all {resamples} resamples held a single class"),
        });
    }
    let (mean, std) = mean_and_population_std(&aucs);
    aucs.sort_by(f64::total_cmp);
    let tail = 100.0 * (1.0 - level) / 2.0;
    Ok(BootstrapAuc {
        auc,
        ci_low: percentile_sorted(&aucs, tail),
        ci_high: percentile_sorted(&aucs, 100.0 - tail),
        level,
        mean,
        std,
        resamples,
        resamples_used: aucs.len(),
        skipped_one_class,
        seed,
    })
}

/// Mean and population SD of one statistic across resamples, with the count of resamples where it was defined.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Mean over resamples where the statistic was defined.
    pub mean: f64,
    /// Population SD (`np.std`) over the same resamples.
    pub std: f64,
    /// Resamples where the statistic was defined.
    pub defined: usize,
}

/// Result of the Thorax_GAN bootstrap protocol for one label.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThoraxGanProtocol {
    /// Cutoff chosen on the full set.
    pub cutoff: f64,
    /// AUC on the full set.
    pub full_auc: f64,
    /// Threshold statistics on the full set at the cutoff.
    pub full_at_cutoff: ThresholdStatistics,
    /// AUC over resamples.
    pub auc: Summary,
    /// Accuracy over resamples.
    pub accuracy: Summary,
    /// Sensitivity over resamples.
    pub sensitivity: Summary,
    /// Specificity over resamples.
    pub specificity: Summary,
    /// PPV over resamples.
    pub ppv: Summary,
    /// NPV over resamples.
    pub npv: Summary,
    /// F1 over resamples.
    pub f1: Summary,
    /// Resamples requested.
    pub resamples: usize,
    /// Cases per resample.
    pub sample_size: usize,
    /// Resamples skipped because they held a single class.
    pub skipped_one_class: usize,
    /// Seed of the resampling (`None` when the caller supplied the index sets).
    pub seed: Option<u64>,
}

/// Thorax_GAN's protocol with seeded resamples of `sample_size` cases (default: all `n`).
pub fn thorax_gan_protocol(
    truth: &[bool],
    scores: &[f64],
    resamples: usize,
    sample_size: Option<usize>,
    seed: u64,
) -> Result<ThoraxGanProtocol, MetricError> {
    roc::check_binary(truth, scores)?;
    let (cutoff, _) = roc::corner_closest_cutoff(truth, scores, THORAX_GAN_CUTOFF_COUNT)?;
    let n = truth.len();
    let sample_size = sample_size.unwrap_or(n);
    let mut rng = SeededRng::new(seed);
    let mut weights = vec![0u32; n];
    let mut accumulator = ProtocolAccumulator::new(truth, scores, cutoff);
    for _ in 0..resamples {
        draw_weights(&mut rng, n, sample_size, &mut weights);
        accumulator.add(&weights);
    }
    let mut result = accumulator.finish(resamples, sample_size)?;
    result.seed = Some(seed);
    Ok(result)
}

/// Thorax_GAN's protocol on caller-chosen resamples (lists of case indices) and a given cutoff.
pub fn thorax_gan_protocol_on_indices(
    truth: &[bool],
    scores: &[f64],
    cutoff: f64,
    index_sets: &[Vec<usize>],
) -> Result<ThoraxGanProtocol, MetricError> {
    roc::check_binary(truth, scores)?;
    let n = truth.len();
    let mut weights = vec![0u32; n];
    let mut accumulator = ProtocolAccumulator::new(truth, scores, cutoff);
    let mut sample_size = 0;
    for set in index_sets {
        weights.fill(0);
        for &i in set {
            let slot = weights.get_mut(i).ok_or(MetricError::InvalidArgument {
                what: "resample index",
                reason: format!("case {i} out of range for {n} cases"),
            })?;
            *slot += 1;
        }
        sample_size = set.len();
        accumulator.add(&weights);
    }
    accumulator.finish(index_sets.len(), sample_size)
}

struct ProtocolAccumulator<'a> {
    truth: &'a [bool],
    scores: &'a [f64],
    order: Vec<usize>,
    called_positive: Vec<bool>,
    cutoff: f64,
    aucs: Vec<f64>,
    statistics: [Vec<f64>; 6],
}

impl<'a> ProtocolAccumulator<'a> {
    fn new(truth: &'a [bool], scores: &'a [f64], cutoff: f64) -> Self {
        Self {
            truth,
            scores,
            order: roc::order_descending(scores),
            called_positive: scores.iter().map(|&s| s > cutoff).collect(),
            cutoff,
            aucs: Vec::new(),
            statistics: Default::default(),
        }
    }

    fn add(&mut self, weights: &[u32]) {
        let Some(auc) = roc::weighted_auc_sorted(self.truth, self.scores, &self.order, weights) else {
            return;
        };
        self.aucs.push(auc);
        let (mut tp, mut fp, mut tn, mut fn_) = (0.0, 0.0, 0.0, 0.0);
        for ((&t, &called), &w) in self.truth.iter().zip(&self.called_positive).zip(weights) {
            let w = f64::from(w);
            match (t, called) {
                (true, true) => tp += w,
                (true, false) => fn_ += w,
                (false, true) => fp += w,
                (false, false) => tn += w,
            }
        }
        let stats = ThresholdStatistics::from_counts(tp, fp, tn, fn_);
        for (values, value) in self.statistics.iter_mut().zip(stats.values()) {
            if let Some(v) = value {
                values.push(v);
            }
        }
    }

    fn finish(self, resamples: usize, sample_size: usize) -> Result<ThoraxGanProtocol, MetricError> {
        if self.aucs.is_empty() {
            return Err(MetricError::Undefined {
                what: "Thorax_GAN bootstrap",
                reason: format!("none of {resamples} resamples held both classes"),
            });
        }
        let summary = |values: &[f64]| {
            let (mean, std) = mean_and_population_std(values);
            Summary { mean, std, defined: values.len() }
        };
        let [accuracy, sensitivity, specificity, ppv, npv, f1] = &self.statistics;
        let full_at_cutoff = roc::threshold_statistics(self.truth, self.scores, self.cutoff)?;
        Ok(ThoraxGanProtocol {
            cutoff: self.cutoff,
            full_auc: roc::roc_auc(self.truth, self.scores)?,
            full_at_cutoff,
            auc: summary(&self.aucs),
            accuracy: summary(accuracy),
            sensitivity: summary(sensitivity),
            specificity: summary(specificity),
            ppv: summary(ppv),
            npv: summary(npv),
            f1: summary(f1),
            resamples,
            sample_size,
            skipped_one_class: resamples - self.aucs.len(),
            seed: None,
        })
    }
}

/// Multiplicities of `draws` cases drawn uniformly with replacement from `n`.
fn draw_weights(rng: &mut SeededRng, n: usize, draws: usize, weights: &mut [u32]) {
    weights.fill(0);
    for _ in 0..draws {
        if let Some(w) = weights.get_mut(rng.below(n)) {
            *w += 1;
        }
    }
}

/// Mean and population SD (NaN-free: empty input gives zeros).
pub fn mean_and_population_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / count;
    (mean, variance.sqrt())
}

/// numpy's default (`linear`) percentile `q` in [0, 100] of sorted, non-empty `values`.
pub fn percentile_sorted(values: &[f64], q: f64) -> f64 {
    let Some(&last) = values.last() else {
        return f64::NAN;
    };
    let position = (q / 100.0) * (values.len() - 1) as f64;
    let lower = position.floor() as usize;
    let fraction = position - lower as f64;
    match (values.get(lower), values.get(lower + 1)) {
        (Some(&a), Some(&b)) => a + (b - a) * fraction,
        (Some(&a), None) => a,
        _ => last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // np.percentile([1,2,3,4], [2.5, 50, 97.5]) = [1.075, 2.5, 3.925]
        assert!((percentile_sorted(&v, 2.5) - 1.075).abs() < 1e-12);
        assert!((percentile_sorted(&v, 50.0) - 2.5).abs() < 1e-12);
        assert!((percentile_sorted(&v, 97.5) - 3.925).abs() < 1e-12);
    }

    #[test]
    fn rare_class_resamples_are_skipped_and_counted() {
        // One positive in 40: about (39/40)^40 = 36% of resamples miss it.
        let truth: Vec<bool> = (0..40).map(|i| i == 0).collect();
        let scores: Vec<f64> = (0..40).map(|i| i as f64 / 40.0).collect();
        let result = bootstrap_auc(&truth, &scores, 500, 0.95, 3).unwrap();
        assert!(result.skipped_one_class > 100 && result.skipped_one_class < 260, "{result:?}");
        assert_eq!(result.resamples_used + result.skipped_one_class, 500);
        assert!(bootstrap_auc(&truth, &scores, 10, 1.5, 3).is_err());
    }
}
