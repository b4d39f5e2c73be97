//! The sample browser: thumbnails of the embedded radiographs, filtered by finding.

use std::collections::HashMap;

use crossbeam_channel::Receiver;

use crate::imaging::resize::fit_within;
use crate::imaging::samples::{Sample, all_findings};
use crate::imaging::{Window, decode_image};

/// Longest side of a thumbnail in pixels.
pub const THUMBNAIL_SIDE_PX: usize = 96;

/// Filter value meaning "show every sample".
const ALL_FINDINGS: &str = "All findings";

/// Browser state: the samples, their thumbnails as they arrive, and the filter.
pub struct SampleBrowser {
    samples: Vec<Sample>,
    findings: Vec<String>,
    filter: String,
    thumbnails: HashMap<usize, egui::TextureHandle>,
    incoming: Receiver<(usize, egui::ColorImage)>,
    /// The sample shown in the Real viewport.
    pub selected: Option<usize>,
}

impl SampleBrowser {
    /// Starts decoding thumbnails on a background thread (full-size PNGs take tens of ms each).
    pub fn new(samples: Vec<Sample>, ctx: &egui::Context) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let jobs: Vec<(usize, &'static [u8], String)> =
            samples.iter().enumerate().map(|(i, s)| (i, s.bytes, s.file_name.clone())).collect();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new().name("thorax-thumbnails".to_owned()).spawn(move || {
            for (index, bytes, name) in jobs {
                let thumbnail = decode_image(bytes, &name)
                    .ok()
                    .and_then(|image| fit_within(&image, THUMBNAIL_SIDE_PX).ok())
                    .map(|image| {
                        let window = Window::spanning(image.nominal_range().0, image.nominal_range().1);
                        let gray: Vec<u8> = image
                            .pixels()
                            .iter()
                            .map(|&v| (window.display_fraction(v, false) * 255.0).round() as u8)
                            .collect();
                        egui::ColorImage::from_gray([image.width_px(), image.height_px()], &gray)
                    });
                if let Some(thumbnail) = thumbnail {
                    if tx.send((index, thumbnail)).is_err() {
                        return;
                    }
                    ctx.request_repaint();
                }
            }
        });
        if let Err(e) = spawned {
            log::warn!("thumbnails unavailable: cannot start their thread: {e}");
        }
        Self {
            findings: all_findings(&samples),
            samples,
            filter: ALL_FINDINGS.to_owned(),
            thumbnails: HashMap::new(),
            incoming: rx,
            selected: None,
        }
    }

    /// Thumbnails not yet shown (they arrive from a background thread).
    pub fn pending_thumbnails(&self) -> usize {
        self.samples.len().saturating_sub(self.thumbnails.len())
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Shows the filter and the thumbnail grid; returns the index of a sample the user picked.
    pub fn ui(&mut self, ui: &mut egui::Ui) -> Option<usize> {
        for (index, image) in self.incoming.try_iter() {
            let texture =
                ui.ctx().load_texture(format!("sample-thumbnail-{index}"), image, egui::TextureOptions::LINEAR);
            self.thumbnails.insert(index, texture);
        }

        let filter_label = ui.label("Filter by finding");
        egui::ComboBox::from_id_salt("sample_filter")
            .selected_text(self.filter.clone())
            .width(ui.available_width() - 8.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut self.filter, ALL_FINDINGS.to_owned(), ALL_FINDINGS);
                ui.selectable_value(&mut self.filter, "unlabelled".to_owned(), "Unlabelled (MHH)");
                for finding in &self.findings {
                    ui.selectable_value(&mut self.filter, finding.clone(), finding.replace('_', " "));
                }
            })
            .response
            .labelled_by(filter_label.id);

        let mut picked = None;
        let thumb = egui::vec2(THUMBNAIL_SIDE_PX as f32 * 0.75, THUMBNAIL_SIDE_PX as f32 * 0.75);
        egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                for (index, sample) in self.samples.iter().enumerate() {
                    let matches = self.filter == ALL_FINDINGS
                        || (self.filter == "unlabelled" && sample.findings.is_empty())
                        || sample.findings.contains(&self.filter);
                    if !matches {
                        continue;
                    }
                    let selected = self.selected == Some(index);
                    let tooltip = format!(
                        "{}\n{} | {} view\nFindings: {}\nLicence: {}",
                        sample.file_name,
                        sample.source,
                        sample.view,
                        sample.findings_text(),
                        sample.licence
                    );
                    let response = match self.thumbnails.get(&index) {
                        Some(texture) => ui.add(
                            egui::Button::image(
                                egui::Image::new(texture).fit_to_exact_size(thumb).alt_text(&sample.file_name),
                            )
                            .selected(selected),
                        ),
                        None => ui.add_sized(thumb + egui::vec2(8.0, 8.0), egui::Button::new("...").selected(selected)),
                    };
                    if response.on_hover_text(tooltip).clicked() {
                        picked = Some(index);
                    }
                }
            });
        });
        if picked.is_some() {
            self.selected = picked;
        }
        picked
    }
}
