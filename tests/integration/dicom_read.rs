//! Reading real DICOM files (tests/fixtures/dicom/real, with INDEX.csv and pydicom golden values) and broken
//! ones (tests/fixtures/dicom/broken): values, windows, photometric handling, clear errors, no panics.

use std::path::{Path, PathBuf};
use thorax::imaging::dicom::{
    DicomError, ModalityLut, Photometric, WindowSource, list_tags, open_dicom, read_dicom_image,
    read_dicom_image_bytes, render_display_u8,
};

fn shared_dicom_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real");
    assert!(dir.join("INDEX.csv").is_file(), "shared DICOM data missing at {}", dir.display());
    dir
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom").join(name)
}

/// Splits one CSV line, honouring double-quoted fields.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            _ => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

fn index_rows() -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(shared_dicom_dir().join("INDEX.csv")).unwrap();
    let mut lines = text.lines();
    let header = csv_fields(lines.next().unwrap());
    lines.filter(|l| !l.trim().is_empty()).map(|l| header.iter().cloned().zip(csv_fields(l)).collect()).collect()
}

fn golden() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("golden.json")).unwrap()).unwrap()
}

#[test]
fn every_shared_file_matches_index_csv() {
    let rows = index_rows();
    assert_eq!(rows.len(), 5, "INDEX.csv rows");
    for row in rows {
        let name = &row["file"];
        let image = read_dicom_image(&shared_dicom_dir().join(name)).unwrap();
        let s = &image.summary;
        let num = |k: &str| row[k].parse::<f64>().unwrap();
        assert_eq!(s.rows as f64, num("rows"), "{name}");
        assert_eq!(s.columns as f64, num("columns"), "{name}");
        assert_eq!((image.width, image.height), (s.columns, s.rows));
        assert_eq!(image.pixels.len(), (s.rows * s.columns) as usize);
        assert_eq!(s.bits_allocated as f64, num("bits_allocated"), "{name}");
        assert_eq!(s.bits_stored as f64, num("bits_stored"), "{name}");
        assert_eq!(s.photometric_interpretation, row["photometric"], "{name}");
        assert_eq!(s.modality.as_deref(), Some(row["modality"].as_str()), "{name}");
        let ts = &row["transfer_syntax"];
        if ts.starts_with("(no file meta") {
            assert!(!s.has_file_meta, "{name}");
            assert_eq!(s.transfer_syntax_uid, "1.2.840.10008.1.2");
        } else {
            assert!(s.has_file_meta, "{name}");
            assert!(ts.starts_with(&s.transfer_syntax_name), "{name}: {ts} vs {}", s.transfer_syntax_name);
        }
        // INDEX values are pydicom's stored values (before the modality LUT); JPEG baseline may differ by 1.
        let lossy = ts.contains("Baseline");
        let (tolerance, mean_tolerance) = if lossy { (1.0, 0.1) } else { (0.0, 1e-3) };
        let stats = s.stored_value_stats;
        assert!((stats.min - num("pixel_min")).abs() <= tolerance, "{name} min {}", stats.min);
        assert!((stats.max - num("pixel_max")).abs() <= tolerance, "{name} max {}", stats.max);
        assert!((stats.mean - num("pixel_mean")).abs() <= mean_tolerance, "{name} mean {}", stats.mean);
    }
}

#[test]
fn modality_values_match_pydicom() {
    let golden = golden();
    let files = golden["files"].as_object().unwrap();
    assert_eq!(files.len(), 5);
    for (name, expected) in files {
        let image = read_dicom_image(&shared_dicom_dir().join(name)).unwrap();
        let lossy = expected["transfer_syntax_uid"] == "1.2.840.10008.1.2.4.50";
        let tolerance = if lossy { 1.0 } else { 1e-4 };
        let stats = image.summary.pixel_stats;
        let f = |k: &str| expected[k].as_f64().unwrap();
        assert!((stats.min - f("modality_min")).abs() <= tolerance, "{name}");
        assert!((stats.max - f("modality_max")).abs() <= tolerance, "{name}");
        let mean_tolerance = if lossy { 0.1 } else { 1e-3 };
        assert!((stats.mean - f("modality_mean")).abs() <= mean_tolerance, "{name} {}", stats.mean);
        for probe in expected["probes"].as_array().unwrap() {
            let row = probe["row"].as_u64().unwrap() as usize;
            let column = probe["column"].as_u64().unwrap() as usize;
            let value = image.pixels[row * image.width as usize + column] as f64;
            let want = probe["modality_value"].as_f64().unwrap();
            assert!((value - want).abs() <= tolerance, "{name} ({row},{column}): {value} vs {want}");
        }
        match (expected["window_center"].as_f64(), expected["window_width"].as_f64()) {
            (Some(center), Some(width)) => {
                let window = image.window.expect("stored window");
                assert_eq!((window.center, window.width), (center, width), "{name}");
                assert_eq!(image.summary.window_source, WindowSource::StoredWindowCenterWidth);
            }
            _ => {
                assert!(image.window.is_none(), "{name}");
                let (window, source) = image.display_window();
                assert_eq!(source, WindowSource::ComputedFromPixelRange);
                assert_eq!(window.center, stats.min + (stats.max - stats.min) / 2.0);
            }
        }
    }
}

#[test]
fn modality_lut_kinds_and_monochrome1_inversion() {
    let dir = shared_dicom_dir();
    let dental = read_dicom_image(&dir.join("dental_cr_jpeg_lossless_modality_lut.dcm")).unwrap();
    assert!(matches!(
        dental.summary.modality_lut,
        ModalityLut::LutSequence { entries: 1024, first_mapped: 0, bits_per_entry: 16 }
    ));
    assert_eq!(dental.photometric, Photometric::Monochrome1);
    let ct = read_dicom_image(&dir.join("ct_small_128.dcm")).unwrap();
    assert_eq!(ct.summary.modality_lut, ModalityLut::Rescale { slope: 1.0, intercept: -1024.0 });
    assert!(ct.summary.pixel_representation_signed);
    assert!(!ct.photometric.invert_for_display());

    let chest = read_dicom_image(&dir.join("chest_cr_pa_mono1_10bit_nometa.dcm")).unwrap();
    assert!(chest.photometric.invert_for_display());
    let display = render_display_u8(&chest, None);
    // Window 550/1024: value 0 is below the window (intensity 0), shown white once inverted.
    let zero_at = chest.pixels.iter().position(|&v| v == 0.0).unwrap();
    assert_eq!(display[zero_at], 255);
    // The brightest value, 979: intensity (979 - 549.5) / 1023 + 0.5 = 0.92, inverted to 20.
    let max_at = chest.pixels.iter().position(|&v| v == 979.0).unwrap();
    assert_eq!(display[max_at], 20);
}

#[test]
fn reading_from_memory_equals_reading_from_disk() {
    let path = shared_dicom_dir().join("mr_small_64.dcm");
    let from_disk = read_dicom_image(&path).unwrap();
    let from_memory = read_dicom_image_bytes("in-memory MR", &std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(from_disk.pixels, from_memory.pixels);
    assert_eq!(from_memory.summary.file, "in-memory MR");
}

#[test]
fn broken_files_give_errors_naming_file_and_reason() {
    let cases = [
        ("truncated_header.dcm", "malformed DICOM data set"),
        ("truncated_pixels.dcm", "malformed DICOM data set"),
        ("wrong_vr_unknown_code.dcm", "malformed DICOM data set"),
        ("wrong_vr_rows_as_text.dcm", "invalid Rows (0028,0010)"),
        ("missing_pixel_data.dcm", "no Pixel Data (7FE0,0010)"),
        ("bits_stored_exceeds_allocated.dcm", "invalid Bits Stored (0028,0101)"),
        ("not_dicom.dcm", "not a DICOM file"),
        ("empty.dcm", "not a DICOM file"),
        // RLE fragments under a JPEG-LS transfer syntax: the decoder says what it found instead of a codestream.
        (
            "jpeg_ls_label_on_rle_data.dcm",
            "cannot decode pixel data (JPEG-LS Lossless Image Compression): invalid JPEG-LS stream: it does not start \
             with a start-of-image marker",
        ),
    ];
    for (name, reason) in cases {
        let path = fixture("broken").join(name);
        assert!(path.is_file(), "{}", path.display());
        let message = read_dicom_image(&path).unwrap_err().to_string();
        assert!(message.contains(name), "{name}: {message}");
        assert!(message.contains(reason), "{name}: {message}");
    }
    let missing = read_dicom_image(&fixture("broken/no_such_file.dcm")).unwrap_err();
    assert!(matches!(missing, DicomError::Io { .. }), "{missing}");
    assert!(missing.to_string().contains("no_such_file.dcm"));
}

#[test]
fn truncated_and_corrupted_copies_never_panic() {
    for entry in std::fs::read_dir(shared_dicom_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("dcm") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        // Truncations at 16 points: every cut copy is refused with an error naming it.
        for i in 1..=16 {
            let cut = bytes.len() * i / 17;
            let label = format!("{name} cut at {cut}");
            let result = read_dicom_image_bytes(&label, &bytes[..cut]);
            let error = result.err().unwrap_or_else(|| panic!("{label} was accepted"));
            assert!(error.to_string().contains(&label), "{error}");
        }
        // Byte corruption in the first 2 KiB (headers): errors or images, never a panic, and fast
        // (corrupt lengths are refused before dicom-rs would allocate them).
        let started = std::time::Instant::now();
        let mut state = 0x2545_F491_u32;
        for _ in 0..30 {
            let mut corrupted = bytes.clone();
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let at = state as usize % corrupted.len().min(2048);
                corrupted[at] = (state >> 24) as u8;
            }
            let _ = read_dicom_image_bytes(&name, &corrupted);
        }
        assert!(started.elapsed().as_secs() < 20, "{name}: corrupted copies took {:?}", started.elapsed());
    }
}

#[test]
fn a_file_cut_in_its_meta_group_or_before_its_pixels_is_called_truncated() {
    let bytes = std::fs::read(shared_dicom_dir().join("mr_small_64.dcm")).unwrap();
    let group_length = u32::from_le_bytes(bytes[140..144].try_into().unwrap()) as usize;
    // Every cut from inside "DICM"'s element headers to the last byte of the meta group.
    for cut in 133..144 + group_length {
        let error = read_dicom_image_bytes("cut.dcm", &bytes[..cut]).unwrap_err().to_string();
        assert!(error.contains("truncated"), "cut at {cut}: {error}");
    }
    // Cut exactly before Pixel Data: the element boundary hides the cut, Rows and Columns do not.
    let pixel_data = bytes.windows(4).rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00]).unwrap();
    let error = read_dicom_image_bytes("cut.dcm", &bytes[..pixel_data]).unwrap_err().to_string();
    assert!(error.contains("no Pixel Data (7FE0,0010)") && error.contains("64x64 px image"), "{error}");
    assert!(error.contains("cut short before its pixels"), "{error}");
}

#[test]
fn tag_listing_marks_identifying_attributes() {
    let file = open_dicom(&shared_dicom_dir().join("ct_small_128.dcm")).unwrap();
    let rows = list_tags(&file);
    let find = |keyword: &str| rows.iter().find(|r| r.keyword == keyword).unwrap();
    let name = find("PatientName");
    assert_eq!((name.tag.as_str(), name.vr.as_str()), ("(0010,0010)", "PN"));
    assert_eq!(name.value, "CompressedSamples^CT1");
    assert!(name.is_identifying);
    assert!(!find("Rows").is_identifying);
    assert_eq!(find("Rows").value, "128");
    assert!(find("StudyInstanceUID").is_identifying);
    assert!(find("TransferSyntaxUID").value.starts_with("1.2.840.10008.1.2.1"));
    assert!(find("PixelData").value.contains("bytes"));
    // Private attributes and nested items are listed and marked.
    assert!(rows.iter().any(|r| r.group == 0x0009 && r.keyword == "PrivateCreator" && r.is_identifying));
    let nested: Vec<_> = rows.iter().filter(|r| r.depth == 1 && r.keyword == "PatientID").collect();
    assert_eq!(nested.len(), 2);
    assert!(nested.iter().all(|r| r.is_identifying));
}

#[test]
fn rle_deflated_and_jpeg2000_variants_decode_to_the_uncompressed_pixels() {
    let cases = [
        ("mr_small_64_rle.dcm", "mr_small_64.dcm", "RLE Lossless"),
        ("ct_small_128_rle.dcm", "ct_small_128.dcm", "RLE Lossless"),
        ("mr_small_64_deflated.dcm", "mr_small_64.dcm", "Deflated Explicit VR Little Endian"),
        ("ct_small_128_deflated.dcm", "ct_small_128.dcm", "Deflated Explicit VR Little Endian"),
        ("mr_small_64_j2k.dcm", "mr_small_64.dcm", "JPEG 2000 Image Compression (Lossless Only)"),
        ("ct_small_128_j2k.dcm", "ct_small_128.dcm", "JPEG 2000 Image Compression (Lossless Only)"),
    ];
    let out = tempfile::tempdir().unwrap();
    let mut uids = thorax::imaging::dicom::UidMap::new();
    for (variant, original, ts_name) in cases {
        let path = fixture("transfer_syntaxes").join(variant);
        let decoded = read_dicom_image(&path).unwrap();
        let reference = read_dicom_image(&shared_dicom_dir().join(original)).unwrap();
        assert_eq!(decoded.summary.transfer_syntax_name, ts_name, "{variant}");
        assert_eq!(decoded.pixels, reference.pixels, "{variant}");
        assert_eq!(decoded.summary.modality_lut, reference.summary.modality_lut, "{variant}");
        // De-identification keeps the transfer syntax and the pixels.
        let done = thorax::imaging::dicom::deidentify_file(&path, out.path(), &mut uids).unwrap();
        let again = read_dicom_image(&done.output).unwrap();
        assert_eq!(again.summary.transfer_syntax_name, ts_name, "{variant}");
        assert_eq!(again.pixels, reference.pixels, "{variant}");
    }
}

/// SHA-256 of the decoded samples as little-endian integers of Bits Allocated, the form of dcmtk's decoded Pixel Data.
fn sample_bytes_sha256(image: &thorax::imaging::dicom::DicomImage) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for &value in &image.pixels {
        if image.summary.bits_allocated == 8 {
            hasher.update([value as u8]);
        } else {
            hasher.update((value as u16).to_le_bytes());
        }
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn jpeg_ls_lossless_decodes_to_the_original_pixels() {
    // Made with dcmtk's CharLS-based encoder (tools/make_dcmtk_codec_fixtures.sh): 16-bit unsigned MR, signed CT, CT
    // with thresholds and RESET of its own in an LSE segment, and MR in 1 KiB fragments without an offset table.
    let cases = [
        ("mr_small_64_jpeg_ls.dcm", "mr_small_64.dcm"),
        ("ct_small_128_jpeg_ls.dcm", "ct_small_128.dcm"),
        ("ct_small_128_jpeg_ls_presets.dcm", "ct_small_128.dcm"),
        ("mr_small_64_jpeg_ls_fragments.dcm", "mr_small_64.dcm"),
    ];
    for (variant, original) in cases {
        let decoded = read_dicom_image(&fixture("transfer_syntaxes").join(variant)).unwrap();
        let reference = read_dicom_image(&shared_dicom_dir().join(original)).unwrap();
        assert_eq!(decoded.summary.transfer_syntax_name, "JPEG-LS Lossless Image Compression", "{variant}");
        assert_eq!(decoded.pixels, reference.pixels, "{variant}");
        assert_eq!(decoded.summary.modality_lut, reference.summary.modality_lut, "{variant}");
    }
}

#[test]
fn jpeg_ls_near_lossless_decodes_as_dcmtk_does_within_near_of_the_original() {
    // (file, original, NEAR, SHA-256 of dcmtk's dcmdjpls output's Pixel Data, from tools/make_dcmtk_codec_fixtures.sh).
    let cases = [
        (
            "synthetic_sc_jpeg_ls_near2.dcm",
            fixture("synthetic_sc.dcm"),
            2.0,
            "4ff8e3d6afce58ca7af935c51c2f15f6b25f918759d8ef1a05b182bd92a9157e",
        ),
        (
            "chest_cr_10bit_jpeg_ls_near1.dcm",
            shared_dicom_dir().join("chest_cr_pa_mono1_10bit_nometa.dcm"),
            1.0,
            "e69d108ca234ae4f56e646d386ef294b0c6f5568de63bef1eaa1649c139d152c",
        ),
        // T1 = T2 = T3 = 1 with NEAR 1: out of the standard's order, but dcmtk writes and reads it.
        (
            "synthetic_sc_jpeg_ls_near1_thresholds_1.dcm",
            fixture("synthetic_sc.dcm"),
            1.0,
            "7cbbfd41d17fe3db975dc3c4ce34e5cd77157adefe5863dbbdbc4b3eff2eaa19",
        ),
    ];
    for (variant, original, near, dcmtk_sha256) in cases {
        let decoded = read_dicom_image(&fixture("transfer_syntaxes").join(variant)).unwrap();
        let reference = read_dicom_image(&original).unwrap();
        assert_eq!(
            decoded.summary.transfer_syntax_name, "JPEG-LS Lossy (Near-Lossless) Image Compression",
            "{variant}"
        );
        assert_eq!(decoded.photometric, reference.photometric, "{variant}");
        let deviations: Vec<f32> = decoded.pixels.iter().zip(&reference.pixels).map(|(a, b)| (a - b).abs()).collect();
        let largest = deviations.iter().copied().fold(0.0, f32::max);
        assert!(largest <= near, "{variant}: a sample is {largest} off, NEAR is {near}");
        assert!(largest > 0.0, "{variant}: the near-lossless path was not exercised");
        assert_eq!(sample_bytes_sha256(&decoded), dcmtk_sha256, "{variant}: differs from dcmtk's decode");
    }
}

#[test]
fn damaged_jpeg_ls_codestreams_give_errors_naming_file_and_reason_never_a_panic() {
    let name = "chest_cr_10bit_jpeg_ls_near1.dcm";
    let bytes = std::fs::read(fixture("transfer_syntaxes").join(name)).unwrap();
    let (start, length) = first_fragment(&bytes);
    // An end-of-image marker in the middle of the scan: the rows after it are missing.
    let mut cut = bytes.clone();
    cut[start + length / 2..start + length / 2 + 2].copy_from_slice(&[0xFF, 0xD9]);
    let error = read_dicom_image_bytes("cut_scan.dcm", &cut).unwrap_err().to_string();
    assert!(error.contains("cut_scan.dcm") && error.contains("of 440 rows: it is truncated"), "{error}");
    // A frame header that disagrees with Rows/Columns is refused before decoding.
    let sof = start + bytes[start..start + length].windows(2).position(|w| w == [0xFF, 0xF7]).unwrap();
    let mut wide = bytes.clone();
    wide[sof + 7..sof + 9].copy_from_slice(&600u16.to_be_bytes());
    let error = read_dicom_image_bytes("wide.dcm", &wide).unwrap_err().to_string();
    assert!(error.contains("holds a 600x440 px JPEG-LS frame"), "{error}");
    // Random byte damage in the scan (past the headers): an image or an error, never a panic.
    damaged_copies_give_an_image_or_an_error_naming_the_file(name, &bytes, start + 40..start + length, 0x9E37_79B9);
}

/// 200 copies of `bytes`, each with 4 random bytes in `region` changed, decode to an image or to an error that names
/// `name`; a panic fails the test.
fn damaged_copies_give_an_image_or_an_error_naming_the_file(
    name: &str,
    bytes: &[u8],
    region: std::ops::Range<usize>,
    seed: u32,
) {
    let mut state = seed;
    for _ in 0..200 {
        let mut damaged = bytes.to_vec();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let at = region.start + state as usize % region.len();
            damaged[at] = (state >> 24) as u8;
        }
        if let Err(error) = read_dicom_image_bytes(name, &damaged) {
            assert!(error.to_string().contains(name), "{error}");
        }
    }
}

/// The first fragment of the encapsulated Pixel Data in a DICOM file's bytes: its offset and length.
fn first_fragment(bytes: &[u8]) -> (usize, usize) {
    let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let pixel_data = bytes.windows(6).rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'B']).unwrap();
    // Tag, VR, reserved, undefined length; then the Basic Offset Table item, then the first fragment's item.
    let offset_table = pixel_data + 12;
    assert_eq!(bytes[offset_table..offset_table + 4], [0xFE, 0xFF, 0x00, 0xE0]);
    let item = offset_table + 8 + le32(offset_table + 4);
    assert_eq!(bytes[item..item + 4], [0xFE, 0xFF, 0x00, 0xE0]);
    (item + 8, le32(item + 4))
}

fn thorax_dicom_info(path: &Path) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"))
        .env("RUST_BACKTRACE", "1")
        .args(["dicom", "info"])
        .arg(path)
        .output()
        .unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn corrupt_codestreams_are_refused_with_their_reason_and_no_panic_message() {
    let dir = tempfile::tempdir().unwrap();
    // RLE whose second segment (the low bytes of the 16-bit samples) decodes to one byte instead of 64x64: the
    // codec indexes past its buffer. The panic is caught; the user sees the file and the reason, no "panicked at".
    let mut rle = std::fs::read(fixture("transfer_syntaxes").join("mr_small_64_rle.dcm")).unwrap();
    let (start, length) = first_fragment(&rle);
    assert_eq!(rle[start..start + 4], [2, 0, 0, 0], "two segments");
    let short_segment = (length - 2) as u32;
    rle[start + 8..start + 12].copy_from_slice(&short_segment.to_le_bytes());
    rle[start + length - 2..start + length].copy_from_slice(&[0x00, 0x42]);
    let path = dir.path().join("short_rle_segment.dcm");
    std::fs::write(&path, &rle).unwrap();
    let (ok, stderr) = thorax_dicom_info(&path);
    assert!(!ok && !stderr.contains("panicked") && !stderr.contains("stack backtrace"), "{stderr}");
    assert!(stderr.contains("short_rle_segment.dcm") && stderr.contains("RLE Lossless"), "{stderr}");
    assert!(stderr.contains("gave up on this data (index out of bounds"), "{stderr}");

    // JPEG 2000 whose SIZ marker says 3 columns more than Columns: refused before the codec (which panics on it).
    let mut j2k = std::fs::read(fixture("transfer_syntaxes").join("mr_small_64_j2k.dcm")).unwrap();
    let (start, _) = first_fragment(&j2k);
    assert_eq!(j2k[start..start + 4], [0xFF, 0x4F, 0xFF, 0x51]);
    let width = u32::from_be_bytes(j2k[start + 8..start + 12].try_into().unwrap());
    j2k[start + 8..start + 12].copy_from_slice(&(width + 3).to_be_bytes());
    let path = dir.path().join("wide_j2k.dcm");
    std::fs::write(&path, &j2k).unwrap();
    let error = read_dicom_image(&path).map(|_| ()).unwrap_err().to_string();
    assert!(error.contains("holds a 67x64 px JPEG 2000 frame, but Rows and Columns say 64x64 px"), "{error}");
    let (ok, stderr) = thorax_dicom_info(&path);
    assert!(!ok && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn twelve_bit_lossy_jpeg_decodes_as_dcmtk_does_within_one_grey_level() {
    // The MR slice as 12-bit extended sequential JPEG, and dcmtk's dcmdjpeg decode of it
    // (tools/make_dcmtk_codec_fixtures.sh). Inverse DCTs differ in rounding: libjpeg's integer transform against
    // our exact one, so a sample may be 1 off.
    let variants = fixture("transfer_syntaxes");
    let decoded = read_dicom_image(&variants.join("mr_small_64_jpeg_12bit.dcm")).unwrap();
    let dcmtk = read_dicom_image(&variants.join("mr_small_64_jpeg_12bit_dcmtk_decoded.dcm")).unwrap();
    assert_eq!(decoded.summary.transfer_syntax_name, "JPEG Extended (Process 2 & 4)");
    assert_eq!(decoded.pixels.len(), dcmtk.pixels.len());
    let deviations: Vec<f32> = decoded.pixels.iter().zip(&dcmtk.pixels).map(|(a, b)| (a - b).abs()).collect();
    let largest = deviations.iter().copied().fold(0.0, f32::max);
    let off_by_one = deviations.iter().filter(|&&d| d > 0.0).count();
    assert!(largest <= 1.0, "a sample is {largest} off dcmtk's");
    assert!(off_by_one * 10 < deviations.len(), "{off_by_one} of {} samples differ", deviations.len());
    // And it is the MR slice: dcmtk's encoder maps the values into 12 bits, so compare shapes (correlation).
    let original = read_dicom_image(&shared_dicom_dir().join("mr_small_64.dcm")).unwrap();
    let mean = |values: &[f32]| values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
    let (mean_decoded, mean_original) = (mean(&decoded.pixels), mean(&original.pixels));
    let (mut cross, mut decoded_sq, mut original_sq) = (0.0, 0.0, 0.0);
    for (&a, &b) in decoded.pixels.iter().zip(&original.pixels) {
        let (da, db) = (f64::from(a) - mean_decoded, f64::from(b) - mean_original);
        cross += da * db;
        decoded_sq += da * da;
        original_sq += db * db;
    }
    let correlation = cross / (decoded_sq * original_sq).sqrt();
    assert!(correlation > 0.99, "correlation with the original {correlation}");
}

#[test]
fn jpeg_ls_with_thresholds_below_near_takes_run_mode_as_dcmtk_does() {
    // 64x64 8-bit, T1 = T2 = T3 = 1 with NEAR 1, from dcmtk's encoder (a stream of the codec audit). With T1 <= NEAR
    // a gradient of 1 quantises to 4, so run mode, which CharLS-based encoders enter on quantised gradients of 0,
    // differs from T.87's |D| <= NEAR test. Reference: SHA-256 of dcmtk's dcmdjpls decode.
    let decoded =
        read_dicom_image(&fixture("transfer_syntaxes").join("noise_8bit_jpeg_ls_near1_thresholds_1.dcm")).unwrap();
    assert_eq!(sample_bytes_sha256(&decoded), "af661b2479b8b955129468f214e1fcc30ea97fc5ed8f142080fa1d73d6fe993c");
}

#[test]
fn a_frame_split_into_small_fragments_decodes_as_the_whole_frame() {
    use dicom_core::value::{PixelFragmentSequence, Value};
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    // Encoders may split one frame into fragments so small that the frame header is not in the first one.
    for name in ["mr_small_64_jpeg_12bit.dcm", "mr_small_64_jpeg_ls.dcm"] {
        let path = fixture("transfer_syntaxes").join(name);
        let whole = read_dicom_image(&path).unwrap();
        let mut file = dicom_object::open_file(&path).unwrap();
        let stream: Vec<u8> = match file.element(tags::PIXEL_DATA).unwrap().value() {
            Value::PixelSequence(sequence) => sequence.fragments().concat(),
            _ => panic!("{name}: not encapsulated"),
        };
        let fragments: Vec<Vec<u8>> = stream.chunks(10).map(|chunk| chunk.to_vec()).collect();
        file.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            Value::PixelSequence(PixelFragmentSequence::new(Vec::<u32>::new(), fragments)),
        ));
        let dir = tempfile::tempdir().unwrap();
        let split = dir.path().join(name);
        file.write_to_file(&split).unwrap();
        let decoded = read_dicom_image(&split).unwrap_or_else(|e| panic!("{name} in 10-byte fragments: {e}"));
        assert_eq!(decoded.pixels, whole.pixels, "{name}");
    }
}

#[test]
fn damaged_twelve_bit_jpeg_gives_errors_naming_file_and_reason_never_a_panic() {
    let name = "mr_small_64_jpeg_12bit.dcm";
    let bytes = std::fs::read(fixture("transfer_syntaxes").join(name)).unwrap();
    let (start, length) = first_fragment(&bytes);
    let scan = start + bytes[start..start + length].windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    // An end-of-image marker a quarter into the scan data.
    let mut cut = bytes.clone();
    let at = scan + (start + length - scan) / 4;
    cut[at..at + 2].copy_from_slice(&[0xFF, 0xD9]);
    let error = read_dicom_image_bytes("cut_scan.dcm", &cut).unwrap_err().to_string();
    assert!(error.contains("cut_scan.dcm") && error.contains("12-bit JPEG stream ends after"), "{error}");
    assert!(error.contains("of 64 rows: it is truncated"), "{error}");
    damaged_copies_give_an_image_or_an_error_naming_the_file(name, &bytes, start..start + length, 0x1234_5678);
}

#[test]
fn display_attributes_that_cannot_be_used_are_set_aside_with_a_note() {
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    let dir = tempfile::tempdir().unwrap();
    let original = read_dicom_image(&shared_dicom_dir().join("mr_small_64.dcm")).unwrap();
    let mut object = dicom_object::open_file(shared_dicom_dir().join("mr_small_64.dcm")).unwrap();
    // "LOG" is not a defined term (dcmtk ignores it and renders linearly); "abc" is no number.
    object.put(DataElement::new(tags::VOILUT_FUNCTION, VR::CS, PrimitiveValue::from("LOG")));
    object.put(DataElement::new(tags::WINDOW_CENTER, VR::DS, PrimitiveValue::from("abc")));
    object.put(DataElement::new(tags::WINDOW_WIDTH, VR::DS, PrimitiveValue::from("400")));
    let path = dir.path().join("odd_display.dcm");
    object.write_to_file(&path).unwrap();
    let image = read_dicom_image(&path).unwrap();
    assert_eq!(image.pixels, original.pixels);
    assert_eq!(image.summary.window_source, WindowSource::ComputedFromPixelRange);
    let notes = &image.summary.display_notes;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("\"LOG\" is not a defined term") && notes[0].contains("LINEAR is used"), "{notes:?}");
    assert!(notes[1].starts_with("Window Center (0028,1050): not a number"), "{notes:?}");
    // Lower case still names the defined term.
    object.put(DataElement::new(tags::VOILUT_FUNCTION, VR::CS, PrimitiveValue::from("sigmoid")));
    object.put(DataElement::new(tags::WINDOW_CENTER, VR::DS, PrimitiveValue::from("600")));
    object.write_to_file(&path).unwrap();
    let image = read_dicom_image(&path).unwrap();
    assert!(image.summary.display_notes.is_empty(), "{:?}", image.summary.display_notes);
    assert_eq!(image.voi_lut_function, thorax::imaging::dicom::VoiLutFunction::Sigmoid);
}

#[test]
fn pixel_spacing_comes_from_pixel_spacing_else_imager_pixel_spacing_and_a_bad_value_is_set_aside() {
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    use thorax::imaging::dicom::{PixelSpacing, SpacingSource};
    let real = |name: &str| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real").join(name);
    let spacing = |path: &Path| read_dicom_image(path).unwrap().summary.pixel_spacing;
    assert_eq!(
        spacing(&real("chest_cr_pa_siim_nih.dcm")),
        Some(PixelSpacing { row_mm: 0.168, column_mm: 0.168, source: SpacingSource::PixelSpacing })
    );
    assert_eq!(spacing(&real("chest_cr_pa_mono1_10bit_nometa.dcm")), None);
    let info = |path: &Path| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"))
            .args(["dicom", "info"])
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let printed = info(&real("chest_cr_pa_siim_nih.dcm"));
    assert!(printed.contains("pixel spacing       0.168 x 0.168 mm (row x column, Pixel Spacing)"), "{printed}");

    // The dental film stores both; without Pixel Spacing its Imager Pixel Spacing is used, at the detector.
    let dir = tempfile::tempdir().unwrap();
    let mut file = dicom_object::open_file(real("dental_cr_jpeg_lossless_modality_lut.dcm")).unwrap();
    file.remove_element(tags::PIXEL_SPACING);
    file.put(DataElement::new(tags::IMAGER_PIXEL_SPACING, VR::DS, PrimitiveValue::from("0.2\\0.1")));
    let imager_only = dir.path().join("imager_only.dcm");
    file.write_to_file(&imager_only).unwrap();
    assert_eq!(
        spacing(&imager_only),
        Some(PixelSpacing { row_mm: 0.2, column_mm: 0.1, source: SpacingSource::ImagerPixelSpacing })
    );
    let printed = info(&imager_only);
    assert!(printed.contains("0.2 x 0.1 mm (row x column, Imager Pixel Spacing, at the detector)"), "{printed}");
    // With an Estimated Radiographic Magnification Factor the pixel size is brought to the object.
    file.put(DataElement::new(tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR, VR::DS, PrimitiveValue::from("1.25")));
    let magnified = dir.path().join("magnified.dcm");
    file.write_to_file(&magnified).unwrap();
    let corrected = spacing(&magnified).unwrap();
    assert_eq!(corrected.source, SpacingSource::MagnificationCorrected { factor: 1.25 });
    assert!((corrected.row_mm - 0.16).abs() < 1e-12 && (corrected.column_mm - 0.08).abs() < 1e-12, "{corrected:?}");
    let printed = info(&magnified);
    assert!(
        printed.contains("(row x column, Imager Pixel Spacing / Estimated Radiographic Magnification Factor 1.25)"),
        "{printed}"
    );
    file.remove_element(tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR);
    // A spacing that is not two positive numbers is set aside with a note; the image still opens.
    file.put(DataElement::new(tags::IMAGER_PIXEL_SPACING, VR::DS, PrimitiveValue::from("0\\0.1")));
    let zero = dir.path().join("zero.dcm");
    file.write_to_file(&zero).unwrap();
    let image = read_dicom_image(&zero).unwrap();
    assert_eq!(image.summary.pixel_spacing, None);
    assert!(
        image.summary.display_notes.iter().any(|note| note.contains("Imager Pixel Spacing (0018,1164) \"0\\\\0.1\"")),
        "{:?}",
        image.summary.display_notes
    );
}

/// The chest film with a private sequence and Procedure Code Sequence stored as VR UN of undefined length, as an
/// archive that does not know them writes them; returns the path and the two values' item bytes.
fn chest_film_with_undefined_length_un(dir: &Path) -> (PathBuf, Vec<u8>, Vec<u8>) {
    use crate::dicom_raw::{implicit_element, implicit_item, implicit_sequence, make_file_un_length_undefined, un};
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, Tag, VR};
    use dicom_dictionary_std::tags;
    let nested_item = implicit_item(&implicit_element(Tag(0x0010, 0x1000), b"ID7"), false);
    let first = [implicit_element(Tag(0x0009, 0x1011), b"value"), implicit_sequence(Tag(0x0009, 0x1012), &nested_item)];
    let private = [implicit_item(&first.concat(), true), implicit_item(&[], false)].concat();
    let code = [implicit_element(tags::CODE_VALUE, b"P1"), implicit_element(tags::CODE_MEANING, b"Chest PA")];
    let procedure = implicit_item(&code.concat(), false);
    let mut file = dicom_object::open_file(shared_dicom_dir().join("chest_cr_pa_siim_nih.dcm")).unwrap();
    file.put(DataElement::new(Tag(0x0009, 0x0010), VR::LO, PrimitiveValue::from("ACME ARCHIVE")));
    file.put(un(Tag(0x0009, 0x1010), private.clone()));
    file.put(un(tags::PROCEDURE_CODE_SEQUENCE, procedure.clone()));
    let path = dir.join("film_un_undefined.dcm");
    file.write_to_file(&path).unwrap();
    make_file_un_length_undefined(&path, &[Tag(0x0009, 0x1010), tags::PROCEDURE_CODE_SEQUENCE]);
    (path, private, procedure)
}

#[test]
fn a_film_with_undefined_length_un_sequences_opens_and_keeps_its_pixels() {
    use dicom_core::{Tag, VR};
    use dicom_dictionary_std::tags;
    use thorax::imaging::dicom::open_dicom_bytes;
    let dir = tempfile::tempdir().unwrap();
    let (path, private, procedure) = chest_film_with_undefined_length_un(dir.path());
    let original = shared_dicom_dir().join("chest_cr_pa_siim_nih.dcm");

    let file = open_dicom(&path).unwrap();
    // Kept as the UN bytes of its items (without the delimiter), for de-identification to read as a sequence.
    for (tag, items) in [(Tag(0x0009, 0x1010), &private), (tags::PROCEDURE_CODE_SEQUENCE, &procedure)] {
        let element = file.object.get(tag).unwrap();
        assert_eq!(element.vr(), VR::UN);
        assert_eq!(element.value().to_bytes().unwrap().as_ref(), items.as_slice());
    }
    let image = read_dicom_image(&path).unwrap();
    assert_eq!(image.pixels, read_dicom_image(&original).unwrap().pixels);

    // The same data set without preamble and file meta (read as a raw explicit VR data set).
    let bytes = std::fs::read(&path).unwrap();
    let group_length = u32::from_le_bytes(bytes[140..144].try_into().unwrap()) as usize;
    let raw = open_dicom_bytes("raw data set", &bytes[144 + group_length..]).unwrap();
    assert_eq!(raw.object.get(Tag(0x0009, 0x1010)).unwrap().value().to_bytes().unwrap().as_ref(), private.as_slice());

    let (success, stderr) = thorax_dicom_info(&path);
    assert!(success, "{stderr}");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"))
        .args(["classify", "--json"])
        .args([&original, &path])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(results[0]["probabilities"], results[1]["probabilities"], "the same pixels, the same probabilities");
}

#[test]
fn a_truncated_or_corrupt_undefined_length_un_is_refused_naming_the_tag() {
    use crate::dicom_raw::{implicit_element, implicit_item, make_un_length_undefined, un, un_header_at, write_part10};
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, Tag, VR};
    use dicom_dictionary_std::tags;
    use thorax::imaging::dicom::open_dicom_bytes;
    let items = [
        implicit_item(&implicit_element(tags::CODE_VALUE, b"P1"), true),
        implicit_item(&implicit_element(tags::CODE_VALUE, b"P2"), false),
    ]
    .concat();
    let dir = tempfile::tempdir().unwrap();
    let path = write_part10(
        dir.path(),
        "un.dcm",
        vec![
            DataElement::new(tags::SOP_CLASS_UID, VR::UI, PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.7")),
            un(Tag(0x0009, 0x1010), items.clone()),
        ],
    );
    let mut bytes = std::fs::read(&path).unwrap();
    make_un_length_undefined(&mut bytes, Tag(0x0009, 0x1010));
    let content = un_header_at(&bytes, Tag(0x0009, 0x1010)) + 12;
    assert!(open_dicom_bytes("whole", &bytes).is_ok());

    let refused = |label: &str, bytes: &[u8], reason: &str| {
        let error = open_dicom_bytes(label, bytes).unwrap_err();
        assert!(matches!(error, DicomError::Malformed { .. }), "{label}: {error}");
        let message = error.to_string();
        assert!(message.contains(label) && message.contains("element (0009,1010)"), "{label}: {message}");
        assert!(message.contains(reason), "{label}: {message}");
    };
    let without_delimiter = &bytes[..bytes.len() - 8];
    refused("no delimiter", without_delimiter, "before the Sequence Delimitation Item (FFFE,E0DD)");
    refused("cut in an item", &bytes[..bytes.len() - 12], "before the Item Delimitation Item (FFFE,E00D)");
    let mut corrupt_tag = bytes.clone();
    corrupt_tag[content + 3] = 0xE1;
    refused("corrupt item tag", &corrupt_tag, "holds (FFFE,E100) where an item");
    let mut overlong = bytes.clone();
    overlong[content + 4..content + 8].copy_from_slice(&0x4000_0000u32.to_le_bytes());
    refused("overlong item", &overlong, "declaring 1073741824 value bytes");

    // On the command line: the file and the reason, no panic.
    std::fs::write(&path, without_delimiter).unwrap();
    let (success, stderr) = thorax_dicom_info(&path);
    assert!(!success);
    assert!(stderr.contains("un.dcm") && stderr.contains("(0009,1010)") && stderr.contains("truncated"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
