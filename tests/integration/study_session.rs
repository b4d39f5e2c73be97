//! The reading flow a UI drives: practice with feedback first, "case k of n", pause/resume of the clock,
//! going back when allowed (answers kept as revisions), resuming after the session is closed.

use crate::study_common;

use std::time::Duration;

use thorax::study::export::readings_from_store;
use thorax::study::session::ReadingPhase;
use thorax::study::{Answer, Call, DisplayBitDepth, Provenance, ReadingSession, StudyStore};

fn answer(call: Call, confidence: u32) -> Answer {
    Answer { call, confidence, free_text: None, giveaway: None }
}

#[test]
fn practice_first_with_feedback_then_main_cases_counted_k_of_n() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice"], 8, DisplayBitDepth::Eight);
    let db = study_common::make_tiny_study(dir.path(), &design, 6, 2);
    let mut session = ReadingSession::open(&db).unwrap();
    let mut phases = Vec::new();
    while let Some(case) = session.next_case("alice").unwrap() {
        phases.push((case.progress.phase, case.progress.case_number, case.progress.case_count));
        let receipt = session.submit("alice", case.token, &answer(Call::Artificial, 5)).unwrap();
        match case.progress.phase {
            ReadingPhase::Practice => {
                let feedback = receipt.practice_feedback.expect("practice cases give feedback");
                assert_eq!(feedback.call_correct, feedback.truth == Provenance::Artificial);
            }
            ReadingPhase::Main => assert!(receipt.practice_feedback.is_none()),
        }
    }
    let expected: Vec<_> =
        (1..=2).map(|k| (ReadingPhase::Practice, k, 2)).chain((1..=6).map(|k| (ReadingPhase::Main, k, 6))).collect();
    assert_eq!(phases, expected);
    let progress = session.progress("alice").unwrap();
    assert!(progress.finished);
    assert_eq!((progress.practice_answered, progress.main_answered), (2, 6));
    // Practice answers are kept but excluded from analysis.
    assert_eq!(session.store().answers().unwrap().len(), 8);
    assert_eq!(readings_from_store(session.store()).unwrap().len(), 6);
}

#[test]
fn time_per_case_excludes_pauses_and_resume_after_reopen_continues_where_left() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice", "bob"], 8, DisplayBitDepth::Eight);
    let db = study_common::make_tiny_study(dir.path(), &design, 5, 0);
    {
        let mut session = ReadingSession::open(&db).unwrap();
        let case = session.next_case("alice").unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(60));
        session.pause("alice").unwrap();
        assert!(session.progress("alice").unwrap().paused);
        std::thread::sleep(Duration::from_millis(300));
        session.resume("alice").unwrap();
        std::thread::sleep(Duration::from_millis(60));
        session.submit("alice", case.token, &answer(Call::Real, 2)).unwrap();
        let case = session.next_case("alice").unwrap().unwrap();
        session.submit("alice", case.token, &answer(Call::Real, 2)).unwrap();
    }
    let store = StudyStore::open(&db).unwrap();
    let first = &store.answers().unwrap()[0];
    assert!((120..400).contains(&first.time_ms), "time {} ms should exclude the 300 ms pause", first.time_ms);
    let third_case = store.reader_order("alice").unwrap()[2].case_id.clone();
    let third_image = store.display_image(&third_case).unwrap();
    drop(store);
    let mut session = ReadingSession::open(&db).unwrap();
    let case = session.next_case("alice").unwrap().unwrap();
    assert_eq!(case.progress.case_number, 3);
    assert_eq!(case.image, third_image);
    assert_eq!(session.next_case("bob").unwrap().unwrap().progress.case_number, 1);
}

#[test]
fn going_back_when_allowed_keeps_every_revision_and_analysis_uses_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let mut design = study_common::small_design(&["alice"], 8, DisplayBitDepth::Eight);
    design.allow_back = true;
    let db = study_common::make_tiny_study(dir.path(), &design, 4, 0);
    let mut session = ReadingSession::open(&db).unwrap();
    for _ in 0..3 {
        let case = session.next_case("alice").unwrap().unwrap();
        session.submit("alice", case.token, &answer(Call::Real, 5)).unwrap();
    }
    let back = session.go_back("alice").unwrap().unwrap();
    assert_eq!(back.progress.case_number, 3);
    assert_eq!(back.previous_answer, Some(answer(Call::Real, 5)));
    let back2 = session.go_back("alice").unwrap().unwrap();
    assert_eq!(back2.progress.case_number, 2);
    session.submit("alice", back2.token, &answer(Call::Artificial, 4)).unwrap();
    // After re-answering case 2, the session walks forward through case 3 before the unanswered case 4.
    let next = session.next_case("alice").unwrap().unwrap();
    assert_eq!(next.progress.case_number, 3);
    session.submit("alice", next.token, &answer(Call::Real, 1)).unwrap();
    let next = session.next_case("alice").unwrap().unwrap();
    assert_eq!(next.progress.case_number, 4);
    let answers = session.store().answers().unwrap();
    assert_eq!(answers.len(), 5);
    assert_eq!(answers.iter().filter(|a| a.revision == 2).count(), 2);
    let readings = readings_from_store(session.store()).unwrap();
    assert_eq!(readings.len(), 3);
    let order = session.store().reader_order("alice").unwrap();
    let second = readings.iter().find(|r| r.case_id == order[1].case_id).unwrap();
    assert_eq!(second.rating, 9.0);
    assert!(second.call_artificial);
    let first_case = session.go_back("alice").unwrap();
    assert!(first_case.is_some());
}

#[test]
fn every_study_connection_is_wal_synchronous_full_and_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice"], 8, DisplayBitDepth::Eight);
    let db = study_common::make_tiny_study(dir.path(), &design, 2, 0);
    let session = ReadingSession::open(&db).unwrap();
    let settings = session.store().journal_settings().unwrap();
    assert_eq!(settings.journal_mode, "wal");
    assert!(settings.synchronous_full);
    assert_eq!(settings.locking_mode, "exclusive");
}
