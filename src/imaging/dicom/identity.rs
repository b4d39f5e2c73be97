//! What names an image to other DICOM objects: its UIDs, and the patient and study attributes a presentation state
//! that references it must copy (PS3.3 A.33.1: a GSPS belongs to the image's patient and study). Kept when a view
//! loads a DICOM file, so the view's measurements can be saved as a GSPS of that image; PNG, JPEG and generated
//! images have none.

use super::read::DicomFile;
use dicom_dictionary_std::tags;
use serde::Serialize;

/// The image's identity and the attributes of its patient and study, as the file gives them (trimmed; `None` when
/// absent or empty).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageIdentity {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub study_id: Option<String>,
    pub accession_number: Option<String>,
    pub referring_physician_name: Option<String>,
    /// Body Part Examined (0018,0015): a presentation state's series says what its image shows.
    pub body_part_examined: Option<String>,
    /// Rows and Columns: a presentation state's displayed area is the whole image.
    pub rows: u32,
    pub columns: u32,
    /// Rescale Slope, Intercept and Type when the image has them: a GSPS must repeat its image's Modality LUT module
    /// (PS3.3 A.33.1.3, "Modality LUT: C"), or a viewer applies its window to the stored values.
    pub rescale: Option<Rescale>,
}

/// Rescale Slope (0028,1053), Intercept (0028,1052) and Type (0028,1054) as the image stores them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rescale {
    pub slope: String,
    pub intercept: String,
    /// "US" (unspecified) when the image gives none: Type 1C in the presentation state.
    pub rescale_type: String,
}

impl DicomFile {
    /// The image's identity; `None` without a SOP Class, SOP Instance, Study or Series Instance UID (an old raw data
    /// set), since nothing could reference such an image.
    pub fn image_identity(&self) -> Option<ImageIdentity> {
        let rows = self.text(tags::ROWS).and_then(|t| t.parse().ok())?;
        let columns = self.text(tags::COLUMNS).and_then(|t| t.parse().ok())?;
        let rescale = match (self.text(tags::RESCALE_SLOPE), self.text(tags::RESCALE_INTERCEPT)) {
            (Some(slope), Some(intercept)) => Some(Rescale {
                slope,
                intercept,
                rescale_type: self.text(tags::RESCALE_TYPE).unwrap_or_else(|| "US".to_owned()),
            }),
            _ => None,
        };
        Some(ImageIdentity {
            sop_class_uid: self.text(tags::SOP_CLASS_UID)?,
            sop_instance_uid: self.text(tags::SOP_INSTANCE_UID)?,
            study_instance_uid: self.text(tags::STUDY_INSTANCE_UID)?,
            series_instance_uid: self.text(tags::SERIES_INSTANCE_UID)?,
            patient_name: self.text(tags::PATIENT_NAME),
            patient_id: self.text(tags::PATIENT_ID),
            patient_birth_date: self.text(tags::PATIENT_BIRTH_DATE),
            patient_sex: self.text(tags::PATIENT_SEX),
            study_date: self.text(tags::STUDY_DATE),
            study_time: self.text(tags::STUDY_TIME),
            study_id: self.text(tags::STUDY_ID),
            accession_number: self.text(tags::ACCESSION_NUMBER),
            referring_physician_name: self.text(tags::REFERRING_PHYSICIAN_NAME),
            body_part_examined: self.text(tags::BODY_PART_EXAMINED),
            rows,
            columns,
            rescale,
        })
    }
}
