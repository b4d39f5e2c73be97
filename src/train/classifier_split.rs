//! The patient-wise train/validation split of a labels CSV: rows of one `patient_id` never straddle the split.
//!
//! With a `fold` column, `--val-fold K` puts the rows whose fold is `K` into validation (the folds must then keep each
//! patient in one fold). Otherwise a seeded share of the patients goes to validation. Rows without a `patient_id`
//! column (or with an empty cell) count as their own patient, named by their file. [`split_labeled_rows`] splits the
//! rows of any dataset layout (NIH `Patient ID`, CheXpert `patientNNNNN`) the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::train::dataset_layout::LabeledRow;
use crate::train::rng::TrainRng;

/// How validation rows are chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ValidationSplit {
    /// The rows whose `fold` cell equals this text.
    Fold(String),
    /// About this share of the patients (at least one), drawn with the run's seed.
    PatientFraction(f64),
}

/// Why the split could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("cannot read labels CSV {path}: {reason}")]
    Csv { path: PathBuf, reason: String },
    #[error("labels CSV {path} has no `{column}` column, which {purpose}")]
    MissingColumn { path: PathBuf, column: String, purpose: String },
    #[error("labels CSV {path}: patient `{patient}` is in folds {folds}; a patient must stay in one fold")]
    PatientStraddlesFolds { path: PathBuf, patient: String, folds: String },
    #[error("labels CSV {path}: {reason}")]
    Empty { path: PathBuf, reason: String },
    #[error("--val-fraction {fraction} must lie strictly between 0 and 1")]
    BadFraction { fraction: f64 },
}

/// Row indices (in CSV order, as the dataset loads them) of both sides.
#[derive(Clone, Debug, PartialEq)]
pub struct RowSplit {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
    /// Distinct patients on each side.
    pub train_patients: usize,
    pub validation_patients: usize,
}

/// Splits the rows of `labels_csv` by patient; `seed` draws the patients for [`ValidationSplit::PatientFraction`].
pub fn split_rows(labels_csv: &Path, split: &ValidationSplit, seed: u64) -> Result<RowSplit, SplitError> {
    let csv_error = |reason: String| SplitError::Csv { path: labels_csv.to_path_buf(), reason };
    let mut reader = csv::ReaderBuilder::new().from_path(labels_csv).map_err(|e| csv_error(e.to_string()))?;
    let headers = reader.headers().map_err(|e| csv_error(e.to_string()))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let file_column = column("file");
    let patient_column = column("patient_id");
    let fold_column = column("fold");
    let mut patients = Vec::new();
    let mut folds = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| csv_error(format!("row {}: {e}", index + 2)))?;
        let cell = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("").trim().to_owned();
        let patient = cell(patient_column);
        patients.push(if patient.is_empty() { format!("file:{}", cell(file_column)) } else { patient });
        folds.push(cell(fold_column));
    }
    split_patients(labels_csv, &patients, fold_column.map(|_| folds.as_slice()), split, seed)
}

/// Splits rows read by a layout reader (NIH `Patient ID`, CheXpert `patientNNNNN`, our `patient_id` and `fold`);
/// a row without a patient id is its own patient.
pub fn split_labeled_rows(
    labels_csv: &Path,
    rows: &[LabeledRow],
    split: &ValidationSplit,
    seed: u64,
) -> Result<RowSplit, SplitError> {
    let patients: Vec<String> =
        rows.iter().map(|r| r.patient_id.clone().unwrap_or_else(|| format!("file:{}", r.file))).collect();
    let folds: Option<Vec<String>> = rows.iter().map(|r| r.fold.clone()).collect();
    split_patients(labels_csv, &patients, folds.as_deref(), split, seed)
}

/// The split of rows whose patients are `patients` and whose folds are `folds` (`None`: the CSV has no `fold`
/// column).
fn split_patients(
    labels_csv: &Path,
    patients: &[String],
    folds: Option<&[String]>,
    split: &ValidationSplit,
    seed: u64,
) -> Result<RowSplit, SplitError> {
    let by_patient = |is_validation: &dyn Fn(usize, &str) -> bool| -> RowSplit {
        let mut split =
            RowSplit { train: Vec::new(), validation: Vec::new(), train_patients: 0, validation_patients: 0 };
        let (mut train_set, mut validation_set) = (BTreeSet::new(), BTreeSet::new());
        for (row, patient) in patients.iter().enumerate() {
            if is_validation(row, patient) {
                split.validation.push(row);
                validation_set.insert(patient);
            } else {
                split.train.push(row);
                train_set.insert(patient);
            }
        }
        split.train_patients = train_set.len();
        split.validation_patients = validation_set.len();
        split
    };
    let result = match split {
        ValidationSplit::Fold(fold) => {
            let Some(folds) = folds else {
                return Err(SplitError::MissingColumn {
                    path: labels_csv.to_path_buf(),
                    column: "fold".to_owned(),
                    purpose: "--val-fold needs; use --val-fraction instead".to_owned(),
                });
            };
            let mut folds_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for (patient, fold) in patients.iter().zip(folds) {
                folds_of.entry(patient).or_default().insert(fold);
            }
            if let Some((patient, set)) = folds_of.iter().find(|(_, set)| set.len() > 1) {
                return Err(SplitError::PatientStraddlesFolds {
                    path: labels_csv.to_path_buf(),
                    patient: (*patient).to_owned(),
                    folds: set.iter().copied().collect::<Vec<_>>().join(", "),
                });
            }
            by_patient(&|row, _| folds.get(row).is_some_and(|f| f == fold))
        }
        ValidationSplit::PatientFraction(fraction) => {
            if !(fraction.is_finite() && *fraction > 0.0 && *fraction < 1.0) {
                return Err(SplitError::BadFraction { fraction: *fraction });
            }
            let mut distinct: Vec<&String> = patients.iter().collect::<BTreeSet<_>>().into_iter().collect();
            // A generator of its own (not one of the step streams), so the split depends only on the seed.
            TrainRng::new(seed ^ 0x5EED_5917_u64).shuffle(&mut distinct);
            let count = ((distinct.len() as f64 * fraction).round() as usize).max(1);
            let chosen: BTreeSet<&String> = distinct.into_iter().take(count).collect();
            by_patient(&|_, patient| chosen.contains(&patient.to_owned()))
        }
    };
    if result.validation.is_empty() || result.train.is_empty() {
        let which = if result.validation.is_empty() { "validation" } else { "training" };
        return Err(SplitError::Empty {
            path: labels_csv.to_path_buf(),
            reason: format!("the {which} side of the split {split:?} has no rows ({} rows in all)", patients.len()),
        });
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_csv(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("thorax-split-{}-{name}.csv", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn patients_never_straddle_a_fraction_split() {
        let mut text = "file,patient_id\n".to_owned();
        for row in 0..60 {
            text.push_str(&format!("f{row}.png,P{}\n", row / 3));
        }
        let path = write_csv("fraction", &text);
        let split = split_rows(&path, &ValidationSplit::PatientFraction(0.25), 7).unwrap();
        assert_eq!(split.validation_patients, 5);
        assert_eq!(split.validation.len(), 15);
        let patient_of = |row: &usize| row / 3;
        let validation: BTreeSet<usize> = split.validation.iter().map(patient_of).collect();
        assert!(split.train.iter().map(patient_of).all(|p| !validation.contains(&p)));
        assert_eq!(split, split_rows(&path, &ValidationSplit::PatientFraction(0.25), 7).unwrap());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn folds_select_rows_and_refuse_straddling_patients() {
        let path = write_csv("fold", "file,patient_id,fold\na,P1,0\nb,P1,0\nc,P2,1\nd,P3,2\n");
        let split = split_rows(&path, &ValidationSplit::Fold("1".into()), 0).unwrap();
        assert_eq!((split.train, split.validation), (vec![0, 1, 3], vec![2]));
        let bad = write_csv("fold-bad", "file,patient_id,fold\na,P1,0\nb,P1,1\nc,P2,1\n");
        let message = split_rows(&bad, &ValidationSplit::Fold("1".into()), 0).unwrap_err().to_string();
        assert!(message.contains("P1") && message.contains("0, 1"), "{message}");
        let message = split_rows(&path, &ValidationSplit::Fold("9".into()), 0).unwrap_err().to_string();
        assert!(message.contains("validation side"), "{message}");
        std::fs::remove_file(path).unwrap();
        std::fs::remove_file(bad).unwrap();
    }
}
