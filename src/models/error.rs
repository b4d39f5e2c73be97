//! The one error type of the networks: every variant names the file, tensor or argument at fault.

use std::path::PathBuf;

use crate::models::card::{CardError, ModelKind};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("model file {path} is not a valid safetensors file: {reason}")]
    Safetensors { path: PathBuf, reason: String },
    #[error("model card of {path}: {source}")]
    Card { path: PathBuf, source: CardError },
    #[error("model file {path} holds a {}, but this needs a {}", found.description(), expected.description())]
    WrongKind { path: PathBuf, expected: ModelKind, found: ModelKind },
    #[error("tensor `{name}` is missing from the weights")]
    MissingTensor { name: String },
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    WrongShape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor `{name}` contains NaN or infinite values")]
    NonFinite { name: String },
    #[error("invalid input `{argument}`: {reason}")]
    BadInput { argument: String, reason: String },
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}
