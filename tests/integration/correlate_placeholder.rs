//! `thorax correlate` on the untrained placeholders (assets/models/) at small N: matrix shape and names, Pearson
//! values equal to `metrics::correlation` on the written data, seeded reproducibility, labels matched by name.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use thorax::cli::correlate::{
    CorrelateArgs, CorrelateError, CorrelationRun, CorrelationSettings, control_draws, control_label_rows,
    run_correlation,
};
use thorax::metrics::correlation::pearson;
use thorax::models::card::Provenance;
use thorax::models::densenet::{DenseNet121, DenseNetConfig};
use thorax::models::labels::{CHEXPERT_GAN_LABELS, NIH_CLASSIFIER_LABELS, NIH_GAN_LABELS};
use thorax::models::preprocess::classifier_input;
use thorax::models::progan::{ProganArchitecture, ProganGenerator, progan_card, to_png_u8};

fn asset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models").join(name)
}

fn placeholder_generator() -> ProganGenerator {
    ProganGenerator::load(&asset("progan-untrained-64px.safetensors"), &Device::Cpu).unwrap()
}

/// A small random DenseNet with the NIH outputs in reverse order, so rows and generator slots must be matched by name.
fn tiny_classifier() -> DenseNet121 {
    let labels: Vec<String> = NIH_CLASSIFIER_LABELS.iter().rev().map(|l| (*l).to_owned()).collect();
    let config =
        DenseNetConfig { growth_rate: 4, bn_size: 2, num_init_features: 8, block_config: vec![2, 2], num_labels: 14 };
    DenseNet121::random(&config.card("tiny reversed", labels, Provenance::default()), &Device::Cpu, 9).unwrap()
}

fn settings(per_label: usize, seed: u32) -> CorrelationSettings {
    CorrelationSettings { per_label, seed, batch: 4, save_images: None }
}

fn run(generator: &ProganGenerator, classifier: &DenseNet121, settings: &CorrelationSettings) -> CorrelationRun {
    run_correlation(generator, classifier, settings, &mut |_| ControlFlow::Continue(())).unwrap()
}

#[test]
fn matrix_is_pearson_of_the_experiments_and_rows_follow_the_classifier_order() {
    let generator = placeholder_generator();
    let classifier = tiny_classifier();
    let result = run(&generator, &classifier, &settings(6, 5));
    let outputs: Vec<String> = NIH_CLASSIFIER_LABELS.iter().rev().map(|l| (*l).to_owned()).collect();
    assert_eq!(result.matrix.control_labels, outputs);
    assert_eq!(result.matrix.output_labels, outputs);
    assert_eq!(result.matrix.r.len(), 14);
    assert!(result.matrix.r.iter().all(|row| row.len() == 14));
    assert_eq!(result.matrix.counts, vec![6; 14]);
    for (experiment, row) in result.experiments.iter().zip(&result.matrix.r) {
        for (column, cell) in row.iter().enumerate() {
            let outputs: Vec<f64> = experiment.probabilities.iter().map(|p| p[column]).collect();
            assert_eq!(*cell, pearson(&experiment.control_values, &outputs).unwrap());
        }
    }
    assert!(result.matrix.r.iter().flatten().any(Option::is_some));
    // Each row's draws come from the stream of its generator slot, found by name.
    for (pair, experiment) in result.matching.pairs.iter().zip(&result.experiments) {
        assert_eq!(NIH_GAN_LABELS[pair.generator_index], pair.label);
        let (controls, _) = control_draws(5, pair.generator_index, 6, 512);
        let controls: Vec<f64> = controls.into_iter().map(f64::from).collect();
        assert_eq!(experiment.control_values, controls);
    }
}

#[test]
fn one_image_recomputed_by_hand_matches_the_run() {
    // Cardiomegaly is generator slot 0 and classifier output 12 of the reversed card.
    let generator = placeholder_generator();
    let classifier = tiny_classifier();
    let result = run(&generator, &classifier, &settings(2, 21));
    let row = result.experiments.iter().position(|e| e.control_label == "Cardiomegaly").unwrap();
    let slot = generator.card().label_index("Cardiomegaly").unwrap();
    let (controls, latents) = control_draws(21, slot, 2, 512);
    let labels = control_label_rows(&controls[..1], slot, 14);
    let z = Tensor::from_slice(&latents[..512], (1, 512), &Device::Cpu).unwrap();
    let y = Tensor::from_slice(&labels, (1, 14), &Device::Cpu).unwrap();
    let image = generator.forward(&z, &y).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let gray: Vec<f32> = image.into_iter().map(|v| f32::from(to_png_u8(v)) / 255.0).collect();
    let x = classifier_input(&gray, 64, 64, classifier.card().input_normalization.as_ref(), &Device::Cpu).unwrap();
    let expected = classifier.forward(&x).unwrap().to_vec2::<f32>().unwrap().remove(0);
    let got: Vec<f32> = result.experiments[row].probabilities[0].iter().map(|&p| p as f32).collect();
    for (g, e) in got.iter().zip(&expected) {
        // Batched and single-image passes may round differently.
        assert!((g - e).abs() < 1e-5, "{got:?} vs {expected:?}");
    }
}

#[test]
fn runs_are_reproducible_for_a_seed_and_differ_across_seeds() {
    let generator = placeholder_generator();
    let classifier = tiny_classifier();
    let first = run(&generator, &classifier, &settings(4, 77));
    let again = run(&generator, &classifier, &CorrelationSettings { batch: 3, ..settings(4, 77) });
    // Batch size must not change the result beyond float rounding (the CPU convolutions tile batches differently).
    assert_eq!(first.experiments.len(), again.experiments.len());
    for (a, b) in first.experiments.iter().zip(&again.experiments) {
        assert_eq!(a.control_label, b.control_label);
        assert_eq!(a.control_values, b.control_values, "the seeded draws must not depend on the batch size");
        for (pa, pb) in a.probabilities.iter().flatten().zip(b.probabilities.iter().flatten()) {
            assert!((pa - pb).abs() < 1e-5, "{pa} vs {pb}");
        }
    }
    let other = run(&generator, &classifier, &settings(4, 78));
    assert_ne!(first.matrix.r, other.matrix.r);
}

#[test]
fn labels_without_a_counterpart_are_reported_and_skipped() {
    let placeholder = placeholder_generator();
    let architecture = ProganArchitecture::from_card(placeholder.card()).unwrap();
    let labels: Vec<String> = CHEXPERT_GAN_LABELS.iter().map(|l| (*l).to_owned()).collect();
    let card = progan_card("chexpert test", labels, &architecture, true, Provenance::default());
    let (generator, _) = ProganGenerator::random(card, &Device::Cpu, 4).unwrap();
    let result = run(&generator, &tiny_classifier(), &settings(3, 1));
    let mut rows = result.matrix.control_labels.clone();
    rows.sort();
    assert_eq!(rows, ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pneumonia", "Pneumothorax"]);
    assert_eq!(result.matrix.output_labels.len(), 14);
    assert!(result.matching.generator_only.contains(&"Pleural Effusion".to_owned()));
    assert!(result.matching.classifier_only.contains(&"Effusion".to_owned()));
    assert_eq!(result.matching.generator_only.len(), 8);
}

#[test]
fn cancel_and_bad_settings_are_errors() {
    let generator = placeholder_generator();
    let classifier = tiny_classifier();
    let cancelled = run_correlation(&generator, &classifier, &settings(4, 1), &mut |_| ControlFlow::Break(()));
    assert!(matches!(cancelled, Err(CorrelateError::Cancelled)));
    let message = run_correlation(&generator, &classifier, &settings(1, 1), &mut |_| ControlFlow::Continue(()))
        .unwrap_err()
        .to_string();
    assert!(message.contains("per-label") && message.contains("at least 2"), "{message}");
}

/// Parses a CSV written by the run (no quoted fields in these label names).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_owned).collect();
    (header, lines.map(|l| l.split(',').map(str::to_owned).collect()).collect())
}

#[test]
fn cli_on_both_placeholders_writes_consistent_files() {
    let out = tempfile::tempdir().unwrap();
    let args = CorrelateArgs {
        generator: Some(asset("progan-untrained-64px.safetensors")),
        classifier: Some(asset("densenet121-untrained.safetensors")),
        per_label: 3,
        seed: 2,
        batch: 2,
        out: out.path().to_path_buf(),
        save_images: true,
        json: true,
        overwrite: false,
    };
    thorax::cli::correlate::run(&args, &Device::Cpu, None, None).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["per_label"], 3);
    assert_eq!(summary["matched_labels"].as_array().unwrap().len(), 14);
    assert_eq!(summary["matrix"]["r"].as_array().unwrap().len(), 14);
    assert_eq!(summary["classifier"]["untrained"], true);
    assert_eq!(summary["generator"]["sha256"].as_str().unwrap().len(), 64);

    let (header, rows) = read_csv(&out.path().join("correlation_matrix.csv"));
    assert_eq!(header.len(), 15);
    assert_eq!(&header[1..], NIH_CLASSIFIER_LABELS.map(str::to_owned).as_slice());
    assert_eq!(rows.len(), 14);
    for row in &rows {
        let (per_label_header, data) = read_csv(&out.path().join("per_label").join(format!("{}.csv", row[0])));
        assert_eq!(
            per_label_header,
            header
                .iter()
                .enumerate()
                .map(|(i, h)| if i == 0 { "control".to_owned() } else { h.clone() })
                .collect::<Vec<_>>()
        );
        assert_eq!(data.len(), 3);
        let controls: Vec<f64> = data.iter().map(|d| d[0].parse().unwrap()).collect();
        assert!(controls.iter().all(|c| (0.0..1.0).contains(c)));
        for column in 1..15 {
            let outputs: Vec<f64> = data.iter().map(|d| d[column].parse().unwrap()).collect();
            let expected = pearson(&controls, &outputs).unwrap();
            let written: Option<f64> = (!row[column].is_empty()).then(|| row[column].parse().unwrap());
            assert_eq!(written, expected, "{} x {}", row[0], header[column]);
        }
        let images = std::fs::read_dir(out.path().join("images").join(&row[0])).unwrap().count();
        assert_eq!(images, 3);
    }
    let (_, curves) = read_csv(&out.path().join("response_curves.csv"));
    assert_eq!(curves.len(), 14 * 10);
}
