//! Reading time across a restart of the reading station: the time spent on the case on screen is checkpointed in
//! the study file, so a restart loses at most one checkpoint interval of it, never the whole case, and the answer
//! says its time spans a restart (stored, merged, exported and counted by the analysis). Study files of schema
//! version 1 and 2 are upgraded when opened, and the upgrade is logged once. Reading time is kept per case: going back
//! and returning adds up, a revised answer's time includes the first answer's, and a reader copy's kept time of an
//! unanswered case comes back with `study merge`. (A station killed mid-case: `study_durability`.)

use crate::study_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use thorax::study::analysis::{AnalysisOptions, analyze, restart_note};
use thorax::study::export::{read_answers_csv, readings_from_store};
use thorax::study::reader_copy::merge_reader_copy;
use thorax::study::session::reader_progress;
use thorax::study::store::{SCHEMA_VERSION, StoredCaseClock};
use thorax::study::{Answer, Call, DisplayBitDepth, ReadingSession, StudyError, StudyStore};

fn answer(call: Call, confidence: u32) -> Answer {
    Answer { call, confidence, free_text: None, giveaway: None }
}

/// A copy, in `dir`, of a study file written by the code of schema version 1.
fn schema_1_fixture(dir: &Path, name: &str) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/study/schema_v1").join(name);
    let path = dir.join(name);
    std::fs::copy(fixture, &path).unwrap();
    path
}

/// A copy, in `dir`, of a study file written by the code of schema version 2.
fn schema_2_fixture(dir: &Path, name: &str) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/study/schema_v2").join(name);
    let path = dir.join(name);
    std::fs::copy(fixture, &path).unwrap();
    path
}

/// The kinds of the study's logged events that start with `prefix`, read with SQLite alone.
fn events_like(path: &Path, prefix: &str) -> Vec<String> {
    let connection = rusqlite::Connection::open(path).unwrap();
    let mut statement = connection.prepare("SELECT kind FROM events ORDER BY event_id").unwrap();
    let kinds = statement.query_map([], |row| row.get::<_, String>(0)).unwrap().map(Result::unwrap);
    kinds.filter(|kind| kind.starts_with(prefix)).collect()
}

/// `user_version` of the study file.
fn schema_version(path: &Path) -> i64 {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap()
}

/// (reader, position, active_ms) of every kept reading time, read with SQLite alone.
fn clock_rows(path: &Path) -> Vec<(String, u32, u64)> {
    let connection = rusqlite::Connection::open(path).unwrap();
    let mut statement = connection
        .prepare("SELECT reader_id, position, active_ms FROM case_clocks ORDER BY reader_id, position")
        .unwrap();
    let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u64))).unwrap();
    rows.map(Result::unwrap).collect()
}

/// A study of `cases` cases whose readers may go back.
fn study_with_back(dir: &Path, readers: &[&str], cases: usize) -> PathBuf {
    let mut design = study_common::small_design(readers, 8, DisplayBitDepth::Eight);
    design.allow_back = true;
    study_common::make_tiny_study(dir, &design, cases, 0)
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Reads the case on screen for `read_ms` and pauses; the session then goes away without an answer.
fn read_and_pause_then_close(db: &Path, reader: &str, read_ms: u64) {
    let mut session = ReadingSession::open(db).unwrap();
    session.next_case(reader).unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(read_ms));
    session.pause(reader).unwrap();
}

#[test]
fn time_read_before_a_pause_survives_the_station_closing_without_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice"], 8, DisplayBitDepth::Eight);
    let db = study_common::make_tiny_study(dir.path(), &design, 3, 0);
    read_and_pause_then_close(&db, "alice", 400);
    std::thread::sleep(Duration::from_millis(300));
    let mut session = ReadingSession::open(&db).unwrap();
    let case = session.next_case("alice").unwrap().unwrap();
    assert_eq!(case.progress.case_number, 1, "the same case is shown again");
    std::thread::sleep(Duration::from_millis(50));
    session.submit("alice", case.token, &answer(Call::Real, 3)).unwrap();
    let stored = &session.store().answers().unwrap()[0];
    assert!(stored.time_ms >= 450, "{} ms: the 400 ms read before the restart are lost", stored.time_ms);
    assert!(stored.time_ms < 700, "{} ms: the 300 ms the station was closed count", stored.time_ms);
    assert!(stored.time_spans_restart);
    assert!(session.store().case_clocks("alice").unwrap().is_empty(), "the answer takes the checkpoint with it");
    // The next case starts at zero and is not flagged.
    let case = session.next_case("alice").unwrap().unwrap();
    session.submit("alice", case.token, &answer(Call::Real, 3)).unwrap();
    let next = &session.store().answers().unwrap()[1];
    assert!(next.time_ms < 300 && !next.time_spans_restart, "{next:?}");
}

#[test]
fn checkpoints_are_written_when_a_case_is_shown_then_at_most_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice", "bob"], 8, DisplayBitDepth::Eight);
    let db = study_common::make_tiny_study(dir.path(), &design, 3, 0);
    let mut session = ReadingSession::open(&db).unwrap();
    let case = session.next_case("alice").unwrap().unwrap();
    let position = session.store().reader_order("alice").unwrap()[0].position;
    assert_eq!(session.store().case_clocks("alice").unwrap(), [StoredCaseClock { position, active_ms: 0 }]);
    std::thread::sleep(Duration::from_millis(200));
    // The default interval has not passed since the case was shown: nothing is written.
    session.checkpoint_clock("alice").unwrap();
    assert_eq!(session.store().case_clock("alice", position).unwrap().unwrap().active_ms, 0);
    session.set_clock_checkpoint_interval(Duration::from_millis(100));
    session.checkpoint_clock("alice").unwrap();
    let checkpointed = session.store().case_clock("alice", position).unwrap().unwrap().active_ms;
    assert!(checkpointed >= 200, "{checkpointed} ms");
    // Each reader has their own clock; an unknown reader is refused.
    assert!(session.store().case_clocks("bob").unwrap().is_empty());
    assert!(session.checkpoint_clock("carol").is_err());
    // Dropped without an answer (the station closed): the reopened session resumes from the checkpoint.
    drop(session);
    let mut session = ReadingSession::open(&db).unwrap();
    let again = session.next_case("alice").unwrap().unwrap();
    assert_eq!(again.token, case.token);
    session.submit("alice", again.token, &answer(Call::Artificial, 5)).unwrap();
    let stored = &session.store().answers().unwrap()[0];
    assert!(stored.time_ms >= checkpointed && stored.time_spans_restart, "{stored:?}");
}

#[test]
fn the_restart_flag_is_exported_counted_by_the_analysis_and_merged_from_a_reader_copy() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice"], 8, DisplayBitDepth::Eight);
    let master = study_common::make_tiny_study(dir.path(), &design, 4, 0);
    let copy = dir.path().join("reader.study");
    StudyStore::open(&master).unwrap().write_reader_copy(&copy).unwrap();
    // On the station: the first case spans a restart, the other three do not.
    read_and_pause_then_close(&copy, "alice", 100);
    {
        let mut session = ReadingSession::open(&copy).unwrap();
        while let Some(case) = session.next_case("alice").unwrap() {
            session.submit("alice", case.token, &answer(Call::Real, 2)).unwrap();
        }
    }
    let mut store = StudyStore::open(&master).unwrap();
    assert_eq!(merge_reader_copy(&mut store, &copy).unwrap().answers_added, 4);
    let flags: Vec<bool> = store.answers().unwrap().iter().map(|a| a.time_spans_restart).collect();
    assert_eq!(flags, [true, false, false, false]);
    // Merging again finds the same answers, flag included.
    assert_eq!(merge_reader_copy(&mut store, &copy).unwrap().answers_already_present, 4);
    let readings = readings_from_store(&store).unwrap();
    let report = analyze(&readings, None, &AnalysisOptions { bootstrap_resamples: 10, ..Default::default() }).unwrap();
    let pooled = &report.modalities[0].pooled;
    assert_eq!(pooled.time_per_case.unwrap().cases_spanning_restart, 1);
    let note = restart_note(pooled).unwrap();
    assert!(note.starts_with("1 of 4 reading times span a restart"), "{note}");
    drop(store);

    let csv = dir.path().join("answers.csv");
    let export = Command::new(env!("CARGO_BIN_EXE_thorax"))
        .args(["study", "export", "--answers"])
        .arg(&csv)
        .arg(&master)
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let text = std::fs::read_to_string(&csv).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|name| *name == "time_spans_restart").expect("the flag is exported");
    let flags: Vec<&str> = text.lines().skip(1).map(|line| line.split(',').nth(column).unwrap()).collect();
    assert_eq!(flags, ["true", "false", "false", "false"]);
    let from_csv = read_answers_csv(&csv).unwrap().readings;
    assert_eq!(from_csv.iter().filter(|reading| reading.time_spans_restart).count(), 1);
    let analysis = Command::new(env!("CARGO_BIN_EXE_thorax")).args(["study", "analyze"]).arg(&master).output().unwrap();
    let printed = String::from_utf8_lossy(&analysis.stdout);
    assert!(printed.contains("1 of 4 reading times span a restart"), "{printed}");
}

#[test]
fn a_schema_1_study_and_its_reader_copy_open_upgraded_and_merge() {
    let dir = tempfile::tempdir().unwrap();
    let master = schema_1_fixture(dir.path(), "master.study");
    let copy = schema_1_fixture(dir.path(), "reader_copy.study");
    let answers_of = |path: &Path| -> Vec<(String, u32, u64)> {
        let connection = rusqlite::Connection::open(path).unwrap();
        let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
        assert_eq!(version, 1, "the fixture is a study of the first schema");
        let mut statement = connection.prepare("SELECT reader_id, position, time_ms FROM answers").unwrap();
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u64))).unwrap();
        rows.map(Result::unwrap).collect()
    };
    let before = answers_of(&master);
    assert_eq!(before.len(), 2);
    {
        let store = StudyStore::open(&master).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok");
        let after: Vec<(String, u32, u64)> =
            store.answers().unwrap().into_iter().map(|a| (a.reader_id, a.position, a.time_ms)).collect();
        assert_eq!(after, before);
        assert!(store.answers().unwrap().iter().all(|a| !a.time_spans_restart), "not known to span a restart");
    }
    assert_eq!(schema_version(&master), SCHEMA_VERSION, "upgraded in place");
    // The upgrade is logged once, not again when the study is opened again.
    drop(StudyStore::open(&master).unwrap());
    assert_eq!(events_like(&master, "schema upgraded"), [format!("schema upgraded from 1 to {SCHEMA_VERSION}")]);
    // The old copy merges (its snapshot is upgraded; the copy itself is not touched).
    let copy_bytes = std::fs::read(&copy).unwrap();
    let mut store = StudyStore::open(&master).unwrap();
    let merged = merge_reader_copy(&mut store, &copy).unwrap();
    assert_eq!((merged.answers_added, merged.answers_already_present), (2, 2));
    assert_eq!(std::fs::read(&copy).unwrap(), copy_bytes);
    drop(store);
    // Alice resumes at her third case, which the old code left without a checkpoint: not flagged.
    let mut session = ReadingSession::open(&master).unwrap();
    let case = session.next_case("alice").unwrap().unwrap();
    assert_eq!(case.progress.case_number, 3);
    session.submit("alice", case.token, &answer(Call::Real, 1)).unwrap();
    let answers = session.store().answers().unwrap();
    assert_eq!(answers.len(), 5);
    assert!(answers.iter().all(|a| !a.time_spans_restart));
}

#[test]
fn going_back_and_returning_adds_up_the_time_of_each_case() {
    let dir = tempfile::tempdir().unwrap();
    let db = study_with_back(dir.path(), &["alice"], 3);
    let mut session = ReadingSession::open(&db).unwrap();
    let first = session.next_case("alice").unwrap().unwrap();
    sleep_ms(100);
    session.submit("alice", first.token, &answer(Call::Real, 2)).unwrap();
    session.next_case("alice").unwrap().unwrap();
    sleep_ms(300);
    // Back to the first case, which the reader answers again, differently.
    let again = session.go_back("alice").unwrap().unwrap();
    assert_eq!((again.token, again.previous_answer), (first.token, Some(answer(Call::Real, 2))));
    sleep_ms(200);
    session.submit("alice", again.token, &answer(Call::Artificial, 4)).unwrap();
    // On to the second case, left unanswered: its clock goes on from the 300 ms read before going back.
    let second = session.next_case("alice").unwrap().unwrap();
    assert_eq!(second.progress.case_number, 2);
    sleep_ms(100);
    session.submit("alice", second.token, &answer(Call::Real, 3)).unwrap();
    let answers = session.store().answers().unwrap();
    let times: Vec<(u32, u32, u64)> = answers.iter().map(|a| (a.position, a.revision, a.time_ms)).collect();
    let (first_ms, revised_ms, second_ms) = (answers[0].time_ms, answers[1].time_ms, answers[2].time_ms);
    assert_eq!((answers[1].position, answers[1].revision), (0, 2), "{times:?}");
    assert!((100..300).contains(&first_ms), "the first answer keeps its own time: {times:?}");
    assert!(revised_ms >= first_ms + 200, "a revision's time includes the first answer's: {times:?}");
    assert!(revised_ms < first_ms + 300 + 150, "the second case's time is not the first's: {times:?}");
    assert!(second_ms >= 400, "the 300 ms read before going back are lost: {times:?}");
    assert!(second_ms < 400 + 150, "the revisit of the first case counts for the second: {times:?}");
    assert!(answers.iter().all(|a| !a.time_spans_restart), "one session: {answers:?}");
    // The analysis reads the latest revision: the whole time spent on the case.
    let readings = readings_from_store(session.store()).unwrap();
    let first_case = readings.iter().find(|r| r.case_id == answers[0].case_id).unwrap();
    assert_eq!(first_case.time_ms, Some(revised_ms));
    assert!(session.store().case_clocks("alice").unwrap().is_empty(), "every kept time is in an answer");
    // Back to the second case, now answered: a revision goes on from its answer's time, not from the time it had
    // when the reader left it unanswered.
    let second_again = session.go_back("alice").unwrap().unwrap();
    assert_eq!(second_again.progress.case_number, 2);
    session.submit("alice", second_again.token, &answer(Call::Real, 5)).unwrap();
    let revised_second = session.store().answers().unwrap()[3].time_ms;
    assert!(revised_second >= second_ms, "{revised_second} ms, below the first answer's {second_ms} ms");
}

#[test]
fn the_time_of_cases_left_by_going_back_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = study_with_back(dir.path(), &["alice"], 3);
    let first_ms = {
        let mut session = ReadingSession::open(&db).unwrap();
        let first = session.next_case("alice").unwrap().unwrap();
        sleep_ms(100);
        session.submit("alice", first.token, &answer(Call::Real, 2)).unwrap();
        session.next_case("alice").unwrap().unwrap();
        sleep_ms(300);
        session.go_back("alice").unwrap().unwrap();
        sleep_ms(200);
        // The station closes while the reader looks back at the first case.
        session.pause("alice").unwrap();
        session.store().answers().unwrap()[0].time_ms
    };
    let kept = StudyStore::open(&db).unwrap().case_clocks("alice").unwrap();
    assert_eq!(kept.len(), 2, "the unanswered second case and the revisited first: {kept:?}");
    assert!(kept[0].active_ms >= first_ms + 200 && kept[1].active_ms >= 300, "{kept:?}");
    let mut session = ReadingSession::open(&db).unwrap();
    assert!(reader_progress(session.store(), "alice").unwrap().started);
    let second = session.next_case("alice").unwrap().unwrap();
    assert_eq!(second.progress.case_number, 2, "the reading resumes at the first unanswered case");
    sleep_ms(100);
    session.submit("alice", second.token, &answer(Call::Real, 3)).unwrap();
    // Back to the first case, through the second: the first case's revisit before the restart counts too.
    assert_eq!(session.go_back("alice").unwrap().unwrap().progress.case_number, 2);
    let first = session.go_back("alice").unwrap().unwrap();
    assert_eq!(first.progress.case_number, 1);
    session.submit("alice", first.token, &answer(Call::Artificial, 1)).unwrap();
    let answers = session.store().answers().unwrap();
    let times: Vec<(u32, u32, u64, bool)> =
        answers.iter().map(|a| (a.position, a.revision, a.time_ms, a.time_spans_restart)).collect();
    assert_eq!(times.iter().map(|t| (t.0, t.1)).collect::<Vec<_>>(), [(0, 1), (1, 1), (0, 2)]);
    assert!(times[1].2 >= 400 && times[1].3, "the second case goes on from 300 ms, across a restart: {times:?}");
    assert!(times[2].2 >= first_ms + 200 && times[2].3, "the revisit of the first case is lost: {times:?}");
    assert!(!times[0].3, "{times:?}");
    // The second case, passed through, keeps that time beside its answer, which stays as it was.
    let kept = session.store().case_clocks("alice").unwrap();
    assert!(kept.len() == 1 && kept[0].position == 1 && kept[0].active_ms >= times[1].2, "{kept:?}");
}

#[test]
fn merge_carries_the_newer_kept_time_of_each_case_and_the_master_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice", "bob", "carol"], 8, DisplayBitDepth::Eight);
    let master = study_common::make_tiny_study(dir.path(), &design, 3, 0);
    // Before the copy: bob begins his first case on the master.
    read_and_pause_then_close(&master, "bob", 100);
    let copy = dir.path().join("reader.study");
    StudyStore::open(&master).unwrap().write_reader_copy(&copy).unwrap();
    sleep_ms(20);
    {
        let mut session = ReadingSession::open(&copy).unwrap();
        // Alice reads her first case on the copy and leaves it unanswered.
        session.next_case("alice").unwrap().unwrap();
        sleep_ms(300);
        session.pause("alice").unwrap();
        // Bob answers the case he began on the master, then begins his second.
        let case = session.next_case("bob").unwrap().unwrap();
        sleep_ms(50);
        session.submit("bob", case.token, &answer(Call::Real, 2)).unwrap();
        session.next_case("bob").unwrap().unwrap();
        sleep_ms(200);
        session.pause("bob").unwrap();
        // Carol reads her first case on the copy ...
        session.next_case("carol").unwrap().unwrap();
        sleep_ms(400);
        session.pause("carol").unwrap();
    }
    // ... and later on the master too: the newer reading wins.
    sleep_ms(20);
    read_and_pause_then_close(&master, "carol", 100);
    let copy_clocks = clock_rows(&copy);
    let mut store = StudyStore::open(&master).unwrap();
    let carol_on_master = store.case_clock("carol", 0).unwrap().unwrap().active_ms;
    let merged = merge_reader_copy(&mut store, &copy).unwrap();
    assert_eq!((merged.answers_added, merged.clocks_carried), (1, 2), "{merged:?}");
    drop(store);
    let kept = clock_rows(&master);
    let of_copy = |reader: &str, position: u32| {
        copy_clocks.iter().find(|(r, p, _)| r == reader && *p == position).map(|(_, _, ms)| *ms).unwrap()
    };
    assert_eq!(
        kept,
        [
            ("alice".to_owned(), 0, of_copy("alice", 0)),
            ("bob".to_owned(), 1, of_copy("bob", 1)),
            ("carol".to_owned(), 0, carol_on_master),
        ],
        "bob's first case is answered: its older time on the master gives way to the answer"
    );
    assert!(of_copy("carol", 0) > carol_on_master, "the test reads carol's case longer on the copy");
    // Merging again carries nothing new.
    let mut store = StudyStore::open(&master).unwrap();
    assert_eq!(merge_reader_copy(&mut store, &copy).unwrap().clocks_carried, 0);
    drop(store);
    assert_eq!(clock_rows(&master), kept);
    // Alice goes on at the master with her case's time so far.
    let mut session = ReadingSession::open(&master).unwrap();
    assert!(reader_progress(session.store(), "alice").unwrap().started);
    let case = session.next_case("alice").unwrap().unwrap();
    assert_eq!(case.progress.case_number, 1);
    session.submit("alice", case.token, &answer(Call::Artificial, 3)).unwrap();
    let stored = session.store().answers().unwrap().into_iter().find(|a| a.reader_id == "alice").unwrap();
    assert!(stored.time_ms >= of_copy("alice", 0) && stored.time_spans_restart, "{stored:?}");
}

#[test]
fn merge_refuses_a_kept_time_for_a_case_not_in_the_order() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice"], 8, DisplayBitDepth::Eight);
    let master = study_common::make_tiny_study(dir.path(), &design, 3, 0);
    let copy = dir.path().join("reader.study");
    StudyStore::open(&master).unwrap().write_reader_copy(&copy).unwrap();
    read_and_pause_then_close(&copy, "alice", 50);
    // Edited on the station: a time for a position the reader's order does not have.
    let edit = "PRAGMA foreign_keys = OFF; UPDATE case_clocks SET position = 99;";
    rusqlite::Connection::open(&copy).unwrap().execute_batch(edit).unwrap();
    let mut store = StudyStore::open(&master).unwrap();
    match merge_reader_copy(&mut store, &copy) {
        Err(StudyError::MergeRefused { reason, .. }) => {
            assert!(reason.contains("reader \"alice\" at stored position 99"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(store.case_clocks("alice").unwrap().is_empty(), "nothing was merged");
}

#[test]
fn a_schema_2_study_and_its_reader_copy_open_upgraded_merge_and_carry_kept_times() {
    let dir = tempfile::tempdir().unwrap();
    let master = schema_2_fixture(dir.path(), "master.study");
    let copy = schema_2_fixture(dir.path(), "reader_copy.study");
    assert_eq!((schema_version(&master), schema_version(&copy)), (2, 2), "fixtures of the second schema");
    let old_clocks = clock_rows(&master);
    assert_eq!(
        old_clocks.iter().map(|(r, p, _)| (r.as_str(), *p)).collect::<Vec<_>>(),
        [("alice", 2), ("bob", 0), ("carol", 1)],
        "the fixture's clocks, one a reader"
    );
    let carol_answer_ms = {
        let store = StudyStore::open(&master).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok");
        let answers = store.answers().unwrap();
        assert_eq!(answers.len(), 4);
        answers.iter().find(|a| a.reader_id == "carol" && a.position == 1).unwrap().time_ms
    };
    assert_eq!(schema_version(&master), SCHEMA_VERSION, "upgraded in place");
    assert_eq!(events_like(&master, "schema upgraded"), [format!("schema upgraded from 2 to {SCHEMA_VERSION}")]);
    // Carried over; carol's revisit of an answered case, which schema 2 timed from 0, now includes her answer's time.
    let upgraded = clock_rows(&master);
    assert_eq!(upgraded[..2], old_clocks[..2]);
    assert_eq!(upgraded[2], ("carol".to_owned(), 1, old_clocks[2].2 + carol_answer_ms));
    {
        // Bob saw a case and answered nothing: started, so the station offers to resume.
        let store = StudyStore::open(&master).unwrap();
        let bob = reader_progress(&store, "bob").unwrap();
        assert!(bob.started && bob.main_answered == 0, "{bob:?}");
    }
    // The old copy merges: bob's answer, and the time of his second case, newer than anything the master has of it.
    let copy_bytes = std::fs::read(&copy).unwrap();
    let mut store = StudyStore::open(&master).unwrap();
    let merged = merge_reader_copy(&mut store, &copy).unwrap();
    assert_eq!((merged.answers_added, merged.answers_already_present, merged.clocks_carried), (1, 4, 1));
    assert_eq!(merge_reader_copy(&mut store, &copy).unwrap().clocks_carried, 0);
    assert_eq!(std::fs::read(&copy).unwrap(), copy_bytes, "the copy is not touched");
    drop(store);
    assert_eq!(
        events_like(&master, "schema upgraded").len(),
        1,
        "the copy's snapshot was upgraded at each merge, the master only once"
    );
    let copy_bob = clock_rows(&copy).into_iter().find(|(r, _, _)| r == "bob").unwrap();
    assert_eq!(copy_bob.1, 1);
    let kept: Vec<(String, u32, u64)> = clock_rows(&master).into_iter().filter(|(r, _, _)| r == "bob").collect();
    let only_second = std::slice::from_ref(&copy_bob);
    assert_eq!(kept, only_second, "bob's first case is answered; his second goes on from the copy's time");
    // Bob goes on at the master where he was on the copy.
    let mut session = ReadingSession::open(&master).unwrap();
    let case = session.next_case("bob").unwrap().unwrap();
    assert_eq!(case.progress.case_number, 2);
    session.submit("bob", case.token, &answer(Call::Real, 4)).unwrap();
    let stored = session.store().answers().unwrap().into_iter().last().unwrap();
    assert!(stored.time_ms >= copy_bob.2 && stored.time_spans_restart, "{stored:?}");
}

#[test]
fn a_new_study_logs_no_schema_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice"], 8, DisplayBitDepth::Eight);
    let db = study_common::make_tiny_study(dir.path(), &design, 2, 0);
    drop(StudyStore::open(&db).unwrap());
    assert_eq!(schema_version(&db), SCHEMA_VERSION);
    assert_eq!(events_like(&db, "schema upgraded"), Vec::<String>::new());
}

#[test]
fn a_case_reads_from_when_it_was_shown_to_when_it_was_answered_not_while_a_worker_handled_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = study_with_back(dir.path(), &["alice"], 3);
    let mut session = ReadingSession::open(&db).unwrap();
    // Case 1 is read from the store, then appears 300 ms later (a slow share, a worker's queue): only the 200 ms
    // from its appearing to the Enter count, not the 300 ms before nor the 300 ms the answer waited to be written.
    let case = session.next_case("alice").unwrap().unwrap();
    sleep_ms(300);
    session.case_shown("alice", case.token, std::time::Instant::now());
    sleep_ms(200);
    let answered_at = std::time::Instant::now();
    sleep_ms(300);
    session.submit_at("alice", case.token, &answer(Call::Real, 3), answered_at).unwrap();
    let time_ms = session.store().answers().unwrap()[0].time_ms;
    assert!((200..300).contains(&time_ms), "{time_ms} ms");

    // A pause asked for 100 ms into case 2 stops its clock then, however late it is handled; going back at 100 ms
    // after the resume keeps 200 ms for case 2.
    let case = session.next_case("alice").unwrap().unwrap();
    session.case_shown("alice", case.token, std::time::Instant::now());
    sleep_ms(100);
    let paused_at = std::time::Instant::now();
    sleep_ms(200);
    session.pause_at("alice", paused_at).unwrap();
    let resumed_at = std::time::Instant::now();
    session.resume_at("alice", resumed_at).unwrap();
    sleep_ms(100);
    let back_at = std::time::Instant::now();
    sleep_ms(200);
    session.go_back_at("alice", back_at).unwrap().unwrap();
    let kept = session.store().case_clock("alice", 1).unwrap().unwrap().active_ms;
    assert!((200..300).contains(&kept), "{kept} ms kept for case 2");
}
