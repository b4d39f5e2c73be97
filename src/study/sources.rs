//! Where case images come from: a folder of real radiographs (with an optional labels CSV), and any
//! `ArtificialSource` (a folder today, the generator through the same trait).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::DynamicImage;

use super::display::decode_image_file;
use super::error::{StudyError, StudyResult};
use super::randomise::StudyRng;

/// Labels of one case by column name (e.g. `"Cardiomegaly" -> "1"`), as read from a labels CSV.
pub type CaseLabels = BTreeMap<String, String>;

/// File extensions accepted as images (lower case).
const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "tif", "tiff", "dcm", "dicom"];

/// Column names accepted for the file name in a labels CSV, in order of preference.
const FILE_COLUMNS: [&str; 4] = ["file", "filename", "image", "path"];

/// One decoded source image plus its provenance, kept in the study's truth table and never shown to readers.
pub struct SourceImage {
    /// The decoded image, any size, depth or colour type.
    pub image: DynamicImage,
    /// Where it came from: a file path, or the generator's model hash, seed and labels.
    pub provenance: String,
    /// Labels of the image (the conditioning labels for a generator).
    pub labels: CaseLabels,
}

/// A producer of artificial images: a folder of files, or the conditional generator (plugged in by the app).
pub trait ArtificialSource {
    /// One line describing the source for the study log (never shown to readers).
    fn description(&self) -> String;

    /// Produces the `index`-th artificial image, or `None` when the source is exhausted.
    /// `replay_labels` are the labels of a real case, for generators that replay real labels as the study did.
    fn produce(&mut self, index: usize, replay_labels: Option<&CaseLabels>) -> StudyResult<Option<SourceImage>>;
}

/// A real image file with its labels (empty without a labels CSV).
#[derive(Clone, Debug)]
pub struct RealImageEntry {
    /// The image file.
    pub path: PathBuf,
    /// Its labels.
    pub labels: CaseLabels,
}

/// Lists image files of `dir` (by extension), sorted by name so listings do not depend on the file system.
pub fn list_image_files(dir: &Path) -> StudyResult<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| StudyError::Io { path: dir.to_path_buf(), source })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| StudyError::Io { path: dir.to_path_buf(), source })?;
        let path = entry.path();
        let is_image = path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| IMAGE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()));
        if is_image && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The pool of real images: every image in a folder, or exactly the rows of a labels CSV.
#[derive(Clone, Debug)]
pub struct RealImageFolder {
    entries: Vec<RealImageEntry>,
}

impl RealImageFolder {
    /// Lists `dir`. With `labels_csv`, the pool is the CSV's rows (column `file`, `filename`, `image` or `path`,
    /// relative to `dir`); rows naming files that do not exist are an error that counts them and names the first.
    pub fn open(dir: &Path, labels_csv: Option<&Path>) -> StudyResult<Self> {
        let Some(csv_path) = labels_csv else {
            let entries = list_image_files(dir)?
                .into_iter()
                .map(|path| RealImageEntry { path, labels: CaseLabels::new() })
                .collect();
            return Ok(Self { entries });
        };
        let mut reader = csv::Reader::from_path(csv_path).map_err(|error| csv_error(csv_path, 0, &error))?;
        let headers = reader.headers().map_err(|error| csv_error(csv_path, 1, &error))?.clone();
        let file_column = FILE_COLUMNS
            .iter()
            .find_map(|name| headers.iter().position(|header| header == *name))
            .ok_or_else(|| StudyError::Parse {
                path: csv_path.to_path_buf(),
                line: 1,
                reason: format!("no file-name column (one of {FILE_COLUMNS:?})"),
            })?;
        let mut entries = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        let mut first_line_of: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        for (row_index, record) in reader.records().enumerate() {
            let line = row_index as u64 + 2;
            let record = record.map_err(|error| csv_error(csv_path, line, &error))?;
            let file = record.get(file_column).unwrap_or_default();
            if file.is_empty() {
                return Err(StudyError::Parse {
                    path: csv_path.to_path_buf(),
                    line,
                    reason: "empty file name".to_owned(),
                });
            }
            // A file listed twice would be twice as likely to be shown, and its two label rows may disagree.
            if let Some(first) = first_line_of.insert(file.to_owned(), line) {
                return Err(StudyError::Parse {
                    path: csv_path.to_path_buf(),
                    line,
                    reason: format!("{file} is listed again (first on line {first})"),
                });
            }
            let path = dir.join(file);
            if !path.is_file() {
                missing.push(file.to_owned());
                continue;
            }
            let labels = headers
                .iter()
                .zip(record.iter())
                .enumerate()
                .filter(|(column, _)| *column != file_column)
                .map(|(_, (name, value))| (name.to_owned(), value.to_owned()))
                .collect();
            entries.push(RealImageEntry { path, labels });
        }
        if let Some(first) = missing.first() {
            return Err(StudyError::CsvListsMissingImages {
                csv: csv_path.to_path_buf(),
                dir: dir.to_path_buf(),
                count: missing.len(),
                first: first.clone(),
            });
        }
        Ok(Self { entries })
    }

    /// The listed images, in listing order.
    pub fn entries(&self) -> &[RealImageEntry] {
        &self.entries
    }
}

pub(crate) fn csv_error(path: &Path, line: u64, error: &csv::Error) -> StudyError {
    let line = error.position().map_or(line, |position| position.line());
    StudyError::Parse { path: path.to_path_buf(), line, reason: error.to_string() }
}

/// Artificial images from a folder, taken in a seeded random order (labels, if any, are not replayed).
pub struct FolderArtificialSource {
    dir: PathBuf,
    files: Vec<PathBuf>,
}

impl FolderArtificialSource {
    /// Lists `dir` and shuffles the files with `seed`.
    pub fn open(dir: &Path, seed: u64) -> StudyResult<Self> {
        let mut files = list_image_files(dir)?;
        StudyRng::from_seed(seed).shuffle(&mut files);
        Ok(Self { dir: dir.to_path_buf(), files })
    }

    /// Number of images in the folder.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the folder has no images.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The images, in the shuffled order they are used.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl ArtificialSource for FolderArtificialSource {
    fn description(&self) -> String {
        format!("folder of {} images: {}", self.files.len(), self.dir.display())
    }

    fn produce(&mut self, index: usize, _replay_labels: Option<&CaseLabels>) -> StudyResult<Option<SourceImage>> {
        let Some(path) = self.files.get(index) else {
            return Ok(None);
        };
        Ok(Some(SourceImage {
            image: decode_image_file(path)?,
            provenance: path.display().to_string(),
            labels: CaseLabels::new(),
        }))
    }
}
