//! The Audit window: runs the memorisation audit on a background thread, lists the closest pairs with the copies
//! flagged and excluded from the export, and exports what the user keeps.

use std::path::Path;
use std::time::{Duration, Instant};

use egui::vec2;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use thorax::app::{AppOptions, WorkbenchApp};
use thorax::engine::device::DeviceChoice;

use crate::sample_folders::{fill, samples_256};

#[test]
fn audit_window_flags_copies_and_exports_the_kept_images() {
    let samples = samples_256();
    let root = tempfile::tempdir().unwrap();
    let (training, heldout, generated, export) =
        (root.path().join("train"), root.path().join("heldout"), root.path().join("gen"), root.path().join("out"));
    fill(&training, &samples[0..4]);
    fill(&heldout, &samples[4..8]);
    fill(&generated, &samples[8..10]);
    std::fs::copy(&samples[1], generated.join("copy_1.png")).unwrap();
    std::fs::copy(&samples[3], generated.join("copy_3.png")).unwrap();

    let options =
        AppOptions { device: DeviceChoice::Cpu, load_first_sample: false, run_models: false, ..AppOptions::default() };
    let mut harness = Harness::builder()
        .with_size(vec2(1280.0, 900.0))
        .wgpu()
        .build_eframe(move |cc| WorkbenchApp::new(cc, options).expect("app starts"));
    {
        let audit = &mut harness.state_mut().audit;
        audit.open = true;
        audit.generated = Some(generated.clone());
        audit.training = Some(training.clone());
        audit.heldout = Some(heldout.clone());
        audit.top_k = 3;
    }
    harness.run_steps(2);
    harness.get_by_label("Run audit").click();
    harness.run_steps(2);
    let start = Instant::now();
    let (mut frames_while_running, mut status_said_so) = (0, 0);
    while harness.state().audit.outcome.is_none() {
        assert!(harness.state().audit.error.is_none(), "{:?}", harness.state().audit.error);
        assert!(start.elapsed() < Duration::from_secs(120), "the audit did not finish");
        // The UI keeps answering while the audit runs, and its status bar says the audit runs (the inference
        // worker itself is idle).
        harness.step();
        frames_while_running += 1;
        status_said_so += usize::from(harness.query_by_label_contains("Also running: privacy audit").is_some());
        std::thread::sleep(Duration::from_millis(20));
    }
    // The last frame may be the one that received the result.
    assert!(status_said_so + 1 >= frames_while_running, "{status_said_so} of {frames_while_running} frames");
    harness.run_steps(3);
    assert!(harness.query_by_label_contains("Also running").is_none(), "nothing runs after the audit");
    assert!(harness.query_by_label_contains("Flagged: 2 of 4").is_some());
    assert_eq!(harness.query_all_by_label_contains("FLAGGED").count(), 2);
    let excluded: Vec<String> = harness.state().audit.excluded.iter().map(|p| name(p)).collect();
    assert_eq!(excluded.len(), 2);
    assert!(excluded.contains(&"copy_1.png".to_owned()) && excluded.contains(&"copy_3.png".to_owned()));

    // Keeping one flagged image after all: it goes into the export.
    harness.get_all_by_label("Keep in export").next().unwrap().click();
    harness.run_steps(2);
    assert_eq!(harness.state().audit.excluded.len(), 1);
    harness.state_mut().audit.export(&export);
    let exported = std::fs::read_dir(&export).unwrap().count();
    assert_eq!(exported, 3);
    assert!(
        harness.query_by_label_contains("Copied 3 generated images").is_some() || {
            harness.run_steps(2);
            harness.query_by_label_contains("Copied 3 generated images").is_some()
        }
    );
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}
