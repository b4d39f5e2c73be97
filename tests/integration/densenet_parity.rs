//! DenseNet-121 parity with torchvision: fixtures from tools/make_densenet_cyclegan_fixtures.py (random weights,
//! randomised BatchNorm statistics, reduced growth/stem width, full 6/12/24/16 layout), converted from the three
//! checkpoint forms the original world produces, run on the fixture's random inputs.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use thorax::convert::npy::read_npy_f32;
use thorax::convert::pytorch::{CheckpointFormat, densenet_weights, read_checkpoint};
use thorax::models::card::Provenance;
use thorax::models::densenet::DenseNet121;
use thorax::models::labels::NIH_CLASSIFIER_LABELS;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/densenet").join(name)
}

fn nih_labels() -> Vec<String> {
    NIH_CLASSIFIER_LABELS.iter().map(|l| (*l).to_owned()).collect()
}

fn converted(path: &Path) -> DenseNet121 {
    let checkpoint = read_checkpoint(path).unwrap();
    let converted = densenet_weights(&checkpoint, nih_labels(), "fixture", Provenance::default(), path).unwrap();
    DenseNet121::from_weights(converted.weights).unwrap()
}

fn npy_tensor(path: &Path) -> Tensor {
    let (shape, data) = read_npy_f32(path).unwrap();
    Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
}

/// Max |a - b| and the range of `expected`.
fn max_error(actual: &Tensor, expected: &Tensor) -> (f32, f32) {
    assert_eq!(actual.dims(), expected.dims());
    let a = actual.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let e = expected.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let error = a.iter().zip(&e).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    let (min, max) = e.iter().fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    (error, max - min)
}

fn check_against_torchvision(net: &DenseNet121, dir: impl Fn(&str) -> PathBuf, what: &str) {
    let input = npy_tensor(&dir("input.npy"));
    let probabilities = net.forward(&input).unwrap();
    let (error, _) = max_error(&probabilities, &npy_tensor(&dir("expected_probabilities.npy")));
    println!("{what}: probabilities max abs error {error:e} (output range [0, 1])");
    assert!(error <= 1e-4, "{what}: probabilities differ by {error}");
    let pooled = net.pooled_features(&input).unwrap();
    let (error, range) = max_error(&pooled, &npy_tensor(&dir("expected_pooled.npy")));
    println!("{what}: pooled features max abs error {error:e}, range {range}");
    assert!(error <= 1e-4 * range, "{what}: pooled features differ by {error} (range {range})");
}

#[test]
fn zip_pickled_module_checkpoint_matches_torchvision() {
    // The original checkpoint's shape re-saved by PyTorch >= 1.6: {'model': DenseNet, 'epoch'} in the zip format.
    let path = fixture("densenet_small_module_zip.pth");
    let checkpoint = read_checkpoint(&path).unwrap();
    assert_eq!(checkpoint.format, CheckpointFormat::Zip);
    assert!(checkpoint.container.contains("torchvision.models.densenet.DenseNet"), "{}", checkpoint.container);
    assert!(checkpoint.skipped.iter().any(|n| n.ends_with("num_batches_tracked")));
    check_against_torchvision(&converted(&path), fixture, "zip pickled module");
}

#[test]
fn legacy_pickled_module_checkpoint_matches_torchvision() {
    // reproduce-chexnet's torch.save({'model': model, 'best_loss', 'epoch', 'rng_state', 'LR'}) in the legacy format.
    let path = fixture("densenet_small_module_legacy.pth");
    let checkpoint = read_checkpoint(&path).unwrap();
    assert_eq!(checkpoint.format, CheckpointFormat::Legacy);
    assert!(checkpoint.container.contains("'model'"), "{}", checkpoint.container);
    check_against_torchvision(&converted(&path), fixture, "legacy pickled module");
}

#[test]
fn old_names_with_dataparallel_prefix_match_torchvision() {
    let path = fixture("densenet_small_old_names.pth");
    let checkpoint = read_checkpoint(&path).unwrap();
    assert!(checkpoint.tensors.iter().any(|(n, _)| n.starts_with("module.") && n.contains(".norm.1.")));
    check_against_torchvision(&converted(&path), fixture, "old names");
}

#[test]
fn feature_map_is_the_layer_before_pooling() {
    let net = converted(&fixture("densenet_small_module_zip.pth"));
    let input = npy_tensor(&fixture("input.npy"));
    let features = net.features(&input).unwrap();
    assert_eq!(features.dims(), &[2, net.config().num_features(), 7, 7]);
    let pooled = features.mean((2, 3)).unwrap();
    let (error, _) = max_error(&pooled, &net.pooled_features(&input).unwrap());
    assert!(error < 1e-5);
}

#[test]
fn saved_safetensors_load_back_with_the_card() {
    let path = fixture("densenet_small_module_zip.pth");
    let checkpoint = read_checkpoint(&path).unwrap();
    let converted = densenet_weights(&checkpoint, nih_labels(), "fixture", Provenance::default(), &path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("densenet.safetensors");
    thorax::models::weights::save(&out, &converted.weights.tensors, &converted.weights.card).unwrap();
    let net = DenseNet121::load(&out, &Device::Cpu).unwrap();
    assert_eq!(net.card().labels, nih_labels());
    assert_eq!(net.config().growth_rate, 6);
    check_against_torchvision(&net, fixture, "safetensors round trip");
}

/// Full-width DenseNet-121 (7M parameters, too large to commit): run
/// `tools/make_densenet_cyclegan_fixtures.py --full DIR` and `THORAX_DENSENET_FULL_DIR=DIR cargo test -- --ignored`.
#[test]
#[ignore]
fn full_width_densenet121_matches_torchvision() {
    let dir = PathBuf::from(std::env::var("THORAX_DENSENET_FULL_DIR").expect("set THORAX_DENSENET_FULL_DIR"));
    let net = converted(&dir.join("densenet121_full.pth"));
    assert_eq!(net.config().num_features(), 1024);
    check_against_torchvision(&net, |name| dir.join(name), "full-width densenet121");
}
