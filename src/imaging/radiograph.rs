//! A decoded radiograph with what its file says about showing it: the stored window and, for DICOM, the
//! attributes a tag panel lists.

use std::sync::Arc;

use crate::imaging::dicom::{DicomSummary, TagRow};
use crate::imaging::gray_image::GrayImage;
use crate::imaging::window::Window;

/// An image plus its display hints.
#[derive(Clone, Debug)]
pub struct Radiograph {
    /// Pixel values; for DICOM after the modality LUT, and MONOCHROME1 already turned to MONOCHROME2 polarity so
    /// networks and the viewer see bone bright.
    pub image: GrayImage,
    /// The window the file asks for on first display (DICOM Window Center/Width or VOI LUT range), in the units
    /// of `image`.
    pub stored_window: Option<Window>,
    /// DICOM facts and attributes; `None` for PNG, JPEG and TIFF.
    pub dicom: Option<Arc<DicomDetails>>,
}

/// What the tag panel shows about a DICOM source.
#[derive(Clone, Debug)]
pub struct DicomDetails {
    pub summary: DicomSummary,
    pub tags: Vec<TagRow>,
    /// The file was MONOCHROME1 (low values bright); its values were mirrored within the range its stored values can
    /// take (not its own min..max) for display and analysis, so the pixel readout shows mirrored values.
    pub mirrored_from_monochrome1: bool,
}

impl Radiograph {
    /// A raster image without display hints.
    pub fn plain(image: GrayImage) -> Self {
        Self { image, stored_window: None, dicom: None }
    }
}
