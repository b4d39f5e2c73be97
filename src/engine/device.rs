//! Choosing the compute device: CUDA when built for it and a GPU answers, otherwise the CPU.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

/// What the user asked for with `--device`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| DeviceError::Unknown(text.to_owned())),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}`: use auto, cpu, cuda or cuda:N")]
    Unknown(String),
    #[error(
        "CUDA device {ordinal}: this binary was built without the `cuda` feature (README.md, section Building with CUDA)"
    )]
    CudaNotBuilt { ordinal: usize },
    #[error("CUDA device {ordinal} could not be opened: {reason}")]
    CudaFailed { ordinal: usize, reason: String },
}

/// An opened device and how to name it in the UI.
#[derive(Clone, Debug)]
pub struct ComputeDevice {
    pub device: Device,
    /// "CPU (2 threads)" or "CUDA:0".
    pub label: String,
    /// Why auto fell back to the CPU, if it did.
    pub fallback_reason: Option<String>,
}

/// Opens the device the user chose. `Auto` never fails: it falls back to the CPU and says why.
pub fn open_device(choice: DeviceChoice) -> Result<ComputeDevice, DeviceError> {
    match choice {
        DeviceChoice::Cpu => Ok(cpu_device(None)),
        DeviceChoice::Cuda(ordinal) => open_cuda(ordinal),
        DeviceChoice::Auto => Ok(open_cuda(0).unwrap_or_else(|e| cpu_device(Some(e.to_string())))),
    }
}

fn cpu_device(fallback_reason: Option<String>) -> ComputeDevice {
    ComputeDevice {
        device: Device::Cpu,
        label: format!("CPU ({} threads)", candle_core::utils::get_num_threads()),
        fallback_reason,
    }
}

fn open_cuda(ordinal: usize) -> Result<ComputeDevice, DeviceError> {
    if !candle_core::utils::cuda_is_available() {
        return Err(DeviceError::CudaNotBuilt { ordinal });
    }
    let device =
        Device::new_cuda(ordinal).map_err(|e| DeviceError::CudaFailed { ordinal, reason: short_reason(&e) })?;
    if keep_freed_gpu_memory() {
        #[cfg(feature = "cuda")]
        if let Device::Cuda(cuda) = &device {
            keep_freed_memory_in_pool(cuda);
        }
    }
    Ok(ComputeDevice { device, label: format!("CUDA:{ordinal}"), fallback_reason: None })
}

static RELEASE_FREED_GPU_MEMORY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// With `release`, CUDA's memory pool returns freed memory to the driver at every synchronisation (its default);
/// otherwise (ours) it keeps it for reuse. A measurement switch (`--cuda-release-memory`).
pub fn set_release_freed_gpu_memory(release: bool) {
    RELEASE_FREED_GPU_MEMORY.store(release, std::sync::atomic::Ordering::Relaxed);
}

fn keep_freed_gpu_memory() -> bool {
    !RELEASE_FREED_GPU_MEMORY.load(std::sync::atomic::Ordering::Relaxed)
}

/// candle allocates from the device's default stream-ordered pool (`cuMemAllocAsync`), whose release threshold is 0:
/// every synchronisation (each loss read, each step) hands the freed memory back to the driver, and the next step
/// maps gigabytes afresh. A threshold of "never" makes the pool a caching allocator, as PyTorch's is. Failure only
/// costs speed, so it is logged, not returned.
#[cfg(feature = "cuda")]
fn keep_freed_memory_in_pool(cuda: &candle_core::CudaDevice) {
    use candle_core::cuda_backend::cudarc::driver::sys;
    let cu_device = cuda.cuda_stream().context().cu_device();
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    let mut threshold = u64::MAX;
    // SAFETY: plain driver calls on the device candle has just opened; `threshold` outlives the call.
    let status = unsafe {
        let got = sys::cuDeviceGetDefaultMemPool(&mut pool, cu_device);
        if got == sys::CUresult::CUDA_SUCCESS {
            sys::cuMemPoolSetAttribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                (&mut threshold as *mut u64).cast(),
            )
        } else {
            got
        }
    };
    if status != sys::CUresult::CUDA_SUCCESS {
        log::warn!("could not make the CUDA memory pool keep freed memory: {status:?}");
    }
}

/// The first line of a candle error: with `RUST_BACKTRACE` set candle appends a backtrace, which is noise in the
/// status bar and in `thorax info`.
fn short_reason(error: &candle_core::Error) -> String {
    let text = error.to_string();
    let first_line = text.lines().next().unwrap_or_default().trim();
    if first_line.contains("CUDA_ERROR_NO_DEVICE") {
        "no CUDA GPU found (CUDA_ERROR_NO_DEVICE)".to_owned()
    } else {
        first_line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("auto".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        assert_eq!("CPU".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!("cuda:1".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(1));
        assert!("tpu".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn device_errors_keep_their_first_line_only() {
        let no_device = candle_core::Error::Msg("DriverError(CUDA_ERROR_NO_DEVICE, \"x\")\n   0: backtrace".into());
        assert_eq!(short_reason(&no_device), "no CUDA GPU found (CUDA_ERROR_NO_DEVICE)");
        let other = candle_core::Error::Msg("out of memory\n   0: frame".into());
        assert_eq!(short_reason(&other), "out of memory");
    }

    #[test]
    fn auto_always_yields_a_device() {
        let device = open_device(DeviceChoice::Auto).unwrap();
        assert!(!device.label.is_empty());
    }
}
