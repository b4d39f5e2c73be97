//! The Study panel, the full-screen blinded reading and the Results view, driven headless with egui_kittest:
//! a complete scripted reading by two readers with the keyboard, resume after a restart, blinding of the reading
//! screen's accessibility tree, and a snapshot of the Results view.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use egui::{Key, Modifiers, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use thorax::app::study_results::{analyze_store, results_ui};
use thorax::app::{AppOptions, StudyAtStart, WorkbenchApp};
use thorax::engine::device::DeviceChoice;
use thorax::study::design::DESIGN_FORMAT_VERSION;
use thorax::study::{
    Call, CaseMix, ConfidenceScale, DisplayBitDepth, DisplaySpec, FolderArtificialSource, OptionalQuestions,
    RealImageFolder, StudyDesign, create_study,
};

const CASES: u32 = 6;

/// Texts of the reading screen that name the two answers; they are the same for every case.
const ANSWER_TEXTS: [&str; 3] = ["Is this radiograph real or artificial?", "Real (Left)", "Artificial (Right)"];

pub(crate) fn harness() -> Harness<'static, WorkbenchApp> {
    let options =
        AppOptions { device: DeviceChoice::Cpu, load_first_sample: false, run_models: false, ..AppOptions::default() };
    Harness::builder()
        .with_size(vec2(1280.0, 800.0))
        .wgpu()
        .build_eframe(move |cc| WorkbenchApp::new(cc, options).expect("app starts"))
}

/// Small embedded samples written as PNG files: three as "real", three as "artificial".
fn sample_folders(root: &Path) -> (PathBuf, PathBuf, Vec<String>) {
    let samples: Vec<_> = thorax::imaging::samples::embedded_samples()
        .into_iter()
        .filter(|s| s.file_name.starts_with("cxr256"))
        .take(2 * CASES as usize)
        .collect();
    assert!(samples.len() >= CASES as usize, "need {CASES} small embedded samples");
    let (real, artificial) = (root.join("real"), root.join("artificial"));
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(&artificial).unwrap();
    for (index, sample) in samples.iter().enumerate() {
        let dir = if index % 2 == 0 { &real } else { &artificial };
        std::fs::write(dir.join(&sample.file_name), sample.bytes).unwrap();
    }
    (real, artificial, samples.iter().map(|s| s.file_name.clone()).collect())
}

pub(crate) fn design(allow_back: bool) -> StudyDesign {
    StudyDesign {
        format_version: DESIGN_FORMAT_VERSION,
        title: "UI reading study".to_owned(),
        readers: vec!["alice".to_owned(), "bob".to_owned()],
        confidence_scale: ConfidenceScale::FiveLevel,
        allow_back,
        practice_feedback: true,
        questions: OptionalQuestions::default(),
        display: DisplaySpec { size_px: 96, bit_depth: DisplayBitDepth::Eight, border_crop_percent: 0 },
        modality: "blinded".to_owned(),
        seed: 7,
    }
}

/// Creates `root/study.sqlite`; returns it and the source file names (which the reading screen must never show).
pub(crate) fn make_study(root: &Path, design: &StudyDesign, practice: usize) -> (PathBuf, Vec<String>) {
    let (real, artificial, names) = sample_folders(root);
    let out = root.join("study.sqlite");
    let folder = RealImageFolder::open(&real, None).unwrap();
    let mut source = FolderArtificialSource::open(&artificial, 3).unwrap();
    let mix = CaseMix {
        main_cases: CASES as usize,
        practice_cases: practice,
        artificial_fraction: 0.5,
        replay_real_labels: false,
    };
    create_study(&out, design, &mix, &folder, &mut source).unwrap();
    (out, names)
}

/// Opens the study in a fresh app, selects `reader` and presses the panel's start/resume button.
fn open_and_start(harness: &mut Harness<'static, WorkbenchApp>, db: &Path, reader: &str, button: &str) {
    harness.state_mut().study.open_path(db).unwrap();
    harness.state_mut().study.select_reader(reader).unwrap();
    settle(harness, 3);
    harness.get_by_label(button).click();
    settle(harness, 3);
    assert!(harness.state().study.is_reading(), "pressing {button} starts the reading screen");
}

/// Every label and value in the accessibility tree.
/// Clicks the New study form's Create study (scrolled into view first: the form scrolls in a short window, animated)
/// and waits up to 60 s for the study to open.
fn create_study_from_form(harness: &mut Harness<'static, WorkbenchApp>) {
    harness.get_by_label("Create study").scroll_to_me();
    harness.run_steps(10);
    harness.get_by_label("Create study").click();
    let start = std::time::Instant::now();
    while harness.state().study.study.is_none() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "study not created: {:?}",
            harness.state().study_designer.error
        );
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    harness.run_steps(3);
}

fn screen_texts(harness: &Harness<'static, WorkbenchApp>) -> Vec<String> {
    harness
        .query_all_by(|node| node.label().is_some() || node.value().is_some())
        .flat_map(|node| {
            let node = node.accesskit_node();
            [node.label(), node.value()].into_iter().flatten().collect::<Vec<_>>()
        })
        .collect()
}

/// Checks the reading screen says nothing about where the case came from; returns its texts without progress.
fn assert_blinded(
    harness: &Harness<'static, WorkbenchApp>,
    source_names: &[String],
    case_number: u32,
) -> BTreeSet<String> {
    let texts = screen_texts(harness);
    let progress = format!("Case {case_number} of {CASES}");
    assert!(texts.contains(&progress), "no {progress:?} in {texts:?}");
    for text in &texts {
        let lower = text.to_lowercase();
        if lower.contains("real") || lower.contains("artificial") || lower.contains("generat") {
            assert!(ANSWER_TEXTS.contains(&text.as_str()), "the reading screen names provenance: {text:?}");
        }
        for name in source_names {
            let stem = name.trim_end_matches(".png");
            assert!(!text.contains(stem), "the reading screen shows a file name: {text:?}");
        }
        for forbidden in [".png", "case-0", "practice-0", "sqlite", "cxr"] {
            assert!(!lower.contains(forbidden), "the reading screen shows {forbidden:?}: {text:?}");
        }
    }
    for workbench in ["Samples", "Generator", "Classifier", "Study results"] {
        assert!(harness.query_by_label(workbench).is_none(), "{workbench} is visible while reading");
    }
    // The reader's own name differs between readers, not between cases.
    texts.into_iter().filter(|t| *t != progress && !t.starts_with("Reader: ")).collect()
}

/// The scripted answer of `reader` for their `k`-th case.
fn scripted(reader: &str, k: u32) -> (Call, u32) {
    let artificial = match reader {
        "alice" => k.is_multiple_of(2),
        _ => !k.is_multiple_of(3),
    };
    let call = if artificial { Call::Artificial } else { Call::Real };
    (call, 1 + (k * 7 + reader.len() as u32) % 5)
}

fn digit_key(digit: u32) -> Key {
    [Key::Num1, Key::Num2, Key::Num3, Key::Num4, Key::Num5][digit as usize - 1]
}

/// Reads cases `from..=to` with the keyboard, checking blinding on each; returns the screen texts seen.
fn read_cases(
    harness: &mut Harness<'static, WorkbenchApp>,
    reader: &str,
    from: u32,
    to: u32,
    source_names: &[String],
) -> Vec<BTreeSet<String>> {
    let mut seen = Vec::new();
    for k in from..=to {
        seen.push(assert_blinded(harness, source_names, k));
        let (call, confidence) = scripted(reader, k);
        // A first try without a call is refused and stores nothing.
        harness.key_press(digit_key(confidence));
        harness.key_press(Key::Enter);
        settle(harness, 2);
        assert!(harness.query_by_label_contains(&format!("Case {k} of")).is_some(), "an incomplete answer moved on");
        // Change the mind once: the other call first, then the scripted one.
        let (first, second) = match call {
            Call::Real => (Key::ArrowRight, Key::ArrowLeft),
            Call::Artificial => (Key::ArrowLeft, Key::ArrowRight),
        };
        harness.key_press(first);
        settle(harness, 1);
        harness.key_press(second);
        settle(harness, 1);
        let draft = &harness.state().study.reading.as_ref().unwrap().draft;
        assert_eq!((draft.call, draft.confidence), (Some(call), Some(confidence)));
        harness.key_press(Key::Enter);
        settle(harness, 3);
    }
    seen
}

/// Runs `steps` frames, then frames until the reading worker has done what the screen waits for (it works on its own
/// thread, so frames alone do not finish its work), then two more for the layout.
pub(crate) fn settle(harness: &mut Harness<'static, WorkbenchApp>, steps: usize) {
    harness.run_steps(steps);
    let start = std::time::Instant::now();
    let mut waited = false;
    while harness.state().study.is_waiting_for_worker() {
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "the reading worker never answered");
        std::thread::sleep(std::time::Duration::from_millis(1));
        harness.step();
        waited = true;
    }
    if waited {
        harness.run_steps(2);
    }
}

/// Every answer in the open study's file, read from a snapshot (a reading worker holds the session).
pub(crate) fn answers_in_file(harness: &Harness<'static, WorkbenchApp>) -> Vec<thorax::study::store::AnswerRecord> {
    let path = &harness.state().study.study.as_ref().unwrap().path;
    thorax::study::snapshot::open_snapshot(path).unwrap().store().answers().unwrap()
}

/// (reader, position, call, confidence) of every stored answer.
fn stored_answers(harness: &Harness<'static, WorkbenchApp>) -> Vec<(String, u32, Call, u32)> {
    answers_in_file(harness)
        .into_iter()
        .map(|a| (a.reader_id, a.position, a.answer.call, a.answer.confidence))
        .collect()
}

#[test]
fn two_readers_read_blinded_with_the_keyboard_resume_after_restart_and_see_results() {
    let dir = tempfile::tempdir().unwrap();
    let (db, names) = make_study(dir.path(), &design(false), 0);

    // Alice reads three cases; the app then "crashes" (the harness is dropped without leaving the reading).
    let mut seen = Vec::new();
    {
        let mut harness = harness();
        open_and_start(&mut harness, &db, "alice", "Start reading");
        assert!(harness.query_by_label("Back (Backspace)").is_none(), "this study does not allow going back");
        harness.key_press(Key::Backspace);
        settle(&mut harness, 2);
        assert!(harness.query_by_label("Case 1 of 6").is_some(), "Backspace must not go back");
        seen.extend(read_cases(&mut harness, "alice", 1, 3, &names));
        assert_eq!(stored_answers(&harness).len(), 3, "every submitted answer is stored at once");
    }

    // After the restart Alice resumes at case 4, and finishes.
    {
        let mut harness = harness();
        open_and_start(&mut harness, &db, "alice", "Resume reading");
        assert!(harness.query_by_label("Case 4 of 6").is_some(), "resume continues at the next case");
        // Pause hides the image and stops the clock; P resumes.
        harness.key_press(Key::P);
        settle(&mut harness, 2);
        assert!(harness.state().study.reading.as_ref().unwrap().is_paused());
        assert!(harness.query_by_label_contains("Paused").is_some());
        assert!(harness.query_by_label("radiograph view").is_none(), "a paused screen hides the image");
        harness.key_press(Key::Enter);
        settle(&mut harness, 2);
        assert_eq!(stored_answers(&harness).len(), 3, "keys do nothing while paused");
        harness.key_press(Key::P);
        settle(&mut harness, 2);
        assert!(harness.query_by_label("radiograph view").is_some());
        seen.extend(read_cases(&mut harness, "alice", 4, CASES, &names));
        assert!(harness.query_by_label("All cases are read. Thank you.").is_some());
        harness.key_press(Key::Enter);
        settle(&mut harness, 3);
        assert!(!harness.state().study.is_reading(), "Enter at the end leaves the reading screen");
        assert!(harness.query_by_label("Reading station").is_some(), "and shows the study's home");

        // Bob reads everything in the same session; Esc in the middle leaves and Resume continues.
        harness.state_mut().study.select_reader("bob").unwrap();
        settle(&mut harness, 2);
        harness.get_by_label("Start reading").click();
        settle(&mut harness, 3);
        seen.extend(read_cases(&mut harness, "bob", 1, 2, &names));
        harness.key_press(Key::Escape);
        settle(&mut harness, 3);
        assert!(!harness.state().study.is_reading());
        // Esc leads to the study's home, never to the workbench with its generator and labelled images.
        assert!(harness.query_by_label("Reading station").is_some(), "the study's home is shown after Esc");
        for workbench in ["Samples", "Generator", "Classifier"] {
            assert!(harness.query_by_label(workbench).is_none(), "{workbench:?} is shown to a paused reader");
        }
        // Mid-study, Results are locked: they would show a reader at this screen which cases were real.
        assert!(harness.get_by_label("Results").accesskit_node().is_disabled(), "Results before every reader finished");
        harness.get_by_label("Results").click();
        settle(&mut harness, 3);
        assert!(harness.query_by_label("Pooled").is_none(), "no results before every reader has finished");
        harness.get_by_label("Resume reading").click();
        settle(&mut harness, 3);
        seen.extend(read_cases(&mut harness, "bob", 3, CASES, &names));
        harness.key_press(Key::Enter);
        settle(&mut harness, 3);

        // Every answer is in the database, as scripted.
        let answers = stored_answers(&harness);
        assert_eq!(answers.len(), 2 * CASES as usize);
        for reader in ["alice", "bob"] {
            for k in 1..=CASES {
                let (call, confidence) = scripted(reader, k);
                let found = answers
                    .iter()
                    .filter(|(r, position, _, _)| r == reader && *position == k - 1)
                    .map(|(_, _, c, conf)| (*c, *conf))
                    .collect::<Vec<_>>();
                assert_eq!(found, vec![(call, confidence)], "{reader} case {k}");
            }
        }

        // Apart from "case k of n", every case showed exactly the same texts.
        for pair in seen.windows(2) {
            let differ: Vec<_> = pair[0].symmetric_difference(&pair[1]).collect();
            assert!(differ.is_empty(), "the reading screen differs between cases: {differ:?}");
        }

        // Results from the panel once both have finished: per reader, pooled, and the kappas.
        assert!(!harness.get_by_label("Results").accesskit_node().is_disabled());
        harness.get_by_label("Results").click();
        settle(&mut harness, 3);
        for label in ["alice", "bob", "Pooled", "Cohen kappa", "AUC", "Binomial p", "Sensitivity", "Specificity"] {
            assert!(harness.query_all_by_label(label).count() >= 1, "no {label:?} in the Results view");
        }
        assert!(harness.query_by_label_contains("Fleiss kappa (2 readers, 6 cases)").is_some());
    }

    // The Results view on its own, with the reading times (which vary from run to run) fixed.
    let store = thorax::study::StudyStore::open(&db).unwrap();
    let mut report = analyze_store(&store).unwrap();
    for modality in &mut report.modalities {
        for reader in &mut modality.readers {
            reader.performance.time_per_case = None;
        }
        modality.pooled.time_per_case = None;
    }
    let mut results = Harness::builder()
        .with_size(vec2(1100.0, 640.0))
        .wgpu()
        .build_ui(move |ui| egui::CentralPanel::default().show(ui, |ui| results_ui(ui, &report)).inner);
    results.run();
    results.snapshot("study_results");
}

#[test]
fn going_back_when_allowed_and_practice_feedback() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = make_study(dir.path(), &design(true), 2);
    let mut harness = harness();
    open_and_start(&mut harness, &db, "alice", "Start reading");
    // Practice first, with the truth shown after the answer.
    assert!(harness.query_by_label("Practice case 1 of 2").is_some());
    for key in [Key::ArrowRight, Key::Num4, Key::Enter] {
        harness.key_press(key);
        settle(&mut harness, 1);
    }
    settle(&mut harness, 2);
    assert!(harness.query_by_label_contains("Practice case: this radiograph was").is_some());
    assert!(harness.query_by_label("radiograph view").is_some(), "the truth is shown with the image just judged");
    harness.key_press(Key::Enter);
    settle(&mut harness, 2);
    assert!(harness.query_by_label("Practice case 2 of 2").is_some());
    for key in [Key::ArrowLeft, Key::Num2, Key::Enter, Key::Enter] {
        harness.key_press(key);
        settle(&mut harness, 2);
    }
    assert!(harness.query_by_label("Case 1 of 6").is_some());
    for key in [Key::ArrowLeft, Key::Num5, Key::Enter] {
        harness.key_press(key);
        settle(&mut harness, 2);
    }
    assert!(harness.query_by_label("Case 2 of 6").is_some());
    // Back shows case 1 with the earlier answer; a new answer is a revision and returns to case 2.
    harness.key_press(Key::Backspace);
    settle(&mut harness, 2);
    assert!(harness.query_by_label("Case 1 of 6").is_some());
    let draft = harness.state().study.reading.as_ref().unwrap().draft.clone();
    assert_eq!((draft.call, draft.confidence), (Some(Call::Real), Some(5)));
    // Back never leaves the main block for practice.
    harness.key_press(Key::Backspace);
    settle(&mut harness, 2);
    assert!(harness.query_by_label("Case 1 of 6").is_some());
    for key in [Key::ArrowRight, Key::Num3, Key::Enter] {
        harness.key_press(key);
        settle(&mut harness, 2);
    }
    assert!(harness.query_by_label("Case 2 of 6").is_some());
    let answers = answers_in_file(&harness);
    assert_eq!(answers.len(), 4);
    let last = answers.last().unwrap();
    assert_eq!((last.position, last.revision, last.answer.call, last.answer.confidence), (2, 2, Call::Artificial, 3));

    // Read to the end: the last answer can still be revised from the closing screen.
    for _ in 2..=6 {
        for key in [Key::ArrowRight, Key::Num2, Key::Enter] {
            harness.key_press(key);
            settle(&mut harness, 2);
        }
    }
    assert!(harness.query_by_label("All cases are read. Thank you.").is_some());
    assert!(harness.query_by_label("Back to the last case (Backspace)").is_some());
    harness.key_press(Key::Backspace);
    settle(&mut harness, 2);
    assert!(harness.query_by_label("Case 6 of 6").is_some(), "Backspace reopens the last case");
    for key in [Key::ArrowLeft, Key::Num4, Key::Enter] {
        harness.key_press(key);
        settle(&mut harness, 2);
    }
    assert!(harness.query_by_label("All cases are read. Thank you.").is_some());
    let answers = answers_in_file(&harness);
    let last = answers.last().unwrap();
    assert_eq!((last.position, last.revision, last.answer.call), (7, 2, Call::Real), "case 6, after 2 practice cases");
}

#[test]
fn a_study_held_by_another_process_shows_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = make_study(dir.path(), &design(false), 0);
    let _holder = thorax::study::ReadingSession::open(&db).unwrap();
    let mut harness = harness();
    assert!(harness.state_mut().study.open_path(&db).is_err());
    harness.run_steps(3);
    assert!(harness.query_by_label_contains("Cannot open").is_some());
    assert!(!harness.state().study.is_reading());
}

#[test]
fn new_study_from_the_generator_is_created_off_the_ui_thread_and_opened() {
    let dir = tempfile::tempdir().unwrap();
    let (real, _artificial, names) = sample_folders(dir.path());
    // Labels of the real images: every other one has a finding the generator will replay.
    let mut csv = String::from("file,findings\n");
    for (index, name) in names.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let finding = if index % 4 == 0 { "Cardiomegaly" } else { "No Finding" };
        csv.push_str(&format!("{name},{finding}\n"));
    }
    let labels = dir.path().join("labels.csv");
    std::fs::write(&labels, csv).unwrap();
    let db = dir.path().join("designed.sqlite");

    let mut harness = harness();
    harness.run_steps(2);
    {
        let designer = &mut harness.state_mut().study_designer;
        designer.open = true;
        designer.form.real = Some(real.clone());
        designer.form.labels_csv = Some(labels.clone());
        designer.form.output = Some(db.clone());
        designer.form.readers = "carol".to_owned();
        designer.form.cases = 4;
        designer.form.practice = 0;
        designer.form.display_size_px = 64;
    }
    harness.run_steps(2);
    harness.get_by_label_contains("labels replayed from the real cases").click();
    harness.run_steps(2);
    create_study_from_form(&mut harness);
    assert!(!harness.state().study_designer.open, "the form closes once the study exists");
    assert!(harness.query_by_label_contains("Created").is_some(), "the status bar says what was made");
    // The open study holds its database exclusively: read the cases through the app's session.
    let open = harness.state().study.study.as_ref().unwrap();
    assert_eq!(open.path, db);
    let cases = open.session.as_ref().unwrap().store().cases().unwrap();
    assert_eq!(cases.len(), 4);
    let generated: Vec<_> = cases.iter().filter(|c| c.provenance == thorax::study::Provenance::Artificial).collect();
    assert_eq!(generated.len(), 2);
    for case in generated {
        assert!(case.source.starts_with("generator "), "{}", case.source);
    }
    // The real films are 256 px and the generator makes 128 px: the real cases come down to 128 px first.
    for case in cases.iter().filter(|c| c.provenance == thorax::study::Provenance::Real) {
        assert!(case.source.contains("brought down to 128 px"), "{}", case.source);
    }
}

#[test]
fn slider_confidence_and_a_giveaway_click_are_stored_with_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut slider_design = design(false);
    slider_design.confidence_scale = ConfidenceScale::Slider100;
    slider_design.questions = OptionalQuestions { free_text: false, giveaway_click: true };
    let (db, _) = make_study(dir.path(), &slider_design, 0);
    let mut harness = harness();
    open_and_start(&mut harness, &db, "alice", "Start reading");

    // Digit 3 on a 0-100 scale is 50; Up twice adds two steps of 5, also when both presses land in one frame.
    harness.key_press(Key::ArrowRight);
    harness.key_press(Key::Num3);
    settle(&mut harness, 1);
    // (The harness gives each queued event a frame of its own, so both presses go into one frame's input.)
    let up = egui::Event::Key {
        key: Key::ArrowUp,
        physical_key: None,
        pressed: true,
        repeat: false,
        modifiers: Modifiers::NONE,
    };
    harness.input_mut().events.extend([up.clone(), up]);
    settle(&mut harness, 2);
    assert_eq!(harness.state().study.reading.as_ref().unwrap().draft.confidence, Some(60));

    // A plain click on the middle of the fitted image marks (0.5, 0.5).
    let rect = harness.state().study.reading.as_ref().unwrap().viewer_rect.unwrap();
    let click = |pressed| egui::Event::PointerButton {
        pos: rect.center(),
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: egui::Modifiers::NONE,
    };
    harness.hover_at(rect.center());
    harness.event(click(true));
    harness.step();
    harness.event(click(false));
    settle(&mut harness, 2);
    let mark = harness.state().study.reading.as_ref().unwrap().draft.giveaway.expect("the click marks a point");
    assert!((mark.x - 0.5).abs() < 0.02 && (mark.y - 0.5).abs() < 0.02, "{mark:?}");
    harness.key_press(Key::Enter);
    settle(&mut harness, 3);

    let answers = answers_in_file(&harness);
    assert_eq!(answers.len(), 1);
    let stored = &answers[0].answer;
    assert_eq!((stored.call, stored.confidence), (Call::Artificial, 60));
    let point = stored.giveaway.expect("the giveaway point is stored");
    assert!((point.x - 0.5).abs() < 0.02 && (point.y - 0.5).abs() < 0.02, "{point:?}");
}

#[test]
fn escape_ends_typing_a_comment_without_leaving_the_case() {
    let dir = tempfile::tempdir().unwrap();
    let mut comment_design = design(false);
    comment_design.questions = OptionalQuestions { free_text: true, giveaway_click: false };
    let (db, _) = make_study(dir.path(), &comment_design, 0);
    let mut harness = harness();
    harness.state_mut().study.open_path(&db).unwrap();
    harness.state_mut().study.select_reader("alice").unwrap();
    settle(&mut harness, 3);
    let summary = "Call plus confidence 1-5, a comment; no going back";
    assert!(harness.query_by_label(summary).is_some(), "the summary names every question");
    harness.get_by_label("Start reading").click();
    settle(&mut harness, 3);
    harness.get_by_role(egui::accesskit::Role::TextInput).click();
    settle(&mut harness, 2);
    harness.get_by_role(egui::accesskit::Role::TextInput).type_text("sharp edge");
    settle(&mut harness, 2);
    assert_eq!(harness.state().study.reading.as_ref().unwrap().draft.free_text, "sharp edge");

    harness.key_press(Key::Escape);
    settle(&mut harness, 3);
    let reading = harness.state().study.reading.as_ref().expect("the first Escape only ends typing");
    assert_eq!(reading.draft.free_text, "sharp edge", "the comment is kept");
    assert!(harness.query_by_label("Case 1 of 6").is_some());
    // A second Escape, with no field focused, leaves as before.
    harness.key_press(Key::Escape);
    settle(&mut harness, 3);
    assert!(harness.state().study.reading.is_none(), "Escape leaves the reading");
}

#[test]
fn a_reader_copy_is_read_like_the_study_and_never_shows_results() {
    let dir = tempfile::tempdir().unwrap();
    let (db, names) = make_study(dir.path(), &design(false), 0);
    let copy = dir.path().join("station.study");
    thorax::study::StudyStore::open(&db).unwrap().write_reader_copy(&copy).unwrap();
    let mut harness = harness();
    open_and_start(&mut harness, &copy, "alice", "Start reading");
    read_cases(&mut harness, "alice", 1, 2, &names);
    assert_eq!(stored_answers(&harness).len(), 2, "answers are stored in the copy");
    harness.key_press(Key::Escape);
    settle(&mut harness, 3);
    assert!(harness.query_by_label_contains("Reader copy: the truth stays with the master study").is_some());
    assert!(harness.get_by_label("Results").accesskit_node().is_disabled(), "a copy has no truth to show");
}

#[test]
fn the_reading_screen_checkpoints_the_clock_so_a_crash_keeps_the_time_read() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = make_study(dir.path(), &design(false), 0);
    let read_before_crash = std::time::Duration::from_millis(300);
    {
        let mut harness = harness();
        open_and_start(&mut harness, &db, "alice", "Start reading");
        // The worker holds the session now: the setting goes in order with the reading's requests.
        harness.state_mut().study.with_session(|session| {
            session.set_clock_checkpoint_interval(std::time::Duration::from_millis(50));
        });
        // The reader only looks: frames come from the screen's own wake-ups, with no input.
        std::thread::sleep(read_before_crash);
        // The worker writes the checkpoint in the background; the file has it soon after.
        let start = std::time::Instant::now();
        loop {
            harness.step();
            let snapshot = thorax::study::snapshot::open_snapshot(&db).unwrap();
            let checkpoint = snapshot.store().case_clock("alice", 0).unwrap();
            if checkpoint.is_some_and(|c| c.active_ms >= read_before_crash.as_millis() as u64) {
                break;
            }
            assert!(start.elapsed() < std::time::Duration::from_secs(10), "no checkpoint in the file: {checkpoint:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The app "crashes": the harness is dropped without leaving the reading.
    }
    let mut harness = harness();
    // No answer yet, but a case begun: the station offers to resume it, and says the reader has started.
    harness.state_mut().study.open_path(&db).unwrap();
    settle(&mut harness, 3);
    assert_eq!(harness.query_all_by_label("not started").count(), 1, "bob has not started");
    assert!(harness.query_by_label("started").is_some(), "alice has");
    assert!(harness.query_by_label("Start reading").is_none(), "alice, selected first, has begun a case");
    open_and_start(&mut harness, &db, "alice", "Resume reading");
    assert!(harness.query_by_label("Case 1 of 6").is_some(), "the same case is shown again");
    harness.key_press(Key::ArrowLeft);
    harness.key_press(Key::Num3);
    harness.key_press(Key::Enter);
    settle(&mut harness, 2);
    let answers = answers_in_file(&harness);
    assert_eq!(answers.len(), 1);
    assert!(answers[0].time_ms >= read_before_crash.as_millis() as u64, "{:?}", answers[0]);
    assert!(answers[0].time_spans_restart);
}

#[test]
fn the_new_study_form_crops_the_border_of_every_case() {
    let dir = tempfile::tempdir().unwrap();
    let (real, artificial, _) = sample_folders(dir.path());
    let db = dir.path().join("cropped.sqlite");
    let mut harness = harness();
    harness.run_steps(2);
    {
        let designer = &mut harness.state_mut().study_designer;
        designer.open = true;
        designer.form.real = Some(real);
        designer.form.artificial = Some(artificial);
        designer.form.output = Some(db.clone());
        designer.form.readers = "carol".to_owned();
        designer.form.cases = 4;
        designer.form.practice = 0;
        designer.form.display_size_px = 64;
    }
    harness.run_steps(2);
    assert!(
        harness.query_by_label_contains("Text near the edges goes with \"Crop border (%)\"").is_some(),
        "the form's warning about burned-in text names the field"
    );
    let field = harness.get_by_label("Crop border (%)");
    assert_eq!(field.accesskit_node().numeric_value(), Some(0.0), "off by default");
    field.scroll_to_me();
    harness.run_steps(10);
    harness.get_by_label("Crop border (%)").hover();
    harness.run_steps(10);
    assert!(harness.query_by_label_contains("burned-in text near their edges").is_some(), "the hover text says why");

    // The field keeps to 0..=25 and the design follows it.
    harness.get_by_label("Crop border (%)").set_value_accesskit(40.0);
    harness.run_steps(2);
    assert_eq!(harness.state().study_designer.form.border_crop_percent, 25);
    harness.get_by_label("Crop border (%)").set_value_accesskit(10.0);
    harness.run_steps(2);
    assert_eq!(harness.state().study_designer.form.border_crop_percent, 10);
    let (planned, _) = harness.state().study_designer.form.plan().unwrap();
    assert_eq!(planned.display.border_crop_percent, 10);

    create_study_from_form(&mut harness);
    let open = harness.state().study.study.as_ref().unwrap();
    assert_eq!(open.design.display.border_crop_percent, 10);
    assert_eq!(open.design.format_version, 2, "builds from before the crop refuse the study");
    assert!(
        harness.query_by_label("Display: 64 px, 8-bit, lanczos3, border crop 10% per side").is_some(),
        "the study's home shows its display settings"
    );
}

#[test]
fn the_new_study_form_warns_of_artificial_images_of_mixed_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let (real, artificial, _) = sample_folders(dir.path());
    let mut harness = harness();
    harness.run_steps(2);
    {
        let designer = &mut harness.state_mut().study_designer;
        designer.open = true;
        designer.form.real = Some(real);
        designer.form.artificial = Some(artificial.clone());
    }
    let warning = "the artificial images differ in size";
    let settle = |harness: &mut Harness<'static, WorkbenchApp>| {
        // The survey reads headers on its own thread; a few frames apart is enough for three files.
        for _ in 0..50 {
            harness.run_steps(2);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    settle(&mut harness);
    assert!(harness.query_by_label_contains(warning).is_none(), "one size (256 px): no warning");

    // One artificial image of another size, in a second folder: the form hears of it before Create study.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    for entry in std::fs::read_dir(&artificial).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, mixed.join(path.file_name().unwrap())).unwrap();
    }
    image::GrayImage::new(1024, 1024).save(mixed.join("large.png")).unwrap();
    harness.state_mut().study_designer.form.artificial = Some(mixed);
    settle(&mut harness);
    assert!(
        harness.query_by_label_contains("differ in size (256 to 1024 px on their longer side").is_some()
            && harness.query_by_label_contains("matched to the median, 256 px").is_some(),
        "the warning gives the sizes and the median"
    );

    // The generator as the source: the folder no longer matters.
    harness.state_mut().study_designer.form.artificial_choice =
        thorax::app::study_designer::ArtificialChoice::GeneratorReplay;
    settle(&mut harness);
    assert!(harness.query_by_label_contains(warning).is_none(), "no folder, no warning");
}

#[test]
fn a_locked_station_keeps_readers_from_closing_the_study_switching_reader_and_quitting() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = make_study(dir.path(), &design(false), 0);
    let mut harness = harness();
    harness.state_mut().study.open_path(&db).unwrap();
    harness.run_steps(3);
    let enabled = |harness: &Harness<'static, WorkbenchApp>, label: &str| {
        !harness.get_by_label(label).accesskit_node().is_disabled()
    };
    assert!(enabled(&harness, "Close study") && enabled(&harness, "Open study..."), "unlocked by default");

    // A mistyped repeat locks nothing.
    let type_into = |harness: &mut Harness<'static, WorkbenchApp>, label: &str, text: &str| {
        let field = harness.get_by_label(label);
        field.focus();
        field.type_text(text);
        harness.run_steps(2);
    };
    harness.get_by_label("Lock station...").click();
    harness.run_steps(2);
    type_into(&mut harness, "New PIN", "2468");
    type_into(&mut harness, "PIN again", "2469");
    harness.get_by_label("Lock").click();
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("Not locked: the two PINs differ").is_some());
    assert!(!harness.state().study.station_lock.is_locked());

    type_into(&mut harness, "New PIN", "2468");
    type_into(&mut harness, "PIN again", "2468");
    harness.get_by_label("Lock").click();
    harness.run_steps(2);
    assert!(harness.state().study.station_lock.is_locked());
    for label in ["Close study", "Open study..."] {
        assert!(!enabled(&harness, label), "{label} is off while locked");
    }
    let reader_choice = harness.get_by_role(egui::accesskit::Role::ComboBox);
    assert!(reader_choice.accesskit_node().is_disabled(), "no switching reader while locked");
    assert!(harness.query_by_label("Lock station...").is_none());

    // Closing the window is cancelled while locked.
    harness.input_mut().viewports.entry(egui::ViewportId::ROOT).or_default().events.push(egui::ViewportEvent::Close);
    harness.step();
    let commands = &harness.output().viewport_output[&egui::ViewportId::ROOT].commands;
    assert!(commands.contains(&egui::ViewportCommand::CancelClose), "{commands:?}");
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("quitting needs the supervisor PIN").is_some());
    assert!(harness.state().study.study.is_some(), "the study stays open");

    // A wrong PIN leaves it locked; the right one unlocks.
    type_into(&mut harness, "Supervisor PIN", "1357");
    harness.get_by_label("Unlock").click();
    harness.run_steps(2);
    assert!(harness.query_by_label("That is not the PIN.").is_some());
    assert!(harness.state().study.station_lock.is_locked());
    type_into(&mut harness, "Supervisor PIN", "2468");
    harness.get_by_label("Unlock").click();
    harness.run_steps(2);
    assert!(!harness.state().study.station_lock.is_locked());
    assert!(enabled(&harness, "Close study"));
    harness.input_mut().viewports.entry(egui::ViewportId::ROOT).or_default().events.push(egui::ViewportEvent::Close);
    harness.step();
    let commands = &harness.output().viewport_output[&egui::ViewportId::ROOT].commands;
    assert!(!commands.contains(&egui::ViewportCommand::CancelClose), "unlocked, the window closes");
}

#[test]
fn wrong_pins_in_a_row_make_the_station_lock_wait_before_the_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = make_study(dir.path(), &design(false), 0);
    let mut harness = harness();
    harness.state_mut().study.open_path(&db).unwrap();
    harness.run_steps(3);
    let type_into = |harness: &mut Harness<'static, WorkbenchApp>, label: &str, text: &str| {
        let field = harness.get_by_label(label);
        field.focus();
        field.type_text(text);
        harness.run_steps(2);
    };
    harness.get_by_label("Lock station...").click();
    harness.run_steps(2);
    type_into(&mut harness, "New PIN", "2468");
    type_into(&mut harness, "PIN again", "2468");
    harness.get_by_label("Lock").click();
    harness.run_steps(2);
    assert!(harness.state().study.station_lock.is_locked());

    for attempt in 1..=thorax::app::station_lock::FREE_ATTEMPTS {
        assert!(!harness.get_by_label("Unlock").accesskit_node().is_disabled(), "attempt {attempt} is taken");
        type_into(&mut harness, "Supervisor PIN", "1357");
        harness.get_by_label("Unlock").click();
        harness.run_steps(2);
    }
    assert!(
        harness.query_by_label_contains("3 wrong PINs in a row: the next one is taken in 30 s").is_some(),
        "the wait is said"
    );
    assert!(harness.get_by_label("Unlock").accesskit_node().is_disabled(), "no attempt during the wait");
    assert!(harness.get_by_label("Supervisor PIN").accesskit_node().is_disabled());
    // Nor does Enter in the field get around it: the right PIN is not even compared.
    let now = std::time::Instant::now();
    let lock = &mut harness.state_mut().study.station_lock;
    assert!(matches!(lock.unlock("2468", now), thorax::app::station_lock::UnlockOutcome::Waiting { .. }));
    assert!(harness.state().study.station_lock.is_locked());
}

#[test]
fn a_station_started_on_its_study_opens_its_home_with_the_reader_given() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = make_study(dir.path(), &design(false), 0);
    let start = |path: &Path, reader: Option<&str>| {
        // The defaults would load a sample and run the generator: not for a station.
        let open_study = Some(StudyAtStart { path: path.to_path_buf(), reader: reader.map(str::to_owned) });
        let options = AppOptions { device: DeviceChoice::Cpu, open_study, ..AppOptions::default() };
        let mut harness = Harness::builder()
            .with_size(vec2(1280.0, 800.0))
            .wgpu()
            .build_eframe(move |cc| WorkbenchApp::new(cc, options).expect("app starts"));
        harness.run_steps(4);
        harness
    };

    let harness = start(&db, Some("bob"));
    let study = harness.state().study.study.as_ref().expect("the study is open");
    assert_eq!(study.reader, "bob");
    assert!(harness.query_by_label("Close study").is_some(), "the station's home is shown");
    assert!(harness.state().study.error.is_none());
    let app = harness.state();
    assert!(app.real.image.is_none() && app.real.loading.is_none(), "no sample loaded behind the station");
    assert!(app.artificial.image.is_none() && app.artificial.loading.is_none(), "no generator run");
    // Closed, the workbench starts as it would have: the first sample and a generated image.
    let mut harness = harness;
    harness.get_by_label("Close study").click();
    let started = std::time::Instant::now();
    while harness.state().real.image.is_none() || harness.state().artificial.image.is_none() {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the workbench never started");
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(harness);

    let harness = start(&db, Some("carol"));
    assert_eq!(harness.state().study.study.as_ref().unwrap().reader, "alice", "the first reader with cases left");
    let error = harness.state().study.error.clone().unwrap();
    assert!(error.contains("--reader") && error.contains("\"carol\" is not part of this study"), "{error}");
    assert!(harness.query_by_label_contains("\"carol\" is not part of this study").is_some(), "shown on the home");

    let not_a_study = dir.path().join("notes.study");
    std::fs::write(&not_a_study, b"not a database").unwrap();
    let harness = start(&not_a_study, None);
    assert!(harness.state().study.study.is_none());
    let error = harness.state().study.error.clone().unwrap();
    assert!(error.starts_with("Cannot open the study") && error.contains("notes.study"), "{error}");
    assert!(harness.query_by_label_contains("Cannot open the study").is_some(), "{error}");
}
