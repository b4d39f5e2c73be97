//! Errors a job can end with. Each names what failed; the UI shows them once, in the status bar.

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Decode(#[from] crate::imaging::DecodeError),
    #[error("preprocessing failed: {0}")]
    Tensor(#[from] crate::imaging::tensor::TensorError),
    #[error("{0}")]
    Model(#[from] crate::models::error::ModelError),
    #[error("heatmap: {0}")]
    Heatmap(#[from] crate::models::heatmap::HeatmapError),
    #[error("the worker has stopped")]
    WorkerGone,
}
