//! CAM, Grad-CAM and Grad-CAM++ against jacobgil/pytorch-grad-cam 1.5.7 (tools/make_heatmap_fixtures.py) on the
//! reduced-width torchvision DenseNet fixture and a real radiograph, for two targets; the saturated-head case.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use thorax::convert::npy::read_npy_f32;
use thorax::convert::pytorch::{densenet_weights, read_checkpoint};
use thorax::models::card::Provenance;
use thorax::models::densenet::DenseNet121;
use thorax::models::heatmap::{GradientLayer, HeatmapMethod, HeatmapOptions, TargetOutput, heatmaps, resolve_targets};
use thorax::models::labels::NIH_CLASSIFIER_LABELS;
use thorax::models::weights::Weights;

/// Maps are in [0, 1]; pytorch-grad-cam computes in float32 from torch's features.
const TOLERANCE: f32 = 1e-4;

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path)
}

fn weights() -> Weights {
    let path = fixture("densenet/densenet_small_module_zip.pth");
    let checkpoint = read_checkpoint(&path).unwrap();
    let labels = NIH_CLASSIFIER_LABELS.iter().map(|l| (*l).to_owned()).collect();
    densenet_weights(&checkpoint, labels, "fixture", Provenance::default(), &path).unwrap().weights
}

fn input() -> Tensor {
    let (shape, data) = read_npy_f32(&fixture("densenet/cxr_0001_preprocessed.npy")).unwrap();
    Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
}

fn manifest() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("heatmap/manifest.json")).unwrap()).unwrap()
}

fn targets() -> Vec<usize> {
    manifest()["targets"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as usize).collect()
}

/// The golden maps of one file, one `Vec` per target.
fn golden(name: &str) -> Vec<Vec<f32>> {
    let (shape, data) = read_npy_f32(&fixture(&format!("heatmap/{name}.npy"))).unwrap();
    let per_map: usize = shape[1..].iter().product();
    data.chunks_exact(per_map).map(<[f32]>::to_vec).collect()
}

fn max_abs_difference(actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len());
    actual.iter().zip(expected).map(|(a, e)| (a - e).abs()).fold(0.0, f32::max)
}

fn check(options: HeatmapOptions, name: &str) {
    let net = DenseNet121::from_weights(weights()).unwrap();
    let maps = heatmaps(&net, &input(), &targets(), options).unwrap();
    let expected_224 = golden(&format!("{name}_224"));
    let expected_scaled = golden(&format!("{name}_scaled"));
    for ((map, expected_224), expected_scaled) in maps.iter().zip(&expected_224).zip(&expected_scaled) {
        assert!(map.note.is_none(), "{name}: unexpected note {:?}", map.note);
        let scaled_error = max_abs_difference(&map.scaled.values, expected_scaled);
        let up = map.at_input_size(224, 224);
        let error = max_abs_difference(&up.values, expected_224);
        println!("{name} {}: max |diff| {error:e} at 224 px, {scaled_error:e} at 7 px", map.label);
        assert!(scaled_error <= TOLERANCE, "{name} {}: feature-resolution map differs by {scaled_error}", map.label);
        assert!(error <= TOLERANCE, "{name} {}: 224 px map differs by {error}", map.label);
    }
}

#[test]
fn cam_matches_the_reference_pipeline() {
    check(HeatmapOptions::new(HeatmapMethod::Cam), "cam");
    // The unscaled sums: the classifier weights times the rectified features.
    let net = DenseNet121::from_weights(weights()).unwrap();
    let maps = heatmaps(&net, &input(), &targets(), HeatmapOptions::new(HeatmapMethod::Cam)).unwrap();
    for (map, expected) in maps.iter().zip(golden("cam_raw")) {
        let range = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let error = max_abs_difference(&map.raw.values, &expected);
        assert!(error <= 1e-4 * range, "raw CAM of {} differs by {error} (range {range})", map.label);
    }
}

#[test]
fn grad_cam_matches_pytorch_grad_cam() {
    check(HeatmapOptions::new(HeatmapMethod::GradCam), "gradcam_rectified");
}

#[test]
fn grad_cam_plus_plus_matches_pytorch_grad_cam() {
    check(HeatmapOptions::new(HeatmapMethod::GradCamPlusPlus), "gradcampp_rectified");
}

#[test]
fn stock_norm5_target_layer_matches_pytorch_grad_cam_on_cpu() {
    for (method, name) in
        [(HeatmapMethod::GradCam, "gradcam_norm5"), (HeatmapMethod::GradCamPlusPlus, "gradcampp_norm5")]
    {
        let options = HeatmapOptions { gradient_layer: GradientLayer::Norm5BeforeRelu, ..HeatmapOptions::new(method) };
        check(options, name);
    }
}

#[test]
fn logit_target_matches_pytorch_grad_cam_without_sigmoid() {
    for (method, name) in
        [(HeatmapMethod::GradCam, "gradcam_logit"), (HeatmapMethod::GradCamPlusPlus, "gradcampp_logit")]
    {
        let options = HeatmapOptions { target_output: TargetOutput::Logit, ..HeatmapOptions::new(method) };
        check(options, name);
    }
}

#[test]
fn probabilities_match_the_manifest() {
    let net = DenseNet121::from_weights(weights()).unwrap();
    let maps = heatmaps(&net, &input(), &targets(), HeatmapOptions::new(HeatmapMethod::Cam)).unwrap();
    for (map, expected) in maps.iter().zip(manifest()["probabilities"].as_array().unwrap()) {
        assert!((f64::from(map.probability) - expected.as_f64().unwrap()).abs() < 1e-5);
    }
}

#[test]
fn saturated_probability_gives_a_blank_map_and_a_note_like_pytorch_grad_cam() {
    let saturated = &manifest()["saturated"];
    assert_eq!(saturated["gradcam_max"].as_f64(), Some(0.0));
    assert_eq!(saturated["any_nan"].as_bool(), Some(false));
    let target = saturated["target"].as_u64().unwrap() as usize;
    let mut weights = weights();
    let bias = weights.tensors.get("classifier.0.bias").unwrap();
    let mut values = bias.to_vec1::<f32>().unwrap();
    values[target] += saturated["bias_added"].as_f64().unwrap() as f32;
    let bias = Tensor::from_vec(values, bias.dims(), &Device::Cpu).unwrap();
    weights.tensors.insert("classifier.0.bias".to_owned(), bias);
    let net = DenseNet121::from_weights(weights).unwrap();
    for method in [HeatmapMethod::GradCam, HeatmapMethod::GradCamPlusPlus] {
        let map = heatmaps(&net, &input(), &[target], HeatmapOptions::new(method)).unwrap().remove(0);
        assert_eq!(map.probability, 1.0);
        let up = map.at_input_size(224, 224);
        assert!(up.values.iter().all(|&v| v == 0.0), "{method}: the map is not blank");
        let note = map.note.clone().unwrap_or_default();
        assert!(note.contains("gradient is zero") && note.contains("Cardiomegaly"), "{method}: {note}");
        // The logit never saturates, so the same head still gives a map.
        let options = HeatmapOptions { target_output: TargetOutput::Logit, ..HeatmapOptions::new(method) };
        let map = heatmaps(&net, &input(), &[target], options).unwrap().remove(0);
        assert!(map.note.is_none() && !map.is_blank(), "{method} on the logit: {:?}", map.note);
    }
}

#[test]
fn unknown_target_lists_the_valid_names() {
    let net = DenseNet121::from_weights(weights()).unwrap();
    let message = resolve_targets(net.card(), "Cardiomegally").unwrap_err().to_string();
    assert!(message.contains("`Cardiomegally`"), "{message}");
    for label in NIH_CLASSIFIER_LABELS {
        assert!(message.contains(label), "{message} does not list {label}");
    }
    assert_eq!(resolve_targets(net.card(), "all").unwrap().len(), 14);
    assert_eq!(resolve_targets(net.card(), "Hernia").unwrap(), vec![13]);
}

#[test]
fn grad_cam_on_the_rectified_map_equals_cam_after_its_relu() {
    // With a global-average-pool head the gradient is p(1-p) W[c] / (h w) at every pixel, so Grad-CAM is CAM with
    // a ReLU: a consistency check between the two code paths.
    let net = DenseNet121::from_weights(weights()).unwrap();
    let x = input();
    let cam = heatmaps(&net, &x, &targets(), HeatmapOptions::new(HeatmapMethod::Cam)).unwrap();
    let grad_cam = heatmaps(&net, &x, &targets(), HeatmapOptions::new(HeatmapMethod::GradCam)).unwrap();
    for (c, g) in cam.iter().zip(&grad_cam) {
        let rectified: Vec<f32> = c.raw.values.iter().map(|v| v.max(0.0)).collect();
        let max_c = rectified.iter().fold(0.0f32, |m, &v| m.max(v));
        let max_g = g.raw.values.iter().fold(0.0f32, |m, &v| m.max(v));
        for (a, b) in rectified.iter().zip(&g.raw.values) {
            assert!((a / max_c - b.max(0.0) / max_g).abs() < 1e-4);
        }
    }
}
