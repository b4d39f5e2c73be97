//! Export of artificial images: Secondary Capture (read back by our reader; the committed fixture was also
//! read back by pydicom, see tools/make_dicom_fixtures.py check-sc) and PNG with provenance; and the
//! `thorax dicom` subcommands end to end.

use dicom_dictionary_std::tags;
use std::path::{Path, PathBuf};
use thorax::cli::dicom::{DicomCommand, run};
use thorax::imaging::dicom::{
    GrayImage, GraySamples, Photometric, Provenance, SYNTHETIC_SERIES_DESCRIPTION, open_dicom, read_dicom_image,
    read_png_with_provenance, write_png_with_provenance, write_secondary_capture,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom").join(name)
}

fn provenance() -> Provenance {
    Provenance::new(&"c3".repeat(32), 20200917, "Atelectasis=0,Cardiomegaly=1,Effusion=1").unwrap()
}

fn text(file: &thorax::imaging::dicom::DicomFile, tag: dicom_core::Tag) -> Option<String> {
    file.object.get(tag).map(|e| e.to_str().unwrap().trim_matches(['\0', ' ']).to_string())
}

#[test]
fn secondary_capture_round_trips_8_and_16_bit() {
    let dir = tempfile::tempdir().unwrap();
    let images = [
        GrayImage::new(5, 3, GraySamples::U8((0..15).map(|v| v * 17).collect())).unwrap(),
        GrayImage::new(4, 2, GraySamples::U16(vec![0, 1, 1000, 4095, 30000, 65535, 7, 8])).unwrap(),
    ];
    let mut seen_uids = std::collections::HashSet::new();
    for (index, image) in images.iter().enumerate() {
        let path = dir.path().join(format!("sc{index}.dcm"));
        let info = write_secondary_capture(&path, image, &provenance()).unwrap();
        let decoded = read_dicom_image(&path).unwrap();
        assert_eq!((decoded.width, decoded.height), (image.width, image.height));
        assert_eq!(decoded.photometric, Photometric::Monochrome2);
        let expected: Vec<f32> = match &image.samples {
            GraySamples::U8(v) => v.iter().map(|&s| f32::from(s)).collect(),
            GraySamples::U16(v) => v.iter().map(|&s| f32::from(s)).collect(),
        };
        assert_eq!(decoded.pixels, expected);
        assert_eq!(decoded.bits_stored, image.bits_per_sample());
        // The stored window is the identity (PS3.3 C.11.2.1.2.1): shown, and analysed, as the PNG was.
        let bits = u32::from(image.bits_per_sample());
        assert_eq!(
            decoded.window.map(|w| (w.center, w.width)),
            Some((f64::from(1 << (bits - 1)), f64::from(1 << bits)))
        );
        let rendered = thorax::imaging::dicom::render_display_u8(&decoded, None);
        if let GraySamples::U8(v) = &image.samples {
            assert_eq!(&rendered, v, "the default rendering is the PNG's values");
        }
        let as_radiograph = thorax::imaging::load_radiograph(&path).unwrap();
        let full = if bits == 8 { 255.0 } else { 65535.0 };
        assert_eq!(as_radiograph.image.nominal_range(), (0.0, full), "the PNG's range, not the data's");

        let file = open_dicom(&path).unwrap();
        assert!(file.has_file_meta);
        assert_eq!(text(&file, tags::SOP_CLASS_UID).as_deref(), Some("1.2.840.10008.5.1.4.1.1.7"));
        assert_eq!(text(&file, tags::IMAGE_TYPE).as_deref(), Some("DERIVED\\SECONDARY"));
        assert_eq!(text(&file, tags::CONVERSION_TYPE).as_deref(), Some("SYN"));
        assert_eq!(text(&file, tags::SERIES_DESCRIPTION).as_deref(), Some(SYNTHETIC_SERIES_DESCRIPTION));
        assert!(SYNTHETIC_SERIES_DESCRIPTION.contains("SYNTHETIC"));
        assert_eq!(text(&file, tags::PATIENT_IDENTITY_REMOVED).as_deref(), Some("YES"));
        // Generated, not de-identified: the method says so, and no profile code (CID 7050) claims a profile was applied.
        assert_eq!(
            text(&file, tags::DEIDENTIFICATION_METHOD).as_deref(),
            Some("Synthetic image: generated, no patient data")
        );
        assert!(file.object.get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE).is_none());
        // Patient module: only the Type 2 attributes. A PACS's patient list says "synthetic", one patient per
        // export; the rest are empty.
        let patient: Vec<_> = file.object.iter().filter(|e| e.header().tag.group() == 0x0010).collect();
        assert_eq!(patient.len(), 4);
        assert_eq!(text(&file, tags::PATIENT_NAME).as_deref(), Some("SYNTHETIC^NOT A REAL PATIENT"));
        let patient_id = text(&file, tags::PATIENT_ID).unwrap();
        assert!(patient_id.starts_with("SYNTHETIC-") && info.study_instance_uid.ends_with(&patient_id[10..]));
        assert_eq!(text(&file, tags::PATIENT_BIRTH_DATE).as_deref(), Some(""));
        assert_eq!(text(&file, tags::PATIENT_SEX).as_deref(), Some(""));
        // Listed in a DICOMDIR: the date it was made, and a Study ID.
        let study_date = text(&file, tags::STUDY_DATE).unwrap();
        assert!(study_date.len() == 8 && study_date.as_str() >= "20260101", "{study_date}");
        assert_eq!(text(&file, tags::STUDY_TIME).map(|t| t.len()), Some(6));
        assert_eq!(text(&file, tags::STUDY_ID).as_deref(), Some("SYNTHETIC"));
        // A chest image, so validators can check Laterality's condition and `classify` raises no domain doubt.
        assert_eq!(text(&file, tags::BODY_PART_EXAMINED).as_deref(), Some("CHEST"));
        let details = thorax::imaging::load_radiograph(&path).unwrap().dicom.unwrap();
        assert_eq!(thorax::imaging::chest_domain::not_a_chest_radiograph(&details), None);
        // The implementation that wrote it is named: ours, not the DICOM library's.
        assert_eq!(
            file.object.meta().implementation_class_uid().trim_end_matches('\0'),
            "2.25.121321814032585165360290212942503439985"
        );
        // Provenance: human sentence and machine-readable JSON.
        let derivation = text(&file, tags::DERIVATION_DESCRIPTION).unwrap();
        assert!(derivation.contains(&"c3".repeat(32)) && derivation.contains("seed 20200917"), "{derivation}");
        let comments: Provenance = serde_json::from_str(&text(&file, tags::IMAGE_COMMENTS).unwrap()).unwrap();
        assert_eq!(comments, provenance());
        // Fresh, distinct 2.25 UIDs, consistent with the meta group.
        for uid in [&info.sop_instance_uid, &info.study_instance_uid, &info.series_instance_uid] {
            assert!(uid.starts_with("2.25.") && uid.len() <= 64, "{uid}");
            assert!(seen_uids.insert(uid.clone()), "UID reused: {uid}");
        }
        assert_eq!(text(&file, tags::SOP_INSTANCE_UID).as_deref(), Some(info.sop_instance_uid.as_str()));
        assert_eq!(file.object.meta().media_storage_sop_instance_uid().trim_end_matches('\0'), info.sop_instance_uid);
    }
}

#[test]
fn committed_secondary_capture_was_read_back_by_pydicom() {
    let check: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("synthetic_sc_pydicom.json")).unwrap()).unwrap();
    let file = open_dicom(&fixture("synthetic_sc.dcm")).unwrap();
    // The pydicom report is about this very file.
    assert_eq!(check["sop_instance_uid"].as_str(), text(&file, tags::SOP_INSTANCE_UID).as_deref());
    assert_eq!(check["pixels_equal_source_png"], true);
    assert_eq!(check["uids_are_2_25"], true);
    assert_eq!(check["image_type"], serde_json::json!(["DERIVED", "SECONDARY"]));
    assert_eq!(check["deidentification_method"], "Synthetic image: generated, no patient data");
    assert_eq!(check["deidentification_codes"], serde_json::json!([]));
    assert_eq!(check["patient_attributes"]["PatientName"], "SYNTHETIC^NOT A REAL PATIENT");
    assert_eq!(check["patient_identity_removed"], "YES");
    // And our reader agrees with the PNG it came from.
    let (source, _) = read_png_with_provenance(&fixture("sc_source.png")).unwrap();
    let decoded = read_dicom_image(&fixture("synthetic_sc.dcm")).unwrap();
    let GraySamples::U8(expected) = source.samples else { panic!("8-bit source") };
    assert_eq!(decoded.pixels, expected.iter().map(|&v| f32::from(v)).collect::<Vec<_>>());
}

#[test]
fn cli_export_sc_takes_provenance_from_png_chunks_or_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let image = GrayImage::new(8, 8, GraySamples::U8((0..64).collect())).unwrap();
    let tagged = dir.path().join("tagged.png");
    write_png_with_provenance(&tagged, &image, &provenance()).unwrap();
    let out = dir.path().join("from_chunks.dcm");
    run(DicomCommand::ExportSc {
        png: tagged,
        out: out.clone(),
        model_sha256: None,
        seed: None,
        labels: None,
        overwrite: false,
        json: true,
    })
    .unwrap();
    let file = open_dicom(&out).unwrap();
    assert!(text(&file, tags::DERIVATION_DESCRIPTION).unwrap().contains("seed 20200917"));

    // A value the PNG records may be repeated, never contradicted.
    let recorded = provenance();
    let export = |seed: Option<u64>, labels: Option<&str>| {
        run(DicomCommand::ExportSc {
            png: dir.path().join("tagged.png"),
            out: dir.path().join("again.dcm"),
            model_sha256: Some(recorded.model_sha256.to_ascii_uppercase()),
            seed,
            labels: labels.map(str::to_owned),
            // Each call exports the same PNG to the same file again.
            overwrite: true,
            json: true,
        })
    };
    export(Some(recorded.seed), Some(&recorded.labels)).unwrap();
    export(None, Some("Effusion=1, Cardiomegaly=1")).unwrap();
    let error = format!("{:#}", export(Some(99), None).unwrap_err());
    assert!(error.contains("--seed 99 contradicts the PNG's thorax.seed chunk (20200917)"), "{error}");
    let error = format!("{:#}", export(None, Some("Hernia=1")).unwrap_err());
    assert!(error.contains("--labels \"Hernia=1\" contradicts"), "{error}");

    let plain = fixture("sc_source.png");
    let error = run(DicomCommand::ExportSc {
        png: plain.clone(),
        out: dir.path().join("nope.dcm"),
        model_sha256: None,
        seed: Some(1),
        labels: Some(String::new()),
        overwrite: false,
        json: false,
    })
    .unwrap_err();
    assert!(format!("{error:#}").contains("--model-sha256 is required"), "{error:#}");
    let error = run(DicomCommand::ExportSc {
        png: plain,
        out: dir.path().join("bad.dcm"),
        model_sha256: Some("xyz".into()),
        seed: Some(1),
        labels: Some("Mass=1".into()),
        overwrite: false,
        json: false,
    })
    .unwrap_err();
    assert!(format!("{error:#}").contains("not 64 hexadecimal digits"), "{error:#}");
}

#[test]
fn cli_info_render_and_deidentify_run_on_the_shared_files() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real");
    let out = tempfile::tempdir().unwrap();
    for name in ["chest_cr_pa_mono1_10bit_nometa.dcm", "chest_cr_pa_siim_nih.dcm"] {
        run(DicomCommand::Info { file: data.join(name), json: true }).unwrap();
        let png = out.path().join(format!("{name}.png"));
        run(DicomCommand::Render {
            file: data.join(name),
            out: png.clone(),
            window_center: None,
            window_width: None,
            overwrite: false,
            json: true,
        })
        .unwrap();
        let (rendered, provenance) = read_png_with_provenance(&png).unwrap();
        assert!(provenance.is_none(), "a real image must not claim generator provenance");
        assert_eq!(rendered.bits_per_sample(), 8);
    }
    // Rendering never replaces its DICOM, nor writes PNG bytes under another format's name.
    let copy = out.path().join("mine.dcm");
    std::fs::copy(data.join("chest_cr_pa_siim_nih.dcm"), &copy).unwrap();
    let render_to = |to: PathBuf| DicomCommand::Render {
        file: copy.clone(),
        out: to,
        window_center: None,
        window_width: None,
        overwrite: false,
        json: false,
    };
    let error = run(render_to(copy.clone())).unwrap_err().to_string();
    assert!(error.contains("writes PNG"), "{error}");
    let error = run(render_to(out.path().join("x.jpg"))).unwrap_err().to_string();
    assert!(error.contains("writes PNG"), "{error}");
    let same_as_input = out.path().join("mine.png");
    std::fs::rename(&copy, &same_as_input).unwrap();
    let error = run(DicomCommand::Render {
        file: same_as_input.clone(),
        out: out.path().join(".").join("mine.png"),
        window_center: None,
        window_width: None,
        overwrite: false,
        json: false,
    })
    .unwrap_err()
    .to_string();
    assert!(error.contains("is the DICOM file rendered"), "{error}");
    assert!(thorax::imaging::dicom::read_dicom_image(&same_as_input).is_ok(), "the input is untouched");

    let error = run(DicomCommand::Info { file: fixture("broken/missing_pixel_data.dcm"), json: true }).unwrap_err();
    assert!(format!("{error:#}").contains("no Pixel Data"), "{error:#}");

    // A folder: non-DICOM files in it (INDEX.csv, SOURCES.md) are skipped, the five images written.
    let deid = out.path().join("deid");
    run(DicomCommand::Deidentify {
        inputs: vec![data.clone()],
        out: deid.clone(),
        allow_burned_in_annotation: false,
        json: true,
    })
    .unwrap();
    assert_eq!(std::fs::read_dir(&deid).unwrap().count(), 5);
    // A named non-DICOM file is a failure.
    let error = run(DicomCommand::Deidentify {
        inputs: vec![data.join("INDEX.csv")],
        out: deid,
        allow_burned_in_annotation: false,
        json: false,
    })
    .unwrap_err();
    assert!(format!("{error:#}").contains("could not be de-identified"), "{error:#}");

    // Two copies of one instance map to one new UID: the second is refused, not written over the first.
    let copy_of_cr = out.path().join("copy_of_cr.dcm");
    std::fs::copy(data.join("chest_cr_pa_siim_nih.dcm"), &copy_of_cr).unwrap();
    let twice = out.path().join("twice");
    let inputs = vec![data.join("chest_cr_pa_siim_nih.dcm"), copy_of_cr];
    let error =
        run(DicomCommand::Deidentify { inputs, out: twice.clone(), allow_burned_in_annotation: false, json: false })
            .unwrap_err();
    assert!(format!("{error:#}").contains("1 of 2 input files could not be de-identified"), "{error:#}");
    assert_eq!(std::fs::read_dir(&twice).unwrap().count(), 1);
}
