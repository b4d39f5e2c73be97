//! Whether the fused training ops also run on CUDA, and (with the `cuda` feature) how their kernels are launched.
//!
//! The kernels are `src/train/fused_training.cu`, compiled to PTX by build.rs. They compute the formulas of the CPU
//! implementations of `fused_activation`, `phase_interleave` and `fused_batch_norm`, agreeing with them to rounding
//! rather than bit for bit (the reductions sum in another order, and nvcc fuses multiply-adds). They are on by default
//! since an H200 run checked them (2026-11-27, `scripts/gpu-train-profile.sh`): every op's value and gradients within
//! 6e-7 of the CPU's (`tests/integration/fused_cuda_parity.rs`), three GAN training steps within 1e-4 of the CPU's
//! losses, and a GAN step 1.4x and a DenseNet-121 step 2.1x faster than with composed ops. `--no-fused-cuda-ops`
//! composes candle ops instead, as before.
//!
//! The instance norm and reflection padding kernels (the CycleGAN's, whose GPU step is bound by launches) and the f64
//! channel sums came after that run; an H200 run checked them on 2026-11-28 (values and gradients within 3e-7 of the
//! CPU's, the bias gradient of a `[2, 3, 2900, 1450]` map now exact), and they are on by default since. CUDA
//! inference of the generator uses the kernels too (`fast_conv::apply_epilogue_on_device`).

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Tensor};

static FUSED_CUDA_OPS: AtomicBool = AtomicBool::new(true);

/// Process-wide switch for the fused ops' CUDA kernels (on by default; off only to measure them).
pub fn set_fused_cuda_ops(enabled: bool) {
    FUSED_CUDA_OPS.store(enabled, Ordering::Relaxed);
}

pub fn fused_cuda_ops() -> bool {
    FUSED_CUDA_OPS.load(Ordering::Relaxed)
}

/// Whether `tensor` is float32 on a CUDA device and the fused kernels are switched on (always false without the
/// `cuda` feature).
pub fn takes_fused_cuda(tensor: &Tensor) -> bool {
    cfg!(feature = "cuda") && fused_cuda_ops() && tensor.device().is_cuda() && tensor.dtype() == DType::F32
}

#[cfg(feature = "cuda")]
pub(crate) mod launch {
    use candle_core::backend::BackendStorage as _;
    use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, LaunchConfig, PushKernelArg};
    use candle_core::cuda_backend::{CudaDevice, WrapErr};
    use candle_core::{CudaStorage, DType, Layout, Result};

    /// The kernels, loaded once per device.
    const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/fused_training.ptx"));
    const MODULE: &str = "thorax_fused_training";
    /// Threads per block; the reductions' shared arrays and halving trees in the .cu file are sized for exactly this.
    const THREADS: u32 = 256;
    const _: () = assert!(THREADS == 256, "fused_training.cu's reduction trees are written for 256 threads");

    /// A scalar kernel argument.
    #[derive(Clone, Copy, Debug)]
    pub enum Scalar {
        U32(u32),
        U64(u64),
        F32(f32),
    }

    /// The contiguous float32 values of an operand.
    pub fn view<'a>(storage: &'a CudaStorage, layout: &Layout, what: &str) -> Result<CudaView<'a, f32>> {
        if storage.dtype() != DType::F32 {
            candle_core::bail!("{what}: the fused CUDA kernels take float32, not {:?}", storage.dtype());
        }
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{what}: expected a contiguous tensor");
        };
        Ok(storage.as_cuda_slice::<f32>()?.slice(start..end))
    }

    impl Scalar {
        /// A 32-bit size argument, or an error naming it when it does not fit.
        pub fn size(value: usize, what: &str) -> Result<Self> {
            Ok(Self::U32(size_u32(value, what)?))
        }
    }

    /// A size argument of a kernel (which indexes with 32-bit sizes), or an error naming it when it does not fit.
    pub fn size_u32(value: usize, what: &str) -> Result<u32> {
        u32::try_from(value)
            .map_err(|_| candle_core::Error::Msg(format!("{what}: {value} exceeds the kernels' 32-bit sizes")))
    }

    /// A grid-stride launch over `count` items.
    pub fn config(count: u64) -> LaunchConfig {
        let blocks = count.div_ceil(u64::from(THREADS)).clamp(1, 65_535) as u32;
        LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
    }

    /// One block of 256 threads per channel (the reductions' fixed trees need exactly 256); at least one block, which
    /// the kernels leave idle when there are no channels.
    pub fn per_channel(channels: u32) -> LaunchConfig {
        LaunchConfig { grid_dim: (channels.max(1), 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
    }

    /// Runs `kernel` of `fused_training.cu` on `device`: every kernel there takes its input buffers, then its output
    /// buffer (`len` values, all of which it writes), then its scalars, in that order.
    pub fn run(
        device: &CudaDevice,
        kernel: &str,
        inputs: &[&CudaView<'_, f32>],
        len: usize,
        scalars: &[Scalar],
        config: LaunchConfig,
    ) -> Result<CudaStorage> {
        let function = device.get_or_load_custom_func(kernel, MODULE, PTX)?;
        // SAFETY: the kernel writes all `len` values before anything reads them (see above).
        let output: CudaSlice<f32> = unsafe { device.alloc::<f32>(len)? };
        let mut builder = function.builder();
        for input in inputs {
            builder.arg(*input);
        }
        builder.arg(&output);
        for scalar in scalars {
            match scalar {
                Scalar::U32(value) => builder.arg(value),
                Scalar::U64(value) => builder.arg(value),
                Scalar::F32(value) => builder.arg(value),
            };
        }
        // SAFETY: the arguments follow the kernels' common order; each caller passes the buffers and scalars of its
        // kernel's signature in fused_training.cu, with the sizes its shape checks established.
        unsafe { builder.launch(config) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(output, device.clone()))
    }
}
