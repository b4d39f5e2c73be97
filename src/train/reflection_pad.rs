//! `nn.ReflectionPad2d` (mirror without repeating the edge) as one differentiable CPU op, for the CycleGAN's
//! training generator.
//!
//! Composed from candle ops it is two `index_select`s forward and two `index_add`s backward over zero tensors, per
//! padding; the generator pads 14 times per pass. Here the forward copies each output pixel once from its mirrored
//! source, and the backward adds each output gradient into its source, plane by plane. On CUDA (unless
//! `--no-fused-cuda-ops`, see `fused_cuda`) each way is one kernel launch: the backward gathers, for every input
//! pixel, the (at most nine) gradients read from it in the CPU's order. Other devices and dtypes use the composed ops
//! ([`reflection_pad_composed`]), the reference the op is tested against. [`reflection_pad`] chooses; the CycleGAN's
//! training and inference networks both call it.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::models::cyclegan::reflected_index;
use crate::models::fast_conv::is_cpu_f32;
use crate::train::conv::contiguous_f32;
use crate::train::fused_cuda::takes_fused_cuda;

/// `x` `[N, C, H, W]` padded by `pad` on every side with its mirror image; needs `pad < H` and `pad < W` (the
/// caller checks, as PyTorch does).
pub fn reflection_pad_fused(x: &Tensor, pad: usize) -> candle_core::Result<Tensor> {
    let (_, _, height, width) = x.dims4()?;
    if pad >= height || pad >= width {
        bail!("reflection padding {pad} needs sides larger than {height}x{width}");
    }
    x.contiguous()?.apply_op1(ReflectionPad { pad, height, width })
}

/// `nn.ReflectionPad2d(pad)`, differentiable on every device: [`reflection_pad_fused`] on float32 on the CPU (and on
/// CUDA with the unchecked kernels on), [`reflection_pad_composed`] elsewhere. Needs `pad` smaller than both sides.
pub fn reflection_pad(x: &Tensor, pad: usize) -> candle_core::Result<Tensor> {
    if is_cpu_f32(x) || takes_fused_cuda(x) { reflection_pad_fused(x, pad) } else { reflection_pad_composed(x, pad) }
}

/// `nn.ReflectionPad2d(pad)` from candle ops (`index_select` per side), differentiable on every device; needs
/// `pad` smaller than both sides.
pub fn reflection_pad_composed(x: &Tensor, pad: usize) -> candle_core::Result<Tensor> {
    let (_, _, height, width) = x.dims4()?;
    if pad >= height || pad >= width {
        candle_core::bail!("reflection padding {pad} needs sides larger than {height}x{width}");
    }
    let mut y = x.clone();
    for (dim, size) in [(2, height), (3, width)] {
        let indices: Vec<u32> = (0..size + 2 * pad).map(|i| reflected_index(i, pad, size) as u32).collect();
        let indices = Tensor::from_vec(indices, size + 2 * pad, x.device())?;
        y = y.index_select(&indices, dim)?;
    }
    Ok(y)
}

#[derive(Clone, Copy, Debug)]
struct ReflectionPad {
    pad: usize,
    height: usize,
    width: usize,
}

impl ReflectionPad {
    fn padded_sides(&self) -> (usize, usize) {
        (self.height + 2 * self.pad, self.width + 2 * self.pad)
    }

    fn planes(&self, layout: &Layout) -> candle_core::Result<(usize, usize)> {
        match *layout.dims() {
            [n, c, _, _] => Ok((n, c)),
            ref dims => bail!("reflection pad: expected [N, C, H, W], got {dims:?}"),
        }
    }

    /// Runs `kernel` (`reflection_pad_fwd` or `_bwd`) on `input`, writing `output_dims`.
    #[cfg(feature = "cuda")]
    fn launch(
        &self,
        kernel: &str,
        input: &candle_core::CudaStorage,
        layout: &Layout,
        output_dims: [usize; 4],
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::train::fused_cuda::launch::{self, Scalar};
        let (n, c) = self.planes(layout)?;
        let view = launch::view(input, layout, "reflection pad operand")?;
        let len = output_dims.iter().product::<usize>();
        let scalars = [
            Scalar::size(n * c, "planes")?,
            Scalar::size(self.height, "height")?,
            Scalar::size(self.width, "width")?,
            Scalar::size(self.pad, "pad")?,
        ];
        let output = launch::run(&input.device, kernel, &[&view], len, &scalars, launch::config(len as u64))?;
        Ok((output, Shape::from(output_dims.to_vec())))
    }
}

impl CustomOp1 for ReflectionPad {
    fn name(&self) -> &'static str {
        "reflection-pad"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, "reflection pad input")?;
        let (n, c) = self.planes(layout)?;
        let (out_h, out_w) = self.padded_sides();
        let mut y = vec![0f32; n * c * out_h * out_w];
        let columns: Vec<usize> = (0..out_w).map(|ox| reflected_index(ox, self.pad, self.width)).collect();
        y.par_chunks_mut(out_h * out_w).zip(x.par_chunks(self.height * self.width)).for_each(|(out, plane)| {
            for (oy, out_row) in out.chunks_exact_mut(out_w).enumerate() {
                let row = &plane[reflected_index(oy, self.pad, self.height) * self.width..][..self.width];
                out_row.iter_mut().zip(&columns).for_each(|(o, &sx)| *o = row[sx]);
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((n, c, out_h, out_w))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (n, c) = self.planes(layout)?;
        if layout.dims()[2..] != [self.height, self.width] {
            bail!("reflection pad: expected {}x{} planes, got {:?}", self.height, self.width, layout.dims());
        }
        let (out_h, out_w) = self.padded_sides();
        self.launch("reflection_pad_fwd", storage, layout, [n, c, out_h, out_w])
    }

    fn bwd(&self, _x: &Tensor, _output: &Tensor, grad_output: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad_output.contiguous()?.apply_op1_no_bwd(&ReflectionPadAdjoint(*self))?))
    }
}

/// The adjoint: every padded position's gradient added into its mirrored source, in a fixed order per plane.
struct ReflectionPadAdjoint(ReflectionPad);

impl CustomOp1 for ReflectionPadAdjoint {
    fn name(&self) -> &'static str {
        "reflection-pad-adjoint"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let pad = self.0;
        let dy = contiguous_f32(storage, layout, "reflection pad gradient")?;
        let (n, c) = pad.planes(layout)?;
        let (out_h, out_w) = pad.padded_sides();
        if layout.dims()[2..] != [out_h, out_w] {
            bail!("reflection pad gradient: expected {out_h}x{out_w} planes, got {:?}", layout.dims());
        }
        let mut dx = vec![0f32; n * c * pad.height * pad.width];
        let columns: Vec<usize> = (0..out_w).map(|ox| reflected_index(ox, pad.pad, pad.width)).collect();
        dx.par_chunks_mut(pad.height * pad.width).zip(dy.par_chunks(out_h * out_w)).for_each(|(plane, grad)| {
            for (oy, grad_row) in grad.chunks_exact(out_w).enumerate() {
                let row = &mut plane[reflected_index(oy, pad.pad, pad.height) * pad.width..][..pad.width];
                grad_row.iter().zip(&columns).for_each(|(&g, &sx)| row[sx] += g);
            }
        });
        Ok((CpuStorage::F32(dx), Shape::from((n, c, pad.height, pad.width))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let pad = self.0;
        let (n, c) = pad.planes(layout)?;
        let (out_h, out_w) = pad.padded_sides();
        if layout.dims()[2..] != [out_h, out_w] {
            bail!("reflection pad gradient: expected {out_h}x{out_w} planes, got {:?}", layout.dims());
        }
        pad.launch("reflection_pad_bwd", storage, layout, [n, c, pad.height, pad.width])
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    /// Value and input gradient equal the composed index_select ops, for square and oblong planes and pads 1 and 3.
    #[test]
    fn matches_the_composed_ops_and_their_gradient() {
        for (dims, pad) in [([2, 3, 5, 7], 1), ([1, 2, 8, 4], 3), ([3, 1, 4, 4], 3)] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, &dims, &Device::Cpu).unwrap()).unwrap();
            let fused = reflection_pad_fused(x.as_tensor(), pad).unwrap();
            let composed = reflection_pad_composed(x.as_tensor(), pad).unwrap();
            assert_eq!(fused.dims(), composed.dims());
            let diff = (&fused - &composed).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert_eq!(diff, 0.0, "{dims:?} pad {pad}: values");
            let probe = Tensor::randn(0f32, 1.0, fused.dims(), &Device::Cpu).unwrap();
            let g_fused = (fused * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let g_composed = (composed * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let (a, b) = (g_fused.get(x.as_tensor()).unwrap(), g_composed.get(x.as_tensor()).unwrap());
            let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-5, "{dims:?} pad {pad}: gradient differs by {diff}");
        }
    }

    #[test]
    fn a_pad_as_large_as_a_side_is_refused() {
        let x = Tensor::zeros((1, 1, 3, 8), candle_core::DType::F32, &Device::Cpu).unwrap();
        let error = reflection_pad_fused(&x, 3).unwrap_err().to_string();
        assert!(error.contains("larger than 3x8"), "{error}");
    }
}
