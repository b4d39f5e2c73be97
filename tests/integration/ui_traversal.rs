//! File ▸ Export label traversal as GIF: the label traversal of the panel's generator, seed and sliders, through the save dialog.

use std::time::Duration;

use egui_kittest::kittest::Queryable as _;
use thorax::app::traversal_export::TraversalSweep;

use super::traverse_cli::{gif_frames, thorax};
use super::ui_workbench::{harness_with, ready, step_until, viewer_options};

#[test]
fn export_gif_sweeps_the_chosen_label_with_the_panels_seed() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    let dir = tempfile::tempdir().unwrap();
    thorax::app::path_dialog::set_dialog_backend(thorax::app::path_dialog::DialogBackend::BuiltIn);
    thorax::app::path_dialog::remember_folder(&harness.ctx, dir.path().to_path_buf());
    harness.state_mut().generator.seed = 11;
    harness.run_steps(3);
    harness.get_by_label("File").click();
    harness.run_steps(2);
    harness.get_by_label("Export label traversal as GIF").hover();
    harness.run_steps(3);
    assert!(harness.query_by_label_contains("seed 11").is_some(), "the menu says which seed");
    harness.get_by_label("Cardiomegaly...").click();
    harness.run_steps(4);
    assert!(harness.query_by_label("Export traversal GIF").is_some(), "the chooser is shown");
    harness.get_by_label("Save").click();
    let reported = |app: &thorax::app::WorkbenchApp| format!("{:?}", app.message).contains("traversal");
    step_until(&mut harness, Duration::from_secs(120), |app| !app.traversal.is_busy() && reported(app));
    let gif = dir.path().join("Cardiomegaly_seed11_traversal.gif");
    let message = format!("{:?}", harness.state().message);
    assert!(message.contains("Saved the Cardiomegaly traversal") && message.contains("seed 11"), "{message}");

    // 16 frames forward and 14 back; the ends are what `thorax generate` makes for the seed at 0 and 1.
    let (frames, _, bytes) = gif_frames(&gif);
    assert_eq!(frames.len(), 30);
    for (frame, labels) in [(0, ""), (15, "Cardiomegaly=1")] {
        let out = dir.path().join(format!("generated_{frame}"));
        let output = thorax(&["generate", "--seed", "11", "--labels", labels, "--out", out.to_str().unwrap()]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let expected = image::open(out.join("fake_0.png")).unwrap().to_luma8().into_raw();
        assert!(frames[frame] == expected, "frame {frame} differs from generate --labels {labels:?}");
    }
    assert_eq!(frames[16], frames[14], "back without repeating the end");
    assert!(String::from_utf8_lossy(&bytes).contains("Synthetic images: generated, no patient data"));
}

/// The submenu's range and frame count: a click inside it keeps it open, and the GIF follows the fields.
#[test]
fn the_traversal_menu_sets_the_range_and_the_frame_count() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    let dir = tempfile::tempdir().unwrap();
    thorax::app::path_dialog::set_dialog_backend(thorax::app::path_dialog::DialogBackend::BuiltIn);
    thorax::app::path_dialog::remember_folder(&harness.ctx, dir.path().to_path_buf());
    harness.state_mut().generator.seed = 5;
    // Backwards, from present to half, in 3 frames.
    harness.state_mut().traversal.sweep = TraversalSweep { from: 1.0, to: 0.5, frames: 3 };
    harness.run_steps(3);
    harness.get_by_label("File").click();
    harness.run_steps(2);
    harness.get_by_label("Export label traversal as GIF").hover();
    harness.run_steps(3);
    // A click on the fields' row (not an entry) leaves the submenu open.
    harness.get_by_label("From").click();
    harness.run_steps(3);
    assert!(harness.query_by_label("Cardiomegaly...").is_some(), "the submenu stayed open");
    harness.get_by_label("Cardiomegaly...").click();
    harness.run_steps(4);
    harness.get_by_label("Save").click();
    let reported = |app: &thorax::app::WorkbenchApp| format!("{:?}", app.message).contains("traversal");
    step_until(&mut harness, Duration::from_secs(120), |app| !app.traversal.is_busy() && reported(app));
    let message = format!("{:?}", harness.state().message);
    assert!(message.contains("3 frames from 1 to 0.5"), "{message}");

    // Frames at 1, 0.75 and 0.5, shown 0, 1, 2, 1.
    let (frames, _, _) = gif_frames(&dir.path().join("Cardiomegaly_seed5_traversal.gif"));
    assert_eq!(frames.len(), 4);
    assert!(frames[1] == frames[3] && frames[0] != frames[2]);
    let out = dir.path().join("generated");
    let output = thorax(&["generate", "--seed", "5", "--labels", "Cardiomegaly=0.5", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let expected = image::open(out.join("fake_0.png")).unwrap().to_luma8().into_raw();
    assert!(frames[2] == expected, "the last frame is generate's image at Cardiomegaly=0.5");
}

#[test]
fn a_sweep_is_brought_into_the_menus_range() {
    let sweep = TraversalSweep { from: -7.0, to: f32::NAN, frames: 1000 }.clamped();
    assert_eq!(sweep, TraversalSweep { from: -1.0, to: 0.0, frames: thorax::models::label_traversal::MAX_FRAMES });
    assert_eq!(TraversalSweep { frames: 0, ..TraversalSweep::default() }.clamped().frames, 2);
}
