//! One of the side-by-side viewports: a title line, the viewer, and the histogram.

use crate::app::histogram::{HISTOGRAM_HEIGHT, histogram_ui};
use crate::app::radiograph_viewer::{ViewerOutput, radiograph_viewer_ui};
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
        }
    }

    /// Shows a newly prepared image with a fresh initial view (fit, the file's stored window or the default).
    pub fn show_image(&mut self, prepared: PreparedImage) {
        self.overlay = None;
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

    /// Title line, viewer and histogram. `show_histogram` false hides the strip.
    pub fn ui(&mut self, ui: &mut egui::Ui, show_histogram: bool, active: bool) -> ViewerOutput {
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
                    output = radiograph_viewer_ui(ui, id, &image, &mut self.view, overlay.as_ref());
                });
                self.viewer_rect = Some(viewer.response.rect);
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
                // Clipped to the pane, so a long placeholder never spills into the next column.
                let painter = ui.painter_at(rect);
                painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
                painter.text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    &self.placeholder,
                    egui::FontId::proportional(14.0),
                    ui.visuals().weak_text_color(),
                );
            }
        }
        output
    }
}
