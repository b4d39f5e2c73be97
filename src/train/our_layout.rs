//! Our labels CSV: a `file` column (a path relative to the images folder) and the labels either as
//! - a `findings` column of `|`-joined label names (`No Finding` or `No_Finding` mean none; an empty cell means the
//!   row's findings are unknown, as in `data/cxr/labels.csv`, so none of its labels count in a loss), or
//! - one 0/1 column per label, named exactly as the labels (the layout of `data/cxr-train/labels.csv`).
//!
//! An optional `labels_annotated` column says which labels were looked for: `nih14` (or `all`, or empty) for all of
//! them, `pneumonia_only` for the Kermany paediatric films whose other labels were never annotated. Optional
//! `patient_id` and `fold` columns feed the classifier's patient-wise split.

use std::collections::HashMap;
use std::path::Path;

use crate::train::dataset::DatasetError;
use crate::train::dataset_layout::LabeledRow;

/// The label that the `pneumonia_only` annotation covers.
const PNEUMONIA_LABEL: &str = "Pneumonia";

/// How one CSV row's labels are read.
enum LabelColumns {
    Findings { column: usize },
    OneHot { columns: Vec<usize> },
}

/// Reads every row of our CSV; labels in the order of `label_names`, images under `images_dir`.
pub fn read_our_rows(
    images_dir: &Path,
    labels_csv: &Path,
    label_names: &[String],
) -> Result<Vec<LabeledRow>, DatasetError> {
    let csv_error = |reason: String| DatasetError::LabelsCsv { path: labels_csv.to_path_buf(), reason };
    let mut reader =
        csv::ReaderBuilder::new().flexible(false).from_path(labels_csv).map_err(|e| csv_error(e.to_string()))?;
    let headers = reader.headers().map_err(|e| csv_error(e.to_string()))?.clone();
    let column_of: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, name)| (name.trim(), i)).collect();
    let file_column = *column_of.get("file").ok_or_else(|| DatasetError::NoFileColumn {
        path: labels_csv.to_path_buf(),
        columns: headers.iter().collect::<Vec<_>>().join(", "),
    })?;
    let layout = if let Some(&column) = column_of.get("findings") {
        LabelColumns::Findings { column }
    } else {
        let missing: Vec<&str> =
            label_names.iter().map(String::as_str).filter(|name| !column_of.contains_key(name)).collect();
        if !missing.is_empty() {
            return Err(DatasetError::NoLabelColumns { path: labels_csv.to_path_buf(), missing: missing.join(", ") });
        }
        LabelColumns::OneHot {
            columns: label_names.iter().filter_map(|n| column_of.get(n.as_str()).copied()).collect(),
        }
    };
    let annotated_column = column_of.get("labels_annotated").copied();
    let patient_column = column_of.get("patient_id").copied();
    let fold_column = column_of.get("fold").copied();
    let pneumonia_index = label_names.iter().position(|name| name == PNEUMONIA_LABEL);

    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        // Row 1 is the header, so data rows start at 2 as a spreadsheet shows them.
        let row = index + 2;
        let record = record.map_err(|e| csv_error(format!("row {row}: {e}")))?;
        let cell = |column: usize| record.get(column).unwrap_or("").trim();
        let file = cell(file_column);
        if file.is_empty() {
            return Err(DatasetError::EmptyFileName { path: labels_csv.to_path_buf(), row });
        }
        let mut labels = vec![0.0f32; label_names.len()];
        let mut findings_unknown = false;
        match &layout {
            LabelColumns::Findings { column } => {
                findings_unknown = cell(*column).is_empty();
                for name in cell(*column).split('|').map(str::trim) {
                    if name.is_empty() || name == "No Finding" || name == "No_Finding" {
                        continue;
                    }
                    let slot = label_names.iter().position(|known| known == name).ok_or_else(|| {
                        DatasetError::UnknownLabel {
                            path: labels_csv.to_path_buf(),
                            row,
                            name: name.to_owned(),
                            known: label_names.join(", "),
                        }
                    })?;
                    if let Some(value) = labels.get_mut(slot) {
                        *value = 1.0;
                    }
                }
            }
            LabelColumns::OneHot { columns } => {
                for ((value, &column), name) in labels.iter_mut().zip(columns).zip(label_names) {
                    let text = cell(column);
                    *value = if text.is_empty() {
                        0.0
                    } else {
                        text.parse::<f32>().ok().filter(|v| (0.0..=1.0).contains(v)).ok_or_else(|| {
                            DatasetError::BadLabelValue {
                                path: labels_csv.to_path_buf(),
                                row,
                                column: name.clone(),
                                value: text.to_owned(),
                            }
                        })?
                    };
                }
            }
        }
        let mask: Vec<f32> = match annotated_column.map(cell).unwrap_or("") {
            "" if findings_unknown => vec![0.0; label_names.len()],
            "" | "nih14" | "all" => vec![1.0; label_names.len()],
            "pneumonia_only" => (0..label_names.len()).map(|i| f32::from(Some(i) == pneumonia_index)).collect(),
            other => {
                return Err(DatasetError::UnknownAnnotation {
                    path: labels_csv.to_path_buf(),
                    row,
                    value: other.to_owned(),
                });
            }
        };
        let path = images_dir.join(file);
        if !path.is_file() {
            return Err(DatasetError::MissingImage { csv: labels_csv.to_path_buf(), row, image: path });
        }
        let patient_id = patient_column.map(cell).filter(|p| !p.is_empty()).map(str::to_owned);
        let fold = fold_column.map(|c| cell(c).to_owned());
        rows.push(LabeledRow { row, file: file.to_owned(), path, labels, mask, patient_id, fold });
    }
    Ok(rows)
}
