//! Reading a study that a reading session holds. The session keeps SQLite's exclusive lock for as long as it runs
//! (so a second session cannot interleave answers), which also keeps every other connection out, `study status`
//! included. A researcher watching a study in progress reads a snapshot instead: the database file and its
//! write-ahead log are copied into a temporary folder and the copy is opened. SQLite's log recovery keeps exactly
//! the transactions committed when the log was copied (a half-written last frame fails its checksum and is
//! dropped), and a copy taken while the files changed under it is taken again. The session is never touched.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::error::{StudyError, StudyResult};
use super::store::StudyStore;

/// How many times a copy is taken before giving up on a study that keeps changing while it is copied.
const COPY_ATTEMPTS: usize = 5;

/// A study opened for reading: the file itself, or a snapshot copy while a session holds it.
pub struct StudyForReading {
    store: StudyStore,
    /// The snapshot's folder, removed on drop (after `store`, declared first, has closed its connection).
    snapshot_folder: Option<tempfile::TempDir>,
}

impl StudyForReading {
    pub fn store(&self) -> &StudyStore {
        &self.store
    }

    /// Whether this is a snapshot of a study another process holds.
    pub fn is_snapshot(&self) -> bool {
        self.snapshot_folder.is_some()
    }
}

/// Opens the study at `path` for reading: the file itself when no one holds it, else a snapshot of it.
pub fn open_for_reading(path: &Path) -> StudyResult<StudyForReading> {
    match StudyStore::open(path) {
        Ok(store) => Ok(StudyForReading { store, snapshot_folder: None }),
        Err(StudyError::Locked { .. }) => open_snapshot(path),
        Err(other) => Err(other),
    }
}

/// The database and its log, as (path, length, modification time) where they exist.
fn file_states(files: &[PathBuf]) -> Vec<Option<(u64, SystemTime)>> {
    files.iter().map(|file| std::fs::metadata(file).ok().and_then(|m| Some((m.len(), m.modified().ok()?)))).collect()
}

fn open_snapshot(path: &Path) -> StudyResult<StudyForReading> {
    let io = |source| StudyError::Io { path: path.to_path_buf(), source };
    let mut log = path.as_os_str().to_owned();
    log.push("-wal");
    let sources = [path.to_path_buf(), PathBuf::from(log)];
    let mut last_error = None;
    for attempt in 0..COPY_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(50 * attempt as u64));
        }
        let folder = tempfile::Builder::new().prefix("thorax-study-snapshot-").tempdir().map_err(io)?;
        let copy = folder.path().join("study.sqlite");
        let targets = [copy.clone(), folder.path().join("study.sqlite-wal")];
        let before = file_states(&sources);
        for (source, target) in sources.iter().zip(&targets) {
            match std::fs::copy(source, target) {
                Ok(_) => {}
                // No log: everything is in the database file.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound && source != path => {}
                Err(error) => return Err(io(error)),
            }
        }
        if file_states(&sources) != before {
            continue;
        }
        let opened = StudyStore::open(&copy).and_then(|store| match store.integrity_check()? {
            verdict if verdict == "ok" => Ok(store),
            verdict => Err(StudyError::NotAStudy {
                path: path.to_path_buf(),
                reason: format!("a snapshot of it fails the integrity check: {verdict}"),
            }),
        });
        match opened {
            Ok(store) => return Ok(StudyForReading { store, snapshot_folder: Some(folder) }),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io(std::io::Error::other(format!(
            "the study changed during each of {COPY_ATTEMPTS} attempts to copy it while another process holds it"
        )))
    }))
}
