//! File ▸ Save view as PNG: the saved file against the screen the GPU drew, and the menu path with its file.

use std::time::Duration;

use egui::{Modifiers, PointerButton, vec2};
use egui_kittest::kittest::Queryable as _;
use thorax::app::radiograph_renderer::Colormap;
use thorax::app::view_png::ViewSnapshot;
use thorax::engine::{ImageSource, Slot};
use thorax::imaging::Window;

use super::ui_workbench::{drag, harness_with, load_chest_cr, ready, step_until, viewer_options};

/// The CPU drawing of a view (radiograph shading, measurements, corner text) against what wgpu put on screen.
#[test]
fn a_saved_view_is_what_the_screen_shows() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    {
        // Zoomed, panned, windowed, inverted and in a colour map: every step of the shader is exercised.
        let pane = &mut harness.state_mut().real;
        let (lo, hi) = pane.image.as_ref().unwrap().image.display_range();
        let view = &mut pane.view;
        view.transform.zoom = 1.7;
        view.transform.center_uv = [0.42, 0.55];
        view.window = Window { center: lo + 0.55 * (hi - lo), width: 0.6 * (hi - lo) };
        view.inverted = true;
        // Inferno never reaches the measurements' yellow, so the yellow counted below is the distance's.
        view.colormap = Colormap::Inferno;
    }
    harness.run_steps(3);
    let rect = harness.state().real.viewer_rect.unwrap();
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, rect.center() - vec2(80.0, 0.0), vec2(160.0, 40.0));
    // The pointer off the distance's ends: a hovered handle's ring is the screen's working state, not saved.
    harness.hover_at(rect.left_top() + vec2(5.0, 5.0));
    harness.run_steps(3);
    assert_eq!(harness.state().real.measurements.items().len(), 1);

    let screen = harness.render().unwrap();
    let ppp = harness.ctx.pixels_per_point();
    let saved = ViewSnapshot::of(&harness.state().real, &harness.ctx).unwrap().render().unwrap();
    if let Some(dir) = std::env::var_os("THORAX_FIGURE_DIR") {
        // To look at by eye: the saved view beside the screen.
        saved.save(std::path::Path::new(&dir).join("saved_view.png")).unwrap();
        screen.save(std::path::Path::new(&dir).join("screen.png")).unwrap();
    }
    let expected_size = ((rect.width() * ppp).round() as u32, (rect.height() * ppp).round() as u32);
    assert_eq!(saved.dimensions(), expected_size);
    let (x0, y0) = ((rect.min.x * ppp).round() as u32, (rect.min.y * ppp).round() as u32);
    let (mut differing, mut total_difference, mut yellow) = (0usize, 0u64, 0usize);
    for (x, y, pixel) in saved.enumerate_pixels() {
        let on_screen = screen.get_pixel(x0 + x, y0 + y).0;
        let difference = (0..3).map(|c| pixel.0[c].abs_diff(on_screen[c])).max().unwrap_or(0);
        total_difference += u64::from(difference);
        differing += usize::from(difference > 6);
        // The measurement's yellow (255, 220, 40).
        yellow += usize::from(pixel.0[0] > 240 && pixel.0[1] > 200 && pixel.0[2] < 80);
    }
    let count = (saved.width() * saved.height()) as usize;
    let mean_difference = total_difference as f64 / count as f64;
    eprintln!("{differing} of {count} pixels differ by more than 6 levels; mean difference {mean_difference:.3}");
    assert!(yellow > 150, "the distance is drawn: {yellow} yellow pixels");
    // Text and line edges are antialiased by two rasterizers; the radiograph itself agrees to a level or two.
    assert!(differing * 200 < count, "{differing} of {count} pixels differ");
    assert!(mean_difference < 1.0, "mean difference {mean_difference}");
}

/// The PNG's text chunks, keyword to text (tEXt and iTXt).
fn text_chunks(path: &std::path::Path) -> Vec<(String, String)> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    let latin = info.uncompressed_latin1_text.iter().map(|chunk| (chunk.keyword.clone(), chunk.text.clone()));
    let utf8 = info.utf8_text.iter().map(|chunk| (chunk.keyword.clone(), chunk.get_text().unwrap()));
    latin.chain(utf8).collect()
}

#[test]
fn the_file_menu_saves_a_view_with_its_badge_and_says_what_it_is() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    let fixture = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real");
    harness.state_mut().load(Slot::Artificial, ImageSource::File(fixture.join("chest_cr_pa_siim_nih.dcm")));
    step_until(&mut harness, Duration::from_secs(30), |app| app.artificial.image.is_some());
    harness.run_steps(3);
    let dir = tempfile::tempdir().unwrap();
    thorax::app::path_dialog::set_dialog_backend(thorax::app::path_dialog::DialogBackend::BuiltIn);
    thorax::app::path_dialog::remember_folder(&harness.ctx, dir.path().to_path_buf());

    harness.get_by_label("File").click();
    harness.run_steps(2);
    harness.get_by_label("Save view as PNG").hover();
    harness.run_steps(3);
    harness.get_by_label("Artificial view...").click();
    harness.run_steps(4);
    assert!(harness.query_by_label("Save view as PNG").is_some(), "the chooser is shown");
    harness.get_by_label("Save").click();
    let reported = |app: &thorax::app::WorkbenchApp| format!("{:?}", app.message).contains("view");
    step_until(&mut harness, Duration::from_secs(30), |app| !app.view_png.is_busy() && reported(app));
    let message = format!("{:?}", harness.state().message);
    let path = dir.path().join("chest_cr_pa_siim_nih_artificial_view.png");
    assert!(message.contains("Saved the view") && message.contains(&path.display().to_string()), "{message}");

    let saved = image::open(&path).unwrap().to_rgb8();
    let rect = harness.state().artificial.viewer_rect.unwrap();
    let ppp = harness.ctx.pixels_per_point();
    assert_eq!(saved.width(), (rect.width() * ppp).round() as u32);
    // The ARTIFICIAL badge's amber is burned in at the top left, where the view draws it.
    let amber = |p: &image::Rgb<u8>| p.0 == [255, 170, 60];
    let badge_pixels = saved.enumerate_pixels().filter(|(x, y, p)| *x < 120 && *y < 30 && amber(p)).count();
    assert!(badge_pixels > 300, "badge pixels: {badge_pixels}");
    let chunks = text_chunks(&path);
    let text = |key: &str| chunks.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    assert_eq!(text("thorax.synthetic").as_deref(), Some("true"));
    assert_eq!(text("Title").as_deref(), Some("Artificial view: chest_cr_pa_siim_nih.dcm"));
    assert!(text("Description").unwrap().contains("window C"), "{chunks:?}");

    // The real view carries no such claim.
    let real_path = dir.path().join("real.png");
    let ctx = harness.ctx.clone();
    harness.state_mut().save_view_png_to(&ctx, Slot::Real, real_path.clone());
    step_until(&mut harness, Duration::from_secs(30), |app| !app.view_png.is_busy());
    harness.run_steps(2);
    assert!(text_chunks(&real_path).iter().all(|(k, _)| k != "thorax.synthetic"));

    // A file that cannot be written says so, naming it.
    let missing = dir.path().join("gone").join("view.png");
    harness.state_mut().save_view_png_to(&ctx, Slot::Real, missing.clone());
    step_until(&mut harness, Duration::from_secs(30), |app| !app.view_png.is_busy());
    harness.run_steps(2);
    let message = format!("{:?}", harness.state().message);
    assert!(message.contains("View not saved") && message.contains(&missing.display().to_string()), "{message}");
}
