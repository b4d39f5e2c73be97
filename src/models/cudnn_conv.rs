//! Convolutions through cuDNN on CUDA (cargo feature `cudnn`): the forward pass, the input gradient and the weight
//! gradient are one library call each, with the algorithm that cuDNN's heuristics rank first for the shape (cached per
//! shape, as PyTorch does without `cudnn.benchmark`).
//!
//! Why: with our shifted-view cuBLAS products (`shifted_conv`) the 256 px generator ran at 2.2x / 4.3x PyTorch's TF32
//! time at batch 1 / 8 on an H200, and a GAN training step at 4.5x; PyTorch's convolutions are cuDNN's.
//!
//! Float32 stays float32 unless `--tf32`: the convolution's math type is `CUDNN_FMA_MATH` and an algorithm that the
//! heuristics rank with tensor-core math is skipped (PyTorch's `allow_tf32 = False`); with `--tf32` the math type is
//! `CUDNN_DEFAULT_MATH`, under which cuDNN may use TF32 for float32 data.
//!
//! The library is linked at build time (`scripts/build-cuda.sh`) and found at run time where PyTorch's NVIDIA wheels or
//! a CUDA install keep it. Where cuDNN does not start (the no-GPU stand-in library, a missing sub-library) [`applies`]
//! is false, one warning is logged, and the callers keep their cuBLAS lowering. `--no-cudnn` switches it off to
//! measure the difference. Without the feature every function here reports "not applicable".

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};

static CUDNN_CONVS: AtomicBool = AtomicBool::new(true);

/// Process-wide switch (on by default where the binary was built with cuDNN; off only to measure it).
pub fn set_cudnn_convs(enabled: bool) {
    CUDNN_CONVS.store(enabled, Ordering::Relaxed);
}

/// Whether [`cudnn_conv2d`] takes a convolution of `x` by `weight`: built with cuDNN, switched on, both float32 on a
/// CUDA device where cuDNN started.
pub fn applies(x: &Tensor, weight: &Tensor) -> bool {
    let cuda_f32 = |t: &Tensor| t.device().is_cuda() && t.dtype() == DType::F32;
    cfg!(feature = "cudnn")
        && CUDNN_CONVS.load(Ordering::Relaxed)
        && cuda_f32(x)
        && cuda_f32(weight)
        && started_on(x.device())
}

#[cfg(feature = "cudnn")]
fn started_on(device: &candle_core::Device) -> bool {
    match device {
        candle_core::Device::Cuda(device) => library::handle(device).is_ok(),
        _ => false,
    }
}

#[cfg(not(feature = "cudnn"))]
fn started_on(_: &candle_core::Device) -> bool {
    false
}

/// Convolution of `x` `[N, C, H, W]` by `weight` `[O, C, kh, kw]` with square `stride` and zero `padding`, no bias,
/// differentiable in both (first order, as candle's own backward). Only where [`applies`] holds.
pub fn cudnn_conv2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> candle_core::Result<Tensor> {
    let geometry = ConvGeometry::new(x.dims4()?, weight.dims4()?, stride, padding)?;
    x.contiguous()?.apply_op2(&weight.contiguous()?, CudnnConv { geometry, pass: Pass::Forward })
}

/// Sizes of one convolution, checked to fit cuDNN's 32-bit sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ConvGeometry {
    input: [usize; 4],
    weight: [usize; 4],
    stride: usize,
    padding: usize,
}

impl ConvGeometry {
    fn new(
        input: (usize, usize, usize, usize),
        weight: (usize, usize, usize, usize),
        stride: usize,
        padding: usize,
    ) -> candle_core::Result<Self> {
        let (input, weight) = ([input.0, input.1, input.2, input.3], [weight.0, weight.1, weight.2, weight.3]);
        if weight[1] != input[1] {
            candle_core::bail!(
                "cuDNN convolution: input {input:?} has {} channels, kernel {weight:?} wants {}",
                input[1],
                weight[1]
            );
        }
        if stride == 0 || input[2] + 2 * padding < weight[2] || input[3] + 2 * padding < weight[3] {
            candle_core::bail!(
                "cuDNN convolution: kernel {weight:?} at stride {stride} does not fit input {input:?} padded by {padding}"
            );
        }
        let geometry = Self { input, weight, stride, padding };
        let too_large = input.iter().chain(&weight).chain(&[stride, padding]).any(|&v| i32::try_from(v).is_err())
            || [input, geometry.output()].iter().any(|dims| i32::try_from(dims.iter().product::<usize>()).is_err());
        if too_large {
            candle_core::bail!("cuDNN convolution: input {input:?} or kernel {weight:?} exceeds cuDNN's 32-bit sizes");
        }
        Ok(geometry)
    }

    fn output(&self) -> [usize; 4] {
        let side = |size: usize, kernel: usize| (size + 2 * self.padding - kernel) / self.stride + 1;
        [self.input[0], self.weight[0], side(self.input[2], self.weight[2]), side(self.input[3], self.weight[3])]
    }
}

/// Which of the three library calls an op makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Pass {
    /// (input, weight) -> output.
    Forward,
    /// (weight, output gradient) -> input gradient.
    InputGrad,
    /// (input, output gradient) -> weight gradient.
    WeightGrad,
}

#[derive(Clone, Copy, Debug)]
struct CudnnConv {
    geometry: ConvGeometry,
    pass: Pass,
}

impl CudnnConv {
    /// The dims each operand must have, and the result's.
    #[cfg_attr(not(feature = "cudnn"), allow(dead_code))]
    fn dims(&self) -> ([usize; 4], [usize; 4], [usize; 4]) {
        let g = &self.geometry;
        match self.pass {
            Pass::Forward => (g.input, g.weight, g.output()),
            Pass::InputGrad => (g.weight, g.output(), g.input),
            Pass::WeightGrad => (g.input, g.output(), g.weight),
        }
    }

    fn label(&self) -> &'static str {
        match self.pass {
            Pass::Forward => "cudnn-conv2d",
            Pass::InputGrad => "cudnn-conv2d-input-grad",
            Pass::WeightGrad => "cudnn-conv2d-weight-grad",
        }
    }
}

impl CustomOp2 for CudnnConv {
    fn name(&self) -> &'static str {
        self.label()
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        candle_core::bail!("{}: cuDNN runs on CUDA devices only, the operands are on the CPU", self.label())
    }

    #[cfg(feature = "cudnn")]
    fn cuda_fwd(
        &self,
        first: &candle_core::CudaStorage,
        first_layout: &Layout,
        second: &candle_core::CudaStorage,
        second_layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (first_dims, second_dims, result_dims) = self.dims();
        for (layout, dims, what) in
            [(first_layout, first_dims, "first operand"), (second_layout, second_dims, "second operand")]
        {
            if layout.dims() != dims {
                candle_core::bail!("{}: {what} {:?}, expected {dims:?}", self.label(), layout.dims());
            }
        }
        let result = library::run(self, (first, first_layout), (second, second_layout))?;
        Ok((result, Shape::from(result_dims.to_vec())))
    }

    fn bwd(
        &self,
        input: &Tensor,
        weight: &Tensor,
        _output: &Tensor,
        grad_output: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        if self.pass != Pass::Forward {
            return Err(candle_core::Error::BackwardNotSupported { op: self.label() });
        }
        let grad_output = grad_output.contiguous()?;
        let input_grad = CudnnConv { geometry: self.geometry, pass: Pass::InputGrad };
        let weight_grad = CudnnConv { geometry: self.geometry, pass: Pass::WeightGrad };
        let grad_input = weight.contiguous()?.apply_op2_no_bwd(&grad_output, &input_grad)?;
        let grad_weight = input.contiguous()?.apply_op2_no_bwd(&grad_output, &weight_grad)?;
        Ok((Some(grad_input), Some(grad_weight)))
    }
}

#[cfg(feature = "cudnn")]
mod library {
    //! The calls into cuDNN: one handle per device and thread (cuDNN handles are not thread-safe), descriptors per
    //! call, the algorithm and its workspace size cached per shape.

    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::ffi::c_void;
    use std::rc::Rc;

    use candle_core::cuda_backend::cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut};
    use candle_core::cuda_backend::{CudaDevice, DeviceId};
    use candle_core::{CudaStorage, Layout};
    use cudarc::cudnn::{result, sys};

    use super::{CudnnConv, Pass};

    /// A cuDNN handle bound to candle's stream of one device.
    pub struct Handle(sys::cudnnHandle_t);

    impl Drop for Handle {
        fn drop(&mut self) {
            // SAFETY: created by `create_handle` below and destroyed only here.
            let _ = unsafe { result::destroy_handle(self.0) };
        }
    }

    /// cuDNN's algorithm for one of the three passes.
    #[derive(Clone, Copy)]
    enum Algorithm {
        Forward(sys::cudnnConvolutionFwdAlgo_t),
        InputGrad(sys::cudnnConvolutionBwdDataAlgo_t),
        WeightGrad(sys::cudnnConvolutionBwdFilterAlgo_t),
    }

    /// Algorithm, workspace and descriptors of one (device, pass, geometry, TF32) combination, made once: at batch 1
    /// the host's per-call work is what a convolution costs.
    struct Choice {
        algorithm: Algorithm,
        workspace_bytes: usize,
        descriptors: Descriptors,
    }

    /// Device, pass, sizes and whether TF32 is allowed.
    type ChoiceKey = (DeviceId, Pass, super::ConvGeometry, bool);

    thread_local! {
        static HANDLES: RefCell<HashMap<DeviceId, Result<Rc<Handle>, String>>> = RefCell::new(HashMap::new());
        static CHOICES: RefCell<HashMap<ChoiceKey, Rc<Choice>>> = RefCell::new(HashMap::new());
    }

    /// This thread's handle for `device`, created on first use; an error (logged once) where cuDNN does not start.
    pub fn handle(device: &CudaDevice) -> Result<Rc<Handle>, String> {
        HANDLES.with(|handles| {
            handles
                .borrow_mut()
                .entry(device.id())
                .or_insert_with(|| {
                    let created = create_handle(device);
                    if let Err(reason) = &created {
                        log::warn!("cuDNN convolutions unavailable, using cuBLAS products instead: {reason}");
                    }
                    created
                })
                .clone()
        })
    }

    fn create_handle(device: &CudaDevice) -> Result<Rc<Handle>, String> {
        let stream = device.cuda_stream();
        stream.context().bind_to_thread().map_err(|e| format!("cannot bind the CUDA context: {e:?}"))?;
        // Status codes only: the stand-in library of a machine without cuDNN has no error strings.
        let handle = result::create_handle().map_err(|e| format!("cudnnCreate failed with {:?}", e.0))?;
        let handle = Handle(handle);
        // SAFETY: a live handle and candle's live stream of this device.
        unsafe { result::set_stream(handle.0, stream.cu_stream() as sys::cudaStream_t) }
            .map_err(|e| format!("cudnnSetStream failed with {:?}", e.0))?;
        Ok(Rc::new(handle))
    }

    /// The descriptors of one call, destroyed when dropped.
    struct Descriptors {
        input: sys::cudnnTensorDescriptor_t,
        output: sys::cudnnTensorDescriptor_t,
        filter: sys::cudnnFilterDescriptor_t,
        conv: sys::cudnnConvolutionDescriptor_t,
    }

    impl Drop for Descriptors {
        fn drop(&mut self) {
            // SAFETY: each was created below and is destroyed only here; null ones were never created.
            unsafe {
                if !self.input.is_null() {
                    let _ = result::destroy_tensor_descriptor(self.input);
                }
                if !self.output.is_null() {
                    let _ = result::destroy_tensor_descriptor(self.output);
                }
                if !self.filter.is_null() {
                    let _ = result::destroy_filter_descriptor(self.filter);
                }
                if !self.conv.is_null() {
                    let _ = result::destroy_convolution_descriptor(self.conv);
                }
            }
        }
    }

    fn failed(op: &CudnnConv, call: &str, error: result::CudnnError) -> candle_core::Error {
        candle_core::Error::Msg(format!("{}: {call} failed with {:?}", op.label(), error.0))
    }

    fn dims_i32(dims: [usize; 4]) -> [i32; 4] {
        // Checked against i32::MAX by ConvGeometry::new.
        dims.map(|v| v as i32)
    }

    impl Descriptors {
        fn new(op: &CudnnConv, math: sys::cudnnMathType_t) -> candle_core::Result<Self> {
            let g = &op.geometry;
            let mut descriptors = Descriptors {
                input: std::ptr::null_mut(),
                output: std::ptr::null_mut(),
                filter: std::ptr::null_mut(),
                conv: std::ptr::null_mut(),
            };
            let nchw = sys::cudnnTensorFormat_t::CUDNN_TENSOR_NCHW;
            let float = sys::cudnnDataType_t::CUDNN_DATA_FLOAT;
            let fail = |call: &'static str| move |e| failed(op, call, e);
            descriptors.input = result::create_tensor_descriptor().map_err(fail("cudnnCreateTensorDescriptor"))?;
            descriptors.output = result::create_tensor_descriptor().map_err(fail("cudnnCreateTensorDescriptor"))?;
            descriptors.filter = result::create_filter_descriptor().map_err(fail("cudnnCreateFilterDescriptor"))?;
            descriptors.conv =
                result::create_convolution_descriptor().map_err(fail("cudnnCreateConvolutionDescriptor"))?;
            let (stride, padding) = (g.stride as i32, g.padding as i32);
            // SAFETY: freshly created descriptors, sizes checked to fit i32.
            unsafe {
                result::set_tensor4d_descriptor(descriptors.input, nchw, float, dims_i32(g.input))
                    .map_err(fail("cudnnSetTensor4dDescriptor (input)"))?;
                result::set_tensor4d_descriptor(descriptors.output, nchw, float, dims_i32(g.output()))
                    .map_err(fail("cudnnSetTensor4dDescriptor (output)"))?;
                result::set_filter4d_descriptor(descriptors.filter, float, nchw, dims_i32(g.weight))
                    .map_err(fail("cudnnSetFilter4dDescriptor"))?;
                result::set_convolution2d_descriptor(
                    descriptors.conv,
                    padding,
                    padding,
                    stride,
                    stride,
                    1,
                    1,
                    sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
                    float,
                )
                .map_err(fail("cudnnSetConvolution2dDescriptor"))?;
                result::set_convolution_math_type(descriptors.conv, math)
                    .map_err(fail("cudnnSetConvolutionMathType"))?;
            }
            Ok(descriptors)
        }
    }

    /// Whether an algorithm ranked with `math` may run: tensor-core math only under TF32.
    fn math_allowed(math: sys::cudnnMathType_t, tf32: bool) -> bool {
        use sys::cudnnMathType_t::*;
        tf32 || !matches!(math, CUDNN_TENSOR_OP_MATH | CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
    }

    /// Most algorithms asked of cuDNN's ranking (each pass has fewer than 16).
    const MOST: usize = 16;

    /// Runs a ranking `query` (given a `MOST`-entry result array and the count to fill) and returns the first ranked
    /// algorithm that `fields` reports as succeeded with allowed math, with that math type.
    fn ranked<P: Copy, A>(
        fields: impl Fn(&P) -> (A, sys::cudnnStatus_t, sys::cudnnMathType_t),
        query: impl FnOnce(*mut P, &mut i32) -> Result<(), result::CudnnError>,
        tf32: bool,
    ) -> Result<Option<(A, sys::cudnnMathType_t)>, result::CudnnError> {
        // SAFETY: the perf structs are plain C data (enums, a float, a size) whose zero value is valid.
        let mut results = [unsafe { std::mem::zeroed::<P>() }; MOST];
        let mut count = 0i32;
        query(results.as_mut_ptr(), &mut count)?;
        let returned = &results[..(count.max(0) as usize).min(MOST)];
        Ok(first_allowed(returned.iter().map(fields), tf32))
    }

    /// The first ranked algorithm that succeeded and whose math is allowed, with its math type.
    fn first_allowed<A>(
        ranked: impl IntoIterator<Item = (A, sys::cudnnStatus_t, sys::cudnnMathType_t)>,
        tf32: bool,
    ) -> Option<(A, sys::cudnnMathType_t)> {
        ranked
            .into_iter()
            .find(|(_, status, math)| *status == sys::cudnnStatus_t::CUDNN_STATUS_SUCCESS && math_allowed(*math, tf32))
            .map(|(algorithm, _, math)| (algorithm, math))
    }

    /// Ranks the algorithms for `op`'s pass with cuDNN's heuristics and picks the first allowed one.
    fn choose(op: &CudnnConv, handle: &Handle, tf32: bool) -> candle_core::Result<Rc<Choice>> {
        let requested_math =
            if tf32 { sys::cudnnMathType_t::CUDNN_DEFAULT_MATH } else { sys::cudnnMathType_t::CUDNN_FMA_MATH };
        let d = Descriptors::new(op, requested_math)?;
        let fail = |call: &'static str| move |e| failed(op, call, e);
        let none = || {
            candle_core::Error::Msg(format!("{}: cuDNN offers no float32 algorithm for {:?}", op.label(), op.geometry))
        };
        // SAFETY (each query): live handle and descriptors; `ranked` passes a `MOST`-entry array and that count.
        let (algorithm, math) = match op.pass {
            Pass::Forward => {
                let (algo, math) = ranked(
                    |perf: &sys::cudnnConvolutionFwdAlgoPerf_t| (perf.algo, perf.status, perf.mathType),
                    |results, count| unsafe {
                        result::get_convolution_forward_algorithm(
                            handle.0,
                            d.input,
                            d.filter,
                            d.conv,
                            d.output,
                            MOST as i32,
                            count,
                            results,
                        )
                    },
                    tf32,
                )
                .map_err(fail("cudnnGetConvolutionForwardAlgorithm_v7"))?
                .ok_or_else(none)?;
                (Algorithm::Forward(algo), math)
            }
            Pass::InputGrad => {
                let (algo, math) = ranked(
                    |perf: &sys::cudnnConvolutionBwdDataAlgoPerf_t| (perf.algo, perf.status, perf.mathType),
                    |results, count| unsafe {
                        result::get_convolution_backward_data_algorithm(
                            handle.0,
                            d.filter,
                            d.output,
                            d.conv,
                            d.input,
                            MOST as i32,
                            count,
                            results,
                        )
                    },
                    tf32,
                )
                .map_err(fail("cudnnGetConvolutionBackwardDataAlgorithm_v7"))?
                .ok_or_else(none)?;
                (Algorithm::InputGrad(algo), math)
            }
            Pass::WeightGrad => {
                let (algo, math) = ranked(
                    |perf: &sys::cudnnConvolutionBwdFilterAlgoPerf_t| (perf.algo, perf.status, perf.mathType),
                    |results, count| unsafe {
                        result::get_convolution_backward_filter_algorithm(
                            handle.0,
                            d.input,
                            d.output,
                            d.conv,
                            d.filter,
                            MOST as i32,
                            count,
                            results,
                        )
                    },
                    tf32,
                )
                .map_err(fail("cudnnGetConvolutionBackwardFilterAlgorithm_v7"))?
                .ok_or_else(none)?;
                (Algorithm::WeightGrad(algo), math)
            }
        };
        let d = Descriptors::new(op, math)?;
        // SAFETY: live handle and descriptors; the algorithm value came from cuDNN's own ranking for this pass.
        let workspace_bytes = unsafe {
            match algorithm {
                Algorithm::Forward(algo) => {
                    result::get_convolution_forward_workspace_size(handle.0, d.input, d.filter, d.conv, d.output, algo)
                }
                Algorithm::InputGrad(algo) => result::get_convolution_backward_data_workspace_size(
                    handle.0, d.filter, d.output, d.conv, d.input, algo,
                ),
                Algorithm::WeightGrad(algo) => result::get_convolution_backward_filter_workspace_size(
                    handle.0, d.input, d.output, d.conv, d.filter, algo,
                ),
            }
        }
        .map_err(fail("cudnnGetConvolution*WorkspaceSize"))?;
        Ok(Rc::new(Choice { algorithm, workspace_bytes, descriptors: d }))
    }

    /// Runs `op` on its two operands (see [`Pass`] for their order) and returns the result's storage.
    pub fn run(
        op: &CudnnConv,
        (first, first_layout): (&CudaStorage, &Layout),
        (second, second_layout): (&CudaStorage, &Layout),
    ) -> candle_core::Result<CudaStorage> {
        let device = first.device.clone();
        let handle = handle(&device).map_err(|reason| candle_core::Error::Msg(format!("{}: {reason}", op.label())))?;
        let tf32 = candle_core::cuda_backend::gemm_reduced_precision_f32();
        let key = (device.id(), op.pass, op.geometry, tf32);
        let cached = CHOICES.with(|choices| choices.borrow().get(&key).cloned());
        // The first use of a shape is timed to the end of its call: on an H200 the first CycleGAN training step
        // took 18.6 s with cuDNN against 0.5 s without (the shape's set-up inside cuDNN, once per process).
        let first_use = cached.is_none().then(std::time::Instant::now);
        let choice = match cached {
            Some(choice) => choice,
            None => {
                let choice = choose(op, &handle, tf32)?;
                CHOICES.with(|choices| choices.borrow_mut().insert(key, choice.clone()));
                choice
            }
        };
        let d = &choice.descriptors;
        let first_view = view(first, first_layout, op, "first operand")?;
        let second_view = view(second, second_layout, op, "second operand")?;
        let (_, _, result_dims) = op.dims();
        let result_len: usize = result_dims.iter().product();
        // SAFETY: cuDNN writes every value of the result (beta = 0) before anything reads it.
        let mut output: CudaSlice<f32> = unsafe { device.alloc::<f32>(result_len.max(1))? };
        let mut workspace: Option<CudaSlice<u8>> = if choice.workspace_bytes > 0 {
            Some(unsafe { device.alloc::<u8>(choice.workspace_bytes)? })
        } else {
            None
        };
        let stream = device.cuda_stream();
        let (one, zero) = (1f32, 0f32);
        let (alpha, beta) = ((&one as *const f32).cast::<c_void>(), (&zero as *const f32).cast::<c_void>());
        {
            let (a, _a_guard) = first_view.device_ptr(&stream);
            let (b, _b_guard) = second_view.device_ptr(&stream);
            let (y, _y_guard) = output.device_ptr_mut(&stream);
            let (space, _space_guard) = match workspace.as_mut() {
                Some(w) => {
                    let (ptr, guard) = w.device_ptr_mut(&stream);
                    (ptr as *mut c_void, Some(guard))
                }
                None => (std::ptr::null_mut(), None),
            };
            let (a, b, y) = (a as *const c_void, b as *const c_void, y as *mut c_void);
            // SAFETY: the operands' dims were checked against the descriptors (cuda_fwd) and they are contiguous
            // (`view`); the result and workspace were allocated at the sizes cuDNN asked for; everything runs on
            // candle's stream, in order with the writers and readers of these buffers.
            unsafe {
                match choice.algorithm {
                    Algorithm::Forward(algo) => result::convolution_forward(
                        handle.0,
                        alpha,
                        d.input,
                        a,
                        d.filter,
                        b,
                        d.conv,
                        algo,
                        space,
                        choice.workspace_bytes,
                        beta,
                        d.output,
                        y,
                    ),
                    Algorithm::InputGrad(algo) => result::convolution_backward_data(
                        handle.0,
                        alpha,
                        d.filter,
                        a,
                        d.output,
                        b,
                        d.conv,
                        algo,
                        space,
                        choice.workspace_bytes,
                        beta,
                        d.input,
                        y,
                    ),
                    Algorithm::WeightGrad(algo) => result::convolution_backward_filter(
                        handle.0,
                        alpha,
                        d.input,
                        a,
                        d.output,
                        b,
                        d.conv,
                        algo,
                        space,
                        choice.workspace_bytes,
                        beta,
                        d.filter,
                        y,
                    ),
                }
            }
            .map_err(|e| failed(op, "the convolution call", e))?;
        }
        if let Some(started) = first_use {
            stream.synchronize().map_err(|e| candle_core::Error::Msg(format!("{}: {e:?}", op.label())))?;
            let seconds = started.elapsed().as_secs_f64();
            let message = format!(
                "cuDNN: first {} of {:?} took {seconds:.3} s (choice and set-up, once per shape and process)",
                op.label(),
                op.geometry
            );
            if seconds > 1.0 {
                log::warn!("{message}");
            } else {
                log::info!("{message}");
            }
        }
        drop(workspace);
        Ok(CudaStorage::wrap_cuda_slice(output, device))
    }

    /// The contiguous float32 values of an operand.
    fn view<'a>(
        storage: &'a CudaStorage,
        layout: &Layout,
        op: &CudnnConv,
        what: &str,
    ) -> candle_core::Result<candle_core::cuda_backend::cudarc::driver::CudaView<'a, f32>> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{}: the {what} is not contiguous", op.label())
        };
        Ok(storage.as_cuda_slice::<f32>()?.slice(start..end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_gives_the_output_size_of_strided_padded_convolutions() {
        let same = ConvGeometry::new((2, 3, 8, 6), (5, 3, 3, 3), 1, 1).unwrap();
        assert_eq!(same.output(), [2, 5, 8, 6]);
        let stem = ConvGeometry::new((1, 1, 224, 224), (64, 1, 7, 7), 2, 3).unwrap();
        assert_eq!(stem.output(), [1, 64, 112, 112]);
        let valid = ConvGeometry::new((1, 4, 5, 5), (2, 4, 5, 5), 1, 0).unwrap();
        assert_eq!(valid.output(), [1, 2, 1, 1]);
    }

    #[test]
    fn geometry_rejects_mismatched_channels_and_oversized_kernels() {
        let channels = ConvGeometry::new((1, 3, 8, 8), (4, 2, 3, 3), 1, 1).unwrap_err().to_string();
        assert!(channels.contains("3 channels"), "{channels}");
        let kernel = ConvGeometry::new((1, 3, 2, 2), (4, 3, 5, 5), 1, 1).unwrap_err().to_string();
        assert!(kernel.contains("does not fit"), "{kernel}");
        let stride = ConvGeometry::new((1, 3, 8, 8), (4, 3, 3, 3), 0, 1).unwrap_err().to_string();
        assert!(stride.contains("stride 0"), "{stride}");
    }

    #[test]
    fn cpu_tensors_never_take_cudnn_and_get_a_clear_error_if_forced() {
        let x = Tensor::zeros((1, 2, 4, 4), DType::F32, &candle_core::Device::Cpu).unwrap();
        let w = Tensor::zeros((3, 2, 3, 3), DType::F32, &candle_core::Device::Cpu).unwrap();
        assert!(!applies(&x, &w));
        let error = cudnn_conv2d(&x, &w, 1, 1).unwrap_err().to_string();
        assert!(error.contains("CUDA devices only"), "{error}");
    }
}
