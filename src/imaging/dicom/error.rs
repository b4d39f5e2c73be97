//! The one error type of the DICOM module: every message names the file (or argument) and the reason.

use std::path::Path;

/// What went wrong while reading, decoding, de-identifying or writing a DICOM or PNG file.
#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    /// The file could not be opened, read or created.
    #[error("{path}: {action} failed: {source}")]
    Io {
        path: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Neither a DICOM part 10 file nor a raw data set we could recognise.
    #[error("{path}: not a DICOM file: {reason}")]
    NotDicom { path: String, reason: String },
    /// The data set could not be parsed (truncated, wrong VR, bad length, ...).
    #[error("{path}: malformed DICOM data set: {reason}")]
    Malformed { path: String, reason: String },
    /// A required attribute is absent.
    #[error("{path}: missing required attribute {attribute}")]
    MissingAttribute { path: String, attribute: &'static str },
    /// An attribute is present but its value cannot be used.
    #[error("{path}: invalid {attribute}: {reason}")]
    InvalidAttribute { path: String, attribute: &'static str, reason: String },
    /// The file has no Pixel Data (7FE0,0010); `detail` says what that likely means.
    #[error("{path}: no Pixel Data (7FE0,0010) element; {detail}")]
    MissingPixelData { path: String, detail: String },
    /// Native pixel data shorter than Rows x Columns x Samples x BitsAllocated needs.
    #[error(
        "{path}: Pixel Data is truncated: the first frame needs {expected_bytes} bytes but only {actual_bytes} are present"
    )]
    PixelDataTooShort { path: String, expected_bytes: u64, actual_bytes: u64 },
    /// The pixel data could not be decoded with the file's transfer syntax.
    #[error("{path}: cannot decode pixel data ({transfer_syntax}): {reason}")]
    PixelDecode { path: String, transfer_syntax: String, reason: String },
    /// A valid file using a feature this reader does not support.
    #[error("{path}: unsupported: {what}")]
    Unsupported { path: String, what: String },
    /// Burned In Annotation (0028,0301) is YES and the caller did not allow such files: the pixels show text the
    /// Basic Profile does not remove.
    #[error(
        "{path}: refused: Burned In Annotation (0028,0301) is YES, so the pixels show text (often the patient's \
         name or ID) that de-identifying the attributes does not remove; check or mask the pixels, then allow such \
         files explicitly (thorax dicom deidentify --allow-burned-in-annotation)"
    )]
    BurnedInAnnotation { path: String },
    /// The DICOM file could not be encoded or written.
    #[error("{path}: cannot write DICOM file: {reason}")]
    Write { path: String, reason: String },
    /// A PNG could not be decoded or encoded.
    #[error("{path}: PNG error: {reason}")]
    Png { path: String, reason: String },
    /// A caller-supplied value (provenance, image size, ...) is unusable.
    #[error("invalid {what}: {reason}")]
    InvalidArgument { what: &'static str, reason: String },
}

/// Display form of a path for error messages.
pub(crate) fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// An error and all its sources on one line, so that the innermost reason (often the useful one) is shown.
pub(crate) fn error_chain_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        // dicom-rs nests errors whose messages repeat each other; skip exact repeats.
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}
