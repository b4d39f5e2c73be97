//! Inference convolutions for CPU float32 NCHW tensors: im2col into a reused per-thread buffer, then one
//! single-threaded `gemm` call per tile of output rows, tiles spread over candle's rayon threads, with the work
//! around the convolution fused in:
//!
//! - a prologue on the input channels while the patches are packed (`relu(x * scale + shift)`, DenseNet's
//!   pre-activation BatchNorm + ReLU),
//! - an epilogue on the output tile while it is still in cache (`x * scale + shift`, the activation, and ProGAN's
//!   pixel norm over channels, which only needs the channels of one pixel and so fits a tile of whole columns),
//! - ProGAN's fused upscale as a sub-pixel convolution on the low-resolution input, its four phases written straight
//!   into their interleaved places (CycleGAN's 3x3 stride-2 transposed convolutions take the same path);
//! - Winograd F(2x2, 3x3) for 3x3 stride-1 layers and F(2x2, 2x2) for the sub-pixel upscale once the output has
//!   32x32 pixels or more (`winograd.rs`): 2.25x and 1.78x fewer multiply-adds.
//!
//! The GEMMs are fastest with `gemm`'s AVX-512 microkernels (feature `x86-v4`, chosen at run time by CPU detection):
//! 1.5x to 1.7x the AVX2 kernels on a Zen 5 machine. On an AVX2-only Zen 3 the networks still take 0.7x to 0.93x
//! PyTorch's time (BENCHMARKS.md).
//!
//! Maps at most `GATHER_MAX_OUT_WIDTH` pixels wide are packed by gathering through a table of source pixels: their
//! rows are too short for row copies.
//!
//! candle 0.11's own CPU conv2d reaches about 44 GFLOP/s on this project's 2-core machine against 240 for its matmul
//! (research/rust-stack.md section 4): the gap is the copies around its GEMM, not the GEMM. Tensors on other devices
//! or of other dtypes take candle's path with the same arithmetic, so CUDA keeps working unchanged.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::models::op_profile;
use crate::models::shifted_conv::device_conv2d;
// The training ops' CUDA kernels serve inference on the GPU too (see `apply_epilogue_on_device`).
use crate::train::fused_cuda::takes_fused_cuda;
use crate::train::{fused_activation, fused_batch_norm, phase_interleave};
use candle_core::{D, DType, Device, Result, Storage, Tensor, bail};
use rayon::prelude::*;

#[path = "winograd.rs"]
mod winograd;

#[path = "fast_conv_grad.rs"]
mod grad;
pub use grad::{conv2d_input_grad, conv2d_weight_grad, flipped_transposed_kernel};

/// Pixels of one tile's patch matrix are chosen so that it holds about this many floats (1 MiB, inside L2).
const PATCH_BUDGET_FLOATS: usize = 1 << 18;
/// Fewest output pixels per tile: smaller tiles make the GEMM too thin to reach its peak.
const MIN_TILE_PX: usize = 192;
/// Most output pixels per tile.
const MAX_TILE_PX: usize = 4096;
/// Maps at most this wide are packed by gathering through a table of source pixels rather than row by row.
const GATHER_MAX_OUT_WIDTH: usize = 8;

/// [`op_profile`] kinds of the convolution paths, shared with the networks that mark their own steps.
pub const PROFILE_CONVOLUTION: &str = "convolution";
pub const PROFILE_PROLOGUE: &str = "BatchNorm + ReLU before a convolution";
pub const PROFILE_EPILOGUE: &str = "convolution epilogue (bias/norm, activation)";

/// The pointwise function after a convolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// No activation.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// `max(x, x * negative_slope)` for a slope in [0, 1].
    LeakyRelu { negative_slope: f32 },
}

/// Work fused after the convolution, in this order: `x * scale[c] + shift[c]` (a bias is a shift; a folded
/// BatchNorm is both), the activation, then optionally ProGAN's pixel norm
/// `x / sqrt(mean over channels of x^2 + epsilon)`.
#[derive(Clone, Debug)]
pub struct Epilogue {
    /// Per output channel multiplier, `out` values in any shape.
    pub scale: Option<Tensor>,
    /// Per output channel addend, `out` values in any shape.
    pub shift: Option<Tensor>,
    pub activation: Activation,
    /// Pixel-norm epsilon; `None` leaves the channels unnormalised.
    pub pixel_norm_epsilon: Option<f32>,
}

impl Epilogue {
    /// Nothing after the convolution.
    pub fn identity() -> Self {
        Self { scale: None, shift: None, activation: Activation::Identity, pixel_norm_epsilon: None }
    }

    /// A bias only.
    pub fn bias(bias: Option<&Tensor>) -> Self {
        Self { shift: bias.cloned(), ..Self::identity() }
    }
}

/// `relu(x * scale[c] + shift[c])` on each input channel before it is convolved (padding stays zero, as when the
/// activated tensor is padded): DenseNet's BatchNorm + ReLU in front of a convolution.
#[derive(Clone, Debug)]
pub struct InputAffineRelu {
    /// Per input channel multiplier, `in` values in any shape.
    pub scale: Tensor,
    /// Per input channel addend, `in` values in any shape.
    pub shift: Tensor,
}

/// Process-wide switch of the fast path (on by default); off, every convolution takes candle's path.
static FAST_PATH_ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the CPU fast path on or off for the whole process: `thorax bench --conv candle` measures candle's own
/// convolutions with it off.
pub fn set_fast_path_enabled(enabled: bool) {
    FAST_PATH_ENABLED.store(enabled, Ordering::Relaxed);
}

/// Process-wide switch of the Winograd F(2x2, 3x3) path for 3x3 stride-1 layers (on by default).
static WINOGRAD_ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns Winograd on or off for 3x3 stride-1 layers (off: im2col + GEMM), for benchmarks and comparisons.
pub fn set_winograd_enabled(enabled: bool) {
    WINOGRAD_ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether the CPU fast path is on (see [`set_fast_path_enabled`]).
pub fn fast_path_enabled() -> bool {
    FAST_PATH_ENABLED.load(Ordering::Relaxed)
}

/// Whether `tensor` takes the fast path: a float32 tensor in CPU memory, with the fast path enabled.
pub fn is_cpu_f32(tensor: &Tensor) -> bool {
    fast_path_enabled() && matches!(tensor.device(), Device::Cpu) && tensor.dtype() == DType::F32
}

/// Whether `tensor` is float32 in CPU memory, whatever the fast-path switch says: what the routines that only
/// exist on the CPU need (a test switching the fast path off mid-pass must not break a pass already in a block).
fn in_cpu_f32_memory(tensor: &Tensor) -> bool {
    matches!(tensor.device(), Device::Cpu) && tensor.dtype() == DType::F32
}

/// `conv2d(input, weight) + bias` for NCHW `input` `[N, in, H, W]`, `weight` `[out, in, kh, kw]`, `bias` with `out`
/// values, square `stride` and `padding`, no dilation or groups. CPU float32 tensors take the fast path; any other
/// device or dtype uses `shifted_conv::device_conv2d` (cuBLAS on shifted views on CUDA, candle's conv2d elsewhere).
pub fn conv2d_nchw(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    conv2d_fused(input, weight, stride, padding, None, &Epilogue::bias(bias))
}

/// [`conv2d_nchw`] with an optional input prologue and an epilogue fused in.
pub fn conv2d_fused(
    input: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: usize,
    prologue: Option<&InputAffineRelu>,
    epilogue: &Epilogue,
) -> Result<Tensor> {
    let shape = ConvShape::new(input, weight, stride, padding)?;
    if !(is_cpu_f32(input) && is_cpu_f32(weight)) {
        let x = match prologue {
            Some(prologue) => {
                let x = input_affine_relu(input, prologue)?;
                op_profile::mark(PROFILE_PROLOGUE)?;
                x
            }
            None => input.clone(),
        };
        let y = device_conv2d(&x, weight, stride, padding)?;
        op_profile::mark(PROFILE_CONVOLUTION)?;
        let y = apply_epilogue_on_device(&y, epilogue, shape.channels_out)?;
        op_profile::mark(PROFILE_EPILOGUE)?;
        return Ok(y);
    }
    let input = input.contiguous()?;
    // Transformed weights are cached by tensor id, valid only for a weight used as it is.
    let weight_id = weight.is_contiguous().then(|| weight.id());
    let weight = weight.contiguous()?;
    let prologue_values = prologue_channel_values(prologue, shape.channels_in)?;
    let epilogue_values = EpilogueValues::new(epilogue, shape.channels_out)?;
    let threads = rayon::current_num_threads().max(1);
    let output = with_cpu_f32(&input, "conv2d input", |x| {
        with_cpu_f32(&weight, "conv2d weight", |w| {
            if prologue_values.is_none() && WINOGRAD_ENABLED.load(Ordering::Relaxed) && winograd::applies(&shape) {
                return Ok(winograd::conv3x3(x, w, weight_id, &shape, &epilogue_values, threads));
            }
            Ok(conv_cpu(x, w, &shape, prologue_values.as_ref(), &epilogue_values, Placement::Direct, None))
        })
    })?;
    let dims = (shape.batch, shape.channels_out, shape.out_height, shape.out_width);
    let output = Tensor::from_vec(output, dims, &Device::Cpu)?;
    op_profile::mark(PROFILE_CONVOLUTION)?;
    Ok(output)
}

/// [`conv2d_fused`] on the CPU, reading its input in place from `values`, where the `[N, C, H, W]` images of
/// `input_dims` are the first `C` channels of a wider `[N, C_total, H, W]` map (`image_stride = C_total * H * W`
/// floats apart): DenseNet's growing block, without copying the channels so far into a new tensor at every layer.
/// Always the im2col path (the layers that read the block are 1x1).
#[allow(clippy::too_many_arguments)] // conv2d_fused's arguments plus where the input lies.
pub fn conv2d_fused_prefix(
    values: &[f32],
    input_dims: [usize; 4],
    image_stride: usize,
    weight: &Tensor,
    stride: usize,
    padding: usize,
    prologue: Option<&InputAffineRelu>,
    epilogue: &Epilogue,
) -> Result<Tensor> {
    if !in_cpu_f32_memory(weight) {
        bail!(
            "conv2d_fused_prefix: the weight must be float32 in CPU memory, got {:?} on {:?}",
            weight.dtype(),
            weight.device()
        );
    }
    let mut shape = ConvShape::from_dims(input_dims, weight.dims4()?.into(), stride, padding)?;
    let needed = (shape.batch.max(1) - 1) * image_stride + shape.input_image_stride;
    if image_stride < shape.input_image_stride || values.len() < needed {
        bail!(
            "conv2d_fused_prefix: {} values with images {image_stride} apart cannot hold input {input_dims:?}",
            values.len()
        );
    }
    shape.input_image_stride = image_stride;
    let weight = weight.contiguous()?;
    let prologue_values = prologue_channel_values(prologue, shape.channels_in)?;
    let epilogue_values = EpilogueValues::new(epilogue, shape.channels_out)?;
    let output = with_cpu_f32(&weight, "conv2d weight", |w| {
        Ok(conv_cpu(values, w, &shape, prologue_values.as_ref(), &epilogue_values, Placement::Direct, None))
    })?;
    let dims = (shape.batch, shape.channels_out, shape.out_height, shape.out_width);
    let output = Tensor::from_vec(output, dims, &Device::Cpu)?;
    op_profile::mark(PROFILE_CONVOLUTION)?;
    Ok(output)
}

/// The fast-path convolution of plain contiguous NCHW float32 values, no bias, no weight cache (for weights that
/// change every call, as in training): `input` of `input_dims`, `weight` of `weight_dims` `[out, in, kh, kw]`.
/// Returns the `[N, out, out_h, out_w]` output values and their dims.
pub fn conv2d_values(
    input: &[f32],
    input_dims: [usize; 4],
    weight: &[f32],
    weight_dims: [usize; 4],
    stride: usize,
    padding: usize,
) -> Result<(Vec<f32>, [usize; 4])> {
    let shape = ConvShape::from_dims(input_dims, weight_dims, stride, padding)?;
    if input.len() != input_dims.iter().product::<usize>() || weight.len() != weight_dims.iter().product::<usize>() {
        bail!(
            "conv2d: {} input values for dims {input_dims:?}, {} weight values for dims {weight_dims:?}",
            input.len(),
            weight.len()
        );
    }
    let epilogue = EpilogueValues::new(&Epilogue::identity(), shape.channels_out)?;
    let threads = rayon::current_num_threads().max(1);
    let output = if WINOGRAD_ENABLED.load(Ordering::Relaxed) && winograd::applies(&shape) {
        winograd::conv3x3(input, weight, None, &shape, &epilogue, threads)
    } else {
        conv_cpu(input, weight, &shape, None, &epilogue, Placement::Direct, None)
    };
    Ok((output, [shape.batch, shape.channels_out, shape.out_height, shape.out_width]))
}

/// A transposed convolution with stride 2 whose kernel is given as four 2x2 sub-pixel phase kernels
/// `phase_kernels` `[4 * maps_out, in, 2, 2]`, phases in order (row parity, column parity) = (0,0), (0,1), (1,0),
/// (1,1): phase (a, b) is the 2x2 convolution of `input` padded by 1 whose window starting at (a, b) gives output
/// pixels (2i + a, 2j + b). Output `[N, maps_out, 2H, 2W]`, then the epilogue (its pixel norm per output pixel).
/// This is ProGAN's `Conv0_up` computed on the low-resolution input (4 multiply-adds per output value and channel
/// pair instead of 9 for nearest-upsample-then-3x3).
pub fn subpixel_upscale(
    input: &Tensor,
    phase_kernels: &Tensor,
    maps_out: usize,
    epilogue: &Epilogue,
) -> Result<Tensor> {
    let shape = ConvShape::new(input, phase_kernels, 1, 1)?;
    if shape.kernel_height != 2 || shape.kernel_width != 2 || shape.channels_out != 4 * maps_out {
        bail!("subpixel_upscale: phase kernels of shape {:?} are not [4 * {maps_out}, in, 2, 2]", phase_kernels.dims());
    }
    if !(is_cpu_f32(input) && is_cpu_f32(phase_kernels)) {
        let phases = device_conv2d(input, phase_kernels, 1, 1)?;
        op_profile::mark(PROFILE_CONVOLUTION)?;
        // One kernel on CUDA (`phase_interleave` chooses), candle's narrows and stacks elsewhere.
        let image = phase_interleave::interleave_phases(&phases, maps_out)?;
        op_profile::mark("sub-pixel phase interleave")?;
        let image = apply_epilogue_on_device(&image, epilogue, maps_out)?;
        op_profile::mark(PROFILE_EPILOGUE)?;
        return Ok(image);
    }
    let input = input.contiguous()?;
    let kernels_id = phase_kernels.is_contiguous().then(|| phase_kernels.id());
    let phase_kernels = phase_kernels.contiguous()?;
    let epilogue_values = EpilogueValues::new(epilogue, maps_out)?;
    let output = with_cpu_f32(&input, "upscale input", |x| {
        with_cpu_f32(&phase_kernels, "upscale phase kernels", |w| {
            let transformed = (WINOGRAD_ENABLED.load(Ordering::Relaxed) && winograd::subpixel_applies(&shape))
                .then(|| winograd::cached_weights(kernels_id, || winograd::transform_weights_2x2(w, &shape)));
            let placement = Placement::SubpixelPhases { maps_out };
            let transformed = transformed.as_ref().map(|u| u.as_slice());
            Ok(conv_cpu(x, w, &shape, None, &epilogue_values, placement, transformed))
        })
    })?;
    let dims = (shape.batch, maps_out, 2 * shape.height, 2 * shape.width);
    let output = Tensor::from_vec(output, dims, &Device::Cpu)?;
    op_profile::mark(PROFILE_CONVOLUTION)?;
    Ok(output)
}

/// Taps of a 3x3 `ConvTranspose2d` (stride 2, padding 1, output_padding 1) that the 2x2 window of output phase
/// `parity` reads: output row 2m takes `x[m] * k[1]` (window rows m - 1, m), row 2m + 1 takes
/// `x[m] * k[2] + x[m + 1] * k[0]` (window rows m, m + 1).
const TRANSPOSED_3X3_TAPS: [[Option<usize>; 2]; 2] = [[None, Some(1)], [Some(2), Some(0)]];

/// The sub-pixel phase kernels `[4 * out, in, 2, 2]` (for [`subpixel_upscale`]) of a PyTorch
/// `ConvTranspose2d(kernel 3, stride 2, padding 1, output_padding 1)` weight `[in, out, 3, 3]`; the unused taps
/// are zero. The transposed convolution doubles the size exactly, as the sub-pixel convolution does.
pub fn subpixel_kernels_from_transposed_3x3(weight: &Tensor) -> Result<Tensor> {
    let (cin, cout, kh, kw) = weight.dims4()?;
    if (kh, kw) != (3, 3) {
        bail!("subpixel_kernels_from_transposed_3x3: weight of shape {:?} is not [in, out, 3, 3]", weight.dims());
    }
    let values = weight.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let mut kernels = vec![0.0f32; 4 * cout * cin * 4];
    for (a, row_taps) in TRANSPOSED_3X3_TAPS.iter().enumerate() {
        for (b, col_taps) in TRANSPOSED_3X3_TAPS.iter().enumerate() {
            for co in 0..cout {
                for ci in 0..cin {
                    for (wy, ky) in row_taps.iter().enumerate() {
                        for (wx, kx) in col_taps.iter().enumerate() {
                            if let (Some(ky), Some(kx)) = (ky, kx) {
                                let target = ((((2 * a + b) * cout + co) * cin + ci) * 2 + wy) * 2 + wx;
                                kernels[target] = values[((ci * cout + co) * 3 + ky) * 3 + kx];
                            }
                        }
                    }
                }
            }
        }
    }
    Tensor::from_vec(kernels, (4 * cout, cin, 2, 2), weight.device())?.to_dtype(weight.dtype())
}

/// `relu(x * scale + shift)` per channel of `x` `[N, C, H, W]`, unfused from a convolution: one pass of the fused
/// BatchNorm kernel on CUDA float32, candle ops elsewhere.
pub fn input_affine_relu(x: &Tensor, prologue: &InputAffineRelu) -> Result<Tensor> {
    if takes_fused_cuda(x) {
        return fused_batch_norm::affine_relu(x, &cached_affine_relu_params(&prologue.scale, &prologue.shift)?);
    }
    let channels = x.dim(1)?;
    let scale = prologue.scale.reshape((1, channels, 1, 1))?;
    let shift = prologue.shift.reshape((1, channels, 1, 1))?;
    x.broadcast_mul(&scale)?.broadcast_add(&shift)?.relu()
}

/// The epilogue off the CPU fast path. ProGAN's `bias + leaky ReLU (+ pixel norm)` goes to the fused training op,
/// which on CUDA float32 is one kernel launch (checked against the CPU on an H200, 3e-7) instead of about nine
/// elementwise and reduction launches, the bulk of a batch-1 generator pass on a GPU (the op composes candle ops
/// where it has no kernel); any other epilogue composes candle ops here.
pub(crate) fn apply_epilogue_on_device(y: &Tensor, epilogue: &Epilogue, channels: usize) -> Result<Tensor> {
    // DenseNet's BatchNorm + ReLU after a convolution: one pass of the fused BatchNorm op (a kernel on CUDA).
    if let (Some(scale), Some(shift), Activation::Relu, None) =
        (&epilogue.scale, &epilogue.shift, epilogue.activation, epilogue.pixel_norm_epsilon)
        && takes_fused_cuda(y)
    {
        return fused_batch_norm::affine_relu(y, &cached_affine_relu_params(scale, shift)?);
    }
    if let (None, Some(bias), Activation::LeakyRelu { negative_slope }) =
        (&epilogue.scale, &epilogue.shift, epilogue.activation)
    {
        let bias = bias.reshape(channels)?;
        let slope = f64::from(negative_slope);
        return match epilogue.pixel_norm_epsilon {
            Some(epsilon) => fused_activation::bias_leaky_relu_pixel_norm(y, &bias, slope, f64::from(epsilon)),
            None => fused_activation::bias_leaky_relu(y, &bias, slope),
        };
    }
    apply_epilogue_candle(y, epilogue, channels)
}

/// Most (scale, shift) pairs whose [`fused_batch_norm::affine_relu_params`] a thread keeps: DenseNet-121 has 120
/// BatchNorms, so this holds several models' worth.
const AFFINE_RELU_PARAMS_CACHED: usize = 1024;

/// [`fused_batch_norm::affine_relu_params`] of a model's folded BatchNorm, made once per pair of tensors (a model
/// passes the same tensors at every forward pass; building them each time would cost more launches than it saves).
fn cached_affine_relu_params(scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
    type Cache = std::collections::VecDeque<((candle_core::TensorId, candle_core::TensorId), Tensor)>;
    thread_local! {
        static PARAMS: RefCell<Cache> = const { RefCell::new(std::collections::VecDeque::new()) };
    }
    let key = (scale.id(), shift.id());
    if let Some(found) = PARAMS.with(|cache| cache.borrow().iter().find(|(k, _)| *k == key).map(|(_, p)| p.clone())) {
        return Ok(found);
    }
    let made = fused_batch_norm::affine_relu_params(scale, shift)?;
    PARAMS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= AFFINE_RELU_PARAMS_CACHED {
            cache.pop_front();
        }
        cache.push_back((key, made.clone()));
    });
    Ok(made)
}

/// The epilogue with candle ops: the reference the fast path is tested against and the path for other devices.
pub fn apply_epilogue_candle(y: &Tensor, epilogue: &Epilogue, channels: usize) -> Result<Tensor> {
    let mut y = y.clone();
    if let Some(scale) = &epilogue.scale {
        y = y.broadcast_mul(&scale.reshape((1, channels, 1, 1))?)?;
    }
    if let Some(shift) = &epilogue.shift {
        y = y.broadcast_add(&shift.reshape((1, channels, 1, 1))?)?;
    }
    y = match epilogue.activation {
        Activation::Identity => y,
        Activation::Relu => y.relu()?,
        Activation::LeakyRelu { negative_slope } => y.maximum(&(&y * f64::from(negative_slope))?)?,
    };
    if let Some(epsilon) = epilogue.pixel_norm_epsilon {
        let scale = (y.sqr()?.mean_keepdim(D::Minus(3))? + f64::from(epsilon))?.sqrt()?.recip()?;
        y = y.broadcast_mul(&scale)?;
    }
    Ok(y)
}

/// Geometry of one convolution, checked.
#[derive(Clone, Copy, Debug)]
struct ConvShape {
    batch: usize,
    channels_in: usize,
    height: usize,
    width: usize,
    channels_out: usize,
    kernel_height: usize,
    kernel_width: usize,
    stride: usize,
    padding: usize,
    out_height: usize,
    out_width: usize,
    /// Floats from one input image to the next: `channels_in * height * width` unless the images are a channel
    /// prefix of a wider map ([`conv2d_fused_prefix`]).
    input_image_stride: usize,
}

impl ConvShape {
    fn new(input: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Self> {
        let (batch, channels_in, height, width) = input.dims4()?;
        let (channels_out, weight_in, kernel_height, kernel_width) = weight.dims4()?;
        if weight_in != channels_in {
            bail!(
                "conv2d: weight of shape {:?} expects {weight_in} input channels, input has shape {:?}",
                weight.dims(),
                input.dims()
            );
        }
        Self::from_dims(
            [batch, channels_in, height, width],
            [channels_out, weight_in, kernel_height, kernel_width],
            stride,
            padding,
        )
    }

    /// The shape from NCHW input dims and `[out, in, kh, kw]` weight dims.
    fn from_dims(input: [usize; 4], weight: [usize; 4], stride: usize, padding: usize) -> Result<Self> {
        let [batch, channels_in, height, width] = input;
        let [channels_out, weight_in, kernel_height, kernel_width] = weight;
        if weight_in != channels_in {
            bail!("conv2d: weight {weight:?} expects {weight_in} input channels, input {input:?} has {channels_in}");
        }
        if stride == 0 {
            bail!("conv2d: stride must be at least 1");
        }
        let padded_height = height + 2 * padding;
        let padded_width = width + 2 * padding;
        if kernel_height == 0 || kernel_width == 0 || padded_height < kernel_height || padded_width < kernel_width {
            bail!(
                "conv2d: kernel {kernel_height}x{kernel_width} does not fit input {height}x{width} with padding {padding}"
            );
        }
        Ok(Self {
            batch,
            channels_in,
            height,
            width,
            channels_out,
            kernel_height,
            kernel_width,
            stride,
            padding,
            out_height: (padded_height - kernel_height) / stride + 1,
            out_width: (padded_width - kernel_width) / stride + 1,
            input_image_stride: channels_in * height * width,
        })
    }

    /// Rows of the patch matrix: one per (input channel, kernel row, kernel column).
    fn patch_rows(&self) -> usize {
        self.channels_in * self.kernel_height * self.kernel_width
    }

    fn is_pointwise(&self) -> bool {
        self.kernel_height == 1 && self.kernel_width == 1 && self.stride == 1 && self.padding == 0
    }
}

/// Runs `f` on the contiguous float32 values of a CPU tensor without copying them.
pub(crate) fn with_cpu_f32<R>(tensor: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = tensor.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        bail!("{what}: expected a tensor in CPU memory");
    };
    let data = cpu.as_slice::<f32>()?;
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{what}: expected a contiguous tensor");
    };
    match data.get(start..end) {
        Some(values) => f(values),
        None => bail!("{what}: layout {start}..{end} is outside its storage of {} values", data.len()),
    }
}

/// A prologue's scale and shift as plain per-channel vectors.
fn prologue_channel_values(
    prologue: Option<&InputAffineRelu>,
    channels: usize,
) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
    prologue
        .map(|p| {
            Ok((
                channel_values(&p.scale, channels, "prologue scale")?,
                channel_values(&p.shift, channels, "prologue shift")?,
            ))
        })
        .transpose()
}

/// The `channels` values of a per-channel tensor, as f32.
pub(crate) fn channel_values(tensor: &Tensor, channels: usize, what: &str) -> Result<Vec<f32>> {
    let values = tensor.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    if values.len() != channels {
        bail!("{what}: {} values for {channels} channels (shape {:?})", values.len(), tensor.dims());
    }
    Ok(values)
}

/// The epilogue as plain per-channel vectors.
struct EpilogueValues {
    scale: Option<Vec<f32>>,
    shift: Option<Vec<f32>>,
    activation: Activation,
    pixel_norm_epsilon: Option<f32>,
}

impl EpilogueValues {
    fn new(epilogue: &Epilogue, channels: usize) -> Result<Self> {
        let read = |t: &Option<Tensor>, what: &str| t.as_ref().map(|t| channel_values(t, channels, what)).transpose();
        Ok(Self {
            scale: read(&epilogue.scale, "epilogue scale")?,
            shift: read(&epilogue.shift, "epilogue shift")?,
            activation: epilogue.activation,
            pixel_norm_epsilon: epilogue.pixel_norm_epsilon,
        })
    }

    fn is_identity(&self) -> bool {
        self.scale.is_none()
            && self.shift.is_none()
            && self.activation == Activation::Identity
            && self.pixel_norm_epsilon.is_none()
    }

    /// Applies the epilogue to `rows` (one per output channel, each `columns` long, `row_stride` apart from `base`).
    ///
    /// # Safety
    /// `base + c * row_stride + j` for `c < channels`, `j < columns` must be valid for reads and writes and not
    /// touched by anything else during the call.
    unsafe fn apply(&self, base: *mut f32, row_stride: usize, channels: usize, columns: usize, sumsq: &mut Vec<f32>) {
        if self.is_identity() {
            return;
        }
        let norm = self.pixel_norm_epsilon.is_some();
        if norm {
            sumsq.clear();
            sumsq.resize(columns, 0.0);
        }
        for c in 0..channels {
            // SAFETY: row c of the tile, valid and exclusive by the caller's contract.
            let row = unsafe { std::slice::from_raw_parts_mut(base.add(c * row_stride), columns) };
            let scale = self.scale.as_ref().and_then(|s| s.get(c)).copied().unwrap_or(1.0);
            let shift = self.shift.as_ref().and_then(|s| s.get(c)).copied().unwrap_or(0.0);
            match self.activation {
                Activation::Identity => row.iter_mut().for_each(|v| *v = *v * scale + shift),
                Activation::Relu => row.iter_mut().for_each(|v| *v = (*v * scale + shift).max(0.0)),
                Activation::LeakyRelu { negative_slope } => row.iter_mut().for_each(|v| {
                    let x = *v * scale + shift;
                    *v = x.max(x * negative_slope);
                }),
            }
            if norm {
                sumsq.iter_mut().zip(row.iter()).for_each(|(s, v)| *s += v * v);
            }
        }
        if let Some(epsilon) = self.pixel_norm_epsilon {
            let mean_scale = 1.0 / channels as f32;
            sumsq.iter_mut().for_each(|s| *s = 1.0 / (*s * mean_scale + epsilon).sqrt());
            for c in 0..channels {
                // SAFETY: as above.
                let row = unsafe { std::slice::from_raw_parts_mut(base.add(c * row_stride), columns) };
                row.iter_mut().zip(sumsq.iter()).for_each(|(v, s)| *v *= s);
            }
        }
    }
}

/// Where the GEMM results go.
#[derive(Clone, Copy, Debug)]
enum Placement {
    /// Straight into the NCHW output.
    Direct,
    /// Four sub-pixel phases of `maps_out` channels each, interleaved into a `[N, maps_out, 2H, 2W]` output where
    /// the convolution ran over the `(H + 1) x (W + 1)` positions of the input padded by 1.
    SubpixelPhases { maps_out: usize },
}

/// The sub-pixel kernels transformed for Winograd F(2x2, 2x2), when that path applies.
type SubpixelWinograd<'a> = Option<&'a [f32]>;

/// A pointer the tiles share; each tile writes a disjoint part of the output.
#[derive(Clone, Copy)]
struct SharedOutput(*mut f32);
// SAFETY: tiles write disjoint regions (distinct images or output rows), checked by the tiling in `conv_cpu`.
unsafe impl Send for SharedOutput {}
unsafe impl Sync for SharedOutput {}

thread_local! {
    /// The patch matrix, GEMM scratch and pixel-norm sums of this thread's tiles, reused across calls.
    static SCRATCH: RefCell<TileScratch> = RefCell::new(TileScratch::default());
}

#[derive(Default)]
struct TileScratch {
    patches: Vec<f32>,
    products: Vec<f32>,
    /// Winograd products before the output transform (sub-pixel path).
    transformed: Vec<f32>,
    sumsq: Vec<f32>,
}

/// The convolution of contiguous NCHW `input` with `weight` `[out, in, kh, kw]` on the CPU.
fn conv_cpu(
    input: &[f32],
    weight: &[f32],
    shape: &ConvShape,
    prologue: Option<&(Vec<f32>, Vec<f32>)>,
    epilogue: &EpilogueValues,
    placement: Placement,
    winograd_weights: SubpixelWinograd,
) -> Vec<f32> {
    let pixels = shape.out_height * shape.out_width;
    let output_len = match placement {
        Placement::Direct => shape.batch * shape.channels_out * pixels,
        Placement::SubpixelPhases { maps_out } => shape.batch * maps_out * 4 * shape.height * shape.width,
    };
    let mut output = vec![0.0f32; output_len];
    if output_len == 0 {
        return output;
    }
    let threads = rayon::current_num_threads().max(1);
    let tile_px = (PATCH_BUDGET_FLOATS / shape.patch_rows().max(1)).clamp(MIN_TILE_PX, MAX_TILE_PX);
    let mut tiles_per_image = pixels.div_ceil(tile_px).max(1);
    if shape.batch * tiles_per_image < threads && pixels >= threads * MIN_TILE_PX {
        tiles_per_image = threads.div_ceil(shape.batch);
    }
    // Round so that the tiles share the threads evenly.
    let tiles = (shape.batch * tiles_per_image).div_ceil(threads) * threads;
    let tiles_per_image = tiles.div_ceil(shape.batch).min(shape.out_height).max(1);
    let mut rows_per_tile = shape.out_height.div_ceil(tiles_per_image);
    if winograd_weights.is_some() {
        // Winograd works on 2x2 output tiles: keep every tile but the last an even number of rows.
        rows_per_tile += rows_per_tile % 2;
    }
    let tiles_per_image = shape.out_height.div_ceil(rows_per_tile);
    let tile_count = shape.batch * tiles_per_image;
    let shared = SharedOutput(output.as_mut_ptr());
    let run_tile = |tile: usize, parallelism: gemm::Parallelism| {
        let image = tile / tiles_per_image;
        let first_row = (tile % tiles_per_image) * rows_per_tile;
        let rows = rows_per_tile.min(shape.out_height - first_row);
        let job =
            TileJob { input, weight, shape, prologue, epilogue, placement, winograd_weights, image, first_row, rows };
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => job.run(&mut scratch, shared, parallelism),
            // Re-entered on this thread (a rayon worker running another tile while it waits): use fresh buffers.
            Err(_) => job.run(&mut TileScratch::default(), shared, parallelism),
        });
    };
    if tile_count >= threads && threads > 1 {
        (0..tile_count).into_par_iter().for_each(|tile| run_tile(tile, gemm::Parallelism::None));
    } else {
        let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        (0..tile_count).for_each(|tile| run_tile(tile, parallelism));
    }
    output
}

/// One tile: output rows `first_row..first_row + rows` of one image.
struct TileJob<'a> {
    input: &'a [f32],
    weight: &'a [f32],
    shape: &'a ConvShape,
    prologue: Option<&'a (Vec<f32>, Vec<f32>)>,
    epilogue: &'a EpilogueValues,
    placement: Placement,
    winograd_weights: SubpixelWinograd<'a>,
    image: usize,
    first_row: usize,
    rows: usize,
}

impl TileJob<'_> {
    fn run(&self, scratch: &mut TileScratch, output: SharedOutput, parallelism: gemm::Parallelism) {
        let shape = self.shape;
        let pixels = shape.out_height * shape.out_width;
        let columns = self.rows * shape.out_width;
        let patch_rows = shape.patch_rows();
        let image_len = shape.channels_in * shape.height * shape.width;
        let image_start = self.image * shape.input_image_stride;
        let image_input = &self.input[image_start..image_start + image_len];
        if let (Placement::SubpixelPhases { maps_out }, Some(u)) = (self.placement, self.winograd_weights) {
            scratch.products.resize(shape.channels_out * columns, 0.0);
            let rows = (self.first_row, self.rows);
            winograd::subpixel_positions(
                image_input,
                u,
                shape,
                rows,
                &mut scratch.products,
                &mut scratch.patches,
                &mut scratch.transformed,
                parallelism,
            );
            let products = scratch.products.as_mut_ptr();
            // SAFETY: as in the GEMM branch below.
            unsafe {
                for phase in 0..4 {
                    let phase_base = products.add(phase * maps_out * columns);
                    self.epilogue.apply(phase_base, columns, maps_out, columns, &mut scratch.sumsq);
                }
                self.scatter_phases(&scratch.products, output, maps_out);
            }
            return;
        }
        // The right-hand matrix [patch_rows, columns] and its row stride.
        let (rhs, rhs_row_stride) = if shape.is_pointwise() && self.prologue.is_none() {
            (image_input[self.first_row * shape.out_width..].as_ptr(), pixels)
        } else {
            scratch.patches.resize(patch_rows * columns, 0.0);
            self.pack_patches(image_input, &mut scratch.patches);
            (scratch.patches.as_ptr(), columns)
        };
        match self.placement {
            Placement::Direct => {
                let offset = self.image * shape.channels_out * pixels + self.first_row * shape.out_width;
                // SAFETY: this tile's columns of every channel row of this image, disjoint from other tiles.
                unsafe {
                    let dst = output.0.add(offset);
                    gemm_f32(
                        shape.channels_out,
                        columns,
                        patch_rows,
                        dst,
                        pixels,
                        self.weight,
                        rhs,
                        rhs_row_stride,
                        parallelism,
                    );
                    self.epilogue.apply(dst, pixels, shape.channels_out, columns, &mut scratch.sumsq);
                }
            }
            Placement::SubpixelPhases { maps_out } => {
                scratch.products.resize(shape.channels_out * columns, 0.0);
                let products = scratch.products.as_mut_ptr();
                // SAFETY: `products` holds channels_out * columns values; the scatter writes output rows 2y - a
                // for this tile's positions y, which no other tile has.
                unsafe {
                    gemm_f32(
                        shape.channels_out,
                        columns,
                        patch_rows,
                        products,
                        columns,
                        self.weight,
                        rhs,
                        rhs_row_stride,
                        parallelism,
                    );
                    for phase in 0..4 {
                        let phase_base = products.add(phase * maps_out * columns);
                        self.epilogue.apply(phase_base, columns, maps_out, columns, &mut scratch.sumsq);
                    }
                    self.scatter_phases(&scratch.products, output, maps_out);
                }
            }
        }
    }

    /// im2col: row `(ci, ky, kx)` of the patch matrix holds, for each output pixel of the tile, the input value the
    /// kernel tap (ky, kx) of channel ci sees there (0 in the padding), after the prologue.
    fn pack_patches(&self, image_input: &[f32], patches: &mut [f32]) {
        let s = self.shape;
        if s.out_width <= GATHER_MAX_OUT_WIDTH {
            self.gather_patches(image_input, patches);
            return;
        }
        let columns = self.rows * s.out_width;
        let plane = s.height * s.width;
        let mut patch_row = 0;
        for ci in 0..s.channels_in {
            let channel = &image_input[ci * plane..(ci + 1) * plane];
            let (scale, shift) = match self.prologue {
                Some((scale, shift)) => (scale.get(ci).copied(), shift.get(ci).copied().unwrap_or(0.0)),
                None => (None, 0.0),
            };
            for ky in 0..s.kernel_height {
                for kx in 0..s.kernel_width {
                    let row = &mut patches[patch_row * columns..(patch_row + 1) * columns];
                    patch_row += 1;
                    // Output columns whose input column x * stride + kx - padding lies inside the image.
                    let first_x = s.padding.saturating_sub(kx).div_ceil(s.stride).min(s.out_width);
                    let end_x = if s.width + s.padding > kx {
                        ((s.width + s.padding - kx - 1) / s.stride + 1).clamp(first_x, s.out_width)
                    } else {
                        first_x
                    };
                    for (r, out_row) in row.chunks_exact_mut(s.out_width).enumerate() {
                        let y = (self.first_row + r) * s.stride + ky;
                        if y < s.padding || y - s.padding >= s.height {
                            out_row.fill(0.0);
                            continue;
                        }
                        let source = &channel[(y - s.padding) * s.width..(y - s.padding + 1) * s.width];
                        out_row[..first_x].fill(0.0);
                        out_row[end_x..].fill(0.0);
                        let inside = &mut out_row[first_x..end_x];
                        let first_source = first_x * s.stride + kx - s.padding;
                        if s.stride == 1 {
                            let source = &source[first_source..first_source + inside.len()];
                            match scale {
                                Some(scale) => {
                                    inside.iter_mut().zip(source).for_each(|(d, v)| *d = (v * scale + shift).max(0.0))
                                }
                                None => inside.copy_from_slice(source),
                            }
                        } else {
                            let strided = source[first_source..].iter().step_by(s.stride);
                            match scale {
                                Some(scale) => {
                                    inside.iter_mut().zip(strided).for_each(|(d, v)| *d = (v * scale + shift).max(0.0))
                                }
                                None => inside.iter_mut().zip(strided).for_each(|(d, v)| *d = *v),
                            }
                        }
                    }
                }
            }
        }
    }

    /// [`Self::pack_patches`] for narrow maps, where a row of the tile holds a handful of values and the per-row
    /// bookkeeping (bounds, zero fills, a copy call) cost more than the values: each kernel tap's source pixel (or
    /// none, in the padding) is worked out once per tile, and every channel is gathered through that table.
    fn gather_patches(&self, image_input: &[f32], patches: &mut [f32]) {
        let s = self.shape;
        let columns = self.rows * s.out_width;
        let plane = s.height * s.width;
        let taps = s.kernel_height * s.kernel_width;
        // Source offset in a channel plane per (tap, column); usize::MAX in the padding, where `get` gives None.
        let mut sources = Vec::with_capacity(taps * columns);
        for ky in 0..s.kernel_height {
            for kx in 0..s.kernel_width {
                for r in 0..self.rows {
                    let y = ((self.first_row + r) * s.stride + ky).wrapping_sub(s.padding);
                    for x in 0..s.out_width {
                        let x = (x * s.stride + kx).wrapping_sub(s.padding);
                        sources.push(if y < s.height && x < s.width { y * s.width + x } else { usize::MAX });
                    }
                }
            }
        }
        for ci in 0..s.channels_in {
            let channel = &image_input[ci * plane..(ci + 1) * plane];
            let rows = &mut patches[ci * taps * columns..(ci + 1) * taps * columns];
            let affine =
                self.prologue.and_then(|(scale, shift)| Some((*scale.get(ci)?, shift.get(ci).copied().unwrap_or(0.0))));
            match affine {
                Some((scale, shift)) => {
                    rows.iter_mut().zip(&sources).for_each(|(d, &i)| {
                        *d = channel.get(i).map_or(0.0, |v| (v * scale + shift).max(0.0));
                    });
                }
                None => rows.iter_mut().zip(&sources).for_each(|(d, &i)| *d = channel.get(i).copied().unwrap_or(0.0)),
            }
        }
    }

    /// Writes phase (a, b) at position (y, x) to output pixel (2(y - a) + a, 2(x - b) + b) = (2y - a, 2x - b).
    ///
    /// # Safety
    /// `output` must hold the `[N, maps_out, 2H, 2W]` output, with no other tile writing this tile's rows.
    unsafe fn scatter_phases(&self, products: &[f32], output: SharedOutput, maps_out: usize) {
        let s = self.shape;
        let (height, width) = (s.height, s.width);
        let (out_h, out_w) = (2 * height, 2 * width);
        let columns = self.rows * s.out_width;
        for a in 0..2 {
            for b in 0..2 {
                let phase = &products[(2 * a + b) * maps_out * columns..(2 * a + b + 1) * maps_out * columns];
                for c in 0..maps_out {
                    let plane_offset = (self.image * maps_out + c) * out_h * out_w;
                    for r in 0..self.rows {
                        let y = self.first_row + r;
                        if y < a || y - a >= height {
                            continue;
                        }
                        let out_y = 2 * y - a;
                        let source = &phase[c * columns + r * s.out_width + b..][..width];
                        // SAFETY: out_y < 2H and 2x + b < 2W for x < W; row out_y belongs to this tile.
                        let out_row = unsafe { output.0.add(plane_offset + out_y * out_w + b) };
                        for (x, v) in source.iter().enumerate() {
                            unsafe { *out_row.add(2 * x) = *v };
                        }
                    }
                }
            }
        }
    }
}

/// `dst[m, n] = lhs[m, k] * rhs[k, n]`, all row-major: `lhs` contiguous, `rhs` and `dst` with the given row strides.
///
/// # Safety
/// `dst` must be valid for `m` rows of `n` values `dst_row_stride` apart, `rhs` for `k` rows of `n` values
/// `rhs_row_stride` apart, and `lhs` must hold `m * k` values.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_row_stride: usize,
    lhs: &[f32],
    rhs: *const f32,
    rhs_row_stride: usize,
    parallelism: gemm::Parallelism,
) {
    debug_assert!(lhs.len() >= m * k);
    // SAFETY: the caller's contract; alpha 0 with read_dst false overwrites dst.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_row_stride as isize,
            false,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs,
            1,
            rhs_row_stride as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::train::phase_interleave::interleave_phases_composed;

    pub(super) fn random(shape: &[usize], seed: u64) -> Tensor {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
        let count: usize = shape.iter().product();
        let values: Vec<f32> = (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    /// Max |a - b| relative to the largest |b|.
    pub(crate) fn relative_error(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max) / scale
    }

    #[test]
    fn conv2d_matches_candle_on_assorted_shapes() {
        // (batch, in, out, h, w, k, stride, padding)
        let cases = [
            (1, 3, 8, 17, 13, 3, 1, 1),
            (2, 5, 7, 9, 11, 3, 2, 1),
            (1, 3, 16, 23, 29, 7, 2, 3),
            (2, 16, 12, 10, 6, 1, 1, 0),
            (1, 4, 6, 8, 8, 1, 2, 0),
            (1, 6, 5, 7, 9, 3, 1, 0),
            (3, 2, 3, 5, 4, 2, 1, 1),
            (1, 64, 32, 56, 56, 3, 1, 1),
            (1, 8, 4, 1, 1, 3, 1, 1),
            (1, 9, 33, 130, 70, 5, 3, 2),
            // 3x3 stride 1, Winograd F(2x2, 3x3) from 1024 output pixels: odd sides, padding 0 and 1, batches, thin and
            // wide channel counts.
            (2, 16, 16, 7, 9, 3, 1, 1),
            (1, 24, 40, 13, 6, 3, 1, 0),
            (1, 128, 32, 14, 14, 3, 1, 1),
            (3, 32, 17, 2, 3, 3, 1, 1),
            (1, 512, 512, 4, 4, 3, 1, 1),
            (1, 64, 64, 67, 45, 3, 1, 1),
            (1, 24, 40, 41, 33, 3, 1, 0),
            (2, 16, 20, 35, 34, 3, 1, 1),
            // Small maps (DenseNet's 4x4 and 2x2 blocks at 64 px), packed by gathering, an odd batch, stride 2.
            (16, 48, 12, 4, 4, 3, 1, 1),
            (16, 300, 48, 2, 2, 1, 1, 0),
            (5, 7, 9, 6, 10, 3, 2, 1),
            (2, 3, 4, 9, 5, 5, 1, 2),
        ];
        for (seed, &(n, ci, co, h, w, k, stride, padding)) in cases.iter().enumerate() {
            let x = random(&[n, ci, h, w], seed as u64);
            let weight = random(&[co, ci, k, k], 100 + seed as u64);
            let bias = random(&[co], 200 + seed as u64);
            let fast = conv2d_nchw(&x, &weight, Some(&bias), stride, padding).unwrap();
            let reference = x
                .conv2d(&weight, padding, stride, 1, 1)
                .unwrap()
                .broadcast_add(&bias.reshape((1, co, 1, 1)).unwrap())
                .unwrap();
            let error = relative_error(&fast, &reference);
            assert!(error < 1e-4, "case {seed}: relative error {error}");
        }
    }

    #[test]
    fn fused_prologue_and_epilogue_match_candle_ops() {
        // Rows packed by copying, and (maps 3 pixels wide) by gathering.
        for dims in [[2, 12, 15, 10], [7, 12, 5, 3]] {
            fused_prologue_and_epilogue_match_candle_ops_on(random(&dims, 1));
        }
    }

    fn fused_prologue_and_epilogue_match_candle_ops_on(x: Tensor) {
        let weight = random(&[20, 12, 3, 3], 2);
        let prologue = InputAffineRelu { scale: random(&[12], 3), shift: random(&[1, 12, 1, 1], 4) };
        for (activation, norm) in [
            (Activation::Identity, None),
            (Activation::Relu, None),
            (Activation::LeakyRelu { negative_slope: 0.2 }, Some(1e-8)),
        ] {
            let epilogue = Epilogue {
                scale: Some(random(&[20], 5)),
                shift: Some(random(&[20], 6)),
                activation,
                pixel_norm_epsilon: norm,
            };
            let fast = conv2d_fused(&x, &weight, 1, 1, Some(&prologue), &epilogue).unwrap();
            let activated = input_affine_relu(&x, &prologue).unwrap();
            let reference =
                apply_epilogue_candle(&activated.conv2d(&weight, 1, 1, 1, 1).unwrap(), &epilogue, 20).unwrap();
            let error = relative_error(&fast, &reference);
            assert!(error < 1e-4, "{activation:?}: relative error {error}");
        }
        // The pointwise case packs the prologue too.
        let weight = random(&[7, 12, 1, 1], 7);
        let fast = conv2d_fused(&x, &weight, 1, 0, Some(&prologue), &Epilogue::identity()).unwrap();
        let reference = input_affine_relu(&x, &prologue).unwrap().conv2d(&weight, 0, 1, 1, 1).unwrap();
        assert!(relative_error(&fast, &reference) < 1e-4);
    }

    #[test]
    fn subpixel_upscale_matches_candle_conv_and_interleave() {
        // The last three take Winograd F(2x2, 2x2) (1024 positions or more, 16 channels or more).
        let cases = [
            (1, 3, 5, 4, 4),
            (2, 8, 4, 5, 7),
            (1, 2, 3, 1, 1),
            (1, 16, 8, 33, 20),
            (2, 16, 16, 40, 31),
            (1, 32, 16, 32, 32),
            (1, 20, 17, 35, 45),
        ];
        for (n, ci, co, h, w) in cases {
            let x = random(&[n, ci, h, w], 11);
            let kernels = random(&[4 * co, ci, 2, 2], 12);
            let epilogue = Epilogue {
                scale: None,
                shift: Some(random(&[co], 13)),
                activation: Activation::LeakyRelu { negative_slope: 0.2 },
                pixel_norm_epsilon: Some(1e-8),
            };
            let fast = subpixel_upscale(&x, &kernels, co, &epilogue).unwrap();
            let phases = x.conv2d(&kernels, 1, 1, 1, 1).unwrap();
            let reference =
                apply_epilogue_candle(&interleave_phases_composed(&phases, co).unwrap(), &epilogue, co).unwrap();
            assert_eq!(fast.dims(), &[n, co, 2 * h, 2 * w]);
            let error = relative_error(&fast, &reference);
            assert!(error < 1e-4, "({n}, {ci}, {co}, {h}, {w}): relative error {error}");
        }
    }

    #[test]
    fn transposed_3x3_stride_2_equals_its_subpixel_form() {
        for (n, ci, co, h, w) in [(1, 3, 5, 4, 6), (2, 16, 16, 33, 32), (1, 24, 20, 5, 3)] {
            let x = random(&[n, ci, h, w], 31);
            let weight = random(&[ci, co, 3, 3], 32);
            let bias = random(&[co], 33);
            let kernels = subpixel_kernels_from_transposed_3x3(&weight).unwrap();
            let fast = subpixel_upscale(&x, &kernels, co, &Epilogue::bias(Some(&bias))).unwrap();
            let reference = x
                .conv_transpose2d(&weight, 1, 1, 2, 1)
                .unwrap()
                .broadcast_add(&bias.reshape((1, co, 1, 1)).unwrap())
                .unwrap();
            let error = relative_error(&fast, &reference);
            assert!(error < 1e-4, "({n}, {ci}, {co}, {h}, {w}): relative error {error}");
        }
    }

    #[test]
    fn cached_winograd_weights_follow_their_tensor() {
        let x = random(&[1, 16, 40, 36], 41);
        let first = random(&[16, 16, 3, 3], 42);
        let second = random(&[16, 16, 3, 3], 43);
        for weight in [&first, &second, &first, &second] {
            let fast = conv2d_nchw(&x, weight, None, 1, 1).unwrap();
            let reference = x.conv2d(weight, 1, 1, 1, 1).unwrap();
            assert!(relative_error(&fast, &reference) < 1e-4);
        }
        // A non-contiguous weight is copied on every call and transformed without the cache.
        let transposed = second.transpose(2, 3).unwrap();
        let fast = conv2d_nchw(&x, &transposed, None, 1, 1).unwrap();
        let reference = x.conv2d(&transposed.contiguous().unwrap(), 1, 1, 1, 1).unwrap();
        assert!(relative_error(&fast, &reference) < 1e-4);
    }

    #[test]
    fn mismatched_shapes_are_refused_with_their_shapes() {
        let x = random(&[1, 3, 8, 8], 1);
        let message = conv2d_nchw(&x, &random(&[4, 2, 3, 3], 2), None, 1, 1).unwrap_err().to_string();
        assert!(message.contains("[4, 2, 3, 3]") && message.contains("[1, 3, 8, 8]"), "{message}");
        let message = conv2d_nchw(&x, &random(&[4, 3, 11, 11], 2), None, 1, 1).unwrap_err().to_string();
        assert!(message.contains("does not fit"), "{message}");
        let message = conv2d_nchw(&x, &random(&[4, 3, 3, 3], 2), Some(&random(&[5], 3)), 1, 1).unwrap_err().to_string();
        assert!(message.contains("5 values for 4 channels"), "{message}");
    }

    #[test]
    fn non_contiguous_and_offset_inputs_are_read_correctly() {
        let big = random(&[2, 6, 9, 9], 21);
        let x = big.narrow(1, 2, 3).unwrap().transpose(2, 3).unwrap();
        let weight = random(&[4, 3, 3, 3], 22);
        let fast = conv2d_nchw(&x, &weight, None, 1, 1).unwrap();
        let reference = x.contiguous().unwrap().conv2d(&weight, 1, 1, 1, 1).unwrap();
        assert!(relative_error(&fast, &reference) < 1e-4);
    }
}
