//! ROC curve and AUC for binary truth, matching scikit-learn (`roc_auc_score`, `roc_curve`).
//!
//! AUC is the trapezoid area under the ROC curve built with every distinct score as a threshold, which equals the
//! Mann-Whitney statistic `P(s+ > s-) + 0.5 P(s+ = s-)`. Truth with a single class is an error, as in sklearn.
//! `roc_curve` follows sklearn >= 1.3: points sorted by decreasing threshold, a first point (0, 0) at threshold
//! `+inf`, and with `drop_intermediate` the points that are collinear on a horizontal or vertical run of the curve
//! removed (sklearn keeps a point when the second difference of the false- or true-positive counts is non-zero).

use crate::metrics::error::{MetricError, check_finite_f64};

/// Validated binary truth and finite scores of the same length, with both classes present.
pub(crate) fn check_binary(truth: &[bool], scores: &[f64]) -> Result<(), MetricError> {
    if truth.len() != scores.len() {
        return Err(MetricError::LengthMismatch { what: "truth vs scores", left: truth.len(), right: scores.len() });
    }
    if truth.is_empty() {
        return Err(MetricError::TooFew { what: "ROC cases", needed: 2, actual: 0 });
    }
    check_finite_f64("scores", scores)?;
    let positives = truth.iter().filter(|&&t| t).count();
    if positives == 0 {
        return Err(MetricError::OneClass { what: "truth", class: 0 });
    }
    if positives == truth.len() {
        return Err(MetricError::OneClass { what: "truth", class: 1 });
    }
    Ok(())
}

/// Indices of `scores` sorted by decreasing score (stable, NaN-free input assumed checked).
pub(crate) fn order_descending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Area under the ROC curve (`sklearn.metrics.roc_auc_score` for binary truth).
pub fn roc_auc(truth: &[bool], scores: &[f64]) -> Result<f64, MetricError> {
    check_binary(truth, scores)?;
    let order = order_descending(scores);
    let weights = vec![1u32; truth.len()];
    weighted_auc_sorted(truth, scores, &order, &weights).ok_or(MetricError::OneClass { what: "truth", class: 0 })
}

/// AUC where case `i` counts `weights[i]` times, given the cases sorted by decreasing score. `None` when the
/// weighted cases hold a single class (a bootstrap resample that must be skipped).
pub(crate) fn weighted_auc_sorted(truth: &[bool], scores: &[f64], order: &[usize], weights: &[u32]) -> Option<f64> {
    // Walk tie groups from the highest score: each negative in a group beats none of the positives above and
    // ties with the group's positives (half credit).
    let mut positives_above = 0.0f64;
    let mut area = 0.0f64;
    let mut total_negatives = 0.0f64;
    let mut start = 0;
    while start < order.len() {
        let value = scores[order[start]];
        let mut end = start;
        let (mut group_pos, mut group_neg) = (0.0f64, 0.0f64);
        while end < order.len() && scores[order[end]] == value {
            let i = order[end];
            let w = f64::from(weights[i]);
            if truth[i] {
                group_pos += w;
            } else {
                group_neg += w;
            }
            end += 1;
        }
        area += group_neg * (positives_above + 0.5 * group_pos);
        positives_above += group_pos;
        total_negatives += group_neg;
        start = end;
    }
    if positives_above == 0.0 || total_negatives == 0.0 {
        return None;
    }
    Some(area / (positives_above * total_negatives))
}

/// Points of a ROC curve, sorted by decreasing threshold. `thresholds[0]` is `+inf` (sklearn >= 1.3).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RocCurve {
    /// False-positive rate of each point.
    pub fpr: Vec<f64>,
    /// True-positive rate of each point.
    pub tpr: Vec<f64>,
    /// Score threshold of each point (a case is positive when its score is `>=` the threshold).
    pub thresholds: Vec<f64>,
}

/// `sklearn.metrics.roc_curve(truth, scores, drop_intermediate=...)`.
pub fn roc_curve(truth: &[bool], scores: &[f64], drop_intermediate: bool) -> Result<RocCurve, MetricError> {
    check_binary(truth, scores)?;
    let order = order_descending(scores);
    // Cumulative counts at the last index of every distinct score.
    let mut fps: Vec<f64> = Vec::new();
    let mut tps: Vec<f64> = Vec::new();
    let mut thresholds: Vec<f64> = Vec::new();
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    for (rank, &i) in order.iter().enumerate() {
        if truth[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_group = order.get(rank + 1).is_none_or(|&next| scores[next] != scores[i]);
        if last_of_group {
            fps.push(fp);
            tps.push(tp);
            thresholds.push(scores[i]);
        }
    }
    if drop_intermediate && fps.len() > 2 {
        let n = fps.len();
        let keep: Vec<usize> = (0..n)
            .filter(|&k| {
                k == 0 || k == n - 1 || {
                    let d2f = fps[k + 1] - 2.0 * fps[k] + fps[k - 1];
                    let d2t = tps[k + 1] - 2.0 * tps[k] + tps[k - 1];
                    d2f != 0.0 || d2t != 0.0
                }
            })
            .collect();
        fps = keep.iter().map(|&k| fps[k]).collect();
        tps = keep.iter().map(|&k| tps[k]).collect();
        thresholds = keep.iter().map(|&k| thresholds[k]).collect();
    }
    let total_fp = fp;
    let total_tp = tp;
    let mut curve = RocCurve { fpr: vec![0.0], tpr: vec![0.0], thresholds: vec![f64::INFINITY] };
    curve.fpr.extend(fps.iter().map(|v| v / total_fp));
    curve.tpr.extend(tps.iter().map(|v| v / total_tp));
    curve.thresholds.extend(thresholds);
    Ok(curve)
}

/// Confusion counts and the derived statistics at a threshold (a case is called positive when `score > cutoff`,
/// as in Thorax_GAN's `bootstrapping.py`). Statistics with a zero denominator are `None` (NaN in numpy).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThresholdStatistics {
    /// True positives.
    pub true_positives: f64,
    /// False positives.
    pub false_positives: f64,
    /// True negatives.
    pub true_negatives: f64,
    /// False negatives.
    pub false_negatives: f64,
    /// (TP + TN) / N.
    pub accuracy: Option<f64>,
    /// TP / (TP + FN).
    pub sensitivity: Option<f64>,
    /// TN / (TN + FP).
    pub specificity: Option<f64>,
    /// TP / (TP + FP).
    pub ppv: Option<f64>,
    /// TN / (TN + FN).
    pub npv: Option<f64>,
    /// 2 TP / (2 TP + FP + FN).
    pub f1: Option<f64>,
}

impl ThresholdStatistics {
    /// From confusion counts.
    pub fn from_counts(tp: f64, fp: f64, tn: f64, fn_: f64) -> Self {
        let ratio = |num: f64, den: f64| if den > 0.0 { Some(num / den) } else { None };
        Self {
            true_positives: tp,
            false_positives: fp,
            true_negatives: tn,
            false_negatives: fn_,
            accuracy: ratio(tp + tn, tp + tn + fp + fn_),
            sensitivity: ratio(tp, tp + fn_),
            specificity: ratio(tn, tn + fp),
            ppv: ratio(tp, tp + fp),
            npv: ratio(tn, tn + fn_),
            f1: ratio(2.0 * tp, 2.0 * tp + fp + fn_),
        }
    }

    /// The six statistics in the order accuracy, sensitivity, specificity, PPV, NPV, F1.
    pub fn values(&self) -> [Option<f64>; 6] {
        [self.accuracy, self.sensitivity, self.specificity, self.ppv, self.npv, self.f1]
    }
}

/// Statistics of calling `score > cutoff` positive.
pub fn threshold_statistics(truth: &[bool], scores: &[f64], cutoff: f64) -> Result<ThresholdStatistics, MetricError> {
    if truth.len() != scores.len() {
        return Err(MetricError::LengthMismatch { what: "truth vs scores", left: truth.len(), right: scores.len() });
    }
    check_finite_f64("scores", scores)?;
    let (mut tp, mut fp, mut tn, mut fn_) = (0.0, 0.0, 0.0, 0.0);
    for (&t, &s) in truth.iter().zip(scores) {
        match (t, s > cutoff) {
            (true, true) => tp += 1.0,
            (true, false) => fn_ += 1.0,
            (false, true) => fp += 1.0,
            (false, false) => tn += 1.0,
        }
    }
    Ok(ThresholdStatistics::from_counts(tp, fp, tn, fn_))
}

/// Thorax_GAN's operating point: of `cutoff_count` thresholds `np.linspace(0, 1, cutoff_count)`, the first that
/// minimises `(1 - specificity)^2 + (1 - sensitivity)^2` with `score > cutoff` called positive. Returns the cutoff
/// and its index.
pub fn corner_closest_cutoff(truth: &[bool], scores: &[f64], cutoff_count: usize) -> Result<(f64, usize), MetricError> {
    check_binary(truth, scores)?;
    if cutoff_count < 2 {
        return Err(MetricError::TooFew { what: "cutoff count", needed: 2, actual: cutoff_count });
    }
    let mut positive_scores: Vec<f64> = truth.iter().zip(scores).filter(|(t, _)| **t).map(|(_, &s)| s).collect();
    let mut negative_scores: Vec<f64> = truth.iter().zip(scores).filter(|(t, _)| !**t).map(|(_, &s)| s).collect();
    positive_scores.sort_by(f64::total_cmp);
    negative_scores.sort_by(f64::total_cmp);
    let (p, n) = (positive_scores.len() as f64, negative_scores.len() as f64);
    let step = 1.0 / (cutoff_count - 1) as f64;
    let mut best = (f64::INFINITY, 0usize);
    for index in 0..cutoff_count {
        // numpy linspace: i * step, the last value set to exactly 1.
        let cutoff = if index + 1 == cutoff_count { 1.0 } else { index as f64 * step };
        let tp = p - positive_scores.partition_point(|&s| s <= cutoff) as f64;
        let fp = n - negative_scores.partition_point(|&s| s <= cutoff) as f64;
        let tn = n - fp;
        let sensitivity = tp / p;
        let specificity = tn / n;
        let distance = (1.0 - specificity) * (1.0 - specificity) + (1.0 - sensitivity) * (1.0 - sensitivity);
        if distance < best.0 {
            best = (distance, index);
        }
    }
    let cutoff = if best.1 + 1 == cutoff_count { 1.0 } else { best.1 as f64 * step };
    Ok((cutoff, best.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half_and_rejects_one_class() {
        let truth = [false, true, false, true];
        let scores = [0.5, 0.5, 0.1, 0.9];
        // Pairs (pos, neg): (0.5,0.5)=0.5, (0.5,0.1)=1, (0.9,0.5)=1, (0.9,0.1)=1 -> 3.5/4.
        assert!((roc_auc(&truth, &scores).unwrap() - 0.875).abs() < 1e-15);
        assert!(matches!(roc_auc(&[true, true], &[0.1, 0.2]), Err(MetricError::OneClass { class: 1, .. })));
        assert!(matches!(roc_auc(&[true], &[0.1, 0.2]), Err(MetricError::LengthMismatch { .. })));
        assert!(matches!(roc_auc(&[true, false], &[f64::NAN, 0.2]), Err(MetricError::NonFinite { .. })));
        assert!(roc_auc(&[], &[]).is_err());
    }

    #[test]
    fn threshold_statistics_with_empty_denominators() {
        let stats = threshold_statistics(&[true, false], &[0.1, 0.2], 0.5).unwrap();
        assert_eq!(stats.ppv, None);
        assert_eq!(stats.sensitivity, Some(0.0));
        assert_eq!(stats.specificity, Some(1.0));
    }
}
