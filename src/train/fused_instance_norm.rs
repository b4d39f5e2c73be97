//! Instance normalisation without affine parameters (junyanz `InstanceNorm2d(affine=False)`) followed by a leaky
//! ReLU (`negative_slope` 0 is a ReLU, 1 no activation), as one differentiable CPU op for the CycleGAN's training
//! networks.
//!
//! Composed from candle ops this is seven ops forward (reshape, mean, subtract, square, mean, add + sqrt, divide)
//! and the ReLU, and as many again backward, on maps as small as 16x16, where per-op overhead costs more than the
//! arithmetic. Here each `[H, W]` plane is one pass for its statistics and one for the output; the backward
//! recomputes the plane's statistics and writes the input gradient in two more. On CUDA (unless
//! `--no-fused-cuda-ops`, see `fused_cuda`) the same two passes are one kernel
//! launch each way, one block per plane,
//! where the composed ops made about 8 launches forward and 16 backward: the CycleGAN's GPU step is bound by
//! launches. Other devices and dtypes compose candle ops, the reference the op is tested against.
//!
//! On the 2-core CPU (2026-11-27, alternating 300-step runs of the 64 px CycleGAN) it matters most when the cores are
//! shared: beside a running GAN training, as `scripts/train-defaults.sh` trains the three defaults at once, 3.48 to
//! 3.51 step/s against 2.09 to 2.16 with the composed ops; alone 7.93 and 8.12 against 7.31 and 8.06. (Measured
//! alone and before training ran on rayon's pool, in the previous session, it had shown no gain and was set aside.)

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::models::fast_conv::is_cpu_f32;
use crate::train::conv::contiguous_f32;
use crate::train::fused_cuda::takes_fused_cuda;
use crate::train::lane_sum::{LANES, lane_sum};

/// `leaky((x - mean) / sqrt(var + epsilon))` per `[H, W]` plane of `x` `[N, C, H, W]`, with the biased variance.
pub fn instance_norm_leaky(x: &Tensor, negative_slope: f64, epsilon: f64) -> candle_core::Result<Tensor> {
    let (_, _, height, width) = x.dims4()?;
    if !(is_cpu_f32(x) || takes_fused_cuda(x)) || height * width == 0 {
        return composed(x, negative_slope, epsilon);
    }
    let op = InstanceNormLeaky { negative_slope: negative_slope as f32, epsilon };
    x.contiguous()?.apply_op1(op)
}

/// The same function from candle ops (differentiable on every device and dtype).
pub fn composed(x: &Tensor, negative_slope: f64, epsilon: f64) -> candle_core::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let flat = x.reshape((n, c, h * w))?;
    let mean = flat.mean_keepdim(2)?;
    let centered = flat.broadcast_sub(&mean)?;
    let variance = centered.sqr()?.mean_keepdim(2)?;
    let normalised = centered.broadcast_div(&(variance + epsilon)?.sqrt()?)?.reshape((n, c, h, w))?;
    if negative_slope == 1.0 {
        Ok(normalised)
    } else if negative_slope == 0.0 {
        normalised.relu()
    } else {
        normalised.maximum(&(&normalised * negative_slope)?)
    }
}

#[derive(Clone, Copy, Debug)]
struct InstanceNormLeaky {
    negative_slope: f32,
    epsilon: f64,
}

/// The mean and `1 / sqrt(variance + epsilon)` of one plane (sums in f64).
fn plane_statistics(plane: &[f32], epsilon: f64) -> (f32, f32) {
    let count = plane.len().max(1) as f64;
    let mean = lane_sum(plane, |v| v) / count;
    let variance = lane_sum(plane, |v| (v - mean) * (v - mean)) / count;
    (mean as f32, (1.0 / (variance + epsilon).sqrt()) as f32)
}

#[cfg(feature = "cuda")]
impl InstanceNormLeaky {
    /// The number of `[H, W]` planes, as a kernel size.
    fn planes(&self, layout: &Layout) -> candle_core::Result<u32> {
        match *layout.dims() {
            [images, channels, _, _] => crate::train::fused_cuda::launch::size_u32(images * channels, "planes"),
            ref dims => bail!("instance norm: expected [N, C, H, W], got {dims:?}"),
        }
    }

    /// The kernels' scalars after their buffers: planes, plane length, slope, epsilon.
    fn scalars(
        &self,
        layout: &Layout,
        planes: u32,
    ) -> candle_core::Result<[crate::train::fused_cuda::launch::Scalar; 4]> {
        use crate::train::fused_cuda::launch::Scalar;
        Ok([
            Scalar::U32(planes),
            Scalar::size(plane_len(layout)?, "plane")?,
            Scalar::F32(self.negative_slope),
            Scalar::F32(self.epsilon as f32),
        ])
    }
}

/// The leaky ReLU's derivative at `z`, as a multiplier: a select rather than a branch, so that the loops over a
/// plane vectorise (with a branch on the sign of normalised values they mispredicted half the time and ran 10x
/// slower than candle's eight composed passes). `z * 1.0` is `z`, so the values are those of the branch.
#[inline(always)]
fn leaky_factor(z: f32, slope: f32) -> f32 {
    if z > 0.0 { 1.0 } else { slope }
}

fn plane_len(layout: &Layout) -> candle_core::Result<usize> {
    match *layout.dims() {
        [_, _, height, width] => Ok(height * width),
        ref dims => bail!("instance norm: expected [N, C, H, W], got {dims:?}"),
    }
}

impl CustomOp1 for InstanceNormLeaky {
    fn name(&self) -> &'static str {
        "instance-norm-leaky"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, "instance norm input")?;
        let plane = plane_len(layout)?;
        let mut y = vec![0f32; x.len()];
        let slope = self.negative_slope;
        y.par_chunks_mut(plane).zip(x.par_chunks(plane)).for_each(|(out, input)| {
            let (mean, inv_std) = plane_statistics(input, self.epsilon);
            for (o, &v) in out.iter_mut().zip(input) {
                let z = (v - mean) * inv_std;
                *o = z * leaky_factor(z, slope);
            }
        });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::train::fused_cuda::launch;
        let x = launch::view(storage, layout, "instance norm input")?;
        let (len, planes) = (layout.shape().elem_count(), self.planes(layout)?);
        let y = launch::run(
            &storage.device,
            "instance_norm_leaky_fwd",
            &[&x],
            len,
            &self.scalars(layout, planes)?,
            launch::per_channel(planes),
        )?;
        Ok((y, layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _output: &Tensor, grad_output: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dy = grad_output.contiguous()?;
        Ok(Some(x.apply_op2_no_bwd(&dy, &InputGradient(*self))?))
    }
}

/// `(x, dy)` -> dx: with `z` the normalised input and `g = dy * leaky'(z)`, per plane
/// `dx = inv_std * (g - mean(g) - z * mean(g * z))` (the mean and the variance depend on every input of the plane).
struct InputGradient(InstanceNormLeaky);

impl CustomOp2 for InputGradient {
    fn name(&self) -> &'static str {
        "instance-norm-leaky-input-grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        dy: &CpuStorage,
        dy_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if x_layout.dims() != dy_layout.dims() {
            bail!("instance norm gradient: output gradient {:?} for input {:?}", dy_layout.dims(), x_layout.dims());
        }
        let x = contiguous_f32(x, x_layout, "instance norm input")?;
        let dy = contiguous_f32(dy, dy_layout, "instance norm output gradient")?;
        let plane = plane_len(x_layout)?;
        let InstanceNormLeaky { negative_slope: slope, epsilon } = self.0;
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(plane).zip(x.par_chunks(plane).zip(dy.par_chunks(plane))).for_each(|(out, (input, grad))| {
            let (mean, inv_std) = plane_statistics(input, epsilon);
            // g = dy * leaky'(z) goes into `out` first; then the two plane means (in lanes, as `lane_sum`).
            let (mut lanes_g, mut lanes_gz) = ([0f64; LANES], [0f64; LANES]);
            for (j, ((o, &v), &d)) in out.iter_mut().zip(input).zip(grad).enumerate() {
                let z = (v - mean) * inv_std;
                let g = d * leaky_factor(z, slope);
                *o = g;
                lanes_g[j % LANES] += f64::from(g);
                lanes_gz[j % LANES] += f64::from(g) * f64::from(z);
            }
            let (sum_g, sum_gz) = (lanes_g.iter().sum::<f64>(), lanes_gz.iter().sum::<f64>());
            let count = input.len().max(1) as f64;
            let (mean_g, mean_gz) = ((sum_g / count) as f32, (sum_gz / count) as f32);
            for (o, &v) in out.iter_mut().zip(input) {
                let z = (v - mean) * inv_std;
                *o = inv_std * (*o - mean_g - z * mean_gz);
            }
        });
        Ok((CpuStorage::F32(dx), x_layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        x_layout: &Layout,
        dy: &candle_core::CudaStorage,
        dy_layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::train::fused_cuda::launch;
        if x_layout.dims() != dy_layout.dims() {
            bail!("instance norm gradient: output gradient {:?} for input {:?}", dy_layout.dims(), x_layout.dims());
        }
        let x_view = launch::view(x, x_layout, "instance norm input")?;
        let dy_view = launch::view(dy, dy_layout, "instance norm output gradient")?;
        let (len, planes) = (x_layout.shape().elem_count(), self.0.planes(x_layout)?);
        let dx = launch::run(
            &x.device,
            "instance_norm_leaky_bwd",
            &[&x_view, &dy_view],
            len,
            &self.0.scalars(x_layout, planes)?,
            launch::per_channel(planes),
        )?;
        Ok((dx, x_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;
    use crate::models::fast_conv::tests::relative_error;

    /// Value and input gradient equal candle's autograd through the composed ops, for a ReLU, no activation and a
    /// leaky ReLU, on planes from 1x1 to 16x16, with a probe weighting the output unevenly.
    #[test]
    fn matches_the_composed_candle_ops_and_their_gradient() {
        for (dims, slope) in [
            ([2usize, 3, 5, 7], 0.0),
            ([2, 3, 5, 7], 1.0),
            ([1, 4, 16, 16], 0.2),
            ([3, 2, 1, 1], 0.0),
            ([1, 64, 16, 16], 0.0),
        ] {
            let x = Var::from_tensor(&crate::test_random::randn(0.3f32, 1.5, &dims)).unwrap();
            let probe = crate::test_random::randn(0f32, 1.0, &dims);
            let run = |fused: bool| {
                let y = if fused {
                    instance_norm_leaky(x.as_tensor(), slope, 1e-5).unwrap()
                } else {
                    composed(x.as_tensor(), slope, 1e-5).unwrap()
                };
                let grads = (&y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
                (y, grads.get(x.as_tensor()).unwrap().clone())
            };
            let ((y, dx), (y_ref, dx_ref)) = (run(true), run(false));
            let case = format!("{dims:?}, slope {slope}");
            assert!(relative_error(&y, &y_ref) < 1e-5, "{case}: value {}", relative_error(&y, &y_ref));
            // A 1x1 plane normalises to 0 whatever its value: both gradients are 0.
            let dx_error = relative_error(&dx, &dx_ref);
            assert!(dx_error < 1e-4 || dims[2] * dims[3] == 1, "{case}: input gradient {dx_error}");
        }
    }

    /// The input gradient against central finite differences of the op's own float32 forward (f64 sums), away
    /// from the ReLU's kink.
    #[test]
    fn input_gradient_matches_finite_differences() {
        let dims = [1usize, 2, 3, 3];
        let values: Vec<f32> = (0..18).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.37 + (i / 9) as f32).collect();
        let probe: Vec<f32> = (0..18).map(|i| ((i * 5 % 7) as f32 - 3.0) * 0.5).collect();
        let probe_tensor = Tensor::from_vec(probe.clone(), &dims, &Device::Cpu).unwrap();
        let objective = |values: &[f32]| -> f64 {
            let x = Tensor::from_vec(values.to_vec(), &dims, &Device::Cpu).unwrap();
            let y = instance_norm_leaky(&x, 0.0, 1e-5).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            y.iter().zip(&probe).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum()
        };
        let x = Var::from_tensor(&Tensor::from_vec(values.clone(), &dims, &Device::Cpu).unwrap()).unwrap();
        let y = instance_norm_leaky(x.as_tensor(), 0.0, 1e-5).unwrap();
        let grads = (&y * &probe_tensor).unwrap().sum_all().unwrap().backward().unwrap();
        let analytic = grads.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let step = 1e-3f32;
        for i in 0..values.len() {
            let (mut up, mut down) = (values.clone(), values.clone());
            up[i] += step;
            down[i] -= step;
            let numeric = (objective(&up) - objective(&down)) / (2.0 * f64::from(step));
            let difference = (numeric - f64::from(analytic[i])).abs();
            assert!(difference < 2e-3 * numeric.abs().max(1.0), "value {i}: {numeric} vs {}", analytic[i]);
        }
    }
}
