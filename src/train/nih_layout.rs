//! NIH ChestX-ray14's `Data_Entry_2017.csv` (or `Data_Entry_2017_v2020.csv`): `Image Index`, `Finding Labels`
//! (`|`-joined NIH names, or `No Finding`), `Patient ID`, `View Position`, ...
//!
//! The images sit directly in the images folder, in its `images/`, or in the official tarballs' `images_001/images/`
//! to `images_012/images/`; every listed image is looked up in those places. All 14 labels were annotated for every
//! image, so the mask is all ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::train::dataset::DatasetError;
use crate::train::dataset_layout::LabeledRow;

/// The finding name NIH uses for an image without findings.
const NO_FINDING: &str = "No Finding";

/// The folders an NIH image may sit in, in search order: the folder, `images/`, then every `images_*` subfolder's
/// `images/` (and the `images_*` folder itself), sorted by name.
pub fn nih_image_folders(images_dir: &Path) -> Vec<PathBuf> {
    let mut folders = vec![images_dir.to_path_buf(), images_dir.join("images")];
    let mut parts: Vec<PathBuf> = std::fs::read_dir(images_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_dir())
                .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("images_")))
                .collect()
        })
        .unwrap_or_default();
    parts.sort();
    for part in parts {
        folders.push(part.join("images"));
        folders.push(part);
    }
    folders.into_iter().filter(|folder| folder.is_dir()).collect()
}

/// File name -> path of every file in `folders` (the first folder that holds a name wins): one directory listing
/// per folder instead of a dozen `stat` calls per image.
fn index_files(folders: &[PathBuf]) -> HashMap<String, PathBuf> {
    let mut index = HashMap::new();
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(folder) else { continue };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned)
                && path.is_file()
            {
                index.entry(name).or_insert(path);
            }
        }
    }
    index
}

/// Reads every row of an NIH data-entry CSV; labels in the order of `label_names` (`No Finding` sets a
/// `No_Finding` or `No Finding` label when there is one).
pub fn read_nih_rows(
    images_dir: &Path,
    labels_csv: &Path,
    label_names: &[String],
) -> Result<Vec<LabeledRow>, DatasetError> {
    let csv_error = |reason: String| DatasetError::LabelsCsv { path: labels_csv.to_path_buf(), reason };
    // The 2017 file ends its header and rows with a comma; flexible keeps such variants readable.
    let mut reader =
        csv::ReaderBuilder::new().flexible(true).from_path(labels_csv).map_err(|e| csv_error(e.to_string()))?;
    let headers = reader.headers().map_err(|e| csv_error(e.to_string()))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let missing = |name: &str| DatasetError::LayoutColumns {
        path: labels_csv.to_path_buf(),
        layout: "nih".to_owned(),
        missing: name.to_owned(),
        columns: headers.iter().collect::<Vec<_>>().join(", "),
    };
    let image_column = column("Image Index").ok_or_else(|| missing("Image Index"))?;
    let findings_column = column("Finding Labels").ok_or_else(|| missing("Finding Labels"))?;
    let patient_column = column("Patient ID");
    let no_finding_slot = label_names.iter().position(|n| n == "No_Finding" || n == NO_FINDING);
    let folders = nih_image_folders(images_dir);
    let index = index_files(&folders);

    let mut rows = Vec::new();
    for (position, record) in reader.records().enumerate() {
        let row = position + 2;
        let record = record.map_err(|e| csv_error(format!("row {row}: {e}")))?;
        let cell = |column: usize| record.get(column).unwrap_or("").trim();
        let file = cell(image_column);
        if file.is_empty() {
            return Err(DatasetError::EmptyFileName { path: labels_csv.to_path_buf(), row });
        }
        let mut labels = vec![0.0f32; label_names.len()];
        for name in cell(findings_column).split('|').map(str::trim).filter(|n| !n.is_empty()) {
            let slot = if name == NO_FINDING {
                no_finding_slot
            } else {
                Some(label_names.iter().position(|known| known == name).ok_or_else(|| DatasetError::UnknownLabel {
                    path: labels_csv.to_path_buf(),
                    row,
                    name: name.to_owned(),
                    known: label_names.join(", "),
                })?)
            };
            if let Some(value) = slot.and_then(|slot| labels.get_mut(slot)) {
                *value = 1.0;
            }
        }
        let path = match index.get(file) {
            Some(path) => path.clone(),
            // A name with folders in it is taken relative to the images folder.
            None if images_dir.join(file).is_file() => images_dir.join(file),
            None => {
                let searched: Vec<String> = folders.iter().map(|f| f.display().to_string()).collect();
                return Err(DatasetError::ImageNotFound {
                    csv: labels_csv.to_path_buf(),
                    row,
                    name: file.to_owned(),
                    searched: searched.join(", "),
                });
            }
        };
        let patient_id = patient_column.map(cell).filter(|p| !p.is_empty()).map(str::to_owned);
        let mask = vec![1.0; label_names.len()];
        rows.push(LabeledRow { row, file: file.to_owned(), path, labels, mask, patient_id, fold: None });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["Cardiomegaly", "Effusion", "No_Finding"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_images_in_the_tarball_folders_and_reads_labels() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("images_001/images")).unwrap();
        std::fs::create_dir_all(root.join("images_002/images")).unwrap();
        std::fs::create_dir_all(root.join("images")).unwrap();
        for (folder, name) in [("images_001/images", "a.png"), ("images_002/images", "b.png"), ("images", "c.png")] {
            std::fs::write(root.join(folder).join(name), b"x").unwrap();
        }
        std::fs::write(root.join("d.png"), b"x").unwrap();
        let csv = root.join("Data_Entry_2017.csv");
        std::fs::write(
            &csv,
            "Image Index,Finding Labels,Follow-up #,Patient ID,View Position,\n\
             a.png,Cardiomegaly|Effusion,0,7,PA,\nb.png,No Finding,0,7,AP,\nc.png,Effusion,1,9,PA,\n\
             d.png,No Finding,0,10,PA,\n",
        )
        .unwrap();
        let rows = read_nih_rows(root, &csv, &names()).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].path, root.join("images_001/images/a.png"));
        assert_eq!(rows[1].path, root.join("images_002/images/b.png"));
        assert_eq!(rows[2].path, root.join("images/c.png"));
        assert_eq!(rows[3].path, root.join("d.png"));
        assert_eq!(rows[0].labels, vec![1.0, 1.0, 0.0]);
        assert_eq!(rows[1].labels, vec![0.0, 0.0, 1.0]);
        assert!(rows.iter().all(|r| r.mask == vec![1.0; 3]));
        let patients: Vec<_> = rows.iter().map(|r| r.patient_id.clone().unwrap()).collect();
        assert_eq!(patients, ["7", "7", "9", "10"]);

        std::fs::write(&csv, "Image Index,Finding Labels,Patient ID\na.png,Cardiomegaly,1\ngone.png,Effusion,2\n")
            .unwrap();
        let message = read_nih_rows(root, &csv, &names()).unwrap_err().to_string();
        assert!(message.contains("row 3") && message.contains("gone.png"), "{message}");
        assert!(message.contains("images_002") && message.contains("images_001"), "{message}");
        std::fs::write(&csv, "Image Index,Finding Labels,Patient ID\na.png,Cardiomegaly|Sarcoid,1\n").unwrap();
        let message = read_nih_rows(root, &csv, &names()).unwrap_err().to_string();
        assert!(message.contains("row 2") && message.contains("Sarcoid"), "{message}");
    }
}
