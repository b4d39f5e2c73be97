//! File ▸ Save view as PNG: the saved file against the screen the GPU drew, and the menu path with its file.

use std::time::Duration;

use egui::{Modifiers, PointerButton, vec2};
use egui_kittest::kittest::Queryable as _;
use thorax::app::measurement::Measurement;
use thorax::app::radiograph_renderer::Colormap;
use thorax::app::view_png::{SavedExtent, ViewSnapshot};
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
    harness.state_mut().save_view_png_to(&ctx, Slot::Real, SavedExtent::AsShown, real_path.clone());
    step_until(&mut harness, Duration::from_secs(30), |app| !app.view_png.is_busy());
    harness.run_steps(2);
    assert!(text_chunks(&real_path).iter().all(|(k, _)| k != "thorax.synthetic"));

    // A file that cannot be written says so, naming it.
    let missing = dir.path().join("gone").join("view.png");
    harness.state_mut().save_view_png_to(&ctx, Slot::Real, SavedExtent::AsShown, missing.clone());
    step_until(&mut harness, Duration::from_secs(30), |app| !app.view_png.is_busy());
    harness.run_steps(2);
    let message = format!("{:?}", harness.state().message);
    assert!(message.contains("View not saved") && message.contains(&missing.display().to_string()), "{message}");
}

/// File ▸ Save view as PNG ▸ Real image, full resolution: the whole image, one PNG pixel per image pixel, windowed as
/// the view is, with the measurement where it lies on the anatomy, whatever the screen's zoom and pan.
#[test]
fn the_whole_image_is_saved_one_pixel_per_image_pixel_with_its_measurement() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    let rect = harness.state().real.viewer_rect.unwrap();
    drag(&mut harness, PointerButton::Primary, Modifiers::SHIFT, rect.center() - vec2(60.0, 30.0), vec2(120.0, 60.0));
    {
        // Zoomed and panned afterwards: the screen now shows a crop, the file the whole image.
        let pane = &mut harness.state_mut().real;
        let (lo, hi) = pane.image.as_ref().unwrap().image.display_range();
        pane.view.transform.zoom = 2.5;
        pane.view.transform.center_uv = [0.3, 0.35];
        pane.view.window = Window { center: lo + 0.5 * (hi - lo), width: 0.7 * (hi - lo) };
    }
    harness.run_steps(3);
    let dir = tempfile::tempdir().unwrap();
    thorax::app::path_dialog::set_dialog_backend(thorax::app::path_dialog::DialogBackend::BuiltIn);
    thorax::app::path_dialog::remember_folder(&harness.ctx, dir.path().to_path_buf());
    harness.get_by_label("File").click();
    harness.run_steps(2);
    harness.get_by_label("Save view as PNG").hover();
    harness.run_steps(3);
    harness.get_by_label("Real image, full resolution...").click();
    harness.run_steps(4);
    harness.get_by_label("Save").click();
    let reported = |app: &thorax::app::WorkbenchApp| format!("{:?}", app.message).contains("Saved");
    step_until(&mut harness, Duration::from_secs(60), |app| !app.view_png.is_busy() && reported(app));
    let message = format!("{:?}", harness.state().message);
    let path = dir.path().join("chest_cr_pa_siim_nih_real_full.png");
    assert!(message.contains("Saved the whole image"), "{message}");
    let saved = image::open(&path).unwrap().to_rgb8();

    let pane = &harness.state().real;
    let image = &pane.image.as_ref().unwrap().image;
    assert_eq!(saved.dimensions(), (image.width_px() as u32, image.height_px() as u32));
    let Measurement::Distance(distance) = pane.measurements.items()[0] else { panic!("not a distance") };
    // Yellow (the measurement's colour) lies on the segment between its ends in image pixels.
    let on_segment = |x: f32, y: f32| {
        let ([ax, ay], [bx, by]) = (distance.from_px, distance.to_px);
        let (dx, dy) = (bx - ax, by - ay);
        let t = (((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
        (x - ax - t * dx).hypot(y - ay - t * dy)
    };
    let yellow = |p: &image::Rgb<u8>| p.0[0] > 240 && p.0[1] > 200 && p.0[2] < 80;
    let yellow_near = saved
        .enumerate_pixels()
        .filter(|(x, y, p)| yellow(p) && on_segment(*x as f32 + 0.5, *y as f32 + 0.5) < 12.0)
        .count();
    let length_px = distance.length_px() as usize;
    assert!(yellow_near > length_px, "{yellow_near} yellow pixels along a {length_px} px distance");
    // Elsewhere (off the line, its label and the corner texts) each pixel is its image pixel, windowed.
    let window = pane.view.window;
    let (mut compared, mut off) = (0usize, 0usize);
    for (x, y, pixel) in saved.enumerate_pixels().step_by(7) {
        let (xf, yf) = (x as f32 + 0.5, y as f32 + 0.5);
        let near_text = yf < 0.1 * saved.height() as f32 || yf > 0.9 * saved.height() as f32;
        // The length's label is drawn beside the segment's far end.
        let near_label = (xf - distance.to_px[0]).hypot(yf - distance.to_px[1]) < 220.0;
        if on_segment(xf, yf) < 40.0 || near_text || near_label {
            continue;
        }
        let value = image.value_at(x as usize, y as usize).unwrap();
        let expected = (window.display_fraction(value, false) * 255.0).round();
        compared += 1;
        if (f32::from(pixel.0[0]) - expected).abs() > 1.0 || pixel.0[0] != pixel.0[2] {
            off += 1;
            if off < 20 {
                eprintln!("({x}, {y}): {:?}, expected {expected}", pixel.0);
            }
        }
    }
    if let Some(dir) = std::env::var_os("THORAX_FIGURE_DIR") {
        saved.save(std::path::Path::new(&dir).join("whole_image.png")).unwrap();
    }
    assert!(compared > 10_000 && off * 1000 < compared, "{off} of {compared} pixels are not their windowed value");
}

/// File ▸ Save view as PNG ▸ Views side by side...: the real and the artificial view in one PNG, each exactly as it is
/// saved alone, left to right with a gap, and text that says which one is artificial.
#[test]
fn views_side_by_side_are_each_view_as_saved_alone_left_to_right() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    // The artificial view as a workbench without a generator fills it: from a file.
    let fixture =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real/ct_small_128.dcm");
    harness.state_mut().load(Slot::Artificial, ImageSource::File(fixture));
    step_until(&mut harness, Duration::from_secs(30), |app| app.artificial.image.is_some());
    harness.run_steps(3);
    let real = ViewSnapshot::of(&harness.state().real, &harness.ctx).unwrap().render().unwrap();
    let artificial = ViewSnapshot::of(&harness.state().artificial, &harness.ctx).unwrap().render().unwrap();

    let dir = tempfile::tempdir().unwrap();
    thorax::app::path_dialog::set_dialog_backend(thorax::app::path_dialog::DialogBackend::BuiltIn);
    thorax::app::path_dialog::remember_folder(&harness.ctx, dir.path().to_path_buf());
    harness.get_by_label("File").click();
    harness.run_steps(2);
    harness.get_by_label("Save view as PNG").hover();
    harness.run_steps(3);
    harness.get_by_label("Views side by side...").click();
    harness.run_steps(4);
    harness.get_by_label("Save").click();
    let reported = |app: &thorax::app::WorkbenchApp| format!("{:?}", app.message).contains("Saved");
    step_until(&mut harness, Duration::from_secs(60), |app| !app.view_png.is_busy() && reported(app));
    let message = format!("{:?}", harness.state().message);
    assert!(message.contains("Saved 2 views side by side"), "{message}");

    let path = dir.path().join("chest_cr_pa_siim_nih_side_by_side.png");
    let saved = image::open(&path).unwrap().to_rgb8();
    let gap = 8;
    assert_eq!(saved.dimensions(), (real.width() + gap + artificial.width(), real.height().max(artificial.height())));
    let left = image::imageops::crop_imm(&saved, 0, 0, real.width(), real.height()).to_image();
    assert!(left == real, "the left part is the real view as saved alone");
    let right = image::imageops::crop_imm(&saved, real.width() + gap, 0, artificial.width(), artificial.height());
    assert!(right.to_image() == artificial, "the right part is the artificial view as saved alone");
    let chunks = text_chunks(&path);
    let text = |key: &str| chunks.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    assert_eq!(text("thorax.synthetic"), None, "a real film is in it: not all of it is synthetic");
    let comment = text("Comment").unwrap();
    assert!(comment.contains("Real: as loaded") && comment.contains("Artificial: ARTIFICIAL image"), "{comment}");
    assert!(text("Title").unwrap().contains("chest_cr_pa_siim_nih.dcm"), "{chunks:?}");
}

/// A full-resolution save of an image smaller than its view keeps the badge and text at their on-screen pixel size,
/// not shrunk with the image.
#[test]
fn a_small_image_saved_at_full_resolution_keeps_its_badge_legible() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    let fixture =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real/ct_small_128.dcm");
    harness.state_mut().load(Slot::Artificial, ImageSource::File(fixture));
    step_until(&mut harness, Duration::from_secs(30), |app| app.artificial.image.is_some());
    harness.run_steps(3);
    let pane = &harness.state().artificial;
    assert!(pane.viewer_rect.unwrap().width() > 128.0, "the view is wider than the image");
    let as_shown = ViewSnapshot::of(pane, &harness.ctx).unwrap().render().unwrap();
    let full = ViewSnapshot::of(pane, &harness.ctx).unwrap().whole_image().render().unwrap();
    assert_eq!(full.dimensions(), (128, 128));
    // The badge's amber, at the top left: as many pixels as on screen, not a fraction of them.
    let amber = |image: &image::RgbImage| image.pixels().filter(|p| p.0 == [255, 170, 60]).count();
    let (on_screen, saved) = (amber(&as_shown), amber(&full));
    assert!(on_screen > 300 && saved * 10 >= on_screen * 9, "badge pixels: {saved} saved, {on_screen} on screen");
}
