//! Measurements saved as a DICOM Grayscale Softcopy Presentation State and opened again: the file's attributes read
//! back with dicom-rs, a round trip onto a freshly loaded view, a foreign GSPS, bad files, and the Measure menu.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Length, Tag, VR, dicom_value};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use thorax::app::WorkbenchApp;
use thorax::app::measurement::{MeasureGesture, MeasureTool, Measurement};
use thorax::engine::{ImageSource, Slot};
use thorax::imaging::Window;

use super::ui_workbench::{harness_with, load_chest_cr, ready, step_until, viewer_options};

const CHEST_UID: &str = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real").join(name)
}

/// Draws with `tool` on `slot`'s view, image pixels `from` to `to`, as a Shift + drag would.
fn draw(harness: &mut Harness<'static, WorkbenchApp>, slot: Slot, tool: MeasureTool, from: [f32; 2], to: [f32; 2]) {
    let ctx = harness.ctx.clone();
    let image = harness.state().pane(slot).image.as_ref().unwrap().image.clone();
    let measurements = &mut harness.state_mut().pane_mut(slot).measurements;
    measurements.apply(MeasureGesture::Drag { from_px: from, to_px: to }, tool, &image, &ctx);
    measurements.apply(MeasureGesture::Release { at_px: None }, tool, &image, &ctx);
}

/// One measurement of each tool on the real view.
fn measure_each_tool(harness: &mut Harness<'static, WorkbenchApp>) {
    draw(harness, Slot::Real, MeasureTool::Distance, [100.25, 200.5], [400.0, 260.75]);
    draw(harness, Slot::Real, MeasureTool::Angle, [500.0, 500.0], [600.0, 500.0]);
    draw(harness, Slot::Real, MeasureTool::Angle, [500.0, 500.0], [560.5, 430.0]);
    draw(harness, Slot::Real, MeasureTool::Region, [300.0, 300.0], [361.5, 420.0]);
    draw(harness, Slot::Real, MeasureTool::CardiothoracicRatio, [420.0, 600.0], [640.0, 610.0]);
    draw(harness, Slot::Real, MeasureTool::CardiothoracicRatio, [200.0, 650.0], [860.0, 650.0]);
    draw(harness, Slot::Real, MeasureTool::Cobb, [480.0, 300.0], [560.0, 310.0]);
    draw(harness, Slot::Real, MeasureTool::Cobb, [470.0, 700.0], [555.0, 680.0]);
    harness.run_steps(2);
    assert_eq!(harness.state().real.measurements.items().len(), 5);
}

fn message(harness: &Harness<'static, WorkbenchApp>) -> String {
    format!("{:?}", harness.state().message)
}

/// Waits for a save or a read (its dialog answered this frame or earlier) to report: a new status message.
fn settle(harness: &mut Harness<'static, WorkbenchApp>) {
    let before = harness.state().message.clone();
    step_until(harness, Duration::from_secs(30), |app| !app.presentation_states.is_busy() && app.message != before);
    harness.run_steps(2);
}

fn items(object: &InMemDicomObject, tag: Tag) -> Vec<InMemDicomObject> {
    object.get(tag).and_then(|e| e.items()).map(<[_]>::to_vec).unwrap_or_default()
}

fn text(object: &InMemDicomObject, tag: Tag) -> String {
    object
        .get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
        .unwrap_or_default()
}

/// The same measurements, regions to f32 precision (their ellipse is written as axis ends, computed in f64).
fn assert_same_measurements(original: &[Measurement], read: &[Measurement]) {
    assert_eq!(original.len(), read.len(), "{read:?}");
    for (a, b) in original.iter().zip(read) {
        match (a, b) {
            (Measurement::Region(a), Measurement::Region(b)) => {
                let close = |x: [f32; 2], y: [f32; 2]| (x[0] - y[0]).abs() < 1e-4 && (x[1] - y[1]).abs() < 1e-4;
                assert!(close(a.ellipse.center_px, b.ellipse.center_px), "{a:?} {b:?}");
                assert!(close(a.ellipse.radii_px, b.ellipse.radii_px), "{a:?} {b:?}");
                assert_eq!(a.stats().flatten().map(|s| s.count_px), b.stats().flatten().map(|s| s.count_px));
            }
            _ => assert_eq!(format!("{a:?}"), format!("{b:?}")),
        }
    }
}

#[test]
fn every_tool_is_saved_as_a_gsps_of_the_image_and_opens_again_on_a_fresh_view() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    measure_each_tool(&mut harness);
    harness.state_mut().real.view.window = Window { center: 110.0, width: 150.5 };
    harness.state_mut().real.view.inverted = true;
    let original = harness.state().real.measurements.items().to_vec();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chest_gsps.dcm");
    let ctx = harness.ctx.clone();
    harness.state_mut().save_presentation_state_to(&ctx, Slot::Real, path.clone());
    settle(&mut harness);
    let said = message(&harness);
    assert!(said.contains("Saved 5 measurements of the Real view") && said.contains("chest_gsps.dcm"), "{said}");

    // What a PACS reads: the class, the image, its study and patient, the window, the polarity and the graphics.
    let file = dicom_object::open_file(&path).unwrap();
    assert_eq!(text(&file, tags::SOP_CLASS_UID), uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE);
    assert_eq!(file.meta().transfer_syntax().trim_end_matches('\0'), uids::EXPLICIT_VR_LITTLE_ENDIAN);
    assert_eq!(text(&file, tags::MODALITY), "PR");
    assert_eq!(text(&file, tags::STUDY_INSTANCE_UID), "1.2.276.0.7230010.3.1.2.8323329.6904.1517875201.850818");
    assert_ne!(text(&file, tags::SERIES_INSTANCE_UID), "1.2.276.0.7230010.3.1.3.8323329.6904.1517875201.850817");
    assert_eq!(text(&file, tags::PATIENT_ID), "16d7f894-55d7-4d95-8957-d18987f0e981");
    assert_eq!(text(&file, tags::PATIENT_SEX), "M");
    let series = items(&file, tags::REFERENCED_SERIES_SEQUENCE);
    assert_eq!(text(&series[0], tags::SERIES_INSTANCE_UID), "1.2.276.0.7230010.3.1.3.8323329.6904.1517875201.850817");
    let image = &items(&series[0], tags::REFERENCED_IMAGE_SEQUENCE)[0];
    assert_eq!(text(image, tags::REFERENCED_SOP_INSTANCE_UID), CHEST_UID);
    assert_eq!(text(image, tags::REFERENCED_SOP_CLASS_UID), uids::SECONDARY_CAPTURE_IMAGE_STORAGE);
    let voi = &items(&file, tags::SOFTCOPY_VOILUT_SEQUENCE)[0];
    assert_eq!((text(voi, tags::WINDOW_CENTER), text(voi, tags::WINDOW_WIDTH)), ("110".into(), "150.5".into()));
    assert_eq!(text(&file, tags::PRESENTATION_LUT_SHAPE), "INVERSE");
    let area = &items(&file, tags::DISPLAYED_AREA_SELECTION_SEQUENCE)[0];
    let corner = |tag| area.get(tag).unwrap().to_multi_int::<i32>().unwrap();
    assert_eq!(
        (corner(tags::DISPLAYED_AREA_TOP_LEFT_HAND_CORNER), corner(tags::DISPLAYED_AREA_BOTTOM_RIGHT_HAND_CORNER)),
        (vec![1, 1], vec![1024, 1024])
    );
    let annotations = items(&file, tags::GRAPHIC_ANNOTATION_SEQUENCE);
    assert_eq!(annotations.len(), 5, "one item per measurement");
    let graphics: Vec<Vec<(String, Vec<f32>)>> = annotations
        .iter()
        .map(|a| {
            assert_eq!(text(a, tags::GRAPHIC_LAYER), "MEASUREMENTS");
            items(a, tags::GRAPHIC_OBJECT_SEQUENCE)
                .iter()
                .map(|g| {
                    assert_eq!(text(g, tags::GRAPHIC_ANNOTATION_UNITS), "PIXEL");
                    (text(g, tags::GRAPHIC_TYPE), g.get(tags::GRAPHIC_DATA).unwrap().to_multi_float32().unwrap())
                })
                .collect()
        })
        .collect();
    let polyline = |data: &[f32]| ("POLYLINE".to_owned(), data.to_vec());
    assert_eq!(graphics[0], [polyline(&[100.25, 200.5, 400.0, 260.75])], "PIXEL units are image pixel coordinates");
    assert_eq!(graphics[1], [polyline(&[600.0, 500.0, 500.0, 500.0, 560.5, 430.0])], "the vertex in the middle");
    // 61.5 x 120 px: the vertical axis is the major one and comes first.
    assert_eq!(graphics[2], [("ELLIPSE".to_owned(), vec![330.75, 300.0, 330.75, 420.0, 300.0, 360.0, 361.5, 360.0])]);
    assert_eq!(graphics[3], [polyline(&[420.0, 605.0, 640.0, 605.0]), polyline(&[200.0, 650.0, 860.0, 650.0])]);
    assert_eq!(graphics[4], [polyline(&[480.0, 300.0, 560.0, 310.0]), polyline(&[470.0, 700.0, 555.0, 680.0])]);
    let labels: Vec<String> = annotations
        .iter()
        .map(|a| text(&items(a, tags::TEXT_OBJECT_SEQUENCE)[0], tags::UNFORMATTED_TEXT_VALUE))
        .collect();
    assert_eq!(labels[0], "Distance 51.4 mm");
    assert!(labels[1].starts_with("Angle ") && labels[1].ends_with('°'), "{labels:?}");
    assert!(labels[2].starts_with("Region mean "), "{labels:?}");
    assert!(labels[3].starts_with("CTR 0.33, heart 37.0 mm"), "{labels:?}");
    assert!(labels[4].starts_with("Cobb "), "{labels:?}");

    // The same image loaded afresh (its measurements gone) takes them back, with the window and the inversion.
    harness.state_mut().real.image = None;
    load_chest_cr(&mut harness);
    assert!(harness.state().real.measurements.items().is_empty());
    assert!(!harness.state().real.view.inverted);
    harness.state_mut().open_presentation_state(&ctx, path.clone());
    settle(&mut harness);
    let said = message(&harness);
    assert!(said.contains("Opened presentation state") && said.contains("5 measurements on the Real view"), "{said}");
    assert_same_measurements(&original, harness.state().real.measurements.items());
    assert_eq!(harness.state().real.view.window, Window { center: 110.0, width: 150.5 });
    assert!(harness.state().real.view.inverted);
}

#[test]
fn a_monochrome1_view_is_saved_in_the_file_s_own_polarity_and_units() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    harness.state_mut().load(Slot::Artificial, ImageSource::File(fixture("chest_cr_pa_mono1_10bit_nometa.dcm")));
    step_until(&mut harness, Duration::from_secs(30), |app| app.artificial.image.is_some());
    harness.run_steps(2);
    // The view shows the MONOCHROME1 values mirrored within 0..1023; a window there is 1023 - c in the file.
    harness.state_mut().artificial.view.window = Window { center: 300.0, width: 400.0 };
    draw(&mut harness, Slot::Artificial, MeasureTool::Distance, [10.0, 20.0], [30.0, 40.0]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mono1.dcm");
    let ctx = harness.ctx.clone();
    harness.state_mut().save_presentation_state_to(&ctx, Slot::Artificial, path.clone());
    settle(&mut harness);
    let file = dicom_object::open_file(&path).unwrap();
    let voi = &items(&file, tags::SOFTCOPY_VOILUT_SEQUENCE)[0];
    assert_eq!(text(voi, tags::WINDOW_CENTER), "723");
    assert_eq!(text(&file, tags::PRESENTATION_LUT_SHAPE), "INVERSE", "MONOCHROME1 shown as its modality means it");

    harness.state_mut().artificial.view.window = Window { center: 1.0, width: 2.0 };
    harness.state_mut().artificial.view.inverted = true;
    harness.state_mut().open_presentation_state(&ctx, path);
    settle(&mut harness);
    assert_eq!(harness.state().artificial.view.window, Window { center: 300.0, width: 400.0 });
    assert!(!harness.state().artificial.view.inverted, "{}", message(&harness));
}

fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
}

fn graphic(kind: &str, units: &str, points: &[f32]) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::GRAPHIC_ANNOTATION_UNITS, VR::CS, PrimitiveValue::from(units)),
        DataElement::new(tags::GRAPHIC_DIMENSIONS, VR::US, PrimitiveValue::from(2u16)),
        DataElement::new(tags::NUMBER_OF_GRAPHIC_POINTS, VR::US, PrimitiveValue::from((points.len() / 2) as u16)),
        DataElement::new(tags::GRAPHIC_DATA, VR::FL, PrimitiveValue::F32(points.to_vec().into())),
        DataElement::new(tags::GRAPHIC_TYPE, VR::CS, PrimitiveValue::from(kind)),
    ])
}

/// A GSPS as another viewer might write it: every graphic in one annotation item, a text-only item, a window and
/// INVERSE. `edit` changes the data set before it is written.
fn foreign_gsps(path: &Path, referenced_uid: &str, edit: impl FnOnce(&mut InMemDicomObject)) {
    let str_element = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
    let graphics = vec![
        graphic("POLYLINE", "PIXEL", &[10.0, 10.0, 40.0, 50.0]),
        graphic("POLYLINE", "PIXEL", &[100.0, 50.0, 50.0, 50.0, 50.0, 100.0]),
        graphic("ELLIPSE", "PIXEL", &[200.0, 180.0, 200.0, 220.0, 190.0, 200.0, 210.0, 200.0]),
        graphic("POINT", "PIXEL", &[5.0, 5.0]),
        graphic("CIRCLE", "PIXEL", &[300.0, 300.0, 310.0, 300.0]),
        graphic("POLYLINE", "PIXEL", &[0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0]),
        graphic("POLYLINE", "DISPLAY", &[0.1, 0.1, 0.5, 0.5]),
    ];
    let text_only = InMemDicomObject::from_element_iter([
        str_element(tags::GRAPHIC_LAYER, VR::CS, "LAYER1"),
        sequence(
            tags::TEXT_OBJECT_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                str_element(tags::BOUNDING_BOX_ANNOTATION_UNITS, VR::CS, "DISPLAY"),
                str_element(tags::UNFORMATTED_TEXT_VALUE, VR::ST, "R"),
                DataElement::new(tags::BOUNDING_BOX_TOP_LEFT_HAND_CORNER, VR::FL, dicom_value!(F32, [0.9, 0.1])),
                DataElement::new(tags::BOUNDING_BOX_BOTTOM_RIGHT_HAND_CORNER, VR::FL, dicom_value!(F32, [0.95, 0.15])),
            ])],
        ),
    ]);
    let mut object = InMemDicomObject::from_element_iter([
        str_element(tags::SOP_CLASS_UID, VR::UI, uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE),
        str_element(tags::SOP_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.9.99.1"),
        sequence(
            tags::REFERENCED_SERIES_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                str_element(tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3"),
                sequence(
                    tags::REFERENCED_IMAGE_SEQUENCE,
                    vec![InMemDicomObject::from_element_iter([
                        str_element(tags::REFERENCED_SOP_CLASS_UID, VR::UI, uids::SECONDARY_CAPTURE_IMAGE_STORAGE),
                        str_element(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, referenced_uid),
                    ])],
                ),
            ])],
        ),
        sequence(
            tags::SOFTCOPY_VOILUT_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                str_element(tags::WINDOW_CENTER, VR::DS, "90"),
                str_element(tags::WINDOW_WIDTH, VR::DS, "60"),
            ])],
        ),
        str_element(tags::PRESENTATION_LUT_SHAPE, VR::CS, "INVERSE"),
        sequence(
            tags::GRAPHIC_ANNOTATION_SEQUENCE,
            vec![
                InMemDicomObject::from_element_iter([
                    str_element(tags::GRAPHIC_LAYER, VR::CS, "LAYER1"),
                    sequence(tags::GRAPHIC_OBJECT_SEQUENCE, graphics),
                ]),
                text_only,
            ],
        ),
    ]);
    edit(&mut object);
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE)
        .media_storage_sop_instance_uid("1.2.826.0.1.3680043.9.99.1");
    object.with_meta(meta).unwrap().write_to_file(path).unwrap();
}

#[test]
fn a_foreign_gsps_gives_lines_angles_and_ellipses_and_counts_what_it_skips() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.dcm");
    foreign_gsps(&path, CHEST_UID, |_| {});
    let ctx = harness.ctx.clone();
    harness.state_mut().open_presentation_state(&ctx, path);
    settle(&mut harness);
    let said = message(&harness);
    assert!(said.contains("3 measurements on the Real view"), "{said}");
    assert!(
        said.contains(
            "5 skipped: 1 x POINT, 1 x CIRCLE, 1 x POLYLINE of 4 points, 1 x POLYLINE in DISPLAY units, 1 x text only"
        ),
        "{said}"
    );
    let items = harness.state().real.measurements.items().to_vec();
    let [Measurement::Distance(d), Measurement::Angle(a), Measurement::Region(r)] = &items[..] else {
        panic!("{items:?}")
    };
    assert_eq!(d.length_px(), 50.0);
    assert_eq!((a.vertex_px, a.degrees(None).map(f64::round)), ([50.0, 50.0], Some(90.0)));
    assert_eq!((r.ellipse.center_px, r.ellipse.radii_px), ([200.0, 200.0], [10.0, 20.0]));
    assert_eq!(harness.state().real.view.window, Window { center: 90.0, width: 60.0 });
    assert!(harness.state().real.view.inverted);
}

#[test]
fn bad_presentation_states_are_refused_naming_the_file_and_leave_the_measurements() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    load_chest_cr(&mut harness);
    draw(&mut harness, Slot::Real, MeasureTool::Distance, [1.0, 2.0], [3.0, 4.0]);
    harness.state_mut().real.view.window = Window { center: 100.0, width: 50.0 };
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.dcm");
    foreign_gsps(&good, CHEST_UID, |_| {});
    let bytes = std::fs::read(&good).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let no_series = dir.path().join("no_series.dcm");
    foreign_gsps(&no_series, CHEST_UID, |o| {
        o.remove_element(tags::REFERENCED_SERIES_SEQUENCE);
    });
    let bad_count = dir.path().join("bad_count.dcm");
    foreign_gsps(&bad_count, CHEST_UID, |o| {
        let annotation = InMemDicomObject::from_element_iter([
            DataElement::new(tags::GRAPHIC_LAYER, VR::CS, PrimitiveValue::from("L")),
            sequence(
                tags::GRAPHIC_OBJECT_SEQUENCE,
                vec![InMemDicomObject::from_element_iter([
                    DataElement::new(tags::GRAPHIC_ANNOTATION_UNITS, VR::CS, PrimitiveValue::from("PIXEL")),
                    DataElement::new(tags::GRAPHIC_DIMENSIONS, VR::US, PrimitiveValue::from(2u16)),
                    DataElement::new(tags::NUMBER_OF_GRAPHIC_POINTS, VR::US, PrimitiveValue::from(3u16)),
                    DataElement::new(tags::GRAPHIC_DATA, VR::FL, dicom_value!(F32, [1.0, 2.0, 3.0, 4.0])),
                    DataElement::new(tags::GRAPHIC_TYPE, VR::CS, PrimitiveValue::from("POLYLINE")),
                ])],
            ),
        ]);
        o.put(sequence(tags::GRAPHIC_ANNOTATION_SEQUENCE, vec![annotation]));
    });
    let other_image = dir.path().join("other_image.dcm");
    foreign_gsps(&other_image, "1.2.3.4.5.6", |_| {});
    let cases: Vec<(PathBuf, &str)> = vec![
        (write("text.dcm", b"not a DICOM file at all, just some words"), "not a DICOM file"),
        (write("truncated.dcm", &bytes[..bytes.len() * 2 / 3]), "truncated.dcm"),
        (fixture("ct_small_128.dcm"), "is not a Grayscale Softcopy Presentation State"),
        (no_series, "missing required attribute Referenced Series Sequence"),
        (bad_count, "4 values for 3 points"),
        (other_image, "it is for image 1.2.3.4.5.6, but the Real view shows image 1.2.276.0.7230010.3.1.4.8323329"),
    ];
    let ctx = harness.ctx.clone();
    for (path, reason) in cases {
        harness.state_mut().open_presentation_state(&ctx, path.clone());
        settle(&mut harness);
        let said = message(&harness);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(said.starts_with("Some(Error(") && said.contains(&name) && said.contains(reason), "{said}");
        let items = harness.state().real.measurements.items();
        assert!(matches!(items, [Measurement::Distance(d)] if d.to_px == [3.0, 4.0]), "{name}: {items:?}");
        assert_eq!(harness.state().real.view.window, Window { center: 100.0, width: 50.0 }, "{name}");
    }
}

#[test]
fn the_measure_menu_saves_and_opens_a_presentation_state_through_the_built_in_chooser() {
    let mut harness = harness_with(viewer_options());
    ready(&mut harness, false);
    let dir = tempfile::tempdir().unwrap();
    thorax::app::path_dialog::set_dialog_backend(thorax::app::path_dialog::DialogBackend::BuiltIn);
    thorax::app::path_dialog::remember_folder(&harness.ctx, dir.path().to_path_buf());
    let open_save_menu = |harness: &mut Harness<'static, WorkbenchApp>| {
        // The menu, not the display toolbar's "Measure" heading.
        harness.get_by_role_and_label(egui::accesskit::Role::Button, "Measure").click();
        harness.run_steps(2);
        harness.get_by_label("Save as presentation state (GSPS)").hover();
        harness.run_steps(3);
    };
    // The sample is a PNG: nothing to reference.
    open_save_menu(&mut harness);
    assert!(harness.get_by_label("Real view...").accesskit_node().is_disabled(), "a PNG has no DICOM identity");
    assert!(harness.get_by_label("Artificial view...").accesskit_node().is_disabled(), "no image");
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);
    assert!(harness.query_by_label("Real view...").is_none(), "Esc closes the menu");

    load_chest_cr(&mut harness);
    draw(&mut harness, Slot::Real, MeasureTool::Distance, [10.0, 10.0], [60.0, 10.0]);
    open_save_menu(&mut harness);
    harness.get_by_label("Real view...").click();
    harness.run_steps(4);
    assert!(harness.query_by_label("Save as presentation state (GSPS)").is_some(), "the chooser is shown");
    harness.get_by_label("Save").click();
    settle(&mut harness);
    let path = dir.path().join("chest_cr_pa_siim_nih_real_gsps.dcm");
    let said = message(&harness);
    assert!(
        said.contains("Saved 1 measurement of the Real view") && said.contains(&path.display().to_string()),
        "{said}"
    );
    assert!(path.is_file());

    // Cleared, then opened again through the menu.
    harness.state_mut().real.measurements.clear();
    harness.get_by_role_and_label(egui::accesskit::Role::Button, "Measure").click();
    harness.run_steps(2);
    harness.get_by_label("Open presentation state...").click();
    harness.run_steps(4);
    let field = harness.get_by_label("File name or path");
    field.focus();
    field.type_text(&path.display().to_string());
    harness.run_steps(2);
    // Not a frame between the click and `settle`: the read could report in it, before `settle` notes the message.
    harness.get_by_label("Open").click();
    settle(&mut harness);
    let said = message(&harness);
    assert!(said.contains("1 measurement on the Real view"), "{said}");
    let items = harness.state().real.measurements.items();
    assert!(matches!(items, [Measurement::Distance(d)] if d.to_px == [60.0, 10.0]), "{items:?}");
    assert!(harness.query_by_label_contains("Opened presentation state").is_some(), "the status line says so");
}
