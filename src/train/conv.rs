//! Convolutions for training, differentiable in the input and the weight.
//!
//! On the CPU in float32 a stride-1 convolution is one custom op ([`FastTrainConv2d`]) on `models::fast_conv`:
//! forward and input gradient through its tiled im2col/Winograd path, weight gradient as per-tile GEMMs on the same
//! patches, so no batch-sized patch matrix is ever allocated. On CUDA in float32 a stride-1 convolution with a square
//! kernel is `models::shifted_conv` (cuBLAS products on shifted views of the padded input, no im2col). Elsewhere (f64 in
//! tests) it is [`GemmTrainConv2d`]: the forward pass and both gradients are each candle `conv2d`s or batched matrix
//! products. Strided layers use candle's conv2d.
//! [`conv2d_im2col`] (im2col from candle ops, matmul backward) is the reference the ops are tested against, and the
//! lowering before them (`--train-conv im2col` keeps it selectable for measurements).

use std::sync::atomic::{AtomicU8, Ordering};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use crate::models::fast_conv::{self, conv2d_input_grad, conv2d_values, conv2d_weight_grad};
use crate::models::shifted_conv::{applies_on_device, shifted_conv2d};

/// How stride-1 training convolutions off the CPU fast path are lowered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TrainConvLowering {
    /// On CUDA in float32 [`shifted_conv2d`] (GEMMs on shifted views, no im2col); elsewhere as `Gemm`.
    #[default]
    Shifted,
    /// [`GemmTrainConv2d`]: candle conv2d forward, gradients as conv2d and batched matmul.
    Gemm,
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
        1 => TrainConvLowering::Gemm,
        2 => TrainConvLowering::Im2col,
        _ => TrainConvLowering::Shifted,
    }
}

/// The convolution every trainer uses: `x` `[N, C, H, W]` with `weight` `[O, C, kh, kw]`, square `stride` and zero
/// `padding`, no bias, differentiable in both arguments.
pub fn conv2d_train(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> candle_core::Result<Tensor> {
    let (_, _, kernel_h, kernel_w) = weight.dims4()?;
    let square = kernel_h == kernel_w && padding < kernel_h;
    let fast = stride == 1 && square && fast_conv::is_cpu_f32(x) && fast_conv::is_cpu_f32(weight);
    let lowering = train_conv_lowering();
    if fast {
        x.contiguous()?.apply_op2(&weight.contiguous()?, FastTrainConv2d { padding })
    } else if lowering == TrainConvLowering::Shifted && applies_on_device(x, weight, stride, padding) {
        shifted_conv2d(x, weight, padding)
    } else if stride == 1 && square && lowering != TrainConvLowering::Im2col {
        gemm_train_conv2d(x, weight, padding)
    } else if stride == 1 {
        conv2d_im2col(x, weight, padding)
    } else {
        x.conv2d(weight, padding, stride, 1, 1)
    }
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

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
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

/// Stride-1 convolution with a square kernel and zero `padding < k`, through [`GemmTrainConv2d`].
pub fn gemm_train_conv2d(x: &Tensor, weight: &Tensor, padding: usize) -> candle_core::Result<Tensor> {
    // candle's conv2d computes the values; the op only passes them through so that its backward is ours, not
    // candle's (whose input gradient is a direct, untiled transposed convolution on CUDA).
    let output = x.detach().conv2d(&weight.detach(), padding, 1, 1, 1)?.contiguous()?;
    x.apply_op3(weight, &output, GemmTrainConv2d { padding })
}

/// A stride-1 convolution whose value is computed outside (third argument, passed through) and whose backward is
///
/// - input gradient: `conv2d(dY, flip(W)^T, padding k - 1 - p)`, one more candle conv2d;
/// - weight gradient: for each kernel tap, `dW[:, :, ky, kx] = sum_n dY_n X_n(shifted)^T`, one batched matmul on a
///   contiguous copy of the shifted input, so the largest temporary is one input-sized tensor.
///
/// First order only (the gradients are computed outside the graph), as candle's own backward by default.
#[derive(Clone, Copy, Debug)]
pub struct GemmTrainConv2d {
    pub padding: usize,
}

impl CustomOp3 for GemmTrainConv2d {
    fn name(&self) -> &'static str {
        "gemm-train-conv2d"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        output: &CpuStorage,
        output_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        pass_through(output, output_layout)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
        output: &candle_core::CudaStorage,
        output_layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        pass_through(output, output_layout)
    }

    fn bwd(
        &self,
        input: &Tensor,
        weight: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad_output: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (_, _, kernel, _) = weight.dims4()?;
        let grad_output = grad_output.contiguous()?;
        let flipped = flip_transpose_kernel(&weight.detach())?;
        let grad_input = grad_output.conv2d(&flipped, kernel - 1 - self.padding, 1, 1, 1)?;
        let grad_weight = weight_grad_by_taps(&input.detach(), &grad_output, kernel, self.padding)?;
        Ok((Some(grad_input), Some(grad_weight), None))
    }
}

/// A copy of a contiguous, offset-0 storage as the op's output.
fn pass_through<S: BackendStorage>(storage: &S, layout: &Layout) -> candle_core::Result<(S, Shape)> {
    if !layout.is_contiguous() || layout.start_offset() != 0 {
        candle_core::bail!("gemm-train-conv2d: the precomputed output must be contiguous from offset 0");
    }
    Ok((storage.try_clone(layout)?, layout.shape().clone()))
}

/// `[O, C, k, k]` -> `[C, O, k, k]` rotated by 180 degrees in space, on the weight's own device.
fn flip_transpose_kernel(weight: &Tensor) -> candle_core::Result<Tensor> {
    let (_, _, kernel_h, kernel_w) = weight.dims4()?;
    let reversed = |len: usize| Tensor::from_vec((0..len as u32).rev().collect::<Vec<u32>>(), len, weight.device());
    // CUDA's index-select reads contiguous tensors only (trainers pass scaled, permuted views).
    weight
        .contiguous()?
        .index_select(&reversed(kernel_h)?, 2)?
        .index_select(&reversed(kernel_w)?, 3)?
        .transpose(0, 1)?
        .contiguous()
}

/// `dW[o, c, ky, kx] = sum over n, y, x of dY[n, o, y, x] * X_padded[n, c, y + ky, x + kx]`.
fn weight_grad_by_taps(
    input: &Tensor,
    grad_output: &Tensor,
    kernel: usize,
    padding: usize,
) -> candle_core::Result<Tensor> {
    let (batch, channels, _, _) = input.dims4()?;
    let (_, maps_out, out_h, out_w) = grad_output.dims4()?;
    let padded = if padding > 0 {
        input.pad_with_zeros(2, padding, padding)?.pad_with_zeros(3, padding, padding)?
    } else {
        input.clone()
    };
    let grad_rows = grad_output.reshape((batch, maps_out, out_h * out_w))?;
    let mut taps = Vec::with_capacity(kernel * kernel);
    for ky in 0..kernel {
        for kx in 0..kernel {
            let shifted = padded.narrow(2, ky, out_h)?.narrow(3, kx, out_w)?.contiguous()?;
            let shifted = shifted.reshape((batch, channels, out_h * out_w))?;
            // [N, O, P] x [N, P, C] -> [N, O, C], summed over the batch
            taps.push(grad_rows.matmul(&shifted.transpose(1, 2)?)?.sum(0)?);
        }
    }
    // taps in (ky, kx) order: [O, C, k * k] -> [O, C, k, k]
    Tensor::stack(&taps, 2)?.reshape((maps_out, channels, kernel, kernel))
}

/// Stride-1 convolution of `x` `[N, C, H, W]` with `weight` `[O, C, kh, kw]`, zero padding `padding` on every side;
/// returns `[N, O, H + 2p - kh + 1, W + 2p - kw + 1]`.
pub fn conv2d_im2col(x: &Tensor, weight: &Tensor, padding: usize) -> candle_core::Result<Tensor> {
    let (batch, channels, height, width) = x.dims4()?;
    let (maps_out, weight_channels, kernel_h, kernel_w) = weight.dims4()?;
    if weight_channels != channels {
        candle_core::bail!("conv2d_im2col: input has {channels} channels, the kernel expects {weight_channels}");
    }
    let (padded_h, padded_w) = (height + 2 * padding, width + 2 * padding);
    if padded_h < kernel_h || padded_w < kernel_w {
        candle_core::bail!("conv2d_im2col: kernel {kernel_h}x{kernel_w} larger than the padded {padded_h}x{padded_w}");
    }
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

    /// The GEMM-lowered op gives the values and both gradients of the im2col reference (candle autograd through
    /// slices and one matmul) for every kernel/padding pair the trainers use, in f64 and in f32.
    #[test]
    fn gemm_train_conv_matches_the_im2col_reference() {
        for dtype in [DType::F64, DType::F32] {
            for (kernel, padding, size) in [(3usize, 1usize, 9usize), (2, 1, 7), (1, 0, 5), (4, 3, 4), (3, 0, 6)] {
                let x = Var::from_tensor(
                    &Tensor::randn(0f64, 1.0, (2, 5, size, size + 1), &Device::Cpu).unwrap().to_dtype(dtype).unwrap(),
                )
                .unwrap();
                let w = Var::from_tensor(
                    &Tensor::randn(0f64, 0.3, (4, 5, kernel, kernel), &Device::Cpu).unwrap().to_dtype(dtype).unwrap(),
                )
                .unwrap();
                let y_gemm = gemm_train_conv2d(x.as_tensor(), w.as_tensor(), padding).unwrap();
                let y_ref = conv2d_im2col(x.as_tensor(), w.as_tensor(), padding).unwrap();
                assert_eq!(y_gemm.dims(), y_ref.dims());
                let probe = Tensor::randn(0f64, 1.0, y_ref.dims(), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
                let grads_of = |y: &Tensor| {
                    let grads = (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
                    [grads.get(x.as_tensor()).unwrap().clone(), grads.get(w.as_tensor()).unwrap().clone()]
                        .map(|t| t.to_dtype(DType::F64).unwrap())
                };
                let tolerance = if dtype == DType::F64 { 1e-10 } else { 1e-4 };
                let as_f64 = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
                assert!(max_diff(&as_f64(&y_gemm), &as_f64(&y_ref)) < tolerance, "{dtype:?} kernel {kernel}: output");
                for (i, (a, b)) in grads_of(&y_gemm).iter().zip(&grads_of(&y_ref)).enumerate() {
                    assert_eq!(a.dims(), b.dims());
                    assert!(
                        max_diff(a, b) < tolerance,
                        "{dtype:?} kernel {kernel} pad {padding}: gradient {i} differs"
                    );
                }
            }
        }
    }
}
