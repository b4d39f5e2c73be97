//! Radiograph I/O and pixel operations. Nothing here knows egui.

pub mod chest_domain;
pub mod decode;
pub mod dicom;
mod dicom_radiograph;
pub mod difference;
pub mod gray_channels;
pub mod gray_image;
pub mod png_palette;
pub mod png_text;
pub mod radiograph;
pub mod resize;
pub mod samples;
pub mod stats;
pub mod tensor;
pub mod window;

pub use decode::{DecodeError, decode_image, decode_radiograph, load_image, load_radiograph};
pub use dicom_radiograph::decode_dicom_values;
pub use gray_image::{BitDepth, GrayImage};
pub use radiograph::{DicomDetails, Radiograph};
pub use stats::ImageStats;
pub use window::Window;
