//! One of the side-by-side viewports: a title line, the viewer, and the histogram.

use crate::app::histogram::{HISTOGRAM_HEIGHT, histogram_ui};
use crate::app::measurement::drawing::Canvas;
use crate::app::measurement::{MeasureGesture, MeasureTool, Measurements};
use crate::app::radiograph_viewer::{ViewGeometry, ViewerOutput, measuring_viewer_ui};
use crate::app::view_state::ViewState;
use crate::engine::request::PreparedImage;
use crate::imaging::BitDepth;

/// A viewport and what it shows.
pub struct ViewportPane {
    pub title: &'static str,
    pub image: Option<PreparedImage>,
    pub view: ViewState,
    /// Name of the image being prepared by the worker, if any.
    pub loading: Option<String>,
    /// Shown in place of the image when there is none.
    pub placeholder: String,
    /// Where the viewer was drawn last frame (for drag-and-drop targeting and tests).
    pub viewer_rect: Option<egui::Rect>,
    /// A heatmap drawn over the image, when it belongs to the image shown.
    pub overlay: Option<crate::app::radiograph_renderer::Overlay>,
    /// Marked inside the viewer, so a cropped screenshot or a narrow pane still says what the image is.
    pub badge: Option<&'static str>,
    /// Distances, angles, regions, CTRs and Cobb angles drawn on the image shown (Shift + drag), edited by their
    /// handles; never copied to a linked view, whose image differs.
    pub measurements: Measurements,
}

impl ViewportPane {
    pub fn new(title: &'static str, placeholder: &str) -> Self {
        Self {
            title,
            image: None,
            view: ViewState::default(),
            loading: None,
            placeholder: placeholder.to_owned(),
            viewer_rect: None,
            overlay: None,
            badge: None,
            measurements: Measurements::default(),
        }
    }

    /// Marks the viewer with `badge` (e.g. "ARTIFICIAL").
    pub fn with_badge(mut self, badge: &'static str) -> Self {
        self.badge = Some(badge);
        self
    }

    /// Shows a newly prepared image with a fresh initial view (fit, the file's stored window or the default).
    pub fn show_image(&mut self, prepared: PreparedImage) {
        self.overlay = None;
        self.measurements.clear();
        self.view = ViewState { colormap: self.view.colormap, ..ViewState::initial(&prepared.image, &prepared.stats) };
        if let Some(window) = prepared.stored_window {
            self.view.window = window;
        }
        self.image = Some(prepared);
        self.loading = None;
    }

    /// Replaces the image but keeps zoom, pan and window when the size is unchanged (live generator updates).
    pub fn replace_image(&mut self, prepared: PreparedImage) {
        let same_size = self.image.as_ref().is_some_and(|old| {
            (old.image.width_px(), old.image.height_px()) == (prepared.image.width_px(), prepared.image.height_px())
        });
        if same_size {
            self.image = Some(prepared);
            self.loading = None;
            self.overlay = None;
        } else {
            self.show_image(prepared);
        }
    }

    /// Title line, viewer and histogram. `show_histogram` false hides the strip; `tool` is what Shift + drag draws.
    pub fn ui(&mut self, ui: &mut egui::Ui, show_histogram: bool, active: bool, tool: MeasureTool) -> ViewerOutput {
        let mut output = ViewerOutput::default();
        ui.horizontal(|ui| {
            let title = egui::RichText::new(self.title).strong().size(15.0);
            ui.label(if active { title.color(ui.visuals().selection.stroke.color) } else { title });
            if let Some(prepared) = &self.image {
                let depth = match (&prepared.dicom, prepared.image.depth()) {
                    (Some(dicom), _) => {
                        format!("DICOM {}-bit {}", dicom.summary.bits_stored, dicom.summary.photometric_interpretation)
                    }
                    (None, BitDepth::U8) => "8-bit".to_owned(),
                    (None, BitDepth::U16) => "16-bit".to_owned(),
                    (None, BitDepth::F32) => "float".to_owned(),
                };
                let text = format!(
                    "{}  |  {}x{} px  |  {depth}",
                    prepared.name,
                    prepared.image.width_px(),
                    prepared.image.height_px()
                );
                // Truncated: a long file name must not widen the column and push the viewer past its pane.
                ui.add(egui::Label::new(egui::RichText::new(&text).weak()).truncate()).on_hover_text(text);
            }
            if let Some(name) = &self.loading {
                ui.spinner();
                ui.label(egui::RichText::new(format!("loading {name}")).weak());
            }
        });
        let viewer_height = ui.available_height() - if show_histogram { HISTOGRAM_HEIGHT + 6.0 } else { 0.0 };
        let id = ui.scope_id().with(self.title);
        match &self.image {
            Some(prepared) => {
                let image = prepared.image.clone();
                let overlay = self.overlay.clone();
                let viewer = ui.allocate_ui(egui::vec2(ui.available_width(), viewer_height.max(32.0)), |ui| {
                    let measurements = &self.measurements;
                    output = measuring_viewer_ui(ui, id, &image, &mut self.view, overlay.as_ref(), measurements);
                });
                self.measurements.set_hovered(output.hovered_handle);
                self.select_by_label(ui, &mut output);
                if let Some(gesture) = output.measure {
                    self.measurements.apply(gesture, tool, &image, ui.ctx());
                }
                self.measurements.follow_image(&image, ui.ctx());
                self.viewer_rect = Some(viewer.response.rect);
                self.annotations_ui(ui, viewer.response.rect, prepared, tool);
                if show_histogram {
                    histogram_ui(ui, &prepared.stats, &self.view.window);
                }
            }
            None => {
                let (rect, _) = ui.allocate_exact_size(
                    egui::vec2(ui.available_width(), ui.available_height().max(32.0)),
                    egui::Sense::hover(),
                );
                self.viewer_rect = Some(rect);
                // Wrapped to the pane's width (a narrow window has narrow panes) and clipped to it, so a long
                // placeholder never spills into the next column.
                let painter = ui.painter_at(rect);
                painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
                let mut job = egui::text::LayoutJob::simple(
                    self.placeholder.clone(),
                    egui::FontId::proportional(14.0),
                    ui.visuals().weak_text_color(),
                    (rect.width() - 12.0).max(24.0),
                );
                job.halign = egui::Align::Center;
                let galley = ui.fonts_mut(|fonts| fonts.layout_job(job));
                let top_left = rect.center() - egui::vec2(0.0, galley.size().y / 2.0);
                painter.galley(top_left, galley, ui.visuals().weak_text_color());
            }
        }
        output
    }

    /// Where measurement `index`'s label is drawn: its id under the view's canvas.
    fn label_id(&self, ui: &egui::Ui, index: usize) -> egui::Id {
        ui.scope_id().with((self.title, "measurement")).with(index)
    }

    /// A click that hit no line or handle may have hit a label (drawn last frame, the newest on top): it selects that
    /// label's measurement, as a click on its line would.
    fn select_by_label(&self, ui: &egui::Ui, output: &mut ViewerOutput) {
        if output.measure != Some(MeasureGesture::Select { item: None }) {
            return;
        }
        let Some(pointer) = ui.input(|i| i.pointer.interact_pos()) else {
            return;
        };
        let hit = (0..self.measurements.items().len()).rev().find(|&index| {
            ui.ctx().read_response(self.label_id(ui, index)).is_some_and(|label| label.rect.contains(pointer))
        });
        if hit.is_some() {
            output.measure = Some(MeasureGesture::Select { item: hit });
        }
    }

    /// PACS-style corner text over the viewer: the badge top left, the window (C/W, with its unit) bottom left; and
    /// the measurements.
    pub fn annotations_ui(&self, ui: &egui::Ui, rect: egui::Rect, prepared: &PreparedImage, tool: MeasureTool) {
        let painter = ui.painter_at(rect);
        let spacing = prepared.dicom.as_ref().and_then(|dicom| dicom.summary.pixel_spacing);
        let canvas = Canvas {
            ui,
            painter: &painter,
            geometry: ViewGeometry::new(rect, &prepared.image, &self.view),
            // Labels take `self.label_id(ui, index)`: a click on one selects its measurement.
            id: ui.scope_id().with((self.title, "measurement")),
            spacing: spacing.as_ref(),
            value_unit: prepared.value_unit(),
        };
        canvas.measurements_ui(&self.measurements, tool);
        let font = egui::FontId::proportional(13.0);
        let margin = egui::vec2(6.0, 4.0);
        if let Some(badge) = self.badge {
            let galley =
                painter.layout_no_wrap(badge.to_owned(), egui::FontId::proportional(13.0), egui::Color32::BLACK);
            let badge_rect = egui::Rect::from_min_size(rect.min + margin, galley.size() + egui::vec2(8.0, 2.0));
            painter.rect_filled(badge_rect, 2.0, ARTIFICIAL_BADGE_COLOUR);
            painter.galley(badge_rect.min + egui::vec2(4.0, 1.0), galley, egui::Color32::BLACK);
        }
        let window = self.view.window;
        let unit = prepared.value_unit().map(|u| format!(" {u}")).unwrap_or_default();
        let text = format!("C {} / W {}{unit}", format_window_value(window.center), format_window_value(window.width));
        let position = rect.left_bottom() + egui::vec2(margin.x, -margin.y);
        // A dark shadow keeps the text legible over white bone and the black background alike.
        painter.text(
            position + egui::vec2(1.0, 1.0),
            egui::Align2::LEFT_BOTTOM,
            &text,
            font.clone(),
            egui::Color32::BLACK,
        );
        painter.text(position, egui::Align2::LEFT_BOTTOM, text, font, egui::Color32::from_gray(225));
    }
}

/// The badge's fill: an amber that stands out from any grey level and from the jet and inferno colour maps' blues.
const ARTIFICIAL_BADGE_COLOUR: egui::Color32 = egui::Color32::from_rgb(255, 170, 60);

/// Window values as radiologists read them: whole numbers, except for windows on values below 10 (unit-range data).
fn format_window_value(value: f32) -> String {
    if value.abs() >= 10.0 { format!("{value:.0}") } else { format!("{value:.3}") }
}
