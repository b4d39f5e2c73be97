//! Folder, file and save dialogs off the UI thread, for panels with several path fields: each request carries a
//! target (which field the answer is for); rfd runs on a helper thread and the answer arrives by channel.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

/// What the dialog asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DialogKind {
    PickFolder,
    PickFile { filter_name: &'static str, extensions: &'static [&'static str] },
    SaveFile { file_name: String, filter_name: &'static str, extensions: &'static [&'static str] },
}

/// Dialogs whose answers are tagged with a `T`.
pub struct PathDialogs<T> {
    tx: Sender<(T, Option<PathBuf>)>,
    rx: Receiver<(T, Option<PathBuf>)>,
    open: bool,
}

impl<T> Default for PathDialogs<T> {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Self { tx, rx, open: false }
    }
}

impl<T: Send + 'static> PathDialogs<T> {
    /// Shows a dialog for `target`. Refused (Err with the reason) while another dialog is open.
    pub fn request(
        &mut self,
        ctx: &egui::Context,
        target: T,
        title: &str,
        kind: DialogKind,
        folder: Option<PathBuf>,
    ) -> Result<(), String> {
        if self.open {
            return Err("another file dialog is open".to_owned());
        }
        let tx = self.tx.clone();
        let ctx = ctx.clone();
        let title = title.to_owned();
        std::thread::Builder::new()
            .name("thorax-path-dialog".to_owned())
            .spawn(move || {
                let mut dialog = rfd::FileDialog::new().set_title(title);
                if let Some(folder) = folder {
                    dialog = dialog.set_directory(folder);
                }
                let picked = match kind {
                    DialogKind::PickFolder => dialog.pick_folder(),
                    DialogKind::PickFile { filter_name, extensions } => {
                        dialog.add_filter(filter_name, extensions).add_filter("All files", &["*"]).pick_file()
                    }
                    DialogKind::SaveFile { file_name, filter_name, extensions } => {
                        dialog.set_file_name(file_name).add_filter(filter_name, extensions).save_file()
                    }
                };
                tx.send((target, picked)).ok();
                ctx.request_repaint();
            })
            .map_err(|e| format!("cannot open the file dialog: {e}"))?;
        self.open = true;
        Ok(())
    }

    /// A path picked since the last frame, with its target; `None` while waiting or when the user cancelled.
    pub fn poll(&mut self) -> Option<(T, PathBuf)> {
        let (target, path) = self.rx.try_recv().ok()?;
        self.open = false;
        path.map(|path| (target, path))
    }

    pub fn is_open(&self) -> bool {
        self.open
    }
}
