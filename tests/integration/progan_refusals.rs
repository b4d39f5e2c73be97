//! Every malformed ProGAN pickle, weights file or input gives its own clear error, never a panic.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use thorax::convert::pickle::PickleError;
use thorax::convert::progan_tf::{GanDataset, ProganConvertError, convert_progan_file, convert_progan_pickle};
use thorax::models::card::ModelKind;
use thorax::models::error::ModelError;
use thorax::models::progan::{ProganArchitecture, ProganGenerator, progan_card};
use thorax::models::weights::{Weights, save};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/progan").join(name)
}

fn convert(name: &str) -> ProganConvertError {
    let path = fixture(name);
    let bytes = std::fs::read(&path).unwrap();
    match convert_progan_pickle(&bytes, &path, Some(GanDataset::Chexpert)) {
        Ok(_) => panic!("{name} was accepted"),
        Err(error) => error,
    }
}

#[test]
fn refuses_a_file_that_is_not_a_pickle() {
    let error = convert("refuse_not_pickle.pkl");
    assert!(matches!(error, ProganConvertError::Pickle { source: PickleError::NotPickle, .. }));
    assert!(error.to_string().contains("not a readable Python pickle"), "{error}");
}

#[test]
fn refuses_a_pickle_that_is_not_a_network_tuple() {
    let error = convert("refuse_not_network.pkl");
    assert!(matches!(error, ProganConvertError::NotProgan { .. }));
    assert!(error.to_string().contains("expected the tuple (G, D, Gs)"), "{error}");
}

#[test]
fn refuses_another_build_function() {
    let error = convert("refuse_build_func.pkl");
    assert!(error.to_string().contains("`G_mnist`, expected `G_paper`"), "{error}");
}

#[test]
fn refuses_lod_other_than_zero() {
    let error = convert("refuse_lod.pkl");
    assert!(matches!(error, ProganConvertError::LodNotZero { lod, .. } if lod == 1.5), "{error}");
    assert!(error.to_string().contains("lod 1.5"), "{error}");
}

#[test]
fn refuses_missing_variable_by_name() {
    let error = convert("refuse_missing.pkl");
    assert!(matches!(&error, ProganConvertError::MissingVariable { name, .. } if name == "8x8/Conv1/weight"));
    assert!(error.to_string().contains("no variable `8x8/Conv1/weight`"), "{error}");
}

#[test]
fn refuses_wrong_shape_by_name() {
    let error = convert("refuse_shape.pkl");
    match &error {
        ProganConvertError::WrongShape { name, expected, found, .. } => {
            assert_eq!(name, "8x8/Conv0_up/weight");
            assert_eq!(expected, &vec![3, 3, 2, 4]);
            assert_eq!(found, &vec![3, 3, 4, 5]);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn refuses_nan_variable_by_name() {
    let error = convert("refuse_nan.pkl");
    assert!(matches!(&error, ProganConvertError::NonFinite { name, .. } if name == "4x4/Conv/weight"), "{error}");
}

#[test]
fn refuses_unfused_upscale() {
    let error = convert("refuse_fused.pkl");
    assert!(matches!(&error, ProganConvertError::UnsupportedSetting { setting, .. } if setting == "fused_scale"));
}

#[test]
fn refuses_truncated_pickles_cleanly() {
    let path = fixture("progan64_np1_p4.pkl");
    let bytes = std::fs::read(&path).unwrap();
    for end in [0, 1, 2, 100, 1000, bytes.len() / 2, bytes.len() - 1] {
        let error = convert_progan_pickle(&bytes[..end], &path, None).err().unwrap();
        assert!(matches!(error, ProganConvertError::Pickle { .. }), "{end}: {error}");
    }
}

#[test]
fn refuses_missing_input_file() {
    let dir = tempfile::tempdir().unwrap();
    let error =
        convert_progan_file(&dir.path().join("absent.pkl"), &dir.path().join("o.safetensors"), None).err().unwrap();
    assert!(matches!(error, ProganConvertError::Read { .. }));
}

// ---- the generator: weights files and inputs ----

fn small_card() -> thorax::models::card::ModelCard {
    let architecture = ProganArchitecture {
        resolution_px: 16,
        latent_size: 8,
        label_size: 3,
        channels: 1,
        fmap_base: 64.0,
        fmap_decay: 1.0,
        fmap_max: 8,
    };
    let labels = vec!["A".to_owned(), "B".to_owned(), "C".to_owned()];
    progan_card("test", labels, &architecture, true, Default::default())
}

fn saved_with(
    edit: impl FnOnce(&mut std::collections::HashMap<String, Tensor>),
) -> Result<ProganGenerator, ModelError> {
    let (_, mut tensors) = ProganGenerator::random(small_card(), &Device::Cpu, 3).unwrap();
    edit(&mut tensors);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.safetensors");
    save(&path, &tensors, &small_card()).unwrap();
    ProganGenerator::load(&path, &Device::Cpu)
}

#[test]
fn random_generator_is_deterministic_and_saves_loads() {
    let (generator, _) = ProganGenerator::random(small_card(), &Device::Cpu, 3).unwrap();
    let reloaded = saved_with(|_| {}).unwrap();
    let latents = Tensor::ones((2, 8), DType::F32, &Device::Cpu).unwrap();
    let labels = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
    let a = generator.forward(&latents, &labels).unwrap();
    let b = reloaded.forward(&latents, &labels).unwrap();
    assert_eq!(a.dims(), &[2, 1, 16, 16]);
    let difference = (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
    assert_eq!(difference.to_scalar::<f32>().unwrap(), 0.0);
    assert!(reloaded.card().untrained);
}

#[test]
fn refuses_wrong_latent_size_and_label_count() {
    let (generator, _) = ProganGenerator::random(small_card(), &Device::Cpu, 3).unwrap();
    let good_latents = Tensor::zeros((2, 8), DType::F32, &Device::Cpu).unwrap();
    let good_labels = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
    let bad_latents = Tensor::zeros((2, 9), DType::F32, &Device::Cpu).unwrap();
    let bad_labels = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
    let one_label_row = Tensor::zeros((1, 3), DType::F32, &Device::Cpu).unwrap();
    let flat = Tensor::zeros(8, DType::F32, &Device::Cpu).unwrap();
    let cases = [
        (&bad_latents, &good_labels, "latents"),
        (&flat, &good_labels, "latents"),
        (&good_latents, &bad_labels, "labels"),
        (&good_latents, &one_label_row, "labels"),
    ];
    for (latents, labels, argument) in cases {
        match generator.forward(latents, labels) {
            Err(ModelError::BadInput { argument: a, reason }) => {
                assert_eq!(a, argument, "{reason}");
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("accepted {:?} {:?}", latents.dims(), labels.dims()),
        }
    }
}

#[test]
fn refuses_nan_weight() {
    let error = saved_with(|tensors| {
        let mut values = tensors["8x8/Conv1/weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        values[5] = f32::NAN;
        tensors.insert("8x8/Conv1/weight".into(), Tensor::from_vec(values, (3, 3, 8, 8), &Device::Cpu).unwrap());
    })
    .err()
    .unwrap();
    assert!(matches!(&error, ModelError::NonFinite { name } if name == "8x8/Conv1/weight"), "{error}");
}

#[test]
fn refuses_missing_tensor() {
    let error = saved_with(|tensors| {
        tensors.remove("16x16/Conv0_up/bias");
    })
    .err()
    .unwrap();
    assert!(matches!(&error, ModelError::MissingTensor { name } if name == "16x16/Conv0_up/bias"), "{error}");
}

#[test]
fn refuses_wrong_shape_tensor() {
    let error = saved_with(|tensors| {
        tensors.insert("4x4/Conv/weight".into(), Tensor::zeros((3, 3, 8, 7), DType::F32, &Device::Cpu).unwrap());
    })
    .err()
    .unwrap();
    assert!(matches!(&error, ModelError::WrongShape { name, .. } if name == "4x4/Conv/weight"), "{error}");
}

#[test]
fn refuses_other_model_kind_and_bad_card() {
    let mut card = small_card();
    card.kind = ModelKind::CycleganGenerator;
    let (_, tensors) = ProganGenerator::random(small_card(), &Device::Cpu, 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.safetensors");
    save(&path, &tensors, &card).unwrap();
    assert!(matches!(ProganGenerator::load(&path, &Device::Cpu), Err(ModelError::WrongKind { .. })));
    let mut card = small_card();
    card.resolution = 48;
    let error = ProganGenerator::from_weights(Weights { card, tensors }).err().unwrap();
    assert!(error.to_string().contains("resolution 48"), "{error}");
}
