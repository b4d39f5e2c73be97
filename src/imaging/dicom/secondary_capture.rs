//! Export of an artificial image as a DICOM Secondary Capture Image (SOP class 1.2.840.10008.5.1.4.1.1.7):
//! fresh UIDs, no patient attributes beyond the empty Type 2 ones, ImageType DERIVED\SECONDARY, Conversion
//! Type SYN, a series description saying it is synthetic, and the provenance (generator hash, seed, labels)
//! in Derivation Description and, as JSON, in Image Comments.

use super::error::{DicomError, error_chain_text, path_text};
use super::gray_image::{GrayImage, GraySamples};
use super::provenance::Provenance;
use super::uid::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, new_uid};
use super::utc_date_time::dicom_date_time_utc;
use crate::atomic_file::{IfExists, OutputFileError, PartialFile};
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR, dicom_value};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Series Description of every exported artificial image (LO, at most 64 characters).
pub const SYNTHETIC_SERIES_DESCRIPTION: &str = "SYNTHETIC image (Thorax Workbench) - not a real patient";

/// Patient's Name (0010,0010) of every export.
pub const SYNTHETIC_PATIENT_NAME: &str = "SYNTHETIC^NOT A REAL PATIENT";

/// Patient ID (0010,0020) of an export: "SYNTHETIC-" and the last 16 digits of its Study Instance UID.
fn synthetic_patient_id(study_instance_uid: &str) -> String {
    let digits = study_instance_uid.len().saturating_sub(16);
    format!("SYNTHETIC-{}", study_instance_uid.get(digits..).unwrap_or(study_instance_uid))
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct SecondaryCaptureInfo {
    pub path: PathBuf,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub rows: u32,
    pub columns: u32,
    pub bits_stored: u16,
}

/// Writes `image` as a Secondary Capture DICOM file (explicit VR little endian) at `path`, replacing a file of that
/// name (callers refuse one first where the user did not allow it).
pub fn write_secondary_capture(
    path: &Path,
    image: &GrayImage,
    provenance: &Provenance,
) -> Result<SecondaryCaptureInfo, DicomError> {
    write_secondary_capture_with(path, image, provenance, IfExists::Replace)
}

/// [`write_secondary_capture`], with what to do about an existing file. The file is written under a temporary name
/// and renamed into place, so a failure never leaves half a file at `path` nor loses the file that was there.
pub fn write_secondary_capture_with(
    path: &Path,
    image: &GrayImage,
    provenance: &Provenance,
    if_exists: IfExists,
) -> Result<SecondaryCaptureInfo, DicomError> {
    let output_error = |e: OutputFileError| DicomError::Write { path: path_text(path), reason: e.to_string() };
    let partial = PartialFile::create(path, if_exists).map_err(output_error)?;
    let too_large = |what: &str| DicomError::InvalidArgument {
        what: "image size",
        reason: format!("{what} must be at most 65535 for DICOM, image is {}x{}", image.width, image.height),
    };
    let rows = u16::try_from(image.height).map_err(|_| too_large("rows"))?;
    let columns = u16::try_from(image.width).map_err(|_| too_large("columns"))?;
    let bits = image.bits_per_sample();
    let (pixel_vr, pixel_value) = match &image.samples {
        GraySamples::U8(v) => (VR::OB, PrimitiveValue::U8(v.clone().into())),
        GraySamples::U16(v) => (VR::OW, PrimitiveValue::U16(v.clone().into())),
    };
    // PS3.3 C.11.2.1.2.1: center 2^(b-1) and width 2^b map every stored value to itself, so viewers show the image
    // as the PNG shows it (a window spanning the data stretched its contrast).
    let window = super::Window { center: f64::from(1u32 << (bits - 1)), width: f64::from(1u32 << bits) };
    let provenance_json = serde_json::to_string(provenance)
        .map_err(|e| DicomError::InvalidArgument { what: "provenance", reason: e.to_string() })?;
    let (made_date, made_time) = dicom_date_time_utc(std::time::SystemTime::now());
    let sop_instance_uid = new_uid();
    let study_instance_uid = new_uid();
    let series_instance_uid = new_uid();

    let text = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
    let empty = |tag, vr| DataElement::<InMemDicomObject>::empty(tag, vr);
    let dataset = InMemDicomObject::from_element_iter([
        // SOP Common
        text(tags::SOP_CLASS_UID, VR::UI, uids::SECONDARY_CAPTURE_IMAGE_STORAGE),
        text(tags::SOP_INSTANCE_UID, VR::UI, &sop_instance_uid),
        // Patient: Type 2 attributes present and empty; nothing else.
        // Named so that a PACS's patient list, not only its series list, says this is no patient; each export is
        // its own "patient", so synthetic images are never filed together as if one person's.
        text(tags::PATIENT_NAME, VR::PN, SYNTHETIC_PATIENT_NAME),
        text(tags::PATIENT_ID, VR::LO, &synthetic_patient_id(&study_instance_uid)),
        empty(tags::PATIENT_BIRTH_DATE, VR::DA),
        empty(tags::PATIENT_SEX, VR::CS),
        // No identity to remove: the method says why. No De-identification Method Code Sequence (Type 1C, not
        // needed beside the text): its codes (CID 7050) name profiles applied to a patient's data, which this is not.
        text(tags::PATIENT_IDENTITY_REMOVED, VR::CS, "YES"),
        text(tags::DEIDENTIFICATION_METHOD, VR::LO, "Synthetic image: generated, no patient data"),
        // General Study
        text(tags::STUDY_INSTANCE_UID, VR::UI, &study_instance_uid),
        // When the image was made (UTC), and a Study ID: what a DICOMDIR needs to list the study.
        text(tags::STUDY_DATE, VR::DA, &made_date),
        text(tags::STUDY_TIME, VR::TM, &made_time),
        empty(tags::REFERRING_PHYSICIAN_NAME, VR::PN),
        text(tags::STUDY_ID, VR::SH, "SYNTHETIC"),
        empty(tags::ACCESSION_NUMBER, VR::SH),
        text(tags::STUDY_DESCRIPTION, VR::LO, "Synthetic chest radiograph"),
        // General Series
        text(tags::MODALITY, VR::CS, "OT"),
        text(tags::BODY_PART_EXAMINED, VR::CS, "CHEST"),
        text(tags::SERIES_INSTANCE_UID, VR::UI, &series_instance_uid),
        text(tags::SERIES_NUMBER, VR::IS, "1"),
        text(tags::SERIES_DESCRIPTION, VR::LO, SYNTHETIC_SERIES_DESCRIPTION),
        // SC Equipment
        text(tags::CONVERSION_TYPE, VR::CS, "SYN"),
        text(tags::SECONDARY_CAPTURE_DEVICE_MANUFACTURER, VR::LO, "Thorax Workbench"),
        text(tags::SECONDARY_CAPTURE_DEVICE_MANUFACTURER_MODEL_NAME, VR::LO, "image generator"),
        text(tags::SECONDARY_CAPTURE_DEVICE_SOFTWARE_VERSIONS, VR::LO, env!("CARGO_PKG_VERSION")),
        // General Image
        text(tags::INSTANCE_NUMBER, VR::IS, "1"),
        empty(tags::PATIENT_ORIENTATION, VR::CS),
        DataElement::new(tags::IMAGE_TYPE, VR::CS, dicom_value!(Strs, ["DERIVED", "SECONDARY"])),
        text(tags::DERIVATION_DESCRIPTION, VR::ST, &provenance.summary_text()),
        text(tags::IMAGE_COMMENTS, VR::LT, &provenance_json),
        text(tags::BURNED_IN_ANNOTATION, VR::CS, "NO"),
        text(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00"),
        // Image Pixel
        DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16)),
        text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(rows)),
        DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(columns)),
        DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(bits)),
        DataElement::new(tags::BITS_STORED, VR::US, PrimitiveValue::from(bits)),
        DataElement::new(tags::HIGH_BIT, VR::US, PrimitiveValue::from(bits - 1)),
        DataElement::new(tags::PIXEL_REPRESENTATION, VR::US, PrimitiveValue::from(0u16)),
        // VOI LUT: the identity window, so viewers show it as generated.
        text(tags::WINDOW_CENTER, VR::DS, &format_ds(window.center)),
        text(tags::WINDOW_WIDTH, VR::DS, &format_ds(window.width)),
        DataElement::new(tags::PIXEL_DATA, pixel_vr, pixel_value),
    ]);
    let object = dataset
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
                .implementation_version_name(IMPLEMENTATION_VERSION_NAME),
        )
        .map_err(|e| DicomError::Write { path: path_text(path), reason: error_chain_text(&e) })?;
    object
        .write_to_file(partial.path())
        .map_err(|e| DicomError::Write { path: path_text(path), reason: error_chain_text(&e) })?;
    partial.commit().map_err(output_error)?;
    Ok(SecondaryCaptureInfo {
        path: path.to_path_buf(),
        sop_class_uid: uids::SECONDARY_CAPTURE_IMAGE_STORAGE.to_owned(),
        sop_instance_uid,
        study_instance_uid,
        series_instance_uid,
        rows: image.height,
        columns: image.width,
        bits_stored: bits,
    })
}

/// A DS value (at most 16 characters): integers without decimals, others with up to 6.
pub(crate) fn format_ds(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.6}");
        text.trim_end_matches('0').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_values_fit() {
        assert_eq!(format_ds(128.0), "128");
        assert_eq!(format_ds(127.5), "127.5");
        assert!(SYNTHETIC_SERIES_DESCRIPTION.len() <= 64);
    }
}
