//! Which labels-CSV layout a training set uses (ours, NIH ChestX-ray14 or CheXpert), detected from the CSV's columns
//! or chosen with `--layout`, and the rows every layout reader produces.
//!
//! Each reader turns its CSV into [`LabeledRow`]s (image path, labels and annotation mask in the caller's label order,
//! patient id), so decoding, resizing and the patient-wise split are shared.

use std::path::{Path, PathBuf};

use crate::train::chexpert_layout::{CHEXPERT_OBSERVATIONS, read_chexpert_rows};
use crate::train::dataset::DatasetError;
use crate::train::nih_layout::read_nih_rows;
use crate::train::our_layout::read_our_rows;

/// A labels-CSV layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DatasetLayout {
    /// Our CSV: `file` plus `findings` or one 0/1 column per label, optional `labels_annotated`, `patient_id`, `fold`.
    Ours,
    /// NIH ChestX-ray14 `Data_Entry_2017.csv`: `Image Index`, `Finding Labels`, `Patient ID`, ...
    Nih,
    /// CheXpert `train.csv` / `valid.csv`: `Path`, `Frontal/Lateral` and the 14 observations (1, 0, -1 or blank).
    Chexpert,
}

impl DatasetLayout {
    /// The name `--layout` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Nih => "nih",
            Self::Chexpert => "chexpert",
        }
    }
}

/// What CheXpert's uncertain (-1) labels become (U-Zeros, U-Ones, U-Ignore of Irvin et al. 2019).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UncertainPolicy {
    /// Uncertain counts as negative.
    Zeros,
    /// Uncertain counts as positive.
    Ones,
    /// Uncertain is masked out of the loss (not annotated).
    #[default]
    Ignore,
}

/// How a labels CSV is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayoutOptions {
    /// `None`: detected from the columns.
    pub layout: Option<DatasetLayout>,
    /// CheXpert's uncertain labels.
    pub uncertain: UncertainPolicy,
    /// Keep only frontal views (CheXpert); `None`: on for CheXpert.
    pub frontal_only: Option<bool>,
}

/// One image of a training set, labels in the caller's label order.
#[derive(Clone, Debug, PartialEq)]
pub struct LabeledRow {
    /// The CSV's data row number (the header is row 1), for messages.
    pub row: usize,
    /// The image's name as the CSV gives it.
    pub file: String,
    /// Where the image was found.
    pub path: PathBuf,
    /// 1.0 where the finding is present.
    pub labels: Vec<f32>,
    /// 1.0 where the label was annotated (the loss ignores the others).
    pub mask: Vec<f32>,
    /// The patient, or `None` when the CSV does not say (the row is then its own patient).
    pub patient_id: Option<String>,
    /// The `fold` cell of our layout; `None` where the CSV has no `fold` column.
    pub fold: Option<String>,
}

/// The CSV's header cells, trimmed.
pub fn csv_columns(labels_csv: &Path) -> Result<Vec<String>, DatasetError> {
    let csv_error = |reason: String| DatasetError::LabelsCsv { path: labels_csv.to_path_buf(), reason };
    let mut reader = csv::ReaderBuilder::new().from_path(labels_csv).map_err(|e| csv_error(e.to_string()))?;
    let headers = reader.headers().map_err(|e| csv_error(e.to_string()))?;
    Ok(headers.iter().map(|h| h.trim().to_owned()).collect())
}

/// The columns a layout cannot do without, for detection and for the message when `--layout` forces one.
fn missing_columns(layout: DatasetLayout, columns: &[String]) -> Vec<String> {
    let has = |name: &str| columns.iter().any(|c| c == name);
    match layout {
        DatasetLayout::Ours => ["file"].iter().filter(|c| !has(c)).map(|c| (*c).to_owned()).collect(),
        DatasetLayout::Nih => {
            ["Image Index", "Finding Labels"].iter().filter(|c| !has(c)).map(|c| (*c).to_owned()).collect()
        }
        DatasetLayout::Chexpert => {
            let mut missing: Vec<String> = if has("Path") { Vec::new() } else { vec!["Path".to_owned()] };
            if !CHEXPERT_OBSERVATIONS.iter().any(|o| has(o)) {
                missing.push("any of the CheXpert observations (No Finding, Cardiomegaly, ...)".to_owned());
            }
            missing
        }
    }
}

/// The layout of `labels_csv`: the one `requested`, after checking its columns, or the first whose columns it has.
pub fn resolve_layout(labels_csv: &Path, requested: Option<DatasetLayout>) -> Result<DatasetLayout, DatasetError> {
    let columns = csv_columns(labels_csv)?;
    let listed = || columns.join(", ");
    match requested {
        Some(layout) => {
            let missing = missing_columns(layout, &columns);
            if missing.is_empty() {
                Ok(layout)
            } else {
                Err(DatasetError::LayoutColumns {
                    path: labels_csv.to_path_buf(),
                    layout: layout.name().to_owned(),
                    missing: missing.join(", "),
                    columns: listed(),
                })
            }
        }
        None => [DatasetLayout::Ours, DatasetLayout::Nih, DatasetLayout::Chexpert]
            .into_iter()
            .find(|&layout| missing_columns(layout, &columns).is_empty())
            .ok_or_else(|| DatasetError::UnknownLayout { path: labels_csv.to_path_buf(), columns: listed() }),
    }
}

/// Reads the rows of `labels_csv` in its layout, with labels in the order of `label_names` and image paths
/// resolved under `images_dir` (every image must exist; nothing is decoded yet). No rows is not an error here: the
/// dataset and the split each refuse it in their own words.
pub fn read_labeled_rows(
    images_dir: &Path,
    labels_csv: &Path,
    label_names: &[String],
    options: &LayoutOptions,
) -> Result<Vec<LabeledRow>, DatasetError> {
    if label_names.is_empty() {
        return Err(DatasetError::NoLabels);
    }
    if !images_dir.is_dir() {
        return Err(DatasetError::MissingImagesFolder { path: images_dir.to_path_buf() });
    }
    let rows = match resolve_layout(labels_csv, options.layout)? {
        DatasetLayout::Ours => read_our_rows(images_dir, labels_csv, label_names)?,
        DatasetLayout::Nih => read_nih_rows(images_dir, labels_csv, label_names)?,
        DatasetLayout::Chexpert => read_chexpert_rows(
            images_dir,
            labels_csv,
            label_names,
            options.uncertain,
            options.frontal_only.unwrap_or(true),
        )?,
    };
    refuse_repeated_images(&rows, labels_csv)?;
    Ok(rows)
}

/// An image listed twice would weigh double in training, and could land in both the training and the validation
/// split, where it inflates the validation AUC.
fn refuse_repeated_images(rows: &[LabeledRow], labels_csv: &Path) -> Result<(), DatasetError> {
    let mut first_rows = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        if let Some(first_row) = first_rows.insert(row.path.as_path(), row.row) {
            return Err(DatasetError::RepeatedImage {
                path: labels_csv.to_path_buf(),
                first_row,
                row: row.row,
                image: row.file.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_with_header(name: &str, header: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{header}\n")).unwrap();
        (dir, path)
    }

    #[test]
    fn detects_each_layout_from_its_columns() {
        let (_a, ours) = csv_with_header("labels.csv", "file,findings");
        assert_eq!(resolve_layout(&ours, None).unwrap(), DatasetLayout::Ours);
        let (_b, nih) = csv_with_header(
            "Data_Entry_2017.csv",
            "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position",
        );
        assert_eq!(resolve_layout(&nih, None).unwrap(), DatasetLayout::Nih);
        let (_c, chexpert) =
            csv_with_header("train.csv", "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Cardiomegaly,Edema");
        assert_eq!(resolve_layout(&chexpert, None).unwrap(), DatasetLayout::Chexpert);
    }

    #[test]
    fn unknown_and_forced_layouts_list_the_columns() {
        let (_a, odd) = csv_with_header("odd.csv", "name,diagnosis");
        let message = resolve_layout(&odd, None).unwrap_err().to_string();
        assert!(message.contains("odd.csv") && message.contains("name, diagnosis"), "{message}");
        let (_b, ours) = csv_with_header("labels.csv", "file,findings");
        let message = resolve_layout(&ours, Some(DatasetLayout::Nih)).unwrap_err().to_string();
        assert!(message.contains("Image Index") && message.contains("file, findings"), "{message}");
        assert_eq!(resolve_layout(&ours, Some(DatasetLayout::Ours)).unwrap(), DatasetLayout::Ours);
    }

    #[test]
    fn an_image_listed_twice_is_refused_with_both_rows() {
        let dir = tempfile::tempdir().unwrap();
        image::GrayImage::new(8, 8).save(dir.path().join("a.png")).unwrap();
        image::GrayImage::new(8, 8).save(dir.path().join("b.png")).unwrap();
        let csv = dir.path().join("labels.csv");
        std::fs::write(&csv, "file,findings\na.png,Mass\nb.png,\na.png,No Finding\n").unwrap();
        let labels = vec!["Mass".to_owned()];
        let error = read_labeled_rows(dir.path(), &csv, &labels, &LayoutOptions::default()).unwrap_err();
        assert!(matches!(error, DatasetError::RepeatedImage { first_row: 2, row: 4, .. }), "{error}");
        std::fs::write(&csv, "file,findings\na.png,Mass\nb.png,\n").unwrap();
        assert_eq!(read_labeled_rows(dir.path(), &csv, &labels, &LayoutOptions::default()).unwrap().len(), 2);
    }
}
