//! Golden-value tests of `thorax::metrics` against fixtures from the reference implementations
//! (tools/make_metrics_fixtures.py: pytorch-msssim, scipy, scikit-learn, numpy transcriptions of torch-fidelity's KID,
//! fast DeLong and Thorax_GAN's bootstrap statistics).

use std::path::PathBuf;

use serde_json::Value;
use thorax::convert::npy::{NpyArray, read_npy};
use thorax::metrics::bootstrap::{bootstrap_auc, thorax_gan_protocol, thorax_gan_protocol_on_indices};
use thorax::metrics::correlation::{ControlExperiment, correlation_matrix, pearson};
use thorax::metrics::delong::delong;
use thorax::metrics::features::FeatureMatrix;
use thorax::metrics::fid::frechet_distance;
use thorax::metrics::kid::{KidOptions, kernel_inception_distance, kid_on_subsets};
use thorax::metrics::msssim::{GrayImage, MsSsimMode, ms_ssim};
use thorax::metrics::roc::{corner_closest_cutoff, roc_auc, roc_curve, threshold_statistics};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics")
}

fn golden() -> Value {
    let text = std::fs::read_to_string(fixture_dir().join("golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn npy(name: &str) -> NpyArray {
    read_npy(&fixture_dir().join(name)).unwrap()
}

fn f64s(value: &Value) -> Vec<f64> {
    value.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
}

fn image_from(array: &NpyArray, index: usize) -> GrayImage {
    let (h, w) = (array.shape[1], array.shape[2]);
    let pixels = array.values[index * h * w..(index + 1) * h * w].iter().map(|&v| v as f32).collect();
    GrayImage::new(w, h, pixels).unwrap()
}

fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} vs {expected} (diff {})",
        (actual - expected).abs()
    );
}

fn assert_all_close(actual: &[f64], expected: &[f64], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths");
    for (a, e) in actual.iter().zip(expected) {
        assert_close(*a, *e, 1e-15, what);
    }
}

#[test]
fn msssim_standard_and_compat_match_references() {
    let golden = golden();
    let real = npy("msssim_real_u8.npy");
    for case in golden["msssim"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let file = npy(case["file"].as_str().unwrap());
        let a = image_from(&file, case["index_a"].as_u64().unwrap() as usize);
        let index_b = case["index_b"].as_i64().unwrap();
        // index_b = -1: the second image is real image 0 (the noisy-copy case).
        let b = if index_b < 0 { image_from(&real, 0) } else { image_from(&file, index_b as usize) };
        let data_range = case["data_range"].as_f64().unwrap();
        let standard = ms_ssim(&a, &b, MsSsimMode::Standard { data_range }).unwrap();
        assert_close(standard.value, case["standard_f64"].as_f64().unwrap(), 5e-7, &format!("standard {name}"));
        assert_close(standard.value, case["standard_f32"].as_f64().unwrap(), 5e-6, &format!("standard vs f32 {name}"));
        let compat = ms_ssim(&a, &b, MsSsimMode::ThoraxGanCompat);
        match case["compat_thorax_gan"].as_f64() {
            Some(expected) => {
                let compat = compat.unwrap();
                assert_close(compat.value, expected, 5e-7, &format!("compat {name}"));
                for (s, e) in compat.ssim_per_scale.iter().zip(f64s(&case["compat_ssim_per_scale"])) {
                    assert_close(*s, e, 2e-6, &format!("compat ssim per scale {name}"));
                }
                for (s, e) in compat.cs_per_scale.iter().zip(f64s(&case["compat_cs_per_scale"])) {
                    assert_close(*s, e, 2e-6, &format!("compat cs per scale {name}"));
                }
                assert_eq!(compat.data_range_per_scale.to_vec(), f64s(&case["compat_range_per_scale"]));
            }
            None => assert!(compat.is_err(), "{name}: the reference is NaN"),
        }
    }
}

#[test]
fn frechet_distance_matches_scipy_sqrtm() {
    for case in golden()["fd"].as_array().unwrap() {
        let load = |key: &str| {
            let array = npy(case[key].as_str().unwrap());
            FeatureMatrix::new(array.to_f32(), array.shape[0], array.shape[1]).unwrap()
        };
        let fd = frechet_distance(&load("file_a"), &load("file_b")).unwrap();
        let scipy_value = case["fd_scipy_sqrtm"].as_f64().unwrap();
        let exact = case["fd_nuclear_norm"].as_f64().unwrap();
        let name = case["name"].as_str().unwrap();
        assert_close(fd.value, scipy_value, 1e-6 * scipy_value.abs().max(1e-3), name);
        assert_close(fd.value, exact, 1e-8 * exact.abs().max(1e-3), name);
    }
}

#[test]
fn kid_matches_torch_fidelity_formula_on_fixed_subsets() {
    let golden = golden();
    let kid_golden = &golden["kid"];
    let load = |name: &str| {
        let array = npy(name);
        FeatureMatrix::new(array.to_f32(), array.shape[0], array.shape[1]).unwrap()
    };
    let (a, b) = (load("kid_a_f32.npy"), load("kid_b_f32.npy"));
    let subsets = |name: &str| -> Vec<Vec<usize>> {
        let array = npy(name);
        array.values.chunks(array.shape[1]).map(|row| row.iter().map(|&v| v as usize).collect()).collect()
    };
    let kid = kid_on_subsets(&a, &b, &subsets("kid_subsets_a_i64.npy"), &subsets("kid_subsets_b_i64.npy")).unwrap();
    for (value, expected) in kid.per_subset.iter().zip(f64s(&kid_golden["mmd2_per_subset"])) {
        assert_close(*value, expected, 1e-10, "KID per subset");
    }
    assert_close(kid.mean, kid_golden["kid_mean"].as_f64().unwrap(), 1e-10, "KID mean");
    assert_close(kid.std, kid_golden["kid_std"].as_f64().unwrap(), 1e-10, "KID std");
    // One full-size subset of the first 90 rows of each set.
    let first: Vec<usize> = (0..90).collect();
    let full = kid_on_subsets(&a, &b, std::slice::from_ref(&first), std::slice::from_ref(&first)).unwrap();
    assert_close(full.mean, kid_golden["mmd2_first_90"].as_f64().unwrap(), 1e-10, "MMD first 90");
    // Seeded subsets: the clamp to the smaller set and reproducibility.
    let options = KidOptions { subsets: 5, subset_size: 1000, seed: 7 };
    let seeded = kernel_inception_distance(&a, &b, options).unwrap();
    assert_eq!(seeded.subset_size, 90);
    assert_eq!(seeded, kernel_inception_distance(&a, &b, options).unwrap());
}

fn roc_case(case: &Value) -> (Vec<bool>, Vec<f64>) {
    let truth = case["truth"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() == 1).collect();
    (truth, f64s(&case["scores"]))
}

fn thresholds(value: &Value) -> Vec<f64> {
    value.as_array().unwrap().iter().map(|v| v.as_f64().unwrap_or(f64::INFINITY)).collect()
}

#[test]
fn roc_auc_curve_and_delong_match_sklearn_and_numpy() {
    for (k, case) in golden()["roc"].as_array().unwrap().iter().enumerate() {
        let (truth, scores) = roc_case(case);
        assert_close(roc_auc(&truth, &scores).unwrap(), case["auc"].as_f64().unwrap(), 1e-12, "AUC");
        let curve = roc_curve(&truth, &scores, true).unwrap();
        // Rates may differ from sklearn's in the last bit (numpy divides with SIMD reciprocals); thresholds are exact.
        assert_all_close(&curve.fpr, &f64s(&case["roc_fpr"]), &format!("case {k} fpr"));
        assert_all_close(&curve.tpr, &f64s(&case["roc_tpr"]), &format!("case {k} tpr"));
        assert_eq!(curve.thresholds, thresholds(&case["roc_thresholds"]), "case {k} thresholds");
        let all = roc_curve(&truth, &scores, false).unwrap();
        assert_all_close(&all.fpr, &f64s(&case["roc_all_fpr"]), &format!("case {k} all fpr"));
        assert_all_close(&all.tpr, &f64s(&case["roc_all_tpr"]), &format!("case {k} all tpr"));
        assert_eq!(all.thresholds, thresholds(&case["roc_all_thresholds"]), "case {k} all thresholds");
        let d = delong(&truth, &scores, 0.95).unwrap();
        assert_close(d.auc, case["delong_auc"].as_f64().unwrap(), 1e-12, "DeLong AUC");
        assert_close(d.variance, case["delong_variance"].as_f64().unwrap(), 1e-12, "DeLong variance");
        let ci = f64s(&case["delong_ci95"]);
        // The fixture holds numpy's unbounded interval; ours is bounded to [0, 1] as pROC's ci.auc is.
        assert_close(d.ci_low, ci[0].max(0.0), 1e-8, "DeLong CI low");
        assert_close(d.ci_high, ci[1].min(1.0), 1e-8, "DeLong CI high");
        let (cutoff, index) = corner_closest_cutoff(&truth, &scores, 10_000).unwrap();
        assert_eq!(index as u64, case["thorax_gan_cutoff_index"].as_u64().unwrap());
        assert_eq!(cutoff, case["thorax_gan_cutoff"].as_f64().unwrap());
        let stats = threshold_statistics(&truth, &scores, cutoff).unwrap();
        let expected = &case["stats_at_cutoff"];
        for (value, key) in stats.values().iter().zip(["accuracy", "sensitivity", "specificity", "ppv", "npv", "f1"]) {
            assert_close(value.unwrap(), expected[key].as_f64().unwrap(), 1e-12, key);
        }
    }
}

#[test]
fn thorax_gan_protocol_statistics_match_numpy_on_fixed_indices() {
    let golden = golden();
    let protocol = &golden["roc_protocol"];
    let (truth, scores) = roc_case(&golden["roc"][0]);
    let indices = npy("roc_resample_indices_i64.npy");
    let sets: Vec<Vec<usize>> =
        indices.values.chunks(indices.shape[1]).map(|row| row.iter().map(|&v| v as usize).collect()).collect();
    let cutoff = protocol["cutoff"].as_f64().unwrap();
    let result = thorax_gan_protocol_on_indices(&truth, &scores, cutoff, &sets).unwrap();
    let summaries = [
        ("auc", &result.auc),
        ("accuracy", &result.accuracy),
        ("sensitivity", &result.sensitivity),
        ("specificity", &result.specificity),
        ("ppv", &result.ppv),
        ("npv", &result.npv),
        ("f1", &result.f1),
    ];
    for (key, summary) in summaries {
        assert_close(summary.mean, protocol["mean"][key].as_f64().unwrap(), 1e-12, key);
        assert_close(summary.std, protocol["std_ddof0"][key].as_f64().unwrap(), 1e-12, key);
        assert_eq!(summary.defined, sets.len());
    }
    assert_eq!(result.skipped_one_class, 0);
}

/// Statistical checks of the seeded bootstrap (its resamples are ours, not pandas').
#[test]
fn bootstrap_percentile_ci_covers_truth_and_shrinks_with_n() {
    // Binormal model with separation 1: true AUC = Phi(1 / sqrt 2) = 0.760250.
    let true_auc = 0.760_249_938_906_971;
    let make = |n: usize, seed: u64| -> (Vec<bool>, Vec<f64>) {
        let mut rng = thorax::metrics::rng::SeededRng::new(seed);
        let mut normal = || {
            // Box-Muller from two uniforms.
            let (u1, u2) = (rng.unit_f64().max(1e-300), rng.unit_f64());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        };
        (0..n)
            .map(|i| {
                let positive = i % 2 == 0;
                (positive, normal() + if positive { 1.0 } else { 0.0 })
            })
            .unzip()
    };
    let mut covered = 0;
    let mut widths = Vec::new();
    for (k, n) in [400usize, 1600].into_iter().enumerate() {
        let mut width_sum = 0.0;
        for rep in 0..20u64 {
            let (truth, scores) = make(n, 1000 * k as u64 + rep);
            let result = bootstrap_auc(&truth, &scores, 400, 0.95, rep).unwrap();
            assert_eq!(result.skipped_one_class, 0);
            if result.ci_low <= true_auc && true_auc <= result.ci_high {
                covered += 1;
            }
            width_sum += result.ci_high - result.ci_low;
        }
        widths.push(width_sum / 20.0);
    }
    // 40 intervals at 95%: expect 38; fewer than 33 has probability below 1e-3.
    assert!(covered >= 33, "covered {covered} of 40");
    // Quadrupling n halves the width (1/sqrt n); allow 20%.
    let ratio = widths[0] / widths[1];
    assert!((1.6..2.4).contains(&ratio), "width ratio {ratio} ({widths:?})");
    // The protocol over the same data: its bootstrap SD is close to the DeLong SD.
    let (truth, scores) = make(1600, 99);
    let protocol = thorax_gan_protocol(&truth, &scores, 400, None, 5).unwrap();
    let analytic = delong(&truth, &scores, 0.95).unwrap().variance.sqrt();
    assert!((protocol.auc.std / analytic - 1.0).abs() < 0.2, "{} vs {analytic}", protocol.auc.std);
    assert_eq!(protocol.seed, Some(5));
}

#[test]
fn pearson_and_matrix_match_scipy() {
    let golden = golden();
    let corr = &golden["correlation"];
    let r = pearson(&f64s(&corr["pair_x"]), &f64s(&corr["pair_y"])).unwrap().unwrap();
    assert_close(r, corr["pair_r"].as_f64().unwrap(), 1e-12, "pearson r");
    let control = npy("corr_control_f64.npy");
    let probs = npy("corr_probabilities_f64.npy");
    let (labels, n) = (control.shape[0], control.shape[1]);
    let names: Vec<String> = (0..labels).map(|i| format!("label{i}")).collect();
    let experiments: Vec<ControlExperiment> = (0..labels)
        .map(|p| ControlExperiment {
            control_label: names[p].clone(),
            control_values: control.values[p * n..(p + 1) * n].to_vec(),
            probabilities: (0..n)
                .map(|i| probs.values[(p * n + i) * labels..(p * n + i + 1) * labels].to_vec())
                .collect(),
        })
        .collect();
    let matrix = correlation_matrix(&experiments, &names).unwrap();
    let expected = corr["matrix_control_by_output"].as_array().unwrap();
    assert_eq!(expected.len(), labels);
    for (row, expected_row) in matrix.r.iter().zip(expected) {
        for (cell, e) in row.iter().zip(f64s(expected_row)) {
            assert_close(cell.unwrap(), e, 1e-12, "matrix cell");
        }
    }
    assert!(matrix.undefined_cells.is_empty());
}
