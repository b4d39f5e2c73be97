//! Durability: a child process submits answers as fast as it can and is killed with SIGKILL at random moments;
//! every acknowledged answer must survive, the file must pass `PRAGMA integrity_check`, and the session must
//! resume at the first unanswered case, whose reading clock goes on from its last checkpoint. Also: a study held by
//! another process is refused with a clear error.
//!
//! The child is this test executable itself, re-run with `--exact crash_child_process_entry` and an env var.

use crate::study_common;

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thorax::study::randomise::StudyRng;
use thorax::study::{Answer, Call, DisplayBitDepth, GiveawayPoint, ReadingSession, StudyError, StudyStore};

const CHILD_MODE_ENV: &str = "THORAX_STUDY_CRASH_CHILD";
const CHILD_DB_ENV: &str = "THORAX_STUDY_CRASH_DB";
const READERS: [&str; 2] = ["alice", "bob"];
/// How long the child of `read-case-then-hold` reads its case before it waits to be killed.
const CHILD_READING_TIME: Duration = Duration::from_millis(600);

/// Not a test on its own: the body of the child process (does nothing unless the env var is set).
#[test]
fn crash_child_process_entry() {
    let Ok(mode) = std::env::var(CHILD_MODE_ENV) else {
        return;
    };
    let db = PathBuf::from(std::env::var(CHILD_DB_ENV).unwrap());
    // libtest has printed "test name ... " without a newline: start our lines on a fresh line.
    println!();
    let mut session = ReadingSession::open(&db).unwrap();
    if mode == "hold" {
        println!("HOLDING");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    if mode == "answer-3-then-hold" {
        for _ in 0..3 {
            let case = session.next_case(READERS[0]).unwrap().unwrap();
            let answer = Answer { call: Call::Real, confidence: 2, free_text: None, giveaway: None };
            session.submit(READERS[0], case.token, &answer).unwrap();
        }
        println!("HOLDING");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    if mode == "read-case-then-hold" {
        // A reader on their first case; the UI checkpoints the clock as the reading screen does, only more often.
        session.set_clock_checkpoint_interval(Duration::from_millis(100));
        session.next_case(READERS[0]).unwrap().unwrap();
        let started = std::time::Instant::now();
        while started.elapsed() < CHILD_READING_TIME {
            std::thread::sleep(Duration::from_millis(20));
            session.checkpoint_clock(READERS[0]).unwrap();
        }
        std::thread::sleep(Duration::from_millis(150));
        session.checkpoint_clock(READERS[0]).unwrap();
        println!("HOLDING");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let mut n = 0u32;
    for reader in READERS {
        while let Some(case) = session.next_case(reader).unwrap() {
            n += 1;
            let answer = Answer {
                call: if n.is_multiple_of(3) { Call::Real } else { Call::Artificial },
                confidence: 1 + n % 5,
                free_text: n.is_multiple_of(4).then(|| format!("comment {n}, with \"quotes\"")),
                giveaway: n.is_multiple_of(5).then_some(GiveawayPoint { x: 0.25, y: 0.75 }),
            };
            let receipt = session.submit(reader, case.token, &answer).unwrap();
            // Printed only after submit returned: an acknowledged answer.
            println!("ACK {}", receipt.answer_id);
        }
    }
    println!("DONE");
}

fn spawn_child(db: &Path, mode: &str) -> (Child, Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "study_durability::crash_child_process_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_MODE_ENV, mode)
        .env(CHILD_DB_ENV, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    (child, lines, reader)
}

fn stored_answer_ids(db: &Path) -> BTreeSet<i64> {
    let store = StudyStore::open(db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    store.answers().unwrap().into_iter().map(|a| a.answer_id).collect()
}

/// Every reader's answers are a prefix of their order, and the session offers the first unanswered case.
fn check_resume(db: &Path) -> usize {
    let (expected_images, prefix_lengths): (Vec<_>, Vec<usize>) = {
        let store = StudyStore::open(db).unwrap();
        READERS
            .iter()
            .map(|reader| {
                let order = store.reader_order(reader).unwrap();
                let answered = store.answered_positions(reader).unwrap();
                let prefix: Vec<u32> = (0..answered.len() as u32).collect();
                assert_eq!(answered, prefix, "{reader}: answers are not a prefix of the order");
                let image = order.get(answered.len()).map(|entry| store.display_image(&entry.case_id).unwrap());
                (image, answered.len())
            })
            .unzip()
    };
    let mut session = ReadingSession::open(db).unwrap();
    for ((reader, expected), answered) in READERS.iter().zip(&expected_images).zip(&prefix_lengths) {
        let case = session.next_case(reader).unwrap();
        assert_eq!(case.as_ref().map(|c| &c.image), expected.as_ref(), "{reader} resumes at the wrong case");
        if let Some(case) = case {
            assert_eq!(case.progress.case_number as usize, answered + 1);
        }
    }
    prefix_lengths.iter().sum()
}

#[test]
fn killed_mid_session_loses_no_acknowledged_answer() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&READERS, 8, DisplayBitDepth::Eight);
    let db = study_common::make_tiny_study(dir.path(), &design, 400, 0);
    let mut rng = StudyRng::from_seed(2024);
    let mut acknowledged = BTreeSet::new();
    let (mut killed_mid_run, mut previous_total) = (0, 0);
    for round in 0..20 {
        let (mut child, lines, reader) = spawn_child(&db, "submit");
        if round % 2 == 0 {
            // Any moment after spawning: during start-up, opening, or submitting.
            std::thread::sleep(Duration::from_millis(rng.below(150)));
        } else {
            // Surely mid-session: after the first acknowledged answer of this round.
            // Generous: starting the test binary as a child can take many seconds on a loaded CI machine.
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            // A fast machine may finish the whole study (DONE) before this round: nothing left to answer.
            while !lines.lock().unwrap().iter().any(|line| line.contains("ACK ") || line.trim() == "DONE") {
                assert!(std::time::Instant::now() < deadline, "round {round}: the child never answered");
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(rng.below(40)));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let lines = lines.lock().unwrap().clone();
        let new_acks: BTreeSet<i64> =
            lines.iter().filter_map(|line| line.trim().strip_prefix("ACK ")).map(|id| id.parse().unwrap()).collect();
        if !lines.iter().any(|line| line.trim() == "DONE") {
            killed_mid_run += 1;
        }
        acknowledged.extend(&new_acks);
        let stored = stored_answer_ids(&db);
        let lost: Vec<_> = acknowledged.difference(&stored).collect();
        assert!(lost.is_empty(), "round {round}: acknowledged answers lost: {lost:?}");
        // At most one answer can be stored but not yet acknowledged when the kill lands.
        let unacknowledged_new = stored.len() - previous_total - new_acks.len();
        assert!(unacknowledged_new <= 1, "round {round}: {unacknowledged_new} unexplained answers");
        previous_total = stored.len();
        assert_eq!(check_resume(&db), stored.len());
    }
    eprintln!(
        "durability: {} acknowledged answers over 20 SIGKILL rounds ({killed_mid_run} killed mid-session), none lost",
        acknowledged.len()
    );
    assert!(killed_mid_run >= 10, "only {killed_mid_run} of 20 kills landed mid-session");
    assert!(acknowledged.len() >= 20, "only {} answers acknowledged in all rounds", acknowledged.len());
}

/// Starts a child in `mode` and waits until it holds the study.
fn hold_in_child(db: &Path, mode: &str) -> (Child, std::thread::JoinHandle<()>) {
    let (child, lines, reader) = spawn_child(db, mode);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !lines.lock().unwrap().iter().any(|l| l.trim() == "HOLDING") {
        assert!(std::time::Instant::now() < deadline, "child never took the study");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, reader)
}

#[test]
fn a_study_held_by_a_session_is_read_from_a_snapshot_of_its_committed_answers() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&READERS, 8, DisplayBitDepth::Eight);
    let db = study_common::make_tiny_study(dir.path(), &design, 4, 0);
    let (mut child, reader) = hold_in_child(&db, "answer-3-then-hold");
    let opened = thorax::study::snapshot::open_for_reading(&db).unwrap();
    assert!(opened.is_snapshot());
    assert_eq!(opened.store().answers().unwrap().len(), 3, "the committed answers, from the log");
    drop(opened);
    let status =
        Command::new(env!("CARGO_BIN_EXE_thorax")).args(["study", "status", "--json"]).arg(&db).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["in_use_snapshot"], true);
    assert_eq!(status["readers"][0]["reader"], "alice");
    assert_eq!(status["readers"][0]["main_answered"], 3);
    // So does export: a reading station left open must not stop the researcher.
    let csv = dir.path().join("answers.csv");
    let export = Command::new(env!("CARGO_BIN_EXE_thorax"))
        .args(["study", "export", "--json", "--answers"])
        .arg(&csv)
        .arg(&db)
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let export: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    assert_eq!((export["in_use_snapshot"].as_bool(), export["answer_rows"].as_u64()), (Some(true), Some(3)));
    // The session still holds the study, untouched: a second session is refused as before.
    assert!(matches!(ReadingSession::open(&db), Err(StudyError::Locked { .. })));
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let opened = thorax::study::snapshot::open_for_reading(&db).unwrap();
    assert!(!opened.is_snapshot(), "a free study is read directly");
    assert_eq!(opened.store().answers().unwrap().len(), 3);
}

#[test]
fn a_station_killed_mid_case_resumes_its_clock_from_the_last_checkpoint_without_the_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&READERS, 8, DisplayBitDepth::Eight);
    let db = study_common::make_tiny_study(dir.path(), &design, 4, 0);
    let (mut child, reader) = hold_in_child(&db, "read-case-then-hold");
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let checkpoint = StudyStore::open(&db).unwrap().case_clock(READERS[0], 0).unwrap().expect("a checkpoint");
    assert_eq!(checkpoint.position, 0);
    assert!(checkpoint.active_ms >= CHILD_READING_TIME.as_millis() as u64, "{checkpoint:?}");
    // The station is down for a while; that time must not count.
    let downtime = Duration::from_millis(1500);
    std::thread::sleep(downtime);
    let mut session = ReadingSession::open(&db).unwrap();
    let case = session.next_case(READERS[0]).unwrap().unwrap();
    assert_eq!(case.progress.case_number, 1, "the same case is shown again");
    std::thread::sleep(Duration::from_millis(100));
    session
        .submit(READERS[0], case.token, &Answer { call: Call::Real, confidence: 3, free_text: None, giveaway: None })
        .unwrap();
    let stored = &session.store().answers().unwrap()[0];
    assert!(stored.time_spans_restart, "{stored:?}");
    let resumed_ms = stored.time_ms - checkpoint.active_ms;
    assert!(resumed_ms >= 100, "{} ms stored, {} ms before the kill", stored.time_ms, checkpoint.active_ms);
    assert!(resumed_ms < downtime.as_millis() as u64, "the downtime counts: {} ms stored", stored.time_ms);
}

#[test]
fn study_held_by_another_process_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&READERS, 8, DisplayBitDepth::Eight);
    let db = study_common::make_tiny_study(dir.path(), &design, 4, 0);
    let (mut child, lines, reader) = spawn_child(&db, "hold");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !lines.lock().unwrap().iter().any(|l| l.trim() == "HOLDING") {
        assert!(std::time::Instant::now() < deadline, "child never took the study");
        std::thread::sleep(Duration::from_millis(20));
    }
    let error = ReadingSession::open(&db).err().expect("a held study must be refused");
    assert!(matches!(error, StudyError::Locked { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("in use by another process") && message.contains("study.sqlite"), "{message}");
    assert!(matches!(StudyStore::open(&db), Err(StudyError::Locked { .. })));
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    // Once the holder is gone, the study opens again.
    let mut session = ReadingSession::open(&db).unwrap();
    assert!(session.next_case("alice").unwrap().is_some());
}

#[test]
fn a_sound_write_ahead_log_passes_and_torn_or_altered_ones_are_named() {
    use thorax::study::snapshot::{FRAME_HEADER_BYTES, LOG_HEADER_BYTES, log_damage};
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&READERS, 8, DisplayBitDepth::Eight);
    let db = study_common::make_tiny_study(dir.path(), &design, 4, 0);
    // Answers committed, the session still open: they are in the log, not yet in the database file.
    let mut session = ReadingSession::open(&db).unwrap();
    for _ in 0..2 {
        let case = session.next_case(READERS[0]).unwrap().unwrap();
        let answer = Answer { call: Call::Real, confidence: 2, free_text: None, giveaway: None };
        session.submit(READERS[0], case.token, &answer).unwrap();
    }
    let mut log_path = db.as_os_str().to_owned();
    log_path.push("-wal");
    let log = std::fs::read(PathBuf::from(log_path)).unwrap();
    assert!(log.len() > LOG_HEADER_BYTES, "the answers are in the log");
    assert_eq!(log_damage(&log), None);
    assert_eq!(log_damage(&[]), None, "an empty log is sound");
    let cut = log_damage(&log[..log.len() - 100]).unwrap();
    assert!(cut.ends_with("is cut short"), "{cut}");
    let mut altered = log.clone();
    altered[LOG_HEADER_BYTES + FRAME_HEADER_BYTES + 40] ^= 0xff;
    assert_eq!(log_damage(&altered).as_deref(), Some("frame 1 fails its checksum"));
    let mut header = log.clone();
    header[12] ^= 1;
    assert_eq!(log_damage(&header).as_deref(), Some("its header fails its checksum"));
    assert!(log_damage(&log[..20]).is_some());
}
