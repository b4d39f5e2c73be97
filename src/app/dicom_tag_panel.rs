//! The DICOM tag panel: every attribute of the real image's file, identifying ones marked, with a filter.

use crate::imaging::{DicomDetails, Window};

/// Colour of the marker on attributes the PS3.15 Basic Profile protects.
const IDENTIFYING_COLOUR: egui::Color32 = egui::Color32::from_rgb(230, 110, 90);

/// State of the tag window.
#[derive(Default)]
pub struct DicomTagPanel {
    pub open: bool,
    /// Case-insensitive text matched against tag, keyword and value.
    pub filter: String,
    pub identifying_only: bool,
}

impl DicomTagPanel {
    /// The tag window for `details` (of the image named `image_name`); nothing when closed.
    /// The window for the image `image_name`; `shown_window` is the first-display window in the viewer's values
    /// (mirrored for MONOCHROME1).
    pub fn window_ui(
        &mut self,
        ctx: &egui::Context,
        image_name: &str,
        details: &DicomDetails,
        shown_window: Option<Window>,
    ) {
        let mut open = self.open;
        // Opens over the artificial view and the classifier panel, leaving the real image in sight.
        let top_right = ctx.content_rect().right_top();
        egui::Window::new("DICOM tags")
            .open(&mut open)
            .default_pos(egui::pos2(top_right.x - 600.0, top_right.y + 70.0))
            .default_size([560.0, 460.0])
            .resizable(true)
            .show(ctx, |ui| self.contents_ui(ui, image_name, details, shown_window));
        self.open = open;
    }

    fn contents_ui(
        &mut self,
        ui: &mut egui::Ui,
        image_name: &str,
        details: &DicomDetails,
        shown_window: Option<Window>,
    ) {
        let summary = &details.summary;
        ui.label(egui::RichText::new(image_name).strong());
        ui.label(format!(
            "{}x{} px, {} of {} bits, {}, {}",
            summary.columns,
            summary.rows,
            summary.bits_stored,
            summary.bits_allocated,
            summary.photometric_interpretation,
            summary.transfer_syntax_name
        ));
        ui.label(window_summary_text(summary));
        if details.mirrored_from_monochrome1 {
            let shown = shown_window
                .map(|w| format!("; in those values the window above is C {:.1} / W {:.1}", w.center, w.width))
                .unwrap_or_default();
            let (lo, hi) = details.summary.modality_value_range();
            ui.label(
                egui::RichText::new(format!(
                    "MONOCHROME1: the viewer and the pixel readout show values mirrored within the stored range \
                     {lo}..{hi} (v becomes {} - v; bone bright){shown}",
                    lo + hi
                ))
                .weak(),
            );
        }
        let identifying = details.tags.iter().filter(|row| row.is_identifying).count();
        ui.label(
            egui::RichText::new(format!(
                "{identifying} of {} attributes are identifying under PS3.15 (marked ID); export with \
                 `thorax dicom deidentify` before sharing",
                details.tags.len()
            ))
            .color(IDENTIFYING_COLOUR),
        );
        ui.horizontal(|ui| {
            let label = ui.label("Filter");
            ui.add(egui::TextEdit::singleline(&mut self.filter).desired_width(180.0)).labelled_by(label.id);
            ui.checkbox(&mut self.identifying_only, "Identifying only");
        });
        ui.separator();
        let rows: Vec<_> = details.tags.iter().filter(|row| self.shows(row)).collect();
        egui::ScrollArea::both().id_salt("dicom_tag_rows").auto_shrink([false, false]).show(ui, |ui| {
            egui::Grid::new("dicom_tag_grid").striped(true).num_columns(5).show(ui, |ui| {
                for heading in ["", "Tag", "VR", "Keyword", "Value"] {
                    ui.label(egui::RichText::new(heading).strong());
                }
                ui.end_row();
                for row in rows {
                    if row.is_identifying {
                        ui.label(egui::RichText::new("ID").color(IDENTIFYING_COLOUR).strong())
                            .on_hover_text("Identifying: the PS3.15 Basic Profile removes or replaces it");
                    } else {
                        ui.label("");
                    }
                    let indent = "  ".repeat(row.depth as usize);
                    ui.monospace(format!("{indent}{}", row.tag));
                    ui.monospace(&row.vr);
                    ui.label(&row.keyword);
                    let value = egui::RichText::new(&row.value);
                    ui.label(if row.is_identifying { value.color(IDENTIFYING_COLOUR) } else { value });
                    ui.end_row();
                }
            });
        });
    }

    fn shows(&self, row: &crate::imaging::dicom::TagRow) -> bool {
        if self.identifying_only && !row.is_identifying {
            return false;
        }
        let needle = self.filter.trim().to_lowercase();
        needle.is_empty()
            || row.tag.to_lowercase().contains(&needle)
            || row.keyword.to_lowercase().contains(&needle)
            || row.value.to_lowercase().contains(&needle)
    }
}

/// What the file says about its first display. Without a stored window the viewer chooses its own (`ViewState::initial`:
/// the 0.5-99.5 percentiles of most data), not the pixel range `thorax dicom info` reports, so the panel no longer
/// states the latter as the window the viewer used.
fn window_summary_text(summary: &crate::imaging::dicom::DicomSummary) -> String {
    use crate::imaging::dicom::WindowSource;
    let (center, width) = (summary.window.center, summary.window.width);
    let source = match summary.window_source {
        WindowSource::StoredWindowCenterWidth => Some("stored Window Center/Width"),
        WindowSource::VoiLutSequenceRange => Some("range of the stored VOI LUT"),
        WindowSource::ComputedFromPixelRange => None,
    };
    let mut text = match source {
        Some(source) => format!("Window on first display: C {center:.1} / W {width:.1} ({source})"),
        None => format!(
            "No window stored (the pixel range would be C {center:.1} / W {width:.1}); the viewer chose its own first \
             window, shown under the image"
        ),
    };
    // Display attributes the reader could not use (an unknown VOI LUT Function, a window that is no number).
    for note in &summary.display_notes {
        text.push_str("\nSet aside: ");
        text.push_str(note);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::dicom::TagRow;

    fn row(keyword: &str, value: &str, identifying: bool) -> TagRow {
        TagRow {
            tag: "(0010,0010)".to_owned(),
            group: 0x10,
            element: 0x10,
            vr: "PN".to_owned(),
            keyword: keyword.to_owned(),
            value: value.to_owned(),
            is_identifying: identifying,
            depth: 0,
        }
    }

    #[test]
    fn filter_matches_keyword_and_value_case_insensitively_and_identifying_only_hides_others() {
        let mut panel = DicomTagPanel { filter: "patient".to_owned(), ..Default::default() };
        assert!(panel.shows(&row("PatientName", "DOE^JOHN", true)));
        assert!(!panel.shows(&row("Modality", "CR", false)));
        panel.filter = "cr".to_owned();
        assert!(panel.shows(&row("Modality", "CR", false)));
        panel.identifying_only = true;
        assert!(!panel.shows(&row("Modality", "CR", false)));
        panel.filter.clear();
        assert!(panel.shows(&row("PatientName", "DOE^JOHN", true)));
    }

    #[test]
    fn the_window_summary_lists_the_display_attributes_set_aside() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real/mr_small_64.dcm");
        let mut summary = crate::imaging::dicom::read_dicom_image(&path).unwrap().summary;
        assert!(!window_summary_text(&summary).contains("Set aside"));
        summary.display_notes.push("VOI LUT Function (0028,1056) \"LOG\" is not a defined term".to_owned());
        let text = window_summary_text(&summary);
        assert!(text.ends_with("\nSet aside: VOI LUT Function (0028,1056) \"LOG\" is not a defined term"), "{text}");
    }
}
