//! `thorax translate` on a batch: a bad input anywhere stops the run before any output is written, and an output
//! never lands on one of the inputs.

use std::path::Path;
use std::process::{Command, Output};

fn write_gray_png(path: &Path, side_px: u32) {
    let image = image::GrayImage::from_fn(side_px, side_px, |x, y| image::Luma([((x * 7 + y * 3) % 256) as u8]));
    image.save(path).unwrap();
}

fn translate(images: &[&Path], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_thorax"))
        .env("RUST_BACKTRACE", "0")
        .args(["translate", "--scale", "native", "--out"])
        .arg(out)
        .args(images)
        .output()
        .unwrap()
}

#[test]
fn a_bad_input_late_in_the_batch_stops_the_run_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.png");
    write_gray_png(&good, 32);
    let corrupt = dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let out = dir.path().join("translated");
    let output = translate(&[&good, &corrupt], &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("corrupt.png"), "names the bad file: {stderr}");
    assert!(!out.join("good_a2b.png").exists(), "the good input was translated before the bad one was seen");

    // So does an image too thin for the generator (256 x 3 px is 256 x 4 at the network size, below 8).
    let thin = dir.path().join("thin.png");
    image::GrayImage::new(256, 3).save(&thin).unwrap();
    let output = translate(&[&good, &thin], &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("thin.png") && stderr.contains("too small for the generator"), "{stderr}");
    assert!(!out.join("good_a2b.png").exists(), "the good input was translated before the thin one was seen");

    // A file where the output folder should be is named as such.
    let output = translate(&[&good], &good);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is a file: translate writes its PNGs into a folder"), "{stderr}");

    // With the bad file gone, the same run writes its output.
    let output = translate(&[&good], &out);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(out.join("good_a2b.png").is_file());
}

#[test]
fn an_output_that_would_replace_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("chest.png");
    write_gray_png(&first, 32);
    // The output of `chest.png` is `chest_a2b.png`, which is also the second input.
    let second = dir.path().join("chest_a2b.png");
    write_gray_png(&second, 36);
    let before = std::fs::read(&second).unwrap();
    let output = translate(&[&first, &second], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("chest_a2b.png") && stderr.contains("an input image"), "{stderr}");
    assert_eq!(std::fs::read(&second).unwrap(), before, "the input is untouched");
    assert!(!dir.path().join("chest_a2b_a2b.png").exists());
}
