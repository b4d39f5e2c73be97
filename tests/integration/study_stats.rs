//! Golden tests of every reader-study statistic against scipy / scikit-learn / statsmodels / numpy values
//! made by tools/make_study_fixtures.py.

use std::path::PathBuf;

use serde_json::Value;
use thorax::study::analysis::{AnalysisOptions, analyze};
use thorax::study::imrmc::{read_imrmc, readings_from_imrmc};
use thorax::study::stats::{
    ConfusionCounts, KappaWeighting, binomial_test_two_sided, cohen_kappa, fleiss_kappa, quantile_linear, roc_auc,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/study").join(name)
}

fn golden(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

fn f64s(value: &Value) -> Vec<f64> {
    value.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
}

fn bools(value: &Value) -> Vec<bool> {
    value.as_array().unwrap().iter().map(|v| v.as_i64().unwrap() == 1).collect()
}

fn assert_close(got: f64, want: f64, tolerance: f64, what: &str) {
    let scale = want.abs().max(1e-300);
    assert!(
        (got - want).abs() <= tolerance * scale.max(1.0) || (got - want).abs() / scale <= tolerance,
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn binomial_test_matches_scipy_binomtest() {
    let g = golden("stats_golden.json");
    let cases = g["binomtest"].as_array().unwrap();
    assert!(cases.len() >= 15);
    for case in cases {
        let (k, n, p) = (case["k"].as_u64().unwrap(), case["n"].as_u64().unwrap(), case["p"].as_f64().unwrap());
        let want = case["pvalue"].as_f64().unwrap();
        let got = binomial_test_two_sided(k, n, p).unwrap();
        // Relative tolerance: tiny p-values (e.g. 0/20) must match in their digits too.
        assert!((got - want).abs() <= 1e-10 * want.max(1e-300) + 1e-14, "k={k} n={n} p={p}: got {got}, want {want}");
    }
}

#[test]
fn roc_auc_matches_sklearn() {
    let g = golden("stats_golden.json");
    for case in g["roc_auc"].as_array().unwrap() {
        let got = roc_auc(&bools(&case["truth"]), &f64s(&case["scores"])).unwrap();
        assert_close(got, case["auc"].as_f64().unwrap(), 1e-12, "auc");
    }
}

#[test]
fn accuracy_sensitivity_specificity_match_sklearn() {
    let g = golden("stats_golden.json");
    for case in g["confusion"].as_array().unwrap() {
        let counts = ConfusionCounts::from_pairs(bools(&case["truth"]).into_iter().zip(bools(&case["call"])));
        assert_close(counts.accuracy().unwrap(), case["accuracy"].as_f64().unwrap(), 1e-12, "accuracy");
        assert_close(counts.sensitivity().unwrap(), case["sensitivity"].as_f64().unwrap(), 1e-12, "sensitivity");
        assert_close(counts.specificity().unwrap(), case["specificity"].as_f64().unwrap(), 1e-12, "specificity");
    }
}

#[test]
fn cohen_kappa_unweighted_linear_quadratic_match_sklearn() {
    let g = golden("stats_golden.json");
    for case in g["cohen_kappa"].as_array().unwrap() {
        let labels = f64s(&case["labels"]);
        let index = |v: &f64| labels.iter().position(|l| l == v).unwrap();
        let a: Vec<usize> = f64s(&case["a"]).iter().map(index).collect();
        let b: Vec<usize> = f64s(&case["b"]).iter().map(index).collect();
        for (weighting, key) in [
            (KappaWeighting::Unweighted, "unweighted"),
            (KappaWeighting::Linear, "linear"),
            (KappaWeighting::Quadratic, "quadratic"),
        ] {
            let got = cohen_kappa(&a, &b, labels.len(), weighting).unwrap();
            assert_close(got, case[key].as_f64().unwrap(), 1e-12, key);
        }
    }
}

#[test]
fn fleiss_kappa_matches_statsmodels() {
    let g = golden("stats_golden.json");
    for case in g["fleiss_kappa"].as_array().unwrap() {
        let table: Vec<Vec<u64>> = case["table"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect())
            .collect();
        assert_close(fleiss_kappa(&table).unwrap(), case["kappa"].as_f64().unwrap(), 1e-12, "fleiss");
    }
}

#[test]
fn percentile_matches_numpy_linear() {
    let g = golden("stats_golden.json");
    for case in g["percentile"].as_array().unwrap() {
        let mut values = f64s(&case["values"]);
        values.sort_by(f64::total_cmp);
        let got = quantile_linear(&values, case["q"].as_f64().unwrap()).unwrap();
        assert_close(got, case["result"].as_f64().unwrap(), 1e-12, "percentile");
    }
}

#[test]
fn imrmc_reading_analysis_matches_python_per_reader_pooled_and_agreement() {
    let g = golden("reading_golden.json");
    let threshold = g["call_threshold"].as_f64().unwrap();
    let data = read_imrmc(&fixture("reading.imrmc")).unwrap();
    let readings = readings_from_imrmc(&data, threshold).unwrap();
    let options = AnalysisOptions { bootstrap_resamples: 4000, seed: 5, level: 0.95 };
    let report = analyze(&readings, None, &options).unwrap();
    assert_eq!(report.modalities.len(), 1);
    let modality = &report.modalities[0];
    let check = |got: &thorax::study::analysis::Performance, want: &Value, who: &str| {
        assert_eq!(got.readings as u64, want["readings"].as_u64().unwrap(), "{who}");
        assert_close(got.auc.unwrap(), want["auc"].as_f64().unwrap(), 1e-12, who);
        assert_close(got.accuracy.unwrap(), want["accuracy"].as_f64().unwrap(), 1e-12, who);
        assert_eq!(got.counts.correct(), want["correct"].as_u64().unwrap(), "{who}");
        assert_close(got.binomial_p.unwrap(), want["binomial_p"].as_f64().unwrap(), 1e-10, who);
        assert_close(got.sensitivity.unwrap(), want["sensitivity"].as_f64().unwrap(), 1e-12, who);
        assert_close(got.specificity.unwrap(), want["specificity"].as_f64().unwrap(), 1e-12, who);
        // Different generators draw different resamples: the percentile CIs agree to Monte Carlo error only.
        let ci = got.auc_ci.unwrap();
        let want_ci = f64s(&want["auc_ci_python_bootstrap"]);
        assert!((ci.lower - want_ci[0]).abs() < 0.03, "{who} lower {} vs {}", ci.lower, want_ci[0]);
        assert!((ci.upper - want_ci[1]).abs() < 0.03, "{who} upper {} vs {}", ci.upper, want_ci[1]);
        assert!(ci.lower < got.auc.unwrap() && got.auc.unwrap() < ci.upper, "{who}");
    };
    for reader in &modality.readers {
        check(&reader.performance, &g["per_reader"][&reader.reader], &reader.reader);
    }
    check(&modality.pooled, &g["pooled"], "pooled");
    assert_close(modality.reader_average_auc.unwrap(), g["reader_average_auc"].as_f64().unwrap(), 1e-12, "avg");
    let want_pairs = g["pairwise"].as_array().unwrap();
    assert_eq!(modality.pairwise_agreement.len(), want_pairs.len());
    for (got, want) in modality.pairwise_agreement.iter().zip(want_pairs) {
        assert_eq!(got.reader_a, want["reader_a"].as_str().unwrap());
        assert_eq!(got.reader_b, want["reader_b"].as_str().unwrap());
        assert_eq!(got.cases as u64, want["cases"].as_u64().unwrap());
        assert_close(got.cohen_kappa.unwrap(), want["cohen_kappa"].as_f64().unwrap(), 1e-12, "cohen");
        assert_close(got.weighted_kappa_linear.unwrap(), want["weighted_kappa_linear"].as_f64().unwrap(), 1e-12, "lin");
        assert_close(
            got.weighted_kappa_quadratic.unwrap(),
            want["weighted_kappa_quadratic"].as_f64().unwrap(),
            1e-12,
            "quad",
        );
    }
    let fleiss = modality.fleiss.as_ref().unwrap();
    assert_eq!(fleiss.cases as u64, g["fleiss"]["cases"].as_u64().unwrap());
    assert_close(fleiss.kappa.unwrap(), g["fleiss"]["kappa"].as_f64().unwrap(), 1e-12, "fleiss");
}
