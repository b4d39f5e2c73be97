//! BatchNorm followed by ReLU, as DenseNet uses it everywhere, as one differentiable op.
//!
//! From candle ops, a train-mode BatchNorm is two reductions over the non-contiguous axes (0, 2, 3) and four
//! broadcast passes forward, and autograd adds as many again backward; with the ReLU this was about 40% of a CPU
//! DenseNet training step. Here the statistics are one pass per channel, the output one pass, and the backward two
//! (per-channel sums, then the input gradient). The op reads `[4, C]` parameters (gamma, beta, mean, 1/std), so the
//! same four ops run on the CPU and, unless `--no-fused-cuda-ops` (see `fused_cuda`), as CUDA kernels. Other devices
//! and dtypes compose candle ops, the reference the op is tested against.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::models::fast_conv::is_cpu_f32;
use crate::train::conv::contiguous_f32;
use crate::train::fused_cuda::takes_fused_cuda;

/// The statistics a BatchNorm normalised with, per channel.
#[derive(Clone, Debug)]
pub struct ChannelStatistics {
    pub mean: Tensor,
    /// The biased variance (divided by the count), as normalisation uses it.
    pub variance: Tensor,
}

/// How the statistics are chosen.
#[derive(Clone, Copy, Debug)]
pub enum Statistics<'a> {
    /// Of this batch (train mode): gradients flow through the mean and variance too.
    Batch,
    /// Given (eval mode, running statistics): constants for the gradient.
    Fixed { mean: &'a Tensor, variance: &'a Tensor },
}

/// `relu(gamma * (x - mean) / sqrt(variance + epsilon) + beta)` for `x` `[N, C, H, W]` and `C` values in `gamma` and
/// `beta`; returns the output and the statistics used.
pub fn batch_norm_relu(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    statistics: Statistics,
    epsilon: f64,
) -> candle_core::Result<(Tensor, ChannelStatistics)> {
    let (_, channels, _, _) = x.dims4()?;
    if gamma.dims1()? != channels || beta.dims1()? != channels {
        bail!(
            "batch norm: input {:?} has {channels} channels, gamma {:?} and beta {:?}",
            x.dims(),
            gamma.dims(),
            beta.dims()
        );
    }
    let fused = |t: &Tensor| is_cpu_f32(t) || takes_fused_cuda(t);
    if !(fused(x) && fused(gamma) && fused(beta)) {
        return composed(x, gamma, beta, statistics, epsilon);
    }
    let x = x.contiguous()?;
    let (mean, variance) = match statistics {
        Statistics::Batch => {
            let moments = x.apply_op1_no_bwd(&MeanVariance)?;
            (moments.get(0)?, moments.get(1)?)
        }
        Statistics::Fixed { mean, variance } => {
            if mean.dims1()? != channels || variance.dims1()? != channels {
                bail!("batch norm: {:?} and {:?} statistics for {channels} channels", mean.dims(), variance.dims());
            }
            (mean.to_dtype(x.dtype())?.detach(), variance.to_dtype(x.dtype())?.detach())
        }
    };
    let inv_std = (&variance + epsilon)?.sqrt()?.recip()?;
    // The statistics' own gradient is in the op's input gradient (batch statistics) or zero (fixed ones).
    let params = Tensor::stack(&[gamma, beta, &mean, &inv_std], 0)?;
    let op = BatchNormRelu { batch_statistics: matches!(statistics, Statistics::Batch) };
    let y = x.apply_op2(&params, op)?;
    Ok((y, ChannelStatistics { mean, variance }))
}

/// `[4, C]` parameters for [`affine_relu`]: an eval-time BatchNorm folded into `scale` and `shift` (`C` values each,
/// any shape) is the op's `gamma` and `beta` with mean 0 and 1/std 1, for which its per-channel affine is exactly
/// `(scale, shift)`.
pub fn affine_relu_params(scale: &Tensor, shift: &Tensor) -> candle_core::Result<Tensor> {
    let scale = scale.flatten_all()?;
    let shift = shift.flatten_all()?.to_dtype(scale.dtype())?;
    if scale.dims() != shift.dims() {
        bail!("affine + ReLU: scale {:?} and shift {:?} differ in length", scale.dims(), shift.dims());
    }
    Tensor::stack(&[&scale, &shift, &scale.zeros_like()?, &scale.ones_like()?], 0)
}

/// `relu(x * scale + shift)` per channel of `x` `[N, C, H, W]` (float32, on the CPU or CUDA), from
/// [`affine_relu_params`]: inference's BatchNorm + ReLU in one pass, one kernel launch on CUDA, where composed candle
/// ops make three passes. Not differentiable (inference only).
pub fn affine_relu(x: &Tensor, params: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op2_no_bwd(&params.contiguous()?, &BatchNormRelu { batch_statistics: false })
}

/// The same function from candle ops (differentiable on every device and dtype); the statistics are detached.
fn composed(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    statistics: Statistics,
    epsilon: f64,
) -> candle_core::Result<(Tensor, ChannelStatistics)> {
    let channels = x.dim(1)?;
    let per_channel = |t: &Tensor| t.reshape((1, channels, 1, 1));
    let (mean, variance) = match statistics {
        Statistics::Batch => {
            let mean = x.mean_keepdim((0, 2, 3))?;
            let variance = x.broadcast_sub(&mean)?.sqr()?.mean_keepdim((0, 2, 3))?;
            (mean, variance)
        }
        Statistics::Fixed { mean, variance } => (per_channel(mean)?, per_channel(variance)?),
    };
    let normalised = x.broadcast_sub(&mean)?.broadcast_div(&(&variance + epsilon)?.sqrt()?)?;
    let y = normalised.broadcast_mul(&per_channel(gamma)?)?.broadcast_add(&per_channel(beta)?)?.relu()?;
    let statistics =
        ChannelStatistics { mean: mean.detach().flatten_all()?, variance: variance.detach().flatten_all()? };
    Ok((y, statistics))
}

/// `images` x `channels` x `plane` values.
#[derive(Clone, Copy, Debug)]
struct Extent {
    images: usize,
    channels: usize,
    plane: usize,
}

impl Extent {
    fn of(dims: &[usize]) -> candle_core::Result<Self> {
        match *dims {
            [images, channels, height, width] => Ok(Self { images, channels, plane: height * width }),
            _ => bail!("batch norm: expected [N, C, H, W], got {dims:?}"),
        }
    }

    /// The `plane` values of channel `c` in each image.
    fn channel_runs<'a>(&self, values: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        let (plane, image_len) = (self.plane, self.channels * self.plane);
        (0..self.images).map(move |n| &values[n * image_len + c * plane..n * image_len + (c + 1) * plane])
    }

    fn count(&self) -> usize {
        self.images * self.plane
    }

    fn image_len(&self) -> usize {
        self.channels * self.plane
    }

    /// The per-channel kernels' size arguments: images, channels, plane.
    #[cfg(feature = "cuda")]
    fn scalars(&self) -> candle_core::Result<[crate::train::fused_cuda::launch::Scalar; 3]> {
        use crate::train::fused_cuda::launch::Scalar;
        Ok([
            Scalar::size(self.images, "images")?,
            Scalar::size(self.channels, "channels")?,
            Scalar::size(self.plane, "plane")?,
        ])
    }

    /// The elementwise kernels' size arguments for `len` values: len, channels, plane.
    #[cfg(feature = "cuda")]
    fn elementwise_scalars(&self, len: usize) -> candle_core::Result<[crate::train::fused_cuda::launch::Scalar; 3]> {
        use crate::train::fused_cuda::launch::Scalar;
        Ok([Scalar::U64(len as u64), Scalar::size(self.channels, "channels")?, Scalar::size(self.plane, "plane")?])
    }
}

/// Rows of a `[K, C]` per-channel parameter block: gamma, beta, mean, 1/std (and, for the input gradient, the sums
/// of dz * xh and of dz).
#[derive(Clone, Copy)]
struct Params<'a> {
    values: &'a [f32],
    channels: usize,
}

impl<'a> Params<'a> {
    fn of(values: &'a [f32], rows: usize, channels: usize) -> candle_core::Result<Self> {
        if values.len() != rows * channels {
            bail!("batch norm: {} parameter values, expected {rows} x {channels}", values.len());
        }
        Ok(Self { values, channels })
    }

    /// Whether a parameter tensor has `rows` x `channels` values.
    fn check_rows(layout: &Layout, rows: usize, channels: usize) -> candle_core::Result<()> {
        if layout.shape().elem_count() != rows * channels {
            bail!("batch norm: parameters {:?}, expected {rows} x {channels}", layout.dims());
        }
        Ok(())
    }

    fn row(&self, row: usize) -> &'a [f32] {
        &self.values[row * self.channels..(row + 1) * self.channels]
    }

    /// `(scale, shift)` of channel `c`: the op's output is `relu(x * scale + shift)`.
    fn affine(&self, c: usize) -> (f32, f32) {
        let scale = self.row(0)[c] * self.row(3)[c];
        (scale, self.row(1)[c] - self.row(2)[c] * scale)
    }
}

/// Per-channel mean and biased variance, summed in float64 (two passes, so no cancellation).
fn batch_statistics(x: &[f32], extent: Extent) -> (Vec<f32>, Vec<f32>) {
    let count = extent.count().max(1) as f64;
    (0..extent.channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = extent.channel_runs(x, c).flatten().map(|&v| f64::from(v)).sum();
            let mean = sum / count;
            let squares: f64 = extent.channel_runs(x, c).flatten().map(|&v| (f64::from(v) - mean).powi(2)).sum();
            (mean as f32, (squares / count) as f32)
        })
        .unzip()
}

fn forward(x: &[f32], params: Params, extent: Extent) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    let image_len = extent.image_len();
    if image_len == 0 {
        return y;
    }
    y.par_chunks_mut(image_len).zip(x.par_chunks(image_len)).for_each(|(y, x)| {
        for (c, (y, x)) in y.chunks_exact_mut(extent.plane).zip(x.chunks_exact(extent.plane)).enumerate() {
            let (scale, shift) = params.affine(c);
            y.iter_mut().zip(x).for_each(|(y, &x)| *y = (x * scale + shift).max(0.0));
        }
    });
    y
}

/// Per channel, in image order (deterministic): `(sum dz * xh, sum dz)` with `xh = (x - mean) / std` and
/// `dz = dy` where the output is positive (else 0); these are the gamma and beta gradients.
fn gradient_sums(x: &[f32], dy: &[f32], params: Params, extent: Extent) -> (Vec<f32>, Vec<f32>) {
    let (mean, inv_std) = (params.row(2), params.row(3));
    (0..extent.channels)
        .into_par_iter()
        .map(|c| {
            let (scale, shift) = params.affine(c);
            let (mut dz_xh_sum, mut dz_sum) = (0f64, 0f64);
            for (x, dy) in extent.channel_runs(x, c).zip(extent.channel_runs(dy, c)) {
                let (mut run_dz_xh, mut run_dz) = (0f32, 0f32);
                for (&x, &dy) in x.iter().zip(dy) {
                    let dz = if x * scale + shift > 0.0 { dy } else { 0.0 };
                    run_dz += dz;
                    run_dz_xh += dz * (x - mean[c]) * inv_std[c];
                }
                dz_xh_sum += f64::from(run_dz_xh);
                dz_sum += f64::from(run_dz);
            }
            (dz_xh_sum as f32, dz_sum as f32)
        })
        .unzip()
}

/// `dx = gamma / std * (dz - dbeta / M - xh * dgamma / M)` with batch statistics over M values per channel
/// (`gamma / std * dz` with fixed ones). `params` has six rows: gamma, beta, mean, 1/std, dgamma, dbeta.
fn input_gradient(x: &[f32], dy: &[f32], params: Params, extent: Extent, batch_statistics: bool) -> Vec<f32> {
    let mut dx = vec![0f32; x.len()];
    let image_len = extent.image_len();
    if image_len == 0 {
        return dx;
    }
    let inv_count = if batch_statistics { 1.0 / extent.count().max(1) as f32 } else { 0.0 };
    let (mean, inv_std, dgamma, dbeta) = (params.row(2), params.row(3), params.row(4), params.row(5));
    dx.par_chunks_mut(image_len).zip(x.par_chunks(image_len)).zip(dy.par_chunks(image_len)).for_each(
        |((dx, x), dy)| {
            for c in 0..extent.channels {
                let range = c * extent.plane..(c + 1) * extent.plane;
                let (scale, shift) = params.affine(c);
                let (mean_dz, mean_dz_xh) = (dbeta[c] * inv_count, dgamma[c] * inv_count);
                for ((dx, &x), &dy) in dx[range.clone()].iter_mut().zip(&x[range.clone()]).zip(&dy[range]) {
                    let dz = if x * scale + shift > 0.0 { dy } else { 0.0 };
                    *dx = scale * (dz - mean_dz - (x - mean[c]) * inv_std[c] * mean_dz_xh);
                }
            }
        },
    );
    dx
}

/// The extent of a gradient op's `(x, dy, params)`, after checking that `dy` matches `x` and `params` has `rows`
/// rows of one value per channel.
fn gradient_extent(x: &Layout, dy: &Layout, params: &Layout, rows: usize) -> candle_core::Result<Extent> {
    let extent = Extent::of(x.dims())?;
    if dy.shape().elem_count() != x.shape().elem_count() {
        bail!("batch norm gradient: output gradient {:?} for input {:?}", dy.dims(), x.dims());
    }
    Params::check_rows(params, rows, extent.channels)?;
    Ok(extent)
}

/// The CPU values of a gradient op's operands (shapes checked by [`gradient_extent`]).
fn gradient_operands<'a>(
    (x, x_layout): (&'a CpuStorage, &Layout),
    (dy, dy_layout): (&'a CpuStorage, &Layout),
    (params, params_layout): (&'a CpuStorage, &Layout),
    rows: usize,
    extent: Extent,
) -> candle_core::Result<(&'a [f32], &'a [f32], Params<'a>)> {
    Ok((
        contiguous_f32(x, x_layout, "batch norm input")?,
        contiguous_f32(dy, dy_layout, "batch norm output gradient")?,
        Params::of(contiguous_f32(params, params_layout, "batch norm parameters")?, rows, extent.channels)?,
    ))
}

/// `[N, C, H, W]` -> `[2, C]`: each channel's mean and biased variance.
struct MeanVariance;

impl CustomOp1 for MeanVariance {
    fn name(&self) -> &'static str {
        "batch-norm-mean-variance"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let extent = Extent::of(layout.dims())?;
        let x = contiguous_f32(storage, layout, "batch norm input")?;
        let (mut moments, variance) = batch_statistics(x, extent);
        moments.extend(variance);
        Ok((CpuStorage::F32(moments), Shape::from((2, extent.channels))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::train::fused_cuda::launch;
        let extent = Extent::of(layout.dims())?;
        let x = launch::view(storage, layout, "batch norm input")?;
        let moments = launch::run(
            &storage.device,
            "channel_mean_var",
            &[&x],
            2 * extent.channels,
            &extent.scalars()?,
            launch::per_channel(launch::size_u32(extent.channels, "channels")?),
        )?;
        Ok((moments, Shape::from((2, extent.channels))))
    }
}

/// `relu(gamma (x - mean) / std + beta)` from `x` and the `[4, C]` parameters.
#[derive(Clone, Copy, Debug)]
struct BatchNormRelu {
    /// Whether the mean and 1/std came from this batch (their gradient then reaches the input).
    batch_statistics: bool,
}

impl CustomOp2 for BatchNormRelu {
    fn name(&self) -> &'static str {
        "batch-norm-relu"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        params: &CpuStorage,
        params_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let extent = Extent::of(x_layout.dims())?;
        let x = contiguous_f32(x, x_layout, "batch norm input")?;
        let params = Params::of(contiguous_f32(params, params_layout, "batch norm parameters")?, 4, extent.channels)?;
        Ok((CpuStorage::F32(forward(x, params, extent)), x_layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        x_layout: &Layout,
        params: &candle_core::CudaStorage,
        params_layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::train::fused_cuda::launch;
        let extent = Extent::of(x_layout.dims())?;
        Params::check_rows(params_layout, 4, extent.channels)?;
        let len = x_layout.shape().elem_count();
        let inputs = [&launch::view(x, x_layout, "batch norm input")?, &launch::view(params, params_layout, "params")?];
        let scalars = extent.elementwise_scalars(len)?;
        let y = launch::run(&x.device, "bn_relu_fwd", &inputs, len, &scalars, launch::config(len as u64))?;
        Ok((y, x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        _output: &Tensor,
        grad_output: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = grad_output.contiguous()?;
        let params = params.contiguous()?;
        let sums = x.apply_op3_no_bwd(&dy, &params, &GradientSums)?;
        let with_sums = Tensor::cat(&[&params, &sums], 0)?;
        let dx = x.apply_op3_no_bwd(&dy, &with_sums, &InputGradient { batch_statistics: self.batch_statistics })?;
        // gamma and beta get the sums; mean and 1/std are constants here (their effect is inside dx).
        let grad_params = Tensor::cat(&[&sums, &sums.zeros_like()?], 0)?;
        Ok((Some(dx), Some(grad_params)))
    }
}

/// `(x, dy, [4, C] params)` -> `[2, C]`: the gamma and beta gradients.
struct GradientSums;

impl CustomOp3 for GradientSums {
    fn name(&self) -> &'static str {
        "batch-norm-relu-gradient-sums"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        dy: &CpuStorage,
        dy_layout: &Layout,
        params: &CpuStorage,
        params_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let extent = gradient_extent(x_layout, dy_layout, params_layout, 4)?;
        let (x, dy, params) = gradient_operands((x, x_layout), (dy, dy_layout), (params, params_layout), 4, extent)?;
        let (mut sums, dbeta) = gradient_sums(x, dy, params, extent);
        sums.extend(dbeta);
        Ok((CpuStorage::F32(sums), Shape::from((2, extent.channels))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        x_layout: &Layout,
        dy: &candle_core::CudaStorage,
        dy_layout: &Layout,
        params: &candle_core::CudaStorage,
        params_layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::train::fused_cuda::launch;
        let extent = gradient_extent(x_layout, dy_layout, params_layout, 4)?;
        let [x_view, dy_view, params_view] = gradient_views((x, x_layout), (dy, dy_layout), (params, params_layout))?;
        let sums = launch::run(
            &x.device,
            "bn_relu_grad_sums",
            &[&x_view, &dy_view, &params_view],
            2 * extent.channels,
            &extent.scalars()?,
            launch::per_channel(launch::size_u32(extent.channels, "channels")?),
        )?;
        Ok((sums, Shape::from((2, extent.channels))))
    }
}

/// The three operands of the CUDA gradient kernels: input, output gradient, parameters.
#[cfg(feature = "cuda")]
fn gradient_views<'a>(
    x: (&'a candle_core::CudaStorage, &Layout),
    dy: (&'a candle_core::CudaStorage, &Layout),
    params: (&'a candle_core::CudaStorage, &Layout),
) -> candle_core::Result<[candle_core::cuda_backend::cudarc::driver::CudaView<'a, f32>; 3]> {
    use crate::train::fused_cuda::launch::view;
    Ok([
        view(x.0, x.1, "batch norm input")?,
        view(dy.0, dy.1, "batch norm output gradient")?,
        view(params.0, params.1, "batch norm parameters")?,
    ])
}

/// `(x, dy, [6, C] params and sums)` -> the input gradient.
struct InputGradient {
    batch_statistics: bool,
}

impl CustomOp3 for InputGradient {
    fn name(&self) -> &'static str {
        "batch-norm-relu-input-gradient"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        dy: &CpuStorage,
        dy_layout: &Layout,
        params: &CpuStorage,
        params_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let extent = gradient_extent(x_layout, dy_layout, params_layout, 6)?;
        let (x, dy, params) = gradient_operands((x, x_layout), (dy, dy_layout), (params, params_layout), 6, extent)?;
        let dx = input_gradient(x, dy, params, extent, self.batch_statistics);
        Ok((CpuStorage::F32(dx), x_layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        x_layout: &Layout,
        dy: &candle_core::CudaStorage,
        dy_layout: &Layout,
        params: &candle_core::CudaStorage,
        params_layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::train::fused_cuda::launch::{self, Scalar};
        let extent = gradient_extent(x_layout, dy_layout, params_layout, 6)?;
        let len = x_layout.shape().elem_count();
        let [x_view, dy_view, params_view] = gradient_views((x, x_layout), (dy, dy_layout), (params, params_layout))?;
        let inv_count = if self.batch_statistics { 1.0 / extent.count().max(1) as f32 } else { 0.0 };
        let [count, channels, plane] = extent.elementwise_scalars(len)?;
        let scalars = [count, channels, plane, Scalar::F32(inv_count)];
        let dx = launch::run(
            &x.device,
            "bn_relu_input_grad",
            &[&x_view, &dy_view, &params_view],
            len,
            &scalars,
            launch::config(len as u64),
        )?;
        Ok((dx, x_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;
    use crate::models::fast_conv::tests::relative_error;

    /// Output, statistics and the three gradients equal candle's autograd through the composed ops, with batch and
    /// with fixed statistics; the input is shifted and scaled per channel so the statistics matter.
    #[test]
    fn matches_the_composed_candle_ops_and_their_gradients() {
        for dims in [[4usize, 3, 5, 5], [2, 8, 7, 3], [3, 2, 1, 1]] {
            let channels = dims[1];
            let offsets = crate::test_random::randn(0f32, 3.0, (1, channels, 1, 1));
            let x = (crate::test_random::randn(0f32, 2.0, &dims).broadcast_add(&offsets)).unwrap();
            let x = Var::from_tensor(&x).unwrap();
            let gamma = Var::from_tensor(&crate::test_random::randn(1f32, 0.3, channels)).unwrap();
            let beta = Var::from_tensor(&crate::test_random::randn(0f32, 0.3, channels)).unwrap();
            let running_mean = crate::test_random::randn(0f32, 1.0, channels);
            let running_var = crate::test_random::rand(0.5f32, 2.0, channels);
            let probe = crate::test_random::randn(0f32, 1.0, &dims);
            for fixed in [false, true] {
                let statistics = if fixed {
                    Statistics::Fixed { mean: &running_mean, variance: &running_var }
                } else {
                    Statistics::Batch
                };
                let run = |fused: bool| {
                    let (y, stats) = if fused {
                        batch_norm_relu(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), statistics, 1e-5).unwrap()
                    } else {
                        composed(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), statistics, 1e-5).unwrap()
                    };
                    let grads = (&y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
                    let grad = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
                    (y, stats, [grad(&x), grad(&gamma), grad(&beta)])
                };
                let (y, stats, grads) = run(true);
                let (y_ref, stats_ref, grads_ref) = run(false);
                let case = format!("{dims:?}, fixed statistics {fixed}");
                assert!(relative_error(&y, &y_ref) < 1e-5, "{case}: output {}", relative_error(&y, &y_ref));
                assert!(relative_error(&stats.mean, &stats_ref.mean) < 1e-5, "{case}: mean");
                assert!(relative_error(&stats.variance, &stats_ref.variance) < 1e-5, "{case}: variance");
                for (i, (a, b)) in grads.iter().zip(&grads_ref).enumerate() {
                    assert!(relative_error(a, b) < 1e-4, "{case}: gradient {i} off by {}", relative_error(a, b));
                }
            }
        }
    }

    /// The input gradient with batch statistics against central finite differences of the op's own forward (which
    /// recomputes the statistics), independent of candle's autograd. Beta keeps every output above the ReLU's kink
    /// (|normalised| <= sqrt(11) with 12 values per channel), where finite differences would be meaningless; the
    /// comparison with autograd above covers the masked case.
    #[test]
    fn batch_statistics_gradient_matches_finite_differences() {
        let dims = [3usize, 2, 2, 2];
        let extent = Extent::of(&dims).unwrap();
        let x: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3 + (i % 2) as f32).collect();
        let probe: Vec<f32> = (0..24).map(|i| ((i * 5 % 13) as f32 - 6.0) * 0.2).collect();
        let (gamma, beta) = ([1.3f32, 0.7], [5.0f32, 4.0]);
        // [gamma, beta, mean, 1/std] of the batch `x`
        let params_for = |x: &[f32]| -> Vec<f32> {
            let (mean, variance) = batch_statistics(x, extent);
            let inv_std: Vec<f32> = variance.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect();
            [gamma.to_vec(), beta.to_vec(), mean, inv_std].concat()
        };
        let loss = |x: &[f32]| -> f64 {
            let params = params_for(x);
            let params = Params::of(&params, 4, 2).unwrap();
            forward(x, params, extent).iter().zip(&probe).map(|(y, p)| f64::from(y * p)).sum()
        };
        let params = params_for(&x);
        let (dgamma, dbeta) = gradient_sums(&x, &probe, Params::of(&params, 4, 2).unwrap(), extent);
        let with_sums = [params, dgamma, dbeta].concat();
        let dx = input_gradient(&x, &probe, Params::of(&with_sums, 6, 2).unwrap(), extent, true);
        let step = 1e-3f32;
        for i in 0..x.len() {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[i] += step;
            minus[i] -= step;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(step));
            assert!((numeric - f64::from(dx[i])).abs() < 5e-3, "element {i}: numeric {numeric}, analytic {}", dx[i]);
        }
    }

    #[test]
    fn mismatched_parameters_are_refused_with_the_shapes() {
        let x = Tensor::zeros((2, 3, 4, 4), DType::F32, &Device::Cpu).unwrap();
        let gamma = Tensor::ones(4, DType::F32, &Device::Cpu).unwrap();
        let beta = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        let message = batch_norm_relu(&x, &gamma, &beta, Statistics::Batch, 1e-5).unwrap_err().to_string();
        assert!(message.contains("[2, 3, 4, 4]") && message.contains("[4]"), "{message}");
    }

    #[test]
    fn affine_relu_equals_scale_shift_and_relu() {
        let x = crate::test_random::randn(0f32, 1.0, (2, 5, 3, 4));
        let scale = crate::test_random::randn(0f32, 1.0, (1, 5, 1, 1));
        let shift = crate::test_random::randn(0f32, 1.0, 5);
        let params = affine_relu_params(&scale, &shift).unwrap();
        let ours = affine_relu(&x, &params).unwrap();
        let reference = x
            .broadcast_mul(&scale)
            .unwrap()
            .broadcast_add(&shift.reshape((1, 5, 1, 1)).unwrap())
            .unwrap()
            .relu()
            .unwrap();
        let diff = (ours - reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "{diff}");
        let mismatched =
            affine_relu_params(&scale, &Tensor::zeros(4, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap());
        assert!(mismatched.unwrap_err().to_string().contains("differ in length"));
    }
}
