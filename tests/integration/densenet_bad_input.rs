//! Bad checkpoints, weights and inputs for the DenseNet classifier: each a clear error naming the culprit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use thorax::convert::pytorch::{densenet_weights, read_checkpoint, read_checkpoint_bytes};
use thorax::models::card::Provenance;
use thorax::models::densenet::{DenseNet121, DenseNetConfig};
use thorax::models::labels::NIH_CLASSIFIER_LABELS;
use thorax::models::weights::save;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/densenet").join(name)
}

fn nih_labels() -> Vec<String> {
    NIH_CLASSIFIER_LABELS.iter().map(|l| (*l).to_owned()).collect()
}

#[test]
fn wrong_label_count_names_the_classifier_and_the_argument() {
    let path = fixture("densenet_small_module_zip.pth");
    let checkpoint = read_checkpoint(&path).unwrap();
    let error =
        densenet_weights(&checkpoint, vec!["A".into()], "x", Provenance::default(), &path).err().unwrap().to_string();
    assert!(error.contains("--labels") && error.contains("classifier.0.weight") && error.contains("14"), "{error}");
}

#[test]
fn not_a_checkpoint_is_refused() {
    let error = read_checkpoint_bytes(b"hello world", Path::new("notes.txt")).err().unwrap().to_string();
    assert!(error.contains("notes.txt") && error.contains("not a PyTorch checkpoint"), "{error}");
    let missing = read_checkpoint(Path::new("/nonexistent/model.pth")).err().unwrap().to_string();
    assert!(missing.contains("/nonexistent/model.pth"), "{missing}");
}

#[test]
fn truncated_checkpoint_is_refused_without_panic() {
    let bytes = std::fs::read(fixture("densenet_small_module_legacy.pth")).unwrap();
    for cut in [20, 200, 5000, bytes.len() / 2, bytes.len() - 3] {
        let result = read_checkpoint_bytes(&bytes[..cut], Path::new("cut.pth"));
        assert!(result.is_err(), "a checkpoint cut at {cut} bytes was accepted");
    }
    let bytes = std::fs::read(fixture("densenet_small_module_zip.pth")).unwrap();
    let result = read_checkpoint_bytes(&bytes[..bytes.len() / 2], Path::new("cut.pth"));
    assert!(result.is_err());
}

fn tiny_weights() -> (thorax::models::card::ModelCard, HashMap<String, Tensor>) {
    let config =
        DenseNetConfig { growth_rate: 4, bn_size: 2, num_init_features: 8, block_config: vec![2, 2], num_labels: 14 };
    let card = config.card("tiny", nih_labels(), Provenance::default());
    let weights = DenseNet121::random_weights(&card, &Device::Cpu, 5).unwrap();
    (card, weights.tensors)
}

#[test]
fn nan_weights_in_a_file_are_named() {
    let (card, mut tensors) = tiny_weights();
    let name = "features.denseblock2.denselayer1.conv2.weight";
    let shape = tensors[name].dims().to_vec();
    let count: usize = shape.iter().product();
    let mut values = vec![0.1f32; count];
    values[3] = f32::NAN;
    tensors.insert(name.into(), Tensor::from_vec(values, shape, &Device::Cpu).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.safetensors");
    save(&path, &tensors, &card).unwrap();
    let error = DenseNet121::load(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(error.contains(name) && error.contains("NaN"), "{error}");
}

#[test]
fn missing_and_misshapen_tensors_in_a_file_are_named() {
    let (card, mut tensors) = tiny_weights();
    tensors.remove("features.norm5.running_var");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.safetensors");
    save(&path, &tensors, &card).unwrap();
    let error = DenseNet121::load(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(error.contains("features.norm5.running_var") && error.contains("missing"), "{error}");

    let (card, mut tensors) = tiny_weights();
    tensors.insert("features.conv0.weight".into(), Tensor::zeros((8, 1, 7, 7), DType::F32, &Device::Cpu).unwrap());
    let path = dir.path().join("shape.safetensors");
    save(&path, &tensors, &card).unwrap();
    let error = DenseNet121::load(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(error.contains("features.conv0.weight") && error.contains("[8, 1, 7, 7]"), "{error}");
}

#[test]
fn a_generator_file_is_not_a_classifier() {
    use thorax::models::cyclegan::{CycleGanConfig, CycleGanGenerator, Direction};
    let config = CycleGanConfig {
        ngf: 2,
        n_blocks: 1,
        input_nc: 1,
        output_nc: 1,
        use_dropout: false,
        direction: Direction::AToB,
    };
    let card = config.card("g", ["A", "B"], Provenance::default());
    let weights = CycleGanGenerator::random_weights(&card, &Device::Cpu, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.safetensors");
    save(&path, &weights.tensors, &card).unwrap();
    let error = DenseNet121::load(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(
        error.contains("g.safetensors")
            && error.contains("holds a CycleGAN generator, but this needs a DenseNet-121 classifier"),
        "{error}"
    );
}

#[test]
fn wrong_input_sizes_are_named() {
    let (card, tensors) = tiny_weights();
    let net = DenseNet121::from_weights(thorax::models::weights::Weights { card, tensors }).unwrap();
    for shape in [vec![3, 224, 224], vec![1, 3, 256, 256], vec![2, 1, 224, 224]] {
        let x = Tensor::zeros(shape.clone(), DType::F32, &Device::Cpu).unwrap();
        let error = net.forward(&x).err().unwrap().to_string();
        assert!(error.contains("classifier input") && error.contains(&format!("{shape:?}")), "{error}");
    }
}
