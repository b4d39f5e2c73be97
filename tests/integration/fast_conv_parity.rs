//! The networks on the CPU fast path (`models::fast_conv`: im2col + gemm, Winograd, fused epilogues, sub-pixel
//! upscales, pooled DenseNet transitions) against the same networks on candle's own convolutions, at sizes where
//! every fast variant runs (Winograd needs 32x32 outputs). One test function: the fast-path switch is process-wide.

use candle_core::{DType, Device, Tensor};
use thorax::models::card::Provenance;
use thorax::models::cyclegan::{CycleGanConfig, CycleGanGenerator, Direction};
use thorax::models::densenet::{DenseNet121, DenseNetConfig};
use thorax::models::fast_conv;
use thorax::models::progan::{ProganArchitecture, ProganGenerator, latents_from_seed, progan_card};

/// Max |fast - candle| relative to the largest |candle|, and runs `forward` both ways.
fn fast_against_candle(forward: impl Fn() -> Tensor) -> f32 {
    fast_conv::set_fast_path_enabled(false);
    let reference = forward().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    fast_conv::set_fast_path_enabled(true);
    let fast = forward().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(fast.len(), reference.len());
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "the reference output is all zeros");
    fast.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale
}

fn uniform(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = thorax::models::densenet::SeededRng::new(seed);
    let count: usize = shape.iter().product();
    let values: Vec<f32> = (0..count).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

#[test]
fn networks_on_the_fast_path_match_candle_convolutions() {
    // ProGAN at 128 px, fmap_max 64: Winograd 3x3 from 32x32, Winograd sub-pixel from 32x32 inputs, im2col below.
    let architecture = ProganArchitecture {
        resolution_px: 128,
        latent_size: 64,
        label_size: 14,
        channels: 1,
        fmap_base: 512.0,
        fmap_decay: 1.0,
        fmap_max: 64,
    };
    let labels = (0..14).map(|i| format!("label {i}")).collect();
    let card = progan_card("parity", labels, &architecture, true, Provenance::default());
    let (generator, _) = ProganGenerator::random(card, &Device::Cpu, 3).unwrap();
    let latents = Tensor::from_vec(latents_from_seed(7, 2, 64), (2, 64), &Device::Cpu).unwrap();
    let mut one_hot = vec![0f32; 28];
    one_hot[3] = 1.0;
    one_hot[14 + 9] = 1.0;
    let labels = Tensor::from_vec(one_hot, (2, 14), &Device::Cpu).unwrap();
    let error = fast_against_candle(|| generator.forward(&latents, &labels).unwrap());
    assert!(error < 1e-4, "generator: relative error {error}");

    // DenseNet-121 layout, narrow: fused BatchNorm prologues/epilogues, pooled transitions, 7x7 stride-2 stem.
    let config = DenseNetConfig {
        growth_rate: 8,
        bn_size: 4,
        num_init_features: 16,
        block_config: vec![6, 12, 24, 16],
        num_labels: 3,
    };
    let card = config.card("parity", vec!["A".into(), "B".into(), "C".into()], Provenance::default());
    let mut weights = DenseNet121::random_weights(&card, &Device::Cpu, 5).unwrap();
    // Non-trivial BatchNorm statistics so the folded scale and shift matter.
    for (index, (name, tensor)) in weights.tensors.iter_mut().enumerate() {
        if name.ends_with("running_mean") || name.ends_with("norm0.bias") {
            *tensor = uniform(tensor.dims(), index as u64).affine(0.1, 0.0).unwrap();
        }
    }
    let net = DenseNet121::from_weights(weights).unwrap();
    let x = uniform(&[1, 3, 224, 224], 11);
    let error = fast_against_candle(|| net.pooled_features(&x).unwrap());
    assert!(error < 1e-4, "classifier features: relative error {error}");

    // CycleGAN with sub-pixel transposed convolutions, stride-2 3x3, reflection-padded 7x7 and 3x3.
    let config = CycleGanConfig {
        ngf: 8,
        n_blocks: 2,
        input_nc: 1,
        output_nc: 1,
        use_dropout: false,
        direction: Direction::AToB,
    };
    let card = config.card("parity", ["A", "B"], Provenance::default());
    let mut weights = CycleGanGenerator::random_weights(&card, &Device::Cpu, 9).unwrap();
    for (index, (name, tensor)) in weights.tensors.iter_mut().enumerate() {
        if name.ends_with(".bias") {
            *tensor = uniform(tensor.dims(), 100 + index as u64).affine(0.1, 0.0).unwrap();
        }
    }
    let net = CycleGanGenerator::from_weights(weights).unwrap();
    let x = uniform(&[1, 1, 132, 136], 13);
    let error = fast_against_candle(|| net.forward(&x).unwrap());
    assert!(error < 1e-4, "cyclegan: relative error {error}");
    assert_eq!(net.forward(&x).unwrap().dtype(), DType::F32);
}
