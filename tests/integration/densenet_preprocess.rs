//! Classifier preprocessing parity with reproduce-chexnet's transform on real radiographs: PIL convert('RGB'),
//! torchvision Resize(224) (Pillow's antialiasing bilinear), CenterCrop(224), ToTensor, Normalize(ImageNet).
//! Fixtures: a 1024x1024 NIH image and a 640x666 MHH image (tests/fixtures/densenet/SOURCES.md) with torchvision's
//! output from tools/make_densenet_cyclegan_fixtures.py.

use std::path::{Path, PathBuf};

use candle_core::Device;
use thorax::convert::npy::read_npy_f32;
use thorax::models::preprocess::classifier_input;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/densenet").join(name)
}

fn check(name: &str) {
    let image = image::open(fixture(&format!("{name}.png"))).unwrap().to_luma32f();
    let (width, height) = (image.width() as usize, image.height() as usize);
    let ours = classifier_input(image.as_raw(), width, height, None, &Device::Cpu).unwrap();
    assert_eq!(ours.dims(), &[1, 3, 224, 224]);
    let ours = ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (shape, expected) = read_npy_f32(&fixture(&format!("{name}_preprocessed.npy"))).unwrap();
    assert_eq!(shape, vec![1, 3, 224, 224]);
    let error = ours.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    let differing = ours.iter().zip(&expected).filter(|(a, b)| a != b).count();
    println!("{name} ({width}x{height}): max abs error {error:e}, {differing} of {} values differ", ours.len());
    // Pillow's 8-bit resampler is reproduced exactly; one 8-bit level would be 1/255/0.225 = 0.017.
    assert!(error <= 1e-6, "{name}: preprocessing differs from torchvision by {error}");
}

#[test]
fn square_nih_radiograph_matches_torchvision() {
    check("cxr_0001");
}

#[test]
fn non_square_radiograph_matches_torchvision() {
    check("cxr_0054");
}
