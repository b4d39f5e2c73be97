//! The Metrics panel driven headless with egui_kittest: opened from the View menu, a real MS-SSIM histogram job on
//! folders of embedded samples runs in the background, its row and plot appear, the plot is saved as PNG from a
//! screenshot, the table exports and reads back, and a snapshot records the panel.

use std::path::Path;
use std::time::{Duration, Instant};

use egui::{pos2, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use thorax::app::metrics_panel::PanelMessage;
use thorax::app::metrics_record::{CsvRecord, MetricDetail, MetricKind, records_from_csv, records_from_json};
use thorax::app::{AppOptions, WorkbenchApp};
use thorax::engine::device::DeviceChoice;

const PAIRS: usize = 20;
const SEED: u64 = 3;

fn harness() -> Harness<'static, WorkbenchApp> {
    let options =
        AppOptions { device: DeviceChoice::Cpu, load_first_sample: false, run_models: false, ..AppOptions::default() };
    Harness::builder()
        .with_size(vec2(1280.0, 800.0))
        .wgpu()
        .build_eframe(move |cc| WorkbenchApp::new(cc, options).expect("app starts"))
}

fn step_until(harness: &mut Harness<'static, WorkbenchApp>, timeout: Duration, done: impl Fn(&WorkbenchApp) -> bool) {
    let start = Instant::now();
    while !done(harness.state()) {
        assert!(start.elapsed() < timeout, "condition not reached in {timeout:?}");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.step();
}

/// Five small (256 px, 8-bit) embedded samples per folder: "real" and "artificial".
fn sample_folders(root: &Path) {
    let samples: Vec<_> = thorax::imaging::samples::embedded_samples()
        .into_iter()
        .filter(|s| s.file_name.starts_with("cxr256"))
        .collect();
    assert!(samples.len() >= 10, "need 10 small embedded samples");
    for (index, sample) in samples.iter().take(10).enumerate() {
        let dir = root.join(if index < 5 { "real" } else { "artificial" });
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&sample.file_name), sample.bytes).unwrap();
    }
}

/// Steps until the panel's message is `text` (writes report there once the file is complete).
fn wait_for_message(harness: &mut Harness<'static, WorkbenchApp>, text: &str) {
    step_until(
        harness,
        Duration::from_secs(30),
        |app| matches!(&app.metrics.message, Some(PanelMessage::Info(message)) if message == text),
    );
}

/// Equal JSON trees with numbers within 1e-15 relative.
fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-15 * x.abs().max(y.abs()), "{at}: {x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_json_close(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}");
            for (key, x) in x {
                assert_json_close(x, &y[key], &format!("{at}.{key}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

#[test]
fn metrics_panel_runs_a_histogram_job_and_shows_its_row_and_plot() {
    let root = tempfile::tempdir().unwrap();
    sample_folders(root.path());
    let mut harness = harness();
    step_until(&mut harness, Duration::from_secs(60), |app| app.samples.pending_thumbnails() == 0);

    harness.get_by_label("View").click();
    harness.run_steps(2);
    harness.get_by_label("Metrics...").click();
    harness.run_steps(2);
    assert!(harness.state().metrics.window_open, "View > Metrics... opens the panel");
    harness.get_by_label("No results yet.");

    {
        let metrics = &mut harness.state_mut().metrics;
        metrics.kind = MetricKind::MsSsimHistogram;
        metrics.msssim.real = Some(root.path().join("real"));
        metrics.msssim.artificial = Some(root.path().join("artificial"));
        metrics.msssim.pairs = PAIRS;
        metrics.msssim.seed = SEED;
    }
    harness.run_steps(2);
    harness.get_by_label("Run MS-SSIM histogram").click();
    harness.step();
    assert_eq!(harness.state().metrics.running_jobs(), 1, "the job runs in the background");
    step_until(&mut harness, Duration::from_secs(120), |app| {
        app.metrics.running_jobs() == 0 && !app.metrics.records.is_empty()
    });
    harness.run_steps(3);

    let record = harness.state().metrics.records[0].clone();
    assert_eq!((record.id, record.metric), (1, MetricKind::MsSsimHistogram));
    assert_eq!(record.setting("pairs_per_label"), Some("20"));
    assert_eq!(record.setting("seed"), Some("3"));
    assert_eq!(record.setting("n_real"), Some("5"));
    let MetricDetail::MsSsimHistogram { labels, .. } = &record.detail else { panic!("{record:?}") };
    let real = labels[0].real.as_ref().unwrap();
    assert_eq!(real.counts.len(), 50);
    assert_eq!(real.counts.iter().sum::<u64>() as usize + real.out_of_range + real.undefined_pairs, PAIRS);

    // The row and the plot are on screen.
    harness.get_by_label("#1");
    harness.get_by_label("MS-SSIM of random same-label pairs, 50 bins, seed 3");
    assert!(harness.query_by_label_contains("all: real 20 pairs, mean").is_some());
    assert!(harness.query_by_label_contains("mean MS-SSIM real").is_some());

    // The plot saves as PNG from a screenshot of the frame.
    let png = root.path().join("plot.png");
    harness.state_mut().metrics.save_plot_png_to(png.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while harness.query_by_label_contains("plot saved to").is_none() {
        assert!(Instant::now() < deadline, "the plot PNG was not written");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    let saved = image::open(&png).unwrap();
    assert!(saved.width() > 300 && saved.height() > 150, "{}x{}", saved.width(), saved.height());

    // Both exports are written and read back (JSON numbers within serde_json's reading precision, CSV exactly).
    let records = harness.state().metrics.records.clone();
    let (csv_path, json_path) = (root.path().join("results.csv"), root.path().join("results.json"));
    harness.state_mut().metrics.export_csv_to(csv_path.clone());
    wait_for_message(&mut harness, &format!("results exported to {}", csv_path.display()));
    harness.state_mut().metrics.export_json_to(json_path.clone());
    wait_for_message(&mut harness, &format!("results exported to {}", json_path.display()));
    let read = records_from_json(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_json_close(&serde_json::to_value(&records).unwrap(), &serde_json::to_value(&read).unwrap(), "records");
    let expected: Vec<CsvRecord> = records.iter().map(CsvRecord::from).collect();
    assert_eq!(records_from_csv(&std::fs::read_to_string(&csv_path).unwrap()).unwrap(), expected);
    // The table sizes its columns to their texts: a run that took 4-digit milliseconds on a loaded machine moved the
    // columns by a few pixels, so the snapshot shows a fixed duration.
    harness.state_mut().metrics.records[0].elapsed_ms = 1234.0;
    harness.run_steps(2);

    // Run-dependent text: the temporary folders, the elapsed time, the status bar. Masks have a fixed width, as
    // the texts' widths change with the random folder names and the digits.
    let mut masks: Vec<egui::Rect> = Vec::new();
    for (text, width) in [(root.path().display().to_string(), 600.0), (" ms".to_owned(), 150.0)] {
        masks.extend(
            harness
                .query_all_by_label_contains(&text)
                .map(|node| egui::Rect::from_min_size(node.rect().min, vec2(width, node.rect().height()))),
        );
    }
    for rect in masks {
        harness.mask(rect);
    }
    harness.mask(egui::Rect::from_min_max(pos2(0.0, 770.0), pos2(1280.0, 800.0)));
    harness.snapshot("metrics_panel");
}

#[test]
fn cancelling_a_job_keeps_no_result() {
    let root = tempfile::tempdir().unwrap();
    sample_folders(root.path());
    let mut harness = harness();
    {
        let metrics = &mut harness.state_mut().metrics;
        metrics.window_open = true;
        metrics.kind = MetricKind::MsSsimHistogram;
        metrics.msssim.real = Some(root.path().join("real"));
        metrics.msssim.artificial = Some(root.path().join("artificial"));
        metrics.msssim.pairs = 1_000_000;
    }
    harness.run_steps(2);
    harness.get_by_label("Run MS-SSIM histogram").click();
    harness.run_steps(3);
    assert_eq!(harness.state().metrics.running_jobs(), 1);
    harness.get_by_label("Cancel").click();
    step_until(&mut harness, Duration::from_secs(60), |app| app.metrics.running_jobs() == 0);
    harness.run_steps(2);
    assert!(harness.state().metrics.records.is_empty(), "a cancelled job adds no row");
    assert!(harness.query_by_label_contains("cancelled; no result kept").is_some());
    harness.get_by_label("No results yet.");
}
