//! The three labels-CSV layouts on tiny fake trees built from the 16 fixture radiographs: an NIH ChestX-ray14 tree
//! (images spread over `images_001/images/`, `images_002/images/`, `images/` and the folder itself) and a CheXpert
//! tree (`CheXpert-v1.0-small/train/patientNNNNN/studyN/viewN_frontal.jpg`, half real JPEGs, half PNG bytes named
//! `.jpg`, which the decoder recognises by content). Checks labels and masks per row under the three uncertainty
//! policies, the NIH name mapping, frontal filtering, patient ids, detection, both training CLIs for one step on
//! each layout, and the errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use thorax::models::labels::NIH_CLASSIFIER_LABELS;
use thorax::train::chexpert_layout::CHEXPERT_OBSERVATIONS;
use thorax::train::dataset::GanDataset;
use thorax::train::dataset_layout::{DatasetLayout, LayoutOptions, UncertainPolicy, read_labeled_rows, resolve_layout};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train")
}

fn labels() -> Vec<String> {
    NIH_CLASSIFIER_LABELS.iter().map(|s| s.to_string()).collect()
}

/// The fixtures' `findings` cells, in file order.
fn fixture_findings() -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join("labels.csv")).unwrap();
    text.lines().skip(1).map(|line| line.split(',').nth(1).unwrap().to_owned()).collect()
}

/// Where NIH image `index` goes in the fake tree.
fn nih_folder(index: usize) -> &'static str {
    match index {
        0..=5 => "images_001/images",
        6..=11 => "images_002/images",
        12..=13 => "images",
        _ => "",
    }
}

fn nih_name(index: usize) -> String {
    format!("{:08}_{:03}.png", index / 2 + 1, index % 2)
}

/// An NIH tree: image `i` belongs to patient `i / 2 + 1` (8 patients).
fn nih_tree(root: &Path) -> PathBuf {
    let mut csv = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,\
                   OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
        .to_owned();
    for (index, findings) in fixture_findings().iter().enumerate() {
        let folder = root.join(nih_folder(index));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(fixtures().join(format!("train_{index:02}.png")), folder.join(nih_name(index))).unwrap();
        csv.push_str(&format!(
            "{},{findings},{},{},50,M,PA,32,32,0.1,0.1,\n",
            nih_name(index),
            index % 2,
            index / 2 + 1
        ));
    }
    let path = root.join("Data_Entry_2017_v2020.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// The CheXpert cell of image `index`, observation `column`: cycles through positive, negative, uncertain, blank.
fn chexpert_cell(index: usize, column: usize) -> &'static str {
    ["1.0", "0.0", "-1.0", ""][(index + column) % 4]
}

fn chexpert_is_lateral(index: usize) -> bool {
    index % 4 == 3
}

fn chexpert_relative(index: usize) -> String {
    let view = if chexpert_is_lateral(index) { "view2_lateral" } else { "view1_frontal" };
    format!("CheXpert-v1.0-small/train/patient{:05}/study1/{view}_{index:02}.jpg", index / 2 + 1)
}

/// A CheXpert tree under `root` (which holds `CheXpert-v1.0-small`): image `i` of patient `i / 2 + 1`, every fourth
/// a lateral view; even images are real JPEGs, odd ones PNG bytes with a `.jpg` name.
fn chexpert_tree(root: &Path) -> PathBuf {
    let mut csv = format!("Path,Sex,Age,Frontal/Lateral,AP/PA,{}\n", CHEXPERT_OBSERVATIONS.join(","));
    for index in 0..16 {
        let target = root.join(chexpert_relative(index));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let source = fixtures().join(format!("train_{index:02}.png"));
        if index % 2 == 0 {
            image::open(&source).unwrap().to_luma8().save_with_format(&target, image::ImageFormat::Jpeg).unwrap();
        } else {
            std::fs::copy(&source, &target).unwrap();
        }
        let (view, ap_pa) = if chexpert_is_lateral(index) { ("Lateral", "") } else { ("Frontal", "AP") };
        let cells: Vec<&str> = (0..CHEXPERT_OBSERVATIONS.len()).map(|c| chexpert_cell(index, c)).collect();
        csv.push_str(&format!("{},Female,60,{view},{ap_pa},{}\n", chexpert_relative(index), cells.join(",")));
    }
    let path = root.join("CheXpert-v1.0-small").join("train.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// The CheXpert observation an NIH label is read from, restated here so that the mapping is checked.
fn expected_observation(label: &str) -> Option<&'static str> {
    match label {
        "Atelectasis" => Some("Atelectasis"),
        "Cardiomegaly" => Some("Cardiomegaly"),
        "Effusion" => Some("Pleural Effusion"),
        "Pneumonia" => Some("Pneumonia"),
        "Pneumothorax" => Some("Pneumothorax"),
        "Consolidation" => Some("Consolidation"),
        "Edema" => Some("Edema"),
        _ => None,
    }
}

fn options(layout: Option<DatasetLayout>, uncertain: UncertainPolicy, frontal_only: Option<bool>) -> LayoutOptions {
    LayoutOptions { layout, uncertain, frontal_only }
}

#[test]
fn nih_tree_reads_labels_paths_and_patients() {
    let dir = tempfile::tempdir().unwrap();
    let csv = nih_tree(dir.path());
    assert_eq!(resolve_layout(&csv, None).unwrap(), DatasetLayout::Nih);
    let rows = read_labeled_rows(dir.path(), &csv, &labels(), &LayoutOptions::default()).unwrap();
    assert_eq!(rows.len(), 16);
    for (index, (row, findings)) in rows.iter().zip(fixture_findings()).enumerate() {
        assert_eq!(row.path, dir.path().join(nih_folder(index)).join(nih_name(index)));
        assert_eq!(row.patient_id.as_deref(), Some((index / 2 + 1).to_string().as_str()));
        let expected: Vec<f32> = labels().iter().map(|l| f32::from(findings.split('|').any(|f| f == l))).collect();
        assert_eq!(row.labels, expected, "row {index} ({findings})");
        assert_eq!(row.mask, vec![1.0; 14]);
    }
    let data = GanDataset::load(dir.path(), &csv, 32, &labels()).unwrap();
    assert_eq!(data.len(), 16);
    assert_eq!(data.label_counts().iter().sum::<usize>(), 28);
}

#[test]
fn chexpert_tree_follows_each_uncertainty_policy() {
    let dir = tempfile::tempdir().unwrap();
    let csv = chexpert_tree(dir.path());
    assert_eq!(resolve_layout(&csv, None).unwrap(), DatasetLayout::Chexpert);
    for policy in [UncertainPolicy::Zeros, UncertainPolicy::Ones, UncertainPolicy::Ignore] {
        let rows = read_labeled_rows(dir.path(), &csv, &labels(), &options(None, policy, None)).unwrap();
        let frontal: Vec<usize> = (0..16).filter(|&i| !chexpert_is_lateral(i)).collect();
        assert_eq!(rows.len(), frontal.len(), "frontal views only by default");
        for (row, &index) in rows.iter().zip(&frontal) {
            assert_eq!(row.file, chexpert_relative(index));
            assert_eq!(row.path, dir.path().join(chexpert_relative(index)));
            assert_eq!(row.patient_id, Some(format!("patient{:05}", index / 2 + 1)));
            for (slot, label) in labels().iter().enumerate() {
                let (value, annotated) = match expected_observation(label) {
                    None => (0.0, 0.0),
                    Some(observation) => {
                        let column = CHEXPERT_OBSERVATIONS.iter().position(|o| *o == observation).unwrap();
                        match (chexpert_cell(index, column), policy) {
                            ("1.0", _) => (1.0, 1.0),
                            ("0.0", _) | ("", _) => (0.0, 1.0),
                            (_, UncertainPolicy::Zeros) => (0.0, 1.0),
                            (_, UncertainPolicy::Ones) => (1.0, 1.0),
                            (_, UncertainPolicy::Ignore) => (0.0, 0.0),
                        }
                    }
                };
                assert_eq!((row.labels[slot], row.mask[slot]), (value, annotated), "{policy:?} row {index} {label}");
            }
        }
    }
    // No_Finding, when asked for, comes from `No Finding`; laterals stay with --frontal-only false.
    let names = vec!["No_Finding".to_owned(), "Hernia".to_owned()];
    let rows = read_labeled_rows(
        dir.path(),
        &csv,
        &names,
        &options(Some(DatasetLayout::Chexpert), UncertainPolicy::Ones, Some(false)),
    )
    .unwrap();
    assert_eq!(rows.len(), 16);
    let no_finding: Vec<f32> = rows.iter().map(|r| r.labels[0]).collect();
    let expected: Vec<f32> = (0..16).map(|i| f32::from(matches!(chexpert_cell(i, 0), "1.0" | "-1.0"))).collect();
    assert_eq!(no_finding, expected);
    assert!(rows.iter().all(|r| r.mask == vec![1.0, 0.0]));

    // The images folder may be `CheXpert-v1.0-small` itself; JPEGs and PNG-in-.jpg both decode.
    let inner = dir.path().join("CheXpert-v1.0-small");
    let data = GanDataset::load(&inner, &csv, 32, &labels()).unwrap();
    assert_eq!(data.len(), 12);
    assert!(data.image_u8(0).unwrap().iter().any(|&p| p > 0));
    assert!(data.image_u8(1).unwrap().iter().any(|&p| p > 0));
}

#[test]
fn our_layout_reads_a_blank_findings_cell_as_unknown_and_no_finding_as_none() {
    let dir = tempfile::tempdir().unwrap();
    let source = fixtures().join("train_00.png");
    for name in ["a.png", "b.png", "c.png", "d.png"] {
        std::fs::copy(&source, dir.path().join(name)).unwrap();
    }
    let csv = dir.path().join("labels.csv");
    std::fs::write(
        &csv,
        "file,findings,labels_annotated\na.png,Cardiomegaly|Edema,\nb.png,No Finding,\nc.png,,\nd.png,,nih14\n",
    )
    .unwrap();
    let rows = read_labeled_rows(dir.path(), &csv, &labels(), &LayoutOptions::default()).unwrap();
    let all = vec![1.0; labels().len()];
    let slot = |name: &str| labels().iter().position(|l| l == name).unwrap();
    assert_eq!((rows[0].labels[slot("Cardiomegaly")], rows[0].labels[slot("Edema")]), (1.0, 1.0));
    assert_eq!(rows[0].mask, all);
    assert!(rows[1].labels.iter().all(|&v| v == 0.0) && rows[1].mask == all, "No Finding: annotated negatives");
    assert!(rows[2].mask.iter().all(|&v| v == 0.0), "blank: unknown, left out of every label's loss");
    assert_eq!(rows[3].mask, all, "blank findings that the row says were annotated: negatives");
}

fn run_thorax(args: &[&str], images: &Path, labels: &Path, out: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_thorax"));
    command.args(["train"]).args(args).arg("--images").arg(images).arg("--labels").arg(labels);
    command.args(["--device", "cpu", "--steps", "1", "--json"]).arg("--out").arg(out);
    command.output().unwrap()
}

fn train_gan(images: &Path, labels: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["gan", "--resolution", "32", "--fmap-max", "16", "--fmap-base", "64"];
    args.extend(["--latent-size", "32", "--batch", "4", "--no-augment"]);
    args.extend(extra);
    run_thorax(&args, images, labels, out)
}

fn train_classifier(images: &Path, labels: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["classifier", "--resolution", "32", "--growth-rate", "4", "--num-init-features", "8"];
    args.extend(["--block-config", "1,1,1,1", "--batch", "4", "--val-fraction", "0.25"]);
    args.extend(extra);
    run_thorax(&args, images, labels, out)
}

fn assert_one_step(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["steps"], 1);
    summary
}

#[test]
fn both_training_commands_run_a_step_on_each_layout() {
    let dir = tempfile::tempdir().unwrap();
    let nih_root = dir.path().join("nih");
    let nih_csv = nih_tree(&nih_root);
    let chexpert_root = dir.path().join("chexpert");
    let chexpert_csv = chexpert_tree(&chexpert_root);
    let ours_csv = fixtures().join("labels.csv");
    let out = |name: &str| dir.path().join(name);

    assert_one_step(&train_gan(&fixtures(), &ours_csv, &out("g-ours.safetensors"), &["--layout", "ours"]));
    assert_one_step(&train_gan(&nih_root, &nih_csv, &out("g-nih.safetensors"), &[]));
    let chexpert_flags = ["--layout", "chexpert", "--uncertain", "zeros", "--frontal-only"];
    assert_one_step(&train_gan(&chexpert_root, &chexpert_csv, &out("g-chexpert.safetensors"), &chexpert_flags));

    // Ours: no patient_id column, so each of the 16 rows is its own patient (4 in validation).
    let ours = train_classifier(&fixtures(), &ours_csv, &out("c-ours.safetensors"), &[]);
    assert_eq!(assert_one_step(&ours)["validation_images"], 4);
    assert!(String::from_utf8_lossy(&ours.stderr).contains("(12 / 4 patients)"));
    // NIH: 8 patients of 2 images each; a quarter of the patients is 2 patients, 4 images.
    let nih = train_classifier(&nih_root, &nih_csv, &out("c-nih.safetensors"), &["--layout", "nih"]);
    assert_eq!(assert_one_step(&nih)["validation_images"], 4);
    assert!(
        String::from_utf8_lossy(&nih.stderr).contains("(6 / 2 patients)"),
        "{}",
        String::from_utf8_lossy(&nih.stderr)
    );
    // CheXpert: 12 frontal views of 8 patients (`patientNNNNN`); with the laterals, 16 images of 8 patients.
    let chexpert = train_classifier(&chexpert_root, &chexpert_csv, &out("c-chexpert.safetensors"), &[]);
    let summary = assert_one_step(&chexpert);
    assert_eq!(summary["training_images"].as_u64().unwrap() + summary["validation_images"].as_u64().unwrap(), 12);
    assert!(String::from_utf8_lossy(&chexpert.stderr).contains("(6 / 2 patients)"));
    let all_views = ["--frontal-only", "false", "--uncertain", "ones"];
    let chexpert = train_classifier(&chexpert_root, &chexpert_csv, &out("c-chexpert2.safetensors"), &all_views);
    assert_eq!(assert_one_step(&chexpert)["validation_images"], 4);
}

#[test]
fn bad_layouts_and_rows_give_errors_that_name_file_row_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.safetensors");

    // A CheXpert value outside 1, 0, -1 and blank.
    let chexpert_csv = chexpert_tree(dir.path());
    let text = std::fs::read_to_string(&chexpert_csv).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[3] = lines[3].replacen(",1.0,", ",2,", 1);
    std::fs::write(&chexpert_csv, lines.join("\n")).unwrap();
    let result = train_gan(dir.path(), &chexpert_csv, &out, &[]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("train.csv") && stderr.contains("row 4") && stderr.contains("`2`"), "{stderr}");

    // An NIH image that is in none of the places searched.
    let nih_root = dir.path().join("nih");
    let nih_csv = nih_tree(&nih_root);
    std::fs::remove_file(nih_root.join(nih_folder(7)).join(nih_name(7))).unwrap();
    let result = train_classifier(&nih_root, &nih_csv, &out, &[]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("Data_Entry_2017_v2020.csv") && stderr.contains("row 9"), "{stderr}");
    assert!(
        stderr.contains(&nih_name(7)) && stderr.contains("images_001") && stderr.contains("images_002"),
        "{stderr}"
    );

    // A CSV of no known layout lists its columns; a forced layout names what it lacks.
    let odd = dir.path().join("odd.csv");
    std::fs::write(&odd, "name,diagnosis\ntrain_00.png,Cardiomegaly\n").unwrap();
    let result = train_gan(&fixtures(), &odd, &out, &[]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("odd.csv") && stderr.contains("name, diagnosis"), "{stderr}");
    let result = train_classifier(&fixtures(), &fixtures().join("labels.csv"), &out, &["--layout", "chexpert"]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("chexpert") && stderr.contains("Path") && stderr.contains("labels.csv"), "{stderr}");
}
