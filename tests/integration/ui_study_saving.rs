//! The reading screen with its database work on a worker thread: a slow study file (each commit delayed, as on a
//! network share) does not stall the frames, an answer counts as saved only once it is on disk, a failed write keeps
//! the answer in the form, and closing the study or quitting stores an answer still on its way.

use std::path::Path;
use std::time::{Duration, Instant};

use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use thorax::app::WorkbenchApp;
use thorax::study::{Call, OptionalQuestions, StudyStore};

use crate::ui_study::{answers_in_file, design, harness, make_study, settle};

/// What a commit costs on a slow network share in these tests.
const COMMIT_DELAY: Duration = Duration::from_millis(200);

/// Opens `db` for alice with every commit of the session delayed by `delay`, and presses `button` to read.
fn start_slow(db: &Path, delay: Duration, button: &str) -> Harness<'static, WorkbenchApp> {
    let mut harness = harness();
    harness.state_mut().study.open_path(db).unwrap();
    harness.state_mut().study.select_reader("alice").unwrap();
    assert!(harness.state_mut().study.with_session(move |session| session.set_commit_delay(delay)));
    settle(&mut harness, 3);
    harness.get_by_label(button).click();
    settle(&mut harness, 3);
    assert!(harness.state().study.is_reading());
    harness
}

fn is_disabled(harness: &Harness<'static, WorkbenchApp>, label: &str) -> bool {
    harness.get_by_label(label).accesskit_node().is_disabled()
}

#[test]
fn a_slow_study_file_keeps_the_frames_running_while_an_answer_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = make_study(dir.path(), &design(false), 0);
    let mut harness = start_slow(&db, COMMIT_DELAY, "Start reading");
    assert!(harness.query_by_label("Case 1 of 6").is_some(), "the first case comes from the worker");
    harness.key_press(Key::ArrowLeft);
    harness.key_press(Key::Num3);
    harness.run_steps(2);

    // The frame that takes Enter only queues the answer.
    harness.key_press(Key::Enter);
    let submitted_at = Instant::now();
    harness.step();
    let submit_frame = submitted_at.elapsed();
    assert!(harness.query_by_label("Saving…").is_some(), "the screen says the answer is being saved");
    for label in ["Submit (Enter)", "Real (Left)", "Artificial (Right)", "1 guessing"] {
        assert!(is_disabled(&harness, label), "{label} is enabled while the answer is saved");
    }
    assert!(harness.query_by_label("Case 1 of 6").is_some(), "the case stays until the answer is stored");
    // A second Enter while saving submits nothing more.
    harness.key_press(Key::Enter);

    // Frames go on while the worker writes (the answer, then the next case's clock: two delayed commits).
    let mut frames = Vec::new();
    while harness.state().study.is_waiting_for_worker() {
        assert!(submitted_at.elapsed() < Duration::from_secs(30), "the answer was never saved");
        let frame = Instant::now();
        harness.step();
        frames.push(frame.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    let in_flight = submitted_at.elapsed();
    harness.run_steps(2);
    let slowest = frames.iter().max().copied().unwrap_or_default();
    let median = {
        let mut sorted = frames.clone();
        sorted.sort();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    };
    println!(
        "reading screen, {} ms per commit: submit frame {:.1} ms; {} frames while saving ({} ms in flight): \
         median {:.1} ms, slowest {:.1} ms",
        COMMIT_DELAY.as_millis(),
        submit_frame.as_secs_f64() * 1e3,
        frames.len(),
        in_flight.as_millis(),
        median.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3,
    );
    assert!(in_flight >= COMMIT_DELAY, "the delay applies: {in_flight:?}");
    // A commit is 200 ms: a frame that waited for one would take that long.
    assert!(submit_frame < COMMIT_DELAY / 2, "the submit frame blocked: {submit_frame:?}");
    assert!(slowest < COMMIT_DELAY / 2, "a frame blocked while saving: {frames:?}");
    assert!(frames.len() >= 5, "too few frames while saving: {frames:?}");

    assert!(harness.query_by_label("Case 2 of 6").is_some(), "the next case shows once the worker has it");
    assert!(harness.query_by_label("Saving…").is_none());
    assert!(!is_disabled(&harness, "Real (Left)"), "the controls are back");
    let answers = answers_in_file(&harness);
    assert_eq!(answers.len(), 1, "one answer, however many Enters");
    assert_eq!((answers[0].position, answers[0].answer.call, answers[0].answer.confidence), (0, Call::Real, 3));
    // The case's clock ran from when it appeared: the delayed clock write before that is not reading time.
    assert!(answers[0].time_ms < COMMIT_DELAY.as_millis() as u64, "reading time counts the wait: {:?}", answers[0]);
}

#[test]
fn a_failed_write_keeps_the_answer_in_the_form_and_names_the_study_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut comment_design = design(false);
    comment_design.questions = OptionalQuestions { free_text: true, giveaway_click: false };
    let (db, _) = make_study(dir.path(), &comment_design, 0);
    let mut harness = start_slow(&db, Duration::ZERO, "Start reading");

    // The file may not grow: the answer's long comment needs new pages, as on a full disk.
    harness.state_mut().study.with_session(|session| {
        let pages = session.store().page_count().unwrap();
        session.limit_size_pages(pages).unwrap();
    });
    let comment = "x".repeat(9_000);
    {
        let reading = harness.state_mut().study.reading.as_mut().unwrap();
        reading.draft.call = Some(Call::Artificial);
        reading.draft.confidence = Some(2);
        reading.draft.free_text = comment.clone();
    }
    harness.key_press(Key::Enter);
    settle(&mut harness, 2);

    let reading = harness.state().study.reading.as_ref().unwrap();
    let error = reading.error.clone().unwrap_or_default();
    assert!(error.starts_with("The answer was not stored") && error.contains("disk full"), "{error}");
    assert!(error.contains(&db.display().to_string()), "the error names the study file: {error}");
    assert!(harness.query_by_label_contains("The answer was not stored").is_some(), "the reader sees it");
    assert_eq!((reading.draft.call, reading.draft.confidence), (Some(Call::Artificial), Some(2)), "answer kept");
    assert_eq!(reading.draft.free_text, comment, "the comment is kept");
    assert!(harness.query_by_label("Case 1 of 6").is_some(), "the case stays");
    assert!(!is_disabled(&harness, "Submit (Enter)"), "the reader can submit again");
    assert!(answers_in_file(&harness).is_empty());

    // With room again, the same answer goes in on the next Enter.
    harness.state_mut().study.with_session(|session| {
        session.limit_size_pages(1 << 30).unwrap();
    });
    harness.key_press(Key::Enter);
    settle(&mut harness, 2);
    assert!(harness.query_by_label("Case 2 of 6").is_some());
    let answers = answers_in_file(&harness);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].answer.free_text.as_deref(), Some(comment.as_str()));
}

/// Gives case 1's answer with the keyboard and returns as soon as the frame has queued it (the write still runs).
fn answer_without_waiting(harness: &mut Harness<'static, WorkbenchApp>, call_key: Key) {
    harness.key_press(call_key);
    harness.key_press(Key::Num4);
    harness.run_steps(2);
    harness.key_press(Key::Enter);
    harness.step();
    assert!(harness.state().study.is_waiting_for_worker(), "the answer is still on its way");
}

#[test]
fn answers_on_their_way_when_the_study_is_closed_or_the_app_quits_are_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = make_study(dir.path(), &design(false), 0);

    // Answer, leave at once (Esc queues behind the answer), then Close study before the worker is done.
    let mut harness = start_slow(&db, COMMIT_DELAY, "Start reading");
    answer_without_waiting(&mut harness, Key::ArrowLeft);
    harness.key_press(Key::Escape);
    harness.step();
    assert!(!harness.state().study.is_reading());
    assert!(harness.query_by_label_contains("Saving the last answer").is_some(), "the home says it is saving");
    harness.state_mut().study.close_study();
    assert!(harness.state().study.study.is_none());
    // Closed means released: the file opens, and holds the answer.
    let answers = StudyStore::open(&db).unwrap().answers().unwrap();
    assert_eq!(answers.iter().map(|a| (a.position, a.answer.call)).collect::<Vec<_>>(), vec![(0, Call::Real)]);
    drop(harness);

    // Answer, then quit (the app is dropped) before the worker is done.
    let mut harness = start_slow(&db, COMMIT_DELAY, "Resume reading");
    assert!(harness.query_by_label("Case 2 of 6").is_some());
    answer_without_waiting(&mut harness, Key::ArrowRight);
    drop(harness);
    let answers = StudyStore::open(&db).unwrap().answers().unwrap();
    assert_eq!(
        answers.iter().map(|a| (a.position, a.answer.call)).collect::<Vec<_>>(),
        vec![(0, Call::Real), (1, Call::Artificial)]
    );
}
