//! The durable study database: SQLite (bundled) in WAL mode with `synchronous=FULL`, one process at a time.
//!
//! Every write is one transaction; when a call returns `Ok`, the write is on disk and survives `kill -9` or a power
//! loss (WAL + FULL syncs the log on every commit). The connection runs in `locking_mode=EXCLUSIVE` and takes the
//! write lock when it opens, so a second process gets `StudyError::Locked` instead of interleaving sessions.
//! The schema version is `PRAGMA user_version`; a file from a newer build is refused before anything is written, one
//! from an older build is upgraded in place when opened.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::answer::{Answer, GiveawayPoint};
use super::design::{Call, Provenance, StudyDesign};
use super::display::DisplayImage;
use super::error::{StudyError, StudyResult, map_sqlite};
use super::sources::CaseLabels;

/// The provenance, source and labels of a case in a reader copy (`reader_copy.rs`).
pub(super) const WITHHELD: &str = "withheld";

/// Schema version written to `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 3;

/// `PRAGMA application_id` of study files ("THRX").
pub const APPLICATION_ID: i64 = 0x5448_5258;

/// How long to wait for a lock held by another connection before reporting `Locked`.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// The schema of version 1; a new study gets it and then every upgrade, so new and upgraded files are alike.
const SCHEMA_V1_SQL: &str = "
CREATE TABLE metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE design (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL);
CREATE TABLE cases (
    case_id TEXT PRIMARY KEY,
    provenance TEXT NOT NULL CHECK (provenance IN ('real', 'artificial')),
    practice INTEGER NOT NULL CHECK (practice IN (0, 1)),
    source TEXT NOT NULL,
    labels_json TEXT NOT NULL,
    width_px INTEGER NOT NULL,
    height_px INTEGER NOT NULL,
    display_png BLOB NOT NULL
);
CREATE TABLE readers (reader_id TEXT PRIMARY KEY, seed TEXT NOT NULL, ordinal INTEGER NOT NULL UNIQUE);
CREATE TABLE reader_orders (
    reader_id TEXT NOT NULL REFERENCES readers (reader_id),
    position INTEGER NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (case_id),
    PRIMARY KEY (reader_id, position),
    UNIQUE (reader_id, case_id)
);
CREATE TABLE answers (
    answer_id INTEGER PRIMARY KEY AUTOINCREMENT,
    reader_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (case_id),
    call TEXT NOT NULL CHECK (call IN ('real', 'artificial')),
    confidence INTEGER NOT NULL,
    rating INTEGER NOT NULL,
    free_text TEXT,
    giveaway_x REAL,
    giveaway_y REAL,
    time_ms INTEGER NOT NULL,
    answered_unix_ms INTEGER NOT NULL,
    UNIQUE (reader_id, position, revision),
    FOREIGN KEY (reader_id, position) REFERENCES reader_orders (reader_id, position)
);
CREATE TABLE events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    reader_id TEXT,
    kind TEXT NOT NULL,
    at_unix_ms INTEGER NOT NULL
);
";

/// Version 2: the clock of the case a reader is on is checkpointed (one row per reader), so a restart resumes it;
/// an answer says whether its time spans such a restart. Old answers did not, as far as anyone knows.
const UPGRADE_TO_V2_SQL: &str = "
ALTER TABLE answers ADD COLUMN time_spans_restart INTEGER NOT NULL DEFAULT 0 CHECK (time_spans_restart IN (0, 1));
CREATE TABLE case_clocks (
    reader_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    active_ms INTEGER NOT NULL CHECK (active_ms >= 0),
    saved_unix_ms INTEGER NOT NULL,
    FOREIGN KEY (reader_id, position) REFERENCES reader_orders (reader_id, position)
);
";

/// Version 3: reading time is kept per reader and case, not only for the case a reader is on, so that a reader who
/// goes back and returns adds to the time already read. A row holds time not yet in an answer: the time read so far
/// on an unanswered case, or on an answered case revisited since (its answer's time included). Schema 2 timed a
/// revisit from 0, so its clock of an answered case gets that case's latest answer time added.
const UPGRADE_TO_V3_SQL: &str = "
CREATE TABLE case_clocks_v3 (
    reader_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    active_ms INTEGER NOT NULL CHECK (active_ms >= 0),
    saved_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (reader_id, position),
    FOREIGN KEY (reader_id, position) REFERENCES reader_orders (reader_id, position)
);
INSERT INTO case_clocks_v3 (reader_id, position, active_ms, saved_unix_ms)
SELECT k.reader_id, k.position,
       k.active_ms + COALESCE((SELECT a.time_ms FROM answers a WHERE a.reader_id = k.reader_id
                                AND a.position = k.position ORDER BY a.revision DESC LIMIT 1), 0),
       k.saved_unix_ms
FROM case_clocks k;
DROP TABLE case_clocks;
ALTER TABLE case_clocks_v3 RENAME TO case_clocks;
";

/// The upgrade from version `n` to `n + 1` is `SCHEMA_UPGRADES[n - 1]`.
const SCHEMA_UPGRADES: [&str; 2] = [UPGRADE_TO_V2_SQL, UPGRADE_TO_V3_SQL];

/// Start of the `kind` of the event an in-place upgrade logs ("schema upgraded from 1 to 3"). A reader copy's
/// upgrades are its own, so a merge leaves them out.
pub(super) const SCHEMA_UPGRADE_EVENT: &str = "schema upgraded";

/// Brings a connection's schema from `from_version` to `SCHEMA_VERSION` inside `transaction`.
fn upgrade_schema(transaction: &rusqlite::Transaction<'_>, from_version: i64) -> rusqlite::Result<()> {
    for (to_version, upgrade) in (2_i64..).zip(SCHEMA_UPGRADES) {
        if from_version < to_version {
            transaction.execute_batch(upgrade)?;
        }
    }
    transaction.pragma_update(None, "user_version", SCHEMA_VERSION)
}

/// A case to store when creating a study.
pub struct NewCase {
    /// Opaque id ("case-0001"), assigned in shuffled order so it says nothing about provenance.
    pub case_id: String,
    /// Ground truth.
    pub provenance: Provenance,
    /// Practice case (feedback, excluded from statistics).
    pub practice: bool,
    /// Where the image came from (file path or generator parameters).
    pub source: String,
    /// Labels of the case.
    pub labels: CaseLabels,
    /// The pixels after the display pipeline.
    pub display: DisplayImage,
}

/// A reader with the seed and order of their reading.
pub struct ReaderPlan {
    /// Reader id.
    pub reader_id: String,
    /// Seed of the reader's order (logged).
    pub seed: u64,
    /// Case ids in reading order (practice cases first).
    pub order: Vec<String>,
}

/// A stored case with its ground truth (for analysis and export, never for the reading screen).
#[derive(Clone, Debug, PartialEq)]
pub struct CaseRecord {
    /// Opaque case id.
    pub case_id: String,
    /// Ground truth.
    pub provenance: Provenance,
    /// Practice case.
    pub practice: bool,
    /// Source file or generator parameters.
    pub source: String,
    /// Labels.
    pub labels: CaseLabels,
}

/// A stored reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderRecord {
    /// Reader id.
    pub reader_id: String,
    /// Seed of the reader's order.
    pub seed: u64,
}

/// One slot of a reader's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderEntry {
    /// 0-based position in the reader's order.
    pub position: u32,
    /// The case shown there.
    pub case_id: String,
    /// Whether it is a practice case.
    pub practice: bool,
}

/// A stored answer (every revision is kept; analysis uses the latest per reader and case).
#[derive(Clone, Debug, PartialEq)]
pub struct AnswerRecord {
    /// Row id, increasing in the order answers were stored.
    pub answer_id: i64,
    /// Reader id.
    pub reader_id: String,
    /// Case id.
    pub case_id: String,
    /// 0-based position in the reader's order.
    pub position: u32,
    /// 1 for the first answer, higher when the reader went back and changed it.
    pub revision: u32,
    /// The answer itself.
    pub answer: Answer,
    /// Ordinal rating, higher = more surely artificial.
    pub rating: i64,
    /// Active reading time of the case up to this answer, over every visit (pauses excluded): a revision's time
    /// includes the earlier revisions' and the time spent back on the case since. (Revisions stored before schema
    /// version 3 hold only the time of the visit that gave them.)
    pub time_ms: u64,
    /// The reading of the case spans a restart of the reading station (a crash, or closing the study): its time
    /// was resumed from the last checkpoint, so it may be a few seconds short.
    pub time_spans_restart: bool,
    /// Wall-clock time the answer was stored, milliseconds since the Unix epoch.
    pub answered_unix_ms: i64,
}

/// Reading time of a case kept in the study file and not yet in an answer: the time read so far on an unanswered
/// case, or on an answered case revisited since (its answer's time included), as last checkpointed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredCaseClock {
    /// 0-based position in the reader's order.
    pub position: u32,
    /// Active reading time of the case so far, over every visit (pauses excluded).
    pub active_ms: u64,
}

/// Durability settings of an open study connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalSettings {
    /// "wal" for every study connection.
    pub journal_mode: String,
    /// `synchronous` is FULL (or EXTRA): every commit is synced.
    pub synchronous_full: bool,
    /// "exclusive": one process at a time.
    pub locking_mode: String,
}

/// The open study database.
pub struct StudyStore {
    pub(super) connection: Connection,
    path: PathBuf,
    /// Test hook (see `set_commit_delay`); zero unless a test or a measurement sets it.
    commit_delay: Duration,
}

/// Whether the study file at `path` cannot be opened for writing (a read-only file, or one on read-only media).
pub(crate) fn is_read_only(path: &Path) -> bool {
    std::fs::OpenOptions::new().write(true).open(path).is_err_and(|error| {
        matches!(error.kind(), std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem)
    })
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

/// Pragmas every connection needs before its first read.
fn configure_locking(connection: &Connection) -> rusqlite::Result<()> {
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    Ok(())
}

/// Durability pragmas, applied after the version check.
fn configure_durability(connection: &Connection) -> rusqlite::Result<()> {
    let mode: String = connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!("journal_mode stayed {mode}, WAL was requested")));
    }
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl StudyStore {
    /// Creates a new study file at `path` (refuses to overwrite) holding the design, cases and reader orders.
    pub fn create(
        path: &Path,
        design: &StudyDesign,
        metadata: &[(String, String)],
        cases: &[NewCase],
        readers: &[ReaderPlan],
    ) -> StudyResult<Self> {
        design.validate()?;
        if path.exists() {
            return Err(StudyError::AlreadyExists { path: path.to_path_buf() });
        }
        let result = Self::create_inner(path, design, metadata, cases, readers);
        if result.is_err() {
            // A half-made study must not be mistaken for a study later.
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut leftover = path.as_os_str().to_owned();
                leftover.push(suffix);
                std::fs::remove_file(PathBuf::from(leftover)).ok();
            }
        }
        result
    }

    fn create_inner(
        path: &Path,
        design: &StudyDesign,
        metadata: &[(String, String)],
        cases: &[NewCase],
        readers: &[ReaderPlan],
    ) -> StudyResult<Self> {
        let sql = |error| map_sqlite(path, error);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut connection = Connection::open_with_flags(path, flags).map_err(sql)?;
        configure_locking(&connection).map_err(sql)?;
        connection.pragma_update(None, "application_id", APPLICATION_ID).map_err(sql)?;
        configure_durability(&connection).map_err(sql)?;
        let design_json = serde_json::to_string(design)
            .map_err(|error| StudyError::InvalidDesign(format!("cannot serialise the design: {error}")))?;
        let transaction = connection.transaction().map_err(sql)?;
        transaction.execute_batch(SCHEMA_V1_SQL).map_err(sql)?;
        upgrade_schema(&transaction, 1).map_err(sql)?;
        transaction.execute("INSERT INTO design (id, json) VALUES (1, ?1)", params![design_json]).map_err(sql)?;
        let created = now_unix_ms().to_string();
        let builtin = [
            ("created_unix_ms".to_owned(), created),
            ("tool".to_owned(), format!("thorax-workbench {}", env!("CARGO_PKG_VERSION"))),
        ];
        for (key, value) in builtin.iter().chain(metadata) {
            transaction
                .execute("INSERT INTO metadata (key, value) VALUES (?1, ?2)", params![key, value])
                .map_err(sql)?;
        }
        for case in cases {
            let labels_json = serde_json::to_string(&case.labels)
                .map_err(|error| StudyError::InvalidDesign(format!("cannot serialise labels: {error}")))?;
            transaction
                .execute(
                    "INSERT INTO cases (case_id, provenance, practice, source, labels_json, width_px, height_px, display_png)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        case.case_id,
                        case.provenance.as_str(),
                        case.practice,
                        case.source,
                        labels_json,
                        case.display.width_px(),
                        case.display.height_px(),
                        case.display.to_png_bytes()?,
                    ],
                )
                .map_err(sql)?;
        }
        for (ordinal, reader) in readers.iter().enumerate() {
            transaction
                .execute(
                    "INSERT INTO readers (reader_id, seed, ordinal) VALUES (?1, ?2, ?3)",
                    params![reader.reader_id, reader.seed.to_string(), ordinal as i64],
                )
                .map_err(sql)?;
            for (position, case_id) in reader.order.iter().enumerate() {
                transaction
                    .execute(
                        "INSERT INTO reader_orders (reader_id, position, case_id) VALUES (?1, ?2, ?3)",
                        params![reader.reader_id, position as i64, case_id],
                    )
                    .map_err(sql)?;
            }
        }
        transaction.commit().map_err(sql)?;
        Ok(Self { connection, path: path.to_path_buf(), commit_delay: Duration::ZERO })
    }

    /// Opens an existing study; refuses newer schema versions, non-study files and files held by another process.
    pub fn open(path: &Path) -> StudyResult<Self> {
        if !path.is_file() {
            return Err(StudyError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "study file not found"),
            });
        }
        // SQLite reports a read-only file only as "disk I/O error" once it tries to lock it.
        if is_read_only(path) {
            return Err(StudyError::ReadOnly { path: path.to_path_buf() });
        }
        let sql = |error| map_sqlite(path, error);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut connection = Connection::open_with_flags(path, flags).map_err(sql)?;
        configure_locking(&connection).map_err(sql)?;
        let application_id: i64 =
            connection.pragma_query_value(None, "application_id", |row| row.get(0)).map_err(sql)?;
        let user_version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(sql)?;
        if application_id != APPLICATION_ID {
            return Err(StudyError::NotAStudy {
                path: path.to_path_buf(),
                reason: format!("application id {application_id:#x}, expected {APPLICATION_ID:#x}"),
            });
        }
        if user_version > SCHEMA_VERSION {
            return Err(StudyError::NewerVersion {
                path: path.to_path_buf(),
                found: user_version,
                supported: SCHEMA_VERSION,
            });
        }
        if user_version < 1 {
            return Err(StudyError::NotAStudy {
                path: path.to_path_buf(),
                reason: format!("schema version {user_version}"),
            });
        }
        configure_durability(&connection).map_err(sql)?;
        // Take the write lock now and keep it (EXCLUSIVE mode): a second process fails here, not mid-session.
        connection.execute_batch("BEGIN IMMEDIATE; COMMIT;").map_err(sql)?;
        if user_version < SCHEMA_VERSION {
            // Older files are upgraded in place, in one transaction: the file is either old or new, never between.
            let transaction = connection.transaction().map_err(sql)?;
            upgrade_schema(&transaction, user_version).map_err(sql)?;
            // Logged with the upgrade, so the log says when the file changed form and an earlier build stopped
            // reading it.
            transaction
                .execute(
                    "INSERT INTO events (reader_id, kind, at_unix_ms) VALUES (NULL, ?1, ?2)",
                    params![format!("{SCHEMA_UPGRADE_EVENT} from {user_version} to {SCHEMA_VERSION}"), now_unix_ms()],
                )
                .map_err(sql)?;
            transaction.commit().map_err(sql)?;
        }
        let store = Self { connection, path: path.to_path_buf(), commit_delay: Duration::ZERO };
        // Refuse a design written by a newer build even when the schema did not change.
        store.design()?.validate()?;
        Ok(store)
    }

    /// The study file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, error: rusqlite::Error) -> StudyError {
        map_sqlite(&self.path, error)
    }

    /// Test hook: every write of a reading session (answer, clock checkpoint, event) first waits `delay`, standing
    /// in for a study file on a network share or USB stick, where a synced commit takes 100s of ms. Only this
    /// connection is slowed; nothing sets it outside tests and measurements.
    pub fn set_commit_delay(&mut self, delay: Duration) {
        self.commit_delay = delay;
    }

    fn wait_commit_delay(&self) {
        if !self.commit_delay.is_zero() {
            std::thread::sleep(self.commit_delay);
        }
    }

    /// The study design.
    pub fn design(&self) -> StudyResult<StudyDesign> {
        let json: String = self
            .connection
            .query_row("SELECT json FROM design WHERE id = 1", [], |row| row.get(0))
            .map_err(|error| self.sql(error))?;
        serde_json::from_str(&json).map_err(|error| StudyError::NotAStudy {
            path: self.path.clone(),
            reason: format!("unreadable design ({error})"),
        })
    }

    /// Key-value metadata (creation time, tool, sources), sorted by key.
    pub fn metadata(&self) -> StudyResult<Vec<(String, String)>> {
        let mut statement =
            self.connection.prepare("SELECT key, value FROM metadata ORDER BY key").map_err(|error| self.sql(error))?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).map_err(|error| self.sql(error))?;
        rows.collect::<Result<_, _>>().map_err(|error| self.sql(error))
    }

    /// All cases with their ground truth, ordered by case id.
    pub fn cases(&self) -> StudyResult<Vec<CaseRecord>> {
        let mut statement = self
            .connection
            .prepare("SELECT case_id, provenance, practice, source, labels_json FROM cases ORDER BY case_id")
            .map_err(|error| self.sql(error))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, bool>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                ))
            })
            .map_err(|error| self.sql(error))?;
        let mut cases = Vec::new();
        for row in rows {
            let (case_id, provenance, practice, source, labels_json) = row.map_err(|error| self.sql(error))?;
            cases.push(CaseRecord {
                provenance: self.parse_provenance(&provenance)?,
                labels: serde_json::from_str(&labels_json).map_err(|error| StudyError::NotAStudy {
                    path: self.path.clone(),
                    reason: format!("unreadable labels of case {case_id} ({error})"),
                })?,
                case_id,
                practice,
                source,
            });
        }
        Ok(cases)
    }

    /// How many main and practice cases the study holds (without reading their truth, which a reader copy
    /// withholds).
    pub fn case_counts(&self) -> StudyResult<(usize, usize)> {
        let count = |practice: bool| -> StudyResult<usize> {
            let n: i64 = self
                .connection
                .query_row("SELECT count(*) FROM cases WHERE practice = ?1", params![practice], |row| row.get(0))
                .map_err(|error| self.sql(error))?;
            Ok(usize::try_from(n).unwrap_or(0))
        };
        Ok((count(false)?, count(true)?))
    }

    fn parse_provenance(&self, text: &str) -> StudyResult<Provenance> {
        match text {
            "real" => Ok(Provenance::Real),
            "artificial" => Ok(Provenance::Artificial),
            WITHHELD => Err(StudyError::TruthWithheld { path: self.path.clone() }),
            other => {
                Err(StudyError::NotAStudy { path: self.path.clone(), reason: format!("unknown provenance {other:?}") })
            }
        }
    }

    /// The ground truth of one case.
    pub fn provenance(&self, case_id: &str) -> StudyResult<Provenance> {
        let text: String = self
            .connection
            .query_row("SELECT provenance FROM cases WHERE case_id = ?1", params![case_id], |row| row.get(0))
            .map_err(|error| self.sql(error))?;
        self.parse_provenance(&text)
    }

    /// Readers in the order of the design, with their seeds.
    pub fn readers(&self) -> StudyResult<Vec<ReaderRecord>> {
        let mut statement = self
            .connection
            .prepare("SELECT reader_id, seed FROM readers ORDER BY ordinal")
            .map_err(|error| self.sql(error))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
            .map_err(|error| self.sql(error))?;
        let mut readers = Vec::new();
        for row in rows {
            let (reader_id, seed) = row.map_err(|error| self.sql(error))?;
            let seed = seed.parse().map_err(|_| StudyError::NotAStudy {
                path: self.path.clone(),
                reason: format!("unreadable seed {seed:?} of reader {reader_id}"),
            })?;
            readers.push(ReaderRecord { reader_id, seed });
        }
        Ok(readers)
    }

    /// The reader's order (practice cases first). Empty for an unknown reader.
    pub fn reader_order(&self, reader_id: &str) -> StudyResult<Vec<OrderEntry>> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT o.position, o.case_id, c.practice FROM reader_orders o JOIN cases c ON c.case_id = o.case_id
                 WHERE o.reader_id = ?1 ORDER BY o.position",
            )
            .map_err(|error| self.sql(error))?;
        let rows = statement
            .query_map(params![reader_id], |row| {
                Ok(OrderEntry { position: row.get(0)?, case_id: row.get(1)?, practice: row.get(2)? })
            })
            .map_err(|error| self.sql(error))?;
        rows.collect::<Result<_, _>>().map_err(|error| self.sql(error))
    }

    /// Positions the reader has answered, ascending.
    pub fn answered_positions(&self, reader_id: &str) -> StudyResult<Vec<u32>> {
        let mut statement = self
            .connection
            .prepare("SELECT DISTINCT position FROM answers WHERE reader_id = ?1 ORDER BY position")
            .map_err(|error| self.sql(error))?;
        let rows = statement.query_map(params![reader_id], |row| row.get(0)).map_err(|error| self.sql(error))?;
        rows.collect::<Result<_, _>>().map_err(|error| self.sql(error))
    }

    /// The display pixels of a case.
    pub fn display_image(&self, case_id: &str) -> StudyResult<DisplayImage> {
        let bytes: Vec<u8> = self
            .connection
            .query_row("SELECT display_png FROM cases WHERE case_id = ?1", params![case_id], |row| row.get(0))
            .map_err(|error| self.sql(error))?;
        DisplayImage::from_png_bytes(&bytes, case_id)
    }

    /// Stores an answer durably (one synced transaction) and returns its id. The revision is one more than the
    /// reader's latest answer at that position. The case's kept reading time, now in the answer, goes in the same
    /// transaction.
    pub fn insert_answer(
        &mut self,
        reader_id: &str,
        entry: &OrderEntry,
        answer: &Answer,
        rating: i64,
        time_ms: u64,
        time_spans_restart: bool,
    ) -> StudyResult<i64> {
        self.wait_commit_delay();
        let path = self.path.clone();
        let sql = |error| map_sqlite(&path, error);
        let transaction = self.connection.transaction().map_err(sql)?;
        let revision: i64 = transaction
            .query_row(
                "SELECT COALESCE(MAX(revision), 0) + 1 FROM answers WHERE reader_id = ?1 AND position = ?2",
                params![reader_id, entry.position],
                |row| row.get(0),
            )
            .map_err(sql)?;
        transaction
            .execute(
                "INSERT INTO answers (reader_id, position, revision, case_id, call, confidence, rating, free_text,
                                      giveaway_x, giveaway_y, time_ms, answered_unix_ms, time_spans_restart)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    reader_id,
                    entry.position,
                    revision,
                    entry.case_id,
                    answer.call.as_str(),
                    answer.confidence,
                    rating,
                    answer.free_text,
                    answer.giveaway.map(|point| point.x),
                    answer.giveaway.map(|point| point.y),
                    i64::try_from(time_ms).unwrap_or(i64::MAX),
                    now_unix_ms(),
                    time_spans_restart,
                ],
            )
            .map_err(sql)?;
        let answer_id = transaction.last_insert_rowid();
        transaction
            .execute(
                "DELETE FROM case_clocks WHERE reader_id = ?1 AND position = ?2",
                params![reader_id, entry.position],
            )
            .map_err(sql)?;
        transaction.commit().map_err(sql)?;
        Ok(answer_id)
    }

    /// Every stored answer, every revision, in storage order.
    pub fn answers(&self) -> StudyResult<Vec<AnswerRecord>> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT answer_id, reader_id, case_id, position, revision, call, confidence, rating, free_text,
                        giveaway_x, giveaway_y, time_ms, answered_unix_ms, time_spans_restart
                 FROM answers ORDER BY answer_id",
            )
            .map_err(|error| self.sql(error))?;
        let rows = statement
            .query_map([], |row| {
                let call: String = row.get(5)?;
                let giveaway_x: Option<f64> = row.get(9)?;
                let giveaway_y: Option<f64> = row.get(10)?;
                let time_ms: i64 = row.get(11)?;
                Ok(AnswerRecord {
                    answer_id: row.get(0)?,
                    reader_id: row.get(1)?,
                    case_id: row.get(2)?,
                    position: row.get(3)?,
                    revision: row.get(4)?,
                    answer: Answer {
                        call: if call == "artificial" { Call::Artificial } else { Call::Real },
                        confidence: row.get(6)?,
                        free_text: row.get(8)?,
                        giveaway: giveaway_x.zip(giveaway_y).map(|(x, y)| GiveawayPoint { x, y }),
                    },
                    rating: row.get(7)?,
                    time_ms: u64::try_from(time_ms).unwrap_or(0),
                    time_spans_restart: row.get(13)?,
                    answered_unix_ms: row.get(12)?,
                })
            })
            .map_err(|error| self.sql(error))?;
        rows.collect::<Result<_, _>>().map_err(|error| self.sql(error))
    }

    /// The latest answer of a reader at a position, if any.
    pub fn latest_answer(&self, reader_id: &str, position: u32) -> StudyResult<Option<Answer>> {
        self.connection
            .query_row(
                "SELECT call, confidence, free_text, giveaway_x, giveaway_y FROM answers
                 WHERE reader_id = ?1 AND position = ?2 ORDER BY revision DESC LIMIT 1",
                params![reader_id, position],
                |row| {
                    let call: String = row.get(0)?;
                    let giveaway_x: Option<f64> = row.get(3)?;
                    let giveaway_y: Option<f64> = row.get(4)?;
                    Ok(Answer {
                        call: if call == "artificial" { Call::Artificial } else { Call::Real },
                        confidence: row.get(1)?,
                        free_text: row.get(2)?,
                        giveaway: giveaway_x.zip(giveaway_y).map(|(x, y)| GiveawayPoint { x, y }),
                    })
                },
            )
            .optional()
            .map_err(|error| self.sql(error))
    }

    /// Checkpoints the reading time of a case (one synced transaction), replacing the last checkpoint of that
    /// reader and case.
    pub fn save_case_clock(&mut self, reader_id: &str, clock: &StoredCaseClock) -> StudyResult<()> {
        self.wait_commit_delay();
        self.connection
            .execute(
                "INSERT INTO case_clocks (reader_id, position, active_ms, saved_unix_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (reader_id, position) DO UPDATE
                 SET active_ms = excluded.active_ms, saved_unix_ms = excluded.saved_unix_ms",
                params![reader_id, clock.position, i64::try_from(clock.active_ms).unwrap_or(i64::MAX), now_unix_ms()],
            )
            .map_err(|error| self.sql(error))?;
        Ok(())
    }

    /// The reading time kept for the reader's case at `position`, if any is not yet in an answer.
    pub fn case_clock(&self, reader_id: &str, position: u32) -> StudyResult<Option<StoredCaseClock>> {
        Ok(self.case_clocks(reader_id)?.into_iter().find(|clock| clock.position == position))
    }

    /// Every reading time kept for the reader's cases and not yet in an answer, by position.
    pub fn case_clocks(&self, reader_id: &str) -> StudyResult<Vec<StoredCaseClock>> {
        let mut statement = self
            .connection
            .prepare("SELECT position, active_ms FROM case_clocks WHERE reader_id = ?1 ORDER BY position")
            .map_err(|error| self.sql(error))?;
        let rows = statement
            .query_map(params![reader_id], |row| {
                let active_ms: i64 = row.get(1)?;
                Ok(StoredCaseClock { position: row.get(0)?, active_ms: u64::try_from(active_ms).unwrap_or(0) })
            })
            .map_err(|error| self.sql(error))?;
        rows.collect::<Result<_, _>>().map_err(|error| self.sql(error))
    }

    /// The reading time of the reader's latest answer at `position` and whether it spans a restart, if answered.
    pub fn latest_answer_time(&self, reader_id: &str, position: u32) -> StudyResult<Option<(u64, bool)>> {
        self.connection
            .query_row(
                "SELECT time_ms, time_spans_restart FROM answers WHERE reader_id = ?1 AND position = ?2
                 ORDER BY revision DESC LIMIT 1",
                params![reader_id, position],
                |row| Ok((u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0), row.get(1)?)),
            )
            .optional()
            .map_err(|error| self.sql(error))
    }

    /// Logs a session event ("open", "pause", "resume") with the current time.
    pub fn log_event(&mut self, reader_id: Option<&str>, kind: &str) -> StudyResult<()> {
        self.wait_commit_delay();
        self.connection
            .execute(
                "INSERT INTO events (reader_id, kind, at_unix_ms) VALUES (?1, ?2, ?3)",
                params![reader_id, kind, now_unix_ms()],
            )
            .map_err(|error| self.sql(error))?;
        Ok(())
    }

    /// Runs `PRAGMA integrity_check`; `Ok("ok")` for a sound file.
    pub fn integrity_check(&self) -> StudyResult<String> {
        let mut statement = self.connection.prepare("PRAGMA integrity_check").map_err(|error| self.sql(error))?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0)).map_err(|error| self.sql(error))?;
        let lines: Vec<String> = rows.collect::<Result<_, _>>().map_err(|error| self.sql(error))?;
        Ok(lines.join("\n"))
    }

    /// Caps the file's growth at `pages` pages for this connection (`PRAGMA max_page_count`): writes beyond it
    /// fail with SQLITE_FULL, exactly like a full disk. Used to test and to guard against runaway growth.
    pub fn limit_size_pages(&self, pages: u64) -> StudyResult<u64> {
        let pages = i64::try_from(pages).unwrap_or(i64::MAX);
        let applied: i64 = self
            .connection
            .pragma_update_and_check(None, "max_page_count", pages, |row| row.get(0))
            .map_err(|error| self.sql(error))?;
        Ok(u64::try_from(applied).unwrap_or(0))
    }

    /// Current size of the database in pages.
    pub fn page_count(&self) -> StudyResult<u64> {
        let pages: i64 = self
            .connection
            .pragma_query_value(None, "page_count", |row| row.get(0))
            .map_err(|error| self.sql(error))?;
        Ok(u64::try_from(pages).unwrap_or(0))
    }

    /// The connection's durability settings as SQLite reports them (for checks and the study log).
    pub fn journal_settings(&self) -> StudyResult<JournalSettings> {
        let text = |name: &str| -> StudyResult<String> {
            self.connection.pragma_query_value(None, name, |row| row.get(0)).map_err(|error| self.sql(error))
        };
        let synchronous: i64 = self
            .connection
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .map_err(|error| self.sql(error))?;
        Ok(JournalSettings {
            journal_mode: text("journal_mode")?.to_ascii_lowercase(),
            synchronous_full: synchronous >= 2,
            locking_mode: text("locking_mode")?.to_ascii_lowercase(),
        })
    }

    /// Whether a reader is part of the study.
    pub fn has_reader(&self, reader_id: &str) -> StudyResult<bool> {
        self.connection
            .query_row("SELECT 1 FROM readers WHERE reader_id = ?1", params![reader_id], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
            .map_err(|error| self.sql(error))
    }
}
