//! The UI's untrained DenseNet placeholder (assets/models/densenet121-untrained.safetensors): a narrow DenseNet
//! (growth 12, stem 24, blocks 6/12/24/16, 14 NIH labels) with torchvision-style random initialisation, stored as f16.
//! Regenerate with `THORAX_WRITE_PLACEHOLDERS=1 cargo test --test densenet_placeholder`; the test checks the committed
//! file is exactly what this code makes.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use thorax::models::card::Provenance;
use thorax::models::densenet::{DenseNet121, DenseNetConfig};
use thorax::models::labels::NIH_CLASSIFIER_LABELS;

const SEED: u64 = 2020;

fn placeholder_tensors() -> (thorax::models::card::ModelCard, HashMap<String, Tensor>) {
    let config = DenseNetConfig {
        growth_rate: 12,
        bn_size: 4,
        num_init_features: 24,
        block_config: vec![6, 12, 24, 16],
        num_labels: NIH_CLASSIFIER_LABELS.len(),
    };
    let provenance = Provenance {
        source: format!("random initialisation (torchvision scheme), seed {SEED}"),
        training_data: Some("none: untrained".to_owned()),
        licence: Some("MIT OR Apache-2.0".to_owned()),
        training_command: Some("THORAX_WRITE_PLACEHOLDERS=1 cargo test --test densenet_placeholder".to_owned()),
        ..Provenance::default()
    };
    let labels = NIH_CLASSIFIER_LABELS.iter().map(|l| (*l).to_owned()).collect();
    let mut card = config.card("DenseNet narrow (untrained placeholder)", labels, provenance);
    card.untrained = true;
    let weights = DenseNet121::random_weights(&card, &Device::Cpu, SEED).unwrap();
    let tensors = weights.tensors.into_iter().map(|(k, v)| (k, v.to_dtype(DType::F16).unwrap())).collect();
    (card, tensors)
}

#[test]
fn committed_placeholder_is_reproducible_and_untrained() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/densenet121-untrained.safetensors");
    let (card, tensors) = placeholder_tensors();
    if std::env::var_os("THORAX_WRITE_PLACEHOLDERS").is_some() {
        thorax::models::weights::save(&path, &tensors, &card).unwrap();
    }
    let net = DenseNet121::load(&path, &Device::Cpu).unwrap();
    assert!(net.card().untrained && net.card().name.contains("untrained placeholder"));
    assert_eq!(net.card(), &card);
    let loaded = thorax::models::weights::Weights::load(
        &path,
        thorax::models::card::ModelKind::Densenet121Classifier,
        &Device::Cpu,
    )
    .unwrap();
    for (name, tensor) in &tensors {
        let expected = tensor.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let found = loaded.tensors[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(expected, found, "{name}");
    }
    assert!(std::fs::metadata(&path).unwrap().len() < 8 * 1024 * 1024);
    let x = Tensor::zeros((1, 3, 224, 224), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(net.forward(&x).unwrap().dims(), &[1, 14]);
}
