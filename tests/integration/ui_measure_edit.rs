//! Editing measurements through the real viewer: a plain drag on a handle moves it (and does not pan), a click
//! selects and Delete removes only the selected one, and the Cobb angle tool.

use egui::{Event, Modifiers, PointerButton, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use thorax::app::WorkbenchApp;
use thorax::app::measurement::{MeasureTool, Measurement};

use super::ui_workbench::{distances, drag, harness_with, load_chest_cr, ready, viewer_options};

/// The chest CR's Pixel Spacing, mm: square pixels.
const SPACING_MM: f64 = 0.168;

/// A plain click (no modifier) at `pos`.
fn click(harness: &mut Harness<'static, WorkbenchApp>, pos: egui::Pos2) {
    let press =
        |pressed| Event::PointerButton { pos, button: PointerButton::Primary, pressed, modifiers: Modifiers::NONE };
    harness.hover_at(pos);
    harness.event(press(true));
    harness.event(press(false));
    harness.run_steps(2);
}

/// Image pixels per screen point with the 1024 px film fitted to the viewer.
fn px_per_point(rect: egui::Rect) -> f64 {
    1024.0 / f64::from(rect.width().min(rect.height()))
}

#[test]
fn a_plain_drag_on_a_distance_end_moves_it_and_does_not_pan() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    let rect = harness.state().real.viewer_rect.unwrap();
    let (from, to) = (rect.center() - vec2(60.0, 0.0), rect.center() + vec2(60.0, 0.0));
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, from, to - from);
    harness.run_steps(2);
    let [drawn] = distances(&harness.state().real)[..] else { panic!("one distance") };
    let transform = harness.state().real.view.transform;

    // Hovering the end marks it as a handle.
    harness.hover_at(to + vec2(2.0, 1.0));
    harness.run_steps(2);
    assert!(harness.state().real.measurements.hovered().is_some(), "the end is a handle under the pointer");
    // 120 points across, then the end dragged 90 points down (from 2 points off it): 150 points long.
    drag(&mut harness, PointerButton::Primary, Modifiers::NONE, to + vec2(2.0, 1.0), vec2(0.0, 90.0));
    harness.run_steps(2);
    assert_eq!(harness.state().real.view.transform, transform, "moving a handle does not pan");
    let [moved] = distances(&harness.state().real)[..] else { panic!("still one distance") };
    assert_eq!(moved.from_px, drawn.from_px, "the other end stays");
    let expected_px = 150.0 * px_per_point(rect);
    assert!((moved.length_px() - expected_px).abs() < 0.01 * expected_px, "{moved:?} vs {expected_px} px");
    let label = format!("Distance {:.1} mm", moved.length_px() * SPACING_MM);
    assert!(harness.query_by_label(&label).is_some(), "{label} shown over the image");
    let old_label = format!("Distance {:.1} mm", drawn.length_px() * SPACING_MM);
    assert!(harness.query_by_label(&old_label).is_none(), "{old_label} is gone");

    // A plain drag off every handle still pans, and moves nothing.
    drag(&mut harness, PointerButton::Primary, Modifiers::NONE, rect.center() - vec2(0.0, 150.0), vec2(40.0, 0.0));
    harness.run_steps(2);
    assert_ne!(harness.state().real.view.transform, transform, "a drag off the handles pans");
    assert_eq!(distances(&harness.state().real), [moved]);
}

#[test]
fn a_click_selects_and_delete_removes_only_that_measurement() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    let rect = harness.state().real.viewer_rect.unwrap();
    let upper = rect.center() - vec2(100.0, 60.0);
    let lower = rect.center() + vec2(-100.0, 60.0);
    for from in [upper, lower] {
        drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, from, vec2(160.0, 0.0));
    }
    harness.run_steps(2);
    let [first, second] = distances(&harness.state().real)[..] else { panic!("two distances") };

    // A click on the lower line's middle (2 points off it) selects it; a click on nothing deselects.
    click(&mut harness, lower + vec2(80.0, 2.0));
    assert_eq!(harness.state().real.measurements.selected(), Some(1));
    click(&mut harness, rect.center() + vec2(0.0, 150.0));
    assert_eq!(harness.state().real.measurements.selected(), None);
    // Esc deselects too: Delete then removes nothing.
    click(&mut harness, lower + vec2(80.0, 0.0));
    assert_eq!(harness.state().real.measurements.selected(), Some(1));
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);
    assert_eq!(harness.state().real.measurements.selected(), None);
    harness.key_press(egui::Key::Delete);
    harness.run_steps(2);
    assert_eq!(distances(&harness.state().real), [first, second]);

    // Selected again and deleted: the other stays, with its label.
    click(&mut harness, lower + vec2(80.0, 0.0));
    harness.key_press(egui::Key::Delete);
    harness.run_steps(2);
    assert_eq!(distances(&harness.state().real), [first]);
    assert_eq!(harness.query_all_by_label_contains("Distance ").count(), 1);
    // Backspace does the same.
    click(&mut harness, upper + vec2(40.0, 0.0));
    harness.key_press(egui::Key::Backspace);
    harness.run_steps(2);
    assert!(harness.state().real.measurements.items().is_empty());
}

#[test]
fn a_click_on_a_label_selects_its_measurement() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    let rect = harness.state().real.viewer_rect.unwrap();
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, rect.center() - vec2(100.0, 60.0), vec2(120.0, 0.0));
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, rect.center() + vec2(-100.0, 60.0), vec2(60.0, 0.0));
    harness.run_steps(2);
    assert_eq!(harness.state().real.measurements.selected(), None);
    // The label of the second (shorter) distance: its value, well away from both lines.
    let second = distances(&harness.state().real)[1];
    let text = format!("Distance {:.1} mm", second.length_px() * SPACING_MM);
    let label = harness.get_by_label(&text).rect();
    click(&mut harness, label.center());
    assert_eq!(harness.state().real.measurements.selected(), Some(1));
    harness.key_press(egui::Key::Delete);
    harness.run_steps(2);
    assert_eq!(distances(&harness.state().real).len(), 1, "the labelled one is gone");
}

#[test]
fn arrow_keys_nudge_the_selected_measurement_by_image_pixels() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    let rect = harness.state().real.viewer_rect.unwrap();
    let from = rect.center() - vec2(80.0, 40.0);
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, from, vec2(160.0, 0.0));
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, from + vec2(0.0, 120.0), vec2(160.0, 0.0));
    harness.run_steps(2);
    let [first, second] = distances(&harness.state().real)[..] else { panic!("two distances") };
    let transform = harness.state().real.view.transform;

    // Without a selection the arrows move nothing.
    harness.key_press(egui::Key::ArrowRight);
    harness.run_steps(2);
    assert_eq!(distances(&harness.state().real), [first, second]);
    // The upper one selected: three presses right, then Shift + Down (ten pixels) and Up.
    click(&mut harness, from + vec2(80.0, 0.0));
    assert_eq!(harness.state().real.measurements.selected(), Some(0));
    for _ in 0..3 {
        harness.key_press(egui::Key::ArrowRight);
    }
    harness.key_press_modifiers(Modifiers::SHIFT, egui::Key::ArrowDown);
    harness.key_press(egui::Key::ArrowUp);
    harness.run_steps(2);
    let moved = distances(&harness.state().real);
    let shifted = |p: [f32; 2]| [p[0] + 3.0, p[1] + 9.0];
    assert_eq!(moved[0].from_px, shifted(first.from_px));
    assert_eq!(moved[0].to_px, shifted(first.to_px));
    assert_eq!(moved[1], second, "only the selected one moves");
    assert_eq!(harness.state().real.view.transform, transform, "the view does not pan");
}

#[test]
fn the_cobb_tool_reads_the_acute_angle_between_two_endplate_lines() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    let rect = harness.state().real.viewer_rect.unwrap();
    harness.get_by_label("Cobb").click();
    harness.run_steps(2);
    assert_eq!(harness.state().measure_tool, MeasureTool::Cobb);
    // A first line, dropped with Esc.
    let upper = rect.center() - vec2(80.0, 120.0);
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, upper, vec2(160.0, 0.0));
    assert!(harness.state().real.measurements.pending_endplate().is_some());
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);
    assert_eq!(harness.state().real.measurements.pending_endplate(), None, "Esc drops the first line");

    // Tilted 10 degrees up to the right, then 30 degrees down to the right drawn right to left: 40 between them.
    let (sin10, cos10) = 10f32.to_radians().sin_cos();
    let (sin30, cos30) = 30f32.to_radians().sin_cos();
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, upper, vec2(cos10, -sin10) * 160.0);
    assert!(harness.state().real.measurements.items().is_empty(), "one line is no angle yet");
    let lower_right = rect.center() + vec2(80.0, 120.0);
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, lower_right, vec2(-cos30, -sin30) * 160.0);
    harness.run_steps(2);
    let [Measurement::Cobb(cobb)] = harness.state().real.measurements.items() else {
        panic!("{:?}", harness.state().real.measurements.items())
    };
    let spacing = harness.state().real.image.as_ref().unwrap().dicom.as_ref().unwrap().summary.pixel_spacing;
    let degrees = cobb.degrees(spacing.as_ref()).unwrap();
    assert!((degrees - 40.0).abs() < 0.1, "{cobb:?}: {degrees}");
    assert!(harness.query_by_label(&format!("Cobb {degrees:.1}°")).is_some());

    // Its end dragged level with the other line's: the lines are parallel.
    let end = lower_right + vec2(-cos30, -sin30) * 160.0;
    drag(
        &mut harness,
        PointerButton::Primary,
        Modifiers::NONE,
        end,
        vec2(0.0, 160.0 * (sin30 + sin10 * cos30 / cos10)),
    );
    harness.run_steps(2);
    let [Measurement::Cobb(cobb)] = harness.state().real.measurements.items() else { panic!() };
    let degrees = cobb.degrees(spacing.as_ref()).unwrap();
    assert!(degrees < 0.2, "{cobb:?}: {degrees}");
}

#[test]
fn a_clicked_handle_is_moved_alone_by_the_arrow_keys() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    let rect = harness.state().real.viewer_rect.unwrap();
    let from = rect.center() - vec2(80.0, 40.0);
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, from, vec2(160.0, 0.0));
    harness.run_steps(2);
    let [before] = distances(&harness.state().real)[..] else { panic!("one distance") };
    // A click on its right end (a handle), then Right twice and Shift + Up.
    click(&mut harness, from + vec2(160.0, 0.0));
    let selected = harness.state().real.measurements.selected_handle();
    assert_eq!(selected.map(|h| (h.item, h.handle)), Some((0, 1)), "the end is selected");
    harness.key_press(egui::Key::ArrowRight);
    harness.key_press(egui::Key::ArrowRight);
    harness.key_press_modifiers(Modifiers::SHIFT, egui::Key::ArrowUp);
    harness.run_steps(2);
    let [after] = distances(&harness.state().real)[..] else { panic!("one distance") };
    assert_eq!(after.from_px, before.from_px, "the other end stays");
    assert_eq!(after.to_px, [before.to_px[0] + 2.0, before.to_px[1] - 10.0]);
    // A click on the line: the arrows move the whole distance again.
    click(&mut harness, from + vec2(60.0, 0.0));
    assert_eq!(harness.state().real.measurements.selected_handle(), None);
    harness.key_press(egui::Key::ArrowLeft);
    harness.run_steps(2);
    let [whole] = distances(&harness.state().real)[..] else { panic!("one distance") };
    assert_eq!((whole.from_px[0], whole.to_px[0]), (after.from_px[0] - 1.0, after.to_px[0] - 1.0));
}

/// The Measure menu offers what the toolbar does: the tool, Clear and Export CSV.
#[test]
fn the_measure_menu_chooses_the_tool_clears_and_exports() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    let open_menu = |harness: &mut Harness<'static, WorkbenchApp>| {
        // The menu, not the display toolbar's "Measure" heading.
        harness.get_by_role_and_label(egui::accesskit::Role::Button, "Measure").click();
        harness.run_steps(3);
    };
    open_menu(&mut harness);
    assert!(harness.get_by_label("Clear all measurements").accesskit_node().is_disabled(), "nothing to clear yet");
    // The menu's radio button, not the toolbar's.
    harness.get_by_role_and_label(egui::accesskit::Role::RadioButton, "Angle").click();
    harness.run_steps(3);
    assert_eq!(harness.state().measure_tool, MeasureTool::Angle);
    assert!(harness.query_by_label("Clear all measurements").is_none(), "choosing a tool closes the menu");

    // Back to distances through the menu, then one drawn.
    open_menu(&mut harness);
    harness.get_by_role_and_label(egui::accesskit::Role::RadioButton, "Distance").click();
    harness.run_steps(3);
    assert_eq!(harness.state().measure_tool, MeasureTool::Distance);
    let rect = harness.state().real.viewer_rect.unwrap();
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, rect.center(), vec2(100.0, 0.0));
    harness.run_steps(2);
    assert_eq!(distances(&harness.state().real).len(), 1);

    thorax::app::path_dialog::set_dialog_backend(thorax::app::path_dialog::DialogBackend::BuiltIn);
    open_menu(&mut harness);
    harness.get_by_label("Export measurements as CSV...").click();
    harness.run_steps(4);
    assert!(harness.query_by_label("Export measurements as CSV").is_some(), "the chooser is shown");
    harness.get_by_label("Cancel").click();
    harness.run_steps(3);

    open_menu(&mut harness);
    harness.get_by_label("Clear all measurements").click();
    harness.run_steps(3);
    assert!(harness.state().real.measurements.is_empty());
}
