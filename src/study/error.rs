//! The one error type of the study library. Messages name the thing and the reason; paths come last.

use std::path::PathBuf;

/// Everything that can go wrong while designing, reading or analysing a study.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The database was written by a newer build whose schema this build cannot read.
    #[error(
        "study database uses schema version {found}, this build reads up to version {supported}; update Thorax Workbench to open it: {path}"
    )]
    NewerVersion {
        /// The study file.
        path: PathBuf,
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build understands.
        supported: i64,
    },

    /// Another process holds the study database (a reading session, a CLI command).
    #[error(
        "study database is in use by another process (locked); close the other reading session or command and retry: {path}"
    )]
    Locked {
        /// The study file.
        path: PathBuf,
    },

    /// The study file cannot be written (a read-only file or medium); reading sessions and merges write to it.
    #[error(
        "the study file is read-only; answers are added to a study under a lock, so copy it to a folder you can \
         write to: {path}"
    )]
    ReadOnly {
        /// The study file.
        path: PathBuf,
    },

    /// A study in use could not be read from a snapshot (its write-ahead log kept changing or is damaged).
    #[error("study database is in use by another process, and a snapshot of it cannot be read: {reason}: {path}")]
    SnapshotUnreadable {
        /// The study file.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// The disk (or the database's size limit) is full: the write was rolled back.
    #[error(
        "disk full while writing the study database; the last write was not saved, everything saved before it is intact: {path}"
    )]
    DiskFull {
        /// The study file.
        path: PathBuf,
    },

    /// A labels CSV names images its folder does not hold.
    #[error(
        "{csv} lists {count} image(s) that are not in {dir} (first: {first}); the real pool is exactly the CSV's \
         rows, so give a CSV of this folder's images or the folder the CSV describes"
    )]
    CsvListsMissingImages { csv: PathBuf, dir: PathBuf, count: usize, first: String },
    /// An image named by the study input does not exist.
    #[error("image file not found: {path}")]
    MissingImage {
        /// The missing image.
        path: PathBuf,
    },

    /// An image exists but cannot be decoded.
    #[error("cannot decode image ({reason}): {path}")]
    Decode {
        /// The image.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },

    /// The file is not a Thorax Workbench study database.
    #[error("not a Thorax Workbench study database ({reason}): {path}")]
    NotAStudy {
        /// The file.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },

    /// Refused to overwrite an existing file.
    #[error("output file already exists, refusing to overwrite it: {path}")]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },

    /// A reader copy holds no truth for its main cases: it can be read, not analysed or exported.
    #[error(
        "this is a reader copy: it holds no truth for its main cases; merge its answers into the master study \
         (thorax study merge MASTER COPY) and analyse or export that: {path}"
    )]
    TruthWithheld {
        /// The reader copy.
        path: PathBuf,
    },

    /// Reader copies are made from the master study, not from a copy.
    #[error("this is already a reader copy: make reader copies from the master study: {path}")]
    AlreadyReaderCopy {
        /// The reader copy.
        path: PathBuf,
    },

    /// A reader copy that does not belong to the master study, or whose answers contradict the master's.
    #[error("cannot merge the reader copy ({reason}): {path}")]
    MergeRefused {
        /// The reader copy.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// Any other SQLite failure.
    #[error("study database error ({source}): {path}")]
    Database {
        /// The study file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// A file-system operation failed.
    #[error("I/O error ({source}): {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A malformed line in an imported CSV or iMRMC file.
    #[error("cannot read line {line}: {reason}: {path}")]
    Parse {
        /// The input file.
        path: PathBuf,
        /// 1-based line (or record) number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },

    /// The study design or the plan for a new study is inconsistent.
    #[error("invalid study design: {0}")]
    InvalidDesign(String),

    /// Fewer source images than the study asks for.
    #[error("not enough {kind} images: the study needs {needed}, the source has {available}")]
    NotEnoughImages {
        /// "real" or "artificial".
        kind: &'static str,
        /// How many the study needs.
        needed: usize,
        /// How many there are.
        available: usize,
    },

    /// The artificial image source (a folder, a generator) failed.
    #[error("artificial image source failed: {0}")]
    Source(String),

    /// The CycleGAN that harmonises the real cases' style failed.
    #[error("harmonising the real images failed: {0}")]
    Harmoniser(String),

    /// The reader is not part of this study.
    #[error("reader {reader:?} is not part of this study")]
    UnknownReader {
        /// The reader's id.
        reader: String,
    },

    /// The answer does not fit the study's questions.
    #[error("answer rejected: {0}")]
    InvalidAnswer(String),

    /// The token does not belong to the case this reader is on (double submit, stale screen).
    #[error("case token does not match the case reader {reader:?} is on (already answered or stale)")]
    StaleToken {
        /// The reader's id.
        reader: String,
    },

    /// The study does not allow going back to earlier cases.
    #[error("this study does not allow going back to earlier cases")]
    BackNotAllowed,

    /// Not enough data to compute what was asked.
    #[error("cannot analyse: {0}")]
    Analysis(String),
}

/// Result alias of the study library.
pub type StudyResult<T> = Result<T, StudyError>;

/// Maps a SQLite error on `path` to the clearest `StudyError`: busy/locked, full and not-a-database get their own variants.
pub(crate) fn map_sqlite(path: &std::path::Path, error: rusqlite::Error) -> StudyError {
    use rusqlite::ErrorCode;
    if let rusqlite::Error::SqliteFailure(failure, _) = &error {
        match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StudyError::Locked { path: path.to_path_buf() };
            }
            ErrorCode::DiskFull => {
                return StudyError::DiskFull { path: path.to_path_buf() };
            }
            ErrorCode::NotADatabase => {
                return StudyError::NotAStudy {
                    path: path.to_path_buf(),
                    reason: "the file is not an SQLite database".to_owned(),
                };
            }
            _ => {}
        }
    }
    StudyError::Database { path: path.to_path_buf(), source: error }
}
