//! Shared helpers of the study integration tests: synthetic images of varied formats and a small study.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb};
use thorax::study::design::DESIGN_FORMAT_VERSION;
use thorax::study::{
    CaseMix, ConfidenceScale, DisplayBitDepth, DisplaySpec, FolderArtificialSource, OptionalQuestions, RealImageFolder,
    StudyDesign, create_study,
};

/// A smooth gradient with a per-image offset so images differ.
fn gradient(x: u32, y: u32, w: u32, h: u32, offset: u32) -> f64 {
    ((x as f64 / w as f64) * 0.6 + (y as f64 / h as f64) * 0.3 + (offset % 7) as f64 * 0.01).min(1.0)
}

/// Writes one image of the given kind; returns its path.
pub fn write_image(dir: &Path, name: &str, kind: &str, w: u32, h: u32, offset: u32) -> PathBuf {
    let path = dir.join(name);
    let image = match kind {
        "gray8" => DynamicImage::ImageLuma8(ImageBuffer::from_fn(w, h, |x, y| {
            Luma([(gradient(x, y, w, h, offset) * 255.0) as u8])
        })),
        "gray16" => DynamicImage::ImageLuma16(ImageBuffer::from_fn(w, h, |x, y| {
            Luma([(gradient(x, y, w, h, offset) * 65535.0) as u16])
        })),
        "rgb8" => DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
            let v = (gradient(x, y, w, h, offset) * 255.0) as u8;
            Rgb([v, v, v.saturating_sub(3)])
        })),
        other => panic!("unknown kind {other}"),
    };
    let format = ImageFormat::from_path(&path).unwrap();
    image.save_with_format(&path, format).unwrap();
    path
}

/// Real images: mixed formats, sizes and depths. Artificial: 8-bit square PNG/JPEG/TIFF like a generator's.
pub fn make_image_folders(root: &Path, real_count: u32, artificial_count: u32) -> (PathBuf, PathBuf) {
    let real = root.join("real");
    let artificial = root.join("artificial");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(&artificial).unwrap();
    let real_kinds = [
        ("png", "gray8", 300, 400),
        ("png", "gray16", 1024, 900),
        ("jpg", "rgb8", 640, 480),
        ("tiff", "gray16", 200, 200),
        ("tif", "gray8", 90, 120),
    ];
    for i in 0..real_count {
        let (ext, kind, w, h) = real_kinds[i as usize % real_kinds.len()];
        write_image(&real, &format!("patient_{i:03}.{ext}"), kind, w, h, i);
    }
    let artificial_kinds = [("png", "gray8", 256, 256), ("jpeg", "gray8", 256, 256), ("tiff", "gray8", 128, 128)];
    for i in 0..artificial_count {
        let (ext, kind, w, h) = artificial_kinds[i as usize % artificial_kinds.len()];
        write_image(&artificial, &format!("generated_{i:03}.{ext}"), kind, w, h, i + 100);
    }
    (real, artificial)
}

/// A design with small display images (tests stay fast).
pub fn small_design(readers: &[&str], size_px: u32, bit_depth: DisplayBitDepth) -> StudyDesign {
    StudyDesign {
        format_version: DESIGN_FORMAT_VERSION,
        title: "test study".to_owned(),
        readers: readers.iter().map(|r| (*r).to_owned()).collect(),
        confidence_scale: ConfidenceScale::FiveLevel,
        allow_back: false,
        practice_feedback: true,
        questions: OptionalQuestions { free_text: true, giveaway_click: true },
        display: DisplaySpec { size_px, bit_depth, border_crop_percent: 0 },
        modality: "blinded".to_owned(),
        seed: 11,
    }
}

/// Creates a study at `root/study.sqlite` with `cases` main and `practice` practice cases.
pub fn make_study(root: &Path, design: &StudyDesign, cases: usize, practice: usize) -> PathBuf {
    let needed = (cases + practice) as u32;
    let (real, artificial) = make_image_folders(root, needed, needed);
    let out = root.join("study.sqlite");
    let folder = RealImageFolder::open(&real, None).unwrap();
    let mut source = FolderArtificialSource::open(&artificial, 3).unwrap();
    let mix =
        CaseMix { main_cases: cases, practice_cases: practice, artificial_fraction: 0.5, replay_real_labels: false };
    create_study(&out, design, &mix, &folder, &mut source).unwrap();
    out
}

/// Creates a study of tiny 16x16 images (fast to build with hundreds of cases).
pub fn make_tiny_study(root: &Path, design: &StudyDesign, cases: usize, practice: usize) -> PathBuf {
    let real = root.join("tiny_real");
    let artificial = root.join("tiny_artificial");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(&artificial).unwrap();
    let needed = (cases + practice) as u32;
    for i in 0..needed {
        write_image(&real, &format!("r{i:04}.png"), "gray8", 16, 16, i);
        write_image(&artificial, &format!("a{i:04}.png"), "gray8", 16, 16, i + 3);
    }
    let out = root.join("study.sqlite");
    let folder = RealImageFolder::open(&real, None).unwrap();
    let mut source = FolderArtificialSource::open(&artificial, 3).unwrap();
    let mix =
        CaseMix { main_cases: cases, practice_cases: practice, artificial_fraction: 0.5, replay_real_labels: false };
    create_study(&out, design, &mix, &folder, &mut source).unwrap();
    out
}
