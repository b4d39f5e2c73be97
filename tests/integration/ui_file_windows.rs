//! The windows a DICOM file stores (several Window Center/Width values, with explanations) are offered in the
//! display toolbar and by `thorax dicom info`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use egui::vec2;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use thorax::app::{AppOptions, WorkbenchApp};
use thorax::engine::device::DeviceChoice;
use thorax::engine::{ImageSource, Slot};
use thorax::imaging::Window;

/// The SIIM chest film with three stored windows (the third without an explanation), as `photometric`.
fn film_with_windows(dir: &Path, photometric: &str) -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real/chest_cr_pa_siim_nih.dcm");
    let mut file = dicom_object::open_file(&source).unwrap();
    let text = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
    file.put(text(tags::WINDOW_CENTER, VR::DS, "128\\90\\200"));
    file.put(text(tags::WINDOW_WIDTH, VR::DS, "256\\100\\40"));
    file.put(text(tags::WINDOW_CENTER_WIDTH_EXPLANATION, VR::LO, "NORMAL\\HARDER"));
    file.put(text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, photometric));
    let path = dir.join(format!("{photometric}.dcm"));
    file.write_to_file(&path).unwrap();
    path
}

fn open_in_real_view(path: &Path) -> Harness<'static, WorkbenchApp> {
    let options =
        AppOptions { device: DeviceChoice::Cpu, load_first_sample: false, run_models: false, ..AppOptions::default() };
    let mut harness = Harness::builder()
        .with_size(vec2(1400.0, 860.0))
        .wgpu()
        .build_eframe(move |cc| WorkbenchApp::new(cc, options).expect("app starts"));
    harness.state_mut().load(Slot::Real, ImageSource::File(path.to_path_buf()));
    let started = Instant::now();
    while harness.state().real.image.is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "the film never loaded");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.run_steps(3);
    harness
}

#[test]
fn the_toolbar_offers_each_window_the_file_stores_by_its_explanation() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = open_in_real_view(&film_with_windows(dir.path(), "MONOCHROME2"));
    assert_eq!(harness.state().real.view.window, Window { center: 128.0, width: 256.0 }, "the first is shown first");
    assert!(harness.query_by_label("File windows").is_some());
    for (button, expected) in
        [("HARDER", Window { center: 90.0, width: 100.0 }), ("3", Window { center: 200.0, width: 40.0 })]
    {
        harness.get_by_label(button).click();
        harness.run_steps(2);
        assert_eq!(harness.state().real.view.window, expected, "{button}");
    }
    // And back to the first after changing it.
    harness.get_by_label("NORMAL").click();
    harness.run_steps(2);
    assert_eq!(harness.state().real.view.window, Window { center: 128.0, width: 256.0 });
}

#[test]
fn a_monochrome1_files_windows_are_mirrored_with_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = open_in_real_view(&film_with_windows(dir.path(), "MONOCHROME1"));
    // 8 bits stored: values v become 255 - v, and so do the centres.
    assert_eq!(harness.state().real.view.window, Window { center: 127.0, width: 256.0 });
    harness.get_by_label("HARDER").click();
    harness.run_steps(2);
    assert_eq!(harness.state().real.view.window, Window { center: 165.0, width: 100.0 });
}

#[test]
fn dicom_info_lists_the_stored_windows() {
    let dir = tempfile::tempdir().unwrap();
    let path = film_with_windows(dir.path(), "MONOCHROME2");
    let thorax = |json: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"));
        command.args(["dicom", "info"]).arg(&path);
        if json {
            command.arg("--json");
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        output.stdout
    };
    let text = String::from_utf8(thorax(false)).unwrap();
    assert!(
        text.contains(
            "stored windows      center 128 width 256 (NORMAL); center 90 width 100 (HARDER); center 200 width 40\n"
        ),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_slice(&thorax(true)).unwrap();
    let windows = json["stored_windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3);
    assert_eq!(windows[1]["explanation"], "HARDER");
    assert_eq!(windows[1]["window"]["center"], 90.0);
    assert!(windows[2]["explanation"].is_null());
}
