//! Reader copies: the study without its answer key, for a reading station a reader can reach.
//!
//! A study file holds the truth of each case (provenance, source file or generator seed, labels) beside its image,
//! so a reader who opens the file with any SQLite tool can read the answer key. A reader copy keeps the design, the
//! images, the readers' orders and the answers so far, and withholds the truth, source and labels of every main
//! case (practice cases keep their truth: their feedback shows it anyway). Secure delete and a VACUUM leave no old
//! value in the file's free pages. Answers given on the copy go back to the master with [`merge_reader_copy`],
//! which checks that the copy belongs to the master (same design, case images and orders) and that no answer
//! contradicts one the master already holds.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, params};

use super::error::{StudyError, StudyResult, map_sqlite};
use super::store::{StudyStore, WITHHELD, now_unix_ms};

/// Metadata key that marks a reader copy; its value is when the copy was made (ms since the Unix epoch).
pub const READER_COPY_KEY: &str = "reader_copy_created_unix_ms";

/// Metadata a reader copy keeps: nothing that names the sources.
const KEPT_METADATA: [&str; 2] = ["created_unix_ms", "tool"];

/// What [`StudyStore::write_reader_copy`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReaderCopySummary {
    /// Main cases whose truth, source and labels were withheld.
    pub main_cases_withheld: usize,
    /// Answers already given, carried over so that readers resume where they were.
    pub answers_carried: usize,
}

/// What [`merge_reader_copy`] did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MergeSummary {
    /// Answers of the copy the master did not hold.
    pub answers_added: usize,
    /// Answers the master already held, identical (from an earlier merge, or given before the copy was made).
    pub answers_already_present: usize,
    /// Reading events (start, pause, ...) added.
    pub events_added: usize,
}

impl StudyStore {
    /// Whether this file is a reader copy (its main cases' truth withheld).
    pub fn is_reader_copy(&self) -> StudyResult<bool> {
        Ok(self.metadata()?.iter().any(|(key, _)| key == READER_COPY_KEY))
    }

    /// Writes a reader copy of this study to `out`, a new file (an existing one is never replaced). The copy is
    /// built beside `out` under a temporary name and renamed into place once complete and synced.
    pub fn write_reader_copy(&self, out: &Path) -> StudyResult<ReaderCopySummary> {
        if out.exists() {
            return Err(StudyError::AlreadyExists { path: out.to_path_buf() });
        }
        let folder = match out.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StudyError::Io { path, source }
        };
        // VACUUM INTO writes into an empty file; the temporary one is removed if anything fails.
        let partial = tempfile::Builder::new().prefix(".reader-copy-").suffix(".partial").tempfile_in(&folder);
        let partial = partial.map_err(io(&folder))?;
        let partial_text = partial.path().to_str().ok_or_else(|| StudyError::Io {
            path: partial.path().to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path is not valid UTF-8"),
        })?;
        self.connection.execute("VACUUM INTO ?1", params![partial_text]).map_err(|e| map_sqlite(out, e))?;
        let summary = withhold_truth(partial.path()).map_err(|e| map_sqlite(out, e))?;
        partial.as_file().sync_all().map_err(io(out))?;
        partial.persist_noclobber(out).map_err(|e| StudyError::Io { path: out.to_path_buf(), source: e.error })?;
        Ok(summary)
    }
}

/// Replaces the truth of the main cases in the fresh copy at `path`, drops the metadata that names sources, marks
/// the copy, and rewrites the file so that no replaced value survives in a free page.
fn withhold_truth(path: &Path) -> rusqlite::Result<ReaderCopySummary> {
    allow_withheld_provenance(path)?;
    let mut connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    connection.pragma_update(None, "secure_delete", true)?;
    let transaction = connection.transaction()?;
    let main_cases_withheld = transaction.execute(
        "UPDATE cases SET provenance = ?1, source = ?1, labels_json = '{}' WHERE practice = 0",
        params![WITHHELD],
    )?;
    // Practice cases keep their truth for the feedback, not where they came from.
    transaction.execute("UPDATE cases SET source = ?1, labels_json = '{}' WHERE practice = 1", params![WITHHELD])?;
    transaction
        .execute("DELETE FROM metadata WHERE key NOT IN (?1, ?2)", params![KEPT_METADATA[0], KEPT_METADATA[1]])?;
    transaction.execute(
        "INSERT INTO metadata (key, value) VALUES (?1, ?2)",
        params![READER_COPY_KEY, now_unix_ms().to_string()],
    )?;
    let answers_carried: i64 = transaction.query_row("SELECT count(*) FROM answers", [], |row| row.get(0))?;
    transaction.commit()?;
    connection.execute_batch("VACUUM")?;
    Ok(ReaderCopySummary { main_cases_withheld, answers_carried: usize::try_from(answers_carried).unwrap_or(0) })
}

/// The master's `cases` table allows only "real" and "artificial"; the copy's also allows "withheld". A CHECK
/// constraint is changed in place as SQLite's documentation describes for ALTER TABLE changes it cannot make
/// (writable schema, then a new schema version), so that `PRAGMA integrity_check` still passes on the copy.
fn allow_withheld_provenance(path: &Path) -> rusqlite::Result<()> {
    const MASTER_CHECK: &str = "CHECK (provenance IN ('real', 'artificial'))";
    const COPY_CHECK: &str = "CHECK (provenance IN ('real', 'artificial', 'withheld'))";
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let schema_version: i64 = connection.pragma_query_value(None, "schema_version", |row| row.get(0))?;
    connection.pragma_update(None, "writable_schema", true)?;
    let changed = connection.execute(
        "UPDATE sqlite_schema SET sql = replace(sql, ?1, ?2) WHERE type = 'table' AND name = 'cases' AND instr(sql, ?1) > 0",
        params![MASTER_CHECK, COPY_CHECK],
    )?;
    connection.pragma_update(None, "schema_version", schema_version + 1)?;
    connection.pragma_update(None, "writable_schema", false)?;
    if changed != 1 {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the cases table of the copy does not have the constraint {MASTER_CHECK}"
        )));
    }
    Ok(())
}

/// Adds the answers and reading events of the reader copy at `copy_path` to `master` in one transaction. Refused,
/// with nothing written, when the copy is not a reader copy of this study or one of its answers differs from the
/// master's answer for the same reader, position and revision.
pub fn merge_reader_copy(master: &mut StudyStore, copy_path: &Path) -> StudyResult<MergeSummary> {
    let refused = |reason: &str| StudyError::MergeRefused { path: copy_path.to_path_buf(), reason: reason.to_owned() };
    if master.is_reader_copy()? {
        return Err(StudyError::MergeRefused {
            path: copy_path.to_path_buf(),
            reason: format!(
                "the study given, {}, is itself a reader copy: give the master study first, then the copy",
                master.path().display()
            ),
        });
    }
    // Opening it checks that it is a study of a version this build reads, and that no reading station holds it.
    let is_copy = StudyStore::open(copy_path)?.is_reader_copy()?;
    if !is_copy {
        return Err(refused("it is a study, not a reader copy (thorax study reader-copy makes one)"));
    }
    let copy_text = copy_path.to_str().ok_or_else(|| refused("its path is not valid UTF-8"))?;
    let sql = |error| map_sqlite(copy_path, error);
    master.connection.execute("ATTACH DATABASE ?1 AS copy", params![copy_text]).map_err(sql)?;
    let result = merge_attached(&mut master.connection, copy_path);
    let detached = master.connection.execute_batch("DETACH DATABASE copy").map_err(sql);
    let summary = result?;
    detached?;
    Ok(summary)
}

/// The merge proper, with the copy attached as `copy`.
fn merge_attached(connection: &mut Connection, copy_path: &Path) -> StudyResult<MergeSummary> {
    let refused = |reason: String| StudyError::MergeRefused { path: copy_path.to_path_buf(), reason };
    let sql = |error| map_sqlite(copy_path, error);
    let count = |connection: &Connection, query: &str| -> StudyResult<i64> {
        connection.query_row(query, [], |row| row.get(0)).map_err(sql)
    };
    let same_design = count(connection, "SELECT (SELECT json FROM main.design) = (SELECT json FROM copy.design)")?;
    if same_design != 1 {
        return Err(refused("its design differs from the master's: it is a copy of another study".to_owned()));
    }
    let cases = count(connection, "SELECT count(*) FROM main.cases")?;
    let copy_cases = count(connection, "SELECT count(*) FROM copy.cases")?;
    let same_cases = count(
        connection,
        "SELECT count(*) FROM main.cases m JOIN copy.cases c
         ON m.case_id = c.case_id AND m.practice = c.practice AND m.display_png = c.display_png",
    )?;
    if cases != copy_cases || same_cases != cases {
        return Err(refused(format!(
            "{} of the master's {cases} case images are in it unchanged (it holds {copy_cases})",
            same_cases
        )));
    }
    let orders = count(connection, "SELECT count(*) FROM main.reader_orders")?;
    let same_orders = count(
        connection,
        "SELECT count(*) FROM main.reader_orders m JOIN copy.reader_orders c
         ON m.reader_id = c.reader_id AND m.position = c.position AND m.case_id = c.case_id",
    )?;
    if same_orders != orders || count(connection, "SELECT count(*) FROM copy.reader_orders")? != orders {
        return Err(refused("its readers' orders differ from the master's".to_owned()));
    }
    let transaction = connection.transaction().map_err(sql)?;
    let conflict: Option<(String, i64, i64)> = transaction
        .query_row(
            "SELECT c.reader_id, c.position, c.revision FROM copy.answers c JOIN main.answers m
               ON m.reader_id = c.reader_id AND m.position = c.position AND m.revision = c.revision
             WHERE NOT (m.case_id IS c.case_id AND m.call IS c.call AND m.confidence IS c.confidence
                        AND m.rating IS c.rating AND m.free_text IS c.free_text AND m.giveaway_x IS c.giveaway_x
                        AND m.giveaway_y IS c.giveaway_y AND m.time_ms IS c.time_ms
                        AND m.answered_unix_ms IS c.answered_unix_ms)
             ORDER BY c.answer_id LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .map(Some)
        .or_else(|error| match error {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            other => Err(other),
        })
        .map_err(sql)?;
    if let Some((reader, position, revision)) = conflict {
        return Err(refused(format!(
            "reader {reader:?} answered case {} (revision {revision}) differently in the master: was it read on \
             both? Nothing was merged",
            position + 1
        )));
    }
    let answers_already_present = count(
        &transaction,
        "SELECT count(*) FROM copy.answers c JOIN main.answers m
         ON m.reader_id = c.reader_id AND m.position = c.position AND m.revision = c.revision",
    )?;
    let answers_added = transaction
        .execute(
            "INSERT INTO main.answers (reader_id, position, revision, case_id, call, confidence, rating, free_text,
                                       giveaway_x, giveaway_y, time_ms, answered_unix_ms)
             SELECT reader_id, position, revision, case_id, call, confidence, rating, free_text, giveaway_x,
                    giveaway_y, time_ms, answered_unix_ms
             FROM copy.answers c
             WHERE NOT EXISTS (SELECT 1 FROM main.answers m
                               WHERE m.reader_id = c.reader_id AND m.position = c.position
                                 AND m.revision = c.revision)
             ORDER BY c.answer_id",
            [],
        )
        .map_err(sql)?;
    let events_added = transaction
        .execute(
            "INSERT INTO main.events (reader_id, kind, at_unix_ms)
             SELECT reader_id, kind, at_unix_ms FROM copy.events c
             WHERE NOT EXISTS (SELECT 1 FROM main.events m
                               WHERE m.reader_id IS c.reader_id AND m.kind = c.kind AND m.at_unix_ms = c.at_unix_ms)
             ORDER BY c.event_id",
            [],
        )
        .map_err(sql)?;
    transaction
        .execute(
            "INSERT INTO main.events (reader_id, kind, at_unix_ms) VALUES (NULL, 'merged reader copy', ?1)",
            params![now_unix_ms()],
        )
        .map_err(sql)?;
    transaction.commit().map_err(sql)?;
    Ok(MergeSummary {
        answers_added,
        answers_already_present: usize::try_from(answers_already_present).unwrap_or(0),
        events_added,
    })
}
