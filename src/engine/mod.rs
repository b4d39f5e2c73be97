//! The inference worker: owns the device and loaded models; stamped requests in, results out.

pub mod background_job;
pub mod compute_pool;
pub mod device;
pub mod error;
pub mod job_runner;
pub mod model_cache;
pub mod request;
pub mod worker;

pub use error::EngineError;
pub use request::{ImageSource, JobKey, ModelSource, Output, Request, Response, Slot, Stamp};
pub use worker::{WakeUi, WorkerActivity, WorkerHandle, WorkerStatus};
