//! Writing a heatmap next to its image: an 8-bit RGB overlay PNG (the CLI: half the image, half the jet-coloured map,
//! as pytorch-grad-cam's `show_cam_on_image`; the workbench: its view's window, opacity and threshold), the raw map as a 16-bit PNG and as float32 .npy. Shared by
//! `thorax classify --heatmap` and the workbench's "Export heatmaps...".

use std::path::{Path, PathBuf};

use crate::atomic_file::{IfExists, write_file};

use crate::convert::npy::write_npy_f32;
use crate::models::heatmap::GrayMap;

/// Why heatmap files could not be written; names the file.
#[derive(Debug, thiserror::Error)]
pub enum HeatmapExportError {
    #[error("writing {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("the heatmap is {map_w}x{map_h} px but the image is {image_w}x{image_h} px")]
    SizeMismatch { map_w: usize, map_h: usize, image_w: usize, image_h: usize },
}

/// The three files written for one heatmap.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapFiles {
    pub overlay_png: PathBuf,
    pub map_png: PathBuf,
    pub map_npy: PathBuf,
}

/// The jet colormap of the viewer's shader (`shaders/radiograph.wgsl`), for t in [0, 1].
fn jet(t: f32) -> [f32; 3] {
    let channel = |centre: f32| (1.5 - (4.0 * t - centre).abs()).clamp(0.0, 1.0);
    [channel(3.0), channel(2.0), channel(1.0)]
}

/// How the map is laid over the image: the viewer's blend, `mix(gray, jet(map), opacity)` where `map >= threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverlayStyle {
    pub opacity: f32,
    pub threshold: f32,
}

impl OverlayStyle {
    /// pytorch-grad-cam's `show_cam_on_image`: half image, half map, everywhere (`thorax classify --heatmap`).
    pub const HALF_AND_HALF: Self = Self { opacity: 0.5, threshold: 0.0 };
}

/// 8-bit RGB: the gray image (values in [0, 1]) with the jet-coloured map blended in as `style` says.
pub fn overlay_rgb(gray: &GrayMap, map: &GrayMap, style: OverlayStyle) -> Vec<u8> {
    let opacity = style.opacity.clamp(0.0, 1.0);
    let mut rgb = Vec::with_capacity(gray.values.len() * 3);
    for (&g, &m) in gray.values.iter().zip(&map.values) {
        let g = if g.is_finite() { g.clamp(0.0, 1.0) } else { 0.0 };
        let m = if m.is_finite() { m.clamp(0.0, 1.0) } else { 0.0 };
        let weight = if m >= style.threshold { opacity } else { 0.0 };
        for c in jet(m) {
            rgb.push((((1.0 - weight) * g + weight * c) * 255.0).round() as u8);
        }
    }
    rgb
}

/// The three files of the heatmap `base` in `dir`, so callers can check them before writing.
pub fn heatmap_file_paths(dir: &Path, base: &str) -> HeatmapFiles {
    HeatmapFiles {
        overlay_png: dir.join(format!("{base}_overlay.png")),
        map_png: dir.join(format!("{base}_map.png")),
        map_npy: dir.join(format!("{base}_map.npy")),
    }
}

impl HeatmapFiles {
    /// The three paths, overlay first.
    pub fn paths(&self) -> [&Path; 3] {
        [&self.overlay_png, &self.map_png, &self.map_npy]
    }
}

/// Writes `<base>_overlay.png` (blended as `style` says), `<base>_map.png` (16-bit) and `<base>_map.npy` into `dir`,
/// each through a temporary file renamed into place, replacing files of those names (the command line refuses them
/// first without `--overwrite`, the workbench asks). `gray` is the image in [0, 1] and `map` the heatmap at the
/// image's size, values in [0, 1].
pub fn write_heatmap_files(
    dir: &Path,
    base: &str,
    gray: &GrayMap,
    map: &GrayMap,
    style: OverlayStyle,
) -> Result<HeatmapFiles, HeatmapExportError> {
    if (gray.width_px, gray.height_px) != (map.width_px, map.height_px) || gray.values.len() != map.values.len() {
        return Err(HeatmapExportError::SizeMismatch {
            map_w: map.width_px,
            map_h: map.height_px,
            image_w: gray.width_px,
            image_h: gray.height_px,
        });
    }
    let failed = |path: &Path, reason: String| HeatmapExportError::Write { path: path.display().to_string(), reason };
    let (width, height) = (map.width_px as u32, map.height_px as u32);

    let files = heatmap_file_paths(dir, base);
    let save_png = |image: image::DynamicImage, path: &Path| {
        let mut encoded = std::io::Cursor::new(Vec::new());
        image.write_to(&mut encoded, image::ImageFormat::Png).map_err(|e| failed(path, e.to_string()))?;
        write_file(path, IfExists::Replace, encoded.get_ref()).map_err(|e| failed(path, e.to_string()))
    };

    let overlay = image::RgbImage::from_raw(width, height, overlay_rgb(gray, map, style))
        .ok_or_else(|| failed(&files.overlay_png, "overlay buffer does not match the image size".to_owned()))?;
    save_png(overlay.into(), &files.overlay_png)?;

    let levels: Vec<u16> = map.values.iter().map(|&v| (v.clamp(0.0, 1.0) * 65535.0).round() as u16).collect();
    let levels = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_raw(width, height, levels)
        .ok_or_else(|| failed(&files.map_png, "map buffer does not match the image size".to_owned()))?;
    save_png(levels.into(), &files.map_png)?;

    write_npy_f32(&files.map_npy, &[map.height_px, map.width_px], &map.values)
        .map_err(|e| failed(&files.map_npy, e.to_string()))?;
    Ok(files)
}

/// A file-name part from free text: letters, digits, '-' and '_' kept, anything else '_'.
pub fn safe_file_part(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_three_files_that_read_back_and_refuses_mismatched_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let gray = GrayMap { width_px: 3, height_px: 2, values: vec![0.0, 0.5, 1.0, 0.2, 0.4, 0.6] };
        let map = GrayMap { width_px: 3, height_px: 2, values: vec![0.0, 0.25, 0.5, 0.75, 1.0, 0.1] };
        let files = write_heatmap_files(dir.path(), "x_Cardiomegaly_gradcam", &gray, &map, OverlayStyle::HALF_AND_HALF)
            .unwrap();
        let raw = image::open(&files.map_png).unwrap().into_luma16();
        assert_eq!(raw.get_pixel(1, 0).0[0], (0.25f32 * 65535.0).round() as u16);
        let overlay = image::open(&files.overlay_png).unwrap().into_rgb8();
        assert_eq!(overlay.dimensions(), (3, 2));
        let (shape, values) = crate::convert::npy::read_npy_f32(&files.map_npy).unwrap();
        assert_eq!((shape, values), (vec![2, 3], map.values.clone()));
        let small = GrayMap { width_px: 1, height_px: 1, values: vec![0.0] };
        assert!(matches!(
            write_heatmap_files(dir.path(), "y", &gray, &small, OverlayStyle::HALF_AND_HALF),
            Err(HeatmapExportError::SizeMismatch { .. })
        ));
        assert_eq!(safe_file_part("Pleural Thickening/1"), "Pleural_Thickening_1");
    }

    #[test]
    fn the_overlay_blends_with_the_opacity_above_the_threshold_only() {
        let gray = GrayMap { width_px: 2, height_px: 1, values: vec![0.4, 0.4] };
        let map = GrayMap { width_px: 2, height_px: 1, values: vec![0.1, 1.0] };
        let style = OverlayStyle { opacity: 1.0, threshold: 0.2 };
        let rgb = overlay_rgb(&gray, &map, style);
        assert_eq!(&rgb[..3], &[102, 102, 102], "below the threshold: the image alone");
        assert_eq!(&rgb[3..], &[128, 0, 0], "full opacity: jet(1) alone");
        let half = overlay_rgb(&gray, &map, OverlayStyle::HALF_AND_HALF);
        assert_eq!(&half[..3], &[51, 51, 166], "0.5 * 0.4 + 0.5 * jet(0.1), whose blue is 0.9");
    }

    #[test]
    fn jet_matches_the_shader_ends() {
        assert_eq!(jet(0.0), [0.0, 0.0, 0.5]);
        assert_eq!(jet(1.0), [0.5, 0.0, 0.0]);
        assert_eq!(jet(0.5), [0.5, 1.0, 0.5]);
    }
}
