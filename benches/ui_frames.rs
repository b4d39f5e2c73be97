//! UI-thread frame cost while the generator runs continuously, as when a pathology slider is dragged: every frame
//! moves the slider and submits a new image request, the worker keeps generating, and the UI must keep answering.
//!
//! Headless (egui_kittest without a GPU renderer): the time measured is the UI thread's own work per frame (polling
//! the worker, layout, panels), not the GPU paint. Prints p50 / p99 / max frame time and how many generated images
//! arrived, then checks the last slider position is what the view finally shows.
//!
//!     cargo bench --bench ui_frames            (or --profile dev for a quick run)

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use thorax::app::{AppOptions, WorkbenchApp};
use thorax::engine::device::DeviceChoice;

const FRAMES: usize = 600;

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn last_id_of(harness: &Harness<'static, WorkbenchApp>) -> Option<u64> {
    harness.state().artificial.image.as_ref().map(|p| p.image.id())
}

fn main() {
    let options = AppOptions { device: DeviceChoice::Cpu, ..AppOptions::default() };
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_eframe(move |cc| WorkbenchApp::new(cc, options).expect("app starts"));
    // Let the first sample, thumbnails and the first image settle.
    let settle = Instant::now();
    while harness.state().samples.pending_thumbnails() > 0 || harness.state().artificial.image.is_none() {
        assert!(settle.elapsed() < Duration::from_secs(120), "the app did not settle");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    let first_image = harness.state().artificial.image.as_ref().map(|p| p.image.id());
    let mut frame_times = Vec::with_capacity(FRAMES);
    let mut images_shown = 0usize;
    let mut last_id = first_image;
    for frame in 0..FRAMES {
        let start = Instant::now();
        harness.step();
        frame_times.push(start.elapsed());
        // The slider moves during every frame (after the frame polled the worker, as a drag does): a new request
        // each time; only the newest should run.
        let value = (frame % 100) as f32 / 100.0;
        {
            let app = harness.state_mut();
            if let Some(first) = app.generator.labels.first_mut() {
                *first = value;
            }
            app.generate();
        }
        let shown = harness.state().artificial.image.as_ref().map(|p| p.image.id());
        if shown != last_id {
            images_shown += 1;
            last_id = shown;
        }
        // A display at 60 Hz: the next frame starts ~16 ms later.
        std::thread::sleep(Duration::from_millis(16).saturating_sub(start.elapsed()));
    }
    frame_times.sort();
    println!(
        "ui_frames: {FRAMES} frames with a new generator request each: UI thread p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         {images_shown} generated images shown ({:.1} per second)",
        percentile(&frame_times, 0.5).as_secs_f64() * 1e3,
        percentile(&frame_times, 0.99).as_secs_f64() * 1e3,
        frame_times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        images_shown as f64 / (FRAMES as f64 * 0.016),
    );
    // After the drag stops, the view settles on the last position (stale requests are dropped).
    let last_value = ((FRAMES - 1) % 100) as f32 / 100.0;
    let settle = Instant::now();
    loop {
        harness.step();
        let app = harness.state();
        let idle = matches!(app.worker_status().activity, thorax::engine::WorkerActivity::Idle);
        if idle && settle.elapsed() > Duration::from_millis(500) {
            break;
        }
        assert!(settle.elapsed() < Duration::from_secs(60), "the worker did not settle");
        std::thread::sleep(Duration::from_millis(10));
    }
    let app = harness.state();
    assert_eq!(app.generator.labels.first().copied(), Some(last_value));
    let shown: Vec<f32> = app.artificial.image.as_ref().expect("an image").image.pixels().to_vec();
    // The generator is deterministic: one more request for the same position must show the same pixels.
    let before = last_id_of(&harness);
    harness.state_mut().generate();
    let again = Instant::now();
    while last_id_of(&harness) == before {
        assert!(again.elapsed() < Duration::from_secs(60), "no image for the repeat request");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    let app = harness.state();
    let repeat: Vec<f32> = app.artificial.image.as_ref().expect("an image").image.pixels().to_vec();
    assert_eq!(shown, repeat, "the view did not end on the newest slider position");
    println!(
        "ui_frames: settled on slider value {last_value} with the worker idle; {} stale requests dropped unrun",
        app.worker_status().coalesced_count
    );
}
