//! FID Inception-v3 parity with pytorch-fid: fixtures from tools/make_inception_fixture.py, which runs
//! pytorch-fid's own `InceptionV3` (resize, normalisation, FID blocks) with every tensor filled by a formula that
//! `thorax::models::inception::formula_weights` reproduces (the published 95 MB weights cannot be a fixture).

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{Device, Tensor};
use thorax::convert::npy::{read_npy, read_npy_f32};
use thorax::convert::pytorch::{Checkpoint, CheckpointFormat, inception_weights};
use thorax::imaging::{BitDepth, GrayImage};
use thorax::metrics::features::FeatureMatrix;
use thorax::metrics::fid::frechet_distance;
use thorax::models::card::Provenance;
use thorax::models::inception::{FidInceptionV3, POOL3_FEATURES, formula_weights, tensor_shapes};
use thorax::models::inception_embedding::{InceptionEmbedder, fid_inception_input};
use thorax::models::weights::save;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inception").join(name)
}

/// The fixture's uint8 image `index` as a gray image, as PIL decodes an 8-bit PNG.
fn image(index: usize) -> GrayImage {
    let array = read_npy(&fixture(&format!("images_u8_{index}.npy"))).unwrap();
    let [height, width] = array.shape[..] else { panic!("image shape {:?}", array.shape) };
    GrayImage::new(width, height, BitDepth::U8, array.to_f32()).unwrap()
}

fn npy(name: &str) -> (Vec<usize>, Vec<f32>) {
    read_npy_f32(&fixture(name)).unwrap()
}

fn input_of(image: &GrayImage) -> Tensor {
    fid_inception_input(&image.to_unit_range(), image.width_px(), image.height_px(), &Device::Cpu).unwrap()
}

fn max_abs_error(actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len());
    actual.iter().zip(expected).map(|(a, e)| (a - e).abs()).fold(0.0, f32::max)
}

fn range(values: &[f32]) -> f32 {
    let (lo, hi) = values.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    hi - lo
}

fn network() -> FidInceptionV3 {
    FidInceptionV3::from_weights(formula_weights(&Device::Cpu).unwrap()).unwrap()
}

#[test]
fn resize_and_scaling_match_pytorch_fid() {
    for index in [0, 2] {
        let input = input_of(&image(index));
        assert_eq!(input.dims(), &[1, 3, 299, 299]);
        let (shape, expected) = npy(&format!("resized_{index}.npy"));
        assert_eq!(shape, vec![299, 299]);
        let channels = input.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
        for channel in &channels {
            let actual: Vec<f32> = channel.iter().flatten().copied().collect();
            let error = max_abs_error(&actual, &expected);
            println!("image {index}: resized input max abs error {error:e}");
            assert!(error <= 1e-6, "image {index}: resized input differs by {error}");
        }
    }
}

#[test]
fn pool3_features_and_blocks_match_pytorch_fid() {
    let net = network();
    let (_, pool3) = npy("pool3.npy");
    let pool3_range = range(&pool3);
    let block_means: Vec<(Vec<usize>, Vec<f32>)> = (0..3).map(|b| npy(&format!("block{b}_mean.npy"))).collect();
    // One image per forward pass (as the fixture ran) and all three in one batch must both match.
    let inputs: Vec<Tensor> = (0..3).map(|i| input_of(&image(i))).collect();
    let batched = net.pool3(&Tensor::cat(&inputs, 0).unwrap()).unwrap().to_vec2::<f32>().unwrap();
    for (index, input) in inputs.iter().enumerate() {
        let blocks = net.blocks(input).unwrap();
        for (block, (shape, expected)) in block_means.iter().enumerate() {
            let channels = shape[1];
            let means = blocks[block].flatten_from(2).unwrap().mean(2).unwrap().to_vec2::<f32>().unwrap();
            let expected_row = &expected[index * channels..(index + 1) * channels];
            let error = max_abs_error(&means[0], expected_row);
            let tolerance = 1e-4 * range(expected);
            println!("image {index} block {block}: channel means max abs error {error:e} (tolerance {tolerance:e})");
            assert!(error <= tolerance, "image {index} block {block}: means differ by {error}");
        }
        let features = blocks[3].to_vec2::<f32>().unwrap();
        assert_eq!(features[0].len(), POOL3_FEATURES);
        let expected_row = &pool3[index * POOL3_FEATURES..(index + 1) * POOL3_FEATURES];
        let error = max_abs_error(&features[0], expected_row);
        println!("image {index}: pool3 max abs error {error:e}, output range {pool3_range}");
        assert!(error <= 1e-4 * pool3_range, "image {index}: pool3 differs by {error} (range {pool3_range})");
        let error = max_abs_error(&batched[index], expected_row);
        assert!(error <= 1e-4 * pool3_range, "image {index} in a batch: pool3 differs by {error}");
    }
}

fn formula_checkpoint() -> Checkpoint {
    let weights = formula_weights(&Device::Cpu).unwrap();
    let mut tensors: Vec<(String, Tensor)> =
        tensor_shapes().into_iter().map(|(name, _)| (name.clone(), weights.tensors[&name].clone())).collect();
    // The published file also holds the 1008-way classifier, unused for FID.
    tensors.push(("fc.weight".to_owned(), Tensor::zeros((1008, 2048), candle_core::DType::F32, &Device::Cpu).unwrap()));
    tensors.push(("fc.bias".to_owned(), Tensor::zeros(1008, candle_core::DType::F32, &Device::Cpu).unwrap()));
    Checkpoint {
        format: CheckpointFormat::Zip,
        container: "state_dict".to_owned(),
        tensors,
        skipped: vec!["Conv2d_1a_3x3.bn.num_batches_tracked".to_owned()],
    }
}

#[test]
fn conversion_drops_the_classifier_and_names_missing_or_misshapen_tensors() {
    let path = Path::new("pt_inception-test.pth");
    let converted = inception_weights(&formula_checkpoint(), "test", Provenance::default(), path).unwrap();
    assert!(converted.dropped.iter().any(|n| n == "fc.weight"), "{:?}", converted.dropped);
    assert_eq!(converted.weights.tensors.len(), tensor_shapes().len());
    FidInceptionV3::from_weights(converted.weights).unwrap();

    let mut missing = formula_checkpoint();
    missing.tensors.retain(|(name, _)| name != "Mixed_7b.branch3x3_2a.bn.running_mean");
    let error = inception_weights(&missing, "test", Provenance::default(), path).err().unwrap().to_string();
    assert!(error.contains("Mixed_7b.branch3x3_2a.bn.running_mean") && error.contains("missing"), "{error}");

    let mut misshapen = formula_checkpoint();
    for (name, tensor) in &mut misshapen.tensors {
        if name == "Mixed_6b.branch7x7_2.conv.weight" {
            // A 7x1 kernel where pytorch-fid has 1x7.
            *tensor = tensor.reshape((128, 128, 7, 1)).unwrap();
        }
    }
    let error = inception_weights(&misshapen, "test", Provenance::default(), path).err().unwrap().to_string();
    assert!(error.contains("Mixed_6b.branch7x7_2.conv.weight") && error.contains("[128, 128, 1, 7]"), "{error}");

    let mut imagenet = formula_checkpoint();
    let aux = Tensor::zeros(128, candle_core::DType::F32, &Device::Cpu).unwrap();
    imagenet.tensors.push(("AuxLogits.conv0.bn.weight".to_owned(), aux));
    let error = inception_weights(&imagenet, "test", Provenance::default(), path).err().unwrap().to_string();
    assert!(error.contains("AuxLogits") && error.contains("ImageNet"), "{error}");
}

#[test]
fn safetensors_with_a_wrong_shape_tensor_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut weights = formula_weights(&Device::Cpu).unwrap();
    let bad = Tensor::zeros(7, candle_core::DType::F32, &Device::Cpu).unwrap();
    weights.tensors.insert("Mixed_5c.branch_pool.bn.bias".to_owned(), bad);
    let path = dir.path().join("bad.safetensors");
    save(&path, &weights.tensors, &weights.card).unwrap();
    let error = InceptionEmbedder::load(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(error.contains("Mixed_5c.branch_pool.bn.bias") && error.contains("[64]"), "{error}");
}

fn thorax(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_thorax")).args(args).output().unwrap()
}

fn write_png(image: &GrayImage, path: &Path) {
    let bytes: Vec<u8> = image.pixels().iter().map(|&v| v as u8).collect();
    image::GrayImage::from_raw(image.width_px() as u32, image.height_px() as u32, bytes).unwrap().save(path).unwrap();
}

#[test]
fn metrics_fid_with_inception_features_reports_fid_of_pytorch_fid_features() {
    let dir = tempfile::tempdir().unwrap();
    let weights = formula_weights(&Device::Cpu).unwrap();
    let weights_path = dir.path().join("formula_inception.safetensors");
    save(&weights_path, &weights.tensors, &weights.card).unwrap();
    let (real, fake) = (dir.path().join("real"), dir.path().join("fake"));
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(&fake).unwrap();
    for (folder, indices) in [(&real, [0, 1]), (&fake, [1, 2])] {
        for index in indices {
            write_png(&image(index), &folder.join(format!("img{index}.png")));
        }
    }
    let (real_arg, fake_arg, weights_arg) =
        (real.to_str().unwrap(), fake.to_str().unwrap(), weights_path.to_str().unwrap());
    let output = thorax(&[
        "metrics",
        "fid",
        "--real",
        real_arg,
        "--fake",
        fake_arg,
        "--features",
        "inception",
        "--inception-weights",
        weights_arg,
        "--device",
        "cpu",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("not comparable"), "formula weights must be flagged: {stderr}");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["metric"], "FID");
    assert_eq!(result["dim"], POOL3_FEATURES);
    let sha256 = thorax::models::registry::sha256_hex(&std::fs::read(&weights_path).unwrap());
    assert_eq!(result["model_sha256"], sha256.as_str());

    // The same distance from pytorch-fid's own features of the same images.
    let (_, pool3) = npy("pool3.npy");
    let row = |i: usize| pool3[i * POOL3_FEATURES..(i + 1) * POOL3_FEATURES].to_vec();
    let expected = frechet_distance(
        &FeatureMatrix::from_rows(&[row(0), row(1)]).unwrap(),
        &FeatureMatrix::from_rows(&[row(1), row(2)]).unwrap(),
    )
    .unwrap()
    .value;
    let actual = result["value"].as_f64().unwrap();
    println!("FID through the CLI {actual}, from pytorch-fid's features {expected}");
    assert!((actual - expected).abs() <= 1e-3 * expected.abs().max(1.0), "{actual} vs {expected}");

    let kid = thorax(&[
        "metrics",
        "kid",
        "--real",
        real_arg,
        "--fake",
        fake_arg,
        "--features",
        "inception",
        "--inception-weights",
        weights_arg,
        "--subsets",
        "3",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(kid.status.success(), "{}", String::from_utf8_lossy(&kid.stderr));
    let kid: serde_json::Value = serde_json::from_slice(&kid.stdout).unwrap();
    assert_eq!(kid["model_sha256"], sha256.as_str());
    assert!(kid["mean"].as_f64().unwrap().is_finite());
}

#[test]
fn metrics_fid_without_inception_weights_says_where_they_come_from() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    let output = thorax(&["metrics", "fid", "--real", folder, "--fake", folder, "--features", "inception"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--inception-weights"), "{stderr}");
    assert!(stderr.contains("pt_inception-2015-12-05-6726825d.pth") && stderr.contains("github.com"), "{stderr}");
}
