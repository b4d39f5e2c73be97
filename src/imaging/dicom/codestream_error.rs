//! The error of the decoders of our own for encapsulated pixel data (JPEG-LS, 12-bit JPEG).

/// Why a compressed frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CodestreamError {
    /// The stream breaks its standard (bad marker, impossible parameter, coded values out of range).
    #[error("invalid {format} stream: {reason}")]
    Malformed { format: &'static str, reason: String },
    /// The stream ends before every sample is decoded.
    #[error("the {format} stream ends after {decoded_rows} of {rows} rows: it is truncated")]
    Truncated { format: &'static str, decoded_rows: u32, rows: u32 },
    /// A valid stream using a part of its standard this reader does not decode.
    #[error("{format} {what} is not supported")]
    Unsupported { format: &'static str, what: String },
}
