//! The real radiographs embedded in the binary (`assets/samples/`, licences in its SOURCES.md).

include!(concat!(env!("OUT_DIR"), "/embedded_samples.rs"));

const LABELS_CSV: &str = include_str!("../../assets/samples/labels.csv");

/// One embedded sample and what its source says about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub file_name: String,
    pub source: String,
    pub view: String,
    /// NIH findings; empty when the source has none (MHH images).
    pub findings: Vec<String>,
    pub patient_id: String,
    pub licence: String,
    pub bytes: &'static [u8],
}

impl Sample {
    /// "No Finding", the findings joined, or "unlabelled".
    pub fn findings_text(&self) -> String {
        if self.findings.is_empty() { "unlabelled".to_owned() } else { self.findings.join(", ") }
    }
}

#[derive(serde::Deserialize)]
struct LabelRow {
    file: String,
    source: String,
    view: String,
    findings: String,
    patient_id: String,
    license: String,
}

/// All embedded samples, those with NIH findings first, then by file name. A row without an embedded file (or the reverse) is skipped, so a
/// stale labels.csv cannot crash start-up; a test keeps the two in step.
pub fn embedded_samples() -> Vec<Sample> {
    let mut reader = csv::Reader::from_reader(LABELS_CSV.as_bytes());
    let rows: Vec<LabelRow> = reader.deserialize().filter_map(Result::ok).collect();
    let mut samples = EMBEDDED_SAMPLES
        .iter()
        .filter_map(|&(name, bytes)| {
            let row = rows.iter().find(|r| r.file == name)?;
            Some(Sample {
                file_name: name.to_owned(),
                source: row.source.clone(),
                view: row.view.clone(),
                findings: row.findings.split('|').map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned).collect(),
                patient_id: row.patient_id.clone(),
                licence: row.license.clone(),
                bytes,
            })
        })
        .collect::<Vec<_>>();
    samples.sort_by(|a, b| (a.findings.is_empty(), &a.file_name).cmp(&(b.findings.is_empty(), &b.file_name)));
    samples
}

/// Every finding that occurs in the samples, sorted, for the browser's filter.
pub fn all_findings(samples: &[Sample]) -> Vec<String> {
    let mut findings: Vec<String> = samples.iter().flat_map(|s| s.findings.iter().cloned()).collect();
    findings.sort();
    findings.dedup();
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_file_has_a_label_row_and_decodes() {
        let samples = embedded_samples();
        assert_eq!(samples.len(), EMBEDDED_SAMPLES.len());
        assert!((20..=40).contains(&samples.len()), "{} samples", samples.len());
        for sample in &samples {
            let image = crate::imaging::decode_image(sample.bytes, &sample.file_name).unwrap();
            assert!(image.width_px() >= 256 && image.height_px() >= 256, "{}", sample.file_name);
        }
        assert!(all_findings(&samples).contains(&"Cardiomegaly".to_owned()));
    }
}
