//! CheXpert's `train.csv` / `valid.csv`: `Path` (e.g. `CheXpert-v1.0-small/train/patient00001/study1/
//! view1_frontal.jpg`, relative to the folder that holds `CheXpert-v1.0-small`), `Sex`, `Age`, `Frontal/Lateral`,
//! `AP/PA` and the 14 observations, each 1.0 (positive), 0.0 (negative), -1.0 (uncertain) or blank (not mentioned).
//!
//! A label is taken from the observation of the same name, or else from its NIH counterpart (`Effusion` <-
//! `Pleural Effusion`, `No_Finding` <- `No Finding`); labels CheXpert lacks (Infiltration, Mass, ...) are not
//! annotated. Blank counts as negative (as CheXpert's baselines do); uncertain follows the [`UncertainPolicy`].

use std::path::{Component, Path, PathBuf};

use crate::train::dataset::DatasetError;
use crate::train::dataset_layout::{LabeledRow, UncertainPolicy};

/// The 14 observation columns, in CSV order (the same order the CheXpert ProGAN takes its labels in).
pub const CHEXPERT_OBSERVATIONS: [&str; 14] = crate::models::labels::CHEXPERT_GAN_LABELS;

/// NIH label names whose CheXpert observation has another name.
const NIH_NAME_TO_CHEXPERT: [(&str, &str); 2] = [("Effusion", "Pleural Effusion"), ("No_Finding", "No Finding")];

/// The CheXpert observation a label is read from, if any: the same name, else its NIH alias.
pub fn chexpert_observation_for(label: &str) -> Option<&'static str> {
    CHEXPERT_OBSERVATIONS
        .iter()
        .copied()
        .find(|o| *o == label)
        .or_else(|| NIH_NAME_TO_CHEXPERT.iter().find(|(nih, _)| *nih == label).map(|(_, observation)| *observation))
}

/// The `patientNNNNN` component of a CheXpert path.
fn patient_of(path: &str) -> Option<String> {
    path.split(['/', '\\'])
        .find(|part| {
            part.strip_prefix("patient").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// Where a CSV `Path` may lie: under the images folder, under its parent (the CSV's own convention when the images
/// folder is `CheXpert-v1.0-small` itself), and under the images folder without the first component.
pub fn chexpert_candidates(images_dir: &Path, relative: &str) -> Vec<PathBuf> {
    let relative = Path::new(relative);
    let mut candidates = vec![images_dir.join(relative)];
    if let Some(parent) = images_dir.parent() {
        let parent = if parent.as_os_str().is_empty() { Path::new("..") } else { parent };
        // `images_dir` may be `.` or end in `..`, whose textual parent is not the real one.
        let parent = if matches!(images_dir.components().next_back(), Some(Component::CurDir | Component::ParentDir)) {
            images_dir.join("..")
        } else {
            parent.to_path_buf()
        };
        candidates.push(parent.join(relative));
    }
    let mut components = relative.components();
    if components.next().is_some() && components.clone().next().is_some() {
        candidates.push(images_dir.join(components.as_path()));
    }
    let mut distinct: Vec<PathBuf> = Vec::new();
    for candidate in candidates {
        if !distinct.contains(&candidate) {
            distinct.push(candidate);
        }
    }
    distinct
}

/// One observation cell -> (label, annotated), or `None` when the value is not a CheXpert label.
fn decode_value(text: &str, uncertain: UncertainPolicy) -> Option<(f32, f32)> {
    if text.is_empty() {
        return Some((0.0, 1.0));
    }
    let value = text.parse::<f32>().ok()?;
    if value == 1.0 {
        Some((1.0, 1.0))
    } else if value == 0.0 {
        Some((0.0, 1.0))
    } else if value == -1.0 {
        Some(match uncertain {
            UncertainPolicy::Zeros => (0.0, 1.0),
            UncertainPolicy::Ones => (1.0, 1.0),
            UncertainPolicy::Ignore => (0.0, 0.0),
        })
    } else {
        None
    }
}

/// Reads the rows of a CheXpert CSV (only frontal views when `frontal_only`); labels in the order of `label_names`.
pub fn read_chexpert_rows(
    images_dir: &Path,
    labels_csv: &Path,
    label_names: &[String],
    uncertain: UncertainPolicy,
    frontal_only: bool,
) -> Result<Vec<LabeledRow>, DatasetError> {
    let csv_error = |reason: String| DatasetError::LabelsCsv { path: labels_csv.to_path_buf(), reason };
    let mut reader =
        csv::ReaderBuilder::new().flexible(false).from_path(labels_csv).map_err(|e| csv_error(e.to_string()))?;
    let headers = reader.headers().map_err(|e| csv_error(e.to_string()))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let path_column = column("Path").ok_or_else(|| DatasetError::LayoutColumns {
        path: labels_csv.to_path_buf(),
        layout: "chexpert".to_owned(),
        missing: "Path".to_owned(),
        columns: headers.iter().collect::<Vec<_>>().join(", "),
    })?;
    let view_column = column("Frontal/Lateral");
    let observation_columns: Vec<(&str, usize)> =
        CHEXPERT_OBSERVATIONS.iter().filter_map(|o| column(o).map(|c| (*o, c))).collect();
    // Per label: its index in `observation_columns`, or None when CheXpert (or this CSV) lacks it.
    let sources: Vec<Option<usize>> = label_names
        .iter()
        .map(|name| chexpert_observation_for(name).and_then(|o| observation_columns.iter().position(|(n, _)| *n == o)))
        .collect();

    let mut rows = Vec::new();
    for (position, record) in reader.records().enumerate() {
        let row = position + 2;
        let record = record.map_err(|e| csv_error(format!("row {row}: {e}")))?;
        let cell = |column: usize| record.get(column).unwrap_or("").trim();
        let file = cell(path_column);
        if file.is_empty() {
            return Err(DatasetError::EmptyFileName { path: labels_csv.to_path_buf(), row });
        }
        if frontal_only {
            let frontal = match view_column {
                Some(c) => cell(c) == "Frontal",
                // Without the column, the file name says the view (`view1_frontal.jpg`).
                None => file.to_ascii_lowercase().contains("frontal"),
            };
            if !frontal {
                continue;
            }
        }
        // Every observation is checked, also those no label uses, so a damaged file is noticed.
        let mut decoded = Vec::with_capacity(observation_columns.len());
        for &(observation, column) in &observation_columns {
            let text = cell(column);
            decoded.push(decode_value(text, uncertain).ok_or_else(|| DatasetError::BadChexpertValue {
                path: labels_csv.to_path_buf(),
                row,
                column: observation.to_owned(),
                value: text.to_owned(),
            })?);
        }
        let mut labels = vec![0.0f32; label_names.len()];
        let mut mask = vec![0.0f32; label_names.len()];
        for ((label, annotated), source) in labels.iter_mut().zip(mask.iter_mut()).zip(&sources) {
            if let Some(&(value, was_annotated)) = source.and_then(|index| decoded.get(index)) {
                (*label, *annotated) = (value, was_annotated);
            }
        }
        let candidates = chexpert_candidates(images_dir, file);
        let Some(path) = candidates.iter().find(|c| c.is_file()).cloned() else {
            let searched: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
            return Err(DatasetError::ImageNotFound {
                csv: labels_csv.to_path_buf(),
                row,
                name: file.to_owned(),
                searched: searched.join(", "),
            });
        };
        rows.push(LabeledRow {
            row,
            file: file.to_owned(),
            path,
            labels,
            mask,
            patient_id: patient_of(file),
            fold: None,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_the_uncertainty_policy() {
        for (policy, uncertain) in [
            (UncertainPolicy::Zeros, (0.0, 1.0)),
            (UncertainPolicy::Ones, (1.0, 1.0)),
            (UncertainPolicy::Ignore, (0.0, 0.0)),
        ] {
            assert_eq!(decode_value("-1.0", policy), Some(uncertain));
            assert_eq!(decode_value("-1", policy), Some(uncertain));
            assert_eq!(decode_value("1.0", policy), Some((1.0, 1.0)));
            assert_eq!(decode_value("0.0", policy), Some((0.0, 1.0)));
            assert_eq!(decode_value("", policy), Some((0.0, 1.0)));
            assert_eq!(decode_value("2", policy), None);
            assert_eq!(decode_value("yes", policy), None);
        }
    }

    #[test]
    fn maps_nih_names_and_finds_patients() {
        assert_eq!(chexpert_observation_for("Effusion"), Some("Pleural Effusion"));
        assert_eq!(chexpert_observation_for("No_Finding"), Some("No Finding"));
        assert_eq!(chexpert_observation_for("Cardiomegaly"), Some("Cardiomegaly"));
        assert_eq!(chexpert_observation_for("Pleural Effusion"), Some("Pleural Effusion"));
        assert_eq!(chexpert_observation_for("Hernia"), None);
        assert_eq!(
            patient_of("CheXpert-v1.0-small/train/patient00042/study1/view1_frontal.jpg").as_deref(),
            Some("patient00042")
        );
        assert_eq!(patient_of("x/patients/y.jpg"), None);
        let candidates = chexpert_candidates(Path::new("/data/CheXpert-v1.0-small"), "CheXpert-v1.0-small/a/b.jpg");
        assert_eq!(
            candidates,
            vec![
                PathBuf::from("/data/CheXpert-v1.0-small/CheXpert-v1.0-small/a/b.jpg"),
                PathBuf::from("/data/CheXpert-v1.0-small/a/b.jpg"),
            ]
        );
    }
}
