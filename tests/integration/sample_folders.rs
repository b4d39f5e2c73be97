//! Folders of embedded 256 px sample radiographs for tests that need real images on disk.

use std::path::{Path, PathBuf};

/// The embedded `cxr256_*` samples, sorted by name (at least 10).
pub fn samples_256() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/samples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("cxr256_"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "need 10 embedded 256 px samples");
    files
}

/// Copies `files` into `dir` (created if missing).
pub fn fill(dir: &Path, files: &[PathBuf]) {
    std::fs::create_dir_all(dir).unwrap();
    for file in files {
        std::fs::copy(file, dir.join(file.file_name().unwrap())).unwrap();
    }
}
