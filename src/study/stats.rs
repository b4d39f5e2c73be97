//! Reader-study statistics, each matching a named reference (golden tests in `tests/study_stats.rs`):
//! exact binomial test (scipy.stats.binomtest), accuracy/sensitivity/specificity (sklearn), ROC AUC as
//! Mann-Whitney with ties counted 1/2 (sklearn.metrics.roc_auc_score), percentile bootstrap CI (numpy.percentile,
//! linear), Cohen's kappa with optional linear/quadratic weights (sklearn.metrics.cohen_kappa_score), Fleiss' kappa
//! (statsmodels fleiss_kappa, method "fleiss").

use serde::Serialize;

use super::randomise::StudyRng;

/// Relative tolerance scipy uses to decide which outcomes are "as extreme" in the two-sided binomial test.
const BINOM_RELATIVE_TOLERANCE: f64 = 1e-7;

/// Exact two-sided binomial test p-value of `successes` out of `trials` against success probability `p`
/// (scipy's rule: sum the probabilities of all outcomes no more likely than the one observed). `None` when
/// `trials` is 0, `successes > trials` or `p` is outside (0, 1).
pub fn binomial_test_two_sided(successes: u64, trials: u64, p: f64) -> Option<f64> {
    if trials == 0 || successes > trials || !(p > 0.0 && p < 1.0) {
        return None;
    }
    let n = trials as f64;
    if (successes as f64 - p * n).abs() < f64::EPSILON {
        return Some(1.0);
    }
    // ln k! for k = 0..=n, by summation (exact enough for any study size).
    let mut ln_factorial = Vec::with_capacity(trials as usize + 1);
    ln_factorial.push(0.0f64);
    let mut running = 0.0f64;
    for k in 1..=trials {
        running += (k as f64).ln();
        ln_factorial.push(running);
    }
    let (ln_p, ln_q) = (p.ln(), (1.0 - p).ln());
    let ln_pmf = |k: u64| -> f64 {
        let (Some(lf_n), Some(lf_k), Some(lf_nk)) =
            (ln_factorial.get(trials as usize), ln_factorial.get(k as usize), ln_factorial.get((trials - k) as usize))
        else {
            return f64::NEG_INFINITY;
        };
        lf_n - lf_k - lf_nk + (k as f64) * ln_p + ((trials - k) as f64) * ln_q
    };
    let observed = ln_pmf(successes).exp() * (1.0 + BINOM_RELATIVE_TOLERANCE);
    let total: f64 = (0..=trials).map(|k| ln_pmf(k).exp()).filter(|probability| *probability <= observed).sum();
    Some(total.min(1.0))
}

/// `numerator / denominator`, `None` when the denominator is 0.
pub fn proportion(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// Counts of calls against truth, "artificial" being the positive class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConfusionCounts {
    /// Artificial called artificial.
    pub true_positive: u64,
    /// Real called artificial.
    pub false_positive: u64,
    /// Real called real.
    pub true_negative: u64,
    /// Artificial called real.
    pub false_negative: u64,
}

impl ConfusionCounts {
    /// Counts pairs of (truth is artificial, call is artificial).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (bool, bool)>) -> Self {
        let mut counts = Self::default();
        for (truth, call) in pairs {
            match (truth, call) {
                (true, true) => counts.true_positive += 1,
                (false, true) => counts.false_positive += 1,
                (false, false) => counts.true_negative += 1,
                (true, false) => counts.false_negative += 1,
            }
        }
        counts
    }

    /// Number of correct calls.
    pub fn correct(&self) -> u64 {
        self.true_positive + self.true_negative
    }

    /// Number of calls.
    pub fn total(&self) -> u64 {
        self.true_positive + self.false_positive + self.true_negative + self.false_negative
    }

    /// Fraction of correct calls.
    pub fn accuracy(&self) -> Option<f64> {
        proportion(self.correct(), self.total())
    }

    /// Fraction of artificial images called artificial (recall of the positive class).
    pub fn sensitivity(&self) -> Option<f64> {
        proportion(self.true_positive, self.true_positive + self.false_negative)
    }

    /// Fraction of real images called real.
    pub fn specificity(&self) -> Option<f64> {
        proportion(self.true_negative, self.true_negative + self.false_positive)
    }

    /// Exact two-sided binomial test of the accuracy against chance (0.5).
    pub fn binomial_p(&self) -> Option<f64> {
        binomial_test_two_sided(self.correct(), self.total(), 0.5)
    }
}

/// ROC AUC of `scores` (higher = more surely positive) against `truth`: the Mann-Whitney probability that a
/// positive outranks a negative, ties counting 1/2. `None` when a class is missing, lengths differ, or a score
/// is NaN.
pub fn roc_auc(truth: &[bool], scores: &[f64]) -> Option<f64> {
    if truth.len() != scores.len() || scores.iter().any(|score| score.is_nan()) {
        return None;
    }
    let positives = truth.iter().filter(|t| **t).count();
    let negatives = truth.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    // Sum of mid-ranks (1-based) of the positives.
    let mut positive_rank_sum = 0.0f64;
    let mut start = 0usize;
    while start < order.len() {
        let value = scores[order[start]];
        let mut end = start;
        while end < order.len() && scores[order[end]] == value {
            end += 1;
        }
        let mid_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = order[start..end].iter().filter(|index| truth[**index]).count();
        positive_rank_sum += mid_rank * tied_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((positive_rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// The `q`-th quantile (0..=1) of sorted values with linear interpolation (numpy's default "linear" method).
pub fn quantile_linear(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let h = last as f64 * q;
    let below = h.floor() as usize;
    let above = (below + 1).min(last);
    let low = *sorted.get(below)?;
    let high = *sorted.get(above)?;
    Some(low + (h - below as f64) * (high - low))
}

/// A percentile bootstrap confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BootstrapCi {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Coverage, e.g. 0.95.
    pub level: f64,
    /// Resamples drawn.
    pub resamples: usize,
    /// Resamples where the statistic was undefined (e.g. a single class) and that were skipped.
    pub skipped: usize,
    /// Seed of the resampling.
    pub seed: u64,
}

/// Percentile bootstrap over `units` resampling units (cases) drawn with replacement: `statistic` gets the drawn
/// unit indices and returns `None` when undefined for that resample (skipped and counted). `None` if every
/// resample was skipped or the arguments are empty.
pub fn bootstrap_ci(
    units: usize,
    resamples: usize,
    seed: u64,
    level: f64,
    mut statistic: impl FnMut(&[usize]) -> Option<f64>,
) -> Option<BootstrapCi> {
    if units == 0 || resamples == 0 || !(level > 0.0 && level < 1.0) {
        return None;
    }
    let mut rng = StudyRng::from_seed(seed);
    let mut drawn = vec![0usize; units];
    let mut values = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for slot in &mut drawn {
            *slot = rng.index(units);
        }
        if let Some(value) = statistic(&drawn).filter(|value| value.is_finite()) {
            values.push(value);
        }
    }
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Some(BootstrapCi {
        lower: quantile_linear(&values, tail)?,
        upper: quantile_linear(&values, 1.0 - tail)?,
        level,
        resamples,
        skipped: resamples - values.len(),
        seed,
    })
}

/// Weights of disagreement for Cohen's kappa, by distance between category indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KappaWeighting {
    /// Any disagreement weighs 1.
    Unweighted,
    /// |i - j|.
    Linear,
    /// (i - j)^2.
    Quadratic,
}

/// Cohen's kappa of two raters' category indices (each `< categories`), as sklearn's `cohen_kappa_score` with
/// `labels` = the categories in order. `None` when lengths differ, an index is out of range, there are no
/// ratings, or the expected disagreement is 0 (sklearn returns NaN there).
pub fn cohen_kappa(rater_a: &[usize], rater_b: &[usize], categories: usize, weighting: KappaWeighting) -> Option<f64> {
    if rater_a.len() != rater_b.len() || rater_a.is_empty() || categories == 0 {
        return None;
    }
    let mut confusion = vec![vec![0.0f64; categories]; categories];
    for (a, b) in rater_a.iter().zip(rater_b) {
        *confusion.get_mut(*a)?.get_mut(*b)? += 1.0;
    }
    let total = rater_a.len() as f64;
    let row_sums: Vec<f64> = confusion.iter().map(|row| row.iter().sum()).collect();
    let column_sums: Vec<f64> =
        (0..categories).map(|j| confusion.iter().map(|row| row.get(j).copied().unwrap_or(0.0)).sum()).collect();
    let weight = |i: usize, j: usize| -> f64 {
        let distance = i.abs_diff(j) as f64;
        match weighting {
            KappaWeighting::Unweighted => f64::from(u8::from(i != j)),
            KappaWeighting::Linear => distance,
            KappaWeighting::Quadratic => distance * distance,
        }
    };
    let (mut observed, mut expected) = (0.0f64, 0.0f64);
    for (i, row) in confusion.iter().enumerate() {
        for (j, count) in row.iter().enumerate() {
            observed += weight(i, j) * count;
            expected += weight(i, j) * row_sums.get(i)? * column_sums.get(j)? / total;
        }
    }
    (expected > 0.0).then(|| 1.0 - observed / expected)
}

/// Fleiss' kappa of a subjects x categories table of counts (every subject rated by the same number of raters,
/// at least 2), as statsmodels `fleiss_kappa(table, method="fleiss")`. `None` when undefined.
pub fn fleiss_kappa(table: &[Vec<u64>]) -> Option<f64> {
    let raters = table.first()?.iter().sum::<u64>();
    let categories = table.first()?.len();
    if raters < 2 || table.iter().any(|row| row.len() != categories || row.iter().sum::<u64>() != raters) {
        return None;
    }
    let subjects = table.len() as f64;
    let raters = raters as f64;
    let total = subjects * raters;
    let mut category_share = vec![0.0f64; categories];
    let mut mean_agreement = 0.0f64;
    for row in table {
        let mut squares = 0.0f64;
        for (share, count) in category_share.iter_mut().zip(row) {
            let count = *count as f64;
            *share += count / total;
            squares += count * count;
        }
        mean_agreement += (squares - raters) / (raters * (raters - 1.0)) / subjects;
    }
    let chance_agreement: f64 = category_share.iter().map(|share| share * share).sum();
    (chance_agreement < 1.0).then(|| (mean_agreement - chance_agreement) / (1.0 - chance_agreement))
}

/// Reading times of a set of cases.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TimeSummary {
    /// Cases with a time.
    pub cases: usize,
    /// Mean time per case.
    pub mean_ms: f64,
    /// Median time per case (mean of the two middle values for an even count).
    pub median_ms: f64,
    /// Sum of the times.
    pub total_ms: u64,
    /// Cases whose reading spans a restart of the reading station: resumed from a checkpoint, so their times may be
    /// a few seconds short (the answers CSV flags them in `time_spans_restart`).
    pub cases_spanning_restart: usize,
}

/// Summarises reading times; `None` without times.
pub fn time_summary(times_ms: &[u64]) -> Option<TimeSummary> {
    if times_ms.is_empty() {
        return None;
    }
    let mut sorted = times_ms.to_vec();
    sorted.sort_unstable();
    let total_ms = sorted.iter().fold(0u64, |sum, t| sum.saturating_add(*t));
    let middle = sorted.len() / 2;
    let median_ms = if sorted.len() % 2 == 1 {
        *sorted.get(middle)? as f64
    } else {
        (*sorted.get(middle - 1)? as f64 + *sorted.get(middle)? as f64) / 2.0
    };
    Some(TimeSummary {
        cases: sorted.len(),
        mean_ms: sorted.iter().map(|t| *t as f64).sum::<f64>() / sorted.len() as f64,
        median_ms,
        total_ms,
        cases_spanning_restart: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_inverse_and_tied_scores() {
        let truth = [false, false, true, true];
        assert_eq!(roc_auc(&truth, &[0.1, 0.2, 0.3, 0.4]), Some(1.0));
        assert_eq!(roc_auc(&truth, &[0.4, 0.3, 0.2, 0.1]), Some(0.0));
        assert_eq!(roc_auc(&truth, &[1.0, 1.0, 1.0, 1.0]), Some(0.5));
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
    }

    #[test]
    fn binomial_edge_cases() {
        assert_eq!(binomial_test_two_sided(5, 10, 0.5), Some(1.0));
        assert_eq!(binomial_test_two_sided(0, 0, 0.5), None);
        let p = binomial_test_two_sided(10, 10, 0.5).unwrap();
        assert!((p - 2.0 / 1024.0).abs() < 1e-15);
    }

    #[test]
    fn bootstrap_is_reproducible_and_counts_skips() {
        let values = [0.0, 1.0, 2.0, 3.0, 4.0];
        let mean = |drawn: &[usize]| Some(drawn.iter().map(|i| values[*i]).sum::<f64>() / drawn.len() as f64);
        let a = bootstrap_ci(5, 500, 3, 0.95, mean).unwrap();
        let b = bootstrap_ci(5, 500, 3, 0.95, mean).unwrap();
        assert_eq!(a, b);
        assert!(a.lower < 2.0 && a.upper > 2.0);
        let none = bootstrap_ci(5, 50, 3, 0.95, |drawn: &[usize]| (drawn[0] == 0).then_some(1.0)).unwrap();
        assert!(none.skipped > 0 && none.skipped < 50);
    }

    #[test]
    fn kappa_of_identical_raters_is_one() {
        let a = [0, 1, 2, 1, 0];
        for weighting in [KappaWeighting::Unweighted, KappaWeighting::Linear, KappaWeighting::Quadratic] {
            assert!((cohen_kappa(&a, &a, 3, weighting).unwrap() - 1.0).abs() < 1e-12);
        }
        assert_eq!(fleiss_kappa(&[vec![2, 0], vec![0, 2]]), Some(1.0));
    }
}
