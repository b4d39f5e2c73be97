//! Writing a file so that it is either whole or absent under its name: the bytes go to a hidden temporary file in
//! the target's folder (`.NAME.XXXXXX.partial`), which is renamed into place once complete and synced. A failure or a
//! kill mid-write leaves the old file as it was (or no file), at worst beside a stray `.partial` file, never half a
//! file under the real name. Whether an existing file may be replaced is the caller's choice ([`IfExists`]); the
//! command line refuses unless the user passed `--overwrite`. The temporary files being written are listed, so that
//! an interrupted program (Ctrl+C, a closed terminal, `kill`) removes them on its way out ([`crate::interrupt`]);
//! only a SIGKILL or a power cut can leave one behind.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The temporary files of this process that are being written now.
static LIVE_PARTIAL_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live_partial_files() -> MutexGuard<'static, Vec<PathBuf>> {
    // A panic while the list was held leaves it as valid as before: the list is only pushed to and removed from.
    LIVE_PARTIAL_FILES.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes every temporary file being written, and returns the held list so that no new one can start until the
/// caller drops it (the interrupt handler ends the process while holding it). Errors are ignored: a file already
/// renamed into place is no longer there.
pub fn remove_live_partial_files() -> MutexGuard<'static, Vec<PathBuf>> {
    let mut live = live_partial_files();
    for path in live.drain(..) {
        let _ = std::fs::remove_file(path);
    }
    live
}

/// Whether a file name is one of this module's temporary files (`.NAME.XXXXXX.partial`), so that folder scans
/// skip a stray one left by a killed run.
pub fn is_partial_file_name(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') && name.ends_with(".partial")
}

/// Keeps a temporary file's path in the live list while the file is being written.
struct LiveRegistration {
    path: PathBuf,
}

impl LiveRegistration {
    fn new(path: &Path) -> Self {
        live_partial_files().push(path.to_path_buf());
        Self { path: path.to_path_buf() }
    }
}

impl Drop for LiveRegistration {
    fn drop(&mut self) {
        let mut live = live_partial_files();
        if let Some(index) = live.iter().position(|path| *path == self.path) {
            live.swap_remove(index);
        }
    }
}

/// What to do when the target already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfExists {
    /// Leave it and fail with [`OutputFileError::Exists`].
    Refuse,
    /// Replace it (keeping its permissions).
    Replace,
}

impl IfExists {
    /// `Replace` when the user said so (`--overwrite`, or confirmed a dialog), else `Refuse`.
    pub fn replace_if(allowed: bool) -> Self {
        if allowed { Self::Replace } else { Self::Refuse }
    }
}

/// Why an output file was not written; names the file.
#[derive(Debug, thiserror::Error)]
pub enum OutputFileError {
    #[error("{} already exists (left as it was)", path.display())]
    Exists { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl OutputFileError {
    /// As an I/O error (kind `AlreadyExists` for [`OutputFileError::Exists`]), for error types that hold one.
    pub fn into_io(self) -> std::io::Error {
        match self {
            Self::Io { source, .. } => source,
            exists @ Self::Exists { .. } => std::io::Error::new(std::io::ErrorKind::AlreadyExists, exists.to_string()),
        }
    }
}

/// Whether something (a file, a folder, a link, even a dangling one) already has the name `path`.
pub fn name_taken(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// A file being written: a temporary file beside `target` until [`PartialFile::commit`] renames it into place.
/// Dropped without a commit, the temporary file is removed and `target` is untouched.
pub struct PartialFile {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
    if_exists: IfExists,
    // Dropped after the rename (or the removal) of `temp`.
    _live: LiveRegistration,
}

impl PartialFile {
    /// Starts writing `target`. With [`IfExists::Refuse`] an existing target fails here, before any work.
    pub fn create(target: &Path, if_exists: IfExists) -> Result<Self, OutputFileError> {
        let io = |source| OutputFileError::Io { path: target.to_path_buf(), source };
        if if_exists == IfExists::Refuse && name_taken(target) {
            return Err(OutputFileError::Exists { path: target.to_path_buf() });
        }
        let folder = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let name = target.file_name().map_or_else(|| "output".into(), |name| name.to_string_lossy());
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".partial");
        // A temporary file is private to its owner (0600); the output gets what the umask gives a new file.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let temp = builder.tempfile_in(folder).map_err(io)?;
        let _live = LiveRegistration::new(temp.path());
        Ok(Self { temp, target: target.to_path_buf(), if_exists, _live })
    }

    /// The temporary file's path, for writers that take a path (written over, it keeps its place and cleanup).
    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    /// The temporary file, to write into.
    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// The file this will become.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Syncs the written bytes and moves them under the target's name. A replaced file's permissions are kept.
    pub fn commit(self) -> Result<(), OutputFileError> {
        let target = self.target;
        let io = |source| OutputFileError::Io { path: target.clone(), source };
        self.temp.as_file().sync_all().map_err(io)?;
        match self.if_exists {
            IfExists::Replace => {
                if let Ok(existing) = std::fs::metadata(&target) {
                    // Best effort: a file system without Unix permissions (FAT) keeps its own.
                    let _ = std::fs::set_permissions(self.temp.path(), existing.permissions());
                }
                self.temp.persist(&target).map(|_| ()).map_err(|e| io(e.error))
            }
            IfExists::Refuse => persist_new(self.temp, &target).map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => OutputFileError::Exists { path: target.clone() },
                _ => io(source),
            }),
        }
    }
}

impl std::io::Write for PartialFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.temp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.temp.flush()
    }
}

/// Renames `temp` to `target` unless `target` exists: a no-clobber rename where the file system has one; where it
/// has neither that nor hard links (FAT), a plain rename once more checked against an existing file.
pub fn persist_new(temp: tempfile::NamedTempFile, target: &Path) -> std::io::Result<()> {
    match temp.persist_noclobber(target) {
        Ok(_) => Ok(()),
        Err(failed) if !name_taken(target) => failed.file.persist(target).map(|_| ()).map_err(|e| e.error),
        Err(failed) => Err(failed.error),
    }
}

/// Writes `bytes` to `target` through a [`PartialFile`].
pub fn write_file(target: &Path, if_exists: IfExists, bytes: &[u8]) -> Result<(), OutputFileError> {
    let mut partial = PartialFile::create(target, if_exists)?;
    std::io::Write::write_all(partial.file(), bytes)
        .map_err(|source| OutputFileError::Io { path: target.to_path_buf(), source })?;
    partial.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn refuse_keeps_an_existing_file_and_replace_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        write_file(&path, IfExists::Refuse, b"first").unwrap();
        let error = write_file(&path, IfExists::Refuse, b"second").unwrap_err();
        assert!(matches!(error, OutputFileError::Exists { .. }), "{error}");
        assert!(error.to_string().contains("a.csv"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        write_file(&path, IfExists::Replace, b"third").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"third");
        assert_eq!(names_in(dir.path()), ["a.csv"], "no temporary file left behind");
    }

    #[test]
    fn an_unfinished_write_leaves_the_old_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.png");
        std::fs::write(&path, b"old and whole").unwrap();
        let mut partial = PartialFile::create(&path, IfExists::Replace).unwrap();
        std::io::Write::write_all(partial.file(), b"half of the n").unwrap();
        // The new bytes are under another name until the commit.
        assert_eq!(std::fs::read(&path).unwrap(), b"old and whole");
        assert_ne!(partial.path(), path);
        assert_eq!(partial.path().parent(), Some(dir.path()));
        drop(partial);
        assert_eq!(std::fs::read(&path).unwrap(), b"old and whole");
        assert_eq!(names_in(dir.path()), ["m.png"]);
    }

    #[test]
    fn a_file_appearing_before_the_commit_is_not_replaced_under_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.dcm");
        let mut partial = PartialFile::create(&path, IfExists::Refuse).unwrap();
        std::io::Write::write_all(partial.file(), b"ours").unwrap();
        std::fs::write(&path, b"theirs").unwrap();
        assert!(matches!(partial.commit(), Err(OutputFileError::Exists { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), b"theirs");
        assert_eq!(names_in(dir.path()), ["x.dcm"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let probe = dir.path().join("probe");
        std::fs::write(&probe, b"").unwrap();
        let path = dir.path().join("new.png");
        write_file(&path, IfExists::Refuse, b"x").unwrap();
        assert_eq!(mode(&path), mode(&probe), "as a plain new file, not the 0600 of a temporary one");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_file(&path, IfExists::Replace, b"y").unwrap();
        assert_eq!(mode(&path), 0o640);
    }

    #[test]
    fn a_missing_folder_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let error = write_file(&dir.path().join("no/such/a.png"), IfExists::Replace, b"x").unwrap_err();
        assert!(error.to_string().contains("no/such/a.png"), "{error}");
    }
}
