//! DeLong's variance of the AUC and its normal confidence interval, by the fast midrank algorithm of Sun and Xu
//! (IEEE SPL 2014). Golden-tested against a numpy transcription of the same algorithm. The interval is
//! `auc +- z * sqrt(var)` bounded to [0, 1], as R's pROC `ci.auc` bounds it: an AUC above 1 is not a value the
//! interval may claim (a near-perfect label gave [0.85, 1.0013]).

use crate::metrics::error::MetricError;
use crate::metrics::roc;

/// AUC with its DeLong variance and confidence interval.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeLong {
    /// AUC (equal to `roc_auc`).
    pub auc: f64,
    /// DeLong variance of the AUC.
    pub variance: f64,
    /// Lower end of the interval (at least 0).
    pub ci_low: f64,
    /// Upper end of the interval (at most 1).
    pub ci_high: f64,
    /// Confidence level.
    pub level: f64,
}

/// DeLong AUC variance and normal CI at `level` (e.g. 0.95). Needs at least 2 positives and 2 negatives.
pub fn delong(truth: &[bool], scores: &[f64], level: f64) -> Result<DeLong, MetricError> {
    roc::check_binary(truth, scores)?;
    if !(level > 0.0 && level < 1.0) {
        return Err(MetricError::InvalidArgument {
            what: "confidence level",
            reason: format!("must lie in (0, 1), got {level}"),
        });
    }
    let positives: Vec<f64> = truth.iter().zip(scores).filter(|(t, _)| **t).map(|(_, &s)| s).collect();
    let negatives: Vec<f64> = truth.iter().zip(scores).filter(|(t, _)| !**t).map(|(_, &s)| s).collect();
    let (m, n) = (positives.len(), negatives.len());
    if m < 2 || n < 2 {
        return Err(MetricError::Undefined {
            what: "the DeLong variance",
            reason: format!("it needs at least 2 positives and 2 negatives, the label has {m} and {n}"),
        });
    }
    let rank_pos = midranks(&positives);
    let rank_neg = midranks(&negatives);
    let all: Vec<f64> = positives.iter().chain(&negatives).copied().collect();
    let rank_all = midranks(&all);
    let (mf, nf) = (m as f64, n as f64);
    let auc = rank_all[..m].iter().sum::<f64>() / mf / nf - (mf + 1.0) / 2.0 / nf;
    let v01: Vec<f64> = (0..m).map(|i| (rank_all[i] - rank_pos[i]) / nf).collect();
    let v10: Vec<f64> = (0..n).map(|j| 1.0 - (rank_all[m + j] - rank_neg[j]) / mf).collect();
    let variance = sample_variance(&v01) / mf + sample_variance(&v10) / nf;
    let z = standard_normal_quantile(0.5 + level / 2.0);
    let half_width = z * variance.sqrt();
    let (ci_low, ci_high) = ((auc - half_width).max(0.0), (auc + half_width).min(1.0));
    Ok(DeLong { auc, variance, ci_low, ci_high, level })
}

/// 1-based midranks (ties get the mean of their ranks).
fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let midrank = 0.5 * (start + end - 1) as f64 + 1.0;
        for &i in &order[start..end] {
            ranks[i] = midrank;
        }
        start = end;
    }
    ranks
}

fn sample_variance(values: &[f64]) -> f64 {
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (count - 1.0)
}

/// Inverse standard normal CDF (Acklam's rational approximation, relative error below 1.2e-9).
pub fn standard_normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const P_LOW: f64 = 0.024_25;
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -standard_normal_quantile(1.0 - p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_and_midranks() {
        assert!((standard_normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((standard_normal_quantile(0.01) + 2.326_347_874_040_841).abs() < 1e-8);
        assert_eq!(midranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        assert!(delong(&[true, false, false], &[0.2, 0.1, 0.3], 0.95).is_err());
    }

    #[test]
    fn the_interval_stays_within_0_and_1() {
        // One swapped pair among 20: AUC 0.99, and z * sqrt(var) is wider than the 0.01 left to 1.
        let truth: Vec<bool> = (0..20).map(|i| i >= 10).collect();
        let mut scores: Vec<f64> = (0..20).map(f64::from).collect();
        scores.swap(9, 10);
        let d = delong(&truth, &scores, 0.95).unwrap();
        assert!((d.auc - 0.99).abs() < 1e-12);
        let half_width = standard_normal_quantile(0.975) * d.variance.sqrt();
        assert!(d.auc + half_width > 1.0, "the case exercises the bound");
        assert_eq!(d.ci_high, 1.0);
        assert!((d.ci_low - (d.auc - half_width)).abs() < 1e-12);
        // Mirrored scores: AUC 0.01, the lower end bounded at 0.
        let mirrored: Vec<f64> = scores.iter().map(|s| -s).collect();
        assert_eq!(delong(&truth, &mirrored, 0.95).unwrap().ci_low, 0.0);
    }
}
