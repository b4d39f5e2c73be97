//! Named outputs are never replaced silently: a command that would write over an existing file is refused, with the
//! file named and `--overwrite` offered, before it does any work or writes anything (every name of a batch is checked
//! first); with `--overwrite` the file is replaced.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SENTINEL: &[u8] = b"a file the user already had";

fn thorax(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_thorax")).env("RUST_BACKTRACE", "0").args(args).output().unwrap()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(relative)
}

/// Asserts a refused run: exit status 1, the message names `file` and `--overwrite`, nothing on stdout.
fn assert_refused(output: &Output, file: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(file) && stderr.contains("already exist"), "names the file: {stderr}");
    assert!(stderr.contains("--overwrite"), "says how to proceed: {stderr}");
    assert!(output.stdout.is_empty(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn assert_success(output: &Output) {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// The names in `dir`, sorted (hidden temporary files included, so a stray one shows).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn write_gray_png(path: &Path, side_px: u32) {
    let image = image::GrayImage::from_fn(side_px, side_px, |x, y| image::Luma([((x * 5 + y * 11) % 256) as u8]));
    image.save(path).unwrap();
}

#[test]
fn generate_refuses_to_replace_any_image_of_the_batch_or_the_npy() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fakes");
    let generate = |extra: &[&str]| {
        let mut args = vec!["generate", "--labels", "", "--seed", "3", "-n", "3", "--out", s(&out)];
        args.extend_from_slice(extra);
        thorax(&args)
    };
    assert_success(&generate(&[]));
    // Only the last image of the batch is in the way: the run is refused before the first is written, and the new
    // --out-npy of the same run is not started.
    std::fs::write(out.join("fake_2.png"), SENTINEL).unwrap();
    let first_before = std::fs::read(out.join("fake_0.png")).unwrap();
    let npy = dir.path().join("raw.npy");
    let output = generate(&["--out-npy", s(&npy)]);
    assert_refused(&output, "fake_2.png");
    assert_eq!(std::fs::read(out.join("fake_2.png")).unwrap(), SENTINEL);
    assert_eq!(std::fs::read(out.join("fake_0.png")).unwrap(), first_before);
    assert!(!npy.exists(), "a refused run writes nothing");
    assert_eq!(names_in(&out), ["fake_0.png", "fake_1.png", "fake_2.png"]);

    // Three files in the way are counted and named.
    std::fs::write(out.join("fake_0.png"), SENTINEL).unwrap();
    std::fs::write(out.join("fake_1.png"), SENTINEL).unwrap();
    let stderr = String::from_utf8_lossy(&generate(&[]).stderr).into_owned();
    assert!(stderr.contains("3 files") && stderr.contains("fake_0.png") && stderr.contains("fake_1.png"), "{stderr}");

    // An existing --out-npy alone is refused too (without --out).
    std::fs::write(&npy, SENTINEL).unwrap();
    let output = thorax(&["generate", "--labels", "", "--seed", "3", "--out-npy", s(&npy)]);
    assert_refused(&output, "raw.npy");
    assert_eq!(std::fs::read(&npy).unwrap(), SENTINEL);

    // --overwrite replaces them all, leaving no temporary file behind.
    assert_success(&generate(&["--out-npy", s(&npy), "--overwrite"]));
    assert_eq!(std::fs::read(out.join("fake_0.png")).unwrap(), first_before, "the same seed makes the same image");
    assert!(image::open(out.join("fake_2.png")).is_ok());
    assert!(std::fs::read(&npy).unwrap().starts_with(b"\x93NUMPY"));
    assert_eq!(names_in(&out), ["fake_0.png", "fake_1.png", "fake_2.png"]);
    assert_eq!(names_in(dir.path()), ["fakes", "raw.npy"]);
}

#[test]
fn translate_refuses_a_rerun_into_the_same_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first.png"), dir.path().join("second.png"));
    write_gray_png(&first, 32);
    write_gray_png(&second, 32);
    let out = dir.path().join("translated");
    let translate = |extra: &[&str]| {
        let mut args = vec!["translate", "--scale", "native", "--out", s(&out), s(&first), s(&second)];
        args.extend_from_slice(extra);
        thorax(&args)
    };
    assert_success(&translate(&[]));
    std::fs::write(out.join("second_a2b.png"), SENTINEL).unwrap();
    std::fs::remove_file(out.join("first_a2b.png")).unwrap();
    assert_refused(&translate(&[]), "second_a2b.png");
    assert_eq!(std::fs::read(out.join("second_a2b.png")).unwrap(), SENTINEL);
    assert_eq!(names_in(&out), ["second_a2b.png"], "the first image was not translated either");
    assert_success(&translate(&["--overwrite"]));
    assert!(image::open(out.join("second_a2b.png")).is_ok());
    assert_eq!(names_in(&out), ["first_a2b.png", "second_a2b.png"]);

    // The tensor form's --out-npy likewise.
    let input = dir.path().join("x.npy");
    thorax::convert::npy::write_npy_f32(&input, &[1, 1, 16, 16], &[0.25; 256]).unwrap();
    let out_npy = dir.path().join("y.npy");
    std::fs::write(&out_npy, SENTINEL).unwrap();
    let output = thorax(&["translate", "--tensor-npy", s(&input), "--out-npy", s(&out_npy)]);
    assert_refused(&output, "y.npy");
    assert_eq!(std::fs::read(&out_npy).unwrap(), SENTINEL);
    assert_success(&thorax(&["translate", "--tensor-npy", s(&input), "--out-npy", s(&out_npy), "--overwrite"]));
    assert!(std::fs::read(&out_npy).unwrap().starts_with(b"\x93NUMPY"));
}

#[test]
fn dicom_export_sc_and_render_refuse_an_existing_out() {
    let dir = tempfile::tempdir().unwrap();
    let png = fixture("dicom/sc_source.png");
    let sc = dir.path().join("sc.dcm");
    std::fs::write(&sc, SENTINEL).unwrap();
    let export = |extra: &[&str]| {
        let sha = "0".repeat(64);
        let mut args = vec!["dicom", "export-sc", s(&png), "--out", s(&sc), "--model-sha256", &sha, "--seed", "1"];
        args.extend_from_slice(&["--labels", ""]);
        args.extend_from_slice(extra);
        thorax(&args)
    };
    assert_refused(&export(&[]), "sc.dcm");
    assert_eq!(std::fs::read(&sc).unwrap(), SENTINEL);
    assert_success(&export(&["--overwrite"]));
    assert!(thorax::imaging::dicom::read_dicom_image(&sc).is_ok());

    let rendered = dir.path().join("sc.png");
    std::fs::write(&rendered, SENTINEL).unwrap();
    let render = |extra: &[&str]| {
        let mut args = vec!["dicom", "render", s(&sc), "--out", s(&rendered)];
        args.extend_from_slice(extra);
        thorax(&args)
    };
    assert_refused(&render(&[]), "sc.png");
    assert_eq!(std::fs::read(&rendered).unwrap(), SENTINEL);
    assert_success(&render(&["--overwrite"]));
    assert!(image::open(&rendered).is_ok());
    assert_eq!(names_in(dir.path()), ["sc.dcm", "sc.png"]);
}

#[test]
fn classify_refuses_to_replace_heatmaps_before_computing_any() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a.png"), dir.path().join("b.png"));
    write_gray_png(&first, 64);
    write_gray_png(&second, 64);
    let maps = dir.path().join("maps");
    std::fs::create_dir(&maps).unwrap();
    // The last file of the last input's heatmap is in the way.
    let in_the_way = maps.join("b_Mass_cam_map.npy");
    std::fs::write(&in_the_way, SENTINEL).unwrap();
    let classify = |extra: &[&str]| {
        let mut args = vec!["classify", s(&first), s(&second), "--heatmap", s(&maps), "--target", "Mass"];
        args.extend_from_slice(extra);
        thorax(&args)
    };
    assert_refused(&classify(&[]), "b_Mass_cam_map.npy");
    assert_eq!(std::fs::read(&in_the_way).unwrap(), SENTINEL);
    assert_eq!(names_in(&maps), ["b_Mass_cam_map.npy"], "no heatmap of the first input either");
    assert_success(&classify(&["--overwrite"]));
    assert!(std::fs::read(&in_the_way).unwrap().starts_with(b"\x93NUMPY"));
    assert_eq!(names_in(&maps).len(), 6);
}

#[test]
fn study_export_refuses_to_replace_an_earlier_export() {
    let dir = tempfile::tempdir().unwrap();
    let design = crate::study_common::small_design(&["alice"], 16, thorax::study::design::DisplayBitDepth::Eight);
    let study = crate::study_common::make_tiny_study(dir.path(), &design, 4, 0);
    let (answers, imrmc) = (dir.path().join("answers.csv"), dir.path().join("scores.imrmc"));
    std::fs::write(&imrmc, SENTINEL).unwrap();
    let export = |extra: &[&str]| {
        let mut args = vec!["study", "export", s(&study), "--answers", s(&answers), "--imrmc", s(&imrmc)];
        args.extend_from_slice(extra);
        thorax(&args)
    };
    assert_refused(&export(&[]), "scores.imrmc");
    assert!(!answers.exists(), "the answers CSV was not written either");
    assert_eq!(std::fs::read(&imrmc).unwrap(), SENTINEL);
    assert_success(&export(&["--overwrite"]));
    assert!(std::fs::read_to_string(&imrmc).unwrap().contains("BEGIN DATA:"));
    assert!(std::fs::read_to_string(&answers).unwrap().starts_with("reader_id,"));
}

#[test]
fn convert_refuses_an_existing_output_before_reading_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = fixture("cyclegan/gray_ngf8_b3.pth");
    let out = dir.path().join("g.safetensors");
    std::fs::write(&out, SENTINEL).unwrap();
    let convert = |extra: &[&str]| {
        let mut args = vec!["convert", "cyclegan", s(&checkpoint), s(&out)];
        args.extend_from_slice(extra);
        thorax(&args)
    };
    assert_refused(&convert(&[]), "g.safetensors");
    assert_eq!(std::fs::read(&out).unwrap(), SENTINEL);
    assert_success(&convert(&["--overwrite"]));
    assert!(thorax::models::registry::read_card(&std::fs::read(&out).unwrap()).is_ok());
    assert_eq!(names_in(dir.path()), ["g.safetensors"]);
}

#[test]
fn correlate_refuses_to_replace_an_earlier_run_before_generating() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("correlation");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("summary.json"), SENTINEL).unwrap();
    let output = thorax(&["correlate", "--per-label", "2", "--out", s(&out)]);
    assert_refused(&output, "summary.json");
    assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), SENTINEL);
    assert_eq!(names_in(&out), ["summary.json"], "nothing else was written");
}

#[test]
fn a_new_training_run_refuses_to_replace_an_earlier_sample_grid_before_the_first_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = fixture("train");
    let (out, samples) = (dir.path().join("g.safetensors"), dir.path().join("samples.png"));
    std::fs::write(&samples, SENTINEL).unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "gan", "--images", s(&data), "--labels"];
        let labels = data.join("labels.csv");
        let labels = labels.to_str().unwrap().to_owned();
        args.push(&labels);
        args.extend_from_slice(&["--resolution", "32", "--fmap-max", "16", "--fmap-base", "64", "--latent-size", "32"]);
        args.extend_from_slice(&["--batch", "4", "--steps", "1", "--device", "cpu"]);
        args.extend_from_slice(&["--samples", s(&samples), "--out", s(&out)]);
        args.extend_from_slice(extra);
        thorax(&args)
    };
    assert_refused(&train(&[]), "samples.png");
    assert_eq!(std::fs::read(&samples).unwrap(), SENTINEL);
    assert_eq!(names_in(dir.path()), ["samples.png"], "no checkpoint or model: the run did not start");
    assert_success(&train(&["--overwrite"]));
    assert!(image::open(&samples).is_ok());
    assert!(out.is_file());
}
