//! Parity of the ProGAN generator and `convert progan-tf` against TensorFlow (fixtures from
//! tools/make_progan_fixtures.py: a reduced-width 64 px G_paper evaluated with `tf.nn.conv2d_transpose`).

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use thorax::convert::npy::read_npy_f32;
use thorax::convert::pickle::{self, Value};
use thorax::convert::progan_tf::{GanDataset, convert_progan_file, sha256_hex};
use thorax::models::labels::NIH_GAN_LABELS;
use thorax::models::progan::ProganGenerator;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/progan").join(name)
}

fn inputs() -> (Tensor, Tensor) {
    let (latent_shape, latents) = read_npy_f32(&fixture("inputs_latents.npy")).unwrap();
    let (label_shape, labels) = read_npy_f32(&fixture("inputs_labels.npy")).unwrap();
    (
        Tensor::from_vec(latents, latent_shape, &Device::Cpu).unwrap(),
        Tensor::from_vec(labels, label_shape, &Device::Cpu).unwrap(),
    )
}

/// Max |ours - TF| relative to the reference output's range.
fn relative_error(output: &Tensor) -> f32 {
    let (shape, reference) = read_npy_f32(&fixture("reference_output.npy")).unwrap();
    assert_eq!(output.dims(), shape.as_slice());
    let ours = output.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let max = reference.iter().copied().fold(f32::MIN, f32::max);
    let min = reference.iter().copied().fold(f32::MAX, f32::min);
    let error = ours.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    error / (max - min)
}

fn convert_and_run(pkl: &str) -> f32 {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.safetensors");
    convert_progan_file(&fixture(pkl), &out, Some(GanDataset::Nih)).unwrap();
    let generator = ProganGenerator::load(&out, &Device::Cpu).unwrap();
    let (latents, labels) = inputs();
    relative_error(&generator.forward(&latents, &labels).unwrap())
}

#[test]
fn matches_tensorflow_numpy1_protocol2() {
    let error = convert_and_run("progan64_np1_p2.pkl");
    assert!(error <= 1e-4, "relative error {error}");
}

#[test]
fn matches_tensorflow_numpy1_protocol4() {
    let error = convert_and_run("progan64_np1_p4.pkl");
    assert!(error <= 1e-4, "relative error {error}");
}

#[test]
fn matches_tensorflow_numpy2_protocol5() {
    let error = convert_and_run("progan64_np2_p5.pkl");
    assert!(error <= 1e-4, "relative error {error}");
}

#[test]
fn each_image_is_independent_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.safetensors");
    convert_progan_file(&fixture("progan64_np1_p4.pkl"), &out, Some(GanDataset::Nih)).unwrap();
    let generator = ProganGenerator::load(&out, &Device::Cpu).unwrap();
    let (latents, labels) = inputs();
    let batch = generator.forward(&latents, &labels).unwrap();
    let single = generator.forward(&latents.narrow(0, 2, 1).unwrap(), &labels.narrow(0, 2, 1).unwrap()).unwrap();
    let difference = (batch.narrow(0, 2, 1).unwrap() - single).unwrap().abs().unwrap();
    let max = difference.flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    assert!(max < 1e-5, "{max}");
}

#[test]
fn card_records_architecture_labels_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.safetensors");
    let converted = convert_progan_file(&fixture("progan64_np1_p4.pkl"), &out, Some(GanDataset::Nih)).unwrap();
    let card = ProganGenerator::load(&out, &Device::Cpu).unwrap().card().clone();
    assert_eq!(card, converted.card);
    assert_eq!(card.labels, NIH_GAN_LABELS.map(String::from).to_vec());
    assert_eq!((card.resolution, card.channels, card.untrained), (64, 1, false));
    assert_eq!(card.hyper["latent_size"], 32.0);
    assert_eq!(card.hyper["fmap_base"], 256.0);
    assert_eq!(card.hyper["fmap_max"], 32.0);
    assert_eq!(card.hyper["wscale_applied"], 1.0);
    let bytes = std::fs::read(fixture("progan64_np1_p4.pkl")).unwrap();
    assert_eq!(card.provenance.source_sha256, Some(sha256_hex(&bytes)));
    assert!(card.provenance.source.contains("progan64_np1_p4.pkl"));
    assert_eq!(card.provenance.training_data.as_deref(), Some("NIH ChestX-ray14"));
}

#[test]
fn stored_weights_are_the_pickled_ones_times_wscale() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.safetensors");
    let converted = convert_progan_file(&fixture("progan64_np1_p2.pkl"), &out, None).unwrap();
    let root = pickle::parse_pickle(&std::fs::read(fixture("progan64_np1_p2.pkl")).unwrap()).unwrap();
    let gs = &root.as_sequence().unwrap()[2];
    let Value::Object { state: Some(state), .. } = gs else { panic!("Gs has no state") };
    let variables = state.dict_get("variables").unwrap().as_sequence().unwrap();
    let raw = |name: &str| {
        let pair = variables.iter().find(|v| v.as_sequence().unwrap()[0].as_str() == Some(name)).unwrap();
        pickle::ndarray_from_value(&pair.as_sequence().unwrap()[1]).unwrap()
    };
    // (name, gain / sqrt(fan_in)) for this architecture: Dense fan-in 32 + 14, 32x32 Conv0_up fan-in 9 * 32 (in)
    let sqrt2 = std::f64::consts::SQRT_2;
    for (name, scale) in [
        ("4x4/Dense/weight", sqrt2 / 4.0 / 46f64.sqrt()),
        ("32x32/Conv0_up/weight", sqrt2 / 288f64.sqrt()),
        ("64x64/Conv1/weight", sqrt2 / 72f64.sqrt()),
        ("ToRGB_lod0/weight", 1.0 / 8f64.sqrt()),
        ("16x16/Conv1/bias", 1.0),
    ] {
        let original = raw(name);
        let stored = converted.tensors[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(converted.tensors[name].dims(), original.shape.as_slice(), "{name}");
        for (s, o) in stored.iter().zip(&original.data) {
            assert_eq!(*s, o * scale as f32, "{name}");
        }
    }
    // Without --dataset a 14-label network gets the CheXpert order.
    assert_eq!(converted.card.labels[0], "No Finding");
    assert!(!converted.tensors.contains_key("lod"));
}
