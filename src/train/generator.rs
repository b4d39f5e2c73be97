//! The generator's forward pass in differentiable candle ops, for training. The inference network
//! ([`crate::models::progan::ProganGenerator`]) runs its CPU convolutions through `fast_conv`, which has no
//! backward pass, so training computes the same function here: pixel norm of `[latents, labels]`, `4x4/Dense`,
//! `4x4/Conv`, per resolution the fused upscale `Conv0_up` (as the sub-pixel convolution the inference path uses:
//! four 2x2 phase kernels taken from the 4x4 kernel made by summing the shifted 3x3 kernel) and `Conv1`, with bias,
//! leaky ReLU 0.2 and pixel norm after each, then the linear `ToRGB_lod0`. Tensors are the TF-named, TF-layout
//! weights with the weight scale applied, exactly what a saved file holds; a test checks both paths agree.

use std::collections::HashMap;

use candle_core::Tensor;

use crate::models::progan::ProganArchitecture;
use crate::train::conv::conv2d_train;
use crate::train::error::TrainError;
use crate::train::fused_activation::bias_leaky_relu_pixel_norm;
use crate::train::growth::{TO_RGB_LOD1, lerp, upsample_nearest_2x};
use crate::train::phase_interleave::interleave_phases;

/// Pixel-norm epsilon of the original.
const PIXEL_NORM_EPSILON: f64 = 1e-8;
/// Negative slope of the original leaky ReLU.
const LEAKY_RELU_ALPHA: f64 = 0.2;
/// For each output parity, the taps of the summed 4x4 kernel read at window positions 0 and 1 (see progan.rs).
const PHASE_TAPS: [[u32; 2]; 2] = [[3, 1], [2, 0]];

/// Runs `G_paper` at lod 0 on `latents` `[N, latent]` and `labels` `[N, L]` with `tensors` (scaled, TF names and
/// layouts); gradients flow to whatever `tensors` were computed from.
pub fn generator_forward(
    architecture: &ProganArchitecture,
    tensors: &HashMap<String, Tensor>,
    latents: &Tensor,
    labels: &Tensor,
) -> Result<Tensor, TrainError> {
    let x = features(architecture, tensors, latents, labels, architecture.resolution_log2())?;
    to_rgb(&x, tensors, "ToRGB_lod0")
}

/// `G_paper` during the fade-in of its top resolution (see [`crate::train::growth`]): `alpha * ToRGB_lod0(x_R) +
/// (1 - alpha) * upsample_2x(ToRGB_lod1(x_{R/2}))`. At `alpha >= 1` this is [`generator_forward`] and
/// `ToRGB_lod1` is not read.
pub fn generator_forward_faded(
    architecture: &ProganArchitecture,
    tensors: &HashMap<String, Tensor>,
    latents: &Tensor,
    labels: &Tensor,
    alpha: f64,
) -> Result<Tensor, TrainError> {
    let top = architecture.resolution_log2();
    if alpha >= 1.0 || top < 3 {
        return generator_forward(architecture, tensors, latents, labels);
    }
    let half = features(architecture, tensors, latents, labels, top - 1)?;
    let full = block(architecture, tensors, &half, top)?;
    let old = upsample_nearest_2x(&to_rgb(&half, tensors, TO_RGB_LOD1)?)?;
    Ok(lerp(&old, &to_rgb(&full, tensors, "ToRGB_lod0")?, alpha)?)
}

fn take(tensors: &HashMap<String, Tensor>, name: &str) -> Result<Tensor, TrainError> {
    tensors
        .get(name)
        .cloned()
        .ok_or_else(|| TrainError::MissingParameter { network: "generator".to_owned(), name: name.to_owned() })
}

/// The feature maps after the block of resolution `2^up_to_log2` (4x4 up to the network's top).
fn features(
    architecture: &ProganArchitecture,
    tensors: &HashMap<String, Tensor>,
    latents: &Tensor,
    labels: &Tensor,
    up_to_log2: usize,
) -> Result<Tensor, TrainError> {
    let batch = latents.dim(0)?;
    let combo = pixel_norm(&Tensor::cat(&[latents, labels], 1)?)?;
    let maps = architecture.nf(1);
    let x = combo.matmul(&take(tensors, "4x4/Dense/weight")?)?.reshape((batch, maps, 4, 4))?;
    let mut x = bias_act_norm(&x, &take(tensors, "4x4/Dense/bias")?)?;
    x = conv_act_norm(&x, &take(tensors, "4x4/Conv/weight")?, &take(tensors, "4x4/Conv/bias")?)?;
    for res_log2 in 3..=up_to_log2 {
        x = block(architecture, tensors, &x, res_log2)?;
    }
    Ok(x)
}

/// The block of resolution `2^res_log2`: fused upscale `Conv0_up`, then `Conv1`.
fn block(
    architecture: &ProganArchitecture,
    tensors: &HashMap<String, Tensor>,
    x: &Tensor,
    res_log2: usize,
) -> Result<Tensor, TrainError> {
    let side = 1usize << res_log2;
    let prefix = format!("{side}x{side}");
    let kernels = subpixel_kernels(&take(tensors, &format!("{prefix}/Conv0_up/weight"))?)?;
    let up = upscale_subpixel(x, &kernels, architecture.nf(res_log2 - 1))?;
    let x = bias_act_norm(&up, &take(tensors, &format!("{prefix}/Conv0_up/bias"))?)?;
    Ok(conv_act_norm(
        &x,
        &take(tensors, &format!("{prefix}/Conv1/weight"))?,
        &take(tensors, &format!("{prefix}/Conv1/bias"))?,
    )?)
}

/// The linear 1x1 output layer `layer` (`ToRGB_lod0` or `ToRGB_lod1`).
fn to_rgb(x: &Tensor, tensors: &HashMap<String, Tensor>, layer: &str) -> Result<Tensor, TrainError> {
    let weight = take(tensors, &format!("{layer}/weight"))?.permute((3, 2, 0, 1))?;
    let bias = take(tensors, &format!("{layer}/bias"))?;
    let channels = bias.dims1()?;
    Ok(conv2d_train(x, &weight, 1, 0)?.broadcast_add(&bias.reshape((1, channels, 1, 1))?)?)
}

/// 3x3 SAME convolution with a TF `[kh, kw, in, out]` kernel, then bias, leaky ReLU and pixel norm.
fn conv_act_norm(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    let kernel = weight.permute((3, 2, 0, 1))?;
    bias_act_norm(&conv2d_train(x, &kernel, 1, 1)?, bias)
}

/// `x + bias` (per channel), leaky ReLU, pixel norm over channels (one fused op on the CPU).
fn bias_act_norm(x: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    bias_leaky_relu_pixel_norm(x, bias, LEAKY_RELU_ALPHA, PIXEL_NORM_EPSILON)
}

/// `x * rsqrt(mean(x^2 over dim 1) + 1e-8)`.
fn pixel_norm(x: &Tensor) -> candle_core::Result<Tensor> {
    let scale = (x.sqr()?.mean_keepdim(1)? + PIXEL_NORM_EPSILON)?.sqrt()?.recip()?;
    x.broadcast_mul(&scale)
}

/// The four 2x2 phase kernels `[4*out, in, 2, 2]` from the TF `Conv0_up` weight `[3, 3, out, in]`.
fn subpixel_kernels(weight: &Tensor) -> candle_core::Result<Tensor> {
    let padded = weight.pad_with_zeros(0, 1, 1)?.pad_with_zeros(1, 1, 1)?;
    let window = |dy: usize, dx: usize| padded.narrow(0, dy, 4)?.narrow(1, dx, 4);
    let summed = ((window(1, 1)? + window(0, 1)?)? + (window(1, 0)? + window(0, 0)?)?)?;
    let device = weight.device();
    let mut phases = Vec::with_capacity(4);
    for row_taps in PHASE_TAPS {
        for col_taps in PHASE_TAPS {
            let kernel = summed
                .index_select(&Tensor::new(&row_taps, device)?, 0)?
                .index_select(&Tensor::new(&col_taps, device)?, 1)?;
            phases.push(kernel.permute((2, 3, 0, 1))?);
        }
    }
    Tensor::cat(&phases, 0)
}

/// TF's stride-2 SAME transposed convolution as one conv2d (padding 1) producing the four phases, each narrowed to
/// its window and interleaved into the `[N, out, 2H, 2W]` output.
fn upscale_subpixel(x: &Tensor, phase_kernels: &Tensor, maps_out: usize) -> candle_core::Result<Tensor> {
    interleave_phases(&conv2d_train(x, phase_kernels, 1, 1)?, maps_out)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;
    use crate::models::card::Provenance;
    use crate::models::progan::{ProganGenerator, progan_card};
    use crate::models::weights::Weights;
    use crate::test_random::randn;

    fn architecture() -> ProganArchitecture {
        ProganArchitecture {
            resolution_px: 16,
            latent_size: 12,
            label_size: 3,
            channels: 1,
            fmap_base: 64.0,
            fmap_decay: 1.0,
            fmap_max: 16,
        }
    }

    fn random_tensors(architecture: &ProganArchitecture) -> HashMap<String, Tensor> {
        let mut tensors = HashMap::new();
        for spec in architecture.tensor_specs() {
            let t = (randn(0f32, 1.0, spec.shape.clone()) * f64::from(spec.wscale())).unwrap();
            tensors.insert(spec.name, t);
        }
        tensors
    }

    /// The training forward equals the inference network's on the same weights.
    #[test]
    fn matches_the_inference_generator() {
        let architecture = architecture();
        let tensors = random_tensors(&architecture);
        let card =
            progan_card("t", vec!["a".into(), "b".into(), "c".into()], &architecture, true, Provenance::default());
        let inference = ProganGenerator::from_weights(Weights { card, tensors: tensors.clone() }).unwrap();
        let latents = randn(0f32, 1.0, (3, 12));
        let labels = Tensor::new(&[[1f32, 0.0, 0.5], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]], &Device::Cpu).unwrap();
        let expected = inference.forward(&latents, &labels).unwrap();
        let got = generator_forward(&architecture, &tensors, &latents, &labels).unwrap();
        assert_eq!(got.dims(), &[3, 1, 16, 16]);
        let diff = (got - expected).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-4, "{diff}");
    }

    /// Every generator tensor receives a gradient, and one of them matches a finite difference.
    #[test]
    fn gradients_reach_every_tensor() {
        let architecture = architecture();
        let vars: HashMap<String, Var> = random_tensors(&architecture)
            .into_iter()
            .map(|(k, v)| (k, Var::from_tensor(&v.to_dtype(DType::F64).unwrap()).unwrap()))
            .collect();
        let tensors: HashMap<String, Tensor> = vars.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        // Seeded draws: with unseeded ones the finite differences below failed now and then.
        let latents = randn(0f64, 1.0, (2, 12));
        let labels = Tensor::new(&[[1f64, 0.0, 0.5], [0.0, 1.0, 0.0]], &Device::Cpu).unwrap();
        let target = randn(0f64, 1.0, (2, 1, 16, 16));
        let loss_of = |tensors: &HashMap<String, Tensor>| {
            let out = generator_forward(&architecture, tensors, &latents, &labels).unwrap();
            (out * &target).unwrap().sum_all().unwrap()
        };
        let grads = loss_of(&tensors).backward().unwrap();
        for (name, var) in &vars {
            let grad = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {name}"));
            assert!(grad.abs().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap() > 0.0, "{name}");
        }
        let name = "8x8/Conv0_up/weight";
        let base = vars[name].as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let analytic = grads.get(vars[name].as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for index in [0usize, 17, 101] {
            let h = 1e-5;
            let eval = |delta: f64| {
                let mut values = base.clone();
                values[index] += delta;
                let mut perturbed = tensors.clone();
                let shape = vars[name].as_tensor().dims().to_vec();
                perturbed.insert(name.to_owned(), Tensor::from_vec(values, shape, &Device::Cpu).unwrap());
                loss_of(&perturbed).to_scalar::<f64>().unwrap()
            };
            let numeric = (eval(h) - eval(-h)) / (2.0 * h);
            assert!(
                (numeric - analytic[index]).abs() < 1e-5 * numeric.abs().max(1.0),
                "{numeric} vs {}",
                analytic[index]
            );
        }
    }
}
