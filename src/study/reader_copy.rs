//! Reader copies: the study without its answer key, for a reading station a reader can reach.
//!
//! A study file holds the truth of each case (provenance, source file or generator seed, labels) beside its image,
//! so a reader who opens the file with any SQLite tool can read the answer key. A reader copy keeps the design, the
//! images, the readers' orders, the answers so far and the reading time kept for cases not yet answered (a reader,
//! a position in their order and a time: nothing about the case), and withholds the truth, source and labels of every main
//! case (practice cases keep their truth: their feedback shows it anyway). The study's seed and the readers' seeds
//! are withheld too: with the seed, the workbench would rebuild the same study and so the answer key. Secure delete
//! and a VACUUM leave no old value in the file's free pages. Answers given on the copy go back to the master with [`merge_reader_copy`],
//! which checks that the copy belongs to the master (same design, case images and orders) and that no answer
//! contradicts one the master already holds. It also brings back the reading time the copy keeps for a case, so that
//! a reader who goes on at the master resumes that case where they were: for each reader and case the newest of the
//! two files' kept times and answers wins. A case read on both files since the copy was made thus keeps the time
//! of the later reading only (the two cannot be added up without double-counting the time the copy started with).

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::answer::{Answer, GiveawayPoint};
use super::design::{Call, StudyDesign};
use super::error::{StudyError, StudyResult, map_sqlite};
use super::snapshot::open_snapshot;
use super::store::{SCHEMA_UPGRADE_EVENT, StudyStore, WITHHELD, now_unix_ms};

/// Metadata key that marks a reader copy; its value is when the copy was made (ms since the Unix epoch).
pub const READER_COPY_KEY: &str = "reader_copy_created_unix_ms";

/// The study and reader seeds of a reader copy.
const WITHHELD_SEED: u64 = 0;

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
    /// Reading times of cases not yet answered (or revisited since their answer) taken from the copy because they
    /// are newer than the master's kept time and answers for the same reader and case.
    pub clocks_carried: usize,
}

impl StudyStore {
    /// Whether this file is a reader copy (its main cases' truth withheld).
    pub fn is_reader_copy(&self) -> StudyResult<bool> {
        Ok(self.metadata()?.iter().any(|(key, _)| key == READER_COPY_KEY))
    }

    /// Writes a reader copy of this study to `out`, a new file (an existing one is never replaced). The copy is
    /// built beside `out` under a temporary name and renamed into place once complete and synced.
    pub fn write_reader_copy(&self, out: &Path) -> StudyResult<ReaderCopySummary> {
        if self.is_reader_copy()? {
            return Err(StudyError::AlreadyReaderCopy { path: self.path().to_path_buf() });
        }
        if out.exists() {
            return Err(StudyError::AlreadyExists { path: out.to_path_buf() });
        }
        let folder = match out.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        if !folder.is_dir() {
            return Err(StudyError::Io {
                path: out.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "its folder does not exist"),
            });
        }
        let mut design = self.design()?;
        design.seed = WITHHELD_SEED;
        let design_json = serde_json::to_string(&design)
            .map_err(|error| StudyError::InvalidDesign(format!("cannot serialise the design: {error}")))?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StudyError::Io { path, source }
        };
        // The copy is made in the system's temporary folder: the answer key it holds until withheld must never
        // touch the medium the copy goes to (a stick's freed blocks can be read back). VACUUM INTO writes into an
        // empty file; temporary files are removed if anything fails.
        let scratch = tempfile::Builder::new().prefix("thorax-reader-copy-").tempdir().map_err(io(&folder))?;
        let built = scratch.path().join("copy.study");
        let built_text = built.to_str().ok_or_else(|| StudyError::Io {
            path: built.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path is not valid UTF-8"),
        })?;
        self.connection.execute("VACUUM INTO ?1", params![built_text]).map_err(|e| map_sqlite(out, e))?;
        let summary = withhold_truth(&built, &design_json).map_err(|e| map_sqlite(out, e))?;
        let mut partial = tempfile::Builder::new()
            .prefix(".reader-copy-")
            .suffix(".partial")
            .tempfile_in(&folder)
            .map_err(io(&folder))?;
        let mut source = std::fs::File::open(&built).map_err(io(&built))?;
        std::io::copy(&mut source, partial.as_file_mut()).map_err(io(out))?;
        partial.as_file().sync_all().map_err(io(out))?;
        // Readable like the master (a temporary file is private to its owner), for a station's own account. A
        // file system without Unix permissions (a FAT stick) keeps its own, which is no reason to fail.
        if let Ok(metadata) = std::fs::metadata(self.path())
            && let Err(error) = std::fs::set_permissions(partial.path(), metadata.permissions())
        {
            log::warn!("the reader copy keeps the permissions of a new file: {error}");
        }
        // No-clobber rename, with the fallback for file systems without one nor hard links (FAT).
        crate::atomic_file::persist_new(partial, out)
            .map_err(|source| StudyError::Io { path: out.to_path_buf(), source })?;
        Ok(summary)
    }
}

/// Replaces the truth of the main cases in the fresh copy at `path`, drops the metadata that names sources, marks
/// the copy, and rewrites the file so that no replaced value survives in a free page.
fn withhold_truth(path: &Path, design_json: &str) -> rusqlite::Result<ReaderCopySummary> {
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
    transaction.execute("UPDATE design SET json = ?1 WHERE id = 1", params![design_json])?;
    transaction.execute("UPDATE readers SET seed = ?1", params![WITHHELD_SEED.to_string()])?;
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

/// Adds the answers, reading events and newer kept reading times of the reader copy at `copy_path` to `master` in
/// one transaction. Refused, with nothing written, when the copy is not a reader copy of this study or one of its
/// answers differs from the master's answer for the same reader, position and revision.
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
    // The copy is read from a snapshot, which checks that it is a study of a version this build reads. So a copy on
    // read-only media merges, and so does one a station still holds (its answers so far; a later merge adds the
    // rest), with the answers its write-ahead log holds.
    let snapshot = open_snapshot(copy_path)?;
    if !snapshot.store().is_reader_copy()? {
        return Err(refused("it is a study, not a reader copy (thorax study reader-copy makes one)"));
    }
    // Its connection holds the snapshot under an exclusive lock, as every open study: close it before attaching.
    let (snapshot_path, _snapshot_folder) = snapshot.close();
    let copy_text = snapshot_path.to_str().ok_or_else(|| refused("its folder's path is not valid UTF-8"))?;
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
    // The copy's design is the master's with the seed withheld.
    let design_of = |schema: &str| -> StudyResult<StudyDesign> {
        let json: String = connection
            .query_row(&format!("SELECT json FROM {schema}.design WHERE id = 1"), [], |row| row.get(0))
            .map_err(sql)?;
        serde_json::from_str(&json).map_err(|error| refused(format!("its design cannot be read ({error})")))
    };
    let design = design_of("main")?;
    let mut withheld = design.clone();
    withheld.seed = WITHHELD_SEED;
    if design_of("copy")? != withheld {
        return Err(refused("its design differs from the master's: it is a copy of another study".to_owned()));
    }
    // (rows of the master, rows of the copy, rows of the master found unchanged in the copy)
    let compare = |table: &str, same: &str| -> StudyResult<(i64, i64, i64)> {
        Ok((
            count(connection, &format!("SELECT count(*) FROM main.{table}"))?,
            count(connection, &format!("SELECT count(*) FROM copy.{table}"))?,
            count(connection, &format!("SELECT count(*) FROM main.{table} m JOIN copy.{table} c ON {same}"))?,
        ))
    };
    let (cases, copy_cases, same_cases) =
        compare("cases", "m.case_id = c.case_id AND m.practice = c.practice AND m.display_png = c.display_png")?;
    if cases != copy_cases || same_cases != cases {
        return Err(refused(format!(
            "{same_cases} of the master's {cases} case images are in it unchanged (it holds {copy_cases})"
        )));
    }
    let (orders, copy_orders, same_orders) =
        compare("reader_orders", "m.reader_id = c.reader_id AND m.position = c.position AND m.case_id = c.case_id")?;
    if orders != copy_orders || same_orders != orders {
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
                        AND m.answered_unix_ms IS c.answered_unix_ms
                        AND m.time_spans_restart IS c.time_spans_restart)
             ORDER BY c.answer_id LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
        .map_err(sql)?;
    if let Some((reader, position, revision)) = conflict {
        return Err(refused(format!(
            "reader {reader:?} answered the case at position {} of their order (revision {revision}) differently \
             in the master: was it read on both? Nothing was merged",
            position + 1
        )));
    }
    check_new_answers(&transaction, &design).map_err(|reason| refused(format!("{reason}; nothing was merged")))?;
    let answers_already_present = count(
        &transaction,
        "SELECT count(*) FROM copy.answers c JOIN main.answers m
         ON m.reader_id = c.reader_id AND m.position = c.position AND m.revision = c.revision",
    )?;
    let answers_added = transaction
        .execute(
            "INSERT INTO main.answers (reader_id, position, revision, case_id, call, confidence, rating, free_text,
                                       giveaway_x, giveaway_y, time_ms, answered_unix_ms, time_spans_restart)
             SELECT reader_id, position, revision, case_id, call, confidence, rating, free_text, giveaway_x,
                    giveaway_y, time_ms, answered_unix_ms, time_spans_restart
             FROM copy.answers c
             WHERE NOT EXISTS (SELECT 1 FROM main.answers m
                               WHERE m.reader_id = c.reader_id AND m.position = c.position
                                 AND m.revision = c.revision)
             ORDER BY c.answer_id",
            [],
        )
        .map_err(sql)?;
    // The copy's schema upgrades (its snapshot is upgraded anew at every merge) happened to it, not to the master.
    let events_added = transaction
        .execute(
            "INSERT INTO main.events (reader_id, kind, at_unix_ms)
             SELECT reader_id, kind, at_unix_ms FROM copy.events c
             WHERE NOT EXISTS (SELECT 1 FROM main.events m
                               WHERE m.reader_id IS c.reader_id AND m.kind = c.kind AND m.at_unix_ms = c.at_unix_ms)
               AND substr(c.kind, 1, length(?1)) IS NOT ?1
             ORDER BY c.event_id",
            params![SCHEMA_UPGRADE_EVENT],
        )
        .map_err(sql)?;
    check_new_clocks(&transaction).map_err(|reason| refused(format!("{reason}; nothing was merged")))?;
    // A kept time is the newest word on its case unless the other file holds a newer kept time or a newer answer
    // (which took the time into it). Equal times keep the master's.
    let clocks_carried = transaction
        .execute(
            &format!(
                "INSERT INTO main.case_clocks (reader_id, position, active_ms, saved_unix_ms)
                 SELECT reader_id, position, active_ms, saved_unix_ms FROM copy.case_clocks c WHERE {NEWER_COPY_CLOCK}
                 ON CONFLICT (reader_id, position) DO UPDATE
                 SET active_ms = excluded.active_ms, saved_unix_ms = excluded.saved_unix_ms"
            ),
            [],
        )
        .map_err(sql)?;
    transaction
        .execute(
            "DELETE FROM main.case_clocks
             WHERE EXISTS (SELECT 1 FROM main.answers a
                           WHERE a.reader_id = case_clocks.reader_id AND a.position = case_clocks.position
                             AND a.answered_unix_ms > case_clocks.saved_unix_ms)",
            [],
        )
        .map_err(sql)?;
    if answers_added > 0 || clocks_carried > 0 {
        transaction
            .execute(
                "INSERT INTO main.events (reader_id, kind, at_unix_ms) VALUES (NULL, 'merged reader copy', ?1)",
                params![now_unix_ms()],
            )
            .map_err(sql)?;
    }
    transaction.commit().map_err(sql)?;
    Ok(MergeSummary {
        answers_added,
        answers_already_present: usize::try_from(answers_already_present).unwrap_or(0),
        events_added,
        clocks_carried,
    })
}

/// The copy's kept reading times (aliased `c`) that are newer than the master's kept time for the same reader and
/// case and than every answer the master holds for it (the copy's answers already merged).
const NEWER_COPY_CLOCK: &str = "NOT EXISTS (SELECT 1 FROM main.case_clocks m
                   WHERE m.reader_id = c.reader_id AND m.position = c.position
                     AND m.saved_unix_ms >= c.saved_unix_ms)
     AND NOT EXISTS (SELECT 1 FROM main.answers a
                     WHERE a.reader_id = c.reader_id AND a.position = c.position
                       AND a.answered_unix_ms > c.saved_unix_ms)";

/// Checks the kept reading times the merge would take from the copy, which a reader could have edited: each names a
/// position of the reader's order and holds a time that is a whole number of milliseconds, not negative.
fn check_new_clocks(connection: &Connection) -> Result<(), String> {
    let bad: Option<(String, String)> = connection
        .query_row(
            &format!(
                "SELECT CAST(c.reader_id AS TEXT), quote(c.position) FROM copy.case_clocks c
                 WHERE {NEWER_COPY_CLOCK}
                   AND (typeof(c.position) IS NOT 'integer' OR typeof(c.active_ms) IS NOT 'integer'
                        OR typeof(c.saved_unix_ms) IS NOT 'integer' OR c.active_ms < 0
                        OR NOT EXISTS (SELECT 1 FROM main.reader_orders o
                                       WHERE o.reader_id = c.reader_id AND o.position = c.position))
                 LIMIT 1"
            ),
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    match bad {
        Some((reader, position)) => Err(format!(
            "the reading time it keeps for reader {reader:?} at stored position {position} is not a time of a case \
             in the study"
        )),
        None => Ok(()),
    }
}

/// Checks every answer of the copy that the master does not hold, as the reading session checked it when it was
/// given: the file a reader can reach could have been edited. The case must be the one at that position of the
/// reader's order, the answer valid for the study's questions, the rating the one its call and confidence give,
/// and a revision must follow the one before it. Returns the first failure, naming the row.
fn check_new_answers(connection: &Connection, design: &StudyDesign) -> Result<(), String> {
    let mut statement = connection
        .prepare(
            "SELECT c.reader_id, c.position, c.revision, c.case_id, c.call, c.confidence, c.rating, c.free_text,
                    c.giveaway_x, c.giveaway_y, c.time_ms, c.time_spans_restart
             FROM copy.answers c
             WHERE NOT EXISTS (SELECT 1 FROM main.answers m
                               WHERE m.reader_id = c.reader_id AND m.position = c.position
                                 AND m.revision = c.revision)
             ORDER BY c.answer_id",
        )
        .map_err(|e| e.to_string())?;
    let rows: Vec<NewAnswerRow> = statement
        .query_map([], |r| {
            Ok(NewAnswerRow {
                reader: r.get(0)?,
                position: r.get(1)?,
                revision: r.get(2)?,
                case_id: r.get(3)?,
                call: r.get(4)?,
                confidence: r.get(5)?,
                rating: r.get(6)?,
                free_text: r.get(7)?,
                giveaway: (r.get(8)?, r.get(9)?),
                time_ms: r.get(10)?,
                time_spans_restart: r.get(11)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    for new in rows {
        let row = format!(
            "reader {:?}'s answer at position {} of their order (revision {})",
            new.reader,
            new.position + 1,
            new.revision
        );
        let ordered: Option<String> = connection
            .query_row(
                "SELECT case_id FROM main.reader_orders WHERE reader_id = ?1 AND position = ?2",
                params![new.reader, new.position],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| e.to_string())?;
        if ordered.as_deref() != Some(new.case_id.as_str()) {
            let holds = ordered.unwrap_or_else(|| "no case".to_owned());
            return Err(format!("{row} names {}, but that position of the order holds {holds}", new.case_id));
        }
        let call = match new.call.as_str() {
            "real" => Call::Real,
            "artificial" => Call::Artificial,
            other => return Err(format!("{row} has the call {other:?}")),
        };
        let confidence =
            u32::try_from(new.confidence).map_err(|_| format!("{row} has the confidence {}", new.confidence))?;
        let giveaway = match new.giveaway {
            (Some(x), Some(y)) => Some(GiveawayPoint { x, y }),
            (None, None) => None,
            _ => return Err(format!("{row} has half a giveaway point")),
        };
        let answer = Answer { call, confidence, free_text: new.free_text, giveaway };
        answer.validate(design).map_err(|error| format!("{row}: {error}"))?;
        let expected = answer.rating(design);
        if new.rating != expected {
            return Err(format!("{row} has the rating {}, but its call and confidence give {expected}", new.rating));
        }
        if new.time_ms < 0 {
            return Err(format!("{row} has a negative reading time"));
        }
        if !matches!(new.time_spans_restart, 0 | 1) {
            return Err(format!("{row} has the restart flag {}, neither 0 nor 1", new.time_spans_restart));
        }
        let follows = new.revision == 1
            || (new.revision > 1
                && connection
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM main.answers
                                        WHERE reader_id = ?1 AND position = ?2 AND revision = ?3)
                             OR EXISTS (SELECT 1 FROM copy.answers
                                        WHERE reader_id = ?1 AND position = ?2 AND revision = ?3)",
                        params![new.reader, new.position, new.revision - 1],
                        |r| r.get::<_, bool>(0),
                    )
                    .map_err(|e| e.to_string())?);
        if !follows {
            return Err(format!("{row} follows no earlier revision"));
        }
    }
    Ok(())
}

/// An answer row of the copy, as stored.
struct NewAnswerRow {
    reader: String,
    position: i64,
    revision: i64,
    case_id: String,
    call: String,
    confidence: i64,
    rating: i64,
    free_text: Option<String>,
    giveaway: (Option<f64>, Option<f64>),
    time_ms: i64,
    time_spans_restart: i64,
}
