//! `thorax study new|status|analyze|export` with `--json`: one JSON document on stdout, clear errors otherwise.

use crate::study_common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use thorax::study::{Answer, Call, ReadingSession, StudyStore};

fn thorax(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_thorax")).args(args).output().unwrap()
}

fn json(args: &[&str]) -> Value {
    let output = thorax(args);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{args:?}: stdout is not one JSON document: {e}"))
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn read_everything(db: &Path) {
    let mut session = ReadingSession::open(db).unwrap();
    let mut n = 0u32;
    for reader in ["alice", "bob"] {
        while let Some(case) = session.next_case(reader).unwrap() {
            n += 1;
            let answer = Answer {
                call: if n.is_multiple_of(3) { Call::Real } else { Call::Artificial },
                confidence: 1 + n % 5,
                free_text: n.is_multiple_of(2).then(|| "edge, \"sharp\"\nline".to_owned()),
                giveaway: None,
            };
            session.submit(reader, case.token, &answer).unwrap();
        }
    }
}

#[test]
fn new_status_export_analyze_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (real, artificial) = study_common::make_image_folders(dir.path(), 8, 8);
    let db = dir.path().join("study.sqlite");
    let created = json(&[
        "study",
        "new",
        "--real",
        s(&real),
        "--artificial",
        s(&artificial),
        "--readers",
        "alice,bob",
        "--cases",
        "10",
        "--practice",
        "2",
        "--seed",
        "5",
        "--out",
        s(&db),
        "--display-size",
        "32",
        "--free-text",
        "--json",
    ]);
    assert_eq!(created["main_cases"], 10);
    assert_eq!(created["real_cases"], 5);
    assert_eq!(created["practice_cases"], 2);
    assert_eq!(created["seed"], 5);
    assert_eq!(created["readers"].as_array().unwrap().len(), 2);
    assert!(created["readers"][0]["seed"].as_u64().is_some());

    let status = json(&["study", "status", s(&db), "--json"]);
    assert_eq!(status["main_cases"], 10);
    assert_eq!(status["readers"][0]["main_answered"], 0);
    assert_eq!(status["readers"][0]["finished"], false);

    read_everything(&db);
    let status = json(&["study", "status", s(&db), "--json"]);
    assert_eq!(status["readers"][1]["main_answered"], 10);
    assert_eq!(status["readers"][1]["finished"], true);

    let csv = dir.path().join("answers.csv");
    let imrmc = dir.path().join("study.imrmc");
    let exported = json(&["study", "export", s(&db), "--answers", s(&csv), "--imrmc", s(&imrmc), "--json"]);
    assert_eq!(exported["answer_rows"], 24);
    assert_eq!(exported["imrmc_score_rows"], 20);
    let imrmc_text = std::fs::read_to_string(&imrmc).unwrap();
    assert!(imrmc_text.contains("BEGIN DATA:\ntruth, case-0001, truth, "));
    // An export never lands on the study itself, and its two files never on each other.
    let onto_study = thorax(&["study", "export", s(&db), "--answers", s(&db)]);
    let stderr = String::from_utf8_lossy(&onto_study.stderr);
    assert!(!onto_study.status.success() && stderr.contains("is the study database"), "{stderr}");
    let both = thorax(&["study", "export", s(&db), "--answers", s(&csv), "--imrmc", s(&csv)]);
    let stderr = String::from_utf8_lossy(&both.stderr);
    assert!(!both.status.success() && stderr.contains("--answers and --imrmc both name"), "{stderr}");
    assert_eq!(json(&["study", "status", s(&db), "--json"])["readers"][1]["main_answered"], 10, "the study is intact");

    let from_study = json(&["study", "analyze", s(&db), "--json", "--seed", "1"]);
    // The exported iMRMC file states the study's call threshold, so no --call-threshold is needed.
    let from_imrmc = json(&["study", "analyze", "--imrmc", s(&imrmc), "--json", "--seed", "1"]);
    assert_eq!(from_imrmc["call_threshold"], 6.0);
    let from_csv = json(&["study", "analyze", "--answers", s(&csv), "--json", "--seed", "1"]);
    let study_modality = &from_study["modalities"][0];
    assert_eq!(study_modality["readers"].as_array().unwrap().len(), 2);
    assert_eq!(from_study["call_threshold"], 6.0);
    for other in [&from_imrmc, &from_csv] {
        let modality = &other["modalities"][0];
        for key in ["auc", "accuracy", "binomial_p", "sensitivity", "specificity", "auc_ci"] {
            assert_eq!(modality["pooled"][key], study_modality["pooled"][key], "{key}");
            assert_eq!(modality["readers"][0][key], study_modality["readers"][0][key], "{key}");
        }
        assert_eq!(modality["fleiss"]["kappa"], study_modality["fleiss"]["kappa"]);
        // Weighted kappa counts every rating of the study's scale, answered or not: the exports state the scale.
        for key in ["cohen_kappa", "weighted_kappa_linear", "weighted_kappa_quadratic"] {
            let (got, want) = (&modality["pairwise_agreement"][0][key], &study_modality["pairwise_agreement"][0][key]);
            assert!(want.is_number(), "{key}: {want}");
            assert_eq!(got, want, "{key}");
        }
    }
    // An answers CSV given where the study goes is named with the flag that takes it.
    let output = thorax(&["study", "analyze", s(&csv)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("an answers CSV goes with --answers"), "{stderr}");
    // A threshold that no rating of the stated scale can fall on both sides of is a typing mistake.
    for (source, threshold, all) in [("--answers", "11", "real"), ("--imrmc", "1", "artificial")] {
        let file = if source == "--answers" { &csv } else { &imrmc };
        let output = thorax(&["study", "analyze", source, s(file), "--call-threshold", threshold]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && output.stdout.is_empty(), "{stderr}");
        assert!(stderr.contains(&format!("every possible rating would be called \"{all}\"")), "{stderr}");
    }
    // Times travel through the CSV, not through iMRMC.
    assert!(from_csv["modalities"][0]["pooled"]["time_per_case"]["cases"].as_u64() == Some(20));
    assert!(from_imrmc["modalities"][0]["pooled"]["time_per_case"].is_null());
}

#[test]
fn analyze_imrmc_fixture_prints_golden_values() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/study/reading.imrmc");
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/study/reading_golden.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let report = json(&["study", "analyze", "--imrmc", s(&fixture), "--call-threshold", "6", "--json"]);
    let modality = &report["modalities"][0];
    assert_eq!(modality["modality"], "blinded");
    for reader in modality["readers"].as_array().unwrap() {
        let want = &golden["per_reader"][reader["reader"].as_str().unwrap()];
        for key in ["auc", "accuracy", "binomial_p", "sensitivity", "specificity"] {
            let (got, want) = (reader[key].as_f64().unwrap(), want[key].as_f64().unwrap());
            assert!((got - want).abs() < 1e-10, "{key}: {got} vs {want}");
        }
        let ci = &reader["auc_ci"];
        assert!(ci["lower"].as_f64().unwrap() < reader["auc"].as_f64().unwrap());
        assert_eq!(ci["resamples"], 2000);
    }
    let pooled_auc = modality["pooled"]["auc"].as_f64().unwrap();
    assert!((pooled_auc - golden["pooled"]["auc"].as_f64().unwrap()).abs() < 1e-12);
    assert!(modality["fleiss"]["kappa"].as_f64().is_some());
    assert_eq!(modality["pairwise_agreement"].as_array().unwrap().len(), 3);
}

#[test]
fn cli_errors_are_clear_and_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/study/reading.imrmc");
    let output = thorax(&["study", "analyze", "--imrmc", s(&fixture), "--json"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("states no call threshold") && stderr.contains("--call-threshold"), "{stderr}");
    assert!(output.stdout.is_empty());

    let (real, artificial) = study_common::make_image_folders(dir.path(), 2, 2);
    let labels = dir.path().join("labels.csv");
    std::fs::write(&labels, "file,Edema\npatient_000.png,1\nghost_77.png,0\n").unwrap();
    let db = dir.path().join("s.sqlite");
    let output = thorax(&[
        "study",
        "new",
        "--real",
        s(&real),
        "--real-labels",
        s(&labels),
        "--artificial",
        s(&artificial),
        "--readers",
        "alice",
        "--cases",
        "2",
        "--seed",
        "1",
        "--out",
        s(&db),
        "--json",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("lists 1 image(s) that are not in") && stderr.contains("first: ghost_77.png"), "{stderr}");
    assert!(!db.exists());

    // One folder as both sides would show real images as artificial cases.
    let new_from = |artificial: &Path| {
        thorax(&[
            "study",
            "new",
            "--real",
            s(&real),
            "--artificial",
            s(artificial),
            "--readers",
            "alice",
            "--cases",
            "2",
            "--seed",
            "1",
            "--out",
            s(&db),
        ])
    };
    let output = new_from(&real.join("."));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is the --real folder"), "{output:?}");
    assert!(!output.status.success() && !db.exists());

    let output = thorax(&["study", "status", s(&dir.path().join("nope.sqlite")), "--json"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("nope.sqlite"));
}

#[test]
fn new_with_the_generator_replays_real_labels_and_records_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let (real, _) = study_common::make_image_folders(dir.path(), 6, 0);
    let labels_csv = dir.path().join("labels.csv");
    let mut csv = String::from("file,findings\n");
    let files = thorax::study::sources::list_image_files(&real).unwrap();
    for (i, path) in files.iter().enumerate() {
        let finding = if i % 2 == 0 { "Cardiomegaly|Effusion" } else { "No Finding" };
        csv.push_str(&format!("{},{finding}\n", path.file_name().unwrap().to_str().unwrap()));
    }
    std::fs::write(&labels_csv, csv).unwrap();
    let db = dir.path().join("generated.sqlite");
    let args = [
        "study",
        "new",
        "--real",
        s(&real),
        "--real-labels",
        s(&labels_csv),
        "--generator",
        "--readers",
        "alice",
        "--cases",
        "6",
        "--seed",
        "9",
        "--generator-seed",
        "100",
        "--device",
        "cpu",
        "--out",
        s(&db),
        "--display-size",
        "64",
        "--json",
    ];
    let created = json(&args);
    assert_eq!(created["artificial_cases"], 3);
    let store = thorax::study::StudyStore::open(&db).unwrap();
    let artificial: Vec<_> = store
        .cases()
        .unwrap()
        .into_iter()
        .filter(|case| case.provenance == thorax::study::Provenance::Artificial)
        .collect();
    assert_eq!(artificial.len(), 3);
    let mut seeds: Vec<&str> = Vec::new();
    for case in &artificial {
        assert!(case.source.starts_with("generator embedded default generator sha256="), "{}", case.source);
        seeds.push(case.source.split(" seed=").nth(1).unwrap().split(' ').next().unwrap());
        // Replayed from a real case: either both findings or none.
        let value = |name: &str| case.labels.get(name).map(String::as_str);
        assert_eq!(value("Cardiomegaly"), value("Effusion"), "{:?}", case.labels);
    }
    seeds.sort();
    assert_eq!(seeds, ["100", "101", "102"]);
    assert!(artificial.iter().any(|case| case.labels.get("Cardiomegaly").map(String::as_str) == Some("1")));

    // Without a labels CSV there is nothing to replay: a clear refusal.
    let mut no_csv: Vec<&str> = args.to_vec();
    no_csv.drain(4..6);
    let refused = thorax(&no_csv);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--real-labels"));

    // Every row is checked before any case is made, and the error names the line and the image.
    let mut bad = String::from("file,Cardiomegaly\n");
    for (i, path) in files.iter().enumerate() {
        let value = if i == 4 { "yes" } else { "0" };
        bad.push_str(&format!("{},{value}\n", path.file_name().unwrap().to_str().unwrap()));
    }
    std::fs::write(&labels_csv, bad).unwrap();
    let other_db = dir.path().join("bad.sqlite");
    let mut with_bad_labels: Vec<&str> = args.to_vec();
    let out_at = with_bad_labels.iter().position(|a| *a == "--out").unwrap() + 1;
    with_bad_labels[out_at] = s(&other_db);
    let refused = thorax(&with_bad_labels);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("line 6") && stderr.contains("\"yes\""), "{stderr}");
    assert!(!other_db.exists());
}

/// Folders `real` (three 96x80 films) and `artificial` (three square images of `artificial_px`) under `root`.
fn real_and_artificial_folders(root: &Path, artificial_px: u32) -> (std::path::PathBuf, std::path::PathBuf) {
    let (real, artificial) = (root.join("real"), root.join("artificial"));
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(&artificial).unwrap();
    for i in 0..3 {
        study_common::write_image(&real, &format!("r{i}.png"), "gray8", 96, 80, i);
        study_common::write_image(&artificial, &format!("a{i}.png"), "gray8", artificial_px, artificial_px, i + 10);
    }
    (real, artificial)
}

#[test]
fn new_with_harmonised_real_cases_records_the_cyclegan() {
    let dir = tempfile::tempdir().unwrap();
    let (real, artificial) = real_and_artificial_folders(dir.path(), 64);
    // By default at the generator's training scale (the embedded one's is 64 px); --harmonise-scale native keeps
    // each real image's own pixels. The case provenance says which.
    for (scale, said) in [(None, "at its training scale (64 px)"), (Some("native"), "at the image's own scale")] {
        let matched = scale.is_some();
        let db = dir.path().join(format!("harmonised-{}.sqlite", scale.unwrap_or("default")));
        let mut arguments = vec![
            "study",
            "new",
            "--real",
            s(&real),
            "--artificial",
            s(&artificial),
            "--harmonise-real",
            "--readers",
            "alice",
            "--cases",
            "4",
            "--seed",
            "3",
            "--device",
            "cpu",
            "--out",
            s(&db),
            "--display-size",
            "64",
            "--json",
        ];
        match scale {
            // The native-scale run also brings the 96x80 real cases down to the artificial 64 px, after the CycleGAN
            // (the default); the other keeps the resolution the CycleGAN gave them.
            Some(scale) => arguments.extend(["--harmonise-scale", scale]),
            None => arguments.push("--keep-resolution"),
        }
        json(&arguments);
        let store = thorax::study::StudyStore::open(&db).unwrap();
        let cases = store.cases().unwrap();
        for case in &cases {
            let harmonised =
                case.source.contains("(harmonised NIH -> Guangzhou by CycleGAN embedded default CycleGAN sha256=");
            assert_eq!(harmonised, case.provenance == thorax::study::Provenance::Real, "{}", case.source);
            assert_eq!(case.source.contains(said), harmonised, "{}", case.source);
            let brought_down = case.source.contains(", then brought down to 64 px, the artificial cases' resolution");
            assert_eq!(brought_down, harmonised && matched, "{}", case.source);
        }
    }
}

#[test]
fn real_cases_are_matched_to_the_median_artificial_side_and_mixed_sizes_are_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    let (real, artificial) = real_and_artificial_folders(dir.path(), 48);
    // One artificial outlier, larger than the real films, must not switch the matching off.
    study_common::write_image(&artificial, "a3.png", "gray8", 128, 128, 13);
    let db = dir.path().join("mixed.study");
    let output = thorax(&[
        "study",
        "new",
        "--real",
        s(&real),
        "--artificial",
        s(&artificial),
        "--readers",
        "alice",
        "--cases",
        "4",
        "--seed",
        "3",
        "--out",
        s(&db),
        "--display-size",
        "64",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("differ in size (48 to 128 px") && stderr.contains("the median, 48 px"), "{stderr}");
    let store = thorax::study::StudyStore::open(&db).unwrap();
    let real_cases: Vec<_> =
        store.cases().unwrap().into_iter().filter(|case| case.provenance == thorax::study::Provenance::Real).collect();
    assert!(!real_cases.is_empty());
    for case in &real_cases {
        assert!(case.source.contains("brought down to 48 px"), "{}", case.source);
    }
}

/// Real films from `tests/fixtures/train` (32 px): four as the real pool, four more standing in for artificial images.
fn fixture_film_folders(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let films = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train");
    let (real, artificial) = (root.join("real"), root.join("artificial"));
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(&artificial).unwrap();
    for i in 0..4 {
        let (r, a) = (format!("train_{i:02}.png"), format!("train_{:02}.png", i + 4));
        std::fs::copy(films.join(&r), real.join(&r)).unwrap();
        std::fs::copy(films.join(&a), artificial.join(&a)).unwrap();
    }
    (real, artificial)
}

fn new_study_args<'a>(real: &'a Path, artificial: &'a Path, out: &'a Path) -> Vec<&'a str> {
    let flags = ["--readers", "alice", "--cases", "4", "--practice", "2", "--seed", "9", "--display-size", "32"];
    let mut args = vec!["study", "new", "--real", s(real), "--artificial", s(artificial), "--out", s(out)];
    args.extend(flags);
    args
}

#[test]
fn a_border_crop_is_recorded_and_applied_to_every_case() {
    let dir = tempfile::tempdir().unwrap();
    let (real, artificial) = fixture_film_folders(dir.path());
    let (plain, cropped) = (dir.path().join("plain.sqlite"), dir.path().join("cropped.sqlite"));
    let plain_created = json(&[new_study_args(&real, &artificial, &plain), vec!["--json"]].concat());
    assert_eq!(plain_created["border_crop_percent"], 0);
    let created =
        json(&[new_study_args(&real, &artificial, &cropped), vec!["--border-crop-percent", "10", "--json"]].concat());
    assert_eq!(created["border_crop_percent"], 10);

    let status = json(&["study", "status", s(&cropped), "--json"]);
    assert_eq!(status["design"]["display"]["border_crop_percent"], 10);
    // Builds from before the crop must refuse this study rather than report and copy it without the crop.
    assert_eq!(status["design"]["format_version"], 2);
    assert_eq!(status["metadata"]["border_crop_percent"], "10");
    let plain_status = json(&["study", "status", s(&plain), "--json"]);
    assert_eq!(plain_status["design"]["display"]["border_crop_percent"], 0);
    assert_eq!(plain_status["design"]["format_version"], 1, "a study without a crop stays readable by older builds");
    let text = thorax(&["study", "status", s(&cropped)]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("display: 32 px, 8-bit, lanczos3, border crop 10% per side"), "{stdout}");

    // The same seed picks the same cases; the crop changes every one of them, real and artificial, practice too.
    let (plain, cropped) = (StudyStore::open(&plain).unwrap(), StudyStore::open(&cropped).unwrap());
    let cases = cropped.cases().unwrap();
    assert_eq!(cases, plain.cases().unwrap());
    let kinds: std::collections::BTreeSet<_> = cases.iter().map(|c| (c.provenance.as_str(), c.practice)).collect();
    assert_eq!(kinds.len(), 4, "real and artificial, main and practice: {kinds:?}");
    for case in &cases {
        let (with, without) =
            (cropped.display_image(&case.case_id).unwrap(), plain.display_image(&case.case_id).unwrap());
        assert_eq!((with.width_px(), with.height_px()), (32, 32));
        // (Not assert_ne: a failure would print two thousand pixel values.)
        assert!(with.pixels() != without.pixels(), "{} is not cropped", case.case_id);
    }
}

#[test]
fn a_border_crop_out_of_range_is_refused_by_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (real, artificial) = fixture_film_folders(dir.path());
    let out = dir.path().join("study.sqlite");
    for bad in ["26", "-5", "ten", "12.5"] {
        let flag = format!("--border-crop-percent={bad}");
        let output = thorax(&[new_study_args(&real, &artificial, &out), vec![flag.as_str()]].concat());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{bad}: {stderr}");
        assert!(stderr.contains("--border-crop-percent") && stderr.contains("0 (no crop) to 25"), "{bad}: {stderr}");
        assert!(!out.exists(), "{bad}: no study is written");
    }
}

#[test]
fn a_study_from_before_the_border_crop_reads_as_uncropped() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/study/schema_v1/master.study");
    let db = dir.path().join("master.study");
    std::fs::copy(fixture, &db).unwrap();
    let status = json(&["study", "status", s(&db), "--json"]);
    assert_eq!(status["design"]["format_version"], 1);
    assert_eq!(status["design"]["display"]["border_crop_percent"], 0);
    let text = thorax(&["study", "status", s(&db)]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("no border crop"), "{text:?}");
}

#[test]
fn gui_refuses_a_study_that_is_no_file_before_opening_a_window() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("station.study");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"))
        .args(["gui", "--study"])
        .arg(&missing)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--study") && stderr.contains("station.study: there is no such file"), "{stderr}");
    assert!(!stderr.contains("window could not be opened"), "refused before the window: {stderr}");
    let output =
        std::process::Command::new(env!("CARGO_BIN_EXE_thorax")).args(["gui", "--reader", "alice"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "--reader needs --study");
}
