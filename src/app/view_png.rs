//! "Save view as PNG": a viewport as the screen shows it (zoom, pan, window/level, invert, colour map, heatmap
//! overlay) with its measurements, the ARTIFICIAL badge and the window readout, at the screen's pixel size, for a
//! report, a teaching file or a slide. The radiograph is shaded on the CPU exactly as the shader does it
//! (`view_shading`), and the annotations are the viewport's own drawing code, run in an egui context of its own and
//! rasterized in software, so the file matches the screen without reading anything back from the GPU. What the view
//! is, and whether it is artificial, also goes into the PNG's text chunks.

use std::path::Path;

use crate::app::measurement::MeasureTool;
use crate::app::mesh_raster::{SoftCanvas, SoftTextures};
use crate::app::radiograph_renderer::RadiographFrame;
use crate::app::radiograph_viewer::ViewGeometry;
use crate::app::view_shading::shade_view;
use crate::app::viewport_pane::ViewportPane;

/// The largest view saved, in pixels (a 16k x 8k wall of screens).
const MAX_VIEW_PX: usize = 128_000_000;

/// Why a view could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum ViewPngError {
    #[error("the view shows no image")]
    NoImage,
    #[error("the view has no size on screen ({width_px} x {height_px} px)")]
    Empty { width_px: usize, height_px: usize },
    #[error("the view is too large to save: {width_px} x {height_px} px")]
    TooLarge { width_px: usize, height_px: usize },
    #[error("writing {path}: {reason}")]
    Write { path: String, reason: String },
}

/// What part of the view a saved PNG holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SavedExtent {
    /// The viewport as the screen shows it, at its pixel size.
    AsShown,
    /// The whole image, one PNG pixel per image pixel, with the view's display settings and measurements drawn in
    /// the proportion the fitted view gives them.
    WholeImage,
}

/// A viewport frozen as it was on screen, to be drawn and saved on a helper thread.
pub struct ViewSnapshot {
    extent: SavedExtent,
    /// The pane's image, view, overlay, badge and measurements (without a gesture in progress).
    pane: ViewportPane,
    width_px: usize,
    height_px: usize,
    pixels_per_point: f32,
    /// Outside the image, as the viewer fills it.
    background: egui::Color32,
    style: std::sync::Arc<egui::Style>,
}

impl ViewSnapshot {
    /// `pane` as drawn last frame, at `ctx`'s pixel density; `None` before it has shown an image.
    pub fn of(pane: &ViewportPane, ctx: &egui::Context) -> Option<Self> {
        let (prepared, rect) = (pane.image.as_ref()?, pane.viewer_rect?);
        let pixels_per_point = ctx.pixels_per_point();
        let mut measurements = pane.measurements.clone();
        // A drag not yet released is not a measurement, and the selection and the hovered handle are the screen's
        // working state: the saved view holds the measurements kept, drawn plainly.
        measurements.cancel_gesture();
        measurements.select(None);
        measurements.set_hovered(None);
        let copy = ViewportPane {
            title: pane.title,
            image: Some(prepared.clone()),
            view: pane.view.clone(),
            loading: None,
            placeholder: String::new(),
            viewer_rect: Some(rect),
            overlay: pane.overlay.clone(),
            badge: pane.badge,
            measurements,
        };
        let style = ctx.global_style();
        Some(Self {
            extent: SavedExtent::AsShown,
            pane: copy,
            width_px: (rect.width() * pixels_per_point).round().max(0.0) as usize,
            height_px: (rect.height() * pixels_per_point).round().max(0.0) as usize,
            pixels_per_point,
            background: style.visuals.extreme_bg_color,
            style,
        })
    }

    /// The snapshot as `extent` asks: as shown, or [`Self::whole_image`].
    pub fn with_extent(self, extent: SavedExtent) -> Self {
        match extent {
            SavedExtent::AsShown => self,
            SavedExtent::WholeImage => self.whole_image(),
        }
    }

    /// The whole image at its own resolution instead of the screen's crop: the view fitted, one PNG pixel per
    /// image pixel. Labels and lines keep the size they have against the image when the view is fitted on screen,
    /// so the figure reads as the screen does at any resolution; for an image smaller than its view they keep their
    /// on-screen pixel size instead, so they stay legible.
    pub fn whole_image(mut self) -> Self {
        let Some(prepared) = self.pane.image.as_ref() else { return self };
        let [image_width_px, image_height_px] = [prepared.image.width_px(), prepared.image.height_px()];
        let on_screen = self.pane.viewer_rect.unwrap_or(egui::Rect::ZERO);
        // Points per image pixel when the view is fitted on screen.
        let fit_points_per_px =
            (on_screen.width() / image_width_px as f32).min(on_screen.height() / image_height_px as f32);
        if fit_points_per_px.is_finite() && fit_points_per_px > 0.0 {
            // An image smaller than its view on screen would shrink the text below legibility: never below one
            // pixel per point, the size the screen shows it at.
            self.pixels_per_point = (1.0 / fit_points_per_px).max(1.0);
        }
        self.pane.view.fit();
        self.width_px = image_width_px;
        self.height_px = image_height_px;
        self.extent = SavedExtent::WholeImage;
        self
    }

    /// What part of the view the PNG holds.
    pub fn extent(&self) -> SavedExtent {
        self.extent
    }

    /// The PNG's size, pixels.
    pub fn size_px(&self) -> [usize; 2] {
        [self.width_px, self.height_px]
    }

    /// Whether a region of the view is still being measured (its label would read "measuring...").
    pub fn is_measuring(&self) -> bool {
        self.pane.measurements.is_measuring()
    }

    /// A file name for the save dialog: `<image stem>_<view>.png`.
    pub fn suggested_file_name(&self) -> String {
        let safe = |text: &str| crate::models::heatmap_export::safe_file_part(text);
        let what = match self.extent {
            SavedExtent::AsShown => "view",
            SavedExtent::WholeImage => "full",
        };
        format!("{}_{}_{what}.png", self.image_stem(), safe(&self.pane.title.to_lowercase()))
    }

    /// The image's file name without its extension, safe in a file name.
    fn image_stem(&self) -> String {
        let name = self.pane.image.as_ref().map_or("view", |prepared| prepared.name.as_str());
        let stem = Path::new(name).file_stem().map_or_else(|| name.to_owned(), |s| s.to_string_lossy().into_owned());
        crate::models::heatmap_export::safe_file_part(&stem)
    }

    /// Text chunk `key`, empty when the view has none.
    fn text_chunk(&self, key: &str) -> String {
        self.text_chunks().into_iter().find(|(k, _)| *k == key).map(|(_, text)| text).unwrap_or_default()
    }

    /// The view as an RGB image of its on-screen pixel size.
    pub fn render(&self) -> Result<image::RgbImage, ViewPngError> {
        let (width_px, height_px) = (self.width_px, self.height_px);
        if width_px == 0 || height_px == 0 {
            return Err(ViewPngError::Empty { width_px, height_px });
        }
        if width_px.saturating_mul(height_px) > MAX_VIEW_PX {
            return Err(ViewPngError::TooLarge { width_px, height_px });
        }
        let prepared = self.pane.image.as_ref().ok_or(ViewPngError::NoImage)?;
        let ppp = self.pixels_per_point;
        // Points such that the view is a whole number of pixels, from the origin.
        let rect = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(width_px as f32, height_px as f32) / ppp);
        let geometry = ViewGeometry::new(rect, &prepared.image, &self.pane.view);
        let (image_origin_px, image_extent_px) = geometry.shader_mapping();
        let frame = RadiographFrame {
            image: prepared.image.clone(),
            image_origin_px,
            image_extent_px,
            window: self.pane.view.window,
            inverted: self.pane.view.inverted,
            colormap: self.pane.view.colormap,
            overlay: self.pane.overlay.clone(),
            background: self.background,
        };
        let colours = shade_view(&frame, width_px, height_px);
        let mut canvas = SoftCanvas::from_opaque(width_px, height_px, &colours)
            .ok_or(ViewPngError::TooLarge { width_px, height_px })?;

        let ctx = egui::Context::default();
        ctx.set_global_style(self.style.clone());
        let mut input = egui::RawInput { screen_rect: Some(rect), ..Default::default() };
        if let Some(viewport) = input.viewports.get_mut(&egui::ViewportId::ROOT) {
            viewport.native_pixels_per_point = Some(ppp);
        }
        let mut textures = SoftTextures::default();
        let mut last = None;
        // The first pass fills the font atlas; the second draws with it settled.
        for _ in 0..2 {
            let mut output = ctx.run_ui(input.clone(), |ui| {
                self.pane.annotations_ui(ui, rect, prepared, MeasureTool::default());
            });
            textures.set(&mut output.textures_delta);
            textures.free(&mut output.textures_delta);
            last = Some(output);
        }
        if let Some(output) = last {
            let primitives = ctx.tessellate(output.shapes, output.pixels_per_point);
            canvas.paint(&primitives, &textures, egui::Pos2::ZERO, output.pixels_per_point);
        }
        let rgba = canvas.into_image().ok_or(ViewPngError::TooLarge { width_px, height_px })?;
        let (width, height) = rgba.dimensions();
        let rgb: Vec<u8> = rgba.pixels().flat_map(|p| [p.0[0], p.0[1], p.0[2]]).collect();
        image::RgbImage::from_raw(width, height, rgb).ok_or(ViewPngError::TooLarge { width_px, height_px })
    }

    /// What the PNG's text chunks say: the view, its image, the display settings, and whether it is artificial.
    pub fn text_chunks(&self) -> Vec<(&'static str, String)> {
        let pane = &self.pane;
        let name = pane.image.as_ref().map_or("", |prepared| prepared.name.as_str());
        let view = &pane.view;
        let mut display = format!("window C {} / W {}", view.window.center, view.window.width);
        if view.inverted {
            display.push_str(", inverted");
        }
        if view.colormap != crate::app::radiograph_renderer::Colormap::Gray {
            display.push_str(&format!(", colour map {}", view.colormap.name()));
        }
        if pane.overlay.is_some() {
            display.push_str(", heatmap overlay");
        }
        let count = pane.measurements.items().len();
        if count > 0 {
            display.push_str(&format!(", {count} measurement{}", if count == 1 { "" } else { "s" }));
        }
        let mut chunks = vec![
            ("Software", format!("Thorax Workbench {}", env!("CARGO_PKG_VERSION"))),
            ("Title", format!("{} view: {name}", pane.title)),
            (
                "Description",
                match self.extent {
                    SavedExtent::AsShown => format!("The {} view as shown: {display}", pane.title.to_lowercase()),
                    SavedExtent::WholeImage => format!(
                        "The {} view's whole image at its resolution ({} x {} px): {display}",
                        pane.title.to_lowercase(),
                        self.width_px,
                        self.height_px
                    ),
                },
            ),
        ];
        if let Some(badge) = pane.badge {
            chunks.push(("thorax.synthetic", "true".to_owned()));
            chunks.push(("Comment", format!("{badge} image: not a radiograph of a patient")));
        }
        chunks
    }
}

/// Pixels between views saved side by side.
const FIGURE_GAP_PX: u32 = 8;

/// What a save writes: one view, or several side by side (left to right as on screen), for a figure of a real film
/// beside its artificial counterpart.
pub struct ViewFigure {
    panels: Vec<ViewSnapshot>,
}

impl ViewFigure {
    pub fn single(snapshot: ViewSnapshot) -> Self {
        Self { panels: vec![snapshot] }
    }

    /// `panels` left to right; `None` without any.
    pub fn side_by_side(panels: Vec<ViewSnapshot>) -> Option<Self> {
        (!panels.is_empty()).then_some(Self { panels })
    }

    /// Whether a region of a view is still being measured.
    pub fn is_measuring(&self) -> bool {
        self.panels.iter().any(ViewSnapshot::is_measuring)
    }

    /// A file name for the save dialog: the single view's, else `<first image stem>_side_by_side.png`.
    pub fn suggested_file_name(&self) -> String {
        match &self.panels[..] {
            [single] => single.suggested_file_name(),
            [first, ..] => format!("{}_side_by_side.png", first.image_stem()),
            [] => "views.png".to_owned(),
        }
    }

    /// What the status line calls it.
    fn what(&self) -> String {
        match &self.panels[..] {
            [single] if single.extent() == SavedExtent::WholeImage => "the whole image".to_owned(),
            [_] => "the view".to_owned(),
            panels => format!("{} views side by side", panels.len()),
        }
    }

    /// The views drawn left to right, `FIGURE_GAP_PX` apart, tops aligned, on the views' background.
    pub fn render(&self) -> Result<image::RgbImage, ViewPngError> {
        let images = self.panels.iter().map(ViewSnapshot::render).collect::<Result<Vec<_>, _>>()?;
        if let [single] = &images[..] {
            return Ok(single.clone());
        }
        let gaps = FIGURE_GAP_PX as usize * images.len().saturating_sub(1);
        let width_px = images.iter().map(|image| image.width() as usize).sum::<usize>() + gaps;
        let height_px = images.iter().map(|image| image.height() as usize).max().unwrap_or(0);
        if width_px.saturating_mul(height_px) > MAX_VIEW_PX {
            return Err(ViewPngError::TooLarge { width_px, height_px });
        }
        let background = self.panels.first().map_or(egui::Color32::BLACK, |panel| panel.background);
        let fill = image::Rgb([background.r(), background.g(), background.b()]);
        let mut figure = image::RgbImage::from_pixel(width_px as u32, height_px as u32, fill);
        let mut left_px = 0i64;
        for image in &images {
            image::imageops::replace(&mut figure, image, left_px, 0);
            left_px += i64::from(image.width() + FIGURE_GAP_PX);
        }
        Ok(figure)
    }

    /// The single view's text chunks; for several, each view's title and description left to right, and whether
    /// each is artificial. `thorax.synthetic` is said only when every view is artificial.
    pub fn text_chunks(&self) -> Vec<(&'static str, String)> {
        if let [single] = &self.panels[..] {
            return single.text_chunks();
        }
        let titles: Vec<String> = self.panels.iter().map(|panel| panel.text_chunk("Title")).collect();
        let descriptions: Vec<String> = self.panels.iter().map(|panel| panel.text_chunk("Description")).collect();
        let kinds: Vec<String> = self
            .panels
            .iter()
            .map(|panel| match panel.pane.badge {
                Some(badge) => format!("{}: {badge} image, not a radiograph of a patient", panel.pane.title),
                None => format!("{}: as loaded", panel.pane.title),
            })
            .collect();
        let mut chunks = vec![
            ("Software", format!("Thorax Workbench {}", env!("CARGO_PKG_VERSION"))),
            ("Title", format!("Side by side, left to right: {}", titles.join(" | "))),
            ("Description", descriptions.join(" | ")),
            ("Comment", format!("Left to right: {}", kinds.join("; "))),
        ];
        if self.panels.iter().all(|panel| panel.pane.badge.is_some()) {
            chunks.push(("thorax.synthetic", "true".to_owned()));
        }
        chunks
    }

    /// Draws the figure and writes it to `path` as an 8-bit RGB PNG with its text chunks, through a temporary file
    /// renamed into place (the save dialog has asked before replacing a file). Returns its size, pixels.
    pub fn save_png(&self, path: &Path) -> Result<[u32; 2], ViewPngError> {
        let failed = |reason: String| ViewPngError::Write { path: path.display().to_string(), reason };
        let image = self.render()?;
        let mut encoded = Vec::new();
        let mut encoder = png::Encoder::new(&mut encoded, image.width(), image.height());
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        crate::imaging::png_text::add_text_chunks(&mut encoder, self.text_chunks())
            .map_err(|e| failed(e.to_string()))?;
        let mut writer = encoder.write_header().map_err(|e| failed(e.to_string()))?;
        writer.write_image_data(image.as_raw()).map_err(|e| failed(e.to_string()))?;
        writer.finish().map_err(|e| failed(e.to_string()))?;
        crate::atomic_file::write_file(path, crate::atomic_file::IfExists::Replace, &encoded)
            .map_err(|e| failed(e.to_string()))?;
        Ok([image.width(), image.height()])
    }
}

/// File ▸ Save view as PNG: the view captured when asked, a save dialog, then the drawing and writing on a helper
/// thread; reports once per save.
#[derive(Default)]
pub struct ViewPngExport {
    /// The views captured when the menu item was chosen, waiting for a file (and for their regions' statistics).
    snapshot: Option<ViewFigure>,
    chosen_path: Option<std::path::PathBuf>,
    dialogs: crate::app::path_dialog::PathDialogs<()>,
    write: crate::app::background_write::BackgroundWrite,
}

impl ViewPngExport {
    /// Asks where to save `snapshot` (the save dialog asks before replacing a file).
    pub fn start(&mut self, ctx: &egui::Context, snapshot: ViewFigure) {
        let kind = crate::app::path_dialog::DialogKind::SaveFile {
            file_name: snapshot.suggested_file_name(),
            filter_name: "PNG",
            extensions: &["png"],
            new_only: false,
        };
        match self.dialogs.request(ctx, (), "Save view as PNG", kind, None) {
            Ok(()) => {
                self.snapshot = Some(snapshot);
                self.chosen_path = None;
            }
            Err(e) => self.write.report(Err(format!("Save view: {e}"))),
        }
    }

    /// Saves `snapshot` to `path` as if the save dialog had given it (scripting and tests): replacing a file there.
    pub fn save_to(&mut self, snapshot: ViewFigure, path: std::path::PathBuf) {
        self.snapshot = Some(snapshot);
        self.chosen_path = Some(path);
    }

    /// Whether a save is under way: waiting for its file or its regions, or being written.
    pub fn is_busy(&self) -> bool {
        self.chosen_path.is_some() || self.write.is_writing()
    }

    /// A picked file starts the writing once no region of the view is still being measured; a finished save
    /// returns its message once. Call once per frame.
    pub fn poll(&mut self, ctx: &egui::Context) -> Option<crate::app::background_write::WriteOutcome> {
        if let Some(((), path)) = self.dialogs.poll(ctx) {
            self.chosen_path = Some(path);
        } else if self.chosen_path.is_none() && !self.dialogs.is_open() {
            // Cancelled.
            self.snapshot = None;
        }
        let ready =
            self.chosen_path.is_some() && self.snapshot.as_ref().is_some_and(|snapshot| !snapshot.is_measuring());
        if ready && let (Some(snapshot), Some(path)) = (self.snapshot.take(), self.chosen_path.take()) {
            self.write.spawn(ctx, "thorax-view-png", "saving the view", move || {
                let what = snapshot.what();
                snapshot
                    .save_png(&path)
                    .map(|[width_px, height_px]| {
                        format!("Saved {what} ({width_px} x {height_px} px) to {}", path.display())
                    })
                    .map_err(|e| format!("View not saved: {e}"))
            });
        }
        self.write.take_outcome()
    }
}
