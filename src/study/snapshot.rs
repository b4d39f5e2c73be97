//! Reading a study that a reading session holds. The session keeps SQLite's exclusive lock for as long as it runs
//! (so a second session cannot interleave answers), which also keeps every other connection out, `study status`
//! included. A researcher watching a study in progress reads a snapshot instead: the database file and its
//! write-ahead log are copied into a temporary folder and the copy is opened, so SQLite's log recovery gives the
//! transactions committed when the log was copied. A copy taken while the files changed under it is taken again, and
//! so is one whose log would lose committed frames (recovery stops quietly at the first bad frame): a torn copy
//! passes on a later try, a damaged log is refused with the reason. The session is never touched.

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

    /// Closes the connection (and its exclusive lock) for a caller that attaches the file to another connection:
    /// the file's path, and the snapshot's folder, which removes the file when dropped.
    pub fn close(self) -> (PathBuf, Option<tempfile::TempDir>) {
        let path = self.store.path().to_path_buf();
        drop(self.store);
        (path, self.snapshot_folder)
    }
}

/// Opens the study at `path` for reading: the file itself when no one holds it and it can be written, else a
/// snapshot of it (a study on read-only media is still read, as an archived study should be).
pub fn open_for_reading(path: &Path) -> StudyResult<StudyForReading> {
    match StudyStore::open(path) {
        Ok(store) => Ok(StudyForReading { store, snapshot_folder: None }),
        Err(StudyError::Locked { .. } | StudyError::ReadOnly { .. }) => open_snapshot(path),
        Err(other) => Err(other),
    }
}

/// Opens a snapshot of the study at `path` whether or not anyone holds it: the file is never opened itself, so it
/// may be read-only, and its write-ahead log, where a station that still holds it keeps its newest answers, is read
/// too.
pub fn open_snapshot(path: &Path) -> StudyResult<StudyForReading> {
    if !path.is_file() {
        return Err(StudyError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "study file not found"),
        });
    }
    copy_and_open(path)
}

/// Copies `source` to a new file at `target`. Unlike `std::fs::copy` the copy does not take the source's
/// permissions, so a snapshot of a read-only study can be opened for writing, as every study is.
fn copy_contents(source: &Path, target: &Path) -> std::io::Result<()> {
    let mut reader = std::fs::File::open(source)?;
    let mut writer = std::fs::File::create_new(target)?;
    std::io::copy(&mut reader, &mut writer)?;
    Ok(())
}

/// The length and modification time of each of `files` that exists, to tell whether a copy raced a write.
fn file_states(files: &[PathBuf]) -> Vec<Option<(u64, SystemTime)>> {
    files.iter().map(|file| std::fs::metadata(file).ok().and_then(|m| Some((m.len(), m.modified().ok()?)))).collect()
}

fn copy_and_open(path: &Path) -> StudyResult<StudyForReading> {
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
            match copy_contents(source, target) {
                Ok(()) => {}
                // No log: everything is in the database file.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound && source != path => {}
                Err(error) => return Err(io(error)),
            }
        }
        if file_states(&sources) != before {
            continue;
        }
        // SQLite would quietly drop the frames from a damaged one on, hiding committed answers: retry, then say so.
        let log_bytes = std::fs::read(&targets[1]).unwrap_or_default();
        if let Some(damage) = log_damage(&log_bytes) {
            last_error = Some(StudyError::SnapshotUnreadable {
                path: path.to_path_buf(),
                reason: format!(
                    "its write-ahead log (the answers the session holds) is damaged: {damage}; read the study once \
                     the session has ended"
                ),
            });
            continue;
        }
        let opened = StudyStore::open(&copy).and_then(|store| match store.integrity_check()? {
            verdict if verdict == "ok" => Ok(store),
            verdict => Err(StudyError::SnapshotUnreadable {
                path: path.to_path_buf(),
                reason: format!("the copy fails the integrity check: {verdict}"),
            }),
        });
        match opened {
            Ok(store) => return Ok(StudyForReading { store, snapshot_folder: Some(folder) }),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| StudyError::SnapshotUnreadable {
        path: path.to_path_buf(),
        reason: format!("it changed during each of {COPY_ATTEMPTS} attempts to copy it"),
    }))
}

/// Bytes of a write-ahead log header and of a frame header.
pub const LOG_HEADER_BYTES: usize = 32;
pub const FRAME_HEADER_BYTES: usize = 24;

/// SQLite's log checksum over `data` (a multiple of 8 bytes), continuing from `sums`, with words read big-endian or
/// little-endian as the log's magic number says.
fn log_checksum(mut sums: (u32, u32), data: &[u8], big_endian: bool) -> (u32, u32) {
    for pair in data.chunks_exact(8) {
        let word = |bytes: &[u8]| {
            let bytes = [bytes[0], bytes[1], bytes[2], bytes[3]];
            if big_endian { u32::from_be_bytes(bytes) } else { u32::from_le_bytes(bytes) }
        };
        sums.0 = sums.0.wrapping_add(word(&pair[..4])).wrapping_add(sums.1);
        sums.1 = sums.1.wrapping_add(word(&pair[4..])).wrapping_add(sums.0);
    }
    sums
}

/// Why a copied write-ahead log would hide committed transactions, if it would: a torn or bad header, a frame of
/// the current generation (its salts match the header's) whose checksum fails, or a frame cut short. Frames of an
/// older generation after the current ones are normal (SQLite rewrites the log from the start) and end the scan.
/// An empty log (everything checkpointed) is sound.
pub fn log_damage(log: &[u8]) -> Option<String> {
    if log.is_empty() {
        return None;
    }
    let be32 = |at: usize| log.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    if log.len() < LOG_HEADER_BYTES {
        return Some(format!("it is {} bytes long, shorter than its header", log.len()));
    }
    let big_endian = match be32(0) {
        Some(0x377f_0682) => false,
        Some(0x377f_0683) => true,
        _ => return Some("its header is not a write-ahead log header".to_owned()),
    };
    let page_bytes = match be32(8) {
        Some(1) => 65536,
        Some(size) if (512..=32768).contains(&size) && size.is_power_of_two() => size as usize,
        _ => return Some("its header names no valid page size".to_owned()),
    };
    let salts = (be32(16), be32(20));
    let mut sums = log_checksum((0, 0), &log[..24], big_endian);
    if (be32(24), be32(28)) != (Some(sums.0), Some(sums.1)) {
        return Some("its header fails its checksum".to_owned());
    }
    let frame_bytes = FRAME_HEADER_BYTES + page_bytes;
    let mut offset = LOG_HEADER_BYTES;
    let mut frame = 1;
    while offset < log.len() {
        if (be32(offset + 8), be32(offset + 12)) != salts && offset + 16 <= log.len() {
            // The rest is an older generation of the log.
            return None;
        }
        let Some(bytes) = log.get(offset..offset + frame_bytes) else {
            return Some(format!("frame {frame} is cut short"));
        };
        sums = log_checksum(sums, &bytes[..8], big_endian);
        sums = log_checksum(sums, &bytes[FRAME_HEADER_BYTES..], big_endian);
        if (be32(offset + 16), be32(offset + 20)) != (Some(sums.0), Some(sums.1)) {
            return Some(format!("frame {frame} fails its checksum"));
        }
        offset += frame_bytes;
        frame += 1;
    }
    None
}
