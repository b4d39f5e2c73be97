//! The error type shared by the metrics.

/// Why a metric could not be computed. Messages name the argument and the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    /// An input set or vector has no elements (or too few for the statistic).
    #[error("{what} needs at least {needed} element(s) but has {actual}")]
    TooFew { what: &'static str, needed: usize, actual: usize },
    /// Two inputs that must pair up element by element have different lengths.
    #[error("{what}: lengths differ ({left} vs {right})")]
    LengthMismatch { what: &'static str, left: usize, right: usize },
    /// Two inputs that must share a shape (image size, feature dimension) do not.
    #[error("{what}: shapes differ ({left} vs {right})")]
    ShapeMismatch { what: &'static str, left: String, right: String },
    /// An input holds NaN or an infinity.
    #[error("{what} holds a non-finite value (NaN or infinity) at index {index}")]
    NonFinite { what: &'static str, index: usize },
    /// Binary truth holds a single class, so ROC statistics are undefined.
    #[error("{what} holds only class {class}; ROC AUC needs both positives and negatives")]
    OneClass { what: &'static str, class: u8 },
    /// An argument is outside its valid range.
    #[error("{what}: {reason}")]
    InvalidArgument { what: &'static str, reason: String },
    /// The statistic is mathematically undefined for this input (for example a negative base raised to a
    /// fractional power in the Thorax_GAN MS-SSIM product).
    #[error("{what} is undefined: {reason}")]
    Undefined { what: &'static str, reason: String },
    /// A numerical routine did not converge.
    #[error("{what} did not converge: {reason}")]
    NoConvergence { what: &'static str, reason: String },
    /// The caller's progress callback asked the computation to stop.
    #[error("{what} was cancelled")]
    Cancelled { what: &'static str },
}

/// Checks that every value is finite; names the first offender.
pub(crate) fn check_finite_f32(what: &'static str, values: &[f32]) -> Result<(), MetricError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MetricError::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Checks that every value is finite; names the first offender.
pub(crate) fn check_finite_f64(what: &'static str, values: &[f64]) -> Result<(), MetricError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MetricError::NonFinite { what, index }),
        None => Ok(()),
    }
}
