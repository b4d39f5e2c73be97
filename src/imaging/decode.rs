//! Decoding radiographs from PNG (8/16-bit), JPEG, TIFF and DICOM into [`GrayImage`], refusing what would exhaust
//! memory.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageReader};

use crate::imaging::dicom_radiograph;
use crate::imaging::gray_image::{BitDepth, GrayImage};
use crate::imaging::radiograph::Radiograph;

/// Longest side we accept. Larger files are refused before any pixel is decoded.
pub const MAX_SIDE_PX: u32 = 16_384;

/// Most pixels we accept (64 MP is 256 MiB as f32; the largest radiographs are about 20 MP).
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// Most bytes the decoder may allocate (a 16384^2 16-bit RGBA image is 2 GiB; we stay well below).
const MAX_DECODE_ALLOC_BYTES: u64 = 1 << 30;

/// Why an image could not be loaded. Messages name the file (last, as it may carry patient data) and the reason.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read the file: {source} ({name})")]
    Io { name: String, source: std::io::Error },
    #[error("the file is empty (0 bytes) ({name})")]
    Empty { name: String },
    #[error("not a PNG, JPEG, TIFF or DICOM image ({name})")]
    UnknownFormat { name: String },
    /// `reason` is the DICOM reader's message, which names the file.
    #[error("cannot read the DICOM data: {reason}")]
    Dicom { name: String, reason: String },
    #[error(
        "image is {width_px}x{height_px} px, larger than the limits ({MAX_SIDE_PX} px per side, {} megapixels) ({name})",
        MAX_PIXELS / (1024 * 1024)
    )]
    TooLarge { name: String, width_px: u32, height_px: u32 },
    #[error("the image data is corrupt or truncated: {reason} ({name})")]
    Corrupt { name: String, reason: String },
}

/// Loads an image file from disk.
pub fn load_image(path: &Path) -> Result<GrayImage, DecodeError> {
    load_radiograph(path).map(|radiograph| radiograph.image)
}

/// Loads an image file from disk with its display hints (stored window, DICOM attributes).
pub fn load_radiograph(path: &Path) -> Result<Radiograph, DecodeError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| DecodeError::Io { name: name.clone(), source })?;
    decode_radiograph(&bytes, &name)
}

/// Decodes image bytes; `name` only labels errors.
pub fn decode_image(bytes: &[u8], name: &str) -> Result<GrayImage, DecodeError> {
    decode_radiograph(bytes, name).map(|radiograph| radiograph.image)
}

/// Decodes image bytes of any supported format with their display hints; `name` only labels errors.
pub fn decode_radiograph(bytes: &[u8], name: &str) -> Result<Radiograph, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty { name: name.to_owned() });
    }
    if dicom_radiograph::has_dicom_marker(bytes) {
        return dicom_radiograph::decode_dicom(bytes, name);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| DecodeError::Io { name: name.to_owned(), source })?;
    if reader.format().is_none() {
        // Old DICOM files have no marker and no preamble: a raw data set is the last format tried.
        return dicom_radiograph::decode_raw_data_set(bytes, name)
            .unwrap_or_else(|| Err(DecodeError::UnknownFormat { name: name.to_owned() }));
    }
    decode_raster(reader, bytes, name).map(Radiograph::plain)
}

fn decode_raster(reader: ImageReader<Cursor<&[u8]>>, bytes: &[u8], name: &str) -> Result<GrayImage, DecodeError> {
    let corrupt = |e: image::ImageError| DecodeError::Corrupt { name: name.to_owned(), reason: e.to_string() };
    // Read only the header first so a huge image is refused without allocating its pixels.
    if reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_has_end_after_last_scan(bytes) {
        // The JPEG decoder fills a cut-off scan with grey and reports success.
        return Err(DecodeError::Corrupt {
            name: name.to_owned(),
            reason: "the JPEG ends inside its image data (no end-of-image marker after the last scan)".to_owned(),
        });
    }
    let is_png = reader.format() == Some(image::ImageFormat::Png);
    let (width_px, height_px) = reader.into_dimensions().map_err(corrupt)?;
    if width_px > MAX_SIDE_PX || height_px > MAX_SIDE_PX || u64::from(width_px) * u64::from(height_px) > MAX_PIXELS {
        return Err(DecodeError::TooLarge { name: name.to_owned(), width_px, height_px });
    }
    if let Some(reason) = is_png.then(|| crate::imaging::png_palette::damaged_palette(bytes)).flatten() {
        return Err(DecodeError::Corrupt { name: name.to_owned(), reason });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| DecodeError::Io { name: name.to_owned(), source })?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE_PX);
    limits.max_image_height = Some(MAX_SIDE_PX);
    limits.max_alloc = Some(MAX_DECODE_ALLOC_BYTES);
    reader.limits(limits);
    let decoded = reader.decode().map_err(corrupt)?;
    to_gray(decoded, name)
}

/// Whether a JPEG stream has an end-of-image marker (FF D9) after its last start-of-scan marker (FF DA). Inside
/// entropy-coded data a 0xFF byte is always followed by 0x00 or a restart marker, so neither pair occurs there; a
/// file cut inside its last scan has no FF D9 after that scan's FF DA. Bytes after the marker (trailers some cameras
/// append) are allowed.
fn jpeg_has_end_after_last_scan(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|pair| pair == [0xFF, 0xDA]);
    match last_scan {
        Some(start) => bytes[start..].windows(2).any(|pair| pair == [0xFF, 0xD9]),
        None => false,
    }
}

/// Converts any decoded image to one channel at its own depth. Colour is reduced with ITU-R 601 luma weights,
/// as PIL's `convert('L')` does (the original study's pipeline is PIL-based).
fn to_gray(decoded: DynamicImage, name: &str) -> Result<GrayImage, DecodeError> {
    let (width_px, height_px) = (decoded.width() as usize, decoded.height() as usize);
    let (depth, pixels) = match decoded {
        DynamicImage::ImageLuma8(img) => (BitDepth::U8, img.into_raw().into_iter().map(f32::from).collect()),
        DynamicImage::ImageLumaA8(img) => (BitDepth::U8, img.pixels().map(|p| f32::from(p.0[0])).collect()),
        DynamicImage::ImageLuma16(img) => (BitDepth::U16, img.into_raw().into_iter().map(f32::from).collect()),
        DynamicImage::ImageLumaA16(img) => (BitDepth::U16, img.pixels().map(|p| f32::from(p.0[0])).collect()),
        DynamicImage::ImageRgb8(img) => (BitDepth::U8, img.pixels().map(|p| luma_601(p.0.map(f32::from))).collect()),
        DynamicImage::ImageRgba8(img) => {
            (BitDepth::U8, img.pixels().map(|p| luma_601([p.0[0], p.0[1], p.0[2]].map(f32::from))).collect())
        }
        DynamicImage::ImageRgb16(img) => (BitDepth::U16, img.pixels().map(|p| luma_601(p.0.map(f32::from))).collect()),
        DynamicImage::ImageRgba16(img) => {
            (BitDepth::U16, img.pixels().map(|p| luma_601([p.0[0], p.0[1], p.0[2]].map(f32::from))).collect())
        }
        DynamicImage::ImageRgb32F(img) => (BitDepth::F32, img.pixels().map(|p| luma_601(p.0)).collect()),
        DynamicImage::ImageRgba32F(img) => {
            (BitDepth::F32, img.pixels().map(|p| luma_601([p.0[0], p.0[1], p.0[2]])).collect())
        }
        other => (BitDepth::U8, other.into_luma8().into_raw().into_iter().map(f32::from).collect()),
    };
    GrayImage::new(width_px, height_px, depth, pixels)
        .map_err(|e| DecodeError::Corrupt { name: name.to_owned(), reason: e.to_string() })
}

/// ITU-R 601 luma, 0.299 R + 0.587 G + 0.114 B, written around green so that a grey pixel (equal channels) gives
/// exactly its value: the three weights do not sum to exactly 1 in f32, and an RGB copy of a grey film must reach the
/// networks as the film itself does.
pub(crate) fn luma_601([r, g, b]: [f32; 3]) -> f32 {
    g + 0.299 * (r - g) + 0.114 * (b - g)
}

#[cfg(test)]
mod luma_tests {
    use super::luma_601;

    #[test]
    fn grey_pixels_keep_their_value_and_colour_takes_the_601_weights() {
        for value in 0..=u16::MAX {
            let v = f32::from(value);
            assert_eq!(luma_601([v, v, v]), v);
        }
        assert!((luma_601([255.0, 0.0, 0.0]) - 0.299 * 255.0).abs() < 1e-4);
        assert!((luma_601([0.0, 255.0, 0.0]) - 0.587 * 255.0).abs() < 1e-4);
        assert!((luma_601([0.0, 0.0, 255.0]) - 0.114 * 255.0).abs() < 1e-4);
    }
}
