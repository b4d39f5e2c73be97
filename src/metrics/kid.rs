//! Kernel Inception Distance (Binkowski et al. 2018) as torch-fidelity's `kid` computes it: polynomial kernel
//! `k(x, y) = (x.y / d + 1)^3`, unbiased MMD^2 per subset, subsets of `m` rows drawn without replacement from each
//! set, mean and population standard deviation (`np.std`, ddof 0) over subsets. Defaults follow torch-fidelity and
//! clean-fid: 100 subsets of 1,000 rows; like clean-fid, the subset size is clamped to the smaller set.
//! Subsets come from [`SeededRng`], so they differ from numpy's; the per-subset value is golden-tested on fixed
//! subsets against a numpy transcription of torch-fidelity's `mmd2` (tools/make_metrics_fixtures.py).

use std::ops::ControlFlow;

use crate::metrics::error::MetricError;
use crate::metrics::features::FeatureMatrix;
use crate::metrics::linalg;
use crate::metrics::rng::SeededRng;

/// Subset settings for [`kernel_inception_distance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KidOptions {
    /// Number of subsets (torch-fidelity default 100).
    pub subsets: usize,
    /// Rows per subset before clamping to the smaller set (default 1,000).
    pub subset_size: usize,
    /// Seed of the subset draws.
    pub seed: u64,
}

impl Default for KidOptions {
    fn default() -> Self {
        Self { subsets: 100, subset_size: 1000, seed: 0 }
    }
}

/// KID over subsets.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Kid {
    /// Mean unbiased MMD^2 over subsets.
    pub mean: f64,
    /// Population standard deviation over subsets.
    pub std: f64,
    /// Rows per subset actually used.
    pub subset_size: usize,
    /// MMD^2 of every subset.
    pub per_subset: Vec<f64>,
    /// Seed of the draws (`None` when the caller supplied the subsets).
    pub seed: Option<u64>,
}

/// Why the spread over subsets means nothing, when it does not: once the subset size reaches both sets' sizes every
/// subset is the whole of both sets, all subsets give one value, and their standard deviation is 0 by construction.
pub fn spread_caution(subset_size: usize, count_a: usize, count_b: usize) -> Option<String> {
    (subset_size >= count_a && subset_size >= count_b).then(|| {
        format!(
            "every subset is the whole of both sets ({count_a} and {count_b} rows), so all subsets agree and the +- \
             is 0 by construction, not a measure of uncertainty; with more images than the subset size (default \
             1,000) it becomes one"
        )
    })
}

/// KID of two feature matrices with seeded random subsets.
pub fn kernel_inception_distance(
    a: &FeatureMatrix,
    b: &FeatureMatrix,
    options: KidOptions,
) -> Result<Kid, MetricError> {
    kernel_inception_distance_with_progress(a, b, options, &mut |_| ControlFlow::Continue(()))
}

/// [`kernel_inception_distance`] calling `on_subset(subsets_done)` after every subset; `Break` stops it with
/// [`MetricError::Cancelled`]. The values are the same as without the callback.
pub fn kernel_inception_distance_with_progress(
    a: &FeatureMatrix,
    b: &FeatureMatrix,
    options: KidOptions,
    on_subset: &mut dyn FnMut(usize) -> ControlFlow<()>,
) -> Result<Kid, MetricError> {
    check_dims(a, b)?;
    if options.subsets == 0 {
        return Err(MetricError::TooFew { what: "KID subsets", needed: 1, actual: 0 });
    }
    let m = options.subset_size.min(a.rows()).min(b.rows());
    if m < 2 {
        return Err(MetricError::TooFew {
            what: "KID subset size (after clamping to the smaller set)",
            needed: 2,
            actual: m,
        });
    }
    if options.subsets > MAX_SUBSETS {
        return Err(MetricError::InvalidArgument {
            what: "KID subsets",
            reason: format!("{} is more than {MAX_SUBSETS} (torch-fidelity and clean-fid use 100)", options.subsets),
        });
    }
    if m == a.rows() && m == b.rows() {
        // Every subset is the whole of both sets: one MMD is the value of each (spread 0 by construction), and
        // computing it `subsets` times over shuffled rows would only change its rounding.
        let mut whole = |_: usize| ((0..m).collect(), (0..m).collect());
        let mut kid = kid_over_subsets(a, b, 1, &mut whole, on_subset)?;
        kid.per_subset = vec![kid.mean; options.subsets];
        kid.seed = Some(options.seed);
        return Ok(kid);
    }
    // Each subset is drawn when it is used (a then b, the order of drawing them all first), so memory does not grow
    // with the number of subsets beyond one value each.
    let mut rng = SeededRng::new(options.seed);
    let mut draw =
        |_: usize| (rng.sample_without_replacement(a.rows(), m), rng.sample_without_replacement(b.rows(), m));
    let mut kid = kid_over_subsets(a, b, options.subsets, &mut draw, on_subset)?;
    kid.seed = Some(options.seed);
    Ok(kid)
}

/// The most subsets a seeded KID draws: far beyond any published protocol, and a typo like `--subsets 100000000`
/// fails at once instead of exhausting memory and time.
pub const MAX_SUBSETS: usize = 100_000;

/// KID on caller-chosen subsets: `subsets_a[i]` and `subsets_b[i]` are row indices of equal length (>= 2).
pub fn kid_on_subsets(
    a: &FeatureMatrix,
    b: &FeatureMatrix,
    subsets_a: &[Vec<usize>],
    subsets_b: &[Vec<usize>],
) -> Result<Kid, MetricError> {
    kid_on_subsets_with_progress(a, b, subsets_a, subsets_b, &mut |_| ControlFlow::Continue(()))
}

fn kid_on_subsets_with_progress(
    a: &FeatureMatrix,
    b: &FeatureMatrix,
    subsets_a: &[Vec<usize>],
    subsets_b: &[Vec<usize>],
    on_subset: &mut dyn FnMut(usize) -> ControlFlow<()>,
) -> Result<Kid, MetricError> {
    if subsets_a.len() != subsets_b.len() {
        return Err(MetricError::LengthMismatch {
            what: "KID subset lists",
            left: subsets_a.len(),
            right: subsets_b.len(),
        });
    }
    let mut pair = |i: usize| (subsets_a[i].clone(), subsets_b[i].clone());
    kid_over_subsets(a, b, subsets_a.len(), &mut pair, on_subset)
}

/// KID over `count` subsets, subset `i` being the row indices `subset(i)` returns for each set.
fn kid_over_subsets(
    a: &FeatureMatrix,
    b: &FeatureMatrix,
    count: usize,
    subset: &mut dyn FnMut(usize) -> (Vec<usize>, Vec<usize>),
    on_subset: &mut dyn FnMut(usize) -> ControlFlow<()>,
) -> Result<Kid, MetricError> {
    check_dims(a, b)?;
    if count == 0 {
        return Err(MetricError::TooFew { what: "KID subsets", needed: 1, actual: 0 });
    }
    let mut per_subset = Vec::with_capacity(count);
    let mut subset_size = 0;
    for i in 0..count {
        let (ia, ib) = subset(i);
        if ia.len() != ib.len() {
            return Err(MetricError::LengthMismatch { what: "KID subset sizes", left: ia.len(), right: ib.len() });
        }
        subset_size = ia.len();
        let xa = gather(a, &ia, "KID subset index into the first set")?;
        let xb = gather(b, &ib, "KID subset index into the second set")?;
        per_subset.push(mmd2_polynomial(&xa, &xb, ia.len(), a.cols())?);
        if on_subset(per_subset.len()).is_break() {
            return Err(MetricError::Cancelled { what: "KID" });
        }
    }
    let count = per_subset.len() as f64;
    let mean = per_subset.iter().sum::<f64>() / count;
    let std = (per_subset.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / count).sqrt();
    Ok(Kid { mean, std, subset_size, per_subset, seed: None })
}

/// Unbiased MMD^2 with the cubic polynomial kernel for two row-major `m x d` sets (`m >= 2`).
pub fn mmd2_polynomial(xa: &[f64], xb: &[f64], m: usize, d: usize) -> Result<f64, MetricError> {
    if m < 2 {
        return Err(MetricError::TooFew { what: "rows per MMD set", needed: 2, actual: m });
    }
    if xa.len() != m * d || xb.len() != m * d {
        return Err(MetricError::LengthMismatch {
            what: "MMD set values vs m*d",
            left: xa.len().max(xb.len()),
            right: m * d,
        });
    }
    let kernel = |v: f64| (v / d as f64 + 1.0).powi(3);
    let off_diagonal_sum = |gram: &[f64]| -> f64 {
        let mut total = 0.0;
        for i in 0..m {
            for j in 0..m {
                if i != j {
                    total += kernel(gram[i * m + j]);
                }
            }
        }
        total
    };
    let kaa = off_diagonal_sum(&linalg::gram_symmetric(xa, m, d));
    let kbb = off_diagonal_sum(&linalg::gram_symmetric(xb, m, d));
    let kab: f64 = linalg::gram(xa, m, xb, m, d).iter().map(|&v| kernel(v)).sum();
    let mf = m as f64;
    Ok((kaa + kbb) / (mf * (mf - 1.0)) - 2.0 * kab / (mf * mf))
}

fn check_dims(a: &FeatureMatrix, b: &FeatureMatrix) -> Result<(), MetricError> {
    if a.cols() != b.cols() {
        return Err(MetricError::ShapeMismatch {
            what: "feature dimensions of the two sets",
            left: a.cols().to_string(),
            right: b.cols().to_string(),
        });
    }
    Ok(())
}

fn gather(features: &FeatureMatrix, indices: &[usize], what: &'static str) -> Result<Vec<f64>, MetricError> {
    let mut out = Vec::with_capacity(indices.len() * features.cols());
    for &i in indices {
        if i >= features.rows() {
            return Err(MetricError::InvalidArgument {
                what,
                reason: format!("row {i} out of range for {} rows", features.rows()),
            });
        }
        out.extend(features.row_f64(i));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_is_flagged_only_when_every_subset_is_both_whole_sets() {
        let a = FeatureMatrix::new((0..24 * 3).map(|v| (v % 7) as f32).collect(), 24, 3).unwrap();
        let b = FeatureMatrix::new((0..24 * 3).map(|v| (v % 5) as f32).collect(), 24, 3).unwrap();
        let kid = kernel_inception_distance(&a, &b, KidOptions::default()).unwrap();
        assert_eq!(kid.subset_size, 24);
        assert_eq!(kid.std, 0.0, "identical subsets, no spread");
        assert!(spread_caution(kid.subset_size, 24, 24).unwrap().contains("0 by construction"));
        // One set larger than the subset size: subsets differ and the spread means something.
        assert!(spread_caution(24, 24, 40).is_none());
        assert!(spread_caution(1000, 5000, 5000).is_none());
    }

    #[test]
    fn identical_sets_have_mean_near_zero_and_errors_are_reported() {
        let rows: Vec<Vec<f32>> =
            (0..30).map(|i| (0..5).map(|j| ((i * 13 + j * 7) % 17) as f32 / 17.0).collect()).collect();
        let a = FeatureMatrix::from_rows(&rows).unwrap();
        let kid = kernel_inception_distance(&a, &a, KidOptions { subsets: 20, subset_size: 100, seed: 1 }).unwrap();
        assert_eq!(kid.subset_size, 30);
        // Full-size subsets of the same set are the same set: MMD^2 is the same value every time.
        assert_eq!(kid.std, 0.0, "{kid:?}");
        let b = FeatureMatrix::new(vec![0.0; 12], 3, 4).unwrap();
        assert!(matches!(
            kernel_inception_distance(&a, &b, KidOptions::default()),
            Err(MetricError::ShapeMismatch { .. })
        ));
        let one = FeatureMatrix::new(vec![0.0; 5], 1, 5).unwrap();
        assert!(matches!(kernel_inception_distance(&a, &one, KidOptions::default()), Err(MetricError::TooFew { .. })));
        assert!(kid_on_subsets(&a, &a, &[vec![0, 99]], &[vec![0, 1]]).is_err());
        let too_many = KidOptions { subsets: MAX_SUBSETS + 1, subset_size: 2, seed: 0 };
        let error = kernel_inception_distance(&a, &a, too_many).unwrap_err().to_string();
        assert!(error.contains("more than 100000"), "{error}");
    }

    #[test]
    fn drawing_subsets_as_they_are_used_gives_the_values_of_drawing_them_first() {
        let rows = |salt: usize| -> Vec<Vec<f32>> {
            (0..40).map(|i| (0..6).map(|j| ((i * 31 + j * 11 + salt) % 23) as f32 / 23.0).collect()).collect()
        };
        let (a, b) = (FeatureMatrix::from_rows(&rows(0)).unwrap(), FeatureMatrix::from_rows(&rows(5)).unwrap());
        let options = KidOptions { subsets: 7, subset_size: 10, seed: 42 };
        let mut rng = SeededRng::new(options.seed);
        let (mut subsets_a, mut subsets_b) = (Vec::new(), Vec::new());
        for _ in 0..options.subsets {
            subsets_a.push(rng.sample_without_replacement(40, 10));
            subsets_b.push(rng.sample_without_replacement(40, 10));
        }
        let drawn_first = kid_on_subsets(&a, &b, &subsets_a, &subsets_b).unwrap();
        let drawn_lazily = kernel_inception_distance(&a, &b, options).unwrap();
        assert_eq!(drawn_first.per_subset, drawn_lazily.per_subset);
    }
}
