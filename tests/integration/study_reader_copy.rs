//! Reader copies: the answer key stays out of the file a reader can reach, and the answers come back to the master.

use std::path::Path;
use std::process::Command;

use thorax::study::reader_copy::merge_reader_copy;
use thorax::study::{Answer, Call, DisplayBitDepth, ReadingSession, StudyError, StudyStore};

use crate::study_common;

/// Reads `count` cases as `reader` and returns whether each practice answer came with its truth.
fn read(session: &mut ReadingSession, reader: &str, count: usize) -> Vec<bool> {
    let mut feedback = Vec::new();
    for k in 0..count {
        let case = session.next_case(reader).unwrap().expect("a case left to read");
        let call = if k % 2 == 0 { Call::Real } else { Call::Artificial };
        let answer = Answer { call, confidence: 1 + (k as u32 % 5), free_text: None, giveaway: None };
        let receipt = session.submit(reader, case.token, &answer).unwrap();
        feedback.push(receipt.practice_feedback.is_some());
    }
    feedback
}

fn thorax(args: &[&str], files: &[&Path]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_thorax")).env("RUST_BACKTRACE", "0").args(args).args(files).output().unwrap()
}

#[test]
fn a_reader_copy_withholds_the_truth_and_its_answers_merge_back_once() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice", "bob"], 8, DisplayBitDepth::Eight);
    let master_path = study_common::make_tiny_study(dir.path(), &design, 6, 2);
    // Alice reads her two practice cases and one main case on the master before the copy is made.
    {
        let mut session = ReadingSession::open(&master_path).unwrap();
        assert_eq!(read(&mut session, "alice", 3), vec![true, true, false]);
    }
    let sources: Vec<String> =
        StudyStore::open(&master_path).unwrap().cases().unwrap().into_iter().map(|case| case.source).collect();

    let copy_path = dir.path().join("reader.study");
    let summary = StudyStore::open(&master_path).unwrap().write_reader_copy(&copy_path).unwrap();
    assert_eq!((summary.main_cases_withheld, summary.answers_carried), (6, 3));
    // Only the finished copy lands in its folder (it is built elsewhere, so the key never touches that medium).
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(".reader-copy") || name.starts_with("reader.study-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Nothing of the answer key is left in the file's bytes, not even in free pages.
    let master_bytes = std::fs::read(&master_path).unwrap();
    assert!(master_bytes.windows(sources[0].len()).any(|w| w == sources[0].as_bytes()), "the master holds the key");
    let bytes = std::fs::read(&copy_path).unwrap();
    for source in &sources {
        assert!(!bytes.windows(source.len()).any(|w| w == source.as_bytes()), "{source:?} is in the copy");
    }
    {
        let copy = StudyStore::open(&copy_path).unwrap();
        assert!(copy.is_reader_copy().unwrap());
        assert_eq!(copy.integrity_check().unwrap(), "ok");
        assert!(matches!(copy.cases(), Err(StudyError::TruthWithheld { .. })));
        assert_eq!(copy.case_counts().unwrap(), (6, 2));
        assert!(copy.metadata().unwrap().iter().all(|(key, _)| !key.contains("source")));
        // With the seed, the workbench would rebuild the study and its answer key.
        assert_eq!(copy.design().unwrap().seed, 0);
        assert!(copy.readers().unwrap().iter().all(|reader| reader.seed == 0));
    }
    // Copies are made from the master only.
    let of_copy = StudyStore::open(&copy_path).unwrap().write_reader_copy(&dir.path().join("copy-of-copy.study"));
    assert!(matches!(of_copy, Err(StudyError::AlreadyReaderCopy { .. })));
    // A second copy never replaces the first.
    let again = StudyStore::open(&master_path).unwrap().write_reader_copy(&copy_path);
    assert!(matches!(again, Err(StudyError::AlreadyExists { .. })));

    // Readers go on at the station: Alice where she was, Bob with his practice (feedback still works).
    {
        let mut session = ReadingSession::open(&copy_path).unwrap();
        assert_eq!(read(&mut session, "alice", 2), vec![false, false]);
        assert_eq!(read(&mut session, "bob", 3), vec![true, true, false]);
    }
    let analyze = thorax(&["study", "analyze"], &[&copy_path]);
    let stderr = String::from_utf8_lossy(&analyze.stderr);
    assert!(!analyze.status.success() && stderr.contains("this is a reader copy"), "{stderr}");

    let merge = thorax(&["study", "merge", "--json"], &[&master_path, &copy_path]);
    assert!(merge.status.success(), "{}", String::from_utf8_lossy(&merge.stderr));
    let merged: serde_json::Value = serde_json::from_slice(&merge.stdout).unwrap();
    assert_eq!((merged["answers_added"].as_u64(), merged["answers_already_present"].as_u64()), (Some(5), Some(3)));
    let master = StudyStore::open(&master_path).unwrap();
    assert_eq!(master.answers().unwrap().len(), 8);
    assert!(master.cases().unwrap().iter().all(|case| !case.source.is_empty()), "the master keeps its truth");
    // Merging again adds nothing.
    let mut master = master;
    let twice = merge_reader_copy(&mut master, &copy_path).unwrap();
    assert_eq!((twice.answers_added, twice.answers_already_present), (0, 8));
    drop(master);

    // A copy whose answer was altered, or the arguments swapped, is refused with nothing written.
    let connection = rusqlite::Connection::open(&copy_path).unwrap();
    connection.execute("UPDATE answers SET confidence = 5 WHERE reader_id = 'bob' AND position = 2", []).unwrap();
    drop(connection);
    let mut master = StudyStore::open(&master_path).unwrap();
    let altered = merge_reader_copy(&mut master, &copy_path).unwrap_err().to_string();
    assert!(
        altered.contains("reader \"bob\" answered the case at position 3 of their order (revision 1)"),
        "{altered}"
    );
    assert_eq!(master.answers().unwrap().len(), 8);
    drop(master);
    // A new answer added to the copy by hand is checked as the reading session would have: the case of that
    // position, a confidence on the scale, the rating its call gives, a revision that follows one.
    let cases_at = |reader: &str, position: i64| -> String {
        let connection = rusqlite::Connection::open(&master_path).unwrap();
        connection
            .query_row(
                "SELECT case_id FROM reader_orders WHERE reader_id = ?1 AND position = ?2",
                rusqlite::params![reader, position],
                |row| row.get(0),
            )
            .unwrap()
    };
    let (right_case, other_case) = (cases_at("bob", 3), cases_at("bob", 4));
    for (case, confidence, rating, revision, reason) in [
        (&other_case, 3, 3, 1, "but that position of the order holds"),
        (&right_case, 99, -93, 1, "confidence 99 is outside 1..=5"),
        (&right_case, 5, 10, 1, "has the rating 10, but its call and confidence give 1"),
        (&right_case, 5, 1, 2, "follows no earlier revision"),
    ] {
        let forged = dir.path().join(format!("forged-{confidence}-{rating}-{revision}.study"));
        std::fs::copy(&copy_path, &forged).unwrap();
        let connection = rusqlite::Connection::open(&forged).unwrap();
        // Undo the earlier edit (bob read his third case with confidence 3), so only the new row differs.
        connection.execute("UPDATE answers SET confidence = 3 WHERE reader_id = 'bob' AND position = 2", []).unwrap();
        connection
            .execute(
                "INSERT INTO answers (reader_id, position, revision, case_id, call, confidence, rating, time_ms,
                                      answered_unix_ms)
                 VALUES ('bob', 3, ?1, ?2, 'real', ?3, ?4, 1000, 1)",
                rusqlite::params![revision, case, confidence, rating],
            )
            .unwrap();
        drop(connection);
        let mut master = StudyStore::open(&master_path).unwrap();
        let error = merge_reader_copy(&mut master, &forged).map(|_| ()).unwrap_err().to_string();
        assert!(error.contains(reason) && error.contains("nothing was merged"), "{reason}: {error}");
        assert_eq!(master.answers().unwrap().len(), 8);
    }
    let swapped = thorax(&["study", "merge"], &[&copy_path, &master_path]);
    let stderr = String::from_utf8_lossy(&swapped.stderr);
    assert!(!swapped.status.success() && stderr.contains("give the master study first"), "{stderr}");
}

#[test]
fn a_copy_of_another_study_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice"], 8, DisplayBitDepth::Eight);
    let master_path = study_common::make_tiny_study(dir.path(), &design, 4, 0);
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let mut other_design = design.clone();
    other_design.title = "another study".to_owned();
    let other = study_common::make_tiny_study(&other_dir, &other_design, 4, 0);
    let copy_path = dir.path().join("other-copy.study");
    StudyStore::open(&other).unwrap().write_reader_copy(&copy_path).unwrap();
    let mut master = StudyStore::open(&master_path).unwrap();
    let error = merge_reader_copy(&mut master, &copy_path).unwrap_err().to_string();
    assert!(error.contains("its design differs from the master's"), "{error}");
    // The master itself is not a reader copy.
    let error = merge_reader_copy(&mut master, &other).unwrap_err().to_string();
    assert!(error.contains("it is a study, not a reader copy"), "{error}");
}

/// The files in `folder`, each with its bytes.
fn folder_contents(folder: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn a_copy_still_held_by_its_station_or_on_read_only_media_merges_without_being_touched() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice"], 8, DisplayBitDepth::Eight);
    let master_path = study_common::make_tiny_study(dir.path(), &design, 4, 1);
    let station = dir.path().join("station");
    std::fs::create_dir_all(&station).unwrap();
    let copy_path = station.join("reader.study");
    StudyStore::open(&master_path).unwrap().write_reader_copy(&copy_path).unwrap();

    // The station still holds the copy: its answers so far are in the write-ahead log beside it.
    let mut session = ReadingSession::open(&copy_path).unwrap();
    read(&mut session, "alice", 3);
    let mut master = StudyStore::open(&master_path).unwrap();
    let held = merge_reader_copy(&mut master, &copy_path).unwrap();
    assert_eq!((held.answers_added, held.answers_already_present), (3, 0));
    read(&mut session, "alice", 1);
    drop(session);
    let last = merge_reader_copy(&mut master, &copy_path).unwrap();
    assert_eq!((last.answers_added, last.answers_already_present), (1, 3));
    drop(master);

    // Brought back read-only (a write-protected stick, a CD): merged and read without a file written beside it.
    let mut read_only = std::fs::metadata(&copy_path).unwrap().permissions();
    read_only.set_readonly(true);
    std::fs::set_permissions(&copy_path, read_only).unwrap();
    let before = folder_contents(&station);
    let merge = thorax(&["study", "merge", "--json"], &[&master_path, &copy_path]);
    assert!(merge.status.success(), "{}", String::from_utf8_lossy(&merge.stderr));
    let merged: serde_json::Value = serde_json::from_slice(&merge.stdout).unwrap();
    assert_eq!((merged["answers_added"].as_u64(), merged["answers_already_present"].as_u64()), (Some(0), Some(4)));
    let status = thorax(&["study", "status"], &[&copy_path]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(folder_contents(&station), before, "the copy's folder changed");
    // (As root the permission bits do not stop a write; elsewhere they do, and the merge above still worked.)
    let root_can_write = std::fs::OpenOptions::new().write(true).open(&copy_path).is_ok();
    if !root_can_write {
        let session = ReadingSession::open(&copy_path).map(|_| ()).unwrap_err().to_string();
        assert!(session.contains("read-only"), "{session}");
    }
}
