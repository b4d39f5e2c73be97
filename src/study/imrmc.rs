//! The iMRMC input format (FDA DIDSR/iMRMC): a free-text header, a line `BEGIN DATA:`, then one row per
//! observation `readerID, caseID, modalityID, score`. Every case has a truth row with readerID `truth` and
//! modalityID `truth` whose score is 1 (signal present: here, artificial) or 0. Older files used `-1` for truth.

use crate::atomic_file::{IfExists, PartialFile};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use super::analysis::Reading;
use super::error::{StudyError, StudyResult};

/// Reader and modality id of truth rows.
pub const TRUTH_ID: &str = "truth";

/// Legacy reader id of truth rows.
const LEGACY_TRUTH_ID: &str = "-1";

/// The line that ends the free-text header.
pub const BEGIN_DATA: &str = "BEGIN DATA:";

/// One reader score.
#[derive(Clone, Debug, PartialEq)]
pub struct ImrmcScore {
    /// Reader id.
    pub reader: String,
    /// Case id.
    pub case_id: String,
    /// Modality id.
    pub modality: String,
    /// Score, higher = more surely signal-present (artificial).
    pub score: f64,
}

/// The contents of an iMRMC file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImrmcData {
    /// Free-text header lines (before `BEGIN DATA:`).
    pub header: Vec<String>,
    /// Truth per case: `true` = signal present (artificial).
    pub truth: BTreeMap<String, bool>,
    /// Reader scores in file order.
    pub scores: Vec<ImrmcScore>,
}

/// The words around the call threshold in the header line Thorax writes, so that `study analyze --imrmc` reads the
/// threshold back instead of asking for it.
const THRESHOLD_BEFORE: &str = "scores >= ";
const THRESHOLD_AFTER: &str = " are artificial calls.";

/// The header line stating that ratings `>= call_threshold` are "artificial" calls.
pub fn call_threshold_line(call_threshold: f64) -> String {
    format!(
        "Score: call and confidence combined, higher = more surely artificial; {THRESHOLD_BEFORE}{call_threshold}\
         {THRESHOLD_AFTER}"
    )
}

/// The words of the header line that states the rating scale.
const SCALE_BEFORE: &str = "Ratings: every integer from ";
const SCALE_BETWEEN: &str = " to ";
const SCALE_AFTER: &str = " is a category";

/// The header line stating the study's rating scale (`lowest..=highest`, answered or not), so that weighted kappa
/// from the file counts the same categories as the study.
pub fn rating_scale_line(lowest: i64, highest: i64) -> String {
    format!("{SCALE_BEFORE}{lowest}{SCALE_BETWEEN}{highest}{SCALE_AFTER} (weighted kappa counts them all).")
}

impl ImrmcData {
    /// The values stated by header lines: the text between `before` and `after` on each line that has both.
    fn stated<'a>(&'a self, before: &'a str, after: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.header.iter().filter_map(move |line| {
            let (_, rest) = line.split_once(before)?;
            let (value, _) = rest.split_once(after)?;
            Some(value.trim())
        })
    }

    /// The call threshold a header line of [`call_threshold_line`] states: `Ok(None)` when none does (files from
    /// other tools), an error for a value that is not a finite number or for lines that disagree.
    pub fn stated_call_threshold(&self) -> Result<Option<f64>, String> {
        let mut found: Option<f64> = None;
        for text in self.stated(THRESHOLD_BEFORE, THRESHOLD_AFTER) {
            let value = text.parse::<f64>().ok().filter(|k| k.is_finite()).ok_or_else(|| {
                format!("its header states the call threshold {text:?}, which is not a finite number")
            })?;
            match found {
                Some(earlier) if earlier != value => {
                    return Err(format!("its header states two call thresholds, {earlier} and {value}"));
                }
                _ => found = Some(value),
            }
        }
        Ok(found)
    }

    /// The rating categories a header line of [`rating_scale_line`] states, if one does.
    pub fn stated_rating_categories(&self) -> Result<Option<Vec<f64>>, String> {
        let Some(text) = self.stated(SCALE_BEFORE, SCALE_AFTER).next() else {
            return Ok(None);
        };
        let range = text.split_once(SCALE_BETWEEN).and_then(|(low, high)| {
            let (low, high) = (low.trim().parse::<i64>().ok()?, high.trim().parse::<i64>().ok()?);
            crate::study::export::rating_range(low, high)
        });
        range
            .map(Some)
            .ok_or_else(|| format!("its header states the rating scale {text:?}, which is not a usable range"))
    }
}

/// Writes `data` in iMRMC input format (", "-separated rows, as the iMRMC R package writes them), through a
/// temporary file renamed into place, replacing a file of that name (the command line refuses one first without
/// `--overwrite`).
pub fn write_imrmc(path: &Path, data: &ImrmcData) -> StudyResult<()> {
    let io = |source| StudyError::Io { path: path.to_path_buf(), source };
    let partial = PartialFile::create(path, IfExists::Replace).map_err(|error| io(error.into_io()))?;
    let mut out = std::io::BufWriter::new(partial);
    for line in &data.header {
        writeln!(out, "{line}").map_err(io)?;
    }
    writeln!(out, "{BEGIN_DATA}").map_err(io)?;
    for (case_id, artificial) in &data.truth {
        writeln!(out, "{TRUTH_ID}, {case_id}, {TRUTH_ID}, {}", u8::from(*artificial)).map_err(io)?;
    }
    for score in &data.scores {
        writeln!(out, "{}, {}, {}, {}", score.reader, score.case_id, score.modality, score.score).map_err(io)?;
    }
    out.flush().map_err(io)?;
    let partial = out.into_inner().map_err(|error| io(error.into_error()))?;
    partial.commit().map_err(|error| io(error.into_io()))
}

/// Reads an iMRMC input file. Without a `BEGIN DATA:` line the whole file is data (a first line starting with
/// `readerID` is taken as a column header).
pub fn read_imrmc(path: &Path) -> StudyResult<ImrmcData> {
    let text = std::fs::read_to_string(path).map_err(|source| StudyError::Io { path: path.to_path_buf(), source })?;
    let lines: Vec<&str> = text.lines().collect();
    let begin = lines.iter().position(|line| line.trim().trim_end_matches(':').eq_ignore_ascii_case("BEGIN DATA"));
    let (header, data_start) = match begin {
        Some(index) => (lines.iter().take(index).map(|l| (*l).to_owned()).collect(), index + 1),
        None => (Vec::new(), 0),
    };
    let parse_error =
        |line: usize, reason: String| StudyError::Parse { path: path.to_path_buf(), line: line as u64 + 1, reason };
    let mut data = ImrmcData { header, ..ImrmcData::default() };
    for (index, line) in lines.iter().enumerate().skip(data_start) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [reader, case_id, modality, score] = fields.as_slice() else {
            return Err(parse_error(
                index,
                format!("expected 4 fields readerID, caseID, modalityID, score; found {}", fields.len()),
            ));
        };
        if index == data_start && reader.eq_ignore_ascii_case("readerID") {
            continue;
        }
        let score: f64 = score
            .parse()
            .ok()
            .filter(|value: &f64| value.is_finite())
            .ok_or_else(|| parse_error(index, format!("score {score:?} is not a finite number")))?;
        if *reader == TRUTH_ID || *reader == LEGACY_TRUTH_ID {
            let artificial = if score == 1.0 {
                true
            } else if score == 0.0 {
                false
            } else {
                return Err(parse_error(index, format!("truth of case {case_id} must be 0 or 1, not {score}")));
            };
            if data.truth.insert((*case_id).to_owned(), artificial).is_some_and(|old| old != artificial) {
                return Err(parse_error(index, format!("case {case_id} has conflicting truth rows")));
            }
        } else {
            data.scores.push(ImrmcScore {
                reader: (*reader).to_owned(),
                case_id: (*case_id).to_owned(),
                modality: (*modality).to_owned(),
                score,
            });
        }
    }
    if data.scores.is_empty() {
        return Err(StudyError::Parse {
            path: path.to_path_buf(),
            line: lines.len() as u64,
            reason: "no reader scores".to_owned(),
        });
    }
    Ok(data)
}

/// Turns iMRMC scores into readings: scores `>= call_threshold` are "artificial" calls. Every scored case needs
/// a truth row.
pub fn readings_from_imrmc(data: &ImrmcData, call_threshold: f64) -> StudyResult<Vec<Reading>> {
    data.scores
        .iter()
        .map(|score| {
            let truth = data
                .truth
                .get(&score.case_id)
                .ok_or_else(|| StudyError::Analysis(format!("case {} has scores but no truth row", score.case_id)))?;
            Ok(Reading {
                reader: score.reader.clone(),
                case_id: score.case_id.clone(),
                modality: score.modality.clone(),
                truth_artificial: *truth,
                rating: score.score,
                call_artificial: score.score >= call_threshold,
                time_ms: None,
                time_spans_restart: false,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("study.imrmc");
        let data = ImrmcData {
            header: vec!["a study".to_owned()],
            truth: [("c1".to_owned(), true), ("c2".to_owned(), false)].into_iter().collect(),
            scores: vec![ImrmcScore {
                reader: "alice".to_owned(),
                case_id: "c1".to_owned(),
                modality: "blinded".to_owned(),
                score: 7.0,
            }],
        };
        write_imrmc(&path, &data).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("BEGIN DATA:\ntruth, c1, truth, 1\ntruth, c2, truth, 0\nalice, c1, blinded, 7\n"));
        assert_eq!(read_imrmc(&path).unwrap(), data);
    }

    #[test]
    fn bad_rows_are_reported_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.imrmc");
        std::fs::write(&path, "BEGIN DATA:\ntruth, c1, truth, 1\nalice, c1, m\n").unwrap();
        let error = read_imrmc(&path).unwrap_err().to_string();
        assert!(error.contains("line 3"), "{error}");
        std::fs::write(&path, "BEGIN DATA:\ntruth, c1, truth, 2\nalice, c1, m, 1\n").unwrap();
        assert!(read_imrmc(&path).unwrap_err().to_string().contains("0 or 1"));
    }

    #[test]
    fn the_call_threshold_line_is_read_back_and_other_headers_state_none() {
        let mut data = ImrmcData { header: vec!["a study".to_owned(), call_threshold_line(6.0)], ..Default::default() };
        assert!(data.header[1].ends_with("scores >= 6 are artificial calls."), "{}", data.header[1]);
        assert_eq!(data.stated_call_threshold(), Ok(Some(6.0)));
        data.header = vec!["from another tool".to_owned()];
        assert_eq!(data.stated_call_threshold(), Ok(None));
        data.header = vec![call_threshold_line(f64::NAN)];
        assert!(data.stated_call_threshold().unwrap_err().contains("\"NaN\", which is not a finite number"));
        data.header = vec![call_threshold_line(9.0), call_threshold_line(6.0), call_threshold_line(6.0)];
        assert_eq!(data.stated_call_threshold().unwrap_err(), "its header states two call thresholds, 9 and 6");
    }

    #[test]
    fn the_rating_scale_line_is_read_back() {
        let mut data = ImrmcData { header: vec![rating_scale_line(1, 10)], ..Default::default() };
        assert_eq!(data.stated_rating_categories(), Ok(Some((1..=10).map(f64::from).collect())));
        data.header = vec![rating_scale_line(10, 1)];
        assert!(data.stated_rating_categories().is_err());
        data.header.clear();
        assert_eq!(data.stated_rating_categories(), Ok(None));
    }
}
