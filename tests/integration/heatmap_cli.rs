//! `thorax classify --heatmap`: files at the image size (non-square image: the crop's margins are 0), 16-bit PNG and
//! .npy agree, a bad target names the valid labels.

use std::path::{Path, PathBuf};

use candle_core::Device;
use thorax::cli::classify::{ClassifyArgs, run};
use thorax::convert::npy::read_npy_f32;
use thorax::models::heatmap::HeatmapMethod;

fn path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn args(out: &Path, method: HeatmapMethod, target: &str) -> ClassifyArgs {
    ClassifyArgs {
        model: Some(path("assets/models/densenet121-untrained.safetensors")),
        images: vec![path("tests/fixtures/densenet/cxr_0054.png")],
        tensor_npy: None,
        batch_size: 1,
        json: true,
        heatmap: Some(out.to_path_buf()),
        method,
        target: target.to_owned(),
        overwrite: false,
    }
}

#[test]
fn heatmaps_are_written_at_image_size_in_three_forms() {
    let out = tempfile::tempdir().unwrap();
    run(&args(out.path(), HeatmapMethod::GradCamPlusPlus, "Pleural_Thickening,Edema"), &Device::Cpu, None).unwrap();
    for label in ["Pleural_Thickening", "Edema"] {
        let base = out.path().join(format!("cxr_0054_{label}_gradcampp"));
        let (shape, map) = read_npy_f32(&base.with_file_name(format!("cxr_0054_{label}_gradcampp_map.npy"))).unwrap();
        assert_eq!(shape, vec![666, 640]);
        assert!(map.iter().all(|v| (0.0..=1.0).contains(v)));
        let max = map.iter().fold(0.0f32, |m, &v| m.max(v));
        assert!(max > 0.99, "the map should span [0, 1], max {max}");
        // Resize(224) makes 224 x 233; CenterCrop keeps resized rows 4..228 (round(4.5) = 4), whose centres are image
        // rows 11..652 (x 666 / 233): the rows above and below are 0.
        assert!(map[..640 * 11].iter().all(|&v| v == 0.0));
        assert!(map[640 * 652..].iter().all(|&v| v == 0.0));
        assert!(map[640 * 11..640 * 12].iter().any(|&v| v > 0.0) || map[640 * 651..640 * 652].iter().any(|&v| v > 0.0));
        let png = image::open(base.with_file_name(format!("cxr_0054_{label}_gradcampp_map.png"))).unwrap();
        let png = png.as_luma16().expect("16-bit gray").clone();
        assert_eq!(png.dimensions(), (640, 666));
        for (level, value) in png.as_raw().iter().zip(&map).step_by(997) {
            assert_eq!(*level, (value * 65535.0).round() as u16);
        }
        let overlay = image::open(base.with_file_name(format!("cxr_0054_{label}_gradcampp_overlay.png"))).unwrap();
        assert_eq!((overlay.width(), overlay.height()), (640, 666));
        assert!(overlay.as_rgb8().is_some());
    }
}

#[test]
fn unknown_target_names_the_valid_labels() {
    let out = tempfile::tempdir().unwrap();
    let error =
        run(&args(out.path(), HeatmapMethod::Cam, "Pneumothorax,Cardiomegally"), &Device::Cpu, None).unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("`Cardiomegally`") && message.contains("Pleural_Thickening, Hernia"), "{message}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "nothing is written before the target is checked");
}
