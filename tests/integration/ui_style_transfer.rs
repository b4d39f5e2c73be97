//! Style transfer in the workbench: the third viewport with the embedded placeholder CycleGAN, its |difference|
//! toggle, the linked view, re-running on a new real image, and a wrong model file refused in the status bar.

use std::time::{Duration, Instant};

use egui::{Event, Modifiers, MouseWheelUnit, TouchPhase, pos2, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use thorax::app::workbench_app::StatusMessage;
use thorax::app::{AppOptions, WorkbenchApp};
use thorax::engine::device::DeviceChoice;
use thorax::imaging::BitDepth;
use thorax::models::card::ModelKind;

fn harness() -> Harness<'static, WorkbenchApp> {
    // No generator or classifier jobs: only the translation runs, on the small samples.
    let options =
        AppOptions { device: DeviceChoice::Cpu, run_models: false, load_first_sample: false, ..AppOptions::default() };
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

/// Index of an embedded 256 px sample, so a translation takes a fraction of a second on a CPU.
fn small_sample(nth: usize) -> usize {
    thorax::imaging::samples::embedded_samples()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.file_name.starts_with("cxr256_"))
        .nth(nth)
        .map(|(i, _)| i)
        .expect("small samples are embedded")
}

/// The translation of the real image now shown is on screen.
fn translated_current(app: &WorkbenchApp) -> bool {
    let real = app.real.image.as_ref().map(|p| p.image.id());
    app.styled.image.is_some() && app.style.result.as_ref().map(|r| r.image_id) == real
}

#[test]
fn style_transfer_shows_the_translated_real_image_and_its_difference() {
    let mut harness = harness();
    harness.state_mut().load_sample(small_sample(0));
    step_until(&mut harness, Duration::from_secs(60), |app| {
        app.real.image.is_some() && app.samples.pending_thumbnails() == 0
    });
    assert!(harness.query_by_label("Style-transferred").is_none(), "two viewports until style transfer is applied");
    assert!(harness.query_by_value("NIH -> Guangzhou (G_A)").is_some(), "the direction names the domains");

    harness.get_by_label("Apply to real image").click();
    step_until(&mut harness, Duration::from_secs(120), translated_current);
    harness.run_steps(3);
    harness.get_by_label("Style-transferred");
    assert!(
        harness.query_all_by_label_contains("Small demonstration model (64 px").count() >= 1,
        "the trained default states its limits"
    );
    let app = harness.state();
    let real = app.real.image.as_ref().unwrap().image.clone();
    let translated = app.styled.image.as_ref().unwrap().image.clone();
    assert_eq!((translated.width_px(), translated.height_px()), (real.width_px(), real.height_px()));
    assert_eq!(translated.depth(), BitDepth::U8);
    assert_ne!(translated.pixels(), real.pixels(), "the generator changed the image");
    let rect = app.styled.viewer_rect.unwrap();
    assert!(rect.width() > 200.0 && rect.min.x > app.artificial.viewer_rect.unwrap().max.x, "a third column");
    // The pointer rests on the (masked) status bar, so no tooltip shows.
    harness.hover_at(pos2(640.0, 790.0));
    harness.run_steps(2);
    harness.mask(egui::Rect::from_min_max(pos2(0.0, 770.0), pos2(1280.0, 800.0)));
    let timing = harness.get_by_label_contains("ms per translation").rect();
    harness.mask(egui::Rect::from_min_size(timing.min, vec2(200.0, timing.height())));
    harness.snapshot("style_transfer");

    // |difference| replaces the translation in the same pane, and back.
    harness.get_by_label("Show |difference|").click();
    harness.run_steps(2);
    let app = harness.state();
    let shown = &app.styled.image.as_ref().unwrap().image;
    let difference = &app.style.result.as_ref().unwrap().difference.image;
    assert_eq!(shown.id(), difference.id());
    assert_eq!(shown.depth(), BitDepth::F32);
    for ((d, t), r) in shown.pixels().iter().zip(translated.pixels()).zip(real.pixels()) {
        assert!((d - (t - r).abs()).abs() < 1e-3, "{d} != |{t} - {r}|");
    }
    // The status bar reads the difference under the pointer.
    harness.hover_at(rect.center());
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("Style-transferred (").is_some());
    harness.get_by_label("Show |difference|").click();
    harness.run_steps(2);
    assert_eq!(harness.state().styled.image.as_ref().unwrap().image.id(), translated.id());

    // By default the generator sees the image at its training scale (64 px); unticked, the 256 px pixels themselves.
    let network_dims = |app: &WorkbenchApp| app.style.result.as_ref().map(|r| r.translated.tensor_dims.clone());
    assert_eq!(network_dims(harness.state()), Some(vec![1, 1, 64, 64]));
    harness.get_by_label("At training scale (64 px)").click();
    step_until(&mut harness, Duration::from_secs(120), |app| network_dims(app) == Some(vec![1, 1, 256, 256]));
    let native = harness.state().styled.image.as_ref().unwrap().image.clone();
    assert_eq!((native.width_px(), native.height_px()), (real.width_px(), real.height_px()));
    assert_ne!(native.pixels(), translated.pixels(), "the two scales give different images");
    harness.get_by_label("At training scale (64 px)").click();
    step_until(&mut harness, Duration::from_secs(120), |app| network_dims(app) == Some(vec![1, 1, 64, 64]));
    let rect = harness.state().styled.viewer_rect.unwrap();

    // The third view is linked like the others: zooming it zooms the real view.
    let before = harness.state().real.view.transform.zoom;
    harness.hover_at(rect.center());
    harness.event(Event::MouseWheel {
        unit: MouseWheelUnit::Point,
        delta: vec2(0.0, 120.0),
        phase: TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: Modifiers::NONE,
    });
    harness.run_steps(30);
    let app = harness.state();
    assert!(app.styled.view.transform.zoom > before * 1.2, "{:?}", app.styled.view.transform);
    assert_eq!(app.real.view.transform, app.styled.view.transform);

    // A new real image is translated again by itself.
    harness.state_mut().load_sample(small_sample(1));
    step_until(&mut harness, Duration::from_secs(120), |app| {
        translated_current(app)
            && app.real.image.as_ref().is_some_and(|p| p.name.starts_with("cxr256_"))
            && app.styled.image.as_ref().unwrap().image.id() != translated.id()
    });

    // Off again: two viewports.
    harness.get_by_label("Apply to real image").click();
    harness.run_steps(2);
    assert!(harness.query_by_label("Style-transferred").is_none());
}

#[test]
fn a_model_file_of_the_wrong_kind_is_refused_and_the_selection_kept() {
    let mut harness = harness();
    let folder = tempfile::tempdir().unwrap();
    let progan = thorax::models::registry::default_model(ModelKind::ProganGenerator).unwrap();
    let path = folder.path().join("not-a-cyclegan.safetensors");
    std::fs::write(&path, progan.bytes).unwrap();
    let selected = harness.state().style.models.current().unwrap().card.name.clone();
    harness.state_mut().open_model_file(ModelKind::CycleganGenerator, path);
    step_until(&mut harness, Duration::from_secs(60), |app| matches!(app.message, Some(StatusMessage::Error(_))));
    let Some(StatusMessage::Error(message)) = &harness.state().message else { unreachable!() };
    assert!(message.contains("not-a-cyclegan.safetensors") && message.contains("Open model"), "{message}");
    assert!(harness.query_by_label_contains("not-a-cyclegan.safetensors").is_some(), "the status bar shows it");
    assert_eq!(harness.state().style.models.current().unwrap().card.name, selected);

    // Moving on (here a new generator image) settles the failed open: its error leaves the status bar.
    harness.get_by_label("Reset labels").click();
    harness.run_steps(2);
    assert!(
        !matches!(&harness.state().message, Some(StatusMessage::Error(e)) if e.contains("Open model")),
        "{:?}",
        harness.state().message
    );

    // The right kind is added to its picker and selected.
    let cyclegan = thorax::models::registry::default_model(ModelKind::CycleganGenerator).unwrap();
    let good = folder.path().join("g_a.safetensors");
    std::fs::write(&good, cyclegan.bytes).unwrap();
    let count = harness.state().style.models.choices().len();
    harness.state_mut().open_model_file(ModelKind::CycleganGenerator, good.clone());
    step_until(&mut harness, Duration::from_secs(60), |app| app.style.models.choices().len() == count + 1);
    let current = harness.state().style.models.current().unwrap().source.clone();
    assert_eq!(current, thorax::engine::ModelSource::File(good));

    // The generator and the classifier pickers take opened files the same way.
    for kind in [ModelKind::ProganGenerator, ModelKind::Densenet121Classifier] {
        let model = thorax::models::registry::default_model(kind).unwrap();
        let path = folder.path().join(model.file_name);
        std::fs::write(&path, model.bytes).unwrap();
        harness.state_mut().open_model_file(kind, path.clone());
        let opened = thorax::engine::ModelSource::File(path);
        step_until(&mut harness, Duration::from_secs(60), |app| {
            let shelf = if kind == ModelKind::ProganGenerator { &app.generator.models } else { &app.classifiers };
            shelf.current().is_some_and(|m| m.source == opened)
        });
    }
    assert_eq!(harness.state().generator.labels.len(), 14, "the sliders follow the opened generator's card");
}
