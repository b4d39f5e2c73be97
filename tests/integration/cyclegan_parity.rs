//! CycleGAN ResnetGenerator parity with a PyTorch ResnetGenerator written from the junyanz definition (fixtures from
//! tools/make_densenet_cyclegan_fixtures.py), converted from its .pth state_dicts, plus bad-input errors.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use thorax::convert::npy::read_npy_f32;
use thorax::convert::pytorch::{CheckpointFormat, cyclegan_weights, read_checkpoint};
use thorax::models::card::Provenance;
use thorax::models::cyclegan::{CycleGanGenerator, Direction};
use thorax::models::weights::save;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cyclegan").join(name)
}

fn npy_tensor(path: &Path) -> Tensor {
    let (shape, data) = read_npy_f32(path).unwrap();
    Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
}

fn convert(name: &str) -> (CycleGanGenerator, Vec<String>, CheckpointFormat) {
    let path = fixture(&format!("{name}.pth"));
    let checkpoint = read_checkpoint(&path).unwrap();
    let converted =
        cyclegan_weights(&checkpoint, Direction::AToB, ["NIH", "CheXpert"], name, Provenance::default(), &path)
            .unwrap();
    (CycleGanGenerator::from_weights(converted.weights).unwrap(), converted.dropped, checkpoint.format)
}

fn check(generator: &CycleGanGenerator, name: &str) {
    let input = npy_tensor(&fixture(&format!("{name}_input.npy")));
    let expected = npy_tensor(&fixture(&format!("{name}_expected.npy")));
    let output = generator.forward(&input).unwrap();
    assert_eq!(output.dims(), expected.dims());
    let error = (output - expected).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
    let error = error.to_scalar::<f32>().unwrap();
    println!("{name}: max abs error {error:e} (output range [-1, 1])");
    // 1e-4 relative to the nominal output range of 2.
    assert!(error <= 2e-4, "{name}: outputs differ by {error}");
}

#[test]
fn gray_generator_matches_pytorch() {
    let (generator, dropped, format) = convert("gray_ngf8_b3");
    assert_eq!(format, CheckpointFormat::Zip);
    assert!(dropped.is_empty(), "{dropped:?}");
    let config = generator.config();
    assert_eq!((config.ngf, config.n_blocks, config.input_nc, config.output_nc), (8, 3, 1, 1));
    check(&generator, "gray_ngf8_b3");
}

#[test]
fn rgb_legacy_generator_with_stale_running_stats_matches_pytorch() {
    let (generator, dropped, format) = convert("rgb_ngf8_b2");
    assert_eq!(format, CheckpointFormat::Legacy);
    assert!(dropped.iter().any(|n| n == "model.2.running_mean"), "{dropped:?}");
    assert!(dropped.iter().any(|n| n == "model.10.conv_block.2.running_mean"), "{dropped:?}");
    let config = generator.config();
    assert_eq!((config.ngf, config.n_blocks, config.input_nc, config.output_nc), (8, 2, 3, 3));
    check(&generator, "rgb_ngf8_b2");
}

#[test]
fn saved_safetensors_load_back() {
    let path = fixture("gray_ngf8_b3.pth");
    let checkpoint = read_checkpoint(&path).unwrap();
    let converted =
        cyclegan_weights(&checkpoint, Direction::BToA, ["NIH", "CheXpert"], "g", Provenance::default(), &path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.safetensors");
    save(&out, &converted.weights.tensors, &converted.weights.card).unwrap();
    let generator = CycleGanGenerator::load(&out, &Device::Cpu).unwrap();
    assert_eq!(generator.config().direction, Direction::BToA);
    assert_eq!(generator.card().labels, vec!["NIH".to_owned(), "CheXpert".to_owned()]);
    check(&generator, "gray_ngf8_b3");
}

#[test]
fn sizes_that_are_not_multiples_of_four_are_refused() {
    let (generator, _, _) = convert("gray_ngf8_b3");
    let x = Tensor::zeros((1, 1, 64, 62), DType::F32, &Device::Cpu).unwrap();
    let error = generator.forward(&x).err().unwrap().to_string();
    assert!(
        error.contains("generator input") && error.contains("multiples of 4") && error.contains("64x62"),
        "{error}"
    );
    let x = Tensor::zeros((1, 3, 64, 64), DType::F32, &Device::Cpu).unwrap();
    let error = generator.forward(&x).err().unwrap().to_string();
    assert!(error.contains("1 channel"), "{error}");
    let x = Tensor::zeros((64, 64), DType::F32, &Device::Cpu).unwrap();
    let error = generator.forward(&x).err().unwrap().to_string();
    assert!(error.contains("[64, 64]"), "{error}");
}

#[test]
fn missing_misshapen_and_nan_tensors_are_named() {
    let path = fixture("gray_ngf8_b3.pth");
    let mut checkpoint = read_checkpoint(&path).unwrap();
    checkpoint.tensors.retain(|(name, _)| name != "model.11.conv_block.5.bias");
    let error = cyclegan_weights(&checkpoint, Direction::AToB, ["A", "B"], "g", Provenance::default(), &path)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("model.11.conv_block.5.bias") && error.contains("missing"), "{error}");

    let mut checkpoint = read_checkpoint(&path).unwrap();
    for (name, tensor) in checkpoint.tensors.iter_mut() {
        if name == "model.4.weight" {
            *tensor = Tensor::zeros((16, 8, 3, 2), DType::F32, &Device::Cpu).unwrap();
        }
    }
    let error = cyclegan_weights(&checkpoint, Direction::AToB, ["A", "B"], "g", Provenance::default(), &path)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("model.4.weight") && error.contains("[16, 8, 3, 2]"), "{error}");

    let mut checkpoint = read_checkpoint(&path).unwrap();
    for (name, tensor) in checkpoint.tensors.iter_mut() {
        if name == "model.16.bias" {
            *tensor = (tensor.clone() * f64::NAN).unwrap();
        }
    }
    let error = cyclegan_weights(&checkpoint, Direction::AToB, ["A", "B"], "g", Provenance::default(), &path)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("model.16.bias") && error.contains("NaN"), "{error}");

    let mut checkpoint = read_checkpoint(&path).unwrap();
    let extra = Tensor::ones(16, DType::F32, &Device::Cpu).unwrap();
    checkpoint.tensors.push(("model.5.weight".into(), extra));
    let error = cyclegan_weights(&checkpoint, Direction::AToB, ["A", "B"], "g", Provenance::default(), &path)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("model.5.weight") && error.contains("unexpected"), "{error}");
}

/// Full-size junyanz resnet_9blocks (ngf 64, 1 channel) at 256 px, too large to commit: run
/// `tools/make_densenet_cyclegan_fixtures.py --full DIR` and `THORAX_DENSENET_FULL_DIR=DIR cargo test -- --ignored`.
#[test]
#[ignore]
fn full_size_resnet_9blocks_matches_pytorch() {
    let dir = PathBuf::from(std::env::var("THORAX_DENSENET_FULL_DIR").expect("set THORAX_DENSENET_FULL_DIR"));
    let path = dir.join("latest_net_G_A.pth");
    let checkpoint = read_checkpoint(&path).unwrap();
    let converted =
        cyclegan_weights(&checkpoint, Direction::AToB, ["NIH", "CheXpert"], "full", Provenance::default(), &path)
            .unwrap();
    let generator = CycleGanGenerator::from_weights(converted.weights).unwrap();
    assert_eq!((generator.config().ngf, generator.config().n_blocks), (64, 9));
    let output = generator.forward(&npy_tensor(&dir.join("cyclegan_input.npy"))).unwrap();
    let expected = npy_tensor(&dir.join("cyclegan_expected.npy"));
    let error = (output - expected).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
    let error = error.to_scalar::<f32>().unwrap();
    println!("full resnet_9blocks: max abs error {error:e} (output range [-1, 1])");
    assert!(error <= 2e-4, "outputs differ by {error}");
}
