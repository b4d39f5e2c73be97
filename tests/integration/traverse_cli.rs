//! `thorax traverse`: each frame is the image `thorax generate` makes for the same seed and label value.

use std::path::Path;
use std::process::Command;

pub(crate) fn thorax(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_thorax")).args(args).output().unwrap()
}

/// The frames of an animated GIF as grey levels (palette indices: the traversal's palette is grey level = index),
/// with their delays, and the file's bytes.
pub(crate) fn gif_frames(path: &Path) -> (Vec<Vec<u8>>, Vec<u16>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(bytes.as_slice()).unwrap();
    let palette = decoder.global_palette().unwrap().to_vec();
    let (mut frames, mut delays) = (Vec::new(), Vec::new());
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        frames.push(frame.buffer.iter().map(|&i| palette[3 * usize::from(i)]).collect());
        delays.push(frame.delay);
    }
    (frames, delays, bytes)
}

fn generated_png(dir: &Path, labels: &str) -> Vec<u8> {
    let out = dir.join(labels.replace(['=', ','], "_"));
    let output = thorax(&["generate", "--seed", "11", "--labels", labels, "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    image::open(out.join("fake_0.png")).unwrap().to_luma8().into_raw()
}

#[test]
fn each_frame_is_what_generate_makes_for_its_label_value() {
    let dir = tempfile::tempdir().unwrap();
    let gif = dir.path().join("cardiomegaly.gif");
    let args = [
        "traverse",
        "--label",
        "Cardiomegaly",
        "--labels",
        "Effusion=0.5",
        "--seed",
        "11",
        "--frames",
        "3",
        "--fps",
        "4",
        "--bounce",
        "--out",
        gif.to_str().unwrap(),
    ];
    let output = thorax(&args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (frames, delays, bytes) = gif_frames(&gif);
    // Forward 0, 0.5, 1 then back to 0.5 (the ends are not repeated).
    assert_eq!(frames.len(), 4);
    assert_eq!(delays, [25; 4], "4 frames per second");
    let labels = ["Cardiomegaly=0,Effusion=0.5", "Cardiomegaly=0.5,Effusion=0.5", "Cardiomegaly=1,Effusion=0.5"];
    for (frame, labels) in labels.into_iter().enumerate() {
        let expected = generated_png(dir.path(), labels);
        let differences: Vec<u8> = frames[frame].iter().zip(&expected).map(|(a, b)| a.abs_diff(*b)).collect();
        let (largest, count) = (differences.iter().max(), differences.iter().filter(|d| **d > 0).count());
        assert!(count == 0, "frame {frame} ({labels}): {count} pixels differ, by up to {largest:?}");
    }
    assert_eq!(frames[3], frames[1]);
    assert_ne!(frames[0], frames[2], "the label changes the image");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("Synthetic images: generated, no patient data"), "the provenance comment");

    // Refusals name what is wrong, and write nothing.
    let again = thorax(&args);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let other = dir.path().join("other.gif");
    let unknown = thorax(&["traverse", "--label", "Cardio", "--seed", "1", "--out", other.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        !unknown.status.success() && stderr.contains("--label Cardio") && stderr.contains("Cardiomegaly"),
        "{stderr}"
    );
    let one =
        thorax(&["traverse", "--label", "Edema", "--seed", "1", "--frames", "1", "--out", other.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&one.stderr).contains("--frames 1 is out of range"));
    assert!(!other.exists());
}
