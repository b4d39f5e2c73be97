//! The CycleGAN ResnetGenerator's forward pass in differentiable candle ops, for training. It computes exactly what
//! [`crate::models::cyclegan::CycleGanGenerator`] computes (same tensor names and layouts: `model.N.weight` /
//! `model.N.bias` as junyanz's state_dict, ConvTranspose weights `[in, out, 3, 3]`; InstanceNorm without affine),
//! but every convolution goes through [`conv2d_train`] at stride 1, the fast training path:
//! - the stride-2 convolutions run as a space-to-depth rearrangement followed by a 2x2 stride-1 convolution
//!   ([`conv2d_stride2_train`]),
//! - the ConvTranspose2d(3, stride 2, padding 1, output_padding 1) layers run as the four 2x2 sub-pixel phase
//!   kernels (the decomposition of `fast_conv::subpixel_kernels_from_transposed_3x3`, built here from candle ops so
//!   gradients reach the weight), followed by interleaving the phases.
//!
//! A test checks the forward against the inference network on the same weights.

use std::collections::HashMap;

use candle_core::Tensor;

use crate::models::cyclegan::{CycleGanConfig, INSTANCE_NORM_EPS};
use crate::train::conv::{conv2d_stride2_train, conv2d_train};
use crate::train::error::TrainError;
use crate::train::fused_instance_norm::instance_norm_leaky;
use crate::train::reflection_pad::reflection_pad;

/// Taps of the 3x3 transposed kernel that the 2x2 window of output parity `a` reads at window positions 0 and 1
/// (the same table as `fast_conv`): even outputs take `x[m] * k[1]`, odd ones `x[m] * k[2] + x[m + 1] * k[0]`.
const TRANSPOSED_3X3_TAPS: [[Option<usize>; 2]; 2] = [[None, Some(1)], [Some(2), Some(0)]];

/// `nn.ReflectionPad2d(pad)` (mirror without repeating the edge): one op on the CPU (`reflection_pad`), the
/// composed ops elsewhere.
pub fn reflection_pad_train(x: &Tensor, pad: usize) -> Result<Tensor, TrainError> {
    let (_, _, height, width) = x.dims4()?;
    for size in [height, width] {
        if pad >= size {
            return Err(TrainError::BadConfig {
                argument: "generator input".to_owned(),
                reason: format!("reflection padding {pad} needs a side larger than {size} px at this scale"),
            });
        }
    }
    Ok(reflection_pad(x, pad)?)
}

/// `nn.InstanceNorm2d(affine=False)`: each sample and channel normalised over its pixels (biased variance). One
/// fused op on the CPU (`fused_instance_norm`), candle ops elsewhere.
pub fn instance_norm_train(x: &Tensor) -> candle_core::Result<Tensor> {
    instance_norm_leaky(x, 1.0, INSTANCE_NORM_EPS)
}

/// `instance_norm_train` followed by a ReLU, as one op.
fn instance_norm_relu_train(x: &Tensor) -> candle_core::Result<Tensor> {
    instance_norm_leaky(x, 0.0, INSTANCE_NORM_EPS)
}

/// `x + bias` per channel.
fn add_bias(x: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    let channels = bias.dims1()?;
    x.broadcast_add(&bias.reshape((1, channels, 1, 1))?)
}

/// The four sub-pixel phase kernels `[4 * out, in, 2, 2]` (phase `2a + b` for output row parity `a`, column parity
/// `b`) of a ConvTranspose2d weight `[in, out, 3, 3]`, built from candle ops so the weight gets gradients.
pub fn subpixel_kernels_train(weight: &Tensor) -> candle_core::Result<Tensor> {
    let (maps_in, maps_out, kernel_h, kernel_w) = weight.dims4()?;
    if (kernel_h, kernel_w) != (3, 3) {
        candle_core::bail!("subpixel_kernels_train: weight of shape {:?} is not [in, out, 3, 3]", weight.dims());
    }
    // [out, in, 3, 3]
    let kernel = weight.permute((1, 0, 2, 3))?;
    let zero_row = Tensor::zeros((maps_out, maps_in, 1, 3), weight.dtype(), weight.device())?;
    let zero_col = Tensor::zeros((maps_out, maps_in, 2, 1), weight.dtype(), weight.device())?;
    let mut phases = Vec::with_capacity(4);
    for row_taps in &TRANSPOSED_3X3_TAPS {
        let rows: Vec<Tensor> = row_taps
            .iter()
            .map(|tap| match tap {
                Some(ky) => kernel.narrow(2, *ky, 1),
                None => Ok(zero_row.clone()),
            })
            .collect::<candle_core::Result<_>>()?;
        let rows = Tensor::cat(&rows, 2)?;
        for col_taps in &TRANSPOSED_3X3_TAPS {
            let cols: Vec<Tensor> = col_taps
                .iter()
                .map(|tap| match tap {
                    Some(kx) => rows.narrow(3, *kx, 1),
                    None => Ok(zero_col.clone()),
                })
                .collect::<candle_core::Result<_>>()?;
            phases.push(Tensor::cat(&cols, 3)?);
        }
    }
    Tensor::cat(&phases, 0)
}

/// `ConvTranspose2d(kernel 3, stride 2, padding 1, output_padding 1)` without bias: `x` `[N, in, H, W]` with
/// `weight` `[in, out, 3, 3]` gives `[N, out, 2H, 2W]`. One stride-1 2x2 convolution (padding 1) computes the four
/// phases at the low resolution; they are interleaved with stack/reshape.
pub fn conv_transpose3x3_s2_train(x: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
    let (batch, _, height, width) = x.dims4()?;
    let maps_out = weight.dim(1)?;
    let phases = conv2d_train(x, &subpixel_kernels_train(weight)?, 1, 1)?;
    let phase = |a: usize, b: usize| -> candle_core::Result<Tensor> {
        phases.narrow(1, (2 * a + b) * maps_out, maps_out)?.narrow(2, a, height)?.narrow(3, b, width)
    };
    let row_even = Tensor::stack(&[phase(0, 0)?, phase(0, 1)?], 4)?;
    let row_odd = Tensor::stack(&[phase(1, 0)?, phase(1, 1)?], 4)?;
    // [N, out, H, 2, W, 2] -> [N, out, 2H, 2W]
    Tensor::stack(&[row_even, row_odd], 3)?.reshape((batch, maps_out, 2 * height, 2 * width))
}

/// Runs the ResnetGenerator described by `config` on `x` `[N, input_nc, H, W]` in [-1, 1] (H, W multiples of 4,
/// at least 8) with `tensors` named as junyanz's state_dict; gradients flow to whatever the tensors came from.
pub fn cyclegan_generator_forward(
    config: &CycleGanConfig,
    tensors: &HashMap<String, Tensor>,
    x: &Tensor,
) -> Result<Tensor, TrainError> {
    let take = |index: &str, part: &str| {
        let name = format!("model.{index}.{part}");
        tensors.get(&name).cloned().ok_or(TrainError::MissingParameter { network: "generator".to_owned(), name })
    };
    // Every convolution but the last feeds an instance norm, which subtracts each channel's mean and so cancels that
    // convolution's bias exactly: those biases are left out here, so they get no gradient and Adam leaves them as they
    // are (added, they got rounding noise as a gradient). The files keep them, and the inference network adds them,
    // for junyanz's layout.
    let conv_for_norm =
        |x: &Tensor, index: &str| -> Result<Tensor, TrainError> { Ok(conv2d_train(x, &take(index, "weight")?, 1, 0)?) };
    let n = config.n_blocks;
    let mut y = instance_norm_relu_train(&conv_for_norm(&reflection_pad_train(x, 3)?, "1")?)?;
    for index in ["4", "7"] {
        let down = conv2d_stride2_train(&y, &take(index, "weight")?, 1)?;
        y = instance_norm_relu_train(&down)?;
    }
    let second = if config.use_dropout { 6 } else { 5 };
    for block in 0..n {
        let prefix = format!("{}.conv_block", 10 + block);
        let inner = instance_norm_relu_train(&conv_for_norm(&reflection_pad_train(&y, 1)?, &format!("{prefix}.1"))?)?;
        let inner =
            instance_norm_train(&conv_for_norm(&reflection_pad_train(&inner, 1)?, &format!("{prefix}.{second}"))?)?;
        y = (y + inner)?;
    }
    for index in [10 + n, 13 + n] {
        let up = conv_transpose3x3_s2_train(&y, &take(&index.to_string(), "weight")?)?;
        y = instance_norm_relu_train(&up)?;
    }
    let head = (17 + n).to_string();
    Ok(add_bias(&conv2d_train(&reflection_pad_train(&y, 3)?, &take(&head, "weight")?, 1, 0)?, &take(&head, "bias")?)?
        .tanh()?)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// The differentiable phase kernels are exactly the inference path's.
    #[test]
    fn subpixel_kernels_equal_the_fast_conv_decomposition() {
        let weight = Tensor::randn(0f32, 1.0, (3, 5, 3, 3), &Device::Cpu).unwrap();
        let ours = subpixel_kernels_train(&weight).unwrap();
        let theirs = crate::models::fast_conv::subpixel_kernels_from_transposed_3x3(&weight).unwrap();
        assert_eq!(ours.dims(), &[20, 3, 2, 2]);
        assert_eq!(
            ours.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            theirs.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        assert!(
            subpixel_kernels_train(&Tensor::zeros((3, 5, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap())
                .is_err()
        );
    }

    #[test]
    fn reflection_pad_mirrors_and_refuses_too_small_sides() {
        let x = Tensor::arange(0f32, 4.0, &Device::Cpu).unwrap().reshape((1, 1, 1, 4)).unwrap();
        let x = x.repeat((1, 1, 3, 1)).unwrap();
        let row: Vec<f32> =
            reflection_pad_train(&x, 2).unwrap().get(0).unwrap().get(0).unwrap().get(0).unwrap().to_vec1().unwrap();
        assert_eq!(row, vec![2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0, 1.0]);
        assert!(reflection_pad_train(&x, 3).unwrap_err().to_string().contains("larger than 3 px"));
    }
}
