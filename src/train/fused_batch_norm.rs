//! BatchNorm followed by ReLU, as DenseNet uses it everywhere, as one differentiable op on the CPU.
//!
//! From candle ops, a train-mode BatchNorm is two reductions over the non-contiguous axes (0, 2, 3) and four
//! broadcast passes forward, and autograd adds as many again backward; with the ReLU this was about 40% of a CPU
//! DenseNet training step. Here the statistics are one pass per channel, the output one pass, and the backward two
//! (per-channel sums, then the input gradient). Other devices and dtypes compose candle ops (the reference the op is
//! tested against).

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::models::fast_conv::{is_cpu_f32, with_cpu_f32};

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
    if is_cpu_f32(x) && is_cpu_f32(gamma) && is_cpu_f32(beta) {
        let x = x.contiguous()?;
        let (mean, variance) = match statistics {
            Statistics::Batch => {
                with_cpu_f32(&x, "batch norm input", |values| Ok(batch_statistics(values, Extent::of(x.dims())?)))?
            }
            Statistics::Fixed { mean, variance } => {
                (channel_values(mean, channels)?, channel_values(variance, channels)?)
            }
        };
        let inv_std: Vec<f32> = variance.iter().map(|v| 1.0 / (v + epsilon as f32).sqrt()).collect();
        let op =
            BatchNormRelu { mean: mean.clone(), inv_std, batch_statistics: matches!(statistics, Statistics::Batch) };
        let y = x.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
        let statistics = ChannelStatistics {
            mean: Tensor::from_vec(mean, channels, x.device())?,
            variance: Tensor::from_vec(variance, channels, x.device())?,
        };
        Ok((y, statistics))
    } else {
        composed(x, gamma, beta, statistics, epsilon)
    }
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

fn channel_values(tensor: &Tensor, channels: usize) -> candle_core::Result<Vec<f32>> {
    let values = tensor.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
    if values.len() != channels {
        bail!("batch norm: {} statistics for {channels} channels", values.len());
    }
    Ok(values)
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

#[derive(Clone, Debug)]
struct BatchNormRelu {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    /// Whether `mean` and `inv_std` came from this batch (their gradient reaches the input).
    batch_statistics: bool,
}

impl BatchNormRelu {
    fn forward(&self, x: &[f32], gamma: &[f32], beta: &[f32], extent: Extent) -> Vec<f32> {
        let image_len = extent.channels * extent.plane;
        let mut y = vec![0f32; x.len()];
        if image_len == 0 {
            return y;
        }
        y.par_chunks_mut(image_len).zip(x.par_chunks(image_len)).for_each(|(y, x)| {
            for (c, (y, x)) in y.chunks_exact_mut(extent.plane).zip(x.chunks_exact(extent.plane)).enumerate() {
                let scale = gamma[c] * self.inv_std[c];
                let shift = beta[c] - self.mean[c] * scale;
                y.iter_mut().zip(x).for_each(|(y, &x)| *y = (x * scale + shift).max(0.0));
            }
        });
        y
    }

    /// Input, gamma and beta gradients. With `xh = (x - mean) * inv_std` and `dz = dy` where the output is positive
    /// (else 0): `dbeta = sum dz`, `dgamma = sum dz * xh`, and with batch statistics over M values per channel
    /// `dx = gamma * inv_std * (dz - dbeta / M - xh * dgamma / M)` (fixed statistics: `gamma * inv_std * dz`).
    fn backward(&self, x: &[f32], y: &[f32], dy: &[f32], gamma: &[f32], extent: Extent) -> [Vec<f32>; 3] {
        let (plane, channels) = (extent.plane, extent.channels);
        let image_len = channels * plane;
        let mut dx = vec![0f32; x.len()];
        if image_len == 0 {
            return [dx, vec![0.0; channels], vec![0.0; channels]];
        }
        // Per channel, in image order (deterministic): sums of dz and dz * xh.
        let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = (0..channels)
            .into_par_iter()
            .map(|c| {
                let (mean, inv_std) = (self.mean[c], self.inv_std[c]);
                let (mut dz_sum, mut dz_xh_sum) = (0f64, 0f64);
                for ((x, y), dy) in
                    extent.channel_runs(x, c).zip(extent.channel_runs(y, c)).zip(extent.channel_runs(dy, c))
                {
                    let (mut run_dz, mut run_dz_xh) = (0f32, 0f32);
                    for ((&x, &y), &dy) in x.iter().zip(y).zip(dy) {
                        let dz = if y > 0.0 { dy } else { 0.0 };
                        run_dz += dz;
                        run_dz_xh += dz * (x - mean) * inv_std;
                    }
                    dz_sum += f64::from(run_dz);
                    dz_xh_sum += f64::from(run_dz_xh);
                }
                (dz_sum as f32, dz_xh_sum as f32)
            })
            .unzip();
        let count = extent.count().max(1) as f32;
        dx.par_chunks_mut(image_len)
            .zip(x.par_chunks(image_len))
            .zip(y.par_chunks(image_len))
            .zip(dy.par_chunks(image_len))
            .for_each(|(((dx, x), y), dy)| {
                for c in 0..channels {
                    let range = c * plane..(c + 1) * plane;
                    let (mean, inv_std) = (self.mean[c], self.inv_std[c]);
                    let scale = gamma[c] * inv_std;
                    let (mean_dz, mean_dz_xh) =
                        if self.batch_statistics { (dbeta[c] / count, dgamma[c] / count) } else { (0.0, 0.0) };
                    for (((dx, &x), &y), &dy) in
                        dx[range.clone()].iter_mut().zip(&x[range.clone()]).zip(&y[range.clone()]).zip(&dy[range])
                    {
                        let dz = if y > 0.0 { dy } else { 0.0 };
                        *dx = scale * (dz - mean_dz - (x - mean) * inv_std * mean_dz_xh);
                    }
                }
            });
        [dx, dgamma, dbeta]
    }
}

impl CustomOp3 for BatchNormRelu {
    fn name(&self) -> &'static str {
        "batch-norm-relu"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        gamma: &CpuStorage,
        gamma_layout: &Layout,
        beta: &CpuStorage,
        beta_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let extent = Extent::of(x_layout.dims())?;
        let x = contiguous_f32(x, x_layout, "batch norm input")?;
        let gamma = contiguous_f32(gamma, gamma_layout, "batch norm gamma")?;
        let beta = contiguous_f32(beta, beta_layout, "batch norm beta")?;
        let channels = extent.channels;
        if gamma.len() != channels || beta.len() != channels || self.mean.len() != channels {
            bail!("batch norm: parameters for {} channels, input has {channels}", gamma.len());
        }
        Ok((CpuStorage::F32(self.forward(x, gamma, beta, extent)), x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        output: &Tensor,
        grad_output: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let extent = Extent::of(x.dims())?;
        let grad_output = grad_output.contiguous()?;
        let output = output.contiguous()?;
        let [dx, dgamma, dbeta] = with_cpu_f32(x, "batch norm input", |x| {
            with_cpu_f32(&output, "batch norm output", |y| {
                with_cpu_f32(&grad_output, "batch norm output gradient", |dy| {
                    with_cpu_f32(gamma, "batch norm gamma", |gamma| Ok(self.backward(x, y, dy, gamma, extent)))
                })
            })
        })?;
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dgamma, gamma.shape(), gamma.device())?),
            Some(Tensor::from_vec(dbeta, beta.shape(), beta.device())?),
        ))
    }
}

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let values = storage.as_slice::<f32>()?;
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{what}: expected a contiguous tensor");
    };
    values.get(start..end).ok_or_else(|| {
        candle_core::Error::Msg(format!("{what}: layout {start}..{end} outside {} values", values.len()))
    })
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;

    fn relative_error(a: &Tensor, b: &Tensor) -> f64 {
        let a = a.to_dtype(DType::F64).unwrap();
        let b = b.to_dtype(DType::F64).unwrap();
        let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap().max(1e-30);
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap() / scale
    }

    /// Output, statistics and the three gradients equal candle's autograd through the composed ops, with batch and
    /// with fixed statistics; the input is shifted and scaled per channel so the statistics matter.
    #[test]
    fn matches_the_composed_candle_ops_and_their_gradients() {
        for dims in [[4usize, 3, 5, 5], [2, 8, 7, 3], [3, 2, 1, 1]] {
            let channels = dims[1];
            let offsets = Tensor::randn(0f32, 3.0, (1, channels, 1, 1), &Device::Cpu).unwrap();
            let x = (Tensor::randn(0f32, 2.0, &dims, &Device::Cpu).unwrap().broadcast_add(&offsets)).unwrap();
            let x = Var::from_tensor(&x).unwrap();
            let gamma = Var::from_tensor(&Tensor::randn(1f32, 0.3, channels, &Device::Cpu).unwrap()).unwrap();
            let beta = Var::from_tensor(&Tensor::randn(0f32, 0.3, channels, &Device::Cpu).unwrap()).unwrap();
            let running_mean = Tensor::randn(0f32, 1.0, channels, &Device::Cpu).unwrap();
            let running_var = (Tensor::rand(0.5f32, 2.0, channels, &Device::Cpu)).unwrap();
            let probe = Tensor::randn(0f32, 1.0, &dims, &Device::Cpu).unwrap();
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
        let op_for = |x: &[f32]| {
            let (mean, variance) = batch_statistics(x, extent);
            let inv_std = variance.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect();
            BatchNormRelu { mean, inv_std, batch_statistics: true }
        };
        let loss = |x: &[f32]| -> f64 {
            op_for(x).forward(x, &gamma, &beta, extent).iter().zip(&probe).map(|(y, p)| f64::from(y * p)).sum()
        };
        let y = op_for(&x).forward(&x, &gamma, &beta, extent);
        let [dx, _, _] = op_for(&x).backward(&x, &y, &probe, &gamma, extent);
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
}
