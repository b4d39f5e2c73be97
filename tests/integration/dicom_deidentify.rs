//! PS3.15 Basic Profile de-identification: no protected attribute survives with its original value (real
//! files and a data set holding every attribute of Table E.1-1), UIDs map consistently within an export
//! and differently across exports, and the de-identified files still decode to the same pixels.

use crate::dicom_raw::{
    implicit_element, implicit_item, implicit_sequence, make_file_un_length_undefined, un, write_part10,
};
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{InMemDicomObject, StandardDataDictionary};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use thorax::imaging::dicom::{
    BASIC_PROFILE, DeidentifyOptions, DicomFile, ProfileAction, TagPattern, UidMap, deidentify_file,
    deidentify_file_with, deidentify_object, is_identifying, open_dicom, read_dicom_image,
};

fn shared_dicom_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("shared DICOM data missing at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("dcm"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5);
    files
}

fn value_text(element: &DataElement<InMemDicomObject>) -> Option<String> {
    match element.value() {
        Value::Primitive(PrimitiveValue::Empty) => None,
        Value::Primitive(p) => {
            let text = match element.vr() {
                VR::OB | VR::OW | VR::UN | VR::OF | VR::OD | VR::OL | VR::OV => format!("{:?}", p.to_bytes()),
                _ => p.to_str().trim_matches(['\0', ' ']).to_string(),
            };
            (!text.is_empty()).then_some(text)
        }
        _ => None,
    }
}

/// Every (tag, value) pair at any depth whose tag the profile protects (non-empty values only).
fn protected_pairs(object: &InMemDicomObject, inside_protected: bool, out: &mut Vec<(Tag, String)>) {
    for element in object.iter() {
        let protected = inside_protected || is_identifying(element.tag());
        if let Some(items) = element.items() {
            for item in items {
                protected_pairs(item, protected, out);
            }
        } else if let Some(text) = value_text(element).filter(|_| protected) {
            out.push((element.tag(), text));
        }
    }
}

/// Every (tag, value) pair at any depth.
fn all_pairs(object: &InMemDicomObject, out: &mut HashSet<(Tag, String)>) {
    for element in object.iter() {
        if let Some(items) = element.items() {
            for item in items {
                all_pairs(item, out);
            }
        } else if let Some(text) = value_text(element) {
            out.insert((element.tag(), text));
        }
    }
}

fn all_values(object: &InMemDicomObject, out: &mut HashSet<String>) {
    let mut pairs = HashSet::new();
    all_pairs(object, &mut pairs);
    out.extend(pairs.into_iter().map(|(_, v)| v));
}

fn assert_nothing_survives(original: &InMemDicomObject, output: &InMemDicomObject, name: &str) {
    let mut protected = Vec::new();
    protected_pairs(original, false, &mut protected);
    assert!(!protected.is_empty(), "{name}: nothing to protect?");
    let mut remaining = HashSet::new();
    all_pairs(output, &mut remaining);
    for (tag, value) in &protected {
        assert!(
            !remaining.contains(&(*tag, value.clone())),
            "{name}: ({:04X},{:04X}) kept its original value {value:?}",
            tag.group(),
            tag.element()
        );
    }
    assert!(output.iter().all(|e| e.tag().group() % 2 == 0), "{name}: private tag left");
}

fn text(object: &InMemDicomObject, tag: Tag) -> Option<String> {
    object.get(tag).map(|e| e.to_str().unwrap().trim_matches(['\0', ' ']).to_string())
}

#[test]
fn real_files_lose_every_protected_value_and_keep_their_pixels() {
    let out = tempfile::tempdir().unwrap();
    let mut uids = UidMap::new();
    for input in shared_dicom_files() {
        let name = input.file_name().unwrap().to_string_lossy().to_string();
        let original = open_dicom(&input).unwrap();
        let done = deidentify_file(&input, out.path(), &mut uids).unwrap();
        assert!(done.output.starts_with(out.path()));
        assert!(!done.output.to_string_lossy().contains(&name));
        let result = open_dicom(&done.output).unwrap();
        assert!(result.has_file_meta);
        assert_nothing_survives(&original.object, &result.object, &name);

        // Every original UID of a U attribute is gone from the whole output, meta included.
        let mut output_values = HashSet::new();
        all_values(&result.object, &mut output_values);
        output_values.insert(result.object.meta().media_storage_sop_instance_uid().trim_end_matches('\0').to_string());
        for tag in [tags::SOP_INSTANCE_UID, tags::STUDY_INSTANCE_UID, tags::SERIES_INSTANCE_UID] {
            let old = text(&original.object, tag).unwrap();
            assert!(!output_values.contains(&old), "{name}: UID {old} survived");
            assert!(text(&result.object, tag).unwrap().starts_with("2.25."));
        }
        assert_eq!(
            result.object.meta().media_storage_sop_instance_uid().trim_end_matches('\0'),
            text(&result.object, tags::SOP_INSTANCE_UID).unwrap()
        );
        assert_eq!(result.transfer_syntax_uid(), original.transfer_syntax_uid());
        // The new file meta names the program that wrote it, not the original's writer or the DICOM library.
        assert_eq!(
            result.object.meta().implementation_class_uid().trim_end_matches('\0'),
            "2.25.121321814032585165360290212942503439985"
        );

        // Marked as de-identified by the Basic Profile.
        assert_eq!(text(&result.object, tags::PATIENT_IDENTITY_REMOVED).as_deref(), Some("YES"));
        assert!(text(&result.object, tags::DEIDENTIFICATION_METHOD).unwrap().contains("PS3.15"));
        let code = &result.object.get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE).unwrap().items().unwrap()[0];
        assert_eq!(text(code, tags::CODE_VALUE).as_deref(), Some("113100"));
        assert_eq!(text(code, tags::CODING_SCHEME_DESIGNATOR).as_deref(), Some("DCM"));
        // Type 2 patient attributes that were present stay, empty.
        for tag in [tags::PATIENT_NAME, tags::PATIENT_ID, tags::PATIENT_BIRTH_DATE, tags::PATIENT_SEX] {
            if original.object.get(tag).is_some() {
                assert_eq!(text(&result.object, tag).as_deref(), Some(""), "{name}");
            }
        }

        // Same image after de-identification.
        let before = read_dicom_image(&input).unwrap();
        let after = read_dicom_image(&done.output).unwrap();
        assert_eq!(before.pixels, after.pixels, "{name}");
        assert_eq!(before.window, after.window, "{name}");
        assert_eq!(before.photometric, after.photometric, "{name}");
    }
}

#[test]
fn uids_map_consistently_within_an_export_and_differently_across_exports() {
    let source = shared_dicom_files().into_iter().find(|p| p.ends_with("mr_small_64.dcm")).unwrap();
    let first = open_dicom(&source).unwrap();
    // A second instance of the same study and series (as a scanner would write the next slice).
    let mut second = first.clone();
    second.object.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from("1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5458"),
    ));
    second.label = "second slice".into();

    let mut export = UidMap::new();
    let (a, _, _) = deidentify_object(&first, &mut export).unwrap();
    let (b, _, _) = deidentify_object(&second, &mut export).unwrap();
    for tag in [tags::STUDY_INSTANCE_UID, tags::SERIES_INSTANCE_UID, tags::FRAME_OF_REFERENCE_UID] {
        let original = text(&first.object, tag).unwrap();
        let in_a = text(&a, tag).unwrap();
        assert_eq!(in_a, text(&b, tag).unwrap(), "shared UID mapped differently");
        assert_ne!(in_a, original);
    }
    assert_ne!(text(&a, tags::SOP_INSTANCE_UID), text(&b, tags::SOP_INSTANCE_UID));

    let mut another_export = UidMap::new();
    let (c, _, _) = deidentify_object(&first, &mut another_export).unwrap();
    assert_ne!(text(&a, tags::STUDY_INSTANCE_UID), text(&c, tags::STUDY_INSTANCE_UID), "exports are linkable");
}

/// A plausible original value for an attribute of VR `vr`, unique to `tag`.
fn original_value(tag: Tag, vr: VR) -> Option<PrimitiveValue> {
    let id = format!("{:04X}{:04X}", tag.group(), tag.element());
    Some(match vr {
        VR::AE | VR::CS | VR::LO | VR::SH | VR::ST | VR::LT | VR::UT | VR::UC | VR::PN => {
            PrimitiveValue::from(format!("O{id}"))
        }
        VR::DA => PrimitiveValue::from("20210304"),
        VR::TM => PrimitiveValue::from("123456"),
        VR::DT => PrimitiveValue::from("20210304123456"),
        VR::AS => PrimitiveValue::from("045Y"),
        VR::DS => PrimitiveValue::from("12.5"),
        VR::IS => PrimitiveValue::from("42"),
        VR::UI => PrimitiveValue::from(format!("1.2.826.0.1.{}.{}", tag.group(), tag.element())),
        VR::UR => PrimitiveValue::from(format!("http://example.org/{id}")),
        VR::US => PrimitiveValue::from(7u16),
        VR::SS => PrimitiveValue::from(7i16),
        VR::UL => PrimitiveValue::from(7u32),
        VR::SL => PrimitiveValue::from(7i32),
        VR::FL => PrimitiveValue::from(7.5f32),
        VR::FD => PrimitiveValue::from(7.5f64),
        VR::OB | VR::UN | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV => PrimitiveValue::U8(vec![1u8, 2, 3, 4].into()),
        _ => return None,
    })
}

#[test]
fn every_attribute_of_the_profile_table_is_handled_by_its_action() {
    let nested_uid = "1.2.826.0.1.999.1";
    let nested_item = || {
        InMemDicomObject::from_element_iter([
            DataElement::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from("Nested^Name")),
            DataElement::new(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from(nested_uid)),
        ])
    };
    let mut elements =
        vec![DataElement::new(tags::SOP_CLASS_UID, VR::UI, PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.7"))];
    let mut covered = Vec::new();
    for entry in BASIC_PROFILE {
        let TagPattern::Exact { group, element } = entry.pattern else { continue };
        let tag = Tag(group, element);
        let vr = StandardDataDictionary
            .by_tag(tag)
            .map(|e| e.vr().relaxed())
            .unwrap_or_else(|| panic!("{} ({group:04X},{element:04X}) not in the dictionary", entry.name));
        if vr == VR::SQ {
            elements.push(DataElement::new(tag, VR::SQ, DataSetSequence::new(vec![nested_item()], Length::UNDEFINED)));
        } else if let Some(value) = original_value(tag, vr) {
            elements.push(DataElement::new(tag, vr, value));
        } else {
            continue; // AT only
        }
        covered.push((tag, entry.action.resolved_for(tag, vr == VR::SQ), vr));
    }
    assert!(covered.len() >= 400, "only {} rows exercised", covered.len());
    elements.push(DataElement::new(Tag(0x6000, 0x3000), VR::OW, PrimitiveValue::U8(vec![9u8, 9].into())));
    elements.push(DataElement::new(Tag(0x5000, 0x0010), VR::US, PrimitiveValue::from(3u16)));
    elements.push(DataElement::new(Tag(0x0029, 0x0010), VR::LO, PrimitiveValue::from("VENDOR")));
    elements.push(DataElement::new(Tag(0x0029, 0x1001), VR::LO, PrimitiveValue::from("serial 123")));
    let dataset = InMemDicomObject::from_element_iter(elements);
    let object = dataset.clone().with_meta(FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1")).unwrap();
    let file = DicomFile { label: "every attribute".into(), object, has_file_meta: true };

    let mut uids = UidMap::new();
    let (output, counts, _) = deidentify_object(&file, &mut uids).unwrap();
    assert_nothing_survives(&dataset, &output, "every attribute");
    for (tag, action, vr) in covered {
        let name = format!("({:04X},{:04X}) {vr:?}", tag.group(), tag.element());
        let element = output.get(tag);
        match action {
            ProfileAction::X => assert!(element.is_none(), "{name} should be removed"),
            ProfileAction::Z => {
                let element = element.unwrap_or_else(|| panic!("{name} should be present, empty"));
                match element.items() {
                    Some(items) => assert!(items.is_empty(), "{name}"),
                    None => assert!(value_text(element).is_none(), "{name} not empty"),
                }
            }
            ProfileAction::D => {
                let element = element.unwrap_or_else(|| panic!("{name} should be replaced"));
                if let Some(items) = element.items() {
                    // A D sequence keeps nothing of its items: one empty item.
                    assert_eq!(items.len(), 1, "{name}");
                    assert_eq!(items[0].iter().count(), 0, "{name}: the dummy item must be empty");
                } else {
                    assert!(value_text(element).is_some(), "{name}: D must be non-empty");
                }
            }
            ProfileAction::U => {
                let value = value_text(element.unwrap_or_else(|| panic!("{name} missing"))).unwrap();
                assert!(value.starts_with("2.25."), "{name}: {value}");
            }
            other => panic!("{name}: unexpected resolved action {other:?}"),
        }
    }
    assert!(output.get(Tag(0x6000, 0x3000)).is_none());
    assert!(output.get(Tag(0x5000, 0x0010)).is_none());
    assert_eq!(counts.private_removed, 2);
    assert!(counts.removed > 250 && counts.emptied > 30 && counts.replaced_with_dummy > 80, "{counts:?}");
}

#[test]
fn public_sequences_and_attributes_stored_as_un_get_the_profile() {
    let secret_uid = "1.2.826.0.1.999.77";
    // Procedure Code Sequence as an unaware archive writes it: VR UN, items in implicit VR little endian.
    let nested = implicit_item(&implicit_element(Tag(0x0010, 0x1000), b"SECRETOTHERID"), true);
    let first = [
        implicit_element(tags::CODE_VALUE, b"P1"),
        implicit_element(tags::INSTITUTION_NAME, b"Secret Hospital"),
        implicit_element(tags::REFERENCED_SOP_INSTANCE_UID, secret_uid.as_bytes()),
        implicit_element(tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE, &nested),
        implicit_element(tags::PATIENT_NAME, b"Secret^Name"),
    ]
    .concat();
    let second = implicit_element(tags::PERSON_NAME, b"Secret^Doctor");
    let procedure = [implicit_item(&first, true), implicit_item(&second, false)].concat();
    let dir = tempfile::tempdir().unwrap();
    let input = write_part10(
        dir.path(),
        "un.dcm",
        vec![
            DataElement::new(tags::SOP_CLASS_UID, VR::UI, PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.7")),
            DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from("1.2.826.0.1.999.3")),
            un(tags::PROCEDURE_CODE_SEQUENCE, procedure),
            // Not parseable as items: cannot be cleaned, so it must go.
            un(tags::PERFORMED_PROTOCOL_CODE_SEQUENCE, b"Secret protocol text".to_vec()),
            // Public non-sequence attributes stored as UN get their table action too.
            un(tags::STUDY_INSTANCE_UID, secret_uid.as_bytes().to_vec()),
            un(tags::ACCESSION_NUMBER, b"SECRETACC1".to_vec()),
            un(tags::STATION_NAME, b"SECRETSTATION".to_vec()),
            un(tags::VERIFYING_ORGANIZATION, b"Secret Org".to_vec()),
        ],
    );
    assert_eq!(open_dicom(&input).unwrap().object.get(tags::PROCEDURE_CODE_SEQUENCE).unwrap().vr(), VR::UN);

    let out = tempfile::tempdir().unwrap();
    let done = deidentify_file(&input, out.path(), &mut UidMap::new()).unwrap();
    let result = open_dicom(&done.output).unwrap().object;
    let mut values = HashSet::new();
    all_values(&result, &mut values);
    for value in &values {
        assert!(!value.contains("Secret") && !value.contains("SECRET"), "original value kept: {value}");
    }
    assert!(!values.contains(secret_uid));
    let raw = std::fs::read(&done.output).unwrap();
    assert!(!raw.windows(6).any(|w| w == b"Secret" || w == b"SECRET"), "original text in the written bytes");

    let procedure = result.get(tags::PROCEDURE_CODE_SEQUENCE).unwrap();
    assert_eq!(procedure.vr(), VR::SQ);
    let items = procedure.items().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(text(&items[0], tags::CODE_VALUE).as_deref(), Some("P1"));
    assert_eq!(text(&items[0], tags::PATIENT_NAME).as_deref(), Some(""));
    let new_study = text(&result, tags::STUDY_INSTANCE_UID).unwrap();
    assert!(new_study.starts_with("2.25."), "{new_study}");
    assert_eq!(text(&items[0], tags::REFERENCED_SOP_INSTANCE_UID), Some(new_study), "one UID, one replacement");
    let purpose = items[0].get(tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE).unwrap().items().unwrap();
    assert!(purpose[0].get(Tag(0x0010, 0x1000)).is_none());
    assert_eq!(text(&items[1], tags::PERSON_NAME).as_deref(), Some("ANONYMIZED"));
    assert_eq!(result.get(tags::VERIFYING_ORGANIZATION).unwrap().vr(), VR::LO);

    assert!(result.get(tags::PERFORMED_PROTOCOL_CODE_SEQUENCE).is_none());
    assert!(result.get(tags::STATION_NAME).map(|e| value_text(e).is_none()).unwrap_or(true));
    assert!(
        done.warnings.iter().any(|w| w.contains("(0040,0260)") && w.contains("UN") && w.contains("removed")),
        "{:?}",
        done.warnings
    );
}

/// Every text an undefined-length UN test file hides; none may reach a de-identified file.
const HIDDEN: [&[u8]; 2] = [b"Secret", b"SECRET"];

#[test]
fn undefined_length_un_sequences_are_read_and_cleaned_private_ones_removed() {
    // A private sequence from an archive that did not know it: items of defined and undefined length, a nested
    // sequence of undefined length inside the first.
    let nested = implicit_item(&implicit_element(Tag(0x0010, 0x1000), b"SECRETNESTED"), false);
    let private_first =
        [implicit_element(tags::PATIENT_NAME, b"Secret^Private"), implicit_sequence(Tag(0x0009, 0x1012), &nested)]
            .concat();
    let private_second = implicit_element(tags::INSTITUTION_NAME, b"Secret Private Hospital");
    let private = [implicit_item(&private_first, true), implicit_item(&private_second, false)].concat();
    // A public sequence stored the same way: the profile must reach into its items.
    let purpose = implicit_item(
        &[implicit_element(tags::CODE_VALUE, b"R1"), implicit_element(Tag(0x0010, 0x1000), b"SECRETOTHERID")].concat(),
        false,
    );
    let procedure_first = [
        implicit_element(tags::CODE_VALUE, b"P1"),
        implicit_element(tags::INSTITUTION_NAME, b"Secret Hospital"),
        implicit_sequence(tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE, &purpose),
        implicit_element(tags::PATIENT_NAME, b"Secret^Name"),
    ]
    .concat();
    let procedure_second = implicit_element(tags::PERSON_NAME, b"Secret^Doctor");
    let procedure = [implicit_item(&procedure_first, true), implicit_item(&procedure_second, false)].concat();
    // And one inside an item of an ordinary (explicit VR) sequence.
    let inner = implicit_item(&implicit_element(tags::PATIENT_NAME, b"Secret^Inner"), false);
    let derivation = InMemDicomObject::from_element_iter([
        DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from("D1")),
        un(tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE, inner),
    ]);
    // And a public sequence the dictionary does not know (a newer attribute): its items are cleaned too.
    let unknown = Tag(0x0020, 0xFFF0);
    assert!(StandardDataDictionary.by_tag(unknown).is_none());
    let unknown_items = implicit_item(&implicit_element(tags::PATIENT_NAME, b"Secret^Unknown"), false);
    let inputs = tempfile::tempdir().unwrap();
    let input = write_part10(
        inputs.path(),
        "un_undefined.dcm",
        vec![
            DataElement::new(tags::SOP_CLASS_UID, VR::UI, PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.7")),
            DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from("1.2.826.0.1.999.3")),
            DataElement::new(
                tags::DERIVATION_CODE_SEQUENCE,
                VR::SQ,
                DataSetSequence::new(vec![derivation], Length::UNDEFINED),
            ),
            un(tags::PROCEDURE_CODE_SEQUENCE, procedure),
            DataElement::new(Tag(0x0009, 0x0010), VR::LO, PrimitiveValue::from("ACME ARCHIVE")),
            un(Tag(0x0009, 0x1010), private),
            un(unknown, unknown_items),
        ],
    );
    make_file_un_length_undefined(
        &input,
        &[tags::PROCEDURE_CODE_SEQUENCE, Tag(0x0009, 0x1010), tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE, unknown],
    );
    let original = open_dicom(&input).unwrap().object;
    assert_eq!(original.get(Tag(0x0009, 0x1010)).unwrap().vr(), VR::UN);

    let out = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"))
        .args(["dicom", "deidentify"])
        .arg(&input)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let written: Vec<PathBuf> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(written.len(), 1);
    let raw = std::fs::read(&written[0]).unwrap();
    for hidden in HIDDEN {
        assert!(!raw.windows(hidden.len()).any(|w| w == hidden), "original text in the written bytes");
    }
    let result = open_dicom(&written[0]).unwrap().object;
    assert!(result.iter().all(|e| e.tag().group() % 2 == 0), "private attribute left");

    let procedure = result.get(tags::PROCEDURE_CODE_SEQUENCE).unwrap();
    assert_eq!(procedure.vr(), VR::SQ);
    let items = procedure.items().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(text(&items[0], tags::CODE_VALUE).as_deref(), Some("P1"));
    assert_eq!(text(&items[0], tags::PATIENT_NAME).as_deref(), Some(""));
    let purpose = items[0].get(tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE).unwrap().items().unwrap();
    assert_eq!(text(&purpose[0], tags::CODE_VALUE).as_deref(), Some("R1"));
    assert!(purpose[0].get(Tag(0x0010, 0x1000)).is_none());
    assert_eq!(text(&items[1], tags::PERSON_NAME).as_deref(), Some("ANONYMIZED"));
    let derivation = &result.get(tags::DERIVATION_CODE_SEQUENCE).unwrap().items().unwrap()[0];
    assert_eq!(text(derivation, tags::CODE_VALUE).as_deref(), Some("D1"));
    let inner = derivation.get(tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE).unwrap().items().unwrap();
    assert_eq!(text(&inner[0], tags::PATIENT_NAME).as_deref(), Some(""));
    let unknown = result.get(unknown).unwrap().items().unwrap();
    assert_eq!(text(&unknown[0], tags::PATIENT_NAME).as_deref(), Some(""));
}

fn with_burned_in(source: &Path, dir: &Path, name: &str) -> PathBuf {
    let mut file = open_dicom(source).unwrap();
    file.object.put(DataElement::new(tags::BURNED_IN_ANNOTATION, VR::CS, PrimitiveValue::from("YES")));
    file.object.put(DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from("1.2.826.0.1.999.5")));
    file.object.update_meta(|meta| meta.media_storage_sop_instance_uid = "1.2.826.0.1.999.5".into());
    let path = dir.join(name);
    file.object.write_to_file(&path).unwrap();
    path
}

#[test]
fn burned_in_annotation_is_refused_unless_allowed() {
    use thorax::cli::dicom::{DicomCommand, run};
    let source = shared_dicom_files().into_iter().find(|p| p.ends_with("chest_cr_pa_siim_nih.dcm")).unwrap();
    let inputs = tempfile::tempdir().unwrap();
    std::fs::copy(&source, inputs.path().join("a_plain.dcm")).unwrap();
    let burned = with_burned_in(&source, inputs.path(), "b_burned.dcm");

    let error = deidentify_file(&burned, inputs.path(), &mut UidMap::new()).unwrap_err().to_string();
    assert!(error.contains("b_burned.dcm") && error.contains("Burned In Annotation (0028,0301) is YES"), "{error}");
    assert!(error.contains("--allow-burned-in-annotation"), "{error}");

    // Among several files: the others are written, the run fails.
    let out = tempfile::tempdir().unwrap();
    let refused = out.path().join("refused");
    let deidentify = |out: &Path, allow: bool| {
        run(DicomCommand::Deidentify {
            inputs: vec![inputs.path().to_path_buf()],
            out: out.to_path_buf(),
            allow_burned_in_annotation: allow,
            json: true,
        })
    };
    let error = deidentify(&refused, false).unwrap_err();
    assert!(format!("{error:#}").contains("1 of 2 input files could not be de-identified"), "{error:#}");
    assert_eq!(std::fs::read_dir(&refused).unwrap().count(), 1);

    // Allowed: written, with the warning kept.
    let allowed = out.path().join("allowed");
    deidentify(&allowed, true).unwrap();
    assert_eq!(std::fs::read_dir(&allowed).unwrap().count(), 2);
    let options = DeidentifyOptions { allow_burned_in_annotation: true };
    let done = deidentify_file_with(&burned, out.path(), &mut UidMap::new(), options).unwrap();
    assert!(done.warnings.iter().any(|w| w.contains("Burned In Annotation is YES")), "{:?}", done.warnings);
}

#[test]
fn dummy_sequences_keep_nothing_type_2_sequences_stay_and_overlay_groups_go() {
    let code_item = |value: &str| {
        InMemDicomObject::from_element_iter([
            DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(value)),
            DataElement::new(tags::TEXT_VALUE, VR::UT, PrimitiveValue::from("Secret text about Jane")),
        ])
    };
    let sequence =
        |tag, value| DataElement::new(tag, VR::SQ, DataSetSequence::new(vec![code_item(value)], Length::UNDEFINED));
    let mut elements = vec![
        DataElement::new(tags::SOP_CLASS_UID, VR::UI, PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.1.1")),
        sequence(tags::CONTENT_SEQUENCE, "SECRET1"),
        sequence(tags::PERSON_IDENTIFICATION_CODE_SEQUENCE, "SECRET2"),
        sequence(tags::GRAPHIC_ANNOTATION_SEQUENCE, "SECRET3"),
        sequence(tags::ACQUISITION_CONTEXT_SEQUENCE, "SECRET4"),
        DataElement::new(tags::ACQUISITION_CONTEXT_DESCRIPTION, VR::ST, PrimitiveValue::from("Secret context")),
        DataElement::new(tags::SECONDARY_CAPTURE_DEVICE_ID, VR::LO, PrimitiveValue::from("SECRETDEVICE")),
        DataElement::new(tags::UNFORMATTED_TEXT_VALUE, VR::ST, PrimitiveValue::from("Secret unformatted")),
    ];
    for group in [0x6000u16, 0x6002] {
        elements.extend([
            DataElement::new(Tag(group, 0x0010), VR::US, PrimitiveValue::from(4u16)),
            DataElement::new(Tag(group, 0x0011), VR::US, PrimitiveValue::from(4u16)),
            DataElement::new(Tag(group, 0x0040), VR::CS, PrimitiveValue::from("G")),
            DataElement::new(Tag(group, 0x0022), VR::LO, PrimitiveValue::from("Secret overlay description")),
            DataElement::new(Tag(group, 0x1500), VR::LO, PrimitiveValue::from("Secret overlay label")),
        ]);
    }
    elements.push(DataElement::new(Tag(0x6000, 0x3000), VR::OW, PrimitiveValue::U8(vec![1u8, 0].into())));
    let dataset = InMemDicomObject::from_element_iter(elements);
    let object = dataset.with_meta(FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1")).unwrap();
    let file = DicomFile { label: "dx".into(), object, has_file_meta: true };
    let (output, _, _) = deidentify_object(&file, &mut UidMap::new()).unwrap();

    let mut values = HashSet::new();
    all_values(&output, &mut values);
    for value in &values {
        assert!(!value.contains("Secret") && !value.contains("SECRET"), "original value kept: {value}");
    }
    // D: one empty item (D asks for a non-empty value; nothing of the original items remains).
    for tag in [tags::CONTENT_SEQUENCE, tags::PERSON_IDENTIFICATION_CODE_SEQUENCE, tags::GRAPHIC_ANNOTATION_SEQUENCE] {
        let items = output.get(tag).unwrap().items().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].iter().count(), 0);
    }
    // X/Z: Type 2 in DX, so present and empty rather than removed.
    let context = output.get(tags::ACQUISITION_CONTEXT_SEQUENCE).expect("Acquisition Context Sequence kept");
    assert_eq!(context.items().map(|items| items.len()), Some(0));
    assert!(output.get(tags::ACQUISITION_CONTEXT_DESCRIPTION).is_none());
    assert!(output.get(tags::SECONDARY_CAPTURE_DEVICE_ID).is_none());
    assert_eq!(text(&output, tags::UNFORMATTED_TEXT_VALUE).as_deref(), Some("ANONYMIZED"));
    // Overlay groups go whole: with Overlay Data removed the rest would be an invalid Overlay Plane.
    assert!(output.iter().all(|e| !(0x6000..=0x601E).contains(&e.tag().group())), "overlay attribute left");
}

#[test]
fn deidentify_refuses_an_output_folder_in_an_input_folder_and_notes_skipped_subfolders() {
    let source = shared_dicom_files().into_iter().find(|p| p.ends_with("ct_small_128.dcm")).unwrap();
    let inputs = tempfile::tempdir().unwrap();
    std::fs::copy(&source, inputs.path().join("ct.dcm")).unwrap();
    std::fs::create_dir(inputs.path().join("older")).unwrap();
    std::fs::copy(&source, inputs.path().join("older").join("ct_copy.dcm")).unwrap();
    let thorax = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_thorax")).args(args).output().unwrap()
    };
    let folder = inputs.path().as_os_str();

    for out in [inputs.path().to_path_buf(), inputs.path().join("."), inputs.path().join("deid")] {
        let output = thorax(&["dicom".as_ref(), "deidentify".as_ref(), folder, "--out".as_ref(), out.as_os_str()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{}", out.display());
        assert!(stderr.contains("mixed with the originals"), "{stderr}");
    }
    assert_eq!(std::fs::read_dir(inputs.path()).unwrap().count(), 2, "nothing written into the input folder");

    let out = tempfile::tempdir().unwrap();
    let text_out = out.path().join("text");
    let output = thorax(&["dicom".as_ref(), "deidentify".as_ref(), folder, "--out".as_ref(), text_out.as_os_str()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("skipped subfolder") && stderr.contains("older"), "{stderr}");
    assert_eq!(std::fs::read_dir(&text_out).unwrap().count(), 1);

    let json_out = out.path().join("json");
    let output = thorax(&[
        "dicom".as_ref(),
        "deidentify".as_ref(),
        folder,
        "--out".as_ref(),
        json_out.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let skipped = report["skipped_subfolders"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].as_str().unwrap().ends_with("older"), "{skipped:?}");
}

#[test]
fn deidentify_passes_over_the_temporary_file_of_a_killed_run() {
    let source = shared_dicom_files().into_iter().find(|p| p.ends_with("ct_small_128.dcm")).unwrap();
    let inputs = tempfile::tempdir().unwrap();
    std::fs::copy(&source, inputs.path().join("ct.dcm")).unwrap();
    // What a run killed mid-write leaves beside its output (src/atomic_file.rs): half a file under a hidden name.
    let bytes = std::fs::read(&source).unwrap();
    std::fs::write(inputs.path().join(".ct2.dcm.Ab12Cd.partial"), &bytes[..bytes.len() / 2]).unwrap();
    let out = tempfile::tempdir().unwrap();
    let deid = out.path().join("deid");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"))
        .args(["dicom", "deidentify"])
        .arg(inputs.path())
        .arg("--out")
        .arg(&deid)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("partial"), "{stderr}");
    let written: Vec<_> = std::fs::read_dir(&deid).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(written.len(), 1, "{written:?}");
}
