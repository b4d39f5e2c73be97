//! Every loader path: 8/16-bit PNG, JPEG, TIFF, RGB to gray, and bad files that must give clear errors.

use std::io::Cursor;

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb};
use thorax::imaging::{BitDepth, DecodeError, decode_image, load_image};

fn encode(img: impl Into<DynamicImage>, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    img.into().write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

#[test]
fn eight_bit_png_keeps_values() {
    let img = ImageBuffer::from_fn(7, 5, |x, y| Luma([(x * 30 + y) as u8]));
    let gray = decode_image(&encode(img, ImageFormat::Png), "ramp.png").unwrap();
    assert_eq!((gray.width_px(), gray.height_px(), gray.depth()), (7, 5, BitDepth::U8));
    assert_eq!(gray.value_at(6, 4), Some(184.0));
    assert_eq!(gray.nominal_range(), (0.0, 255.0));
}

#[test]
fn sixteen_bit_png_keeps_full_depth() {
    // Values that an 8-bit copy would merge (1000 and 1001) must stay distinct.
    let img = ImageBuffer::from_fn(4, 2, |x, y| Luma([1000 + x as u16 + 4 * y as u16]));
    let gray = decode_image(&encode(img, ImageFormat::Png), "sixteen.png").unwrap();
    assert_eq!(gray.depth(), BitDepth::U16);
    assert_eq!(gray.value_at(0, 0), Some(1000.0));
    assert_eq!(gray.value_at(1, 0), Some(1001.0));
    assert_eq!(gray.value_at(3, 1), Some(1007.0));
    assert_eq!(gray.nominal_range(), (0.0, 65535.0));
}

#[test]
fn sixteen_bit_tiff_keeps_full_depth() {
    let img = ImageBuffer::from_fn(3, 3, |x, y| Luma([40_000 + (x + 3 * y) as u16]));
    let gray = decode_image(&encode(img, ImageFormat::Tiff), "scan.tiff").unwrap();
    assert_eq!(gray.depth(), BitDepth::U16);
    assert_eq!(gray.value_at(2, 2), Some(40_008.0));
}

#[test]
fn jpeg_decodes_to_gray() {
    let img = ImageBuffer::from_fn(16, 16, |_, _| Luma([128_u8]));
    let gray = decode_image(&encode(img, ImageFormat::Jpeg), "film.jpg").unwrap();
    assert_eq!(gray.depth(), BitDepth::U8);
    assert!(gray.pixels().iter().all(|&v| (v - 128.0).abs() <= 2.0));
}

#[test]
fn rgb_is_converted_with_luma_weights() {
    let img = ImageBuffer::from_fn(2, 1, |x, _| if x == 0 { Rgb([255_u8, 0, 0]) } else { Rgb([0, 0, 255]) });
    let gray = decode_image(&encode(img, ImageFormat::Png), "colour.png").unwrap();
    assert!((gray.value_at(0, 0).unwrap() - 0.299 * 255.0).abs() < 1e-3);
    assert!((gray.value_at(1, 0).unwrap() - 0.114 * 255.0).abs() < 1e-3);
}

#[test]
fn empty_file_is_named_and_refused() {
    let err = decode_image(&[], "empty.png").unwrap_err();
    assert!(matches!(err, DecodeError::Empty { .. }));
    assert!(err.to_string().contains("empty.png") && err.to_string().contains("0 bytes"));
}

#[test]
fn corrupt_png_is_refused_not_panicking() {
    let img = ImageBuffer::from_fn(64, 64, |x, y| Luma([(x ^ y) as u8]));
    let mut bytes = encode(img, ImageFormat::Png);
    bytes.truncate(bytes.len() / 2);
    let err = decode_image(&bytes, "half.png").unwrap_err();
    assert!(matches!(err, DecodeError::Corrupt { .. }), "{err}");
    // Garbage after a valid signature.
    let mut garbage = b"\x89PNG\r\n\x1a\n".to_vec();
    garbage.extend_from_slice(&[0xAB; 100]);
    assert!(decode_image(&garbage, "garbage.png").is_err());
}

#[test]
fn truncated_jpeg_is_refused_and_trailing_bytes_are_allowed() {
    let img = ImageBuffer::from_fn(64, 64, |x, y| Luma([(x * 3 + y * 2) as u8]));
    let bytes = encode(img, ImageFormat::Jpeg);
    // The decoder alone fills the missing part of the scan and succeeds.
    for keep in [bytes.len() / 3, bytes.len() - 2] {
        let err = decode_image(&bytes[..keep], "cut.jpg").unwrap_err();
        assert!(matches!(err, DecodeError::Corrupt { .. }) && err.to_string().contains("end-of-image"), "{err}");
    }
    let mut with_trailer = bytes.clone();
    with_trailer.extend_from_slice(b"camera trailer");
    decode_image(&with_trailer, "trailer.jpg").unwrap();
}

#[test]
fn unknown_format_is_refused() {
    let err = decode_image(b"this is a text file, not an image", "notes.txt").unwrap_err();
    assert!(matches!(err, DecodeError::UnknownFormat { .. }), "{err}");
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A PNG that declares `width` x `height` in its header but carries no pixel data.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit gray, deflate, no filter, no interlace.
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(&13_u32.to_be_bytes());
    bytes.extend_from_slice(&ihdr);
    bytes.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    // An empty IDAT: decoders read the header up to the first data chunk.
    bytes.extend_from_slice(&0_u32.to_be_bytes());
    bytes.extend_from_slice(b"IDAT");
    bytes.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
    bytes
}

#[test]
fn huge_image_is_refused_before_decoding() {
    let err = decode_image(&png_header_only(20_000, 20_000), "huge.png").unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { width_px: 20_000, height_px: 20_000, .. }), "{err}");
    assert!(err.to_string().contains("20000x20000"));
    // Within the side limit but over the pixel budget.
    let err = decode_image(&png_header_only(16_000, 16_000), "big.png").unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { .. }), "{err}");
}

#[test]
fn missing_file_names_the_path() {
    let err = load_image(std::path::Path::new("/nonexistent/chest.png")).unwrap_err();
    assert!(matches!(err, DecodeError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/chest.png"));
}

#[test]
fn every_real_sample_decodes() {
    for sample in thorax::imaging::samples::embedded_samples() {
        let image = decode_image(sample.bytes, &sample.file_name).unwrap();
        assert_eq!(image.depth(), BitDepth::U8, "{}", sample.file_name);
    }
}

/// A 192x192 gray palette PNG of 4 entries whose pixel (5, 7) uses entry 9.
fn damaged_palette_png() -> Vec<u8> {
    let (width, height) = (192_u32, 192_u32);
    let mut indices: Vec<u8> = (0..width * height).map(|i| (i % 4) as u8).collect();
    indices[(7 * width + 5) as usize] = 9;
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(vec![0, 0, 0, 80, 80, 80, 160, 160, 160, 240, 240, 240]);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&indices).unwrap();
    writer.finish().unwrap();
    bytes
}

#[test]
fn a_palette_index_past_the_palette_is_refused_everywhere_instead_of_read_as_black() {
    let bytes = damaged_palette_png();
    // The image crate alone expands the missing entry without a word.
    assert!(image::load_from_memory(&bytes).is_ok());
    let expected = "pixel (5, 7) uses palette entry 9, but the palette has 4 entries";
    let error = decode_image(&bytes, "damaged.png").unwrap_err();
    assert!(matches!(error, DecodeError::Corrupt { .. }) && error.to_string().contains(expected), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.png");
    std::fs::write(&path, &bytes).unwrap();
    let out = dir.path().join("sc.dcm");
    let path_text = path.to_str().unwrap();
    for args in [
        vec!["classify", path_text],
        vec!["metrics", "msssim", path_text, path_text],
        vec!["dicom", "export-sc", path_text, "--out", out.to_str().unwrap(), "--model-sha256", "0", "--seed", "1"],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"))
            .env("RUST_BACKTRACE", "0")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert!(!out.exists());
}
