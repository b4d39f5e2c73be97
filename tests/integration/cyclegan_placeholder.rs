//! The UI's untrained CycleGAN placeholder (assets/models/cyclegan-untrained.safetensors): ngf 16, 6 blocks,
//! 1 channel, NIH to CheXpert direction, junyanz N(0, 0.02) initialisation, stored as f16.
//! Regenerate with `THORAX_WRITE_PLACEHOLDERS=1 cargo test --test cyclegan_placeholder`; the test checks the committed
//! file is exactly what this code makes.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use thorax::models::card::Provenance;
use thorax::models::cyclegan::{CycleGanConfig, CycleGanGenerator, Direction};

const SEED: u64 = 2020;

fn placeholder_tensors() -> (thorax::models::card::ModelCard, HashMap<String, Tensor>) {
    let config = CycleGanConfig {
        ngf: 16,
        n_blocks: 6,
        input_nc: 1,
        output_nc: 1,
        use_dropout: false,
        direction: Direction::AToB,
    };
    let provenance = Provenance {
        source: format!("random initialisation (junyanz normal 0.02), seed {SEED}"),
        training_data: Some("none: untrained".to_owned()),
        licence: Some("MIT OR Apache-2.0".to_owned()),
        training_command: Some("THORAX_WRITE_PLACEHOLDERS=1 cargo test --test cyclegan_placeholder".to_owned()),
        ..Provenance::default()
    };
    let mut card = config.card("CycleGAN NIH to CheXpert (untrained placeholder)", ["NIH", "CheXpert"], provenance);
    card.untrained = true;
    let weights = CycleGanGenerator::random_weights(&card, &Device::Cpu, SEED).unwrap();
    let tensors = weights.tensors.into_iter().map(|(k, v)| (k, v.to_dtype(DType::F16).unwrap())).collect();
    (card, tensors)
}

#[test]
fn committed_placeholder_is_reproducible_and_untrained() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/cyclegan-untrained.safetensors");
    let (card, tensors) = placeholder_tensors();
    if std::env::var_os("THORAX_WRITE_PLACEHOLDERS").is_some() {
        thorax::models::weights::save(&path, &tensors, &card).unwrap();
    }
    let generator = CycleGanGenerator::load(&path, &Device::Cpu).unwrap();
    assert!(generator.card().untrained && generator.card().name.contains("untrained placeholder"));
    assert_eq!(generator.card(), &card);
    let loaded =
        thorax::models::weights::Weights::load(&path, thorax::models::card::ModelKind::CycleganGenerator, &Device::Cpu)
            .unwrap();
    for (name, tensor) in &tensors {
        let expected = tensor.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let found = loaded.tensors[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(expected, found, "{name}");
    }
    let x = Tensor::zeros((1, 1, 32, 48), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(generator.forward(&x).unwrap().dims(), &[1, 1, 32, 48]);
}
