//! File dialogs off the UI thread: rfd's dialog runs on a helper thread and the answer arrives by channel.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use crate::engine::Slot;
use crate::models::card::ModelKind;

/// A file the user picked, and which viewport it is for.
pub struct PickedFile {
    pub slot: Slot,
    pub path: PathBuf,
}

/// What a dialog thread answers: what the file is for, and the file or `None` when the user cancelled.
type DialogAnswer<T> = (T, Option<PathBuf>);

/// What one dialog asks for.
struct DialogSpec {
    title: &'static str,
    filter_name: &'static str,
    extensions: &'static [&'static str],
    folder: Option<PathBuf>,
}

/// Opens dialogs for one purpose `T` (a viewport, a model kind) without blocking frames; one at a time.
struct AsyncDialogs<T> {
    tx: Sender<DialogAnswer<T>>,
    rx: Receiver<DialogAnswer<T>>,
    open: bool,
}

impl<T> Default for AsyncDialogs<T> {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Self { tx, rx, open: false }
    }
}

impl<T: Send + 'static> AsyncDialogs<T> {
    /// Shows a dialog on a helper thread. Ignored while another dialog is open.
    fn open(&mut self, ctx: &egui::Context, purpose: T, spec: DialogSpec) {
        if self.open {
            return;
        }
        self.open = true;
        let tx = self.tx.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new().name("thorax-file-dialog".to_owned()).spawn(move || {
            let mut dialog = rfd::FileDialog::new().set_title(spec.title).add_filter(spec.filter_name, spec.extensions);
            if let Some(folder) = spec.folder {
                dialog = dialog.set_directory(folder);
            }
            tx.send((purpose, dialog.pick_file())).ok();
            ctx.request_repaint();
        });
        if let Err(e) = spawned {
            log::error!("cannot open the file dialog: {e}");
            self.open = false;
        }
    }

    /// The answer since the last frame, if any. The dialog counts as closed once its thread answered.
    fn poll(&mut self) -> Option<DialogAnswer<T>> {
        let answer = self.rx.try_recv().ok()?;
        self.open = false;
        Some(answer)
    }
}

/// Opens image dialogs without blocking frames.
#[derive(Default)]
pub struct FileDialogs {
    images: AsyncDialogs<Slot>,
}

impl FileDialogs {
    /// Shows an "open image" dialog for `slot`, starting in `folder`. Ignored while another dialog is open.
    pub fn open_image(&mut self, ctx: &egui::Context, slot: Slot, folder: Option<PathBuf>) {
        let spec = DialogSpec {
            title: "Open radiograph",
            filter_name: "Images",
            extensions: &["png", "jpg", "jpeg", "tif", "tiff", "dcm", "dicom"],
            folder,
        };
        self.images.open(ctx, slot, spec);
    }

    /// A file picked since the last frame, if any.
    pub fn poll(&mut self) -> Option<PickedFile> {
        let (slot, path) = self.images.poll()?;
        path.map(|path| PickedFile { slot, path })
    }
}

/// A weights file the user picked, and which kind of model it should hold.
pub struct PickedModel {
    pub kind: ModelKind,
    pub path: PathBuf,
}

/// Opens "Open model..." dialogs without blocking frames.
#[derive(Default)]
pub struct ModelDialogs {
    models: AsyncDialogs<ModelKind>,
}

impl ModelDialogs {
    /// Shows an "open model" dialog for a `kind` network. Ignored while another model dialog is open.
    pub fn open_model(&mut self, ctx: &egui::Context, kind: ModelKind, folder: Option<PathBuf>) {
        let spec = DialogSpec {
            title: "Open model (.safetensors with a thorax model card)",
            filter_name: "Model weights",
            extensions: &["safetensors"],
            folder,
        };
        self.models.open(ctx, kind, spec);
    }

    /// A model file picked since the last frame, if any.
    pub fn poll(&mut self) -> Option<PickedModel> {
        let (kind, path) = self.models.poll()?;
        path.map(|path| PickedModel { kind, path })
    }
}
