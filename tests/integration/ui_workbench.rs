//! The workbench shell and the radiograph viewer, driven headless with egui_kittest on a software GPU.

use std::time::{Duration, Instant};

use egui::{Event, Modifiers, MouseWheelUnit, PointerButton, TouchPhase, pos2, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use thorax::app::measurement::{Distance, MeasureGesture, MeasureTool, Measurement};
use thorax::app::viewport_pane::ViewportPane;
use thorax::app::{AppOptions, WorkbenchApp};
use thorax::engine::device::DeviceChoice;
use thorax::engine::job_runner::JobRunner;
use thorax::engine::{EngineError, ImageSource, Output, Request, Slot};

pub(crate) fn harness_with(options: AppOptions) -> Harness<'static, WorkbenchApp> {
    Harness::builder()
        .with_size(vec2(1280.0, 800.0))
        .wgpu()
        .build_eframe(move |cc| WorkbenchApp::new(cc, options).expect("app starts"))
}

fn cpu_options() -> AppOptions {
    AppOptions { device: DeviceChoice::Cpu, ..AppOptions::default() }
}

/// Viewer-only tests: no generator or classifier jobs racing the images a test loads.
pub(crate) fn viewer_options() -> AppOptions {
    AppOptions { device: DeviceChoice::Cpu, run_models: false, ..AppOptions::default() }
}

/// Steps frames until `done` holds, failing after `timeout`.
pub(crate) fn step_until(
    harness: &mut Harness<'static, WorkbenchApp>,
    timeout: Duration,
    done: impl Fn(&WorkbenchApp) -> bool,
) {
    let start = Instant::now();
    while !done(harness.state()) {
        assert!(start.elapsed() < timeout, "condition not reached in {timeout:?}");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.step();
}

/// Waits for the first sample, all thumbnails, the generated image and both classifications, and a settled layout.
pub(crate) fn ready(harness: &mut Harness<'static, WorkbenchApp>, with_models: bool) {
    step_until(harness, Duration::from_secs(120), |app| {
        app.real.image.is_some()
            && app.samples.pending_thumbnails() == 0
            && (!with_models || (app.artificial.image.is_some() && app.classifier.results.len() == 2))
    });
    harness.run_steps(5);
}

fn sample_source(index: usize) -> ImageSource {
    let sample = &thorax::imaging::samples::embedded_samples()[index];
    ImageSource::Bytes { name: sample.file_name.clone(), bytes: sample.bytes.into() }
}

/// The status bar holds timings that change from run to run; snapshots leave it out.
fn mask_status_bar(harness: &mut Harness<'static, WorkbenchApp>) {
    harness.mask(egui::Rect::from_min_max(pos2(0.0, 770.0), pos2(1280.0, 800.0)));
}

#[test]
fn shell_shows_the_layout_a_radiologist_expects() {
    let mut harness = harness_with(cpu_options());
    ready(&mut harness, true);
    for label in ["Real", "Artificial", "Samples", "Generator", "Classifier", "Window"] {
        assert!(harness.query_all_by_label(label).count() >= 1, "no `{label}` in the window");
    }
    // Cardiomegaly is both a pathology slider and a classifier bar.
    assert!(harness.query_all_by_label("Cardiomegaly").count() >= 2);
    // Every default model says what it is: an untrained placeholder, or a small demonstration model.
    let honest = harness.query_all_by_label_contains("UNTRAINED").count()
        + harness.query_all_by_label_contains("Small demonstration model").count();
    assert!(honest >= 3, "every default model must state its limits");
    assert!(harness.query_by_label_contains("ms per image").is_some());
    harness.get_by_label("Link viewports");
    harness.get_by_label("Worker: idle");
    assert!(harness.query_by_label_contains("Device: CPU").is_some());
    assert!(harness.query_by_label_contains("Last job:").is_some());
    let app = harness.state();
    assert_eq!(app.real.image.as_ref().unwrap().name, "cxr_0001.png");
    mask_status_bar(&mut harness);
    // The generator's timing changes from run to run.
    let timing = harness.get_by_label_contains("ms per image").rect();
    // Fixed width: the text's own width changes with the number.
    harness.mask(egui::Rect::from_min_size(timing.min, vec2(240.0, timing.height())));
    harness.snapshot("workbench_shell");
}

fn scroll_at(harness: &mut Harness<'static, WorkbenchApp>, pos: egui::Pos2, delta_y: f32) {
    harness.hover_at(pos);
    harness.event(Event::MouseWheel {
        unit: MouseWheelUnit::Point,
        delta: vec2(0.0, delta_y),
        phase: TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: Modifiers::NONE,
    });
    harness.run_steps(30);
}

fn right_drag(harness: &mut Harness<'static, WorkbenchApp>, from: egui::Pos2, by: egui::Vec2) {
    drag(harness, PointerButton::Secondary, Modifiers::NONE, from, by);
}

/// A drag in ten steps with `button` held, and `modifiers` held throughout.
pub(crate) fn drag(
    harness: &mut Harness<'static, WorkbenchApp>,
    button: PointerButton,
    modifiers: Modifiers,
    from: egui::Pos2,
    by: egui::Vec2,
) {
    let press = |pressed, pos| Event::PointerButton { pos, button, pressed, modifiers };
    harness.event(Event::ModifiersChanged(modifiers));
    harness.hover_at(from);
    harness.event(press(true, from));
    harness.step();
    for i in 1..=10 {
        harness.hover_at(from + by * (i as f32 / 10.0));
        harness.step();
    }
    harness.event(press(false, from + by));
    harness.step();
    harness.event(Event::ModifiersChanged(Modifiers::NONE));
}

/// The distances kept on a view, oldest first.
pub(crate) fn distances(pane: &ViewportPane) -> Vec<Distance> {
    let items = pane.measurements.items().iter();
    items.filter_map(|m| if let Measurement::Distance(d) = m { Some(*d) } else { None }).collect()
}

/// Loads the 1024 x 1024 px chest CR with Pixel Spacing 0.168 mm into the real view.
pub(crate) fn load_chest_cr(harness: &mut Harness<'static, WorkbenchApp>) {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real/chest_cr_pa_siim_nih.dcm");
    harness.state_mut().load(Slot::Real, ImageSource::File(path));
    step_until(harness, Duration::from_secs(30), |app| app.real.image.as_ref().is_some_and(|p| p.dicom.is_some()));
    harness.run_steps(3);
}

pub(crate) fn shift_click(harness: &mut Harness<'static, WorkbenchApp>, pos: egui::Pos2) {
    harness.event(Event::ModifiersChanged(Modifiers::SHIFT));
    let click =
        |pressed| Event::PointerButton { pos, button: PointerButton::Primary, pressed, modifiers: Modifiers::SHIFT };
    harness.hover_at(pos);
    harness.event(click(true));
    harness.event(click(false));
    harness.run_steps(2);
    harness.event(Event::ModifiersChanged(Modifiers::NONE));
}

#[test]
fn shift_drag_measures_a_distance_in_mm_from_the_pixel_spacing_and_shift_click_clears_it() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    harness.state_mut().load(Slot::Artificial, sample_source(1));
    step_until(&mut harness, Duration::from_secs(30), |app| app.artificial.image.is_some());
    load_chest_cr(&mut harness);
    assert!(harness.state().settings.link_viewports);
    let rect = harness.state().real.viewer_rect.unwrap();
    let transform = harness.state().real.view.transform;
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, rect.center(), vec2(120.0, 90.0));
    harness.run_steps(2);
    let [measurement] = distances(&harness.state().real)[..] else { panic!("Shift + drag measures one distance") };
    assert_eq!(harness.state().real.view.transform, transform, "measuring does not pan");
    // 150 points on screen; the 1024 px image is fitted to the viewer, so a point spans 1024 / side image pixels.
    let side_pt = rect.width().min(rect.height());
    let expected_px = 150.0 * 1024.0 / f64::from(side_pt);
    assert!((measurement.length_px() - expected_px).abs() < 0.02 * expected_px, "{measurement:?} vs {expected_px} px");
    let expected_label = format!("Distance {:.1} mm", measurement.length_px() * 0.168);
    assert!(harness.query_by_label(&expected_label).is_some(), "{expected_label} shown over the image");

    // A second Shift + drag adds a distance; the first stays.
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, rect.center(), vec2(-60.0, 80.0));
    harness.run_steps(2);
    let kept = distances(&harness.state().real);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0], measurement);
    let second_label = format!("Distance {:.1} mm", kept[1].length_px() * 0.168);
    assert!(harness.query_by_label(&expected_label).is_some() && harness.query_by_label(&second_label).is_some());
    // Linked views share zoom and pan, not measurements: the other image is another patient's.
    assert!(harness.state().artificial.measurements.items().is_empty());

    // Without Shift a drag pans and leaves the measurements (begun off their handles: on one it would move it).
    drag(&mut harness, PointerButton::Primary, Modifiers::NONE, rect.center() - vec2(0.0, 120.0), vec2(40.0, 0.0));
    assert_ne!(harness.state().real.view.transform, transform);
    assert_eq!(distances(&harness.state().real), kept);
    // Shift + click clears them.
    shift_click(&mut harness, rect.center());
    assert!(harness.state().real.measurements.items().is_empty());
    assert!(harness.query_by_label_contains("Distance ").is_none());
}

#[test]
fn the_angle_tool_reads_degrees_at_the_vertex_and_a_new_image_drops_measurements() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    let rect = harness.state().real.viewer_rect.unwrap();
    harness.get_by_label("Angle").click();
    harness.run_steps(2);
    assert_eq!(harness.state().measure_tool, MeasureTool::Angle);
    let vertex = rect.center();
    // A first arm, dropped with Esc.
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, vertex, vec2(0.0, 100.0));
    assert!(harness.state().real.measurements.pending_arm().is_some());
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);
    assert_eq!(harness.state().real.measurements.pending_arm(), None, "Esc drops the first arm");

    // Right, then up and left: 135 degrees (square pixels: the same on screen and in the patient).
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, vertex, vec2(120.0, 0.0));
    assert!(harness.state().real.measurements.items().is_empty(), "one arm is not an angle yet");
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, vertex, vec2(-70.0, -70.0));
    harness.run_steps(2);
    let [Measurement::Angle(angle)] = harness.state().real.measurements.items() else {
        panic!("{:?}", harness.state().real.measurements.items())
    };
    let spacing = harness.state().real.image.as_ref().unwrap().dicom.as_ref().unwrap().summary.pixel_spacing;
    assert!((angle.degrees(spacing.as_ref()).unwrap() - 135.0).abs() < 0.05, "{angle:?}");
    assert!(harness.query_by_label("Angle 135.0°").is_some());

    // Another film: its anatomy is elsewhere, the measurements go.
    harness.state_mut().load(Slot::Real, sample_source(1));
    let name = thorax::imaging::samples::embedded_samples()[1].file_name.clone();
    step_until(&mut harness, Duration::from_secs(30), |app| app.real.image.as_ref().is_some_and(|p| p.name == name));
    harness.run_steps(2);
    assert!(harness.state().real.measurements.is_empty());
    assert!(harness.query_by_label_contains("Angle ").is_none());
}

#[test]
fn a_region_reads_the_mean_sd_min_and_max_of_the_values_inside_it() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    // 64 x 64 px, 16-bit: a square of 2000 over columns and rows 16 to 47, 500 around it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("square.png");
    let value = |column: u32, row: u32| if (16..48).contains(&column) && (16..48).contains(&row) { 2000 } else { 500 };
    image::ImageBuffer::from_fn(64, 64, |x, y| image::Luma([value(x, y) as u16])).save(&path).unwrap();
    harness.state_mut().load(Slot::Real, ImageSource::File(path));
    step_until(&mut harness, Duration::from_secs(30), |app| {
        app.real.image.as_ref().is_some_and(|p| p.image.width_px() == 64)
    });
    harness.run_steps(2);
    harness.get_by_label("Region").click();
    harness.run_steps(2);
    let rect = harness.state().real.viewer_rect.unwrap();
    // Fitted and centred: image pixel p is at centre + (p - 32) * scale.
    let scale = rect.width().min(rect.height()) / 64.0;
    let point = |column: f32, row: f32| rect.center() + vec2(column - 32.0, row - 32.0) * scale;

    // Inside the square: every value 2000.
    let from = point(22.0, 22.0);
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, from, point(42.0, 42.0) - from);
    harness.run_steps(2);
    assert!(
        harness.query_by_label_contains("Region mean 2000.0, SD 0.000 (population), min 2000, max 2000,").is_some(),
        "{:?}",
        harness.state().real.measurements.items()
    );

    // Astride the square's left edge: the mean of what lies inside, counted here pixel by pixel.
    let from = point(6.0, 20.0);
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, from, point(26.0, 44.0) - from);
    harness.run_steps(2);
    let items = harness.state().real.measurements.items();
    let [_, Measurement::Region(region)] = items else { panic!("{items:?}") };
    let inside: Vec<f64> = (0..64u32)
        .flat_map(|row| (0..64u32).map(move |column| (column, row)))
        .filter(|&(column, row)| region.ellipse.contains_pixel(column as usize, row as usize))
        .map(|(column, row)| f64::from(value(column, row)))
        .collect();
    assert!(inside.contains(&500.0) && inside.contains(&2000.0), "the region straddles the edge");
    let mean = inside.iter().sum::<f64>() / inside.len() as f64;
    let stats = region.stats().flatten().unwrap();
    assert_eq!(stats.count_px, inside.len());
    assert!((stats.mean - mean).abs() < 1e-9, "{stats:?} vs {mean}");
    let expected =
        format!("Region mean {mean:.1}, SD {:.1} (population), min 500, max 2000, {} px, ", stats.sd, inside.len());
    assert!(harness.query_by_label_contains(&expected).is_some(), "{expected}");

    harness.get_by_label("Clear").click();
    harness.run_steps(2);
    assert!(harness.state().real.measurements.is_empty());
    assert!(harness.query_by_label_contains("Region mean").is_none());
}

#[test]
fn the_ctr_tool_reads_heart_over_thorax_width_and_labels_stay_in_the_view() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    let rect = harness.state().real.viewer_rect.unwrap();
    harness.get_by_label("CTR").click();
    harness.run_steps(2);
    assert_eq!(harness.state().measure_tool, MeasureTool::CardiothoracicRatio);
    let centre = rect.center();
    // A cardiac line, dropped with Esc.
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, centre, vec2(80.0, 0.0));
    assert!(harness.state().real.measurements.pending_cardiac().is_some());
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);
    assert_eq!(harness.state().real.measurements.pending_cardiac(), None, "Esc drops the cardiac line");

    // The heart 120 points across (slanting: only the width counts), then the chest 250 points across, drawn right to
    // left and ending 10 points inside the view's right edge.
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, centre - vec2(60.0, 0.0), vec2(120.0, 40.0));
    assert!(harness.state().real.measurements.items().is_empty(), "one line is no ratio yet");
    let thorax_right = pos2(rect.right() - 10.0, centre.y + 60.0);
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, thorax_right, vec2(-250.0, -10.0));
    harness.run_steps(2);
    let [Measurement::CardiothoracicRatio(ctr)] = harness.state().real.measurements.items() else {
        panic!("{:?}", harness.state().real.measurements.items())
    };
    let ratio = ctr.ratio().unwrap();
    assert!((ratio - 0.48).abs() < 1e-3, "{ctr:?}");
    // Square pixels of 0.168 mm, from the file's Pixel Spacing.
    let expected = format!(
        "CTR 0.48, heart {:.1} mm / thorax {:.1} mm",
        ctr.cardiac.width_px() * 0.168,
        ctr.thoracic.width_px() * 0.168
    );
    let label = harness.get_by_label(&expected);
    assert!(rect.contains_rect(label.rect()), "{:?} is cut off by the view's edge {rect:?}", label.rect());

    // A distance ending at the right edge: its label moves in too.
    harness.get_by_label("Distance").click();
    harness.run_steps(2);
    let from = pos2(rect.right() - 70.0, rect.top() + 40.0);
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, from, vec2(66.0, -30.0));
    harness.run_steps(2);
    let label = harness.get_by_label_contains("Distance ");
    assert!(rect.contains_rect(label.rect()), "{:?} is cut off by the view's edge {rect:?}", label.rect());
}

/// Writes a 64 x 64 px 16-bit PNG named `name` into `dir`: 2000 inside columns and rows 16 to 47, 500 around.
fn write_square_png(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let value = |column: u32, row: u32| if (16..48).contains(&column) && (16..48).contains(&row) { 2000 } else { 500 };
    image::ImageBuffer::from_fn(64, 64, |x, y| image::Luma([value(x, y) as u16])).save(&path).unwrap();
    path
}

#[test]
fn export_measurements_writes_every_views_measurements_as_csv() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    let dir = tempfile::tempdir().unwrap();
    // An image name with a comma and quotes: a CSV cell that must be quoted.
    let name = "square, \"b\".png";
    harness.state_mut().load(Slot::Artificial, ImageSource::File(write_square_png(dir.path(), name)));
    step_until(&mut harness, Duration::from_secs(30), |app| app.artificial.image.is_some());
    load_chest_cr(&mut harness);
    // Apart: a drag on one view must not pan the other.
    harness.get_by_label("Link viewports").click();
    harness.run_steps(2);
    assert!(!harness.state().settings.link_viewports);
    assert!(harness.get_by_label("Export CSV...").accesskit_node().is_disabled(), "nothing to export yet");

    let real = harness.state().real.viewer_rect.unwrap();
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, real.center(), vec2(90.0, 120.0));
    harness.get_by_label("CTR").click();
    harness.run_steps(2);
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, real.center() - vec2(50.0, 0.0), vec2(100.0, 0.0));
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, real.center() - vec2(100.0, -40.0), vec2(200.0, 0.0));
    harness.get_by_label("Region").click();
    harness.run_steps(2);
    let artificial = harness.state().artificial.viewer_rect.unwrap();
    let scale = artificial.width().min(artificial.height()) / 64.0;
    let point = |column: f32, row: f32| artificial.center() + vec2(column - 32.0, row - 32.0) * scale;
    drag(
        &mut harness,
        PointerButton::Primary,
        Modifiers::SHIFT,
        point(22.0, 22.0),
        point(42.0, 42.0) - point(22.0, 22.0),
    );
    harness.run_steps(2);
    assert_eq!(harness.state().real.measurements.items().len(), 2);
    assert_eq!(harness.state().artificial.measurements.items().len(), 1);

    // Through the button and the built-in chooser, which starts in the folder last used.
    thorax::app::path_dialog::set_dialog_backend(thorax::app::path_dialog::DialogBackend::BuiltIn);
    thorax::app::path_dialog::remember_folder(&harness.ctx, dir.path().to_path_buf());
    harness.get_by_label("Export CSV...").click();
    harness.run_steps(4);
    assert!(harness.query_by_label("Export measurements as CSV").is_some(), "the chooser is shown");
    // A measurement added while the chooser is open (the desktop's dialog leaves the views usable) is exported too.
    let real_image = harness.state().real.image.as_ref().unwrap().image.clone();
    let ctx = harness.ctx.clone();
    let late =
        [MeasureGesture::Drag { from_px: [10.0, 10.0], to_px: [60.0, 10.0] }, MeasureGesture::Release { at_px: None }];
    for gesture in late {
        harness.state_mut().real.measurements.apply(gesture, MeasureTool::Distance, &real_image, &ctx);
    }
    harness.get_by_label("Save").click();
    let csv_path = dir.path().join("measurements.csv");
    let reported = |app: &WorkbenchApp| format!("{:?}", app.message).to_lowercase().contains("measurement");
    step_until(&mut harness, Duration::from_secs(30), |app| !app.measurement_exporter.is_writing() && reported(app));
    let message = format!("{:?}", harness.state().message);
    assert!(message.contains("Exported 4 measurements") && message.contains("measurements.csv"), "{message}");

    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header, thorax::app::measurement::export::CSV_HEADER);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let cell = |row: usize, column: &str| rows[row][header.iter().position(|c| c == column).unwrap()].to_owned();
    let views: Vec<(String, String, String)> =
        (0..rows.len()).map(|r| (cell(r, "view"), cell(r, "image"), cell(r, "tool"))).collect();
    let chest = "chest_cr_pa_siim_nih.dcm".to_owned();
    assert_eq!(
        views,
        [
            ("Real".to_owned(), chest.clone(), "Distance".to_owned()),
            ("Real".to_owned(), chest.clone(), "CTR".to_owned()),
            ("Real".to_owned(), chest, "Distance".to_owned()),
            ("Artificial".to_owned(), name.to_owned(), "Region".to_owned()),
        ]
    );
    assert_eq!(cell(2, "value"), format!("{:.3}", 50.0 * 0.168), "the late distance");
    let items = harness.state().real.measurements.items().to_vec();
    let [Measurement::Distance(distance), Measurement::CardiothoracicRatio(ctr), _] = &items[..] else {
        panic!("{items:?}")
    };
    assert_eq!(cell(0, "value"), format!("{:.3}", distance.length_px() * 0.168));
    assert_eq!((cell(0, "unit"), cell(0, "x0_px")), ("mm".to_owned(), distance.from_px[0].to_string()));
    assert_eq!(cell(0, "spacing_source"), "Pixel Spacing (0028,0030)");
    assert_eq!((cell(1, "value"), cell(1, "unit")), ("0.5000".to_owned(), "ratio".to_owned()));
    assert_eq!(cell(1, "thoracic_width_mm"), format!("{:.3}", ctr.thoracic.width_px() * 0.168));
    assert_eq!(cell(1, "y3_px"), ctr.thoracic.y_px.to_string());
    // Wholly inside the square: every value 2000; a PNG gives no pixel size.
    let stats = (cell(3, "mean"), cell(3, "sd"), cell(3, "min"), cell(3, "max"));
    assert_eq!(stats, ("2000.0000".to_owned(), "0.0000".to_owned(), "2000".to_owned(), "2000".to_owned()));
    assert!(cell(3, "count_px").parse::<usize>().unwrap() > 200);
    assert_eq!(
        (cell(3, "area_mm2"), cell(3, "spacing_source")),
        (String::new(), "none (lengths in image pixels)".into())
    );

    // A file that cannot be written (its folder is missing) says so, naming it; nothing panics.
    let missing = dir.path().join("gone").join("m.csv");
    let ctx = harness.ctx.clone();
    harness.state_mut().export_measurements_to(&ctx, missing.clone());
    step_until(&mut harness, Duration::from_secs(30), |app| !app.measurement_exporter.is_writing());
    let message = format!("{:?}", harness.state().message);
    assert!(
        message.contains("Measurements not exported") && message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(harness.query_by_label_contains("Measurements not exported").is_some(), "shown in the status bar");
}

/// A large region is measured on a thread; an export asked for meanwhile waits for its statistics instead of writing
/// empty cells.
#[test]
fn an_export_waits_for_a_region_still_being_measured() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    // Drawn over a 4000 x 4000 px image (tens of milliseconds on a thread; the view then measures it again on its
    // film, also on a thread) and exported at once.
    let side = 4000;
    let values = (0..side * side).map(|i| (i % 4093) as f32).collect();
    let image = thorax::imaging::GrayImage::new(side, side, thorax::imaging::BitDepth::F32, values).unwrap();
    let (width, height) = (side as f32, side as f32);
    let ctx = harness.ctx.clone();
    let region =
        [MeasureGesture::Drag { from_px: [0.0, 0.0], to_px: [width, height] }, MeasureGesture::Release { at_px: None }];
    for gesture in region {
        harness.state_mut().real.measurements.apply(gesture, MeasureTool::Region, &image, &ctx);
    }
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("big.csv");
    harness.state_mut().export_measurements_to(&ctx, csv_path.clone());
    step_until(&mut harness, Duration::from_secs(30), |app| {
        !app.measurement_exporter.is_writing() && app.message.is_some()
    });
    let message = format!("{:?}", harness.state().message);
    assert!(message.contains("Exported 1 measurement to"), "{message}");
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let row = reader.records().next().unwrap().unwrap();
    let cell = |column: &str| row[header.iter().position(|c| c == column).unwrap()].to_owned();
    let [Measurement::Region(region)] = harness.state().real.measurements.items() else { panic!() };
    let stats = region.stats().flatten().unwrap();
    assert_eq!((cell("mean"), cell("count_px")), (format!("{:.4}", stats.mean), stats.count_px.to_string()));
    // The views cleared before the file is chosen: nothing is written, and the status line says why.
    harness.state_mut().real.measurements.clear();
    let empty_path = dir.path().join("none.csv");
    harness.state_mut().export_measurements_to(&ctx, empty_path.clone());
    step_until(&mut harness, Duration::from_secs(30), |app| !app.measurement_exporter.is_writing());
    harness.run_steps(2);
    let message = format!("{:?}", harness.state().message);
    assert!(message.contains("the views hold none now"), "{message}");
    assert!(!empty_path.exists());
}

#[test]
fn viewer_zooms_windows_inverts_and_links() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    harness.state_mut().load(Slot::Artificial, sample_source(1));
    step_until(&mut harness, Duration::from_secs(30), |app| app.artificial.image.is_some());

    let real_rect = harness.state().real.viewer_rect.unwrap();
    let before = harness.state().real.view.clone();

    // Wheel zoom about the cursor, mirrored in the linked view.
    let point = real_rect.center() + vec2(60.0, -40.0);
    scroll_at(&mut harness, point, 120.0);
    let app = harness.state();
    assert!(app.real.view.transform.zoom > before.transform.zoom * 1.2, "{:?}", app.real.view.transform);
    assert_ne!(app.real.view.transform.center_uv, before.transform.center_uv, "zoom is about the cursor");
    assert_eq!(app.artificial.view.transform, app.real.view.transform);

    // Right-drag: horizontal widens the window, vertical raises the centre.
    right_drag(&mut harness, real_rect.center(), vec2(100.0, 50.0));
    let app = harness.state();
    assert!(app.real.view.window.width > before.window.width, "{:?}", app.real.view.window);
    assert!(app.real.view.window.center > before.window.center, "{:?}", app.real.view.window);
    assert_eq!(app.artificial.view.window, app.real.view.window, "both samples are 8-bit");

    // Pixel value under the cursor reaches the status bar.
    harness.hover_at(real_rect.center());
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("Real (").is_some());

    // I inverts (both when linked).
    harness.key_press(egui::Key::I);
    harness.run_steps(2);
    assert!(harness.state().real.view.inverted && harness.state().artificial.view.inverted);
    mask_status_bar(&mut harness);
    harness.snapshot("viewer_zoomed_windowed_inverted");

    // Unlinked, the artificial view stays where it was.
    harness.get_by_label("Link viewports").click();
    harness.run_steps(2);
    assert!(!harness.state().settings.link_viewports);
    let artificial_before = harness.state().artificial.view.clone();
    scroll_at(&mut harness, real_rect.center(), 120.0);
    assert_eq!(harness.state().artificial.view, artificial_before);

    // Fit (the toolbar button; double-click does the same in the viewer) restores the whole image.
    harness.get_by_label("Fit").click();
    harness.run_steps(2);
    assert_eq!(harness.state().real.view.transform.zoom, 1.0);
}

#[test]
fn a_new_image_opens_at_its_own_window_not_the_previous_images() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    harness.state_mut().load(Slot::Artificial, sample_source(1));
    step_until(&mut harness, Duration::from_secs(30), |app| app.artificial.image.is_some());
    let opened_at = harness.state().real.view.window;
    // A preset on the linked views, then another film in the real view.
    harness.get_by_label("Lung").click();
    harness.run_steps(2);
    assert_ne!(harness.state().real.view.window, opened_at, "the preset changed the window");
    let second = thorax::imaging::samples::embedded_samples()[2].file_name.clone();
    harness.state_mut().load(Slot::Real, sample_source(2));
    step_until(&mut harness, Duration::from_secs(30), |app| {
        app.real.image.as_ref().is_some_and(|image| image.name == second)
    });
    assert_eq!(harness.state().real.view.window, opened_at, "8-bit films open at the full 0-255 window");
}

#[test]
fn presets_on_a_12_bit_film_in_a_16_bit_png_span_its_12_bits() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("film16.png");
    let film = image::ImageBuffer::from_fn(64, 64, |x, y| image::Luma([1000u16 + (x * 40 + y * 7) as u16]));
    film.save(&path).unwrap();
    harness.state_mut().load(Slot::Real, ImageSource::File(path));
    step_until(&mut harness, Duration::from_secs(30), |app| {
        app.real.image.as_ref().is_some_and(|p| p.image.depth() == thorax::imaging::BitDepth::U16)
    });
    harness.run_steps(2);
    harness.get_by_label("Full range").click();
    harness.run_steps(2);
    let window = harness.state().real.view.window;
    assert_eq!((window.center, window.width), (2047.5, 4095.0), "0..4095, not 0..65535");
    assert_eq!(harness.state().real.image.as_ref().unwrap().stats.histogram_range, (0.0, 4095.0));
}

#[test]
fn a_bad_file_shows_an_error_and_keeps_the_image() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    let shown = harness.state().real.image.as_ref().unwrap().name.clone();
    harness.state_mut().load(
        Slot::Real,
        ImageSource::Bytes {
            name: "truncated.png".to_owned(),
            bytes: std::sync::Arc::from(b"\x89PNG\r\n\x1a\n".to_vec()),
        },
    );
    step_until(&mut harness, Duration::from_secs(10), |app| app.real.loading.is_none());
    assert_eq!(harness.state().real.image.as_ref().unwrap().name, shown);
    assert!(harness.query_by_label_contains("truncated.png").is_some());
}

#[test]
fn picking_a_sample_in_the_browser_loads_it() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    harness.state_mut().load_sample(3);
    step_until(&mut harness, Duration::from_secs(30), |app| {
        app.real.image.as_ref().is_some_and(|i| i.name == "cxr_0004.png")
    });
}

/// A runner whose every job takes two seconds.
struct SleepyRunner;

impl JobRunner for SleepyRunner {
    fn device_label(&self) -> String {
        "sleepy test device".to_owned()
    }

    fn run(&mut self, _request: Request) -> Result<Output, EngineError> {
        std::thread::sleep(Duration::from_secs(2));
        Err(EngineError::WorkerGone)
    }
}

#[test]
fn a_slow_job_does_not_freeze_the_window() {
    let mut harness = harness_with(AppOptions {
        runner: Some(Box::new(|| Box::new(SleepyRunner) as Box<dyn JobRunner>)),
        load_first_sample: false,
        run_models: false,
        ..AppOptions::default()
    });
    harness.state_mut().load(Slot::Real, sample_source(0));
    step_until(&mut harness, Duration::from_secs(5), |app| {
        matches!(app.worker_status().activity, thorax::engine::WorkerActivity::Running { .. })
    });
    // While the job sleeps, frames keep coming quickly and the status bar says what runs.
    let frames_before = harness.state().frame_count;
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        harness.step();
        slowest = slowest.max(started.elapsed());
    }
    assert_eq!(harness.state().frame_count, frames_before + 20);
    assert!(matches!(harness.state().worker_status().activity, thorax::engine::WorkerActivity::Running { .. }));
    assert!(harness.query_by_label_contains("Worker: running").is_some());
    // Generous bound: a frame on a loaded 2-core CI machine with software rendering, against a 2 s job.
    assert!(slowest < Duration::from_millis(1000), "slowest frame {slowest:?}");
}

#[test]
fn moving_a_pathology_slider_regenerates_and_keeps_the_view() {
    let mut harness = harness_with(cpu_options());
    ready(&mut harness, true);
    let first = harness.state().artificial.image.as_ref().unwrap().image.clone();
    harness.state_mut().artificial.view.transform.zoom = 2.0;
    let index = harness.state().generator.current().unwrap().card.label_index("Cardiomegaly").unwrap();
    harness.state_mut().generator.labels[index] = 1.0;
    harness.state_mut().generate();
    step_until(&mut harness, Duration::from_secs(60), |app| {
        app.artificial.image.as_ref().is_some_and(|p| p.image.id() != first.id())
    });
    let app = harness.state();
    let second = &app.artificial.image.as_ref().unwrap().image;
    assert_eq!((second.width_px(), second.height_px()), (first.width_px(), first.height_px()));
    assert_ne!(second.pixels(), first.pixels(), "the label must change the image");
    assert_eq!(app.artificial.view.transform.zoom, 2.0, "a slider move keeps the zoom");
}

#[test]
fn heatmap_overlay_is_drawn_on_both_views() {
    let mut harness = harness_with(cpu_options());
    ready(&mut harness, true);
    assert!(harness.state().real.overlay.is_none());
    // CAM: the untrained placeholder gives Grad-CAM no positive evidence (a blank map with a note), CAM a real map.
    harness.state_mut().classifier.heatmap.method = thorax::models::heatmap::HeatmapMethod::Cam;
    harness.get_by_label("Heatmap overlay").click();
    step_until(&mut harness, Duration::from_secs(120), |app| {
        app.real.overlay.is_some() && app.artificial.overlay.is_some()
    });
    let app = harness.state();
    for pane in [&app.real, &app.artificial] {
        let overlay = pane.overlay.as_ref().unwrap();
        let image = &pane.image.as_ref().unwrap().image;
        assert_eq!((overlay.heatmap.width_px(), overlay.heatmap.height_px()), (image.width_px(), image.height_px()));
        assert!(overlay.heatmap.pixels().iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(overlay.heatmap.pixels().iter().any(|&v| v > 0.5), "CAM is min-max scaled: its peak is near 1");
    }
    // A new image drops the old map until its own arrives.
    harness.state_mut().load_sample(2);
    step_until(&mut harness, Duration::from_secs(60), |app| {
        app.real.image.as_ref().is_some_and(|p| p.name == "cxr_0003.png")
    });
    let real = &harness.state().real;
    if let Some(overlay) = &real.overlay {
        let image = &real.image.as_ref().unwrap().image;
        assert_eq!(overlay.heatmap.width_px(), image.width_px());
    }
    step_until(&mut harness, Duration::from_secs(60), |app| app.real.overlay.is_some());
    harness.run_steps(3);
    mask_status_bar(&mut harness);
    let timing = harness.get_by_label_contains("ms per image").rect();
    // Fixed width: the text's own width changes with the number.
    harness.mask(egui::Rect::from_min_size(timing.min, vec2(240.0, timing.height())));
    harness.snapshot("heatmap_overlay");

    // Export what both views show: overlay, 16-bit map and .npy per view, at each image's size.
    let out = tempfile::tempdir().unwrap();
    let maps = harness.state().heatmaps_to_export();
    assert_eq!(maps.len(), 2);
    // The overlay is blended as the views show it: their opacity and threshold, and their window.
    let shown = &harness.state().classifier.heatmap;
    assert_eq!((maps[0].style.opacity, maps[0].style.threshold), (shown.opacity, shown.threshold));
    let view = harness.state().real.view.clone();
    let (pixel, gray) = (harness.state().real.image.as_ref().unwrap().image.pixels()[0], maps[0].gray.values[0]);
    let expected = ((pixel - view.window.center) / view.window.width + 0.5).clamp(0.0, 1.0);
    assert!((gray - if view.inverted { 1.0 - expected } else { expected }).abs() < 1e-6);
    let ctx = harness.ctx.clone();
    harness.state_mut().heatmap_exporter.export_to(&ctx, maps, out.path().to_path_buf());
    step_until(
        &mut harness,
        Duration::from_secs(30),
        |app| matches!(&app.message, Some(thorax::app::workbench_app::StatusMessage::Info(m)) if m.starts_with("Wrote 2 heatmaps")),
    );
    let mut files: Vec<String> =
        std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files.len(), 6, "{files:?}");
    let real = harness.state().real.image.as_ref().unwrap().image.clone();
    let overlay = files.iter().find(|f| f.starts_with("Real_") && f.ends_with("_overlay.png")).unwrap();
    let written = image::open(out.path().join(overlay)).unwrap();
    assert_eq!((written.width() as usize, written.height() as usize), (real.width_px(), real.height_px()));
}

#[test]
fn dicom_opens_with_its_stored_window_and_a_tag_panel_marking_identifying_attributes() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dicom/real/chest_cr_pa_mono1_10bit_nometa.dcm");
    harness.state_mut().load(Slot::Real, ImageSource::File(path));
    step_until(&mut harness, Duration::from_secs(30), |app| app.real.image.as_ref().is_some_and(|p| p.dicom.is_some()));
    // The file stores C 550 / W 1024 for 10-bit MONOCHROME1 data: mirrored within 0..1023, the centre is 1023 - 550.
    let window = harness.state().real.view.window;
    assert!((window.center - 473.0).abs() < 1e-3 && (window.width - 1024.0).abs() < 1e-3, "{window:?}");
    assert!(harness.query_by_label_contains("MONOCHROME1").is_some(), "pane title names the DICOM photometry");

    harness.get_by_label("DICOM tags").click();
    harness.run_steps(3);
    assert!(harness.state().dicom_tags.open);
    assert!(harness.query_by_label_contains("attributes are identifying").is_some());
    assert!(harness.query_all_by_label("ID").count() >= 1, "identifying attributes are marked");
    assert!(harness.query_by_label("PatientName").is_some() || harness.query_by_label("PatientID").is_some());
    mask_status_bar(&mut harness);
    harness.snapshot("dicom_tags");

    // The filter narrows the listing.
    harness.get_by_label("Identifying only").click();
    harness.run_steps(3);
    assert!(harness.query_by_label("Rows").is_none(), "Rows is not identifying");
}

#[test]
fn built_in_file_chooser_opens_a_typed_path_and_reports_a_missing_one() {
    // Where the desktop has no file dialog (CI, minimal desktops) this chooser is the only way to open a file.
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    // After start-up, which applies the (default) setting.
    thorax::app::path_dialog::set_dialog_backend(thorax::app::path_dialog::DialogBackend::BuiltIn);
    let open_chooser = |harness: &mut Harness<'static, WorkbenchApp>| {
        harness.get_by_label("File").click();
        harness.run_steps(2);
        harness.get_by_label("Open real image...").click();
        // A new modal is measured in its first frame and drawn from the next.
        harness.run_steps(4);
        assert!(harness.query_by_label("Open real image").is_some(), "the chooser is shown");
    };
    open_chooser(&mut harness);
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real");

    let field = harness.get_by_label("File name or path");
    field.focus();
    field.type_text(&fixtures.join("missing.dcm").display().to_string());
    harness.run_steps(2);
    harness.get_by_label("Open").click();
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("missing.dcm does not exist").is_some());

    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    assert!(harness.query_by_label("File name or path").is_none(), "Cancel closes the chooser");
    assert_eq!(harness.state().real.image.as_ref().unwrap().name, "cxr_0001.png", "the shown image stays");

    open_chooser(&mut harness);
    let field = harness.get_by_label("File name or path");
    field.focus();
    field.type_text(&fixtures.join("chest_cr_pa_mono1_10bit_nometa.dcm").display().to_string());
    harness.run_steps(2);
    harness.key_press(egui::Key::Enter);
    step_until(&mut harness, Duration::from_secs(30), |app| app.real.image.as_ref().is_some_and(|p| p.dicom.is_some()));
    assert!(harness.query_by_label("File name or path").is_none(), "the chooser closes once a file is picked");
    assert_eq!(harness.state().settings.last_folder.as_deref(), Some(fixtures.as_path()));

    // Another dialog of the workbench (the study's) starts in the folder of that pick, not in the working folder.
    harness.get_by_label("Study").click();
    harness.run_steps(2);
    harness.get_by_label("Open study...").click();
    harness.run_steps(4);
    assert!(harness.query_by_label("Open study").is_some(), "the study chooser is shown");
    let shown = fixtures.display().to_string();
    assert!(harness.query_all_by_value(&shown).next().is_some(), "the chooser lists {shown}");
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
}

#[test]
fn ct_in_hounsfield_units_gets_hu_window_presets_and_an_out_of_domain_notice() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    assert!(harness.query_by_label_contains("not a radiograph").is_none(), "a chest film raises no doubt");
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real/ct_small_128.dcm");
    harness.state_mut().load(Slot::Real, ImageSource::File(path));
    step_until(&mut harness, Duration::from_secs(30), |app| app.real.image.as_ref().is_some_and(|p| p.dicom.is_some()));
    harness.run_steps(3);
    assert_eq!(harness.state().real.image.as_ref().unwrap().value_unit(), Some("HU"));

    harness.get_by_label("Lung").click();
    harness.run_steps(2);
    let window = harness.state().real.view.window;
    assert_eq!((window.center, window.width), (-600.0, 1500.0), "the CT lung window in HU, not a range fraction");
    harness.get_by_label("Mediastinum").click();
    harness.run_steps(2);
    let window = harness.state().real.view.window;
    assert_eq!((window.center, window.width), (50.0, 350.0));
    assert!(harness.query_by_label_contains("Real image: a CT image, not a radiograph").is_some());
    // HU beside a unitless radiograph: zoom stays linked, the window does not, and the toolbar says so.
    assert!(harness.query_by_label_contains("window/level not linked").is_none(), "no second image yet");
    harness.state_mut().load(Slot::Artificial, sample_source(1));
    step_until(&mut harness, Duration::from_secs(30), |app| app.artificial.image.is_some());
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("window/level not linked: different value units").is_some());
    // The CT stores no window: the tag panel does not claim the viewer opened at the pixel range.
    harness.get_by_label("DICOM tags").click();
    harness.run_steps(4);
    assert!(harness.query_by_label_contains("No window stored (the pixel range would be C").is_some());
}

#[test]
fn linked_views_share_a_window_only_on_a_common_scale() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    assert!(harness.state().settings.link_viewports, "linked by default");
    harness.state_mut().load(Slot::Artificial, sample_source(1));
    step_until(&mut harness, Duration::from_secs(30), |app| app.artificial.image.is_some());
    let ct = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real/ct_small_128.dcm");
    harness.state_mut().load(Slot::Real, ImageSource::File(ct.clone()));
    step_until(&mut harness, Duration::from_secs(30), |app| app.real.image.as_ref().is_some_and(|p| p.dicom.is_some()));
    harness.run_steps(3);
    let film_window = harness.state().artificial.view.window;

    // A CT's HU window means nothing on an 8-bit film beside it: the film keeps its own.
    harness.get_by_label("Lung").click();
    harness.run_steps(2);
    assert_eq!(harness.state().real.view.window.center, -600.0);
    assert_eq!(harness.state().artificial.view.window, film_window, "no HU window carried to a unitless image");

    // Two CTs share HU: the lung window is the same window on both, not the same fraction of two ranges.
    harness.state_mut().load(Slot::Artificial, ImageSource::File(ct));
    step_until(&mut harness, Duration::from_secs(30), |app| {
        app.artificial.image.as_ref().is_some_and(|p| p.value_unit() == Some("HU"))
    });
    harness.get_by_label("Lung").click();
    harness.run_steps(2);
    let window = harness.state().artificial.view.window;
    assert_eq!((window.center, window.width), (-600.0, 1500.0));
}

#[test]
fn the_generated_image_saves_as_png_with_its_provenance() {
    let mut harness = harness_with(cpu_options());
    ready(&mut harness, true);
    let (shown, seed) = {
        let app = harness.state();
        (app.artificial.image.as_ref().unwrap().image.clone(), app.generator.seed)
    };
    let record = harness.state().generated.clone().expect("the generator's image has a record");
    assert_eq!(record.image.id(), shown.id(), "the record is of the image shown");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(&record.file_name);
    let ctx = harness.ctx.clone();
    harness.state_mut().save_generated(&ctx, path.clone());
    step_until(
        &mut harness,
        Duration::from_secs(10),
        |app| matches!(&app.message, Some(thorax::app::workbench_app::StatusMessage::Info(m)) if m.starts_with("Saved")),
    );
    let (saved, provenance) = thorax::imaging::dicom::read_png_with_provenance(&path).unwrap();
    let thorax::imaging::dicom::GraySamples::U8(bytes) = saved.samples else { panic!("8-bit PNG expected") };
    assert!(bytes.iter().zip(shown.pixels()).all(|(&b, &v)| f32::from(b) == v), "the values shown are saved");
    let provenance = provenance.expect("provenance chunks");
    assert_eq!(provenance.seed, u64::from(seed));
    let generator = harness.state().generator.current().unwrap().sha256.clone();
    assert_eq!(provenance.model_sha256, generator);

    // An opened file in the artificial view is not the generator's: nothing to save.
    harness.state_mut().load(Slot::Artificial, sample_source(1));
    step_until(&mut harness, Duration::from_secs(30), |app| {
        app.artificial.image.as_ref().is_some_and(|p| p.image.id() != shown.id())
    });
    harness.get_by_label("File").click();
    harness.run_steps(2);
    assert!(harness.get_by_label("Save artificial image...").accesskit_node().is_disabled());
}

#[test]
fn side_panels_give_way_in_a_narrow_window() {
    let mut harness = Harness::builder()
        .with_size(vec2(1000.0, 700.0))
        .wgpu()
        .build_eframe(move |cc| WorkbenchApp::new(cc, viewer_options()).expect("app starts"));
    ready(&mut harness, false);
    let width = |rect: Option<egui::Rect>| rect.map_or(0.0, |r| r.width());
    let (real, artificial) = (width(harness.state().real.viewer_rect), width(harness.state().artificial.viewer_rect));
    // Side panels at a quarter of the width each leave the two viewers about half of it.
    assert!(real >= 220.0 && artificial >= 220.0, "viewers {real} and {artificial} px wide in a 1000 px window");
}

/// Every control of the side panels stays inside the window and clear of the viewers, down to 800 x 600: the
/// side panels give way and their rows wrap instead of running under the viewers or past the window's edge.
#[test]
fn small_windows_keep_the_side_panels_inside_the_window_and_clear_of_the_viewers() {
    for (width, height) in [(1024.0, 700.0), (800.0, 600.0)] {
        let mut harness = Harness::builder()
            .with_size(vec2(width, height))
            .wgpu()
            .build_eframe(move |cc| WorkbenchApp::new(cc, viewer_options()).expect("app starts"));
        ready(&mut harness, false);
        harness.state_mut().style.enabled = true;
        harness.run_steps(4);
        if let Ok(dir) = std::env::var("THORAX_FIGURE_DIR") {
            let image = harness.render().unwrap();
            image.save(std::path::Path::new(&dir).join(format!("small_window_{width}.png"))).unwrap();
        }
        // The viewers' right edge: the header of the last viewer.
        let viewers_right = harness.get_by_label("Style-transferred").rect().max.x;
        for label in ["Style transfer", "Classifier", "Apply to real image", "Direction"] {
            let rect = harness.get_by_label(label).rect();
            assert!(rect.min.x >= viewers_right, "{width} px: `{label}` at {rect:?} runs under the viewers");
        }
        let has_text = |node: &egui_kittest::kittest::AccessKitNode<'_>| {
            node.label().or_else(|| node.value()).is_some_and(|text| !text.is_empty())
        };
        for node in harness.query_all(egui_kittest::kittest::By::new().predicate(has_text)) {
            let rect = node.rect();
            let text = format!("{node:?}").chars().take(160).collect::<String>();
            assert!(rect.max.x <= width + 0.5, "{width} px: {text} at {rect:?} runs past the window's edge");
        }

        // The New study form scrolls, so its last button can be brought into the window.
        harness.state_mut().study_designer.open = true;
        harness.run_steps(4);
        if harness.get_by_label("Create study").rect().max.y > height {
            // The wheel over the form, just below the window's title.
            let title = harness.get_by_label("New study").rect();
            for _ in 0..6 {
                scroll_at(&mut harness, title.center() + vec2(0.0, 80.0), -200.0);
            }
        }
        let button = harness.get_by_label("Create study").rect();
        assert!(button.max.y <= height, "{width} px: `Create study` at {button:?} cannot be reached");
    }
}

#[test]
fn a_measurement_ends_where_the_button_came_up_even_without_a_move_there() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    let rect = harness.state().real.viewer_rect.unwrap();
    let (from, to) = (rect.center() - vec2(60.0, 0.0), rect.center() + vec2(90.0, 0.0));
    let press = |pressed, pos| Event::PointerButton {
        pos,
        button: PointerButton::Primary,
        pressed,
        modifiers: Modifiers::SHIFT,
    };
    harness.event(Event::ModifiersChanged(Modifiers::SHIFT));
    harness.hover_at(from);
    harness.event(press(true, from));
    harness.step();
    harness.hover_at(from + vec2(50.0, 0.0));
    harness.step();
    // The release comes at a place no move reported (X delivers the button event with its own position; a busy
    // frame can miss the last motion).
    harness.event(press(false, to));
    harness.step();
    harness.event(Event::ModifiersChanged(Modifiers::NONE));
    harness.run_steps(2);
    let [distance] = distances(&harness.state().real)[..] else { panic!("one distance") };
    let side_pt = rect.width().min(rect.height());
    let expected_px = 150.0 * 1024.0 / f64::from(side_pt);
    assert!((distance.length_px() - expected_px).abs() < 0.02 * expected_px, "{distance:?} vs {expected_px} px");
}
