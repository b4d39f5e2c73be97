//! Saving a plot as PNG: the plot is laid out again in an egui context of its own, as tall as the figure needs,
//! and drawn by the software rasterizer, so the file holds the whole figure however much of it the window shows.
//! Figures use egui's light theme on white at 2 pixels per point, for slides and print.

use std::path::{Path, PathBuf};

use crossbeam_channel::Sender;

use crate::app::mesh_raster::{SoftCanvas, SoftTextures};
use crate::app::metrics_plots::record_plot_ui;
use crate::app::metrics_record::MetricRecord;

/// Why a plot could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum PlotPngError {
    #[error("the figure drew nothing (its area is {width_points} x {height_points} points)")]
    Empty { width_points: f32, height_points: f32 },
    #[error("the figure is too large to draw: {width_px} x {height_px} px")]
    TooLarge { width_px: usize, height_px: usize },
    #[error("writing {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// How a figure is laid out and drawn.
#[derive(Debug, Clone, Copy)]
pub struct FigureStyle {
    /// Width available to the plot, in points (the plots size themselves within it).
    pub width_points: f32,
    pub pixels_per_point: f32,
    /// Blank space around the plot, in points.
    pub margin_points: f32,
}

impl FigureStyle {
    /// About the Metrics window's width, at twice the pixels of a standard-density screen.
    pub const PRINT: Self = Self { width_points: 880.0, pixels_per_point: 2.0, margin_points: 12.0 };
}

/// The layout height available to a figure, in points; a taller figure is cut at it.
const MAX_HEIGHT_POINTS: f32 = 12_000.0;

/// The largest canvas drawn, in pixels (about 1 GiB of f32 RGBA).
const MAX_CANVAS_PX: usize = 64_000_000;

/// Lays out `add_plot` (which returns the rectangle it drew) in a fresh light-themed context and draws it.
pub fn render_figure(
    style: &FigureStyle,
    mut add_plot: impl FnMut(&mut egui::Ui) -> egui::Rect,
) -> Result<image::RgbaImage, PlotPngError> {
    let ctx = egui::Context::default();
    ctx.set_theme(egui::Theme::Light);
    ctx.all_styles_mut(|s| {
        s.animation_time = 0.0;
        s.visuals.panel_fill = egui::Color32::WHITE;
    });
    let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(style.width_points, MAX_HEIGHT_POINTS));
    let mut input = egui::RawInput { screen_rect: Some(screen), ..Default::default() };
    if let Some(viewport) = input.viewports.get_mut(&egui::ViewportId::ROOT) {
        viewport.native_pixels_per_point = Some(style.pixels_per_point);
    }
    let mut textures = SoftTextures::default();
    let mut drawn = egui::Rect::NOTHING;
    let mut last = None;
    // Grids and plots size themselves from the previous pass: the third pass is the settled one.
    for _ in 0..3 {
        let mut output = ctx.run_ui(input.clone(), |ui| {
            let margin = egui::Margin::same(style.margin_points.round() as i8);
            egui::Frame::new().inner_margin(margin).show(ui, |ui| drawn = add_plot(ui));
        });
        textures.set(&mut output.textures_delta);
        textures.free(&mut output.textures_delta);
        last = Some(output);
    }
    let Some(output) = last else { return Err(empty(drawn)) };
    let area = drawn.expand(style.margin_points).intersect(screen);
    if !area.is_positive() {
        return Err(empty(drawn));
    }
    let ppp = output.pixels_per_point;
    let (width_px, height_px) = ((area.width() * ppp).ceil() as usize, (area.height() * ppp).ceil() as usize);
    if width_px.saturating_mul(height_px) > MAX_CANVAS_PX {
        return Err(PlotPngError::TooLarge { width_px, height_px });
    }
    let primitives = ctx.tessellate(output.shapes, ppp);
    let mut canvas = SoftCanvas::new(width_px, height_px, egui::Color32::WHITE);
    canvas.paint(&primitives, &textures, area.min, ppp);
    canvas.into_image().ok_or(PlotPngError::TooLarge { width_px, height_px })
}

fn empty(drawn: egui::Rect) -> PlotPngError {
    PlotPngError::Empty { width_points: drawn.width().max(0.0), height_points: drawn.height().max(0.0) }
}

/// The whole plot of `record` as a figure.
pub fn render_record_figure(record: &MetricRecord, style: &FigureStyle) -> Result<image::RgbaImage, PlotPngError> {
    render_figure(style, |ui| record_plot_ui(ui, record))
}

/// Writes `image` as PNG, through a temporary file renamed into place (the save dialog has asked before replacing a
/// file), so a failure never leaves half a PNG nor loses the file that was there.
pub fn write_png(image: &image::RgbaImage, path: &Path) -> Result<(), PlotPngError> {
    let failed = |reason: String| PlotPngError::Write { path: path.to_path_buf(), reason };
    let mut encoded = std::io::Cursor::new(Vec::new());
    image.write_to(&mut encoded, image::ImageFormat::Png).map_err(|e| failed(e.to_string()))?;
    crate::atomic_file::write_file(path, crate::atomic_file::IfExists::Replace, encoded.get_ref())
        .map_err(|e| failed(e.to_string()))
}

/// Draws `record`'s figure and writes it to `path` on a helper thread; the outcome (the path, or why not) is sent on
/// `done` before `wake` is repainted.
pub fn save_plot_png(record: MetricRecord, path: PathBuf, done: Sender<Result<PathBuf, String>>, wake: egui::Context) {
    let spawned = std::thread::Builder::new().name("thorax-plot-png".to_owned()).spawn({
        let done = done.clone();
        let wake = wake.clone();
        move || {
            let result = render_record_figure(&record, &FigureStyle::PRINT)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::metrics_plots::correlation_color;
    use crate::app::metrics_record::{MetricDetail, MetricKind, MsSsimLabel, Setting};
    use crate::metrics::correlation::CorrelationMatrix;
    use crate::metrics::msssim_histogram::{PairHistogram, histogram};
    use crate::models::labels::NIH_CLASSIFIER_LABELS;

    #[test]
    fn a_figure_is_drawn_whole_at_its_own_size() {
        // A column far taller than any window: the figure holds all of it, and its last row is drawn.
        let style = FigureStyle { width_points: 300.0, pixels_per_point: 2.0, margin_points: 10.0 };
        let image = render_figure(&style, |ui| {
            ui.vertical(|ui| {
                for row in 0..40 {
                    let (rect, _) = ui.allocate_exact_size(egui::vec2(100.0, 50.0), egui::Sense::hover());
                    let color = if row == 39 { egui::Color32::RED } else { egui::Color32::BLUE };
                    ui.painter().rect_filled(rect, 0.0, color);
                }
                ui.label("a caption");
            })
            .response
            .rect
        })
        .unwrap();
        let (width, height) = image.dimensions();
        assert!(height > 2 * 40 * 50 && height < 2 * (40 * 54 + 60), "{width}x{height}");
        assert!((2 * 100..=2 * 320).contains(&width), "{width}x{height}");
        let count = |rgb: [u8; 3]| image.pixels().filter(|p| p.0[..3] == rgb).count();
        assert!(count([255, 0, 0]) >= 200 * 100 - 400, "the last row is drawn: {}", count([255, 0, 0]));
        // The caption's glyphs come from the font atlas: dark pixels below the last row.
        let dark_below = image.enumerate_pixels().filter(|(_, y, p)| *y > 2 * 40 * 50 && p.0[0] < 100).count();
        assert!(dark_below > 20, "caption pixels: {dark_below}");
        assert_eq!(image.get_pixel(1, 1).0, [255, 255, 255, 255], "white margin");
    }

    fn record(metric: MetricKind, detail: MetricDetail) -> MetricRecord {
        let settings = vec![Setting { name: "seed".into(), value: "7".into() }];
        MetricRecord { id: 1, metric, settings, values: vec![], elapsed_ms: 1.0, detail }
    }

    /// Writes `image` where `THORAX_FIGURE_DIR` says, to look at by eye.
    fn keep_for_review(image: &image::RgbaImage, name: &str) {
        if let Some(dir) = std::env::var_os("THORAX_FIGURE_DIR") {
            write_png(image, &Path::new(&dir).join(name)).unwrap();
        }
    }

    #[test]
    fn all_fourteen_histograms_are_in_the_figure() {
        let values: Vec<f64> = (0..200).map(|i| 0.2 + 0.6 * ((i * 37 % 200) as f64 / 200.0)).collect();
        let (counts, bin_edges, out_of_range) = histogram(&values, 50, (0.0, 1.0)).unwrap();
        let side = PairHistogram {
            counts,
            bin_edges,
            pairs_requested: 200,
            values,
            undefined_pairs: 0,
            out_of_range,
            mean: 0.5,
            std: 0.17,
            seed: 7,
        };
        let labels = NIH_CLASSIFIER_LABELS
            .iter()
            .map(|l| MsSsimLabel { label: (*l).into(), real: Some(side.clone()), artificial: Some(side.clone()) })
            .collect();
        let notes = vec!["a note under the last histogram".to_owned()];
        let figure = record(MetricKind::MsSsimHistogram, MetricDetail::MsSsimHistogram { labels, notes });
        let image = render_record_figure(&figure, &FigureStyle::PRINT).unwrap();
        keep_for_review(&image, "msssim.png");
        // Fourteen 170-point plots with their captions, at 2 px per point: far taller than any window.
        let (width, height) = image.dimensions();
        assert!(height as f32 > 14.0 * 2.0 * (170.0 + 14.0), "{width}x{height}");
        assert!(width as f32 >= 2.0 * 520.0 && width as f32 <= 2.0 * 880.0, "{width}x{height}");
        // The last plot's bars are drawn: the artificial colour appears in the bottom fifteenth.
        let orange = |p: &image::Rgba<u8>| p.0[0] > 200 && p.0[1] > 120 && p.0[1] < 200 && p.0[2] < 140;
        let bottom = image.enumerate_pixels().filter(|(_, y, p)| *y > height - height / 15 && orange(p)).count();
        assert!(bottom > 500, "bars in the last histogram: {bottom}");
    }

    #[test]
    fn the_correlation_matrix_is_drawn_with_its_cells() {
        let names: Vec<String> = NIH_CLASSIFIER_LABELS.iter().map(|l| (*l).to_owned()).collect();
        let r = (0..14)
            .map(|row| (0..14).map(|column| (row != 3).then(|| if row == column { 0.9 } else { -0.2 })).collect())
            .collect();
        let matrix = CorrelationMatrix {
            control_labels: names.clone(),
            output_labels: names,
            r,
            counts: vec![10; 14],
            undefined_cells: (0..14).map(|c| (3, c)).collect(),
        };
        let image = render_record_figure(
            &record(MetricKind::Correlation, MetricDetail::Correlation { matrix }),
            &FigureStyle::PRINT,
        )
        .unwrap();
        keep_for_review(&image, "correlation.png");
        let count = |rgb: [u8; 3]| image.pixels().filter(|p| p.0[..3] == rgb).count();
        let diagonal = correlation_color(Some(0.9)).to_array();
        let undefined = correlation_color(None).to_array();
        // 13 defined diagonal cells of 33 x 33 points at 2 px per point, less their value text.
        assert!(count([diagonal[0], diagonal[1], diagonal[2]]) > 13 * 60 * 60, "diagonal cells");
        assert!(count([undefined[0], undefined[1], undefined[2]]) > 14 * 60 * 60, "the undefined row");
    }

    #[test]
    fn an_empty_figure_is_an_error() {
        let style = FigureStyle::PRINT;
        let error = render_figure(&style, |_| egui::Rect::NOTHING).unwrap_err();
        assert!(matches!(error, PlotPngError::Empty { .. }), "{error}");
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
