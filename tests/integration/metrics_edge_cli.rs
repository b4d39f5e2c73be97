//! `thorax metrics fd / kid / msssim` on the edge cases of tools/make_metrics_edge_fixtures.py, through the binary:
//! float64 features with a large offset, and 12-bit DICOM compared on the stored scale.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics").join(name).display().to_string()
}

fn golden() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("edge_golden.json")).unwrap()).unwrap()
}

fn thorax(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_thorax")).args(args).output().unwrap()
}

fn json_of(args: &[&str]) -> Value {
    let output = thorax(args);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn assert_relative(actual: f64, expected: f64, tolerance: f64, what: &str) {
    let relative = (actual - expected).abs() / expected.abs();
    assert!(relative <= tolerance, "{what}: {actual} vs {expected} (relative {relative:e})");
}

#[test]
fn float64_features_with_a_large_offset_keep_their_precision() {
    let golden = golden();
    let (a, b) = (fixture("fd_offset_a_f64.npy"), fixture("fd_offset_b_f64.npy"));
    let fd = json_of(&["metrics", "fd", &a, &b, "--json"]);
    // Read as float32 this was 2.03738 (the float32-rounded reference), 4e-4 relative off scipy's 2.03825.
    assert_relative(fd["value"].as_f64().unwrap(), golden["fd_offset"]["fd_scipy_sqrtm"].as_f64().unwrap(), 1e-7, "FD");
    // Subsets of every row: MMD^2 of the whole sets, every subset alike, so the spread is exactly 0.
    let kid = json_of(&["metrics", "kid", "--real-npy", &a, "--fake-npy", &b, "--subsets", "10", "--json"]);
    let exact = golden["fd_offset"]["mmd2_whole_sets_exact"].as_f64().unwrap();
    // Float32 inputs gave 1e-3 relative off; float64 loses ~1e-7 to cancellation at this offset.
    assert_relative(kid["mean"].as_f64().unwrap(), exact, 1e-5, "KID");
    assert_eq!(kid["std"].as_f64(), Some(0.0), "{kid}");
}

#[test]
fn twelve_bit_dicom_is_compared_on_the_stored_scale() {
    let golden = &golden()["dicom12_msssim"];
    let dicom = |name: &str| fixture(&format!("dicom12/{name}.dcm"));
    let msssim = |a: &str, b: &str, extra: &[&str]| -> f64 {
        let (a, b) = (dicom(a), dicom(b));
        let mut args = vec!["metrics", "msssim", a.as_str(), b.as_str(), "--json"];
        args.extend_from_slice(extra);
        let value = json_of(&args);
        value["mean"].as_f64().unwrap()
    };
    // Each image shifted by its own minimum and ranged by its own span made these 1.000000.
    let shifted = msssim("a12", "a12_plus500", &[]);
    assert!((shifted - golden["a12_vs_a12_plus500_L4095"].as_f64().unwrap()).abs() < 5e-7, "{shifted}");
    assert!(shifted < 0.9999, "{shifted}");
    // Two different 12-bit images: compared at L = 4095 (they were refused as "different bit depths").
    let different = msssim("a12", "b12", &[]);
    assert!((different - golden["a12_vs_b12_L4095"].as_f64().unwrap()).abs() < 5e-7, "{different}");
    let overridden = msssim("a12", "b12", &["--data-range", "1000"]);
    assert!((overridden - golden["a12_vs_b12_L1000"].as_f64().unwrap()).abs() < 5e-7, "{overridden}");
    // MONOCHROME1 stores 4095 - v; mirrored within 0..4095 it is a12 again.
    let mirrored = msssim("a12_mono1", "b12", &[]);
    assert!((mirrored - golden["a12_mono1_vs_b12_L4095"].as_f64().unwrap()).abs() < 5e-7, "{mirrored}");
    assert!((msssim("a12_mono1", "a12", &[]) - 1.0).abs() < 1e-12);
    // Different Bits Stored: refused, naming both.
    let output = thorax(&["metrics", "msssim", &dicom("a12"), &dicom("a10")]);
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(error.contains("Bits Stored 12") && error.contains("Bits Stored 10"), "{error}");
}
