//! "Export heatmaps...": the overlays shown in the viewports, written next to nothing but a folder the user picks
//! (overlay PNG, 16-bit map PNG, .npy per view), off the UI thread.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use crate::app::path_dialog::{DialogKind, PathDialogs};
use crate::models::heatmap::GrayMap;
use crate::models::heatmap_export::{OverlayStyle, safe_file_part, write_heatmap_files};

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

/// Picks a folder, then writes the heatmaps on a thread; reports once per export.
pub struct HeatmapExporter {
    /// The maps waiting for the folder dialog's answer.
    pending: Option<Vec<HeatmapToWrite>>,
    /// Whether an export thread is writing.
    writing: bool,
    dialogs: PathDialogs<()>,
    done_tx: Sender<Result<String, String>>,
    done_rx: Receiver<Result<String, String>>,
}

impl Default for HeatmapExporter {
    fn default() -> Self {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        Self { pending: None, writing: false, dialogs: PathDialogs::default(), done_tx, done_rx }
    }
}

impl HeatmapExporter {
    /// Asks for a folder for `maps` (ignored while the folder dialog is open).
    pub fn start(&mut self, ctx: &egui::Context, maps: Vec<HeatmapToWrite>) {
        if maps.is_empty() {
            return;
        }
        match self.dialogs.request(ctx, (), "Export heatmaps to", DialogKind::PickFolder, None) {
            Ok(()) => self.pending = Some(maps),
            Err(e) => {
                self.done_tx.send(Err(format!("Heatmap export: {e}"))).ok();
            }
        }
    }

    /// Writes `maps` into `dir` on a thread, without a dialog (scripting and tests).
    pub fn export_to(&mut self, ctx: &egui::Context, maps: Vec<HeatmapToWrite>, dir: PathBuf) {
        self.pending = Some(maps);
        self.write_to(ctx, dir);
    }

    /// Writes the pending maps into `dir` on a thread.
    fn write_to(&mut self, ctx: &egui::Context, dir: PathBuf) {
        let Some(maps) = self.pending.take() else {
            return;
        };
        let (tx, ctx) = (self.done_tx.clone(), ctx.clone());
        let spawned = std::thread::Builder::new().name("thorax-heatmap-export".to_owned()).spawn(move || {
            let result = maps
                .iter()
                .map(|m| write_heatmap_files(&dir, &m.base, &m.gray, &m.map, m.style))
                .collect::<Result<Vec<_>, _>>()
                .map(|files| format!("Wrote {} heatmaps (overlay, 16-bit map, .npy) to {}", files.len(), dir.display()))
                .map_err(|e| format!("Heatmap export failed: {e}"));
            tx.send(result).ok();
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => self.writing = true,
            Err(e) => {
                self.done_tx.send(Err(format!("cannot start the heatmap export: {e}"))).ok();
            }
        }
    }

    /// Whether heatmaps are being written.
    pub fn is_writing(&self) -> bool {
        self.writing
    }

    /// A picked folder starts the writing; a finished export returns its message once.
    pub fn poll(&mut self, ctx: &egui::Context) -> Option<Result<String, String>> {
        if let Some(((), dir)) = self.dialogs.poll(ctx) {
            self.write_to(ctx, dir);
        } else if !self.dialogs.is_open() {
            // Cancelled.
            self.pending = None;
        }
        let done = self.done_rx.try_recv().ok();
        if done.is_some() {
            self.writing = false;
        }
        done
    }
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
