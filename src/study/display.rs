//! The identical display pipeline for every case, real or artificial.
//!
//! decode (png/jpeg/tiff) -> gray as f32 in [0, 1] (colour by Rec. 709 luma) -> border crop (`border_crop_percent`
//! of the width off left and right, of the height off top and bottom: burned-in text sits there on real films only)
//! -> centre crop to a square (a letterbox would reveal non-square sources) -> resize to `size_px` with Lanczos3 ->
//! quantise to the study's bit depth -> u16 pixels. No metadata, file name or source size survives: `DisplayImage` holds width, height and pixels only.

use std::io::Cursor;
use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma};

use super::design::{DisplayBitDepth, DisplaySpec, MAX_BORDER_CROP_PERCENT};
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
    if spec.border_crop_percent > MAX_BORDER_CROP_PERCENT {
        return Err(StudyError::InvalidDesign(format!(
            "border crop {}% is outside 0..={MAX_BORDER_CROP_PERCENT}",
            spec.border_crop_percent
        )));
    }
    let gray = image.to_luma32f();
    let inner = inside_border(gray.width(), gray.height(), spec.border_crop_percent);
    let side = inner.width_px.min(inner.height_px);
    let left = inner.left_px + (inner.width_px - side) / 2;
    let top = inner.top_px + (inner.height_px - side) / 2;
    let square = image::imageops::crop_imm(&gray, left, top, side, side).to_image();
    let resized = image::imageops::resize(&square, spec.size_px, spec.size_px, FilterType::Lanczos3);
    let pixels = resized.into_raw().into_iter().map(|value| quantise(value, spec.bit_depth)).collect();
    Ok(DisplayImage { width_px: spec.size_px, height_px: spec.size_px, pixels })
}

/// A rectangle of an image, in pixels from its top-left corner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PixelRect {
    left_px: u32,
    top_px: u32,
    width_px: u32,
    height_px: u32,
}

/// What is left of a `width_px` x `height_px` image once `border_crop_percent` of its width is cut from the left and
/// from the right, and of its height from the top and from the bottom. The cut is rounded down, so that at most 25%
/// per side never empties an image of one pixel or more.
fn inside_border(width_px: u32, height_px: u32, border_crop_percent: u32) -> PixelRect {
    let percent = border_crop_percent.min(MAX_BORDER_CROP_PERCENT);
    // At most a quarter of a u32, so the cast back cannot truncate.
    let cut = |extent_px: u32| (u64::from(extent_px) * u64::from(percent) / 100) as u32;
    let (cut_x, cut_y) = (cut(width_px), cut(height_px));
    PixelRect { left_px: cut_x, top_px: cut_y, width_px: width_px - 2 * cut_x, height_px: height_px - 2 * cut_y }
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
        let spec = DisplaySpec { size_px: 16, bit_depth: DisplayBitDepth::Sixteen, border_crop_percent: 0 };
        let source = DynamicImage::ImageLuma16(ImageBuffer::from_fn(40, 30, |x, y| Luma([(x * 1000 + y * 37) as u16])));
        let display = to_display_image(&source, &spec, "test").unwrap();
        let bytes = display.to_png_bytes().unwrap();
        assert_eq!(DisplayImage::from_png_bytes(&bytes, "c").unwrap(), display);
    }

    #[test]
    fn eight_bit_display_lies_on_the_257_grid_and_uses_the_full_range() {
        let spec = DisplaySpec { size_px: 8, bit_depth: DisplayBitDepth::Eight, border_crop_percent: 0 };
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

    /// A black `width` x `height` image with white wherever `white(x, y)`.
    fn black_with(width: u32, height: u32, white: impl Fn(u32, u32) -> bool) -> DynamicImage {
        DynamicImage::ImageLuma8(ImageBuffer::from_fn(width, height, |x, y| Luma([if white(x, y) { 255 } else { 0 }])))
    }

    fn brightest(image: &DynamicImage, border_crop_percent: u32) -> u16 {
        let spec = DisplaySpec { size_px: 16, bit_depth: DisplayBitDepth::Sixteen, border_crop_percent };
        let display = to_display_image(image, &spec, "test").unwrap();
        assert_eq!((display.width_px(), display.height_px()), (16, 16));
        display.pixels().iter().copied().max().unwrap_or(0)
    }

    #[test]
    fn a_border_crop_removes_a_one_pixel_frame() {
        let framed = black_with(40, 40, |x, y| x == 0 || y == 0 || x == 39 || y == 39);
        assert!(brightest(&framed, 0) > 10_000, "without a crop the frame shows");
        assert_eq!(brightest(&framed, 10), 0, "10% of 40 px is 4 px per side: the frame is gone");
    }

    #[test]
    fn a_border_crop_removes_text_in_a_corner() {
        // A side marker "L": a bright block 3 px in from the top-left corner of a 100 px film.
        let marked = black_with(100, 100, |x, y| (3..9).contains(&x) && (3..12).contains(&y));
        assert!(brightest(&marked, 0) > 30_000);
        assert!(brightest(&marked, 5) > 30_000, "5 px per side leave the block");
        assert_eq!(brightest(&marked, 10), 0, "10 px per side remove it");
    }

    #[test]
    fn a_rectangular_image_loses_the_same_share_of_each_side() {
        assert_eq!(inside_border(200, 100, 10), PixelRect { left_px: 20, top_px: 10, width_px: 160, height_px: 80 });
        assert_eq!(inside_border(90, 300, 25), PixelRect { left_px: 22, top_px: 75, width_px: 46, height_px: 150 });
        assert_eq!(inside_border(640, 480, 0), PixelRect { left_px: 0, top_px: 0, width_px: 640, height_px: 480 });
        // Tiny images keep a pixel even at the largest crop.
        assert_eq!(inside_border(3, 1, 25), PixelRect { left_px: 0, top_px: 0, width_px: 3, height_px: 1 });
        // A landscape film: its short side (the height) loses 10% at top and bottom, 10 px of 100. A bright
        // band 6-9 px from the top is cut, one 12-15 px from the top stays.
        let cut_rows = black_with(200, 100, |_, y| (6..10).contains(&y));
        assert!(brightest(&cut_rows, 0) > 10_000);
        assert_eq!(brightest(&cut_rows, 10), 0);
        let kept_rows = black_with(200, 100, |_, y| (12..16).contains(&y));
        assert!(brightest(&kept_rows, 10) > 10_000);
        // A portrait film loses 10% of its width at left and right: a band 6-9 px from the right edge is cut.
        let cut_column = black_with(100, 200, |x, _| (90..94).contains(&x));
        assert!(brightest(&cut_column, 0) > 10_000);
        assert_eq!(brightest(&cut_column, 10), 0);
    }

    #[test]
    fn no_crop_leaves_the_pipeline_as_it_was() {
        // The square centre crop alone, as before the option existed: studies rebuilt from a seed stay the same.
        let source = DynamicImage::ImageLuma16(ImageBuffer::from_fn(48, 30, |x, y| Luma([(x * 900 + y * 51) as u16])));
        let spec = DisplaySpec { size_px: 12, bit_depth: DisplayBitDepth::Sixteen, border_crop_percent: 0 };
        let square = DynamicImage::ImageLuma16(image::imageops::crop_imm(&source.to_luma16(), 9, 0, 30, 30).to_image());
        assert_eq!(to_display_image(&source, &spec, "a").unwrap(), to_display_image(&square, &spec, "b").unwrap());
    }

    #[test]
    fn a_crop_beyond_the_limit_is_an_error() {
        let spec = DisplaySpec { border_crop_percent: 60, ..DisplaySpec::default() };
        let error = to_display_image(&black_with(8, 8, |_, _| false), &spec, "test").unwrap_err();
        assert!(error.to_string().contains("border crop 60%"), "{error}");
    }

    #[test]
    fn missing_file_is_named() {
        let error = decode_image_file(Path::new("/nonexistent/dir/cxr_9.png")).unwrap_err();
        assert!(error.to_string().contains("cxr_9.png"), "{error}");
    }
}
