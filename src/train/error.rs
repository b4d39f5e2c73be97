//! The one error type of training: every variant names the argument, file or tensor at fault.

use std::path::PathBuf;

use crate::models::error::ModelError;
use crate::train::dataset::DatasetError;
use crate::train::domain_images::DomainImagesError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid training setting `{argument}`: {reason}")]
    BadConfig { argument: String, reason: String },
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    DomainImages(#[from] DomainImagesError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error("training diverged at step {step}: {what} is not finite")]
    NonFinite { step: u64, what: String },
    #[error("federated training: {reason}")]
    Federated { reason: String },
    #[error("tensor `{name}` is missing from the {network} parameters")]
    MissingParameter { network: String, name: String },
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}
