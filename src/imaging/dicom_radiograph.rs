//! DICOM data as a [`Radiograph`]: modality LUT applied, MONOCHROME1 mirrored, the stored window kept.

use std::sync::Arc;

use crate::imaging::decode::{DecodeError, MAX_PIXELS, MAX_SIDE_PX};
use crate::imaging::dicom::{
    DicomError, DicomFile, DicomImage, DicomSummary, ImageIdentity, ModalityLut, Photometric, TagRow, WindowSource,
    list_tags, open_dicom_bytes,
};
use crate::imaging::gray_image::{BitDepth, GrayImage};
use crate::imaging::radiograph::{DicomDetails, Radiograph};
use crate::imaging::window::Window;

/// Whether `bytes` carry the DICOM part 10 marker (after a 128-byte preamble, or at the start).
pub fn has_dicom_marker(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(b"DICM".as_slice()) || bytes.get(0..4) == Some(b"DICM".as_slice())
}

/// Decodes DICOM bytes (part 10 file or raw data set), first frame.
pub fn decode_dicom(bytes: &[u8], name: &str) -> Result<Radiograph, DecodeError> {
    let file = open_dicom_bytes(name, bytes).map_err(|e| dicom_error(name, &e))?;
    radiograph_from_dicom(&file, name)
}

/// Decodes bytes without a DICOM marker as a raw data set; `None` when they do not start like one.
pub fn decode_raw_data_set(bytes: &[u8], name: &str) -> Option<Result<Radiograph, DecodeError>> {
    match open_dicom_bytes(name, bytes) {
        Ok(file) => Some(radiograph_from_dicom(&file, name)),
        Err(DicomError::NotDicom { .. }) => None,
        Err(other) => Some(Err(dicom_error(name, &other))),
    }
}

/// Decodes DICOM bytes (part 10 file or raw data set), first frame, as values after the modality LUT with nothing
/// done for display (no MONOCHROME1 mirroring, no range of the image's own): what a metric that compares the values
/// of two files needs. Oversized images are refused before decoding, as in [`decode_dicom`].
pub fn decode_dicom_values(bytes: &[u8], name: &str) -> Result<DicomImage, DecodeError> {
    let file = open_dicom_bytes(name, bytes).map_err(|e| dicom_error(name, &e))?;
    refuse_oversized(&file, name)?;
    file.decode_image().map_err(|e| dicom_error(name, &e))
}

fn radiograph_from_dicom(file: &DicomFile, name: &str) -> Result<Radiograph, DecodeError> {
    refuse_oversized(file, name)?;
    let decoded = file.decode_image().map_err(|e| dicom_error(name, &e))?;
    let tags = list_tags(file);
    to_radiograph(decoded, tags, file.image_identity(), name)
}

fn dicom_error(name: &str, error: &DicomError) -> DecodeError {
    DecodeError::Dicom { name: name.to_owned(), reason: error.to_string() }
}

/// Reads Rows and Columns before decoding, so a huge image is refused without allocating its pixels.
fn refuse_oversized(file: &DicomFile, name: &str) -> Result<(), DecodeError> {
    let side = |tag| file.text(tag).and_then(|t| t.parse::<u32>().ok());
    if let (Some(height_px), Some(width_px)) =
        (side(dicom_dictionary_std::tags::ROWS), side(dicom_dictionary_std::tags::COLUMNS))
        && (width_px > MAX_SIDE_PX
            || height_px > MAX_SIDE_PX
            || u64::from(width_px) * u64::from(height_px) > MAX_PIXELS)
    {
        return Err(DecodeError::TooLarge { name: name.to_owned(), width_px, height_px });
    }
    Ok(())
}

/// The bit depth whose whole range the stored values mean, as for a PNG of that depth; otherwise `F32`, whose nominal
/// range is the data's own.
///
/// Values after the modality LUT may be signed or fractional, and 10- to 14-bit detectors rarely fill their range, so
/// most DICOM data keeps the data range. Two cases are plain integers of a PNG's depth: 8 bits stored (nothing else
/// fits), and 16 bits stored with a window spanning all 65536 values (a Secondary Capture made from a 16-bit PNG
/// says so). Both need an unsigned identity modality LUT; MONOCHROME1 (mirrored within the same range) and colour
/// (reduced to luma) take them too, as an inverted or RGB PNG does. Without this, an exported PNG read back was
/// stretched to its own range, and its classifier probabilities and MS-SSIM differed from the PNG's.
fn integer_depth(summary: &DicomSummary) -> BitDepth {
    let identity =
        matches!(summary.modality_lut, ModalityLut::Rescale { slope, intercept } if slope == 1.0 && intercept == 0.0);
    // Colour is reduced to luma, which stays within the samples' range, as for an RGB PNG.
    if !identity || summary.pixel_representation_signed {
        return BitDepth::F32;
    }
    let whole_type_window = |bits: u16| {
        summary.window_source == WindowSource::StoredWindowCenterWidth
            && summary.window.center == f64::from(1u32 << (bits - 1))
            && summary.window.width == f64::from(1u32 << bits)
    };
    match summary.bits_stored {
        8 => BitDepth::U8,
        16 if whole_type_window(16) => BitDepth::U16,
        _ => BitDepth::F32,
    }
}

fn to_radiograph(
    decoded: DicomImage,
    tags: Vec<TagRow>,
    identity: Option<ImageIdentity>,
    name: &str,
) -> Result<Radiograph, DecodeError> {
    // A sigmoid VOI function or a non-linear VOI LUT is shown through its linear window (the viewer is linear).
    let stored_window = decoded.window.map(|w| Window { center: w.center as f32, width: w.width as f32 });
    let mirrored = decoded.photometric == Photometric::Monochrome1;
    let mut pixels = decoded.pixels;
    let mut stored_window = stored_window;
    if mirrored {
        // Mirror within the detector's value range (not the image's own min..max): bone is bright as in MONOCHROME2,
        // and the same pixels stored either way become the same numbers, at the same integer depth, so the networks
        // see identical input.
        let (lo, hi) = decoded.summary.modality_value_range();
        let mirror = |value: f32| (lo + hi - f64::from(value)) as f32;
        for value in &mut pixels {
            *value = mirror(*value);
        }
        stored_window = stored_window.map(|w| Window { center: mirror(w.center), width: w.width });
    }
    let depth = integer_depth(&decoded.summary);
    let image = GrayImage::new(decoded.width as usize, decoded.height as usize, depth, pixels)
        .map_err(|e| DecodeError::Corrupt { name: name.to_owned(), reason: e.to_string() })?;
    Ok(Radiograph {
        image,
        stored_window,
        dicom: Some(Arc::new(DicomDetails {
            summary: decoded.summary,
            tags,
            mirrored_from_monochrome1: mirrored,
            identity,
        })),
    })
}
