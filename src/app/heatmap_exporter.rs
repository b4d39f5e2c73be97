//! "Export heatmaps...": the overlays shown in the viewports, written next to nothing but a folder the user picks
//! (overlay PNG, 16-bit map PNG, .npy per view), off the UI thread. A folder that already holds files of those
//! names (an earlier export) is written into only after the user confirms replacing them.

use std::path::{Path, PathBuf};

use crate::app::background_write::{BackgroundWrite, WriteOutcome};
use crate::app::path_dialog::{DialogKind, PathDialogs};
use crate::models::heatmap::GrayMap;
use crate::models::heatmap_export::{OverlayStyle, heatmap_file_paths, safe_file_part, write_heatmap_files};

/// One view's heatmap to write: file-name base, the image in [0, 1] and the map at its size.
pub struct HeatmapToWrite {
    pub base: String,
    /// The image as its view shows it (window, invert), in [0, 1].
    pub gray: GrayMap,
    pub map: GrayMap,
    /// The view's overlay opacity and threshold.
    pub style: OverlayStyle,
}

impl HeatmapToWrite {
    /// `<image stem>_<label>_<method>`.
    pub fn base_name(image_name: &str, label: &str, method: &str) -> String {
        let stem = std::path::Path::new(image_name)
            .file_stem()
            .map_or_else(|| image_name.to_owned(), |s| s.to_string_lossy().into_owned());
        format!("{}_{}_{}", safe_file_part(&stem), safe_file_part(label), safe_file_part(method))
    }
}

/// The picked folder already holds files the export would replace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplaceQuestion {
    pub dir: PathBuf,
    /// The files in the way, in export order.
    pub existing: Vec<PathBuf>,
}

/// What the user answered to a [`ReplaceQuestion`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplaceAnswer {
    Replace,
    Cancel,
}

/// Picks a folder, then writes the heatmaps on a thread (after asking, when that would replace files); reports once
/// per export.
#[derive(Default)]
pub struct HeatmapExporter {
    /// The maps waiting for the folder dialog's answer, or for the answer to `question`.
    pending: Option<Vec<HeatmapToWrite>>,
    /// Asked while the picked folder holds files of the export's names.
    question: Option<ReplaceQuestion>,
    dialogs: PathDialogs<()>,
    write: BackgroundWrite,
}

impl HeatmapExporter {
    /// Asks for a folder for `maps` (ignored while the folder dialog is open).
    pub fn start(&mut self, ctx: &egui::Context, maps: Vec<HeatmapToWrite>) {
        if maps.is_empty() {
            return;
        }
        match self.dialogs.request(ctx, (), "Export heatmaps to", DialogKind::PickFolder, None) {
            Ok(()) => self.pending = Some(maps),
            Err(e) => self.write.report(Err(format!("Heatmap export: {e}"))),
        }
    }

    /// Exports `maps` into `dir` as if the folder had been picked (scripting and tests): written on a thread, or
    /// asked about first when that would replace files.
    pub fn export_to(&mut self, ctx: &egui::Context, maps: Vec<HeatmapToWrite>, dir: PathBuf) {
        self.pending = Some(maps);
        self.folder_chosen(ctx, dir);
    }

    /// The question shown, if any.
    pub fn question(&self) -> Option<&ReplaceQuestion> {
        self.question.as_ref()
    }

    /// Writes into `dir` at once when none of the export's files exist there, else asks first.
    fn folder_chosen(&mut self, ctx: &egui::Context, dir: PathBuf) {
        let existing: Vec<PathBuf> = self
            .pending
            .iter()
            .flatten()
            .flat_map(|m| heatmap_file_paths(&dir, &m.base).paths().map(Path::to_path_buf))
            .filter(|path| crate::atomic_file::name_taken(path))
            .collect();
        if existing.is_empty() {
            self.write_to(ctx, dir);
        } else {
            self.question = Some(ReplaceQuestion { dir, existing });
            ctx.request_repaint();
        }
    }

    /// Acts on the user's answer to the question shown.
    pub fn answer(&mut self, ctx: &egui::Context, answer: ReplaceAnswer) {
        let Some(question) = self.question.take() else {
            return;
        };
        match answer {
            ReplaceAnswer::Replace => self.write_to(ctx, question.dir),
            ReplaceAnswer::Cancel => self.pending = None,
        }
    }

    /// Writes the pending maps into `dir` on a thread.
    fn write_to(&mut self, ctx: &egui::Context, dir: PathBuf) {
        let Some(maps) = self.pending.take() else {
            return;
        };
        self.write.spawn(ctx, "thorax-heatmap-export", "the heatmap export", move || {
            maps.iter()
                .map(|m| write_heatmap_files(&dir, &m.base, &m.gray, &m.map, m.style))
                .collect::<Result<Vec<_>, _>>()
                .map(|files| format!("Wrote {} heatmaps (overlay, 16-bit map, .npy) to {}", files.len(), dir.display()))
                .map_err(|e| format!("Heatmap export failed: {e}"))
        });
    }

    /// Whether heatmaps are being written.
    pub fn is_writing(&self) -> bool {
        self.write.is_writing()
    }

    /// A picked folder starts the writing (or the question whether to replace files); a finished export returns
    /// its message once.
    pub fn poll(&mut self, ctx: &egui::Context) -> Option<WriteOutcome> {
        if let Some(question) = &self.question {
            let mut answer = None;
            egui::Modal::new(egui::Id::unique("thorax_heatmap_replace")).show(ctx, |ui| {
                answer = replace_question_ui(ui, question);
            });
            if answer.is_none() && ctx.input(|i| i.key_pressed(egui::Key::Escape)) {
                answer = Some(ReplaceAnswer::Cancel);
            }
            if let Some(answer) = answer {
                self.answer(ctx, answer);
            }
        } else if let Some(((), dir)) = self.dialogs.poll(ctx) {
            self.folder_chosen(ctx, dir);
        } else if !self.dialogs.is_open() {
            // Cancelled.
            self.pending = None;
        }
        self.write.take_outcome()
    }
}

/// The question whether to replace the files of an earlier export, with the files named (the first few).
pub fn replace_question_ui(ui: &mut egui::Ui, question: &ReplaceQuestion) -> Option<ReplaceAnswer> {
    const SHOWN: usize = 4;
    ui.set_max_width(520.0);
    ui.heading("Replace heatmap files?");
    let count = question.existing.len();
    ui.label(format!(
        "{} already hold{} {count} of the files this export writes:",
        question.dir.display(),
        if count == 1 { "s" } else { "" }
    ));
    for path in question.existing.iter().take(SHOWN) {
        ui.monospace(path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into()));
    }
    if count > SHOWN {
        ui.label(format!("and {} more", count - SHOWN));
    }
    let mut answer = None;
    ui.horizontal(|ui| {
        if ui.button("Replace").clicked() {
            answer = Some(ReplaceAnswer::Replace);
        }
        if ui.button("Cancel").clicked() {
            answer = Some(ReplaceAnswer::Cancel);
        }
    });
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names_are_portable() {
        assert_eq!(
            HeatmapToWrite::base_name("cxr_0001.png", "Pleural_Thickening", "Grad-CAM"),
            "cxr_0001_Pleural_Thickening_Grad-CAM"
        );
        assert_eq!(HeatmapToWrite::base_name("seed 1000", "Mass", "CAM"), "seed_1000_Mass_CAM");
    }
}
