//! Export of a study's answers (CSV of every answer, iMRMC input) and import of an answers CSV for analysis.

use crate::atomic_file::{IfExists, OutputFileError, PartialFile, write_file};
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::analysis::Reading;
use super::design::Provenance;
use super::error::{StudyError, StudyResult};
use super::imrmc::{ImrmcData, ImrmcScore, call_threshold_line, rating_scale_line, write_imrmc};
use super::sources::csv_error;
use super::store::StudyStore;

/// One row of the answers CSV (every revision of every answer, practice included and flagged).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnswerRow {
    /// Reader id.
    pub reader_id: String,
    /// Case id.
    pub case_id: String,
    /// Reading condition.
    #[serde(default)]
    pub modality: Option<String>,
    /// Practice case (excluded from analysis).
    #[serde(default)]
    pub practice: Option<bool>,
    /// 0-based position in the reader's order.
    #[serde(default)]
    pub position: Option<u32>,
    /// Answer revision (the latest counts).
    #[serde(default)]
    pub revision: Option<u32>,
    /// "real" or "artificial" (also 0 or 1).
    pub truth: String,
    /// "real" or "artificial" (also 0 or 1).
    pub call: String,
    /// Confidence on the study's scale.
    #[serde(default)]
    pub confidence: Option<u32>,
    /// Ordinal rating, higher = more surely artificial.
    pub rating: f64,
    /// Active reading time of the case up to this answer, over every visit (a revision's includes the earlier
    /// revisions'; in studies written before schema version 3, only the time of the visit that gave it).
    #[serde(default)]
    pub time_ms: Option<u64>,
    /// The reading spans a restart of the reading station: `time_ms` was resumed from a checkpoint and may be up to
    /// a few seconds short.
    #[serde(default)]
    pub time_spans_restart: Option<bool>,
    /// When the answer was stored.
    #[serde(default)]
    pub answered_unix_ms: Option<i64>,
    /// Free-text comment.
    #[serde(default)]
    pub free_text: Option<String>,
    /// Giveaway click x in [0, 1].
    #[serde(default)]
    pub giveaway_x: Option<f64>,
    /// Giveaway click y in [0, 1].
    #[serde(default)]
    pub giveaway_y: Option<f64>,
    /// The lowest rating of the study's scale: with `rating_highest`, every integer between them is a rating
    /// category, answered or not, so weighted kappa from this file equals the study's own.
    #[serde(default)]
    pub rating_lowest: Option<i64>,
    /// The highest rating of the study's scale.
    #[serde(default)]
    pub rating_highest: Option<i64>,
}

/// Answer rows of a study, in storage order.
pub fn answer_rows(store: &StudyStore) -> StudyResult<Vec<AnswerRow>> {
    let design = store.design()?;
    let (lowest, highest) = design.confidence_scale.rating_bounds();
    let (rating_lowest, rating_highest) = (Some(lowest), Some(highest));
    let cases: BTreeMap<String, (Provenance, bool)> =
        store.cases()?.into_iter().map(|case| (case.case_id, (case.provenance, case.practice))).collect();
    store
        .answers()?
        .into_iter()
        .map(|record| {
            let (provenance, practice) = cases.get(&record.case_id).copied().ok_or_else(|| StudyError::NotAStudy {
                path: store.path().to_path_buf(),
                reason: format!("answer {} names unknown case {}", record.answer_id, record.case_id),
            })?;
            Ok(AnswerRow {
                reader_id: record.reader_id,
                case_id: record.case_id,
                modality: Some(design.modality.clone()),
                practice: Some(practice),
                position: Some(record.position),
                revision: Some(record.revision),
                truth: provenance.as_str().to_owned(),
                call: record.answer.call.as_str().to_owned(),
                confidence: Some(record.answer.confidence),
                rating: record.rating as f64,
                time_ms: Some(record.time_ms),
                time_spans_restart: Some(record.time_spans_restart),
                answered_unix_ms: Some(record.answered_unix_ms),
                free_text: record.answer.free_text,
                giveaway_x: record.answer.giveaway.map(|point| point.x),
                giveaway_y: record.answer.giveaway.map(|point| point.y),
                rating_lowest,
                rating_highest,
            })
        })
        .collect()
}

/// Writes every answer of the study to a CSV; returns the number of rows. Written through a temporary file renamed
/// into place ([`crate::atomic_file`]), replacing a file of that name (the command line refuses one first without
/// `--overwrite`).
pub fn write_answers_csv(store: &StudyStore, path: &Path) -> StudyResult<usize> {
    let rows = answer_rows(store)?;
    if rows.is_empty() {
        // csv writes the header with the first record; a study without answers still gets its columns named.
        let mut blank = csv::Writer::from_writer(Vec::new());
        blank.serialize(AnswerRow::default()).map_err(|error| csv_error(path, 0, &error))?;
        let bytes = blank
            .into_inner()
            .map_err(|error| StudyError::Io { path: path.to_path_buf(), source: error.into_error() })?;
        let header = bytes.split_inclusive(|&b| b == b'\n').next().unwrap_or_default();
        write_file(path, IfExists::Replace, header)
            .map_err(|error| StudyError::Io { path: path.to_path_buf(), source: error.into_io() })?;
        return Ok(0);
    }
    let io = |error: OutputFileError| StudyError::Io { path: path.to_path_buf(), source: error.into_io() };
    let mut writer = csv::Writer::from_writer(PartialFile::create(path, IfExists::Replace).map_err(io)?);
    for row in &rows {
        writer.serialize(row).map_err(|error| csv_error(path, 0, &error))?;
    }
    let partial =
        writer.into_inner().map_err(|error| StudyError::Io { path: path.to_path_buf(), source: error.into_error() })?;
    partial.commit().map_err(io)?;
    Ok(rows.len())
}

fn parse_class(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "artificial" | "1" => Some(true),
        "real" | "0" => Some(false),
        _ => None,
    }
}

/// The analysable readings of answer rows: practice rows dropped, the latest revision per reader, case and
/// modality kept (a later row wins a tie).
pub fn readings_from_rows(rows: &[AnswerRow], default_modality: &str) -> Vec<Reading> {
    let mut latest: BTreeMap<(String, String, String), (u32, Reading)> = BTreeMap::new();
    for row in rows.iter().filter(|row| row.practice != Some(true)) {
        let (Some(truth), Some(call)) = (parse_class(&row.truth), parse_class(&row.call)) else {
            continue;
        };
        let modality = row.modality.clone().unwrap_or_else(|| default_modality.to_owned());
        let revision = row.revision.unwrap_or(1);
        let key = (modality.clone(), row.reader_id.clone(), row.case_id.clone());
        if latest.get(&key).is_some_and(|(kept, _)| *kept > revision) {
            continue;
        }
        let reading = Reading {
            reader: row.reader_id.clone(),
            case_id: row.case_id.clone(),
            modality,
            truth_artificial: truth,
            rating: row.rating,
            call_artificial: call,
            time_ms: row.time_ms,
            time_spans_restart: row.time_spans_restart.unwrap_or(false),
        };
        latest.insert(key, (revision, reading));
    }
    latest.into_values().map(|(_, reading)| reading).collect()
}

/// The analysable readings of a study (latest answers of main cases).
pub fn readings_from_store(store: &StudyStore) -> StudyResult<Vec<Reading>> {
    let design = store.design()?;
    Ok(readings_from_rows(&answer_rows(store)?, &design.modality))
}

/// The readings of an answers CSV and the rating categories it states.
pub struct AnswersFile {
    pub readings: Vec<Reading>,
    /// Every rating of the study's scale in order, when the file states the scale (`rating_lowest`,
    /// `rating_highest`, one value for all rows); `None` for files from elsewhere (the observed ratings count).
    pub rating_categories: Option<Vec<f64>>,
}

/// The rating categories `lowest..=highest`, refused when the range is empty or absurdly large.
pub fn rating_range(lowest: i64, highest: i64) -> Option<Vec<f64>> {
    const MOST_CATEGORIES: i64 = 10_000;
    (lowest <= highest && highest - lowest < MOST_CATEGORIES).then(|| (lowest..=highest).map(|r| r as f64).collect())
}

/// Reads an answers CSV (as written by `write_answers_csv`; only reader_id, case_id, truth, call and rating are
/// required) into readings. Unreadable truth or call values are errors naming the line.
pub fn read_answers_csv(path: &Path) -> StudyResult<AnswersFile> {
    let mut reader = csv::Reader::from_path(path).map_err(|error| csv_error(path, 0, &error))?;
    let mut rows = Vec::new();
    for (index, row) in reader.deserialize::<AnswerRow>().enumerate() {
        let line = index as u64 + 2;
        let row = row.map_err(|error| csv_error(path, line, &error))?;
        for (column, value) in [("truth", &row.truth), ("call", &row.call)] {
            if parse_class(value).is_none() {
                return Err(StudyError::Parse {
                    path: path.to_path_buf(),
                    line,
                    reason: format!("{column} {value:?} is neither real/artificial nor 0/1"),
                });
            }
        }
        if !row.rating.is_finite() {
            return Err(StudyError::Parse {
                path: path.to_path_buf(),
                line,
                reason: format!("rating {} is not finite", row.rating),
            });
        }
        rows.push(row);
    }
    let mut scales: Vec<(Option<i64>, Option<i64>)> =
        rows.iter().map(|r| (r.rating_lowest, r.rating_highest)).collect();
    scales.dedup();
    let rating_categories = match scales.as_slice() {
        [] | [(None, None)] => None,
        [(Some(lowest), Some(highest))] => Some(rating_range(*lowest, *highest).ok_or_else(|| StudyError::Parse {
            path: path.to_path_buf(),
            line: 2,
            reason: format!("rating_lowest {lowest} and rating_highest {highest} give no usable rating scale"),
        })?),
        _ => {
            return Err(StudyError::Parse {
                path: path.to_path_buf(),
                line: 2,
                reason: "rating_lowest and rating_highest must be given on every row with one value each, or not at \
                         all"
                .to_owned(),
            });
        }
    };
    if let Some(categories) = &rating_categories
        && let Some((index, row)) = rows.iter().enumerate().find(|(_, r)| !categories.contains(&r.rating))
    {
        return Err(StudyError::Parse {
            path: path.to_path_buf(),
            line: index as u64 + 2,
            reason: format!(
                "rating {} is not on the file's scale {}..={}",
                row.rating,
                categories[0],
                categories[categories.len() - 1]
            ),
        });
    }
    Ok(AnswersFile { readings: readings_from_rows(&rows, "A"), rating_categories })
}

/// Writes the study's latest main-case ratings with truth rows as an iMRMC input file; returns the score rows.
pub fn write_study_imrmc(store: &StudyStore, path: &Path) -> StudyResult<usize> {
    let design = store.design()?;
    let readings = readings_from_store(store)?;
    let truth = store
        .cases()?
        .into_iter()
        .filter(|case| !case.practice)
        .map(|case| (case.case_id, case.provenance.is_artificial()))
        .collect();
    let scale = design.confidence_scale;
    let (lowest, highest) = scale.rating_bounds();
    let header = vec![
        format!("Thorax Workbench reading study: {}", design.title),
        "Task: detect the artificial image; truth 1 = artificial, 0 = real.".to_owned(),
        call_threshold_line(scale.call_threshold() as f64),
        rating_scale_line(lowest, highest),
    ];
    let scores: Vec<ImrmcScore> = readings
        .into_iter()
        .map(|reading| ImrmcScore {
            reader: reading.reader,
            case_id: reading.case_id,
            modality: reading.modality,
            score: reading.rating,
        })
        .collect();
    let count = scores.len();
    write_imrmc(path, &ImrmcData { header, truth, scores })?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "reader_id,case_id,truth,call,rating";

    #[test]
    fn a_csv_that_states_the_scale_gives_every_category_and_one_without_gives_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answers.csv");
        let rows = "a,c1,real,real,2,1,10\nb,c1,real,artificial,7,1,10\n";
        std::fs::write(&path, format!("{HEADER},rating_lowest,rating_highest\n{rows}")).unwrap();
        let file = read_answers_csv(&path).unwrap();
        assert_eq!(file.readings.len(), 2);
        assert_eq!(file.rating_categories, Some((1..=10).map(f64::from).collect()), "unanswered ratings count too");

        std::fs::write(&path, format!("{HEADER}\na,c1,real,real,2\n")).unwrap();
        assert_eq!(read_answers_csv(&path).unwrap().rating_categories, None);

        let mixed = "a,c1,real,real,2,1,10\nb,c1,real,artificial,7,1,5\n";
        std::fs::write(&path, format!("{HEADER},rating_lowest,rating_highest\n{mixed}")).unwrap();
        assert!(read_answers_csv(&path).is_err(), "two scales in one file");
        let off_scale = "a,c1,real,real,12,1,10\n";
        std::fs::write(&path, format!("{HEADER},rating_lowest,rating_highest\n{off_scale}")).unwrap();
        let error = read_answers_csv(&path).err().unwrap().to_string();
        assert!(error.contains("rating 12 is not on the file's scale 1..=10"), "{error}");
    }
}
