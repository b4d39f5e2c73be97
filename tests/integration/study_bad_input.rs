//! Bad input: a study from a newer version, a missing or broken image, a file that is not a study, a full disk,
//! stale tokens, wrong answers. Every error is clear and nothing stored earlier is lost.

use crate::study_common;

use std::path::Path;

use thorax::study::store::SCHEMA_VERSION;
use thorax::study::{
    Answer, Call, CaseMix, DisplayBitDepth, FolderArtificialSource, ReadingSession, RealImageFolder, StudyError,
    StudyStore, create_study,
};

fn answer(confidence: u32, text: Option<String>) -> Answer {
    Answer { call: Call::Artificial, confidence, free_text: text, giveaway: None }
}

fn tiny_study(dir: &Path, cases: usize) -> std::path::PathBuf {
    let design = study_common::small_design(&["alice", "bob"], 8, DisplayBitDepth::Eight);
    study_common::make_tiny_study(dir, &design, cases, 0)
}

#[test]
fn study_from_a_newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = tiny_study(dir.path(), 4);
    let raw = rusqlite::Connection::open(&db).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    let error = ReadingSession::open(&db).err().unwrap();
    assert!(matches!(error, StudyError::NewerVersion { found: 99, supported: SCHEMA_VERSION, .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("schema version 99") && message.contains("update") && message.contains("study.sqlite"));
}

#[test]
fn study_whose_design_is_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = tiny_study(dir.path(), 4);
    let raw = rusqlite::Connection::open(&db).unwrap();
    raw.execute("UPDATE design SET json = json_set(json, '$.format_version', 7)", []).unwrap();
    drop(raw);
    let message = StudyStore::open(&db).err().unwrap().to_string();
    assert!(message.contains("newer"), "{message}");
}

#[test]
fn a_file_that_is_not_a_study_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.sqlite");
    std::fs::write(&path, b"this is not a database, just some text that is long enough......").unwrap();
    assert!(matches!(StudyStore::open(&path), Err(StudyError::NotAStudy { .. })));
    let other = dir.path().join("other.sqlite");
    rusqlite::Connection::open(&other).unwrap().execute_batch("CREATE TABLE t (x);").unwrap();
    assert!(matches!(StudyStore::open(&other), Err(StudyError::NotAStudy { .. })));
    let missing = StudyStore::open(&dir.path().join("absent.sqlite")).err().unwrap().to_string();
    assert!(missing.contains("not found") && missing.contains("absent.sqlite"), "{missing}");
}

#[test]
fn missing_and_broken_images_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (real, artificial) = study_common::make_image_folders(dir.path(), 3, 3);
    let csv = dir.path().join("labels.csv");
    std::fs::write(&csv, "file,Cardiomegaly\npatient_000.png,1\ncxr_missing_0042.png,0\n").unwrap();
    let error = RealImageFolder::open(&real, Some(&csv)).unwrap_err();
    assert!(matches!(error, StudyError::CsvListsMissingImages { count: 1, .. }), "{error:?}");
    assert!(error.to_string().contains("first: cxr_missing_0042.png"), "{error}");

    std::fs::write(real.join("patient_broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let folder = RealImageFolder::open(&real, None).unwrap();
    let mut source = FolderArtificialSource::open(&artificial, 1).unwrap();
    let design = study_common::small_design(&["alice"], 8, DisplayBitDepth::Eight);
    let mix = CaseMix { main_cases: 8, practice_cases: 0, artificial_fraction: 0.5, replay_real_labels: false };
    let out = dir.path().join("s.sqlite");
    let error = create_study(&out, &design, &mix, &folder, &mut source).err().unwrap();
    assert!(matches!(error, StudyError::Decode { .. }), "{error:?}");
    assert!(error.to_string().contains("patient_broken.png"));
    assert!(!out.exists(), "a failed creation must not leave a study file");

    let mix_too_many = CaseMix { main_cases: 20, ..mix };
    std::fs::remove_file(real.join("patient_broken.png")).unwrap();
    let folder = RealImageFolder::open(&real, None).unwrap();
    let error = create_study(&out, &design, &mix_too_many, &folder, &mut source).err().unwrap();
    assert!(error.to_string().contains("not enough real images"), "{error}");
}

#[test]
fn creating_over_an_existing_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = tiny_study(dir.path(), 2);
    let before = std::fs::read(&db).unwrap();
    let folder = RealImageFolder::open(&dir.path().join("tiny_real"), None).unwrap();
    let mut source = FolderArtificialSource::open(&dir.path().join("tiny_artificial"), 1).unwrap();
    let design = study_common::small_design(&["alice"], 8, DisplayBitDepth::Eight);
    let mix = CaseMix { main_cases: 2, practice_cases: 0, artificial_fraction: 0.5, replay_real_labels: false };
    let error = create_study(&db, &design, &mix, &folder, &mut source).err().unwrap();
    assert!(matches!(error, StudyError::AlreadyExists { .. }));
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn full_disk_reports_a_clear_error_and_loses_nothing_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let db = tiny_study(dir.path(), 200);
    let mut session = ReadingSession::open(&db).unwrap();
    let mut stored = Vec::new();
    for _ in 0..3 {
        let case = session.next_case("alice").unwrap().unwrap();
        stored.push(session.submit("alice", case.token, &answer(4, None)).unwrap().answer_id);
    }
    // Cap the file at its current size: the next page it needs fails with SQLITE_FULL, like a full disk.
    let pages = session.store().page_count().unwrap();
    session.limit_size_pages(pages).unwrap();
    let big = "x".repeat(9_000);
    let mut full_error = None;
    for _ in 0..50 {
        let case = session.next_case("alice").unwrap().unwrap();
        match session.submit("alice", case.token, &answer(2, Some(big.clone()))) {
            Ok(receipt) => stored.push(receipt.answer_id),
            Err(error) => {
                // The same case is still current: the failed answer can be retried.
                let again = session.next_case("alice").unwrap().unwrap();
                assert_eq!(again.token, case.token);
                full_error = Some(error);
                break;
            }
        }
    }
    let error = full_error.expect("the size cap never triggered");
    assert!(matches!(error, StudyError::DiskFull { .. }), "{error:?}");
    assert!(error.to_string().contains("disk full") && error.to_string().contains("intact"), "{error}");
    drop(session);
    let store = StudyStore::open(&db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let ids: Vec<i64> = store.answers().unwrap().into_iter().map(|a| a.answer_id).collect();
    assert_eq!(ids, stored);
    drop(store);
    // With space again, the same case takes the answer.
    let mut session = ReadingSession::open(&db).unwrap();
    let case = session.next_case("alice").unwrap().unwrap();
    session.submit("alice", case.token, &answer(2, Some(big))).unwrap();
}

#[test]
fn stale_tokens_unknown_readers_and_invalid_answers_are_rejected_without_storing() {
    let dir = tempfile::tempdir().unwrap();
    let db = tiny_study(dir.path(), 4);
    let mut session = ReadingSession::open(&db).unwrap();
    let case = session.next_case("alice").unwrap().unwrap();
    for bad in [answer(0, None), answer(6, None), answer(3, Some("y".repeat(20_000)))] {
        assert!(matches!(session.submit("alice", case.token, &bad), Err(StudyError::InvalidAnswer(_))));
    }
    let outside = Answer { giveaway: Some(thorax::study::GiveawayPoint { x: 1.5, y: 0.2 }), ..answer(3, None) };
    assert!(matches!(session.submit("alice", case.token, &outside), Err(StudyError::InvalidAnswer(_))));
    session.submit("alice", case.token, &answer(3, None)).unwrap();
    let error = session.submit("alice", case.token, &answer(3, None)).unwrap_err();
    assert!(matches!(error, StudyError::StaleToken { .. }));
    // Bob's token does not fit Alice's case and vice versa once they diverge.
    let bob_case = session.next_case("bob").unwrap().unwrap();
    assert!(matches!(session.submit("alice", bob_case.token, &answer(3, None)), Err(StudyError::StaleToken { .. })));
    assert!(matches!(session.next_case("mallory"), Err(StudyError::UnknownReader { .. })));
    assert!(matches!(session.go_back("alice"), Err(StudyError::BackNotAllowed)));
    assert_eq!(session.store().answers().unwrap().len(), 1);
}
