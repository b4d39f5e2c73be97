//! De-identification by the PS3.15 Annex E Basic Application Level Confidentiality Profile: every attribute
//! of Table E.1-1 gets its action ([`super::basic_profile`]), private attributes and group lengths are
//! removed, UIDs are replaced consistently through a [`UidMap`] shared by all files of one export, and the
//! result says so (Patient Identity Removed, De-identification Method and its code sequence).

use super::basic_profile::{ProfileAction, is_private, profile_entry_for};
use super::error::{DicomError, error_chain_text, path_text};
use super::read::{DicomFile, open_dicom};
use super::uid::UidMap;
use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, VR};
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemElement;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{FileDicomObject, InMemDicomObject};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// De-identification Method (0012,0063) we record (LO, at most 64 characters).
const METHOD_TEXT: &str = "DICOM PS3.15 E.1 Basic Profile (Thorax Workbench)";
/// Text used for D (dummy) replacements of text attributes.
const DUMMY_TEXT: &str = "ANONYMIZED";

/// What was done to one file, attribute by attribute (nested items included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeidentifyCounts {
    /// Attributes removed (X and the compound codes resolved to X).
    pub removed: usize,
    /// Attributes emptied (Z).
    pub emptied: usize,
    /// Attributes replaced with a dummy (D, C).
    pub replaced_with_dummy: usize,
    /// UID attributes replaced (U).
    pub uids_replaced: usize,
    /// Private attributes removed (odd groups, creators included).
    pub private_removed: usize,
    /// Group length attributes (gggg,0000) dropped because the edit invalidates them.
    pub group_lengths_removed: usize,
}

/// One de-identified output file.
#[derive(Debug, Clone, Serialize)]
pub struct DeidentifiedFile {
    pub input: String,
    pub output: PathBuf,
    /// The new SOP Instance UID (also the file name).
    pub sop_instance_uid: String,
    pub counts: DeidentifyCounts,
    /// Things the profile could not settle by itself (burned-in text in pixels).
    pub warnings: Vec<String>,
}

/// The output name for a de-identified instance: its new SOP Instance UID (input names may identify).
pub fn output_file_name(sop_instance_uid: &str) -> String {
    format!("{sop_instance_uid}.dcm")
}

/// De-identifies `input` into `out_dir`, replacing UIDs through `uids` (share one map across an export).
pub fn deidentify_file(input: &Path, out_dir: &Path, uids: &mut UidMap) -> Result<DeidentifiedFile, DicomError> {
    let file = open_dicom(input)?;
    let (object, counts, warnings) = deidentify_object(&file, uids)?;
    let sop_instance_uid = object.meta().media_storage_sop_instance_uid().trim_end_matches('\0').to_owned();
    let output = out_dir.join(output_file_name(&sop_instance_uid));
    if output.exists() {
        // Two inputs with one SOP Instance UID (copies of one instance) map to one new UID and one file name.
        return Err(DicomError::Write {
            path: path_text(&output),
            reason: format!(
                "already exists, so {} was not written: it has the SOP Instance UID of a file this run wrote before \
                 (a copy of one instance?)",
                path_text(input)
            ),
        });
    }
    object
        .write_to_file(&output)
        .map_err(|e| DicomError::Write { path: path_text(&output), reason: error_chain_text(&e) })?;
    Ok(DeidentifiedFile { input: path_text(input), output, sop_instance_uid, counts, warnings })
}

/// De-identifies an opened file in memory; returns the new object, what was done, and warnings.
pub fn deidentify_object(
    file: &DicomFile,
    uids: &mut UidMap,
) -> Result<(FileDicomObject<InMemDicomObject>, DeidentifyCounts, Vec<String>), DicomError> {
    let mut cleaner = Cleaner { uids, counts: DeidentifyCounts::default() };
    let mut dataset = cleaner.clean(&file.object);
    let counts = cleaner.counts;

    let sop_instance_uid = match text_of(&dataset, tags::SOP_INSTANCE_UID) {
        Some(uid) => uid,
        None => {
            // Keep the object addressable: map the meta's instance UID instead.
            let uid = uids.replace(file.object.meta().media_storage_sop_instance_uid());
            dataset.put(DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from(uid.as_str())));
            uid
        }
    };
    let sop_class_uid = text_of(&dataset, tags::SOP_CLASS_UID)
        .unwrap_or_else(|| file.object.meta().media_storage_sop_class_uid().trim_end_matches('\0').to_owned());
    mark_deidentified(&mut dataset);
    let warnings = pixel_warnings(file);

    // A fresh meta group: the original one may carry a source AE title and the old instance UID.
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(file.transfer_syntax_uid())
        .media_storage_sop_class_uid(sop_class_uid)
        .media_storage_sop_instance_uid(sop_instance_uid)
        .build()
        .map_err(|e| DicomError::Write {
            path: file.label.clone(),
            reason: format!("cannot build the file meta group: {}", error_chain_text(&e)),
        })?;
    Ok((dataset.with_exact_meta(meta), counts, warnings))
}

/// The code sequence item for 113100 "Basic Application Confidentiality Profile" (CID 7050).
pub(crate) fn basic_profile_code_sequence() -> DataSetSequence<InMemDicomObject> {
    let item = InMemDicomObject::from_element_iter([
        DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from("113100")),
        DataElement::new(tags::CODING_SCHEME_DESIGNATOR, VR::SH, PrimitiveValue::from("DCM")),
        DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from("Basic Application Confidentiality Profile")),
    ]);
    DataSetSequence::new(vec![item], Length::UNDEFINED)
}

/// Sets Patient Identity Removed, De-identification Method (+ code sequence) and, since the profile
/// removes or empties dates, Longitudinal Temporal Information Modified = REMOVED.
fn mark_deidentified(dataset: &mut InMemDicomObject) {
    dataset.put(DataElement::new(tags::PATIENT_IDENTITY_REMOVED, VR::CS, PrimitiveValue::from("YES")));
    dataset.put(DataElement::new(tags::DEIDENTIFICATION_METHOD, VR::LO, PrimitiveValue::from(METHOD_TEXT)));
    dataset.put(DataElement::new(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE, VR::SQ, basic_profile_code_sequence()));
    dataset.put(DataElement::new(
        tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
        VR::CS,
        PrimitiveValue::from("REMOVED"),
    ));
}

/// The Basic Profile cleans attributes, not pixels: say when the pixels may still show identifying text.
fn pixel_warnings(file: &DicomFile) -> Vec<String> {
    let burned_in = file.text(tags::BURNED_IN_ANNOTATION);
    let modality = file.text(tags::MODALITY).unwrap_or_default();
    let secondary_capture =
        file.text(tags::SOP_CLASS_UID).is_some_and(|uid| uid.starts_with("1.2.840.10008.5.1.4.1.1.7"));
    let often_burned_in = ["US", "SC", "OT", "XC", "ES", "DOC"].contains(&modality.as_str());
    match burned_in.as_deref() {
        Some("YES") => vec![format!(
            "{}: Burned In Annotation is YES; identifying text may remain in the pixels, which this tool does not clean",
            file.label
        )],
        Some("NO") => Vec::new(),
        _ if often_burned_in || secondary_capture => vec![format!(
            "{}: Burned In Annotation is not stated and this is a {} object, where text is often burned into the pixels; check the image before sharing",
            file.label,
            if secondary_capture { "Secondary Capture" } else { modality.as_str() }
        )],
        _ => Vec::new(),
    }
}

fn text_of(dataset: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    dataset
        .get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(['\0', ' ']).to_owned())
        .filter(|s| !s.is_empty())
}

struct Cleaner<'a> {
    uids: &'a mut UidMap,
    counts: DeidentifyCounts,
}

impl Cleaner<'_> {
    /// Applies the profile to every attribute of `dataset`, recursing into sequence items.
    fn clean(&mut self, dataset: &InMemDicomObject) -> InMemDicomObject {
        let mut kept: Vec<InMemElement> = Vec::new();
        for element in dataset.iter() {
            let tag = element.tag();
            if tag.element() == 0x0000 {
                self.counts.group_lengths_removed += 1;
                continue;
            }
            if is_private(tag) {
                self.counts.private_removed += 1;
                continue;
            }
            let action = profile_entry_for(tag).map(|entry| entry.action.resolved());
            match action {
                Some(ProfileAction::X) => self.counts.removed += 1,
                Some(ProfileAction::Z) => {
                    self.counts.emptied += 1;
                    kept.push(DataElement::empty(tag, element.vr()));
                }
                Some(ProfileAction::D) | Some(ProfileAction::C) => {
                    match self.dummy(element) {
                        Some(replacement) => {
                            self.counts.replaced_with_dummy += 1;
                            kept.push(replacement);
                        }
                        // No safe dummy for this VR: removing protects strictly more.
                        None => self.counts.removed += 1,
                    }
                }
                Some(ProfileAction::U) => match self.replace_uids(element) {
                    Some(replacement) => {
                        self.counts.uids_replaced += 1;
                        kept.push(replacement);
                    }
                    None => self.counts.removed += 1,
                },
                // K, other (unresolved) codes and unlisted attributes: keep, cleaning sequences.
                _ => kept.push(self.keep(element)),
            }
        }
        InMemDicomObject::from_element_iter(kept)
    }

    /// A kept attribute; sequence items are cleaned too (K means "cleaned for sequences").
    fn keep(&mut self, element: &InMemElement) -> InMemElement {
        match element.value() {
            Value::Sequence(sequence) => self.clean_sequence(element, sequence),
            _ => element.clone(),
        }
    }

    fn clean_sequence(&mut self, element: &InMemElement, sequence: &DataSetSequence<InMemDicomObject>) -> InMemElement {
        let items: Vec<InMemDicomObject> = sequence.items().iter().map(|item| self.clean(item)).collect();
        DataElement::new(element.tag(), VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
    }

    /// A non-empty dummy value consistent with the VR (D), or `None` when removal is the safe choice.
    fn dummy(&mut self, element: &InMemElement) -> Option<InMemElement> {
        let tag = element.tag();
        let vr = element.vr();
        if let Value::Sequence(sequence) = element.value() {
            return Some(self.clean_sequence(element, sequence));
        }
        let value = match vr {
            VR::AE | VR::CS | VR::LO | VR::LT | VR::SH | VR::ST | VR::UC | VR::UT | VR::PN => {
                PrimitiveValue::from(DUMMY_TEXT)
            }
            VR::AS => PrimitiveValue::from("000Y"),
            VR::DA => PrimitiveValue::from("19000101"),
            VR::DT => PrimitiveValue::from("19000101000000"),
            VR::TM => PrimitiveValue::from("000000"),
            VR::DS | VR::IS => PrimitiveValue::from("0"),
            VR::UR => PrimitiveValue::from("urn:anonymized"),
            VR::UI => return self.replace_uids(element),
            VR::US => PrimitiveValue::from(0u16),
            VR::SS => PrimitiveValue::from(0i16),
            VR::UL => PrimitiveValue::from(0u32),
            VR::SL => PrimitiveValue::from(0i32),
            VR::FL => PrimitiveValue::from(0f32),
            VR::FD => PrimitiveValue::from(0f64),
            VR::OB | VR::UN => PrimitiveValue::U8(vec![0u8, 0].into()),
            VR::OW => PrimitiveValue::U16(vec![0u16].into()),
            _ => return None,
        };
        Some(DataElement::new(tag, vr, value))
    }

    /// Replaces every UID value through the export's map; `None` when the value is not text.
    fn replace_uids(&mut self, element: &InMemElement) -> Option<InMemElement> {
        let values = element.value().to_multi_str().ok()?;
        let replaced: Vec<String> = values
            .iter()
            .map(|uid| uid.trim_matches(['\0', ' ']))
            .map(|uid| if uid.is_empty() { String::new() } else { self.uids.replace(uid) })
            .collect();
        let value = match replaced.as_slice() {
            [single] => PrimitiveValue::from(single.as_str()),
            _ => PrimitiveValue::Strs(replaced.into_iter().collect()),
        };
        Some(DataElement::new(element.tag(), VR::UI, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::Tag;

    fn element(tag: Tag, vr: VR, value: &str) -> InMemElement {
        DataElement::new(tag, vr, PrimitiveValue::from(value))
    }

    #[test]
    fn cleans_nested_items_and_maps_uids_consistently() {
        let referenced = InMemDicomObject::from_element_iter([
            element(tags::REFERENCED_SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.1"),
            element(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, "1.2.3.4"),
            element(tags::PATIENT_NAME, VR::PN, "Doe^Jane"),
        ]);
        let dataset = InMemDicomObject::from_element_iter([
            element(tags::PATIENT_NAME, VR::PN, "Doe^John"),
            element(tags::INSTITUTION_NAME, VR::LO, "General Hospital"),
            element(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3.4"),
            element(tags::MODALITY, VR::CS, "CR"),
            element(tags::PERSON_NAME, VR::PN, "Smith^Ann"),
            element(Tag(0x0009, 0x0010), VR::LO, "ACME"),
            DataElement::new(
                tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
                VR::SQ,
                DataSetSequence::new(vec![referenced.clone()], Length::UNDEFINED),
            ),
            DataElement::new(
                tags::DERIVATION_CODE_SEQUENCE,
                VR::SQ,
                DataSetSequence::new(vec![referenced], Length::UNDEFINED),
            ),
        ]);
        let mut uids = UidMap::new();
        let mut cleaner = Cleaner { uids: &mut uids, counts: DeidentifyCounts::default() };
        let out = cleaner.clean(&dataset);
        let counts = cleaner.counts;
        let text = |obj: &InMemDicomObject, tag| obj.get(tag).map(|e| e.to_str().unwrap().to_string());
        assert_eq!(text(&out, tags::PATIENT_NAME), Some(String::new()));
        assert_eq!(text(&out, tags::INSTITUTION_NAME), None);
        assert_eq!(text(&out, tags::MODALITY), Some("CR".into()));
        assert_eq!(text(&out, tags::PERSON_NAME), Some(DUMMY_TEXT.into()));
        assert!(out.get(Tag(0x0009, 0x0010)).is_none());
        assert!(out.get(tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE).is_none());
        let new_study = text(&out, tags::STUDY_INSTANCE_UID).unwrap();
        assert_ne!(new_study, "1.2.3.4");
        // Unlisted sequence kept, its items cleaned, the same UID mapped to the same replacement.
        let items = out.get(tags::DERIVATION_CODE_SEQUENCE).unwrap().items().unwrap();
        assert_eq!(text(&items[0], tags::REFERENCED_SOP_INSTANCE_UID), Some(new_study));
        assert_eq!(text(&items[0], tags::REFERENCED_SOP_CLASS_UID), Some("1.2.840.10008.5.1.4.1.1.1".into()));
        assert_eq!(text(&items[0], tags::PATIENT_NAME), Some(String::new()));
        assert_eq!(counts.private_removed, 1);
        assert_eq!(counts.removed, 2);
    }
}
