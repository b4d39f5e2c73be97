//! The last step of the generator's sub-pixel upscale: interleaving the four output phases into the 2x image.
//!
//! The upscale convolution gives `phases` `[N, 4C, H + 1, W + 1]`; phase `p = 2a + b` (channels `pC..(p+1)C`) read
//! from row `a` and column `b` on holds the output pixels `(2y + a, 2x + b)`. From candle ops that is four narrows
//! and three stacks forward, and backward four zero-padded copies of the full phase tensor summed one by one (6% of
//! a CPU GAN training step after the activations were fused). On the CPU and on CUDA (unless `--no-fused-cuda-ops`,
//! see `fused_cuda`) this op copies each value once each way; elsewhere the composed ops run, the reference the op is
//! tested against.

use candle_core::{CpuStorage, CustomOp1, D, Layout, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::models::fast_conv::is_cpu_f32;
use crate::train::conv::contiguous_f32;
use crate::train::fused_cuda::takes_fused_cuda;

/// `[N, 4 * maps_out, H + 1, W + 1]` phases to the `[N, maps_out, 2H, 2W]` image, differentiable.
pub fn interleave_phases(phases: &Tensor, maps_out: usize) -> candle_core::Result<Tensor> {
    let geometry = Geometry::of(phases.dims(), maps_out)?;
    if is_cpu_f32(phases) || takes_fused_cuda(phases) {
        phases.contiguous()?.apply_op1(InterleavePhases { geometry })
    } else {
        composed(phases, geometry)
    }
}

/// [`interleave_phases`] from candle ops on every device and dtype: the reference the op is tested against.
pub fn interleave_phases_composed(phases: &Tensor, maps_out: usize) -> candle_core::Result<Tensor> {
    composed(phases, Geometry::of(phases.dims(), maps_out)?)
}

/// The same interleave from candle's narrow and stack.
fn composed(phases: &Tensor, geometry: Geometry) -> candle_core::Result<Tensor> {
    let Geometry { batch, maps_out, height, width } = geometry;
    let phase = |a: usize, b: usize| -> candle_core::Result<Tensor> {
        phases.narrow(1, (2 * a + b) * maps_out, maps_out)?.narrow(2, a, height)?.narrow(3, b, width)
    };
    let row_even = Tensor::stack(&[phase(0, 0)?, phase(0, 1)?], D::Minus1)?;
    let row_odd = Tensor::stack(&[phase(1, 0)?, phase(1, 1)?], D::Minus1)?;
    // [N, out, H, W, 2] x2 -> [N, out, H, 2, W, 2] -> [N, out, 2H, 2W]
    Tensor::stack(&[row_even, row_odd], 3)?.reshape((batch, maps_out, 2 * height, 2 * width))
}

/// Sizes of the output: `batch` images of `maps_out` maps, each `2 height` x `2 width`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    batch: usize,
    maps_out: usize,
    height: usize,
    width: usize,
}

impl Geometry {
    fn of(dims: &[usize], maps_out: usize) -> candle_core::Result<Self> {
        match *dims {
            [batch, channels, rows, columns] if channels == 4 * maps_out && rows >= 1 && columns >= 1 => {
                Ok(Self { batch, maps_out, height: rows - 1, width: columns - 1 })
            }
            _ => bail!("phase interleave: expected phases [N, {}, H + 1, W + 1], got {dims:?}", 4 * maps_out),
        }
    }

    fn phase_plane(&self) -> usize {
        (self.height + 1) * (self.width + 1)
    }

    fn phases_per_image(&self) -> usize {
        4 * self.maps_out * self.phase_plane()
    }

    fn output_per_image(&self) -> usize {
        4 * self.maps_out * self.height * self.width
    }

    /// Calls `visit(output index, phase index)` for every output value of one image, in output order.
    fn for_each_pair(&self, mut visit: impl FnMut(usize, usize)) {
        let (height, width, columns) = (self.height, self.width, self.width + 1);
        for c in 0..self.maps_out {
            for out_y in 0..2 * height {
                let (y, a) = (out_y / 2, out_y % 2);
                for out_x in 0..2 * width {
                    let (x, b) = (out_x / 2, out_x % 2);
                    let plane = (2 * a + b) * self.maps_out + c;
                    let output = (c * 2 * height + out_y) * 2 * width + out_x;
                    visit(output, plane * self.phase_plane() + (y + a) * columns + x + b);
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct InterleavePhases {
    geometry: Geometry,
}

impl CustomOp1 for InterleavePhases {
    fn name(&self) -> &'static str {
        "interleave-phases"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.geometry;
        if Geometry::of(layout.dims(), g.maps_out)? != g {
            bail!("phase interleave: input {:?} changed shape", layout.dims());
        }
        let phases = contiguous_f32(storage, layout, "phase interleave input")?;
        let mut output = vec![0f32; g.batch * g.output_per_image()];
        if g.output_per_image() > 0 {
            output
                .par_chunks_mut(g.output_per_image())
                .zip(phases.par_chunks(g.phases_per_image()))
                .for_each(|(output, phases)| g.for_each_pair(|to, from| output[to] = phases[from]));
        }
        Ok((CpuStorage::F32(output), Shape::from((g.batch, g.maps_out, 2 * g.height, 2 * g.width))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let g = self.geometry;
        if Geometry::of(layout.dims(), g.maps_out)? != g {
            bail!("phase interleave: input {:?} changed shape", layout.dims());
        }
        let output = g.launch(storage, layout, "interleave_phases_fwd", g.batch * g.output_per_image())?;
        Ok((output, Shape::from((g.batch, g.maps_out, 2 * g.height, 2 * g.width))))
    }

    fn bwd(&self, phases: &Tensor, _output: &Tensor, grad_output: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let grad = grad_output.contiguous()?.apply_op1_no_bwd(&PhaseGradient { geometry: self.geometry })?;
        if grad.dims() != phases.dims() {
            bail!("phase interleave: gradient {:?} for phases {:?}", grad.dims(), phases.dims());
        }
        Ok(Some(grad))
    }
}

impl Geometry {
    /// Runs `kernel` (`interleave_phases_fwd` or `_bwd`, same arguments) on `input`, writing `len` values.
    #[cfg(feature = "cuda")]
    fn launch(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
        kernel: &str,
        len: usize,
    ) -> candle_core::Result<candle_core::CudaStorage> {
        use crate::train::fused_cuda::launch::{self, Scalar};
        let input = launch::view(storage, layout, "phase interleave input")?;
        let scalars = [
            Scalar::size(self.batch, "batch")?,
            Scalar::size(self.maps_out, "maps")?,
            Scalar::size(self.height, "height")?,
            Scalar::size(self.width, "width")?,
        ];
        launch::run(&storage.device, kernel, &[&input], len, &scalars, launch::config(len as u64))
    }
}

/// The interleave's gradient: the output gradient `[N, C, 2H, 2W]` scattered back to the phases `[N, 4C, H + 1,
/// W + 1]` (0 where a phase value is never read).
struct PhaseGradient {
    geometry: Geometry,
}

impl CustomOp1 for PhaseGradient {
    fn name(&self) -> &'static str {
        "interleave-phases-gradient"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.geometry;
        let dy = contiguous_f32(storage, layout, "phase interleave output gradient")?;
        if dy.len() != g.batch * g.output_per_image() {
            bail!("phase interleave gradient: output gradient {:?} does not match {g:?}", layout.dims());
        }
        let mut grad_phases = vec![0f32; g.batch * g.phases_per_image()];
        if g.output_per_image() > 0 {
            grad_phases
                .par_chunks_mut(g.phases_per_image())
                .zip(dy.par_chunks(g.output_per_image()))
                .for_each(|(grad, dy)| g.for_each_pair(|from, to| grad[to] = dy[from]));
        }
        Ok((CpuStorage::F32(grad_phases), self.phases_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let g = self.geometry;
        if layout.shape().elem_count() != g.batch * g.output_per_image() {
            bail!("phase interleave gradient: output gradient {:?} does not match {g:?}", layout.dims());
        }
        let output = g.launch(storage, layout, "interleave_phases_bwd", g.batch * g.phases_per_image())?;
        Ok((output, self.phases_shape()))
    }
}

impl PhaseGradient {
    fn phases_shape(&self) -> Shape {
        let g = self.geometry;
        Shape::from((g.batch, 4 * g.maps_out, g.height + 1, g.width + 1))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;

    /// Values and gradient equal candle's autograd through narrow and stack, for odd and even sizes.
    #[test]
    fn matches_narrow_and_stack_with_gradient() {
        for (batch, maps_out, rows, columns) in [(2, 3, 5, 5), (1, 1, 2, 4), (3, 2, 9, 6)] {
            let phases = Var::from_tensor(
                &Tensor::randn(0f32, 1.0, (batch, 4 * maps_out, rows, columns), &Device::Cpu).unwrap(),
            )
            .unwrap();
            let geometry = Geometry::of(phases.dims(), maps_out).unwrap();
            let probe =
                Tensor::randn(0f32, 1.0, (batch, maps_out, 2 * rows - 2, 2 * columns - 2), &Device::Cpu).unwrap();
            let run = |fused: bool| {
                let y = if fused {
                    interleave_phases(phases.as_tensor(), maps_out).unwrap()
                } else {
                    composed(phases.as_tensor(), geometry).unwrap()
                };
                let grads = (&y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
                (y, grads.get(phases.as_tensor()).unwrap().clone())
            };
            let (y, grad) = run(true);
            let (y_ref, grad_ref) = run(false);
            // Pure copies: equal to the bit.
            let difference = |a: &Tensor, b: &Tensor| {
                (a - b)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            };
            assert_eq!(difference(&y, &y_ref), 0.0, "values, {:?}", phases.dims());
            assert_eq!(difference(&grad, &grad_ref), 0.0, "gradient, {:?}", phases.dims());
        }
    }

    #[test]
    fn wrong_channel_count_is_refused_with_the_shape() {
        let phases = Tensor::zeros((1, 6, 3, 3), DType::F32, &Device::Cpu).unwrap();
        let message = interleave_phases(&phases, 2).unwrap_err().to_string();
        assert!(message.contains("[1, 6, 3, 3]"), "{message}");
    }
}
