//! Saving a plot as PNG: the app asks egui for a screenshot of the frame (`ViewportCommand::Screenshot`), crops it
//! to the plot's rectangle and writes it with the image crate on a helper thread.
//!
//! A screenshot shows exactly what the user sees (the plot with egui's fonts and colours) and works wherever the
//! frame is rendered, the headless kittest renderer included; redrawing the plots with the image crate would need
//! a second text renderer for axis labels and legends.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::Sender;

/// Why a plot could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum PlotPngError {
    #[error("the plot area {rect:?} lies outside the {width}x{height} px screenshot")]
    OutsideScreenshot { rect: egui::Rect, width: usize, height: usize },
    #[error("writing {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// The part of `screenshot` under `rect` (in points), clamped to the image.
pub fn crop(
    screenshot: &egui::ColorImage,
    rect: egui::Rect,
    pixels_per_point: f32,
) -> Result<image::RgbaImage, PlotPngError> {
    let [width, height] = screenshot.size;
    let outside = || PlotPngError::OutsideScreenshot { rect, width, height };
    let to_px = |v: f32, limit: usize| ((v * pixels_per_point).round().max(0.0) as usize).min(limit);
    let (x0, x1) = (to_px(rect.min.x, width), to_px(rect.max.x, width));
    let (y0, y1) = (to_px(rect.min.y, height), to_px(rect.max.y, height));
    if x1 <= x0 || y1 <= y0 {
        return Err(outside());
    }
    let mut bytes = Vec::with_capacity((x1 - x0) * (y1 - y0) * 4);
    for row in screenshot.pixels.chunks_exact(width.max(1)).skip(y0).take(y1 - y0) {
        for pixel in row.get(x0..x1).unwrap_or_default() {
            bytes.extend_from_slice(&pixel.to_array());
        }
    }
    let (w, h) = (u32::try_from(x1 - x0).map_err(|_| outside())?, u32::try_from(y1 - y0).map_err(|_| outside())?);
    image::RgbaImage::from_raw(w, h, bytes).ok_or_else(outside)
}

/// Writes `image` as PNG.
pub fn write_png(image: &image::RgbaImage, path: &Path) -> Result<(), PlotPngError> {
    image
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| PlotPngError::Write { path: path.to_path_buf(), reason: e.to_string() })
}

/// Requests a screenshot of the next rendered frame; its `rect` is saved to `path` on a helper thread and the
/// outcome (the path, or why not) is sent on `done` before the UI is woken.
pub fn request_plot_png(ctx: &egui::Context, rect: egui::Rect, path: PathBuf, done: Sender<Result<PathBuf, String>>) {
    let pixels_per_point = ctx.pixels_per_point();
    let wake = ctx.clone();
    let callback = egui::ScreenshotCallback::new(move |screenshot: Arc<egui::ColorImage>| {
        let spawned = std::thread::Builder::new().name("thorax-plot-png".to_owned()).spawn({
            let done = done.clone();
            let wake = wake.clone();
            let path = path.clone();
            move || {
                let result = crop(&screenshot, rect, pixels_per_point)
                    .and_then(|image| write_png(&image, &path))
                    .map(|()| path)
                    .map_err(|e| e.to_string());
                done.send(result).ok();
                wake.request_repaint();
            }
        });
        if let Err(e) = spawned {
            done.send(Err(format!("cannot start the PNG writer: {e}"))).ok();
            wake.request_repaint();
        }
    });
    ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(callback));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_takes_the_rect_in_pixels_and_clamps() {
        let mut screenshot = egui::ColorImage::filled([8, 6], egui::Color32::BLACK);
        screenshot.pixels[2 * 8 + 4] = egui::Color32::RED; // (x 4, y 2)
        let rect = egui::Rect::from_min_max(egui::pos2(2.0, 1.0), egui::pos2(3.0, 2.0));
        let cropped = crop(&screenshot, rect, 2.0).unwrap();
        assert_eq!(cropped.dimensions(), (2, 2));
        assert_eq!(cropped.get_pixel(0, 0).0, [255, 0, 0, 255]);
        assert_eq!(cropped.get_pixel(1, 1).0, [0, 0, 0, 255]);
        let beyond = egui::Rect::from_min_max(egui::pos2(6.0, 4.0), egui::pos2(100.0, 100.0));
        assert_eq!(crop(&screenshot, beyond, 1.0).unwrap().dimensions(), (2, 2));
        let outside = egui::Rect::from_min_max(egui::pos2(50.0, 50.0), egui::pos2(60.0, 60.0));
        assert!(crop(&screenshot, outside, 1.0).is_err());
    }

    #[test]
    fn png_is_written_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plot.png");
        let image = image::RgbaImage::from_pixel(3, 2, image::Rgba([10, 20, 30, 255]));
        write_png(&image, &path).unwrap();
        assert_eq!(image::open(&path).unwrap().to_rgba8(), image);
        assert!(write_png(&image, &dir.path().join("missing/plot.png")).is_err());
    }
}
