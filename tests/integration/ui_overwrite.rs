//! Saving over an existing file from the workbench asks first: the built-in file chooser (the desktop's dialogs ask
//! by themselves) and the heatmap export into a folder that holds an earlier export.

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use thorax::app::file_browser::{BrowserAnswer, FileBrowser};
use thorax::app::heatmap_exporter::{HeatmapExporter, HeatmapToWrite};
use thorax::app::path_dialog::DialogKind;
use thorax::models::heatmap::GrayMap;
use thorax::models::heatmap_export::OverlayStyle;

const SENTINEL: &[u8] = b"a file the user already had";

struct Chooser {
    browser: FileBrowser,
    answer: Option<BrowserAnswer>,
}

fn chooser_harness(folder: &std::path::Path) -> Harness<'static, Chooser> {
    let kind = DialogKind::SaveFile {
        file_name: "plot.png".to_owned(),
        filter_name: "PNG",
        extensions: &["png"],
        new_only: false,
    };
    let state = Chooser { browser: FileBrowser::new("Save plot", kind, Some(folder.to_path_buf())), answer: None };
    Harness::builder().with_size(egui::vec2(800.0, 640.0)).build_ui_state(
        |ui, chooser: &mut Chooser| {
            if chooser.answer.is_none() {
                chooser.answer = chooser.browser.show(ui.ctx());
            }
        },
        state,
    )
}

#[test]
fn the_built_in_chooser_asks_before_saving_over_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plot.png"), SENTINEL).unwrap();
    std::fs::write(dir.path().join("other.png"), SENTINEL).unwrap();

    // The suggested name is taken: Save asks instead of answering.
    let mut harness = chooser_harness(dir.path());
    harness.get_by_label("Save").click();
    harness.run();
    assert_eq!(harness.state().answer, None, "picked without asking");
    assert!(harness.query_by_label_contains("plot.png already exists").is_some());
    // Keeping it withdraws the question and leaves the chooser open.
    harness.get_by_label("Keep it").click();
    harness.run();
    assert!(harness.query_by_label_contains("already exists").is_none());
    assert_eq!(harness.state().answer, None);
    // Asked again, Replace picks the file.
    harness.get_by_label("Save").click();
    harness.run();
    harness.get_by_label("Replace").click();
    harness.run();
    assert_eq!(harness.state().answer, Some(BrowserAnswer::Picked(dir.path().join("plot.png"))));

    // Choosing another listed file that exists asks about that one.
    let mut harness = chooser_harness(dir.path());
    harness.get_by_label("other.png").click();
    harness.run();
    harness.get_by_label("Save").click();
    harness.run();
    assert_eq!(harness.state().answer, None, "picked without asking");
    assert!(harness.query_by_label_contains("other.png already exists").is_some());
    assert_eq!(std::fs::read(dir.path().join("other.png")).unwrap(), SENTINEL);

    // A new name is saved at once.
    std::fs::create_dir(dir.path().join("fresh")).unwrap();
    let mut harness = chooser_harness(&dir.path().join("fresh"));
    harness.get_by_label("Save").click();
    harness.run();
    assert_eq!(harness.state().answer, Some(BrowserAnswer::Picked(dir.path().join("fresh/plot.png"))));
}

fn maps() -> Vec<HeatmapToWrite> {
    let gray = GrayMap { width_px: 4, height_px: 4, values: vec![0.5; 16] };
    let map = GrayMap { width_px: 4, height_px: 4, values: (0..16).map(|v| v as f32 / 15.0).collect() };
    vec![HeatmapToWrite { base: "cxr_Mass_CAM".to_owned(), gray, map, style: OverlayStyle::HALF_AND_HALF }]
}

/// Steps until the exporter reports, returning its message.
fn wait_for_export(harness: &mut Harness<'_, (HeatmapExporter, Option<Result<String, String>>)>) -> String {
    let start = Instant::now();
    while harness.state().1.is_none() {
        assert!(start.elapsed() < Duration::from_secs(30), "the export did not finish");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    match harness.state_mut().1.take() {
        Some(Ok(message)) => message,
        other => panic!("export failed: {other:?}"),
    }
}

#[test]
fn a_heatmap_export_asks_before_replacing_an_earlier_export() {
    let dir = tempfile::tempdir().unwrap();
    let in_the_way = dir.path().join("cxr_Mass_CAM_map.png");
    std::fs::write(&in_the_way, SENTINEL).unwrap();
    let mut harness = Harness::builder().with_size(egui::vec2(800.0, 600.0)).build_ui_state(
        |ui, (exporter, done): &mut (HeatmapExporter, Option<Result<String, String>>)| {
            if let Some(result) = exporter.poll(ui.ctx()) {
                *done = Some(result);
            }
        },
        (HeatmapExporter::default(), None),
    );
    let ctx = harness.ctx.clone();

    // Cancel keeps the earlier file and writes nothing.
    harness.state_mut().0.export_to(&ctx, maps(), dir.path().to_path_buf());
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("cxr_Mass_CAM_map.png").is_some(), "names the file in the way");
    assert!(!harness.state().0.is_writing(), "wrote without asking");
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    assert!(harness.state().0.question().is_none());
    assert_eq!(std::fs::read(&in_the_way).unwrap(), SENTINEL);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing else was written");
    assert!(harness.state().1.is_none());

    // Replace writes all three files.
    harness.state_mut().0.export_to(&ctx, maps(), dir.path().to_path_buf());
    harness.run_steps(2);
    harness.get_by_label("Replace").click();
    let message = wait_for_export(&mut harness);
    assert!(message.contains("Wrote 1 heatmaps"), "{message}");
    assert!(image::open(&in_the_way).is_ok(), "the map PNG was replaced");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);

    // Into a folder without such files, the export runs at once.
    let fresh = tempfile::tempdir().unwrap();
    harness.state_mut().0.export_to(&ctx, maps(), fresh.path().to_path_buf());
    assert!(harness.state().0.question().is_none());
    wait_for_export(&mut harness);
    assert_eq!(std::fs::read_dir(fresh.path()).unwrap().count(), 3);
}
