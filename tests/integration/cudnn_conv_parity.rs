//! cuDNN's convolutions (`models::cudnn_conv`) against candle's CPU convolution: value, input gradient and weight
//! gradient, in float32 and with TF32 allowed, for the shapes our networks use (3x3 same, 1x1, DenseNet's 7x7
//! stride-2 stem, stride 2 on odd sizes, a valid 4x4 kernel, one channel).
//!
//! Needs the `cudnn` feature and a GPU with cuDNN, so it is ignored by default. On a GPU machine:
//! `cargo test --release --features cuda,cudnn --test integration cudnn -- --ignored`
//! (or the test binary built with `--no-run`, copied there and run with `cudnn --ignored`).
#![cfg(feature = "cudnn")]

use candle_core::{Device, Tensor, Var};
use thorax::models::cudnn_conv::{applies, cudnn_conv2d};

use crate::fused_cuda_parity::relative_error;

/// Output and the gradients of `sum(output * probe)` with respect to input and weight.
fn value_and_gradients(
    x: &Tensor,
    w: &Tensor,
    probe: &Tensor,
    conv: &dyn Fn(&Tensor, &Tensor) -> Tensor,
) -> [Tensor; 3] {
    let (x, w) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap());
    let y = conv(x.as_tensor(), w.as_tensor());
    let grads = (&y * probe).unwrap().sum_all().unwrap().backward().unwrap();
    [y, grads.get(x.as_tensor()).unwrap().clone(), grads.get(w.as_tensor()).unwrap().clone()]
}

#[test]
#[ignore = "needs the cudnn feature and a GPU"]
fn cudnn_conv_matches_the_cpu() {
    let cuda = Device::new_cuda(0).expect("this test needs a CUDA GPU");
    let cases: [([usize; 4], [usize; 4], usize, usize); 7] = [
        ([2, 3, 17, 13], [5, 3, 3, 3], 1, 1),
        ([4, 32, 7, 7], [8, 32, 1, 1], 1, 0),
        ([2, 3, 64, 64], [16, 3, 7, 7], 2, 3),
        ([2, 8, 15, 15], [4, 8, 3, 3], 2, 1),
        ([3, 16, 4, 4], [8, 16, 4, 4], 1, 0),
        ([2, 1, 9, 9], [1, 1, 3, 3], 1, 1),
        ([8, 64, 32, 32], [64, 64, 3, 3], 1, 1),
    ];
    let mut failures = Vec::new();
    for tf32 in [false, true] {
        candle_core::cuda::set_gemm_reduced_precision_f32(tf32);
        // TF32 keeps 10 of float32's 23 mantissa bits.
        let tolerance = if tf32 { 5e-3 } else { 2e-5 };
        for (input, weight, stride, padding) in cases {
            let x = Tensor::randn(0f32, 1.0, &input, &Device::Cpu).unwrap();
            let w = Tensor::randn(0f32, 0.2, &weight, &Device::Cpu).unwrap();
            let output_dims = x.conv2d(&w, padding, stride, 1, 1).unwrap().dims().to_vec();
            let probe = Tensor::randn(0f32, 1.0, output_dims, &Device::Cpu).unwrap();
            let reference = value_and_gradients(&x, &w, &probe, &|x, w| x.conv2d(w, padding, stride, 1, 1).unwrap());
            let (x_gpu, w_gpu) = (x.to_device(&cuda).unwrap(), w.to_device(&cuda).unwrap());
            assert!(applies(&x_gpu, &w_gpu), "cuDNN did not start on this GPU (see the log's warning)");
            let ours = value_and_gradients(&x_gpu, &w_gpu, &probe.to_device(&cuda).unwrap(), &|x, w| {
                cudnn_conv2d(x, w, stride, padding).unwrap()
            });
            let errors: Vec<f32> = ours.iter().zip(&reference).map(|(a, b)| relative_error(a, b)).collect();
            let case = format!("{input:?} * {weight:?} stride {stride} padding {padding}, tf32 {tf32}");
            println!(
                "{case}: value {:.1e}, input gradient {:.1e}, weight gradient {:.1e}",
                errors[0], errors[1], errors[2]
            );
            for (what, error) in ["value", "input gradient", "weight gradient"].iter().zip(&errors) {
                if *error >= tolerance {
                    failures.push(format!("{case}: {what} differs by {error:.2e} (tolerance {tolerance:.0e})"));
                }
            }
        }
    }
    candle_core::cuda::set_gemm_reduced_precision_f32(false);
    assert!(failures.is_empty(), "{} case(s) differ:\n{}", failures.len(), failures.join("\n"));
}
