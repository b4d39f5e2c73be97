//! Image-quality and classifier metrics of the study, matched to their reference implementations.
//!
//! Every function validates its input and returns [`MetricError`] instead of panicking. The reference each one
//! matches, and the golden fixtures it is tested against, are named in the file's module documentation
//! (fixtures: `tests/fixtures/metrics/`, made by `tools/make_metrics_fixtures.py`).

pub mod bootstrap;
pub mod correlation;
pub mod decimals;
pub mod delong;
pub mod error;
pub mod fd_bootstrap;
pub mod features;
pub mod fid;
pub mod kid;
pub mod linalg;
pub mod memorisation;
pub mod msssim;
pub mod msssim_histogram;
pub mod rng;
pub mod roc;

pub use error::MetricError;
