//! `thorax audit` and `thorax metrics fid` on image folders, through the binary (one JSON document on stdout).

use std::path::Path;
use std::process::Command;

use crate::sample_folders::{fill, samples_256};

fn thorax(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_thorax")).args(args).output().unwrap()
}

#[test]
fn audit_flags_copies_of_training_images_and_exports_the_rest() {
    let samples = samples_256();
    let root = tempfile::tempdir().unwrap();
    let (training, heldout, generated, shareable) =
        (root.path().join("train"), root.path().join("heldout"), root.path().join("gen"), root.path().join("share"));
    fill(&training, &samples[0..4]);
    fill(&heldout, &samples[4..8]);
    // Two exact copies of training images (renamed) and two unseen images.
    fill(&generated, &samples[8..10]);
    std::fs::copy(&samples[0], generated.join("copy_a.png")).unwrap();
    // A mirrored copy: the embedding alone scored these 0.67 to 0.82, below any threshold.
    let mirrored = image::open(&samples[2]).unwrap().fliph();
    mirrored.save(generated.join("copy_b.png")).unwrap();
    let output = thorax(&[
        "audit",
        "--generated",
        generated.to_str().unwrap(),
        "--training",
        training.to_str().unwrap(),
        "--heldout",
        heldout.to_str().unwrap(),
        "--top-k",
        "2",
        "--export-unflagged",
        shareable.to_str().unwrap(),
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["count_generated"], 4);
    assert_eq!(summary["count_training"], 4);
    assert_eq!(summary["count_heldout"], 4);
    let flagged: Vec<String> = summary["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Path::new(p["generated"].as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(flagged.contains(&"copy_a.png".to_owned()) && flagged.contains(&"copy_b.png".to_owned()), "{flagged:?}");
    // Every flagged pair carries its pixel MS-SSIM, as the same pair does in closest_pairs.
    for pair in summary["flagged"].as_array().unwrap() {
        assert!(pair["pixel_ms_ssim"].as_f64().is_some(), "{pair}");
        assert!(pair["cosine_similarity"].as_f64().unwrap() <= 1.0, "{pair}");
    }
    // The two closest pairs are the copies: cosine and pixel MS-SSIM (against the mirrored training image) both 1.
    for pair in summary["closest_pairs"].as_array().unwrap() {
        assert!((pair["cosine_similarity"].as_f64().unwrap() - 1.0).abs() < 1e-6, "{pair}");
        assert!((pair["pixel_ms_ssim"].as_f64().unwrap() - 1.0).abs() < 1e-6, "{pair}");
        let is_mirror = pair["generated"].as_str().unwrap().ends_with("copy_b.png");
        assert_eq!(pair["nearest_training_mirrored"].as_bool(), Some(is_mirror), "{pair}");
    }
    assert_eq!(summary["model_sha256"].as_str().unwrap().len(), 64);
    let exported = std::fs::read_dir(&shareable).unwrap().count();
    assert_eq!(exported as u64, 4 - summary["count_flagged"].as_u64().unwrap());
    assert!(!shareable.join("copy_a.png").exists());
}

#[test]
fn audit_names_the_empty_folder() {
    let root = tempfile::tempdir().unwrap();
    let empty = root.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = empty.to_str().unwrap();
    let output = thorax(&["audit", "--generated", e, "--training", e, "--heldout", e, "--device", "cpu"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--generated") && stderr.contains("no images"), "{stderr}");
}

#[test]
fn fd_densenet_of_folders_is_zero_for_the_same_set_and_positive_otherwise() {
    let samples = samples_256();
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    fill(&a, &samples[0..5]);
    fill(&b, &samples[5..10]);
    let fid = |real: &Path, fake: &Path| -> serde_json::Value {
        let output = thorax(&[
            "metrics",
            "fid",
            "--real",
            real.to_str().unwrap(),
            "--fake",
            fake.to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
        ]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let same = fid(&a, &a);
    assert_eq!(same["metric"], "FD-DenseNet");
    assert_eq!(same["count_a"], 5);
    assert!(same["value"].as_f64().unwrap().abs() < 1e-3, "{same}");
    let different = fid(&a, &b);
    assert!(different["value"].as_f64().unwrap() > 1e-3, "{different}");
    assert!(different["bootstrap"].is_null(), "no interval unless asked for");

    let output = thorax(&[
        "metrics",
        "fid",
        "--real",
        a.to_str().unwrap(),
        "--fake",
        b.to_str().unwrap(),
        "--bootstrap",
        "4",
        "--seed",
        "3",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let with_ci: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let ci = &with_ci["bootstrap"];
    assert_eq!(ci["resamples"], 4);
    assert_eq!(ci["value"], with_ci["value"]);
    assert!(ci["lower"].as_f64().unwrap() <= ci["upper"].as_f64().unwrap(), "{ci}");
}
