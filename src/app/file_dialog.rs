//! File dialogs off the UI thread: rfd's dialog runs on a helper thread and the answer arrives by channel.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use crate::engine::Slot;

/// A file the user picked, and which viewport it is for.
pub struct PickedFile {
    pub slot: Slot,
    pub path: PathBuf,
}

/// What a dialog thread answers: a file, or `None` when the user cancelled.
type DialogAnswer = (Slot, Option<PathBuf>);

/// Opens dialogs without blocking frames.
pub struct FileDialogs {
    tx: Sender<DialogAnswer>,
    rx: Receiver<DialogAnswer>,
    open: bool,
}

impl Default for FileDialogs {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Self { tx, rx, open: false }
    }
}

impl FileDialogs {
    /// Shows an "open image" dialog for `slot`, starting in `folder`. Ignored while another dialog is open.
    pub fn open_image(&mut self, ctx: &egui::Context, slot: Slot, folder: Option<PathBuf>) {
        if self.open {
            return;
        }
        self.open = true;
        let tx = self.tx.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new().name("thorax-file-dialog".to_owned()).spawn(move || {
            let mut dialog = rfd::FileDialog::new()
                .set_title("Open radiograph")
                .add_filter("Images", &["png", "jpg", "jpeg", "tif", "tiff", "dcm", "dicom"]);
            if let Some(folder) = folder {
                dialog = dialog.set_directory(folder);
            }
            tx.send((slot, dialog.pick_file())).ok();
            ctx.request_repaint();
        });
        if let Err(e) = spawned {
            log::error!("cannot open the file dialog: {e}");
            self.open = false;
        }
    }

    /// A file picked since the last frame, if any. The dialog counts as closed once its thread answered.
    pub fn poll(&mut self) -> Option<PickedFile> {
        let (slot, path) = self.rx.try_recv().ok()?;
        self.open = false;
        path.map(|path| PickedFile { slot, path })
    }
}
