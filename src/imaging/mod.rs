//! Radiograph I/O and pixel operations. Nothing here knows egui.

pub mod decode;
pub mod dicom;
pub mod difference;
pub mod gray_image;
pub mod resize;
pub mod samples;
pub mod stats;
pub mod tensor;
pub mod window;

pub use decode::{DecodeError, decode_image, load_image};
pub use gray_image::{BitDepth, GrayImage};
pub use stats::ImageStats;
pub use window::Window;
