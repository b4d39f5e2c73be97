//! The workbench's own file chooser, for machines where the desktop's dialog cannot appear (no xdg portal and no
//! zenity: rfd then answers "cancelled" and the user sees nothing). A modal window with a folder listing and a
//! typed path, so any file can be reached by browsing or by pasting its path. Saving over an existing file asks
//! first, as the desktop's dialogs do.

use std::path::{Path, PathBuf};

use crate::app::path_dialog::DialogKind;

/// What the user did in the chooser this frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrowserAnswer {
    Picked(PathBuf),
    Cancelled,
}

/// One listed entry of the current folder.
#[derive(Clone, Debug)]
struct FolderEntry {
    name: String,
    is_dir: bool,
}

/// State of one open chooser.
pub struct FileBrowser {
    title: String,
    kind: DialogKind,
    folder: PathBuf,
    /// The folder field as typed (applied on Enter or "Go").
    folder_text: String,
    /// The file name, or a whole path, as typed or clicked.
    name_text: String,
    entries: Vec<FolderEntry>,
    show_hidden: bool,
    error: Option<String>,
    /// An existing file the user chose to save over: picked only once they confirm replacing it.
    confirm_replace: Option<PathBuf>,
}

impl FileBrowser {
    /// A chooser starting in `folder` (the working folder, then the home folder, when that is missing).
    pub fn new(title: &str, kind: DialogKind, folder: Option<PathBuf>) -> Self {
        let start = folder
            .filter(|f| f.is_dir())
            .or_else(|| std::env::current_dir().ok())
            .or_else(home_folder)
            .unwrap_or_else(|| PathBuf::from("/"));
        let name_text = match &kind {
            DialogKind::SaveFile { file_name, .. } => file_name.clone(),
            _ => String::new(),
        };
        let mut browser = Self {
            title: title.to_owned(),
            kind,
            folder: PathBuf::new(),
            folder_text: String::new(),
            name_text,
            entries: Vec::new(),
            show_hidden: false,
            error: None,
            confirm_replace: None,
        };
        browser.enter(start);
        browser
    }

    /// The folder being listed.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// Lists `folder`; on failure the previous listing stays and the reason is shown.
    fn enter(&mut self, folder: PathBuf) {
        match list_folder(&folder, &self.kind, self.show_hidden) {
            Ok(entries) => {
                self.folder = folder;
                self.folder_text = self.folder.display().to_string();
                self.entries = entries;
                self.error = None;
            }
            Err(reason) => self.error = Some(reason),
        }
    }

    /// The path the name field points at: a typed absolute path (or `~/...`) as is, else a name in the folder.
    fn typed_path(&self) -> Option<PathBuf> {
        let text = self.name_text.trim();
        if text.is_empty() {
            return None;
        }
        let path = expand_home(text);
        Some(if path.is_absolute() { path } else { self.folder.join(path) })
    }

    /// Checks the chosen path for this kind of dialog; a folder typed into a file field is entered instead.
    fn accept(&mut self) -> Option<BrowserAnswer> {
        let Some(path) = self.typed_path() else {
            if self.kind == DialogKind::PickFolder {
                return Some(BrowserAnswer::Picked(self.folder.clone()));
            }
            self.error = Some("type a file name or pick one from the list".to_owned());
            return None;
        };
        match &self.kind {
            DialogKind::PickFolder => {
                if path.is_dir() {
                    return Some(BrowserAnswer::Picked(path));
                }
                self.error = Some(format!("{} is not a folder", path.display()));
            }
            DialogKind::PickFile { .. } => {
                if path.is_dir() {
                    self.name_text.clear();
                    self.enter(path);
                } else if path.is_file() {
                    return Some(BrowserAnswer::Picked(path));
                } else {
                    self.error = Some(format!("{} does not exist", path.display()));
                }
            }
            DialogKind::SaveFile { new_only, .. } => {
                if path.is_dir() {
                    self.name_text.clear();
                    self.enter(path);
                } else if *new_only && crate::atomic_file::name_taken(&path) {
                    // Asking "Replace it?" would only lead to a refusal later.
                    self.error = Some(format!(
                        "{} already exists, and this file is never replaced: choose a new name",
                        path.display()
                    ));
                } else if crate::atomic_file::name_taken(&path) {
                    // Never replaced on a click or Enter alone: the question below the name asks first.
                    self.error = None;
                    self.confirm_replace = Some(path);
                } else if path.parent().is_some_and(Path::is_dir) {
                    return Some(BrowserAnswer::Picked(path));
                } else {
                    self.error = Some(format!("the folder of {} does not exist", path.display()));
                }
            }
        }
        None
    }

    fn accept_label(&self) -> &'static str {
        match &self.kind {
            DialogKind::PickFolder => "Choose",
            DialogKind::PickFile { .. } => "Open",
            DialogKind::SaveFile { .. } => "Save",
        }
    }

    /// The existing file the user is asked about, while the name still points at it.
    fn replace_question(&self) -> Option<&Path> {
        self.confirm_replace.as_deref().filter(|asked| self.typed_path().as_deref() == Some(*asked))
    }

    /// Shows the chooser; `Some` once the user picked or cancelled (Cancel or Escape; a click outside does
    /// nothing, as with the desktop's dialogs).
    pub fn show(&mut self, ctx: &egui::Context) -> Option<BrowserAnswer> {
        let mut answer = None;
        egui::Modal::new(egui::Id::unique("thorax_file_browser")).show(ctx, |ui| {
            ui.set_width(560.0);
            answer = self.contents_ui(ui);
        });
        if answer.is_none() && ctx.input(|i| i.key_pressed(egui::Key::Escape)) {
            answer = Some(BrowserAnswer::Cancelled);
        }
        answer
    }

    fn contents_ui(&mut self, ui: &mut egui::Ui) -> Option<BrowserAnswer> {
        ui.heading(&self.title);
        let mut answer = None;
        ui.horizontal(|ui| {
            if ui.button("Up").on_hover_text("The parent folder").clicked()
                && let Some(parent) = self.folder.parent().map(Path::to_path_buf)
            {
                self.enter(parent);
            }
            if ui.button("Home").clicked()
                && let Some(home) = home_folder()
            {
                self.enter(home);
            }
            let field = ui
                .add(egui::TextEdit::singleline(&mut self.folder_text).desired_width(f32::INFINITY).hint_text("folder"))
                .on_hover_text("Folder: type or paste one and press Enter");
            if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                let typed = expand_home(self.folder_text.trim());
                self.enter(typed);
            }
        });
        let mut entered = None;
        let mut picked = None;
        let row_height = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
        egui::ScrollArea::vertical().max_height(320.0).auto_shrink([false, false]).show_rows(
            ui,
            row_height,
            self.entries.len(),
            |ui, rows| {
                for entry in &self.entries[rows] {
                    // A trailing slash marks folders: the default fonts have no folder glyph.
                    let label = if entry.is_dir { format!("{}/", entry.name) } else { entry.name.clone() };
                    let selected = !entry.is_dir && self.name_text == entry.name;
                    let response = ui.selectable_label(selected, label);
                    if response.double_clicked() {
                        if entry.is_dir {
                            entered = Some(self.folder.join(&entry.name));
                        } else {
                            picked = Some(entry.name.clone());
                        }
                    } else if response.clicked() {
                        if entry.is_dir {
                            entered = Some(self.folder.join(&entry.name));
                        } else {
                            self.name_text = entry.name.clone();
                        }
                    }
                }
            },
        );
        if self.entries.is_empty() {
            ui.weak(match self.kind {
                DialogKind::PickFolder => "(no sub-folders)",
                _ => "(no matching files)",
            });
        }
        if let Some(folder) = entered {
            self.enter(folder);
        }
        if let Some(name) = picked {
            self.name_text = name;
            answer = self.accept();
        }
        ui.separator();
        ui.horizontal(|ui| {
            let label = ui.label(match self.kind {
                DialogKind::PickFolder => "Sub-folder or path",
                _ => "File name or path",
            });
            let field = ui
                .add(egui::TextEdit::singleline(&mut self.name_text).desired_width(f32::INFINITY))
                .labelled_by(label.id);
            if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                answer = self.accept();
            }
        });
        if let Some(filter) = self.filter_text() {
            ui.weak(filter);
        }
        if let Some(error) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        if let Some(existing) = self.replace_question().map(Path::to_path_buf) {
            let name =
                existing.file_name().map_or_else(|| existing.display().to_string(), |n| n.to_string_lossy().into());
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("{name} already exists in {}. Replace it?", self.folder_of(&existing)),
            );
            ui.horizontal(|ui| {
                if ui.button("Replace").clicked() {
                    answer = Some(BrowserAnswer::Picked(existing.clone()));
                }
                if ui.button("Keep it").on_hover_text("Choose another name").clicked() {
                    self.confirm_replace = None;
                }
            });
        } else {
            // The name changed since the question: it no longer applies.
            self.confirm_replace = None;
        }
        ui.horizontal(|ui| {
            if ui.checkbox(&mut self.show_hidden, "Show hidden").changed() {
                self.enter(self.folder.clone());
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button(self.accept_label()).clicked() {
                    answer = self.accept();
                }
                if ui.button("Cancel").clicked() {
                    answer = Some(BrowserAnswer::Cancelled);
                }
            });
        });
        answer
    }

    fn folder_of(&self, path: &Path) -> String {
        path.parent().map_or_else(|| self.folder.display().to_string(), |parent| parent.display().to_string())
    }

    fn filter_text(&self) -> Option<String> {
        match &self.kind {
            DialogKind::PickFolder => None,
            DialogKind::PickFile { filter_name, extensions } | DialogKind::SaveFile { filter_name, extensions, .. } => {
                Some(format!(
                    "{filter_name}: {}",
                    extensions.iter().map(|e| format!("*.{e}")).collect::<Vec<_>>().join(" ")
                ))
            }
        }
    }
}

/// The sub-folders of `folder`, then (unless picking a folder) its files with one of the kind's extensions, each
/// sorted by name without regard to case.
fn list_folder(folder: &Path, kind: &DialogKind, show_hidden: bool) -> Result<Vec<FolderEntry>, String> {
    let read = std::fs::read_dir(folder).map_err(|e| format!("cannot list {}: {e}", folder.display()))?;
    let extensions: &[&str] = match kind {
        DialogKind::PickFolder => &[],
        DialogKind::PickFile { extensions, .. } | DialogKind::SaveFile { extensions, .. } => extensions,
    };
    let mut folders = Vec::new();
    let mut files = Vec::new();
    for entry in read.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !show_hidden && name.starts_with('.') {
            continue;
        }
        // Follows links, so a linked data folder lists as a folder.
        let is_dir = entry.path().is_dir();
        if is_dir {
            folders.push(FolderEntry { name, is_dir });
        } else if *kind != DialogKind::PickFolder && has_extension(&name, extensions) {
            files.push(FolderEntry { name, is_dir });
        }
    }
    folders.sort_by_key(|e| e.name.to_lowercase());
    files.sort_by_key(|e| e.name.to_lowercase());
    folders.extend(files);
    Ok(folders)
}

/// Whether `name` ends in one of `extensions` (any case); an empty list or `*` lets every file through.
fn has_extension(name: &str, extensions: &[&str]) -> bool {
    if extensions.is_empty() || extensions.contains(&"*") {
        return true;
    }
    let Some((_, ext)) = name.rsplit_once('.') else {
        return false;
    };
    extensions.iter().any(|e| e.eq_ignore_ascii_case(ext))
}

fn home_folder() -> Option<PathBuf> {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// `~` and `~/x` to the home folder; anything else unchanged.
fn expand_home(text: &str) -> PathBuf {
    match (text.strip_prefix('~'), home_folder()) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => home.join(rest.trim_start_matches('/')),
        _ => PathBuf::from(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGES: DialogKind = DialogKind::PickFile { filter_name: "Images", extensions: &["png", "dcm"] };

    fn sample_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("Zeta")).unwrap();
        std::fs::create_dir(dir.path().join("alpha")).unwrap();
        std::fs::create_dir(dir.path().join(".hidden")).unwrap();
        for name in ["b.PNG", "a.dcm", "notes.txt", "noext"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        dir
    }

    fn names(entries: &[FolderEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn listing_puts_folders_first_and_filters_files_by_extension() {
        let dir = sample_folder();
        let entries = list_folder(dir.path(), &IMAGES, false).unwrap();
        assert_eq!(names(&entries), ["alpha", "Zeta", "a.dcm", "b.PNG"]);
        let folders = list_folder(dir.path(), &DialogKind::PickFolder, true).unwrap();
        assert_eq!(names(&folders), [".hidden", "alpha", "Zeta"]);
    }

    #[test]
    fn missing_folder_keeps_the_listing_and_says_why() {
        let dir = sample_folder();
        let mut browser = FileBrowser::new("t", IMAGES, Some(dir.path().to_path_buf()));
        browser.enter(dir.path().join("gone"));
        assert_eq!(browser.folder(), dir.path());
        assert_eq!(browser.entries.len(), 4);
        assert!(browser.error.as_deref().is_some_and(|e| e.contains("gone")), "{:?}", browser.error);
    }

    #[test]
    fn typed_names_and_paths_are_checked_for_the_dialog_kind() {
        let dir = sample_folder();
        let mut browser = FileBrowser::new("t", IMAGES, Some(dir.path().to_path_buf()));
        browser.name_text = "a.dcm".to_owned();
        assert_eq!(browser.accept(), Some(BrowserAnswer::Picked(dir.path().join("a.dcm"))));
        browser.name_text = "missing.png".to_owned();
        assert_eq!(browser.accept(), None);
        assert!(browser.error.as_deref().is_some_and(|e| e.contains("does not exist")));
        // A typed folder is entered, not picked.
        browser.name_text = dir.path().join("alpha").display().to_string();
        assert_eq!(browser.accept(), None);
        assert_eq!(browser.folder(), dir.path().join("alpha"));

        let save = DialogKind::SaveFile {
            file_name: "study.sqlite".to_owned(),
            filter_name: "Study",
            extensions: &["sqlite"],
            new_only: false,
        };
        let mut saver = FileBrowser::new("t", save, Some(dir.path().to_path_buf()));
        assert_eq!(saver.accept(), Some(BrowserAnswer::Picked(dir.path().join("study.sqlite"))));
        saver.name_text = "nowhere/study.sqlite".to_owned();
        assert_eq!(saver.accept(), None);
        // An existing file is not picked by accepting its name: the user is asked first.
        saver.name_text = "a.dcm".to_owned();
        assert_eq!(saver.accept(), None);
        assert_eq!(saver.replace_question(), Some(dir.path().join("a.dcm").as_path()));
        saver.name_text = "b.dcm".to_owned();
        assert_eq!(saver.replace_question(), None, "the question goes with the name");
        // A file that is never replaced (a study): an existing name is refused with the reason, no question.
        let new_only = DialogKind::SaveFile {
            file_name: "a.dcm".to_owned(),
            filter_name: "Study",
            extensions: &["sqlite"],
            new_only: true,
        };
        let mut creator = FileBrowser::new("t", new_only, Some(dir.path().to_path_buf()));
        assert_eq!(creator.accept(), None);
        assert_eq!(creator.replace_question(), None);
        assert!(
            creator
                .error
                .as_deref()
                .is_some_and(|e| e.contains("a.dcm already exists, and this file is never replaced"))
        );
        creator.name_text = "fresh.sqlite".to_owned();
        assert_eq!(creator.accept(), Some(BrowserAnswer::Picked(dir.path().join("fresh.sqlite"))));

        let mut folders = FileBrowser::new("t", DialogKind::PickFolder, Some(dir.path().to_path_buf()));
        assert_eq!(folders.accept(), Some(BrowserAnswer::Picked(dir.path().to_path_buf())));
        folders.name_text = "Zeta".to_owned();
        assert_eq!(folders.accept(), Some(BrowserAnswer::Picked(dir.path().join("Zeta"))));
        folders.name_text = "a.dcm".to_owned();
        assert_eq!(folders.accept(), None);
    }

    #[test]
    fn extensions_match_without_case_and_star_matches_all() {
        assert!(has_extension("x.DcM", &["dcm"]));
        assert!(!has_extension("x.dcm.txt", &["dcm"]));
        assert!(!has_extension("dcm", &["dcm"]));
        assert!(has_extension("anything", &["*"]));
    }
}
