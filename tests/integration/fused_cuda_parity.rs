//! The fused training ops' CUDA kernels against their CPU implementations: value and gradients, at sizes that are
//! not multiples of a block, with one channel, dense `[N, C]` inputs, an input that starts inside its buffer, and one
//! large enough to need the grid-stride loops (over 65,535 blocks of 256 values).
//!
//! Needs the `cuda` feature and a GPU, so it is ignored by default. On a GPU machine:
//! `cargo test --release --features cuda --test integration fused_cuda -- --ignored`
//! (or the test binary built with `--no-run`, copied there and run with `fused_cuda --ignored`).
#![cfg(feature = "cuda")]

use candle_core::{Device, Tensor, Var};
use thorax::train::fused_activation::{bias_leaky_relu, bias_leaky_relu_pixel_norm};
use thorax::train::fused_batch_norm::{Statistics, batch_norm_relu};
use thorax::train::fused_cuda::set_fused_cuda_ops;
use thorax::train::fused_instance_norm::instance_norm_leaky;
use thorax::train::phase_interleave::interleave_phases;
use thorax::train::reflection_pad::reflection_pad_fused;

/// max |a - b| / max(max |b|, 1e-12) over all values (also used by `cudnn_conv_parity`).
pub(crate) fn relative_error(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_device(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.to_device(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// Runs `op` on copies of `inputs` on `device`, weights its output with `probe` and returns the output and the
/// gradient of every input.
fn value_and_gradients(
    inputs: &[Tensor],
    probe: &Tensor,
    device: &Device,
    op: &dyn Fn(&[Tensor]) -> Tensor,
) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(&t.to_device(device).unwrap()).unwrap()).collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = op(&tensors);
    let grads = (&y * probe.to_device(device).unwrap()).unwrap().sum_all().unwrap().backward().unwrap();
    let gradients = tensors.iter().map(|t| grads.get(t).expect("every input has a gradient").clone()).collect();
    (y, gradients)
}

/// Compares `op` on the GPU (fused kernels) with the CPU, value and every gradient; prints the differences and returns
/// a line per one over `tolerance`, so that one run reports every failing case.
fn check(case: &str, inputs: &[Tensor], op: &dyn Fn(&[Tensor]) -> Tensor, tolerance: f32) -> Vec<String> {
    let cuda = Device::new_cuda(0).expect("this test needs a CUDA GPU");
    let y_cpu = op(inputs);
    let probe = Tensor::randn(0f32, 1.0, y_cpu.dims(), &Device::Cpu).unwrap();
    let (y_ref, grads_ref) = value_and_gradients(inputs, &probe, &Device::Cpu, op);
    set_fused_cuda_ops(true); // the default; said here because this is what the test checks
    let (y, grads) = value_and_gradients(inputs, &probe, &cuda, op);
    let mut errors = vec![("value".to_string(), relative_error(&y, &y_ref))];
    for (index, (g, g_ref)) in grads.iter().zip(&grads_ref).enumerate() {
        errors.push((format!("gradient of input {index}"), relative_error(g, g_ref)));
    }
    println!("{case}: {}", errors.iter().map(|(what, e)| format!("{what} {e:.1e}")).collect::<Vec<_>>().join(", "));
    errors
        .into_iter()
        .filter(|(_, e)| *e >= tolerance)
        .map(|(what, e)| format!("{case}: {what} differs by {e:.2e} (tolerance {tolerance:.0e})"))
        .collect()
}

fn assert_none(failures: &[String]) {
    assert!(failures.is_empty(), "{} case(s) differ:\n{}", failures.len(), failures.join("\n"));
}

fn randn(dims: &[usize]) -> Tensor {
    Tensor::randn(0f32, 1.0, dims, &Device::Cpu).unwrap()
}

#[test]
#[ignore = "needs the cuda feature and a GPU"]
fn fused_cuda_activation_matches_the_cpu() {
    let mut failures = Vec::new();
    for dims in [vec![3, 5, 7, 9], vec![2, 1, 13, 11], vec![4, 6], vec![2, 3, 2900, 1450]] {
        let channels = dims[1];
        let inputs = [randn(&dims), randn(&[channels])];
        let case = format!("bias + leaky ReLU {dims:?}");
        failures.extend(check(&case, &inputs, &|t| bias_leaky_relu(&t[0], &t[1], 0.2).unwrap(), 1e-5));
        // With one channel the pixel norm is a / sqrt(a^2 + eps) = +-1 and its gradient g (1 - y^2) / sqrt(a^2 + eps)
        // is f32 rounding noise (1 - y^2 cancels) scaled by 1 / |a|: at eps 1e-8 the two devices differed by 3e-5 to
        // 6e-2 of the largest gradient (H200, 2026-11-27). A large eps makes it well conditioned and still checks the
        // one-channel indexing.
        let epsilon = if channels == 1 { 0.5 } else { 1e-8 };
        let case = format!("bias + leaky ReLU + pixel norm {dims:?}");
        failures.extend(check(
            &case,
            &inputs,
            &|t| bias_leaky_relu_pixel_norm(&t[0], &t[1], 0.2, epsilon).unwrap(),
            1e-5,
        ));
    }
    // An input that starts inside its buffer (a slice of a larger batch).
    let batch = randn(&[5, 4, 6, 6]);
    let bias = randn(&[4]);
    failures.extend(check(
        "pixel norm on a batch slice",
        &[batch, bias],
        &|t| bias_leaky_relu_pixel_norm(&t[0].narrow(0, 2, 3).unwrap(), &t[1], 0.2, 1e-8).unwrap(),
        1e-5,
    ));
    assert_none(&failures);
}

#[test]
#[ignore = "needs the cuda feature and a GPU"]
fn fused_cuda_phase_interleave_matches_the_cpu() {
    let mut failures = Vec::new();
    for (dims, maps_out) in [(vec![2, 12, 5, 7], 3), (vec![1, 4, 2, 2], 1), (vec![3, 20, 33, 17], 5)] {
        failures.extend(check(
            &format!("phase interleave {dims:?}"),
            &[randn(&dims)],
            &|t| interleave_phases(&t[0], maps_out).unwrap(),
            1e-6,
        ));
    }
    assert_none(&failures);
}

#[test]
#[ignore = "needs the cuda feature and a GPU"]
fn fused_cuda_batch_norm_relu_matches_the_cpu() {
    let mut failures = Vec::new();
    for dims in [vec![3, 5, 7, 9], vec![2, 1, 13, 11], vec![16, 64, 32, 32]] {
        let channels = dims[1];
        let gamma = randn(&[channels]).affine(0.5, 1.0).unwrap();
        let inputs = [randn(&dims), gamma, randn(&[channels])];
        failures.extend(check(
            &format!("batch norm + ReLU, batch statistics {dims:?}"),
            &inputs,
            &|t| batch_norm_relu(&t[0], &t[1], &t[2], Statistics::Batch, 1e-5).unwrap().0,
            1e-4,
        ));
        let mean = randn(&[channels]);
        let variance = (randn(&[channels]).abs().unwrap() + 0.5).unwrap();
        failures.extend(check(
            &format!("batch norm + ReLU, running statistics {dims:?}"),
            &inputs,
            &|t| {
                let (mean, variance) =
                    (mean.to_device(t[0].device()).unwrap(), variance.to_device(t[0].device()).unwrap());
                batch_norm_relu(&t[0], &t[1], &t[2], Statistics::Fixed { mean: &mean, variance: &variance }, 1e-5)
                    .unwrap()
                    .0
            },
            1e-5,
        ));
    }
    assert_none(&failures);
}

#[test]
#[ignore = "needs the cuda feature and a GPU"]
fn fused_cuda_instance_norm_matches_the_cpu() {
    let mut failures = Vec::new();
    // A ReLU, no activation and a leaky ReLU; planes smaller than a block, a 1x1 plane (output and gradient 0), the
    // CycleGAN's 64-channel 16x16 maps, and planes of 90,000 values (each thread strides over 352).
    for (dims, slope) in [
        (vec![2usize, 3, 5, 7], 0.0),
        (vec![2, 3, 5, 7], 1.0),
        (vec![1, 4, 16, 16], 0.2),
        (vec![3, 2, 1, 1], 0.0),
        (vec![1, 64, 16, 16], 0.0),
        (vec![2, 4, 300, 300], 0.0),
    ] {
        let x = randn(&dims).affine(1.5, 0.3).unwrap();
        failures.extend(check(
            &format!("instance norm, slope {slope}, {dims:?}"),
            &[x],
            &|t| instance_norm_leaky(&t[0], slope, 1e-5).unwrap(),
            1e-5,
        ));
    }
    failures.extend(check(
        "instance norm on a batch slice",
        &[randn(&[5, 3, 9, 9])],
        &|t| instance_norm_leaky(&t[0].narrow(0, 1, 3).unwrap(), 0.0, 1e-5).unwrap(),
        1e-5,
    ));
    assert_none(&failures);
}

#[test]
#[ignore = "needs the cuda feature and a GPU"]
fn fused_cuda_reflection_pad_matches_the_cpu() {
    let mut failures = Vec::new();
    // The gradient kernel adds in the CPU's order, so both should agree exactly; 1e-7 allows for nothing more than
    // that. Pads 1 and 3 (the generator's), oblong planes, a pad one less than a side (three readers per source).
    for (dims, pad) in [
        (vec![2usize, 3, 5, 7], 1),
        (vec![1, 2, 8, 4], 3),
        (vec![3, 1, 4, 4], 3),
        (vec![1, 16, 64, 64], 3),
        (vec![2, 8, 300, 250], 1),
    ] {
        failures.extend(check(
            &format!("reflection pad {pad} of {dims:?}"),
            &[randn(&dims)],
            &|t| reflection_pad_fused(&t[0], pad).unwrap(),
            1e-7,
        ));
    }
    assert_none(&failures);
}
