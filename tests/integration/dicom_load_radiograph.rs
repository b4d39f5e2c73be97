//! DICOM through the common image loader (viewer, classify, translate): sizes, the stored window, MONOCHROME1
//! mirrored with its window, tags for the tag panel, and errors that name the file.

use std::path::PathBuf;

use thorax::imaging::{DecodeError, decode_image, decode_radiograph, load_radiograph};

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom").join(path)
}

fn golden() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("golden.json")).unwrap()).unwrap()
}

#[test]
fn every_real_file_loads_with_its_size_range_and_stored_window() {
    let golden = golden();
    for (name, facts) in golden["files"].as_object().unwrap() {
        let radiograph = load_radiograph(&fixture(&format!("real/{name}"))).unwrap();
        let image = &radiograph.image;
        assert_eq!(image.width_px() as u64, facts["columns"].as_u64().unwrap(), "{name}");
        assert_eq!(image.height_px() as u64, facts["rows"].as_u64().unwrap(), "{name}");
        let (min, max) = image.pixels().iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let (modality_min, modality_max) =
            (facts["modality_min"].as_f64().unwrap(), facts["modality_max"].as_f64().unwrap());
        let details = radiograph.dicom.as_ref().expect("DICOM details");
        let mono1 = facts["photometric_interpretation"] == "MONOCHROME1";
        assert_eq!(details.mirrored_from_monochrome1, mono1, "{name}");
        // MONOCHROME1 is mirrored within the detector's range lo..hi, so v becomes lo + hi - v.
        let mirror = |value: f64| if mono1 { monochrome1_range_sum(name) - value } else { value };
        assert_eq!(min as f64, mirror(modality_max).min(mirror(modality_min)), "{name}");
        assert_eq!(max as f64, mirror(modality_max).max(mirror(modality_min)), "{name}");
        match (facts["window_center"].as_f64(), facts["window_width"].as_f64(), radiograph.stored_window) {
            (Some(center), Some(width), Some(window)) => {
                let expected_center = mirror(center);
                assert!((window.center as f64 - expected_center).abs() < 1e-3, "{name}: {window:?}");
                assert!((window.width as f64 - width).abs() < 1e-3, "{name}: {window:?}");
            }
            (None, None, None) => {}
            other => panic!("{name}: stored window mismatch {other:?}"),
        }
        assert!(!details.tags.is_empty(), "{name}");
    }
}

/// lo + hi of the range a MONOCHROME1 fixture's values can take (dcmdump): 10 bits stored gives 0..1023; the
/// dental film's Modality LUT Sequence has 16-bit entries, 0..65535.
fn monochrome1_range_sum(name: &str) -> f64 {
    match name {
        "chest_cr_pa_mono1_10bit_nometa.dcm" => 1023.0,
        "dental_cr_jpeg_lossless_modality_lut.dcm" => 65535.0,
        other => panic!("{other} is not a MONOCHROME1 fixture"),
    }
}

#[test]
fn monochrome1_probes_are_mirrored_within_the_range() {
    let golden = golden();
    let name = "chest_cr_pa_mono1_10bit_nometa.dcm";
    let facts = &golden["files"][name];
    let image = load_radiograph(&fixture(&format!("real/{name}"))).unwrap().image;
    for probe in facts["probes"].as_array().unwrap() {
        let (row, column) = (probe["row"].as_u64().unwrap() as usize, probe["column"].as_u64().unwrap() as usize);
        let stored = probe["modality_value"].as_f64().unwrap();
        let shown = image.value_at(column, row).unwrap() as f64;
        assert_eq!(shown, 1023.0 - stored, "probe ({row}, {column}): 10 bits stored");
    }
}

#[test]
fn monochrome2_values_are_the_modality_values() {
    let golden = golden();
    let name = "ct_small_128.dcm";
    let bytes = std::fs::read(fixture(&format!("real/{name}"))).unwrap();
    let image = decode_image(&bytes, name).unwrap();
    for probe in golden["files"][name]["probes"].as_array().unwrap() {
        let (row, column) = (probe["row"].as_u64().unwrap() as usize, probe["column"].as_u64().unwrap() as usize);
        assert_eq!(image.value_at(column, row).unwrap() as f64, probe["modality_value"].as_f64().unwrap());
    }
}

#[test]
fn png_has_no_dicom_details_or_stored_window() {
    let radiograph = load_radiograph(&fixture("sc_source.png")).unwrap();
    assert!(radiograph.dicom.is_none());
    assert!(radiograph.stored_window.is_none());
}

#[test]
fn broken_dicom_files_give_errors_that_name_the_file() {
    for name in [
        "truncated_header.dcm",
        "truncated_pixels.dcm",
        "missing_pixel_data.dcm",
        "wrong_vr_rows_as_text.dcm",
        "bits_stored_exceeds_allocated.dcm",
    ] {
        let path = fixture(&format!("broken/{name}"));
        let error = load_radiograph(&path).unwrap_err();
        let text = error.to_string();
        assert!(text.contains(name), "{name}: {text}");
        assert!(matches!(error, DecodeError::Dicom { .. } | DecodeError::Corrupt { .. }), "{name}: {error:?}");
    }
    // Neither an image nor a data set: the generic refusal.
    let error = decode_radiograph(b"hello, this is plain text and nothing else", "notes.txt").unwrap_err();
    assert!(matches!(error, DecodeError::UnknownFormat { .. }), "{error:?}");
    assert!(error.to_string().contains("notes.txt"));
}

#[test]
fn every_prefix_of_a_real_file_is_refused_without_panic() {
    let bytes = std::fs::read(fixture("real/mr_small_64.dcm")).unwrap();
    for cut in (0..bytes.len()).step_by(97) {
        // Ok is possible only for a complete file; anything shorter must be an error, never a panic.
        if let Ok(image) = decode_image(&bytes[..cut], "cut.dcm") {
            panic!("prefix of {cut} bytes decoded to {}x{}", image.width_px(), image.height_px());
        }
    }
}

#[test]
fn study_pipeline_and_msssim_read_dicom_too() {
    let path = fixture("real/chest_cr_pa_mono1_10bit_nometa.dcm");
    let renamed = tempfile::tempdir().unwrap();
    // The raw data set has no DICOM marker; the .dcm extension routes it to the DICOM reader.
    let image = thorax::study::display::decode_image_file(&path).unwrap();
    assert_eq!((image.width(), image.height()), (440, 440));
    assert!(matches!(image, image::DynamicImage::ImageLuma16(_)));
    let copy = renamed.path().join("copy.dcm");
    std::fs::copy(&path, &copy).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"))
        .args(["metrics", "msssim", path.to_str().unwrap(), copy.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!((value["mean"].as_f64().unwrap() - 1.0).abs() < 1e-9, "{value}");
    // 10 bits stored: L = 2^10 - 1, not the span of this image's values (979).
    assert_eq!(value["pairs"][0]["data_range_per_scale"][0], 1023.0);
}

#[test]
fn only_plain_8_bit_data_takes_a_fixed_range() {
    use thorax::imaging::BitDepth;
    let depth = |name: &str| load_radiograph(&fixture(&format!("real/{name}"))).unwrap().image.depth();
    // 8 bits stored, unsigned, no rescale: 0..255 as for an 8-bit PNG.
    assert_eq!(depth("chest_cr_pa_siim_nih.dcm"), BitDepth::U8);
    // 16-bit MR and CT (HU) data keep their own range; so does a 10-bit MONOCHROME1 film.
    assert_eq!(depth("mr_small_64.dcm"), BitDepth::F32);
    assert_eq!(depth("ct_small_128.dcm"), BitDepth::F32);
    assert_eq!(depth("chest_cr_pa_mono1_10bit_nometa.dcm"), BitDepth::F32);
}

#[test]
fn classify_flags_dicom_that_is_not_a_chest_radiograph() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"))
        .args(["classify", "--json"])
        .args(
            ["real/ct_small_128.dcm", "real/dental_cr_jpeg_lossless_modality_lut.dcm", "real/chest_cr_pa_siim_nih.dcm"]
                .map(fixture),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let doubts: Vec<Option<&str>> =
        results.as_array().unwrap().iter().map(|r| r.get("out_of_domain").and_then(|d| d.as_str())).collect();
    assert_eq!(doubts[0], Some("a CT image, not a radiograph"));
    assert!(doubts[1].is_some_and(|d| d.contains("names the teeth")), "{doubts:?}");
    assert_eq!(doubts[2], None, "a chest CR raises no doubt");
    assert!(stderr.contains("ct_small_128.dcm: a CT image, not a radiograph; the classifier was trained on chest"));
    assert!(!stderr.contains("chest_cr_pa_siim_nih.dcm"), "{stderr}");
}

/// The 8-bit chest film's grey values (decoded from its JPEG) stored uncompressed three ways, MONOCHROME2 (v),
/// MONOCHROME1 (255 - v) and RGB (v, v, v), with the rest of its data set; and the same values as an 8-bit PNG.
fn one_film_stored_four_ways(dir: &std::path::Path) -> [PathBuf; 4] {
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::meta::FileMetaTableBuilder;
    let source = fixture("real/chest_cr_pa_siim_nih.dcm");
    let decoded = thorax::imaging::decode_dicom_values(&std::fs::read(&source).unwrap(), "siim").unwrap();
    let values: Vec<u8> = decoded.pixels.iter().map(|&v| v as u8).collect();
    assert!(decoded.pixels.iter().all(|&v| v == f32::from(v as u8)), "8-bit values");
    let (rows, columns) = (decoded.height, decoded.width);
    let data_set = dicom_object::open_file(&source).unwrap().into_inner();
    let with = |photometric: &str, samples: u16, pixels: Vec<u8>, name: &str| {
        let mut object = data_set.clone();
        object.put(DataElement::new(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, PrimitiveValue::from(photometric)));
        object.put(DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(samples)));
        if samples == 3 {
            object.put(DataElement::new(tags::PLANAR_CONFIGURATION, VR::US, PrimitiveValue::from(0u16)));
        }
        object.put(DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(pixels)));
        let file = object
            .with_meta(
                FileMetaTableBuilder::new()
                    .transfer_syntax("1.2.840.10008.1.2.1")
                    .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.1")
                    .media_storage_sop_instance_uid("1.2.826.0.1.999.4"),
            )
            .unwrap();
        let path = dir.join(name);
        file.write_to_file(&path).unwrap();
        path
    };
    let mono2 = with("MONOCHROME2", 1, values.clone(), "mono2.dcm");
    let mono1 = with("MONOCHROME1", 1, values.iter().map(|v| 255 - v).collect(), "mono1.dcm");
    let rgb = with("RGB", 3, values.iter().flat_map(|&v| [v, v, v]).collect(), "rgb.dcm");
    let png = dir.join("film.png");
    image::GrayImage::from_raw(columns, rows, values).unwrap().save(&png).unwrap();
    [mono2, mono1, rgb, png]
}

#[test]
fn the_same_grey_values_stored_as_monochrome1_or_rgb_reach_the_networks_unchanged() {
    use thorax::imaging::BitDepth;
    let dir = tempfile::tempdir().unwrap();
    let paths = one_film_stored_four_ways(dir.path());
    let reference = load_radiograph(&paths[3]).unwrap().image;
    assert_eq!(reference.depth(), BitDepth::U8);
    for path in &paths[..3] {
        let image = load_radiograph(path).unwrap().image;
        // Before, MONOCHROME1 was mirrored within its own min..max and both it and RGB were stretched to that range.
        assert_eq!(image.depth(), BitDepth::U8, "{}", path.display());
        assert_eq!(image.pixels(), reference.pixels(), "{}", path.display());
        assert_eq!(image.to_unit_range(), reference.to_unit_range(), "{}", path.display());
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"))
        .args(["classify", "--json"])
        .args(&paths)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let probabilities: Vec<&serde_json::Value> =
        results.as_array().unwrap().iter().map(|result| &result["probabilities"]).collect();
    for (path, row) in paths.iter().zip(&probabilities) {
        assert_eq!(*row, probabilities[3], "{}: probabilities differ from the PNG's", path.display());
    }
}
