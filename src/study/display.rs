//! The identical display pipeline for every case, real or artificial.
//!
//! decode (png/jpeg/tiff) -> gray as f32 in [0, 1] (colour by Rec. 709 luma) -> centre crop to a square (a letterbox
//! would reveal non-square sources) -> resize to `size_px` with Lanczos3 -> quantise to the study's bit depth ->
//! u16 pixels. No metadata, file name or source size survives: `DisplayImage` holds width, height and pixels only.

use std::io::Cursor;
use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma};

use super::design::{DisplayBitDepth, DisplaySpec};
use super::error::{StudyError, StudyResult};

/// The resampling filter of every case (logged in the study design output).
pub const RESAMPLING_FILTER: &str = "lanczos3";

/// A case as the reading screen gets it: gray u16 pixels, row-major, top-left origin. Nothing else.
#[derive(Clone, PartialEq, Eq)]
pub struct DisplayImage {
    width_px: u32,
    height_px: u32,
    pixels: Vec<u16>,
}

impl DisplayImage {
    /// Width in pixels.
    pub fn width_px(&self) -> u32 {
        self.width_px
    }

    /// Height in pixels.
    pub fn height_px(&self) -> u32 {
        self.height_px
    }

    /// Gray values, row-major, `width_px * height_px` of them, full u16 range (0 black, 65535 white).
    pub fn pixels(&self) -> &[u16] {
        &self.pixels
    }

    /// Encodes as a lossless 16-bit gray PNG (how the study database stores cases).
    pub(crate) fn to_png_bytes(&self) -> StudyResult<Vec<u8>> {
        let buffer: ImageBuffer<Luma<u16>, Vec<u16>> =
            ImageBuffer::from_raw(self.width_px, self.height_px, self.pixels.clone())
                .ok_or_else(|| StudyError::InvalidDesign("display buffer length does not match its size".to_owned()))?;
        let mut bytes = Vec::new();
        buffer
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .map_err(|error| StudyError::Decode { path: "<display image>".into(), reason: error.to_string() })?;
        Ok(bytes)
    }

    /// Decodes a PNG written by `to_png_bytes`; `case_id` names the case in errors.
    pub(crate) fn from_png_bytes(bytes: &[u8], case_id: &str) -> StudyResult<Self> {
        let decoded = image::load_from_memory_with_format(bytes, ImageFormat::Png).map_err(|error| {
            StudyError::Decode { path: format!("<study case {case_id}>").into(), reason: error.to_string() }
        })?;
        let gray = decoded.into_luma16();
        Ok(Self { width_px: gray.width(), height_px: gray.height(), pixels: gray.into_raw() })
    }
}

impl std::fmt::Debug for DisplayImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Pixels are left out: a Debug dump of megapixels helps nobody.
        f.debug_struct("DisplayImage")
            .field("width_px", &self.width_px)
            .field("height_px", &self.height_px)
            .field("pixel_count", &self.pixels.len())
            .finish()
    }
}

/// Decodes an image file, naming the file in every error.
pub fn decode_image_file(path: &Path) -> StudyResult<DynamicImage> {
    if !path.is_file() {
        return Err(StudyError::MissingImage { path: path.to_path_buf() });
    }
    let is_dicom = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "dcm" | "dicom"));
    if is_dicom {
        // DICOM through the common loader (modality LUT, MONOCHROME1 mirrored), as 16-bit over its value range.
        let image = crate::imaging::load_image(path)
            .map_err(|error| StudyError::Decode { path: path.to_path_buf(), reason: error.to_string() })?;
        let values: Vec<u16> = image.to_unit_range().iter().map(|v| (v * 65535.0).round() as u16).collect();
        let (width, height) = (image.width_px() as u32, image.height_px() as u32);
        return image::ImageBuffer::from_raw(width, height, values).map(DynamicImage::ImageLuma16).ok_or_else(|| {
            StudyError::Decode { path: path.to_path_buf(), reason: "pixel count does not match the size".to_owned() }
        });
    }
    let bytes = std::fs::read(path).map_err(|source| StudyError::Io { path: path.to_path_buf(), source })?;
    if let Some(reason) = crate::imaging::png_palette::damaged_palette(&bytes) {
        return Err(StudyError::Decode { path: path.to_path_buf(), reason });
    }
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|source| StudyError::Io { path: path.to_path_buf(), source })?;
    reader.decode().map_err(|error| StudyError::Decode { path: path.to_path_buf(), reason: error.to_string() })
}

/// Runs the display pipeline on a decoded image; `source` names the image in the error for an empty image.
pub fn to_display_image(image: &DynamicImage, spec: &DisplaySpec, source: &str) -> StudyResult<DisplayImage> {
    if image.width() == 0 || image.height() == 0 {
        return Err(StudyError::Decode { path: source.into(), reason: "the image has no pixels".to_owned() });
    }
    let gray = image.to_luma32f();
    let side = gray.width().min(gray.height());
    let left = (gray.width() - side) / 2;
    let top = (gray.height() - side) / 2;
    let square = image::imageops::crop_imm(&gray, left, top, side, side).to_image();
    let resized = image::imageops::resize(&square, spec.size_px, spec.size_px, FilterType::Lanczos3);
    let pixels = resized.into_raw().into_iter().map(|value| quantise(value, spec.bit_depth)).collect();
    Ok(DisplayImage { width_px: spec.size_px, height_px: spec.size_px, pixels })
}

/// Clamps (Lanczos overshoots) and rounds to the study's bit depth, returned on the u16 scale.
fn quantise(value: f32, bit_depth: DisplayBitDepth) -> u16 {
    let unit = if value.is_finite() { value.clamp(0.0, 1.0) } else { 0.0 };
    match bit_depth {
        // The casts cannot overflow: the products lie in [0, 255] and [0, 65535].
        DisplayBitDepth::Eight => (unit * 255.0).round() as u16 * 257,
        DisplayBitDepth::Sixteen => (unit * 65535.0).round() as u16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_is_lossless() {
        let spec = DisplaySpec { size_px: 16, bit_depth: DisplayBitDepth::Sixteen };
        let source = DynamicImage::ImageLuma16(ImageBuffer::from_fn(40, 30, |x, y| Luma([(x * 1000 + y * 37) as u16])));
        let display = to_display_image(&source, &spec, "test").unwrap();
        let bytes = display.to_png_bytes().unwrap();
        assert_eq!(DisplayImage::from_png_bytes(&bytes, "c").unwrap(), display);
    }

    #[test]
    fn eight_bit_display_lies_on_the_257_grid_and_uses_the_full_range() {
        let spec = DisplaySpec { size_px: 8, bit_depth: DisplayBitDepth::Eight };
        let source = DynamicImage::ImageLuma8(ImageBuffer::from_fn(8, 8, |x, _| Luma([if x < 4 { 0 } else { 255 }])));
        let display = to_display_image(&source, &spec, "test").unwrap();
        assert!(display.pixels().iter().all(|v| v % 257 == 0));
        assert_eq!(display.pixels().iter().min(), Some(&0));
        assert_eq!(display.pixels().iter().max(), Some(&65535));
    }

    #[test]
    fn empty_image_is_an_error_naming_the_source() {
        let empty = DynamicImage::ImageLuma8(ImageBuffer::new(0, 0));
        let error = to_display_image(&empty, &DisplaySpec::default(), "generator index=3").unwrap_err();
        assert!(error.to_string().contains("generator index=3"), "{error}");
    }

    #[test]
    fn missing_file_is_named() {
        let error = decode_image_file(Path::new("/nonexistent/dir/cxr_9.png")).unwrap_err();
        assert!(error.to_string().contains("cxr_9.png"), "{error}");
    }
}
