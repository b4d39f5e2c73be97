//! De-identification by the PS3.15 Annex E Basic Application Level Confidentiality Profile: every attribute
//! of Table E.1-1 gets its action ([`super::basic_profile`]), private attributes and group lengths are
//! removed, UIDs are replaced consistently through a [`UidMap`] shared by all files of one export, and the
//! result says so (Patient Identity Removed, De-identification Method and its code sequence).

use super::basic_profile::{ProfileAction, is_overlay_group, is_private, profile_entry_for};
use super::error::{DicomError, error_chain_text, path_text};
use super::length_guard::{DataSetEncoding, check_raw_lengths};
use super::read::{DicomFile, open_dicom};
use super::uid::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, UidMap};
use crate::atomic_file::{IfExists, OutputFileError, PartialFile};
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemElement;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{FileDicomObject, InMemDicomObject, StandardDataDictionary};
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
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
    /// Things the profile could not settle by itself (burned-in text in pixels, unreadable UN sequences).
    pub warnings: Vec<String>,
}

/// Choices the user makes for a de-identification run; the default is the safe one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeidentifyOptions {
    /// Write files whose Burned In Annotation is YES. The profile cleans attributes, not pixels, so this is for a
    /// user who has checked or masked the pixels and takes responsibility for them.
    pub allow_burned_in_annotation: bool,
}

/// The output name for a de-identified instance: its new SOP Instance UID (input names may identify).
pub fn output_file_name(sop_instance_uid: &str) -> String {
    format!("{sop_instance_uid}.dcm")
}

/// De-identifies `input` into `out_dir`, replacing UIDs through `uids` (share one map across an export), with
/// the default options (files with burned-in annotation are refused).
pub fn deidentify_file(input: &Path, out_dir: &Path, uids: &mut UidMap) -> Result<DeidentifiedFile, DicomError> {
    deidentify_file_with(input, out_dir, uids, DeidentifyOptions::default())
}

/// [`deidentify_file`] with explicit options.
pub fn deidentify_file_with(
    input: &Path,
    out_dir: &Path,
    uids: &mut UidMap,
    options: DeidentifyOptions,
) -> Result<DeidentifiedFile, DicomError> {
    let file = open_dicom(input)?;
    let (object, counts, warnings) = deidentify_object_with(&file, uids, options)?;
    let sop_instance_uid = object.meta().media_storage_sop_instance_uid().trim_end_matches('\0').to_owned();
    let output = out_dir.join(output_file_name(&sop_instance_uid));
    let output_error = |error: OutputFileError| match error {
        // Two inputs with one SOP Instance UID (copies of one instance) map to one new UID and one file name.
        OutputFileError::Exists { .. } => DicomError::Write {
            path: path_text(&output),
            reason: format!(
                "already exists, so {} was not written: it has the SOP Instance UID of a file this run wrote before \
                 (a copy of one instance?)",
                path_text(input)
            ),
        },
        other => DicomError::Write { path: path_text(&output), reason: other.to_string() },
    };
    // Under a temporary name until whole: an interrupted run leaves no half-written file among the outputs.
    let partial = PartialFile::create(&output, IfExists::Refuse).map_err(output_error)?;
    object
        .write_to_file(partial.path())
        .map_err(|e| DicomError::Write { path: path_text(&output), reason: error_chain_text(&e) })?;
    partial.commit().map_err(output_error)?;
    Ok(DeidentifiedFile { input: path_text(input), output, sop_instance_uid, counts, warnings })
}

/// The result of de-identifying one object in memory: the new object, what was done, and warnings.
pub type Deidentified = (FileDicomObject<InMemDicomObject>, DeidentifyCounts, Vec<String>);

/// De-identifies an opened file in memory with the default options.
pub fn deidentify_object(file: &DicomFile, uids: &mut UidMap) -> Result<Deidentified, DicomError> {
    deidentify_object_with(file, uids, DeidentifyOptions::default())
}

/// De-identifies an opened file in memory; returns the new object, what was done, and warnings.
pub fn deidentify_object_with(
    file: &DicomFile,
    uids: &mut UidMap,
    options: DeidentifyOptions,
) -> Result<Deidentified, DicomError> {
    let burned_in = file.text(tags::BURNED_IN_ANNOTATION).is_some_and(|v| v.eq_ignore_ascii_case("YES"));
    if burned_in && !options.allow_burned_in_annotation {
        // Writing it would mark Patient Identity Removed = YES over pixels that still show the text.
        return Err(DicomError::BurnedInAnnotation { path: file.label.clone() });
    }
    let mut cleaner = Cleaner { uids, counts: DeidentifyCounts::default(), warnings: Vec::new() };
    let mut dataset = cleaner.clean(&file.object);
    let counts = cleaner.counts;
    let mut warnings: Vec<String> =
        cleaner.warnings.into_iter().map(|warning| format!("{}: {warning}", file.label)).collect();

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
    warnings.extend(pixel_warnings(file));

    // A fresh meta group: the original one may carry a source AE title and the old instance UID.
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(file.transfer_syntax_uid())
        .media_storage_sop_class_uid(sop_class_uid)
        .media_storage_sop_instance_uid(sop_instance_uid)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
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
        Some(yes) if yes.eq_ignore_ascii_case("YES") => vec![format!(
            "{}: Burned In Annotation is YES; identifying text may remain in the pixels, which this tool does not clean \
             (written because burned-in annotation was allowed)",
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
    /// What the caller should hear about (without the file's label).
    warnings: Vec<String>,
}

/// A public attribute stored with VR UN, read as what the dictionary says it is.
enum UnReading {
    /// Not UN, not known to the dictionary, or no reading needed for its action: use the element as it is.
    AsIs,
    /// The element re-read with its dictionary VR (a parsed sequence, or text for a UID or dummy replacement).
    Read(InMemElement),
    /// A sequence whose value could not be parsed: its content is unknown, so it must go.
    UnreadableSequence,
}

/// The dictionary VR of a public tag, when it has one fixed VR.
fn dictionary_vr(tag: Tag) -> Option<VR> {
    StandardDataDictionary.by_tag(tag).and_then(|entry| entry.vr().exact())
}

/// Parses the value of a UN-encoded sequence. PS3.5 6.2.2: whatever the transfer syntax, such a value is the
/// sequence's items in implicit VR little endian (items and the sequence may have undefined length). Wrapped in an
/// implicit VR element header of undefined length and a Sequence Delimitation Item, it reads as that sequence
/// whatever the tag (an implicit VR element of undefined length is a sequence), so also for a tag the dictionary
/// does not know.
fn parse_un_sequence(tag: Tag, bytes: &[u8]) -> Option<DataSetSequence<InMemDicomObject>> {
    let mut wrapped = Vec::with_capacity(bytes.len() + 16);
    wrapped.extend_from_slice(&tag.group().to_le_bytes());
    wrapped.extend_from_slice(&tag.element().to_le_bytes());
    wrapped.extend_from_slice(&u32::MAX.to_le_bytes());
    wrapped.extend_from_slice(bytes);
    wrapped.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    // A corrupt item length must fail here, not make dicom-rs allocate it (see length_guard).
    check_raw_lengths(&wrapped, DataSetEncoding::ImplicitLittle).ok()?;
    let parsed =
        InMemDicomObject::read_dataset_with_ts(wrapped.as_slice(), &IMPLICIT_VR_LITTLE_ENDIAN.erased()).ok()?;
    // Anything besides the one sequence means the bytes were not what a UN sequence holds.
    if parsed.iter().count() != 1 {
        return None;
    }
    match parsed.get(tag)?.value() {
        Value::Sequence(sequence) => Some(sequence.clone()),
        _ => None,
    }
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
            if is_overlay_group(tag) {
                // The table removes Overlay Data; the rest of its group would then be an invalid Overlay Plane
                // (Overlay Data is Type 1) and would keep its free text (Description, Label): all of it goes.
                self.counts.removed += 1;
                continue;
            }
            let sequence = element.vr() == VR::SQ || dictionary_vr(tag) == Some(VR::SQ);
            let action = profile_entry_for(tag).map(|entry| entry.action.resolved_for(tag, sequence));
            let read_element;
            let element = match self.read_un(element, action) {
                UnReading::AsIs => element,
                UnReading::Read(read) => {
                    read_element = read;
                    &read_element
                }
                UnReading::UnreadableSequence => {
                    self.counts.removed += 1;
                    self.warnings.push(format!(
                        "({:04X},{:04X}) is a sequence stored as UN whose value could not be parsed; it was removed",
                        tag.group(),
                        tag.element()
                    ));
                    continue;
                }
            };
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

    /// Reads a public UN element as its dictionary VR where that matters: a sequence always (its items must be
    /// cleaned like any other), text when the action replaces the value (U, D, C); X and Z need no reading.
    fn read_un(&self, element: &InMemElement, action: Option<ProfileAction>) -> UnReading {
        let tag = element.tag();
        if element.vr() != VR::UN {
            return UnReading::AsIs;
        }
        let Some(vr) = dictionary_vr(tag) else {
            // A public tag the dictionary does not know (newer or retired): a value that reads as items is a
            // sequence stored as UN, whose items must be cleaned like any other; other values stay as they are.
            let unknown = StandardDataDictionary.by_tag(tag).is_none();
            let parsed = element.value().to_bytes().ok().filter(|_| unknown).and_then(|b| parse_un_sequence(tag, &b));
            return match parsed {
                Some(sequence) => UnReading::Read(DataElement::new(tag, VR::SQ, sequence)),
                None => UnReading::AsIs,
            };
        };
        if vr == VR::SQ {
            // A UN of undefined length is a sequence already when dicom-rs read it so (an object built in memory:
            // open_dicom gives such elements a defined length first, see un_undefined_length).
            if let Value::Sequence(sequence) = element.value() {
                return UnReading::Read(DataElement::new(tag, VR::SQ, sequence.clone()));
            }
            let parsed = element.value().to_bytes().ok().and_then(|bytes| parse_un_sequence(tag, &bytes));
            return match parsed {
                Some(sequence) => UnReading::Read(DataElement::new(tag, VR::SQ, sequence)),
                None => UnReading::UnreadableSequence,
            };
        }
        let replaced = matches!(action, Some(ProfileAction::U | ProfileAction::D | ProfileAction::C));
        let textual = matches!(
            vr,
            VR::AE
                | VR::AS
                | VR::CS
                | VR::DA
                | VR::DS
                | VR::DT
                | VR::IS
                | VR::LO
                | VR::LT
                | VR::PN
                | VR::SH
                | VR::ST
                | VR::TM
                | VR::UC
                | VR::UI
                | VR::UR
                | VR::UT
        );
        if !(replaced && textual) {
            // A D of another VR gets a UN dummy; X, Z and kept values need no reading.
            return UnReading::AsIs;
        }
        let Ok(bytes) = element.value().to_bytes() else { return UnReading::AsIs };
        let text = String::from_utf8_lossy(&bytes);
        let values: Vec<String> = text.split('\\').map(|v| v.trim_matches(['\0', ' ']).to_owned()).collect();
        UnReading::Read(DataElement::new(tag, vr, PrimitiveValue::Strs(values.into_iter().collect())))
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
        if let Value::Sequence(_) = element.value() {
            // D on a sequence (Content Sequence, Person Identification Code Sequence, Graphic Annotation Sequence):
            // cleaning its items would keep what the table does not list (text values, code values), so the dummy
            // is one empty item: non-empty as D asks, with nothing of the original.
            let dummy = DataSetSequence::new(vec![InMemDicomObject::new_empty()], Length::UNDEFINED);
            return Some(DataElement::new(tag, VR::SQ, dummy));
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
        let mut cleaner = Cleaner { uids: &mut uids, counts: DeidentifyCounts::default(), warnings: Vec::new() };
        let out = cleaner.clean(&dataset);
        let counts = cleaner.counts;
        let text = |obj: &InMemDicomObject, tag| obj.get(tag).map(|e| e.to_str().unwrap().to_string());
        assert_eq!(text(&out, tags::PATIENT_NAME), Some(String::new()));
        assert_eq!(text(&out, tags::INSTITUTION_NAME), Some(String::new())); // X/Z/D, not a sequence: kept empty
        assert_eq!(text(&out, tags::MODALITY), Some("CR".into()));
        assert_eq!(text(&out, tags::PERSON_NAME), Some(DUMMY_TEXT.into()));
        assert!(out.get(Tag(0x0009, 0x0010)).is_none());
        assert!(out.get(tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE).is_none()); // X/Z/D sequence
        let new_study = text(&out, tags::STUDY_INSTANCE_UID).unwrap();
        assert_ne!(new_study, "1.2.3.4");
        // Unlisted sequence kept, its items cleaned, the same UID mapped to the same replacement.
        let items = out.get(tags::DERIVATION_CODE_SEQUENCE).unwrap().items().unwrap();
        assert_eq!(text(&items[0], tags::REFERENCED_SOP_INSTANCE_UID), Some(new_study));
        assert_eq!(text(&items[0], tags::REFERENCED_SOP_CLASS_UID), Some("1.2.840.10008.5.1.4.1.1.1".into()));
        assert_eq!(text(&items[0], tags::PATIENT_NAME), Some(String::new()));
        assert_eq!(counts.private_removed, 1);
        assert_eq!(counts.removed, 1);
        assert_eq!(counts.emptied, 3);
    }
}
