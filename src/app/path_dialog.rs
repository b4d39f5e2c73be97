//! Folder, file and save dialogs that never block a frame. Each request carries a target (which field the answer
//! is for). The desktop's dialog (rfd) runs on a helper thread and answers by channel; where it cannot appear (no
//! xdg portal and no zenity, where rfd answers "cancelled" without showing anything) the workbench's own
//! [`FileBrowser`] is shown instead.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use crossbeam_channel::{Receiver, Sender};

use crate::app::file_browser::{BrowserAnswer, FileBrowser};

/// What the dialog asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DialogKind {
    PickFolder,
    PickFile {
        filter_name: &'static str,
        extensions: &'static [&'static str],
    },
    /// A file to write. `new_only`: the output is never replaced (a study file), so the built-in chooser refuses an
    /// existing name with the reason instead of asking whether to replace it.
    SaveFile {
        file_name: String,
        filter_name: &'static str,
        extensions: &'static [&'static str],
        new_only: bool,
    },
}

/// Which chooser the workbench shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum DialogBackend {
    /// The desktop's dialog where one can appear, else the built-in one.
    #[default]
    Auto,
    /// Always the workbench's own chooser.
    BuiltIn,
}

static BACKEND: AtomicU8 = AtomicU8::new(0);

/// Sets the chooser for every dialog opened from now on (a user setting, so process-wide).
pub fn set_dialog_backend(backend: DialogBackend) {
    BACKEND.store(backend as u8, Ordering::Relaxed);
}

pub fn dialog_backend() -> DialogBackend {
    match BACKEND.load(Ordering::Relaxed) {
        1 => DialogBackend::BuiltIn,
        _ => DialogBackend::Auto,
    }
}

/// Whether a dialog opened now uses the built-in chooser. `THORAX_FILE_DIALOG=builtin` or `native` overrides the
/// setting and the detection.
pub fn uses_builtin_dialogs() -> bool {
    match std::env::var("THORAX_FILE_DIALOG").as_deref() {
        Ok("builtin") => return true,
        Ok("native") => return false,
        _ => {}
    }
    dialog_backend() == DialogBackend::BuiltIn || !desktop_dialogs_available()
}

/// Whether rfd can show a dialog here: always on Windows and macOS; on other systems it needs zenity or a desktop
/// portal on a session bus. Looked up once.
pub fn desktop_dialogs_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        if cfg!(any(target_os = "windows", target_os = "macos")) {
            return true;
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let data_dirs = std::env::var("XDG_DATA_DIRS").unwrap_or_default();
        let session_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty())
            || std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists());
        zenity_on_path(&path) || (session_bus && portal_service_installed(&data_dirs))
    })
}

fn zenity_on_path(path: &std::ffi::OsStr) -> bool {
    std::env::split_paths(path).any(|dir| dir.join("zenity").is_file())
}

/// Whether D-Bus can start the desktop portal: its service file in one of the XDG data folders.
fn portal_service_installed(xdg_data_dirs: &str) -> bool {
    let dirs = if xdg_data_dirs.is_empty() { "/usr/local/share:/usr/share" } else { xdg_data_dirs };
    dirs.split(':')
        .filter(|d| !d.is_empty())
        .any(|d| Path::new(d).join("dbus-1/services/org.freedesktop.portal.Desktop.service").is_file())
}

/// Where the folder of the last picked path is kept: in the egui context, so every dialog of the workbench (image,
/// study, audit, heatmap export, ...) starts where the user last was instead of in the working folder.
fn last_folder_id() -> egui::Id {
    egui::Id::unique("thorax.path_dialog.last_folder")
}

/// The folder of the last path picked in any dialog of `ctx` (or the one set by [`remember_folder`]).
pub fn remembered_folder(ctx: &egui::Context) -> Option<PathBuf> {
    ctx.data(|data| data.get_temp::<PathBuf>(last_folder_id()))
}

/// Makes `folder` the one the next dialog without a folder of its own starts in.
pub fn remember_folder(ctx: &egui::Context, folder: PathBuf) {
    ctx.data_mut(|data| data.insert_temp(last_folder_id(), folder));
}

/// Remembers the folder a picked path lies in (the parent of a picked folder too: its siblings come next, e.g. the
/// artificial images beside the real ones).
fn remember_pick(ctx: &egui::Context, path: &Path) {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        remember_folder(ctx, parent.to_path_buf());
    }
}

/// Dialogs whose answers are tagged with a `T`; one open at a time.
pub struct PathDialogs<T> {
    tx: Sender<(T, Option<PathBuf>)>,
    rx: Receiver<(T, Option<PathBuf>)>,
    native_open: bool,
    builtin: Option<(T, FileBrowser)>,
}

impl<T> Default for PathDialogs<T> {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Self { tx, rx, native_open: false, builtin: None }
    }
}

impl<T: Send + 'static> PathDialogs<T> {
    /// Shows a dialog for `target`, starting in `folder`, else in the folder of the last path picked in any dialog.
    /// Refused (Err with the reason) while another dialog is open.
    pub fn request(
        &mut self,
        ctx: &egui::Context,
        target: T,
        title: &str,
        kind: DialogKind,
        folder: Option<PathBuf>,
    ) -> Result<(), String> {
        if self.is_open() {
            return Err("another file dialog is open".to_owned());
        }
        let folder = folder.or_else(|| remembered_folder(ctx));
        if uses_builtin_dialogs() {
            self.builtin = Some((target, FileBrowser::new(title, kind, folder)));
            ctx.request_repaint();
            return Ok(());
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
                    DialogKind::SaveFile { file_name, filter_name, extensions, .. } => {
                        dialog.set_file_name(file_name).add_filter(filter_name, extensions).save_file()
                    }
                };
                tx.send((target, picked)).ok();
                ctx.request_repaint();
            })
            .map_err(|e| format!("cannot open the file dialog: {e}"))?;
        self.native_open = true;
        Ok(())
    }

    /// Shows the built-in chooser when that is the one open, then gives a path picked since the last frame with its
    /// target; `None` while waiting or when the user cancelled. Call once per frame.
    pub fn poll(&mut self, ctx: &egui::Context) -> Option<(T, PathBuf)> {
        if let Some((_, browser)) = &mut self.builtin {
            let answer = browser.show(ctx)?;
            let (target, _) = self.builtin.take()?;
            return match answer {
                BrowserAnswer::Picked(path) => {
                    remember_pick(ctx, &path);
                    Some((target, path))
                }
                BrowserAnswer::Cancelled => None,
            };
        }
        let (target, path) = self.rx.try_recv().ok()?;
        self.native_open = false;
        let path = path?;
        remember_pick(ctx, &path);
        Some((target, path))
    }

    pub fn is_open(&self) -> bool {
        self.native_open || self.builtin.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_is_found_through_the_xdg_data_folders() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().display().to_string();
        assert!(!portal_service_installed(&format!("{data}:")));
        std::fs::create_dir_all(dir.path().join("dbus-1/services")).unwrap();
        std::fs::write(dir.path().join("dbus-1/services/org.freedesktop.portal.Desktop.service"), "").unwrap();
        assert!(portal_service_installed(&format!("/nonexistent:{data}")));
    }

    #[test]
    fn zenity_is_found_on_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        assert!(!zenity_on_path(&path));
        std::fs::write(dir.path().join("zenity"), "").unwrap();
        assert!(zenity_on_path(&path));
    }

    #[test]
    fn a_dialog_without_a_folder_starts_where_the_last_pick_was() {
        let ctx = egui::Context::default();
        let dir = tempfile::tempdir().unwrap();
        let picked = dir.path().join("real");
        std::fs::create_dir_all(&picked).unwrap();
        assert_eq!(remembered_folder(&ctx), None);
        remember_pick(&ctx, &picked);
        assert_eq!(remembered_folder(&ctx), Some(dir.path().to_path_buf()));
        // The built-in chooser shows where the dialog starts (the desktop's cannot be asked in a test).
        let browser = FileBrowser::new("t", DialogKind::PickFolder, remembered_folder(&ctx));
        assert_eq!(browser.folder(), dir.path());
        // A picked file counts by its folder.
        remember_pick(&ctx, &picked.join("cxr_0001.png"));
        assert_eq!(remembered_folder(&ctx), Some(picked));
    }
}
