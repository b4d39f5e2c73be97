//! A decoded radiograph with what its file says about showing it: the stored window and, for DICOM, the
//! attributes a tag panel lists.

use std::sync::Arc;

use crate::imaging::dicom::{DicomSummary, ImageIdentity, TagRow};
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
    /// The image's UIDs and its patient and study attributes, for a presentation state that references it; `None`
    /// for a raw data set without UIDs.
    pub identity: Option<ImageIdentity>,
}

/// A window the file offers, as the viewer applies it (in the units of [`Radiograph::image`]).
#[derive(Clone, Debug, PartialEq)]
pub struct FileWindow {
    /// The file's explanation ("LUNG"), else "As stored" (one window) or its place ("2").
    pub name: String,
    pub window: Window,
}

impl DicomDetails {
    /// The windows the file stores (Window Center/Width, every value), in the image's units: mirrored like the
    /// pixels when the file was MONOCHROME1.
    pub fn file_windows(&self) -> Vec<FileWindow> {
        let stored = &self.summary.stored_windows;
        let (lo, hi) = self.summary.modality_value_range();
        stored
            .iter()
            .enumerate()
            .map(|(index, stored_window)| {
                let center = stored_window.window.center;
                let center = if self.mirrored_from_monochrome1 { lo + hi - center } else { center };
                let name = match &stored_window.explanation {
                    Some(explanation) => explanation.clone(),
                    None if stored.len() == 1 => "As stored".to_owned(),
                    None => format!("{}", index + 1),
                };
                FileWindow { name, window: Window { center: center as f32, width: stored_window.window.width as f32 } }
            })
            .collect()
    }
}

impl Radiograph {
    /// A raster image without display hints.
    pub fn plain(image: GrayImage) -> Self {
        Self { image, stored_window: None, dicom: None }
    }
}
