//! DICOM in and out: reading radiographs (any transfer syntax the pure-Rust dicom-rs codecs decode, with or
//! without a file meta header), the modality and VOI transforms, PS3.15 Annex E de-identification, Secondary
//! Capture export of artificial images, Grayscale Softcopy Presentation States (measurements), PNG export with provenance, and a tag listing for a tag panel.
//!
//! Nothing here knows egui: the viewer gets a [`DicomImage`] (floats after the modality LUT, a window, and
//! whether MONOCHROME1 needs inverting) and [`TagRow`]s.

mod basic_profile;
mod codestream;
mod deidentify;
mod error;
mod gray_image;
mod identity;
mod jpeg_extended;
mod jpeg_header;
mod jpeg_ls;
mod length_guard;
mod lut;
mod pixels;
mod png_provenance;
mod presentation_state;
mod provenance;
mod read;
mod secondary_capture;
mod tags;
mod uid;
mod un_undefined_length;
mod utc_date_time;
mod window;

pub use basic_profile::{
    BASIC_PROFILE, BASIC_PROFILE_REPEATING_GROUPS, ProfileAction, ProfileEntry, TYPE_2_SEQUENCES_WITH_X_CODES,
    TagPattern, is_identifying, is_overlay_group, is_private, profile_entry_for,
};
pub use deidentify::{
    Deidentified, DeidentifiedFile, DeidentifyCounts, DeidentifyOptions, deidentify_file, deidentify_file_with,
    deidentify_object, deidentify_object_with, output_file_name,
};
pub use error::DicomError;
pub use gray_image::{GrayImage, GraySamples};
pub use identity::{ImageIdentity, Rescale};
pub use lut::LookupTable;
pub use pixels::PixelStats;
pub use png_provenance::{read_png_with_provenance, write_png_with_provenance};
pub use presentation_state::{
    Annotation, GSPS_SOP_CLASS_UID, GraphicObject, GraphicType, MEASUREMENT_LAYER, PresentationState,
    ReadPresentationState, TextObject, WrittenPresentationState, read_presentation_state,
    read_presentation_state_bytes, write_presentation_state,
};
pub use provenance::{Provenance, SYNTHETIC_STATEMENT};
pub use read::{DicomFile, open_dicom, open_dicom_bytes, read_dicom_image, read_dicom_image_bytes};
pub use secondary_capture::{
    SYNTHETIC_SERIES_DESCRIPTION, SecondaryCaptureInfo, write_secondary_capture, write_secondary_capture_with,
};
pub use tags::{TagRow, list_tags};
pub use uid::{UidMap, new_uid};
pub use window::{VoiLut, VoiLutFunction, apply_voi, render_display_u8};

use serde::Serialize;

/// A decoded grayscale DICOM image (first frame), ready for display and analysis.
#[derive(Debug, Clone)]
pub struct DicomImage {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Row-major values after the modality LUT (Rescale Slope/Intercept or the Modality LUT Sequence),
    /// in the modality's output units (e.g. Hounsfield units for CT).
    pub pixels: Vec<f32>,
    /// Bits Stored of the source.
    pub bits_stored: u16,
    /// How grey levels map to brightness; MONOCHROME1 must be inverted for display.
    pub photometric: Photometric,
    /// The window stored in the file (VOI LUT Sequence range or Window Center/Width, first value),
    /// in the same units as `pixels`; `None` when the file stores none (see [`DicomImage::display_window`]).
    pub window: Option<Window>,
    /// The VOI function to use with `window` (LINEAR unless the file says otherwise).
    pub voi_lut_function: VoiLutFunction,
    /// A non-linear VOI LUT from the file, when present; it takes precedence over `window` for display.
    pub voi_lut: Option<VoiLut>,
    /// Everything `thorax dicom info` reports.
    pub summary: DicomSummary,
}

impl DicomImage {
    /// The window to show first: the stored one, else one spanning the pixel range.
    pub fn display_window(&self) -> (Window, WindowSource) {
        match self.window {
            Some(window) => (window, self.summary.window_source),
            None => (
                Window::spanning(self.summary.pixel_stats.min, self.summary.pixel_stats.max),
                WindowSource::ComputedFromPixelRange,
            ),
        }
    }
}

/// The physical size of a pixel (PS3.3 10.7.1.3), for measuring distances on the image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PixelSpacing {
    /// Distance between the centres of adjacent rows (the vertical size of a pixel), mm.
    pub row_mm: f64,
    /// Distance between the centres of adjacent columns (the horizontal size of a pixel), mm.
    pub column_mm: f64,
    pub source: SpacingSource,
}

impl PixelSpacing {
    /// Length in mm of the segment from `a` to `b`, in (column, row) pixel coordinates.
    pub fn length_mm(&self, a: [f64; 2], b: [f64; 2]) -> f64 {
        ((b[0] - a[0]) * self.column_mm).hypot((b[1] - a[1]) * self.row_mm)
    }
}

/// Which attribute a [`PixelSpacing`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum SpacingSource {
    /// Pixel Spacing (0028,0030): in the patient where the modality calibrates it (CT, MR; a calibrated projection
    /// radiograph).
    PixelSpacing,
    /// Imager Pixel Spacing (0018,1164) alone: at the detector. A projection radiograph magnifies the anatomy in front
    /// of the detector (typically 5-15% for a chest PA), so lengths at the detector overstate it.
    ImagerPixelSpacing,
    /// Imager Pixel Spacing divided by the Estimated Radiographic Magnification Factor (0018,1114) the file gives:
    /// the pixel size at the object, as PS3.3 10.7.1.3 calibrates it.
    MagnificationCorrected { factor: f64 },
}

impl SpacingSource {
    /// Where lengths from this spacing apply, for people: "" (in the patient), "at the detector", "corrected for
    /// magnification x1.10".
    pub fn qualifier(&self) -> String {
        match self {
            Self::PixelSpacing => String::new(),
            Self::ImagerPixelSpacing => "at the detector".to_owned(),
            Self::MagnificationCorrected { factor } => format!("corrected for magnification x{factor}"),
        }
    }
}

/// Photometric interpretation of the decoded image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Photometric {
    /// Low values are bright: the viewer must invert.
    Monochrome1,
    /// Low values are dark.
    Monochrome2,
    /// A colour image (RGB, YBR, palette) reduced to Rec. 601 luma; shown like MONOCHROME2.
    ColorAsLuma,
}

impl Photometric {
    /// Whether display must invert grey levels (MONOCHROME1).
    pub fn invert_for_display(self) -> bool {
        self == Photometric::Monochrome1
    }
}

/// A linear VOI window in modality output units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    /// Window Center.
    pub center: f64,
    /// Window Width (> 0).
    pub width: f64,
}

impl Window {
    /// A window covering `[min, max]` (width at least 1).
    pub fn spanning(min: f64, max: f64) -> Window {
        let width = (max - min).max(1.0);
        Window { center: min + (max - min) / 2.0, width }
    }
}

/// One of the windows a file stores (PS3.3 C.11.2.1.2), with its Window Center & Width Explanation (0028,1055)
/// when the file gives one (e.g. "NORMAL", "HARDER", "LUNG").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredWindow {
    pub window: Window,
    pub explanation: Option<String>,
}

/// Where the window came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowSource {
    /// Window Center / Window Width (0028,1050/1051), first value.
    StoredWindowCenterWidth,
    /// The input range of the VOI LUT Sequence (0028,3010), first item.
    VoiLutSequenceRange,
    /// No window stored: spans the pixel range after the modality LUT.
    ComputedFromPixelRange,
}

/// Which modality LUT was applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModalityLut {
    /// Rescale Slope / Intercept (defaults 1 and 0 when absent).
    Rescale { slope: f64, intercept: f64 },
    /// Modality LUT Sequence (0028,3000), first item.
    LutSequence { entries: u32, first_mapped: i32, bits_per_entry: u16 },
}

/// Facts about a DICOM image, as `thorax dicom info --json` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct DicomSummary {
    /// The file as given (or the label of an in-memory buffer).
    pub file: String,
    pub rows: u32,
    pub columns: u32,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub high_bit: u16,
    pub pixel_representation_signed: bool,
    pub samples_per_pixel: u16,
    pub number_of_frames: u32,
    pub photometric_interpretation: String,
    pub transfer_syntax_uid: String,
    pub transfer_syntax_name: String,
    /// False for old ACR-NEMA style files with no preamble and file meta group.
    pub has_file_meta: bool,
    pub modality: Option<String>,
    pub sop_class_uid: Option<String>,
    pub modality_lut: ModalityLut,
    /// The window used for first display (stored, or computed when none is stored).
    pub window: Window,
    pub window_source: WindowSource,
    /// Every usable Window Center/Width pair the file stores, first to last (the first is `window` unless a VOI LUT
    /// Sequence takes precedence): the alternative views the file offers, in the units of the modality LUT's output.
    pub stored_windows: Vec<StoredWindow>,
    pub voi_lut_function: VoiLutFunction,
    /// Display attributes that could not be used (an unknown VOI LUT Function, a window that is not a number, a
    /// VOI LUT whose data does not match its descriptor), each with what was done instead.
    pub display_notes: Vec<String>,
    /// The physical size of a pixel, when the file gives one: what distances are measured in.
    pub pixel_spacing: Option<PixelSpacing>,
    /// Stored values (before the modality LUT), first frame.
    pub stored_value_stats: PixelStats,
    /// Values after the modality LUT, first frame.
    pub pixel_stats: PixelStats,
}

impl DicomSummary {
    /// The range the stored values can take after the modality LUT: 0..2^BitsStored - 1 (or the signed range)
    /// through Rescale Slope/Intercept, or 0..2^bits - 1 of a Modality LUT Sequence's entries. It is the detector's
    /// scale, the same for every image it makes, unlike the image's own min..max.
    pub fn modality_value_range(&self) -> (f64, f64) {
        match self.modality_lut {
            ModalityLut::Rescale { slope, intercept } => {
                let bits = i32::from(self.bits_stored.clamp(1, 32));
                let (stored_lo, stored_hi) = if self.pixel_representation_signed {
                    (-(2f64.powi(bits - 1)), 2f64.powi(bits - 1) - 1.0)
                } else {
                    (0.0, 2f64.powi(bits) - 1.0)
                };
                let (a, b) = (slope * stored_lo + intercept, slope * stored_hi + intercept);
                (a.min(b), a.max(b))
            }
            ModalityLut::LutSequence { bits_per_entry, .. } => {
                (0.0, 2f64.powi(i32::from(bits_per_entry.clamp(1, 32))) - 1.0)
            }
        }
    }

    /// Whether the values after the modality LUT are Hounsfield units: PS3.3 C.11.1.1.2 makes them HU for CT
    /// images with a rescale.
    pub fn values_in_hounsfield_units(&self) -> bool {
        self.modality.as_deref().is_some_and(|m| m.trim().eq_ignore_ascii_case("CT"))
            && matches!(self.modality_lut, ModalityLut::Rescale { .. })
    }
}
