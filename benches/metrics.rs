//! Criterion benchmarks of the metrics at the sizes of the study: MS-SSIM of 256x256 pairs (per pair; x1,000 for
//! the 1,000-pair figure), Frechet distance of two 10,000 x 1,024 feature sets, and 10,000 bootstrap resamples of
//! 10,000 cases. Python references: tools/bench_metrics_python.py.

use criterion::{Criterion, criterion_group, criterion_main};
use thorax::metrics::bootstrap::{bootstrap_auc, thorax_gan_protocol};
use thorax::metrics::features::FeatureMatrix;
use thorax::metrics::fid::frechet_distance;
use thorax::metrics::msssim::{GrayImage, MsSsimMode, ms_ssim};
use thorax::metrics::rng::SeededRng;

fn smooth_image(rng: &mut SeededRng, side: usize) -> GrayImage {
    let (fx, fy, phase) = (rng.unit_f64() * 0.1, rng.unit_f64() * 0.1, rng.unit_f64() * 6.0);
    let pixels = (0..side * side)
        .map(|i| {
            let (r, c) = ((i / side) as f64, (i % side) as f64);
            let noise = rng.unit_f64() * 40.0;
            (100.0 + 80.0 * (r * fy + phase).sin() * (c * fx).cos() + noise).round() as f32
        })
        .collect();
    GrayImage::new(side, side, pixels).expect("valid image")
}

fn normal(rng: &mut SeededRng) -> f64 {
    let (u1, u2) = (rng.unit_f64().max(1e-300), rng.unit_f64());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn bench_msssim(c: &mut Criterion) {
    let mut rng = SeededRng::new(1);
    let a = smooth_image(&mut rng, 256);
    let b = smooth_image(&mut rng, 256);
    c.bench_function("ms_ssim 256x256 pair (standard)", |bench| {
        bench.iter(|| ms_ssim(&a, &b, MsSsimMode::Standard { data_range: 255.0 }).expect("ms-ssim"));
    });
    c.bench_function("ms_ssim 256x256 pair (thorax-gan compat)", |bench| {
        bench.iter(|| ms_ssim(&a, &b, MsSsimMode::ThoraxGanCompat).expect("ms-ssim"));
    });
}

fn bench_fd(c: &mut Criterion) {
    let mut rng = SeededRng::new(2);
    let (n, d) = (10_000, 1_024);
    let a: Vec<f32> = (0..n * d).map(|_| normal(&mut rng).max(0.0) as f32).collect();
    let b: Vec<f32> = (0..n * d).map(|_| (normal(&mut rng) * 1.1 + 0.1).max(0.0) as f32).collect();
    let a = FeatureMatrix::new(a, n, d).expect("features");
    let b = FeatureMatrix::new(b, n, d).expect("features");
    let mut group = c.benchmark_group("frechet");
    group.sample_size(10);
    group.bench_function("fd 10000x1024 (mean, covariance, trace sqrt)", |bench| {
        bench.iter(|| frechet_distance(&a, &b).expect("fd"));
    });
    group.finish();
}

fn bench_bootstrap(c: &mut Criterion) {
    let mut rng = SeededRng::new(3);
    let n = 10_000;
    let truth: Vec<bool> = (0..n).map(|_| rng.unit_f64() < 0.2).collect();
    let scores: Vec<f64> =
        truth.iter().map(|&t| 1.0 / (1.0 + (-(normal(&mut rng) + if t { 1.0 } else { 0.0 })).exp())).collect();
    let mut group = c.benchmark_group("bootstrap");
    group.sample_size(10);
    group.bench_function("percentile AUC CI, 10000 resamples x 10000 cases", |bench| {
        bench.iter(|| bootstrap_auc(&truth, &scores, 10_000, 0.95, 7).expect("bootstrap"));
    });
    group.bench_function("thorax-gan protocol, 10000 resamples x 10000 cases", |bench| {
        bench.iter(|| thorax_gan_protocol(&truth, &scores, 10_000, Some(10_000), 7).expect("protocol"));
    });
    group.finish();
}

criterion_group!(benches, bench_msssim, bench_fd, bench_bootstrap);
criterion_main!(benches);
