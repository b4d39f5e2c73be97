//! Per-channel bias, leaky ReLU and (in the generator) pixel norm as one differentiable op on the CPU.
//!
//! Composed from candle ops, `pixel_norm(lrelu(x + b))` is a dozen tensor passes forward and more backward:
//! broadcast adds, `maximum` (whose gradient compares both arguments with the result), and bias gradients reduced
//! over non-contiguous axes. On the 2-core CPU those passes took about 40% of a 128 px GAN training step. The op
//! here makes one pass over the activations forward and two backward. On CUDA it runs the kernels of
//! `fused_training.cu` unless `--no-fused-cuda-ops` is given (see `fused_cuda`); then, and for other dtypes, the
//! same functions compose candle ops, the reference the op is tested against.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::models::fast_conv::{is_cpu_f32, with_cpu_f32};
use crate::train::conv::contiguous_f32;
use crate::train::fused_cuda::takes_fused_cuda;
use crate::train::lane_sum::lane_sum;

/// `lrelu(x + bias)` with slope `alpha` below zero; `x` is `[N, C]` or `[N, C, H, W]`, `bias` has `C` values.
pub fn bias_leaky_relu(x: &Tensor, bias: &Tensor, alpha: f64) -> candle_core::Result<Tensor> {
    apply(x, bias, BiasLeakyRelu { alpha, pixel_norm_epsilon: None })
}

/// [`bias_leaky_relu`], then pixel norm over the channels: `a * rsqrt(mean_c(a^2) + epsilon)` at every pixel.
pub fn bias_leaky_relu_pixel_norm(x: &Tensor, bias: &Tensor, alpha: f64, epsilon: f64) -> candle_core::Result<Tensor> {
    apply(x, bias, BiasLeakyRelu { alpha, pixel_norm_epsilon: Some(epsilon) })
}

fn apply(x: &Tensor, bias: &Tensor, op: BiasLeakyRelu) -> candle_core::Result<Tensor> {
    let channels = bias.dims1()?;
    if !(x.rank() == 2 || x.rank() == 4) || x.dim(1)? != channels {
        bail!("bias + leaky ReLU: input {:?} does not have {channels} channels in axis 1 of 2 or 4", x.dims());
    }
    if (is_cpu_f32(x) && is_cpu_f32(bias)) || (takes_fused_cuda(x) && takes_fused_cuda(bias)) {
        x.contiguous()?.apply_op2(&bias.contiguous()?, op)
    } else {
        composed(x, bias, op)
    }
}

/// The same function from candle ops (differentiable on every device and dtype).
fn composed(x: &Tensor, bias: &Tensor, op: BiasLeakyRelu) -> candle_core::Result<Tensor> {
    let mut shape = vec![1; x.rank()];
    shape[1] = bias.dims1()?;
    let x = x.broadcast_add(&bias.reshape(shape)?)?;
    let x = x.maximum(&(&x * op.alpha)?)?;
    match op.pixel_norm_epsilon {
        Some(epsilon) => x.broadcast_mul(&(x.sqr()?.mean_keepdim(1)? + epsilon)?.sqrt()?.recip()?),
        None => Ok(x),
    }
}

#[derive(Clone, Copy, Debug)]
struct BiasLeakyRelu {
    alpha: f64,
    pixel_norm_epsilon: Option<f64>,
}

/// One image of an input: `channels` x `plane` values (plane = H * W, or 1 for `[N, C]`).
#[derive(Clone, Copy, Debug)]
struct Extent {
    channels: usize,
    plane: usize,
}

impl Extent {
    fn of(dims: &[usize]) -> candle_core::Result<Self> {
        match *dims {
            [_, channels] => Ok(Self { channels, plane: 1 }),
            [_, channels, height, width] => Ok(Self { channels, plane: height * width }),
            _ => bail!("bias + leaky ReLU: expected a rank 2 or 4 input, got {dims:?}"),
        }
    }

    fn image_len(&self) -> usize {
        self.channels * self.plane
    }
}

impl BiasLeakyRelu {
    /// One image's activations (before pixel norm) into `out`, from its input `x`.
    fn activate(&self, x: &[f32], bias: &[f32], plane: usize, out: &mut [f32]) {
        let alpha = self.alpha as f32;
        for ((out, x), &b) in out.chunks_exact_mut(plane).zip(x.chunks_exact(plane)).zip(bias) {
            for (y, &v) in out.iter_mut().zip(x) {
                let v = v + b;
                *y = v * leaky_slope(v, alpha);
            }
        }
    }

    /// Pixel norm's per-pixel factor `rsqrt(mean_c(a^2) + epsilon)` of one image's activations `a`.
    fn norm_scale(a: &[f32], plane: usize, channels: usize, epsilon: f64, scale: &mut [f32]) {
        scale.fill(0.0);
        for channel in a.chunks_exact(plane) {
            scale.iter_mut().zip(channel).for_each(|(s, &v)| *s += v * v);
        }
        let epsilon = epsilon as f32;
        scale.iter_mut().for_each(|s| *s = 1.0 / (*s / channels as f32 + epsilon).sqrt());
    }

    fn forward(&self, x: &[f32], bias: &[f32], extent: Extent) -> Vec<f32> {
        let mut y = vec![0f32; x.len()];
        let len = extent.image_len();
        if len == 0 {
            return y;
        }
        y.par_chunks_mut(len).zip(x.par_chunks(len)).for_each(|(y, x)| {
            self.activate(x, bias, extent.plane, y);
            if let Some(epsilon) = self.pixel_norm_epsilon {
                let mut scale = vec![0f32; extent.plane];
                Self::norm_scale(y, extent.plane, extent.channels, epsilon, &mut scale);
                for channel in y.chunks_exact_mut(extent.plane) {
                    channel.iter_mut().zip(&scale).for_each(|(v, s)| *v *= s);
                }
            }
        });
        y
    }

    /// The input and bias gradients, given the output gradient `dy`.
    ///
    /// With `a = lrelu(x + b)` and `s = rsqrt(mean_c(a^2) + eps)` per pixel, `y = a s` gives
    /// `da_c = s dy_c - a_c s^3 mean_c(dy_c a_c)`; then `dx = da * (1 where a > 0, else alpha)` and
    /// `db_c = sum over images and pixels of dx_c`.
    fn backward(&self, x: &[f32], bias: &[f32], dy: &[f32], extent: Extent) -> (Vec<f32>, Vec<f32>) {
        let Extent { channels, plane, .. } = extent;
        let len = extent.image_len();
        let mut dx = vec![0f32; x.len()];
        if len == 0 {
            return (dx, vec![0.0; channels]);
        }
        let alpha = self.alpha as f32;
        let slope = |a: f32| leaky_slope(a, alpha);
        dx.par_chunks_mut(len).zip(x.par_chunks(len)).zip(dy.par_chunks(len)).for_each(|((dx, x), dy)| {
            // dx holds the activations a until it is overwritten with the gradient.
            self.activate(x, bias, plane, dx);
            match self.pixel_norm_epsilon {
                None => dx.iter_mut().zip(dy).for_each(|(g, &d)| *g = d * slope(*g)),
                Some(epsilon) => {
                    let mut scale = vec![0f32; plane];
                    Self::norm_scale(dx, plane, channels, epsilon, &mut scale);
                    let mut dot = vec![0f32; plane];
                    for (a, d) in dx.chunks_exact(plane).zip(dy.chunks_exact(plane)) {
                        dot.iter_mut().zip(a).zip(d).for_each(|((t, &a), &d)| *t += a * d);
                    }
                    // coefficient of a_c: s^3 mean_c(dy_c a_c)
                    let coefficient: Vec<f32> =
                        dot.iter().zip(&scale).map(|(t, s)| s * s * s * t / channels as f32).collect();
                    for (g, d) in dx.chunks_exact_mut(plane).zip(dy.chunks_exact(plane)) {
                        for (((g, &d), s), k) in g.iter_mut().zip(d).zip(&scale).zip(&coefficient) {
                            let a = *g;
                            *g = (s * d - a * k) * slope(a);
                        }
                    }
                }
            }
        });
        // Each channel sums its images in order, so the bias gradient does not depend on scheduling.
        let db = (0..channels).into_par_iter().map(|c| channel_total(&dx, len, plane, c)).collect();
        (dx, db)
    }
}

impl CustomOp2 for BiasLeakyRelu {
    fn name(&self) -> &'static str {
        "bias-leaky-relu"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let extent = Extent::of(x_layout.dims())?;
        let x = contiguous_f32(x, x_layout, "bias + leaky ReLU input")?;
        let bias = contiguous_f32(bias, bias_layout, "bias + leaky ReLU bias")?;
        if bias.len() != extent.channels {
            bail!("bias + leaky ReLU: {} bias values for {} channels", bias.len(), extent.channels);
        }
        Ok((CpuStorage::F32(self.forward(x, bias, extent)), x_layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        x_layout: &Layout,
        bias: &candle_core::CudaStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        self.run_cuda((x, x_layout), (bias, bias_layout), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        bias: &Tensor,
        _output: &Tensor,
        grad_output: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_output = grad_output.contiguous()?;
        let (dx, db) = if x.device().is_cpu() {
            self.backward_on_host(x, bias, &grad_output)?
        } else {
            self.backward_by_ops(x, bias, &grad_output)?
        };
        Ok((Some(dx), Some(db)))
    }
}

#[cfg(feature = "cuda")]
impl BiasLeakyRelu {
    /// The forward pass (no `dy`) or the input gradient on CUDA: kernel `bias_lrelu_fwd` / `_bwd`, or their
    /// pixel-norm variants (one thread per image and pixel).
    fn run_cuda(
        &self,
        (x, x_layout): (&candle_core::CudaStorage, &Layout),
        (bias, bias_layout): (&candle_core::CudaStorage, &Layout),
        dy: Option<(&candle_core::CudaStorage, &Layout)>,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::train::fused_cuda::launch::{self, Scalar};
        let extent = Extent::of(x_layout.dims())?;
        let len = x_layout.shape().elem_count();
        if bias_layout.shape().elem_count() != extent.channels {
            bail!("bias + leaky ReLU: bias {:?} for input {:?}", bias_layout.dims(), x_layout.dims());
        }
        let mut inputs =
            vec![launch::view(x, x_layout, "bias + leaky ReLU input")?, launch::view(bias, bias_layout, "bias")?];
        if let Some((dy, dy_layout)) = dy {
            if dy_layout.shape().elem_count() != len {
                bail!(
                    "bias + leaky ReLU gradient: output gradient {:?} for input {:?}",
                    dy_layout.dims(),
                    x_layout.dims()
                );
            }
            inputs.push(launch::view(dy, dy_layout, "bias + leaky ReLU output gradient")?);
        }
        let pass = if dy.is_some() { "bwd" } else { "fwd" };
        let (channels, plane, alpha) = (
            launch::size_u32(extent.channels, "channels")?,
            launch::size_u32(extent.plane, "plane")?,
            self.alpha as f32,
        );
        let images = launch::size_u32(len / extent.image_len().max(1), "images")?;
        let (kernel, scalars, threads) = match self.pixel_norm_epsilon {
            None => (
                format!("bias_lrelu_{pass}"),
                vec![Scalar::U64(len as u64), Scalar::U32(channels), Scalar::U32(plane), Scalar::F32(alpha)],
                len as u64,
            ),
            Some(epsilon) => (
                format!("bias_lrelu_pixel_norm_{pass}"),
                vec![
                    Scalar::U32(images),
                    Scalar::U32(channels),
                    Scalar::U32(plane),
                    Scalar::F32(alpha),
                    Scalar::F32(epsilon as f32),
                ],
                u64::from(images) * u64::from(plane),
            ),
        };
        let inputs: Vec<_> = inputs.iter().collect();
        let output = launch::run(&x.device, &kernel, &inputs, len, &scalars, launch::config(threads))?;
        Ok((output, x_layout.shape().clone()))
    }
}

impl BiasLeakyRelu {
    /// Both gradients computed in host memory (the CPU path).
    fn backward_on_host(&self, x: &Tensor, bias: &Tensor, dy: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let extent = Extent::of(x.dims())?;
        let (dx, db) = with_cpu_f32(x, "bias + leaky ReLU input", |x| {
            with_cpu_f32(bias, "bias + leaky ReLU bias", |bias| {
                with_cpu_f32(dy, "bias + leaky ReLU output gradient", |dy| Ok(self.backward(x, bias, dy, extent)))
            })
        })?;
        Ok((Tensor::from_vec(dx, x.shape(), x.device())?, Tensor::from_vec(db, bias.shape(), bias.device())?))
    }

    /// Both gradients as two ops on the tensors' device (the CUDA path): the input gradient, then its per-channel
    /// sum for the bias.
    fn backward_by_ops(&self, x: &Tensor, bias: &Tensor, dy: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let dx = x.contiguous()?.apply_op3_no_bwd(&bias.contiguous()?, dy, &InputGradient { op: *self })?;
        let db = dx.apply_op1_no_bwd(&ChannelSum)?;
        Ok((dx, db))
    }
}

/// The input gradient of [`BiasLeakyRelu`] from `(x, bias, dy)`.
struct InputGradient {
    op: BiasLeakyRelu,
}

impl CustomOp3 for InputGradient {
    fn name(&self) -> &'static str {
        "bias-leaky-relu-input-gradient"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
        dy: &CpuStorage,
        dy_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let extent = Extent::of(x_layout.dims())?;
        let x = contiguous_f32(x, x_layout, "bias + leaky ReLU input")?;
        let bias = contiguous_f32(bias, bias_layout, "bias + leaky ReLU bias")?;
        let dy = contiguous_f32(dy, dy_layout, "bias + leaky ReLU output gradient")?;
        if dy.len() != x.len() || bias.len() != extent.channels {
            bail!("bias + leaky ReLU gradient: {} output-gradient values for {} inputs", dy.len(), x.len());
        }
        Ok((CpuStorage::F32(self.op.backward(x, bias, dy, extent).0), x_layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        x_layout: &Layout,
        bias: &candle_core::CudaStorage,
        bias_layout: &Layout,
        dy: &candle_core::CudaStorage,
        dy_layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        self.op.run_cuda((x, x_layout), (bias, bias_layout), Some((dy, dy_layout)))
    }
}

/// The sum of channel `c` of `[N, C, plane]` values over images and pixels, in order, accumulated in f64: a bias
/// gradient can sum millions of values, and a running f32 sum of 4 M of them drifts by 1e-5 to 6e-5 relative (the
/// GPU's tree reductions do not; seen on an H200, 2026-11-27).
fn channel_total(values: &[f32], image_len: usize, plane: usize, c: usize) -> f32 {
    let images = values.chunks_exact(image_len.max(1));
    images.map(|image| lane_sum(&image[c * plane..(c + 1) * plane], |v| v)).sum::<f64>() as f32
}

/// The leaky ReLU's slope at `a`. Written as a select of two constants, which the loops over a map turn into
/// vector blends; as `if a > 0 { a } else { a * alpha }` they branched on the sign, which mispredicts half the time on
/// activations (the backward ran 1.6x slower). `a * 1.0` is `a`, so the values are those of the branch.
#[inline(always)]
fn leaky_slope(a: f32, alpha: f32) -> f32 {
    if a > 0.0 { 1.0 } else { alpha }
}

/// `[N, C, ...]` -> `[C]`: the sum over images and pixels of each channel (a bias gradient), in a fixed order.
struct ChannelSum;

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "channel-sum"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let extent = Extent::of(layout.dims())?;
        let values = contiguous_f32(storage, layout, "channel sum input")?;
        let len = extent.image_len();
        let sums = (0..extent.channels).map(|c| channel_total(values, len, extent.plane, c)).collect();
        Ok((CpuStorage::F32(sums), Shape::from(extent.channels)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::train::fused_cuda::launch::{self, Scalar};
        let extent = Extent::of(layout.dims())?;
        let images = layout.shape().elem_count() / extent.image_len().max(1);
        let values = launch::view(storage, layout, "channel sum input")?;
        let channels = launch::size_u32(extent.channels, "channels")?;
        let scalars = [Scalar::size(images, "images")?, Scalar::U32(channels), Scalar::size(extent.plane, "plane")?];
        let sums = launch::run(
            &storage.device,
            "channel_sum",
            &[&values],
            extent.channels,
            &scalars,
            launch::per_channel(channels),
        )?;
        Ok((sums, Shape::from(extent.channels)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;
    use crate::models::fast_conv::tests::relative_error;

    /// Value and both gradients of the fused op equal candle's autograd through the composed ops, for feature
    /// maps and dense layers, with and without pixel norm. The probe weights the output unevenly so that pixel
    /// norm's cross-channel term matters.
    #[test]
    fn matches_the_composed_candle_ops_and_their_gradients() {
        for (dims, pixel_norm) in [
            (vec![3, 5, 4, 7], false),
            (vec![3, 5, 4, 7], true),
            (vec![2, 16, 9, 9], true),
            (vec![4, 6], false),
            (vec![4, 6], true),
        ] {
            let channels = dims[1];
            let x = Var::from_tensor(&crate::test_random::randn(0f32, 1.0, dims.as_slice())).unwrap();
            let bias = Var::from_tensor(&crate::test_random::randn(0f32, 0.5, channels)).unwrap();
            let probe = crate::test_random::randn(0f32, 1.0, dims.as_slice());
            let op = BiasLeakyRelu { alpha: 0.2, pixel_norm_epsilon: pixel_norm.then_some(1e-8) };
            let run = |fused: bool| {
                let y = if fused {
                    apply(x.as_tensor(), bias.as_tensor(), op).unwrap()
                } else {
                    composed(x.as_tensor(), bias.as_tensor(), op).unwrap()
                };
                let grads = (&y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
                let dx = grads.get(x.as_tensor()).unwrap().clone();
                let db = grads.get(bias.as_tensor()).unwrap().clone();
                (y, dx, db)
            };
            let (y, dx, db) = run(true);
            let (y_ref, dx_ref, db_ref) = run(false);
            let case = format!("{dims:?}, pixel norm {pixel_norm}");
            assert!(relative_error(&y, &y_ref) < 1e-6, "{case}: value {}", relative_error(&y, &y_ref));
            assert!(relative_error(&dx, &dx_ref) < 1e-5, "{case}: input gradient {}", relative_error(&dx, &dx_ref));
            assert!(relative_error(&db, &db_ref) < 1e-5, "{case}: bias gradient {}", relative_error(&db, &db_ref));
        }
    }

    /// The pixel-norm gradient against central finite differences of the op itself (float64 sums of its float32
    /// forward), independent of candle's autograd. The inputs stay at least 0.1 from the leaky ReLU's kink, farther
    /// than the finite-difference step.
    #[test]
    fn pixel_norm_gradient_matches_finite_differences() {
        let dims = [1usize, 4, 2, 3];
        let bias_values = vec![0.1f32, -0.2, 0.3, 0.05];
        let x_values: Vec<f32> = (0..24)
            .map(|i| {
                let pre = ((i * 7 % 11) as f32 - 5.0) * 0.25 + 0.12;
                pre - bias_values[i / 6]
            })
            .collect();
        let probe: Vec<f32> = (0..24).map(|i| ((i * 5 % 13) as f32 - 6.0) * 0.2).collect();
        let op = BiasLeakyRelu { alpha: 0.2, pixel_norm_epsilon: Some(1e-8) };
        let extent = Extent::of(&dims).unwrap();
        let loss = |x: &[f32]| -> f64 {
            op.forward(x, &bias_values, extent).iter().zip(&probe).map(|(y, p)| f64::from(y * p)).sum()
        };
        let (dx, _) = op.backward(&x_values, &bias_values, &probe, extent);
        let step = 1e-2f32;
        for i in 0..x_values.len() {
            let (mut plus, mut minus) = (x_values.clone(), x_values.clone());
            plus[i] += step;
            minus[i] -= step;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(step));
            assert!((numeric - f64::from(dx[i])).abs() < 2e-3, "element {i}: numeric {numeric}, analytic {}", dx[i]);
        }
    }

    /// The device path's backward (input-gradient op, then channel-sum op), run here on the CPU, equals the host
    /// backward: the CUDA kernels only replace these two ops' `cpu_fwd`.
    #[test]
    fn backward_by_ops_equals_the_host_backward() {
        for (dims, pixel_norm) in [(vec![2, 3, 4, 5], false), (vec![2, 3, 4, 5], true), (vec![3, 4], true)] {
            let x = crate::test_random::randn(0f32, 1.0, dims.as_slice());
            let bias = crate::test_random::randn(0f32, 0.5, dims[1]);
            let dy = crate::test_random::randn(0f32, 1.0, dims.as_slice());
            let op = BiasLeakyRelu { alpha: 0.2, pixel_norm_epsilon: pixel_norm.then_some(1e-8) };
            let (dx, db) = op.backward_on_host(&x, &bias, &dy).unwrap();
            let (dx_ops, db_ops) = op.backward_by_ops(&x, &bias, &dy).unwrap();
            assert_eq!(dx_ops.dims(), x.dims());
            assert_eq!(db_ops.dims(), bias.dims());
            assert!(relative_error(&dx_ops, &dx) < 1e-6, "{dims:?}: input gradient");
            assert!(relative_error(&db_ops, &db) < 1e-5, "{dims:?}: bias gradient");
        }
    }

    /// A bias gradient over 4 M pixels per channel: both backward paths give the exact (f64) sums to f32 rounding,
    /// where a running f32 sum drifts by 4% here.
    #[test]
    fn bias_gradient_of_a_large_map_does_not_drift() {
        let dims = [1, 2, 2048, 2048];
        let plane = dims[2] * dims[3];
        // One value per channel: a running f32 sum of 4 M equal values drifts by percents, deterministically (random
        // values drift by anything from 1e-7 to 1e-4, so a test on them could not be sure to see it).
        let dy_values: Vec<f32> = [0.1f32, 0.7].iter().flat_map(|&v| std::iter::repeat_n(v, plane)).collect();
        let dy = Tensor::from_vec(dy_values.clone(), &dims, &Device::Cpu).unwrap();
        // Positive inputs: the leaky ReLU passes the gradient through unchanged.
        let x = Tensor::ones(&dims, DType::F32, &Device::Cpu).unwrap();
        let bias = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
        let exact: Vec<f64> = dy_values.chunks_exact(plane).map(|c| c.iter().map(|&v| f64::from(v)).sum()).collect();
        let naive: Vec<f32> = dy_values.chunks_exact(plane).map(|c| c.iter().sum()).collect();
        let drift =
            |sums: &[f32]| sums.iter().zip(&exact).map(|(s, e)| (f64::from(*s) - e).abs() / e).fold(0.0, f64::max);
        assert!(drift(&naive) > 1e-3, "the test needs a case where an f32 running sum drifts: {}", drift(&naive));
        let op = BiasLeakyRelu { alpha: 0.2, pixel_norm_epsilon: None };
        let (_, db) = op.backward_on_host(&x, &bias, &dy).unwrap();
        let (_, db_ops) = op.backward_by_ops(&x, &bias, &dy).unwrap();
        for (path, db) in [("host", db), ("by ops", db_ops)] {
            let db = db.to_vec1::<f32>().unwrap();
            assert!(drift(&db) < 1e-7, "{path}: relative error {} (an f32 running sum: {})", drift(&db), drift(&naive));
        }
    }

    /// Other dtypes take the composed ops (the path CUDA takes too) and give the same values.
    #[test]
    fn float64_takes_the_composed_path() {
        let x = crate::test_random::randn(0f32, 1.0, (2, 3, 4, 4));
        let bias = Tensor::new(&[0.1f32, -0.2, 0.3], &Device::Cpu).unwrap();
        let fused = bias_leaky_relu_pixel_norm(&x, &bias, 0.2, 1e-8).unwrap();
        let wide = bias_leaky_relu_pixel_norm(
            &x.to_dtype(DType::F64).unwrap(),
            &bias.to_dtype(DType::F64).unwrap(),
            0.2,
            1e-8,
        )
        .unwrap();
        assert_eq!(wide.dtype(), DType::F64);
        assert!(relative_error(&fused, &wide.to_dtype(DType::F32).unwrap()) < 1e-6);
    }

    #[test]
    fn mismatched_bias_is_refused_with_the_shapes() {
        let x = Tensor::zeros((2, 3, 4, 4), DType::F32, &Device::Cpu).unwrap();
        let bias = Tensor::zeros(5, DType::F32, &Device::Cpu).unwrap();
        let message = bias_leaky_relu(&x, &bias, 0.2).unwrap_err().to_string();
        assert!(message.contains("[2, 3, 4, 4]") && message.contains('5'), "{message}");
    }
}
