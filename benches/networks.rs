//! Criterion benchmarks of network inference at small sizes (so they run in seconds): one convolution layer through
//! `fast_conv` and through candle's conv2d, and the three networks with narrow random weights. Full-size timings
//! against PyTorch: `thorax bench` and tools/bench_pytorch.py (BENCHMARKS.md).

use candle_core::{DType, Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use thorax::models::card::Provenance;
use thorax::models::cyclegan::{CycleGanConfig, CycleGanGenerator, Direction};
use thorax::models::densenet::{DenseNet121, DenseNetConfig};
use thorax::models::fast_conv;
use thorax::models::progan::{ProganArchitecture, ProganGenerator, progan_card};

fn uniform(shape: &[usize]) -> Tensor {
    Tensor::rand(-1f32, 1f32, shape, &Device::Cpu).expect("random tensor")
}

fn bench_conv_layer(c: &mut Criterion) {
    // A 3x3 layer of the generator's 64 px stage: 64 -> 64 maps at 64x64.
    let x = uniform(&[1, 64, 64, 64]);
    let weight = uniform(&[64, 64, 3, 3]);
    let bias = uniform(&[64]);
    c.bench_function("conv3x3 64->64 @64x64 fast_conv", |b| {
        b.iter(|| fast_conv::conv2d_nchw(&x, &weight, Some(&bias), 1, 1).expect("conv"))
    });
    c.bench_function("conv3x3 64->64 @64x64 candle conv2d", |b| {
        b.iter(|| {
            x.conv2d(&weight, 1, 1, 1, 1).and_then(|y| y.broadcast_add(&bias.reshape((1, 64, 1, 1))?)).expect("conv")
        })
    });
    // A 3x3 layer of the 64 px classifier's third dense block in training: batch 16 of 4x4 maps, 48 -> 12, its
    // forward and weight gradient (maps this narrow are packed by gathering).
    let x = uniform(&[16, 48, 4, 4]);
    let weight = uniform(&[12, 48, 3, 3]);
    let grad_output = uniform(&[16, 12, 4, 4]);
    c.bench_function("conv3x3 48->12 @4x4 batch 16, forward + weight gradient, fast_conv", |b| {
        b.iter(|| {
            fast_conv::conv2d_nchw(&x, &weight, None, 1, 1).expect("conv");
            fast_conv::conv2d_weight_grad(&x, &grad_output, (3, 3), 1, 1).expect("weight gradient")
        })
    });
}

fn bench_generator(c: &mut Criterion) {
    let architecture = ProganArchitecture {
        resolution_px: 64,
        latent_size: 128,
        label_size: 14,
        channels: 1,
        fmap_base: 1024.0,
        fmap_decay: 1.0,
        fmap_max: 128,
    };
    let labels = (0..14).map(|i| format!("label {i}")).collect();
    let card = progan_card("bench", labels, &architecture, true, Provenance::default());
    let (generator, _) = ProganGenerator::random(card, &Device::Cpu, 1).expect("generator");
    let latents = uniform(&[1, 128]);
    let labels = Tensor::zeros((1, 14), DType::F32, &Device::Cpu).expect("labels");
    c.bench_function("ProGAN generator 64 px fmap_max 128, batch 1", |b| {
        b.iter(|| generator.forward(&latents, &labels).expect("forward"))
    });
}

fn bench_classifier(c: &mut Criterion) {
    let config = DenseNetConfig {
        growth_rate: 8,
        bn_size: 4,
        num_init_features: 16,
        block_config: vec![6, 12, 24, 16],
        num_labels: 14,
    };
    let labels = (0..14).map(|i| format!("label {i}")).collect();
    let card = config.card("bench", labels, Provenance::default());
    let net = DenseNet121::random(&card, &Device::Cpu, 1).expect("classifier");
    let x = uniform(&[1, 3, 224, 224]);
    c.bench_function("DenseNet-121 layout growth 8, 224 px, batch 1", |b| b.iter(|| net.forward(&x).expect("forward")));
}

fn bench_cyclegan(c: &mut Criterion) {
    let config = CycleGanConfig {
        ngf: 8,
        n_blocks: 9,
        input_nc: 1,
        output_nc: 1,
        use_dropout: false,
        direction: Direction::AToB,
    };
    let card = config.card("bench", ["A", "B"], Provenance::default());
    let net = CycleGanGenerator::random(&card, &Device::Cpu, 1).expect("cyclegan");
    let x = uniform(&[1, 1, 128, 128]);
    c.bench_function("CycleGAN resnet_9blocks ngf 8, 128 px, batch 1", |b| {
        b.iter(|| net.forward(&x).expect("forward"))
    });
}

criterion_group! {
    name = networks;
    config = Criterion::default().sample_size(10);
    targets = bench_conv_layer, bench_generator, bench_classifier, bench_cyclegan
}
criterion_main!(networks);
