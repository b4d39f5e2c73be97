//! Stride-1 convolution on CUDA as `k * k` matrix products on shifted views of the zero-padded input, with no im2col
//! buffer (profiled on an H200: candle's im2col kernel was 42% of a 128 px GAN step's GPU time).
//!
//! With the input padded to `Hp x Wp` and flattened per channel, the kernel tap `(ky, kx)` reads the input shifted by
//! `ky * Wp + kx` elements. Taken as a matrix `[C, Ho * Wp]` with leading dimension `Hp * Wp`, that shifted view is a
//! valid GEMM operand, so
//!
//! ```text
//! Y_wide[n] = sum over taps of W_tap [O, C] x X_shifted[n] [C, Ho * Wp]
//! ```
//!
//! computes every output row at full padded width `Wp`; the last `k - 1` columns of each row (reads that wrapped into
//! the next row) are dropped afterwards. Both gradients are the adjoint products on the same views:
//! `dW_tap = sum_n dY_wide[n] X_shifted[n]^T` and `dX_padded[n] += W_tap^T dY_wide[n]` written back at the tap's
//! shift. The dropped columns get zero gradient, so their values never reach a result; `k` zeros after the last
//! image keep the final wrapped reads inside the buffer.
//!
//! Every product is one column-major strided-batched GEMM ([`GemmCall`], batched over images). On CUDA they go to
//! cuBLAS (TF32 when `--tf32` is on); on the CPU a plain loop runs the same calls, which is how the offsets and
//! leading dimensions are tested without a GPU. Training (`train::conv`) uses it for every stride-1 convolution on
//! CUDA, inference (`fast_conv` off the CPU) for the large ones ([`device_conv2d`]).

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

/// Sizes of one stride-1 convolution with zero padding, in the shifted-view layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShiftedGeometry {
    pub batch: usize,
    pub maps_in: usize,
    pub maps_out: usize,
    pub kernel: usize,
    /// Padded height and width.
    pub padded_h: usize,
    pub padded_w: usize,
    /// Output height and width.
    pub out_h: usize,
    pub out_w: usize,
}

impl ShiftedGeometry {
    pub fn new(input: [usize; 4], maps_out: usize, kernel: usize, padding: usize) -> candle_core::Result<Self> {
        let [batch, maps_in, height, width] = input;
        let (padded_h, padded_w) = (height + 2 * padding, width + 2 * padding);
        if kernel == 0 || padded_h < kernel || padded_w < kernel {
            candle_core::bail!("shifted conv: kernel {kernel} does not fit the padded {padded_h}x{padded_w} input");
        }
        Ok(Self {
            batch,
            maps_in,
            maps_out,
            kernel,
            padded_h,
            padded_w,
            out_h: padded_h - kernel + 1,
            out_w: padded_w - kernel + 1,
        })
    }

    /// Elements of one padded channel plane.
    fn plane(&self) -> usize {
        self.padded_h * self.padded_w
    }

    /// Columns of one wide output row block: `Ho * Wp`.
    fn wide(&self) -> usize {
        self.out_h * self.padded_w
    }

    /// Length of the flattened padded input, with `k` trailing zeros for the last wrapped reads.
    pub fn padded_len(&self) -> usize {
        self.batch * self.maps_in * self.plane() + self.kernel
    }

    /// Length of the wide output `[N, O, Ho * Wp]`.
    pub fn wide_len(&self) -> usize {
        self.batch * self.maps_out * self.wide()
    }

    fn taps(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.kernel)
            .flat_map(move |ky| (0..self.kernel).map(move |kx| (ky * self.kernel + kx, ky * self.padded_w + kx)))
    }

    /// `Y_wide[n] (O x L) = sum_t W_t (O x C) X_t[n] (C x L)`; A = padded input, B = taps `[k*k, O, C]`, C = wide output.
    pub fn forward_calls(&self) -> Vec<GemmCall> {
        let (plane, wide) = (self.plane(), self.wide());
        self.taps()
            .map(|(tap, shift)| GemmCall {
                trans_a: false,
                trans_b: false,
                m: wide,
                n: self.maps_out,
                k: self.maps_in,
                a_offset: shift,
                lda: plane,
                stride_a: self.maps_in * plane,
                b_offset: tap * self.maps_out * self.maps_in,
                ldb: self.maps_in,
                stride_b: 0,
                c_offset: 0,
                ldc: wide,
                stride_c: self.maps_out * wide,
                batch: self.batch,
                accumulate: tap > 0,
            })
            .collect()
    }

    /// `dX_t[n] (C x L, written at the tap's shift) += W_t^T (C x O) dY_wide[n] (O x L)`; A = wide output gradient,
    /// B = taps, C = padded input gradient (zeroed first).
    pub fn input_grad_calls(&self) -> Vec<GemmCall> {
        let (plane, wide) = (self.plane(), self.wide());
        self.taps()
            .map(|(tap, shift)| GemmCall {
                trans_a: false,
                trans_b: true,
                m: wide,
                n: self.maps_in,
                k: self.maps_out,
                a_offset: 0,
                lda: wide,
                stride_a: self.maps_out * wide,
                b_offset: tap * self.maps_out * self.maps_in,
                ldb: self.maps_in,
                stride_b: 0,
                c_offset: shift,
                ldc: plane,
                stride_c: self.maps_in * plane,
                batch: self.batch,
                accumulate: true,
            })
            .collect()
    }

    /// `dW_t[n] (O x C) = dY_wide[n] (O x L) X_t[n]^T (L x C)`, one per image (summed afterwards); A = padded input,
    /// B = wide output gradient, C = `[k*k, N, O, C]`.
    pub fn weight_grad_calls(&self) -> Vec<GemmCall> {
        let (plane, wide) = (self.plane(), self.wide());
        let per_tap = self.batch * self.maps_out * self.maps_in;
        self.taps()
            .map(|(tap, shift)| GemmCall {
                trans_a: true,
                trans_b: false,
                m: self.maps_in,
                n: self.maps_out,
                k: wide,
                a_offset: shift,
                lda: plane,
                stride_a: self.maps_in * plane,
                b_offset: 0,
                ldb: wide,
                stride_b: self.maps_out * wide,
                c_offset: tap * per_tap,
                ldc: self.maps_in,
                stride_c: self.maps_out * self.maps_in,
                batch: self.batch,
                accumulate: false,
            })
            .collect()
    }
}

/// One column-major strided-batched GEMM `C = op(A) op(B) (+ C when accumulating)`, on element offsets into three
/// buffers (cuBLAS's `gemmStridedBatchedEx` parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmCall {
    pub trans_a: bool,
    pub trans_b: bool,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a_offset: usize,
    pub lda: usize,
    pub stride_a: usize,
    pub b_offset: usize,
    pub ldb: usize,
    pub stride_b: usize,
    pub c_offset: usize,
    pub ldc: usize,
    pub stride_c: usize,
    pub batch: usize,
    /// Add to C (beta 1) instead of overwriting it (beta 0).
    pub accumulate: bool,
}

impl GemmCall {
    /// Refuses a call that would read or write outside buffers of these lengths, or whose leading dimensions cuBLAS
    /// would reject: on the GPU either would be memory corruption or an opaque status.
    pub fn check(&self, a_len: usize, b_len: usize, c_len: usize) -> candle_core::Result<()> {
        let (a_rows, a_cols) = if self.trans_a { (self.k, self.m) } else { (self.m, self.k) };
        let (b_rows, b_cols) = if self.trans_b { (self.n, self.k) } else { (self.k, self.n) };
        let last = |offset: usize, stride: usize, ld: usize, rows: usize, cols: usize| {
            offset + (self.batch - 1) * stride + (cols - 1) * ld + (rows - 1)
        };
        if self.batch == 0 || self.m == 0 || self.n == 0 || self.k == 0 {
            candle_core::bail!("gemm call with an empty dimension: {self:?}");
        }
        if self.lda < a_rows || self.ldb < b_rows || self.ldc < self.m {
            candle_core::bail!("gemm call with a leading dimension below its rows: {self:?}");
        }
        let ends = [
            (last(self.a_offset, self.stride_a, self.lda, a_rows, a_cols), a_len, "A"),
            (last(self.b_offset, self.stride_b, self.ldb, b_rows, b_cols), b_len, "B"),
            (last(self.c_offset, self.stride_c, self.ldc, self.m, self.n), c_len, "C"),
        ];
        for (end, len, name) in ends {
            if end >= len {
                candle_core::bail!("gemm call reads {name}[{end}] of a {len}-element buffer: {self:?}");
            }
        }
        if [self.m, self.n, self.k, self.lda, self.ldb, self.ldc, self.batch].iter().any(|&v| v > i32::MAX as usize) {
            candle_core::bail!("gemm call too large for cuBLAS's 32-bit sizes: {self:?}");
        }
        Ok(())
    }

    /// The call on host buffers (the reference the CUDA path is tested by).
    pub fn run_host(&self, a: &[f32], b: &[f32], c: &mut [f32]) -> candle_core::Result<()> {
        self.check(a.len(), b.len(), c.len())?;
        for image in 0..self.batch {
            let (a0, b0, c0) = (
                self.a_offset + image * self.stride_a,
                self.b_offset + image * self.stride_b,
                self.c_offset + image * self.stride_c,
            );
            for j in 0..self.n {
                for i in 0..self.m {
                    let mut sum = 0f64;
                    for p in 0..self.k {
                        let a_value = if self.trans_a { a[a0 + p + i * self.lda] } else { a[a0 + i + p * self.lda] };
                        let b_value = if self.trans_b { b[b0 + j + p * self.ldb] } else { b[b0 + p + j * self.ldb] };
                        sum += f64::from(a_value) * f64::from(b_value);
                    }
                    let target = &mut c[c0 + i + j * self.ldc];
                    *target = if self.accumulate { *target + sum as f32 } else { sum as f32 };
                }
            }
        }
        Ok(())
    }
}

/// Whether [`shifted_conv2d`] takes this convolution on its fast device path: CUDA, float32, stride 1, a square
/// kernel and padding below its size.
pub fn applies_on_device(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> bool {
    let cuda_f32 = |t: &Tensor| t.device().is_cuda() && t.dtype() == candle_core::DType::F32;
    let square = matches!(weight.dims4(), Ok((_, _, kh, kw)) if kh == kw && padding < kh);
    stride == 1 && square && cuda_f32(x) && cuda_f32(weight)
}

/// Smallest im2col buffer (elements) for which inference takes [`shifted_conv2d`]. The shifted form costs about a
/// dozen launches whatever the size (padding, weight reordering, one GEMM per tap, the final crop), candle's conv2d
/// three plus an im2col pass that grows with the size. Measured on an H200 with every convolution shifted: the
/// generator at batch 8 got faster (26.7 -> 21.6 ms), DenseNet-121 at batch 1 (small maps, many 1x1 layers) slower
/// (10.8 -> 14.7 ms). 4 Mi elements (a 16 MiB buffer) keeps the small layers on candle's path; the threshold itself
/// has not been tuned on a GPU.
pub const SHIFTED_MIN_IM2COL_ELEMENTS: usize = 1 << 22;

/// An inference convolution off the CPU fast path: cuDNN where it started (`cudnn_conv`), else [`shifted_conv2d`]
/// where [`applies_on_device`] and the layer is large enough (see [`SHIFTED_MIN_IM2COL_ELEMENTS`]), else candle's
/// conv2d.
pub fn device_conv2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> candle_core::Result<Tensor> {
    if crate::models::cudnn_conv::applies(x, weight) {
        crate::models::cudnn_conv::cudnn_conv2d(x, weight, stride, padding)
    } else if applies_on_device(x, weight, stride, padding)
        && im2col_elements(x, weight, padding)? >= SHIFTED_MIN_IM2COL_ELEMENTS
    {
        shifted_conv2d(x, weight, padding)
    } else {
        x.conv2d(weight, padding, stride, 1, 1)
    }
}

/// Elements of the im2col buffer of a stride-1 convolution: output pixels times `C * k * k`.
fn im2col_elements(x: &Tensor, weight: &Tensor, padding: usize) -> candle_core::Result<usize> {
    let (batch, maps_in, height, width) = x.dims4()?;
    let (maps_out, _, kernel, _) = weight.dims4()?;
    let geometry = ShiftedGeometry::new([batch, maps_in, height, width], maps_out, kernel, padding)?;
    Ok(batch * geometry.out_h * geometry.out_w * maps_in * kernel * kernel)
}

/// Stride-1 convolution of `x` `[N, C, H, W]` by `weight` `[O, C, k, k]` with zero `padding`, float32, through the
/// shifted-view GEMMs; differentiable in both. Any device: cuBLAS on CUDA, the reference loop on the CPU (tests).
pub fn shifted_conv2d(x: &Tensor, weight: &Tensor, padding: usize) -> candle_core::Result<Tensor> {
    let (batch, maps_in, height, width) = x.dims4()?;
    let (maps_out, weight_in, kernel_h, kernel_w) = weight.dims4()?;
    if weight_in != maps_in || kernel_h != kernel_w {
        candle_core::bail!("shifted conv: input {:?} and kernel {:?} do not fit", x.dims(), weight.dims());
    }
    let geometry = ShiftedGeometry::new([batch, maps_in, height, width], maps_out, kernel_h, padding)?;
    let padded = x.pad_with_zeros(2, padding, padding)?.pad_with_zeros(3, padding, padding)?;
    let padded = padded.flatten_all()?.pad_with_zeros(0, 0, geometry.kernel)?;
    // [O, C, k, k] -> [k*k, O, C]: one contiguous [O, C] matrix per tap.
    let taps = weight.permute((2, 3, 0, 1))?.reshape((kernel_h * kernel_w, maps_out, maps_in))?;
    let wide = padded.apply_op2(&taps, ShiftedProduct::new(geometry, ProductKind::Forward))?;
    wide.reshape((batch, maps_out, geometry.out_h, geometry.padded_w))?.narrow(3, 0, geometry.out_w)?.contiguous()
}

/// One of the three products on the shifted views (see the module docs), as a candle op on its two operands.
#[derive(Clone, Copy, Debug)]
struct ShiftedProduct {
    geometry: ShiftedGeometry,
    kind: ProductKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProductKind {
    /// (padded input, taps) -> wide output.
    Forward,
    /// (taps, wide output gradient) -> padded input gradient.
    InputGrad,
    /// (padded input, wide output gradient) -> weight gradient per image, `[k*k, N, O, C]`.
    WeightGrad,
}

impl ShiftedProduct {
    fn new(geometry: ShiftedGeometry, kind: ProductKind) -> Self {
        Self { geometry, kind }
    }

    fn calls(&self) -> Vec<GemmCall> {
        match self.kind {
            ProductKind::Forward => self.geometry.forward_calls(),
            ProductKind::InputGrad => self.geometry.input_grad_calls(),
            ProductKind::WeightGrad => self.geometry.weight_grad_calls(),
        }
    }

    fn output_shape(&self) -> Shape {
        let g = &self.geometry;
        match self.kind {
            ProductKind::Forward => Shape::from(g.wide_len()),
            ProductKind::InputGrad => Shape::from(g.padded_len()),
            ProductKind::WeightGrad => Shape::from((g.kernel * g.kernel, g.batch, g.maps_out, g.maps_in)),
        }
    }

    /// Whether the op's first argument is GEMM operand A (otherwise the second is).
    fn first_is_a(&self) -> bool {
        self.kind != ProductKind::InputGrad
    }

    fn label(&self) -> &'static str {
        match self.kind {
            ProductKind::Forward => "shifted-conv",
            ProductKind::InputGrad => "shifted-conv-input-grad",
            ProductKind::WeightGrad => "shifted-conv-weight-grad",
        }
    }
}

/// The slice of a contiguous float32 storage that a layout covers.
fn host_values<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let values = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => {
            values.get(start..end).ok_or_else(|| candle_core::Error::Msg(format!("{what}: layout outside its storage")))
        }
        None => candle_core::bail!("{what}: expected a contiguous tensor"),
    }
}

fn run_product_host(
    product: &ShiftedProduct,
    first: (&CpuStorage, &Layout),
    second: (&CpuStorage, &Layout),
) -> candle_core::Result<(CpuStorage, Shape)> {
    let first = host_values(first.0, first.1, product.label())?;
    let second = host_values(second.0, second.1, product.label())?;
    let (a, b) = if product.first_is_a() { (first, second) } else { (second, first) };
    let shape = product.output_shape();
    let mut c = vec![0f32; shape.elem_count()];
    for call in product.calls() {
        call.run_host(a, b, &mut c)?;
    }
    Ok((CpuStorage::F32(c), shape))
}

/// A contiguous float32 CUDA tensor as (buffer, first element, element count).
#[cfg(feature = "cuda")]
fn cuda_operand<'a>(
    (storage, layout): (&'a candle_core::CudaStorage, &Layout),
    what: &str,
) -> candle_core::Result<(&'a candle_core::cuda_backend::cudarc::driver::CudaSlice<f32>, usize, usize)> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{what}: expected a contiguous tensor")
    };
    Ok((storage.as_cuda_slice::<f32>()?, start, end - start))
}

#[cfg(feature = "cuda")]
fn run_product_cuda(
    product: &ShiftedProduct,
    first: (&candle_core::CudaStorage, &Layout),
    second: (&candle_core::CudaStorage, &Layout),
) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
    use candle_core::cuda_backend::cudarc::cublas::{result::gemm_strided_batched_ex, sys};
    use candle_core::cuda_backend::cudarc::driver::{DevicePtr, DevicePtrMut};

    let device = first.0.device.clone();
    let (first, second) = (cuda_operand(first, product.label())?, cuda_operand(second, product.label())?);
    let (a, b) = if product.first_is_a() { (first, second) } else { (second, first) };
    let shape = product.output_shape();
    let mut c = device.alloc_zeros::<f32>(shape.elem_count())?;
    let calls = product.calls();
    for call in &calls {
        call.check(a.2, b.2, shape.elem_count())?;
    }
    let compute = if candle_core::cuda_backend::gemm_reduced_precision_f32() {
        sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32
    } else {
        sys::cublasComputeType_t::CUBLAS_COMPUTE_32F
    };
    let op = |transpose: bool| {
        if transpose { sys::cublasOperation_t::CUBLAS_OP_T } else { sys::cublasOperation_t::CUBLAS_OP_N }
    };
    let blas = device.cublas_handle();
    let stream = device.cuda_stream();
    let (a_base, _a_guard) = a.0.device_ptr(&stream);
    let (b_base, _b_guard) = b.0.device_ptr(&stream);
    let (c_base, _c_guard) = c.device_ptr_mut(&stream);
    const F32_BYTES: u64 = 4;
    for call in calls {
        let at = |base: u64, start: usize, offset: usize| base + (start + offset) as u64 * F32_BYTES;
        let (one, beta) = (1f32, if call.accumulate { 1f32 } else { 0f32 });
        // Sizes were checked against i32::MAX by `check`.
        let int = |v: usize| v as i32;
        // SAFETY: every pointer plus the call's largest index stays inside its buffer (`check` above); the buffers
        // live until the guards drop after the loop, and cuBLAS runs on candle's stream, in order with their writers.
        unsafe {
            gemm_strided_batched_ex(
                *blas.handle(),
                op(call.trans_a),
                op(call.trans_b),
                int(call.m),
                int(call.n),
                int(call.k),
                (&one as *const f32).cast(),
                at(a_base, a.1, call.a_offset) as *const std::ffi::c_void,
                sys::cudaDataType_t::CUDA_R_32F,
                int(call.lda),
                call.stride_a as i64,
                at(b_base, b.1, call.b_offset) as *const std::ffi::c_void,
                sys::cudaDataType_t::CUDA_R_32F,
                int(call.ldb),
                call.stride_b as i64,
                (&beta as *const f32).cast(),
                at(c_base, 0, call.c_offset) as *mut std::ffi::c_void,
                sys::cudaDataType_t::CUDA_R_32F,
                int(call.ldc),
                call.stride_c as i64,
                int(call.batch),
                compute,
                sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT_TENSOR_OP,
            )
        }
        .map_err(|e| candle_core::Error::Msg(format!("{}: cuBLAS failed: {e:?}", product.label())))?;
    }
    drop((_a_guard, _b_guard, _c_guard));
    Ok((candle_core::CudaStorage::wrap_cuda_slice(c, device), shape))
}

impl CustomOp2 for ShiftedProduct {
    fn name(&self) -> &'static str {
        self.label()
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        run_product_host(self, (s1, l1), (s2, l2))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        run_product_cuda(self, (s1, l1), (s2, l2))
    }

    /// The forward product's gradients are the other two products (first order, as candle's own backward); those
    /// two are only used here.
    fn bwd(
        &self,
        first: &Tensor,
        second: &Tensor,
        _: &Tensor,
        grad_wide: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        if self.kind != ProductKind::Forward {
            return Err(candle_core::Error::BackwardNotSupported { op: self.label() });
        }
        let (padded, taps) = (first, second);
        let grad_wide = grad_wide.contiguous()?;
        let input_grad = ShiftedProduct::new(self.geometry, ProductKind::InputGrad);
        let grad_padded = taps.contiguous()?.apply_op2_no_bwd(&grad_wide, &input_grad)?;
        let weight_grad = ShiftedProduct::new(self.geometry, ProductKind::WeightGrad);
        let grad_taps = padded.contiguous()?.apply_op2_no_bwd(&grad_wide, &weight_grad)?.sum(1)?;
        Ok((Some(grad_padded), Some(grad_taps)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;
    use crate::train::conv::conv2d_im2col;

    fn max_relative(a: &Tensor, b: &Tensor) -> f64 {
        let a = a.to_dtype(DType::F64).unwrap();
        let b = b.to_dtype(DType::F64).unwrap();
        let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap().max(1e-12);
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap() / scale
    }

    /// Values and both gradients equal the im2col reference for the kernel/padding pairs the trainers use (and odd
    /// sizes), so the offsets, leading dimensions and wrapped columns of every GEMM call are right.
    #[test]
    fn matches_the_im2col_reference_with_gradients() {
        for (kernel, padding, height, width, maps_in, maps_out) in [
            (3usize, 1usize, 6usize, 5usize, 3usize, 4usize),
            (1, 0, 4, 4, 5, 2),
            (2, 1, 5, 3, 2, 3),
            (4, 3, 3, 4, 2, 2),
            (3, 0, 5, 7, 3, 2),
        ] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, maps_in, height, width), &Device::Cpu).unwrap())
                .unwrap();
            let w =
                Var::from_tensor(&Tensor::randn(0f32, 0.5, (maps_out, maps_in, kernel, kernel), &Device::Cpu).unwrap())
                    .unwrap();
            let ours = shifted_conv2d(x.as_tensor(), w.as_tensor(), padding).unwrap();
            let reference = conv2d_im2col(x.as_tensor(), w.as_tensor(), padding).unwrap();
            assert_eq!(ours.dims(), reference.dims());
            assert!(max_relative(&ours, &reference) < 1e-5, "kernel {kernel}: values");
            let probe = Tensor::randn(0f32, 1.0, reference.dims(), &Device::Cpu).unwrap();
            let grads_of = |y: &Tensor| {
                let grads = (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
                [x.as_tensor(), w.as_tensor()].map(|v| grads.get(v).unwrap().clone())
            };
            for (i, (a, b)) in grads_of(&ours).iter().zip(&grads_of(&reference)).enumerate() {
                assert_eq!(a.dims(), b.dims());
                assert!(max_relative(a, b) < 1e-5, "kernel {kernel} padding {padding}: gradient {i}");
            }
        }
    }

    /// The last wrapped read of the forward pass ends inside the `k` trailing zeros, for every tap.
    #[test]
    fn calls_stay_inside_their_buffers() {
        let g = ShiftedGeometry::new([3, 5, 7, 6], 4, 3, 1).unwrap();
        let taps_len = 9 * 4 * 5;
        for call in g.forward_calls() {
            call.check(g.padded_len(), taps_len, g.wide_len()).unwrap();
        }
        for call in g.input_grad_calls() {
            call.check(g.wide_len(), taps_len, g.padded_len()).unwrap();
        }
        for call in g.weight_grad_calls() {
            call.check(g.padded_len(), g.wide_len(), 9 * 3 * 4 * 5).unwrap();
        }
        // One element fewer and the last tap's wrapped read would leave the buffer.
        let last = *g.forward_calls().last().unwrap();
        assert!(last.check(g.padded_len() - g.kernel + 1, taps_len, g.wide_len()).is_err());
    }

    /// Inference picks the shifted form by the im2col size, and never on the CPU.
    #[test]
    fn inference_path_choice() {
        let x = Tensor::zeros((2, 3, 8, 8), DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::zeros((4, 3, 3, 3), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(im2col_elements(&x, &w, 1).unwrap(), 2 * 8 * 8 * 3 * 9);
        assert_eq!(im2col_elements(&x, &w, 0).unwrap(), 2 * 6 * 6 * 3 * 9);
        assert!(!applies_on_device(&x, &w, 1, 1));
        let y = device_conv2d(&x, &w, 1, 1).unwrap();
        assert_eq!(y.dims(), &[2, 4, 8, 8]);
    }

    #[test]
    fn bad_calls_are_refused_with_their_parameters() {
        let g = ShiftedGeometry::new([1, 2, 4, 4], 2, 3, 1).unwrap();
        let call = g.forward_calls()[0];
        let error = call.check(10, 1000, 1000).unwrap_err().to_string();
        assert!(error.contains("reads A"), "{error}");
        let low_ld = GemmCall { lda: 1, ..call };
        assert!(low_ld.check(1000, 1000, 1000).unwrap_err().to_string().contains("leading dimension"));
        assert!(ShiftedGeometry::new([1, 1, 2, 2], 1, 5, 1).is_err());
    }
}
