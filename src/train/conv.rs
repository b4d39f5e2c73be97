//! Convolutions for training, differentiable in the input and the weight.
//!
//! On the CPU in float32 a stride-1 convolution is one custom op ([`FastTrainConv2d`]) on `models::fast_conv`:
//! forward and input gradient through its tiled im2col/Winograd path, weight gradient as per-tile GEMMs on the same
//! patches, so no batch-sized patch matrix is ever allocated. On CUDA in float32 a stride-1 convolution with a square
//! kernel is `models::shifted_conv` (cuBLAS products on shifted views of the padded input, no im2col). Other stride-1
//! convolutions (f64 in tests) use [`conv2d_im2col`] (im2col from candle ops, matmul backward), the reference both ops
//! are tested against and the lowering CUDA had before (`--train-conv im2col` keeps it selectable for measurements).
//! Stride-2 layers on the CPU are a stride-1 convolution of the input's four sub-pixel phases
//! ([`conv2d_stride2_train`]); other strided layers use candle's conv2d.

use std::sync::atomic::{AtomicU8, Ordering};

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::models::cudnn_conv;
use crate::models::fast_conv::{self, conv2d_input_grad, conv2d_values, conv2d_weight_grad};
use crate::models::shifted_conv::{applies_on_device, shifted_conv2d};

/// How stride-1 training convolutions off the CPU fast path are lowered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TrainConvLowering {
    /// On CUDA in float32 cuDNN's convolutions where cuDNN started and `--no-cudnn` is not given (`cudnn_conv`, any
    /// stride), else [`shifted_conv2d`] (GEMMs on shifted views, no im2col); elsewhere as `Im2col`.
    #[default]
    Shifted,
    /// [`conv2d_im2col`]: shifted slices concatenated, one matmul, and candle's autograd through all of it.
    Im2col,
}

static LOWERING: AtomicU8 = AtomicU8::new(0);

/// Process-wide choice of [`TrainConvLowering`] (a measurement switch; the default is the fast one).
pub fn set_train_conv_lowering(lowering: TrainConvLowering) {
    LOWERING.store(lowering as u8, Ordering::Relaxed);
}

pub fn train_conv_lowering() -> TrainConvLowering {
    match LOWERING.load(Ordering::Relaxed) {
        1 => TrainConvLowering::Im2col,
        _ => TrainConvLowering::Shifted,
    }
}

/// The convolution every trainer uses: `x` `[N, C, H, W]` with `weight` `[O, C, kh, kw]`, square `stride` and zero
/// `padding`, no bias, differentiable in both arguments.
pub fn conv2d_train(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> candle_core::Result<Tensor> {
    let (_, _, kernel_h, kernel_w) = weight.dims4()?;
    let fast = stride == 1
        && kernel_h == kernel_w
        && padding < kernel_h
        && fast_conv::is_cpu_f32(x)
        && fast_conv::is_cpu_f32(weight);
    if fast {
        x.contiguous()?.apply_op2(&weight.contiguous()?, FastTrainConv2d { padding })
    } else if stride == 2 && fast_conv::is_cpu_f32(x) && fast_conv::is_cpu_f32(weight) {
        // As a stride-1 convolution of the input's four phases, on the op above: candle's CPU conv2d forward and
        // its weight gradient took 10% of the 64 px classifier's training step (DenseNet's 7x7 stride-2 stem).
        conv2d_stride2_train(x, weight, padding)
    } else if train_conv_lowering() == TrainConvLowering::Shifted && cudnn_conv::applies(x, weight) {
        cudnn_conv::cudnn_conv2d(x, weight, stride, padding)
    } else if train_conv_lowering() == TrainConvLowering::Shifted && applies_on_device(x, weight, stride, padding) {
        shifted_conv2d(x, weight, padding)
    } else if stride == 1 {
        conv2d_im2col(x, weight, padding)
    } else {
        x.conv2d(weight, padding, stride, 1, 1)
    }
}

/// A stride-2 convolution of `x` `[N, C, H, W]` with `weight` `[O, C, k, k]` (any k) and zero `padding`, computed as
/// a stride-1 convolution: the padded input is rearranged space-to-depth (`[N, 4C, H'/2, W'/2]`, channel order
/// (row parity, column parity, c)) and the kernel, zero-padded to an even size, is rearranged the same way.
/// Equals `x.conv2d(weight, padding, 2, 1, 1)` in values and gradients.
pub fn conv2d_stride2_train(x: &Tensor, weight: &Tensor, padding: usize) -> candle_core::Result<Tensor> {
    let ConvDims { batch, channels, maps_out, kernel_h, kernel_w, padded_h, padded_w } =
        ConvDims::checked("conv2d_stride2_train", x, weight, padding)?;
    let (out_h, out_w) = ((padded_h - kernel_h) / 2 + 1, (padded_w - kernel_w) / 2 + 1);
    // Pad to even sides (the extra zero row/column is only read by outputs that are cut off below).
    let mut padded = x.clone();
    if padding > 0 || padded_h % 2 == 1 {
        padded = padded.pad_with_zeros(2, padding, padding + padded_h % 2)?;
    }
    if padding > 0 || padded_w % 2 == 1 {
        padded = padded.pad_with_zeros(3, padding, padding + padded_w % 2)?;
    }
    let (half_h, half_w) = (padded_h.div_ceil(2), padded_w.div_ceil(2));
    // [N, C, y, a, x, b] -> [N, a, b, C, y, x]
    let folded = padded.reshape((batch, channels, half_h, 2, half_w, 2))?.permute((0, 3, 5, 1, 2, 4))?.reshape((
        batch,
        4 * channels,
        half_h,
        half_w,
    ))?;
    let (even_h, even_w) = (kernel_h + kernel_h % 2, kernel_w + kernel_w % 2);
    let mut kernel = weight.clone();
    if kernel_h % 2 == 1 {
        kernel = kernel.pad_with_zeros(2, 0, 1)?;
    }
    if kernel_w % 2 == 1 {
        kernel = kernel.pad_with_zeros(3, 0, 1)?;
    }
    // [O, C, i, a, j, b] -> [O, a, b, C, i, j]
    let kernel = kernel
        .reshape((maps_out, channels, even_h / 2, 2, even_w / 2, 2))?
        .permute((0, 3, 5, 1, 2, 4))?
        .reshape((maps_out, 4 * channels, even_h / 2, even_w / 2))?;
    let y = conv2d_train(&folded, &kernel, 1, 0)?;
    let (_, _, got_h, got_w) = y.dims4()?;
    if (got_h, got_w) == (out_h, out_w) { Ok(y) } else { y.narrow(2, 0, out_h)?.narrow(3, 0, out_w) }
}

/// Stride-1 convolution with zero `padding` on the CPU fast path, with its backward (first order: the gradients
/// are computed outside the graph, as candle's own backward does by default).
#[derive(Clone, Copy, Debug)]
pub struct FastTrainConv2d {
    pub padding: usize,
}

impl CustomOp2 for FastTrainConv2d {
    fn name(&self) -> &'static str {
        "fast-train-conv2d"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let input_values = contiguous_f32(input, input_layout, "convolution input")?;
        let weight_values = contiguous_f32(weight, weight_layout, "convolution weight")?;
        let (output, dims) = conv2d_values(
            input_values,
            dims4(input_layout.shape())?,
            weight_values,
            dims4(weight_layout.shape())?,
            1,
            self.padding,
        )?;
        Ok((CpuStorage::F32(output), Shape::from(dims.to_vec())))
    }

    fn bwd(
        &self,
        input: &Tensor,
        weight: &Tensor,
        _output: &Tensor,
        grad_output: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (_, _, kernel_h, kernel_w) = weight.dims4()?;
        let grad_output = grad_output.contiguous()?;
        let grad_input = conv2d_input_grad(&grad_output, weight, self.padding)?;
        let grad_weight = conv2d_weight_grad(input, &grad_output, (kernel_h, kernel_w), 1, self.padding)?;
        Ok((Some(grad_input), Some(grad_weight)))
    }
}

/// The values of a contiguous float32 CPU operand of a custom op.
pub(crate) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let values = storage.as_slice::<f32>()?;
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{what}: expected a contiguous tensor");
    };
    values.get(start..end).ok_or_else(|| {
        candle_core::Error::Msg(format!("{what}: layout {start}..{end} outside {} values", values.len()))
    })
}

fn dims4(shape: &Shape) -> candle_core::Result<[usize; 4]> {
    let (a, b, c, d) = shape.dims4()?;
    Ok([a, b, c, d])
}

/// The sizes of a convolution of `x` `[N, C, H, W]` by `weight` `[O, C, kh, kw]` with zero `padding`, once the
/// channels agree and the kernel fits the padded input.
struct ConvDims {
    batch: usize,
    channels: usize,
    maps_out: usize,
    kernel_h: usize,
    kernel_w: usize,
    padded_h: usize,
    padded_w: usize,
}

impl ConvDims {
    fn checked(op: &str, x: &Tensor, weight: &Tensor, padding: usize) -> candle_core::Result<Self> {
        let (batch, channels, height, width) = x.dims4()?;
        let (maps_out, weight_channels, kernel_h, kernel_w) = weight.dims4()?;
        if weight_channels != channels {
            candle_core::bail!("{op}: input has {channels} channels, the kernel expects {weight_channels}");
        }
        let (padded_h, padded_w) = (height + 2 * padding, width + 2 * padding);
        if padded_h < kernel_h || padded_w < kernel_w {
            candle_core::bail!("{op}: kernel {kernel_h}x{kernel_w} larger than the padded {padded_h}x{padded_w}");
        }
        Ok(Self { batch, channels, maps_out, kernel_h, kernel_w, padded_h, padded_w })
    }
}

/// Stride-1 convolution of `x` `[N, C, H, W]` with `weight` `[O, C, kh, kw]`, zero padding `padding` on every side;
/// returns `[N, O, H + 2p - kh + 1, W + 2p - kw + 1]`.
pub fn conv2d_im2col(x: &Tensor, weight: &Tensor, padding: usize) -> candle_core::Result<Tensor> {
    let ConvDims { batch, channels, maps_out, kernel_h, kernel_w, padded_h, padded_w } =
        ConvDims::checked("conv2d_im2col", x, weight, padding)?;
    let (out_h, out_w) = (padded_h - kernel_h + 1, padded_w - kernel_w + 1);
    // Channels last, so each kernel tap is a contiguous run of C values per pixel.
    let mut nhwc = x.permute((0, 2, 3, 1))?;
    if padding > 0 {
        nhwc = nhwc.pad_with_zeros(1, padding, padding)?.pad_with_zeros(2, padding, padding)?;
    }
    let patches = if kernel_h == 1 && kernel_w == 1 {
        nhwc.contiguous()?
    } else {
        let mut taps = Vec::with_capacity(kernel_h * kernel_w);
        for ky in 0..kernel_h {
            for kx in 0..kernel_w {
                taps.push(nhwc.narrow(1, ky, out_h)?.narrow(2, kx, out_w)?);
            }
        }
        // [N, out_h, out_w, kh * kw * C], taps in (ky, kx, c) order
        Tensor::cat(&taps, 3)?
    };
    let rows = patches.reshape((batch * out_h * out_w, kernel_h * kernel_w * channels))?;
    // [O, C, kh, kw] -> [kh, kw, C, O] -> [(ky, kx, c), O]
    let matrix = weight.permute((2, 3, 1, 0))?.reshape((kernel_h * kernel_w * channels, maps_out))?;
    rows.matmul(&matrix)?.reshape((batch, out_h, out_w, maps_out))?.permute((0, 3, 1, 2))
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
    }

    /// The fast op inside a small f32 graph (conv, leaky ReLU, conv) gives the values and gradients of the
    /// im2col reference, for the kernel/padding pairs the trainers use.
    #[test]
    fn fast_train_conv_matches_the_im2col_reference() {
        for (kernel, padding, size) in [(3usize, 1usize, 12usize), (2, 1, 7), (1, 0, 5), (4, 3, 4), (3, 0, 40)] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 16, size, size), &Device::Cpu).unwrap()).unwrap();
            let w1 =
                Var::from_tensor(&Tensor::randn(0f32, 0.2, (16, 16, kernel, kernel), &Device::Cpu).unwrap()).unwrap();
            let w2 = Var::from_tensor(&Tensor::randn(0f32, 0.2, (3, 16, 3, 3), &Device::Cpu).unwrap()).unwrap();
            let run = |conv: &dyn Fn(&Tensor, &Tensor, usize) -> candle_core::Result<Tensor>| {
                let hidden = conv(x.as_tensor(), w1.as_tensor(), padding).unwrap();
                let hidden = hidden.maximum(&(&hidden * 0.2).unwrap()).unwrap();
                let y = conv(&hidden, w2.as_tensor(), 1).unwrap();
                let loss = y.sqr().unwrap().sum_all().unwrap();
                let grads = loss.backward().unwrap();
                let grads: Vec<Tensor> =
                    [&x, &w1, &w2].iter().map(|v| grads.get(v.as_tensor()).unwrap().clone()).collect();
                (y, grads)
            };
            let (fast_y, fast_grads) = run(&|x, w, p| conv2d_train(x, w, 1, p));
            let (ref_y, ref_grads) = run(&|x, w, p| conv2d_im2col(x, w, p));
            let relative = |a: &Tensor, b: &Tensor| {
                let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1e-20) as f64;
                max_diff(&a.to_dtype(DType::F64).unwrap(), &b.to_dtype(DType::F64).unwrap()) / scale
            };
            assert!(relative(&fast_y, &ref_y) < 1e-5, "kernel {kernel}: output");
            for (i, (a, b)) in fast_grads.iter().zip(&ref_grads).enumerate() {
                assert!(relative(a, b) < 1e-4, "kernel {kernel}: gradient {i} differs by {}", relative(a, b));
            }
        }
    }

    /// Stride-2 convolutions (3x3 pad 1 as the generator's, 4x4 pad 1 as PatchGAN's, 7x7 pad 3 as DenseNet's stem,
    /// odd sides too) equal candle's strided conv2d in values and both gradients.
    #[test]
    fn stride2_as_space_to_depth_matches_candle() {
        for (kernel, padding, height, width) in
            [(3usize, 1usize, 8usize, 6usize), (4, 1, 8, 8), (4, 1, 7, 9), (3, 0, 5, 6), (7, 3, 16, 16), (7, 3, 13, 10)]
        {
            let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, (2, 3, height, width), &Device::Cpu).unwrap()).unwrap();
            let w = Var::from_tensor(&Tensor::randn(0f64, 1.0, (4, 3, kernel, kernel), &Device::Cpu).unwrap()).unwrap();
            let ours = conv2d_stride2_train(x.as_tensor(), w.as_tensor(), padding).unwrap();
            // candle's strided backward fails when the last window does not end on the last padded pixel, so the
            // reference pads explicitly and convolves only the padded rows and columns some window reads.
            let used = |side: usize| ((side + 2 * padding - kernel) / 2) * 2 + kernel;
            let padded = x.as_tensor().pad_with_zeros(2, padding, padding).unwrap();
            let padded = padded.pad_with_zeros(3, padding, padding).unwrap();
            let cropped = padded.narrow(2, 0, used(height)).unwrap().narrow(3, 0, used(width)).unwrap();
            let theirs = cropped.conv2d(w.as_tensor(), 0, 2, 1, 1).unwrap();
            assert_eq!(ours.dims(), theirs.dims(), "kernel {kernel} {height}x{width}");
            assert!(max_diff(&ours, &theirs) < 1e-10);
            let probe = Tensor::randn(0f64, 1.0, ours.dims(), &Device::Cpu).unwrap();
            let g_ours = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let g_theirs = (theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            for var in [&x, &w] {
                let a = g_ours.get(var.as_tensor()).unwrap();
                let b = g_theirs.get(var.as_tensor()).unwrap();
                assert!(max_diff(a, b) < 1e-10, "kernel {kernel} {height}x{width}");
            }
        }
    }

    /// On the CPU in f32, `conv2d_train` at stride 2 (DenseNet's 7x7 pad 3 stem, a 3x3 pad 1) takes the phase
    /// form and matches candle's strided conv2d in value and weight gradient (the stem's input is data).
    #[test]
    fn stride2_on_the_cpu_matches_candle_conv2d() {
        for (kernel, padding, side) in [(7usize, 3usize, 32usize), (3, 1, 16)] {
            let x = Tensor::randn(0f32, 1.0, (2, 3, side, side), &Device::Cpu).unwrap();
            let w = Var::from_tensor(&Tensor::randn(0f32, 0.2, (8, 3, kernel, kernel), &Device::Cpu).unwrap()).unwrap();
            let ours = conv2d_train(&x, w.as_tensor(), 2, padding).unwrap();
            let theirs = x.conv2d(w.as_tensor(), padding, 2, 1, 1).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            let scale = theirs.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let value_error = (&ours - &theirs).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(value_error < 1e-5 * scale, "kernel {kernel}: values differ by {value_error}");
            let probe = Tensor::randn(0f32, 1.0, ours.dims(), &Device::Cpu).unwrap();
            let g_ours = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let g_theirs = (theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let (a, b) = (g_ours.get(w.as_tensor()).unwrap(), g_theirs.get(w.as_tensor()).unwrap());
            let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let error = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(error < 1e-4 * scale, "kernel {kernel}: weight gradient differs by {error} of {scale}");
        }
    }

    /// Values and both gradients equal candle's conv2d for 3x3, 2x2 and 1x1 kernels.
    #[test]
    fn matches_candle_conv2d_and_its_gradients() {
        for (kernel, padding) in [(3usize, 1usize), (2, 1), (1, 0), (3, 0)] {
            let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, (2, 3, 5, 6), &Device::Cpu).unwrap()).unwrap();
            let w = Var::from_tensor(&Tensor::randn(0f64, 1.0, (4, 3, kernel, kernel), &Device::Cpu).unwrap()).unwrap();
            let ours = conv2d_im2col(x.as_tensor(), w.as_tensor(), padding).unwrap();
            let theirs = x.as_tensor().conv2d(w.as_tensor(), padding, 1, 1, 1).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            assert!(max_diff(&ours, &theirs) < 1e-10);
            let probe = Tensor::randn(0f64, 1.0, ours.dims(), &Device::Cpu).unwrap();
            let g_ours = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let g_theirs = (theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            for var in [&x, &w] {
                let a = g_ours.get(var.as_tensor()).unwrap();
                let b = g_theirs.get(var.as_tensor()).unwrap();
                assert!(max_diff(a, b) < 1e-10, "kernel {kernel}");
            }
        }
    }
}
