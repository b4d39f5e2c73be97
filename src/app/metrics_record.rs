//! One finished metric run as the Metrics panel keeps it: what was computed, with which settings (inputs, N,
//! seeds, model names and SHA-256), the scalar results, and the data of its plot. Export: JSON holds everything
//! (plot data included) and reads back; CSV is the table in long form, one `setting` or `value` per line.

use serde::{Deserialize, Serialize};

use crate::metrics::bootstrap::BootstrapAuc;
use crate::metrics::correlation::CorrelationMatrix;
use crate::metrics::fid::FrechetDistance;
use crate::metrics::msssim_histogram::PairHistogram;

/// Which computation a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricKind {
    /// Frechet distance of DenseNet-121 pooled features (FD-DenseNet) and KID, two image folders.
    FdKid,
    /// MS-SSIM of random same-label pairs, per pathology, real vs artificial folders.
    MsSsimHistogram,
    /// ROC curves and AUC per label from a scores CSV and a truth CSV, with a bootstrap CI.
    Roc,
    /// Pathology correlation matrix of the generator scored by the classifier.
    Correlation,
}

impl MetricKind {
    pub const ALL: [MetricKind; 4] = [Self::FdKid, Self::MsSsimHistogram, Self::Roc, Self::Correlation];

    /// The name in the table and in exports.
    pub fn name(self) -> &'static str {
        match self {
            Self::FdKid => "FD-DenseNet + KID",
            Self::MsSsimHistogram => "MS-SSIM histogram",
            Self::Roc => "ROC / AUC",
            Self::Correlation => "Pathology correlation",
        }
    }

    /// Parses [`Self::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A named setting, e.g. `("pairs", "1000")` or `("classifier_sha256", "ab12...")`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub name: String,
    pub value: String,
}

/// A named scalar result, e.g. `("fd", 12.3)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedValue {
    pub name: String,
    pub value: f64,
}

/// The histograms of one pathology label (a side is `None` when its folder has no such label or too few images).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MsSsimLabel {
    pub label: String,
    pub real: Option<PairHistogram>,
    pub artificial: Option<PairHistogram>,
}

/// One label's ROC curve and AUC; `error` says why a label has no curve (e.g. a single class).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocLabel {
    pub label: String,
    pub cases: usize,
    pub positives: usize,
    pub auc: Option<f64>,
    pub bootstrap: Option<BootstrapAuc>,
    /// Curve points (sklearn `roc_curve` with `drop_intermediate`), from (0, 0) to (1, 1).
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    pub error: Option<String>,
}

/// KID summary (the per-subset values are in `per_subset`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KidSummary {
    pub mean: f64,
    pub std: f64,
    pub subsets: usize,
    pub subset_size: usize,
    pub seed: u64,
    pub per_subset: Vec<f64>,
}

/// The data behind a record's plot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetricDetail {
    FdKid { fd: FrechetDistance, kid: KidSummary },
    MsSsimHistogram { labels: Vec<MsSsimLabel>, notes: Vec<String> },
    Roc { labels: Vec<RocLabel> },
    Correlation { matrix: CorrelationMatrix },
}

/// One row of the results table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    /// Number in the table (1, 2, ...), assigned when the job finished.
    pub id: u64,
    pub metric: MetricKind,
    /// What the run used, in display order.
    pub settings: Vec<Setting>,
    /// Scalar results, in display order.
    pub values: Vec<NamedValue>,
    pub elapsed_ms: f64,
    pub detail: MetricDetail,
}

impl MetricRecord {
    /// The value of setting `name`, if recorded.
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings.iter().find(|s| s.name == name).map(|s| s.value.as_str())
    }

    /// The scalar result `name`, if recorded.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|v| v.name == name).map(|v| v.value)
    }
}

/// Why an export could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("JSON export: {0}")]
    Json(#[from] serde_json::Error),
    #[error("CSV export: {0}")]
    Csv(#[from] csv::Error),
    #[error("CSV export line {line}: {reason}")]
    CsvField { line: usize, reason: String },
    #[error("writing the CSV text: {0}")]
    Io(#[from] std::io::Error),
}

/// All records as a pretty JSON array (settings, values and plot data).
pub fn records_to_json(records: &[MetricRecord]) -> Result<String, ExportError> {
    Ok(serde_json::to_string_pretty(records)?)
}

/// Reads [`records_to_json`] back. The file holds every number in its shortest round-trip form (exact for readers
/// such as Python's `json`); serde_json's default reader may land one unit in the last place away.
pub fn records_from_json(text: &str) -> Result<Vec<MetricRecord>, ExportError> {
    Ok(serde_json::from_str(text)?)
}

/// Header of the CSV export.
pub const CSV_HEADER: [&str; 5] = ["result", "metric", "kind", "name", "value"];

/// The table as long-form CSV: `result,metric,kind,name,value` with kind `setting` or `value` (elapsed_ms is a
/// value). Numbers are written in Rust's shortest round-trip form, so they read back exactly.
pub fn records_to_csv(records: &[MetricRecord]) -> Result<String, ExportError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_HEADER)?;
    for record in records {
        let id = record.id.to_string();
        let metric = record.metric.name();
        for setting in &record.settings {
            writer.write_record([id.as_str(), metric, "setting", &setting.name, &setting.value])?;
        }
        for value in &record.values {
            writer.write_record([id.as_str(), metric, "value", &value.name, &value.value.to_string()])?;
        }
        writer.write_record([id.as_str(), metric, "value", "elapsed_ms", &record.elapsed_ms.to_string()])?;
    }
    writer.flush()?;
    let bytes = writer.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| ExportError::CsvField { line: 0, reason: e.to_string() })
}

/// What the CSV export holds of a record: everything but the plot data.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRecord {
    pub id: u64,
    pub metric: MetricKind,
    pub settings: Vec<Setting>,
    pub values: Vec<NamedValue>,
}

impl From<&MetricRecord> for CsvRecord {
    fn from(record: &MetricRecord) -> Self {
        let mut values = record.values.clone();
        values.push(NamedValue { name: "elapsed_ms".to_owned(), value: record.elapsed_ms });
        Self { id: record.id, metric: record.metric, settings: record.settings.clone(), values }
    }
}

/// Reads [`records_to_csv`] back, one [`CsvRecord`] per result in file order.
pub fn records_from_csv(text: &str) -> Result<Vec<CsvRecord>, ExportError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    if header != CSV_HEADER {
        return Err(ExportError::CsvField { line: 1, reason: format!("header {header:?}, expected {CSV_HEADER:?}") });
    }
    let mut records: Vec<CsvRecord> = Vec::new();
    for (index, row) in reader.records().enumerate() {
        let line = index + 2;
        let row = row?;
        let field = |i: usize| row.get(i).unwrap_or_default();
        let id: u64 = field(0)
            .parse()
            .map_err(|e| ExportError::CsvField { line, reason: format!("result {:?}: {e}", field(0)) })?;
        let metric = MetricKind::from_name(field(1))
            .ok_or_else(|| ExportError::CsvField { line, reason: format!("unknown metric {:?}", field(1)) })?;
        if records.last().is_none_or(|r| r.id != id) {
            records.push(CsvRecord { id, metric, settings: Vec::new(), values: Vec::new() });
        }
        let Some(record) = records.last_mut() else {
            continue;
        };
        let (name, value) = (field(3).to_owned(), field(4));
        match field(2) {
            "setting" => record.settings.push(Setting { name, value: value.to_owned() }),
            "value" => {
                let value: f64 =
                    value.parse().map_err(|e| ExportError::CsvField { line, reason: format!("{name}: {e}") })?;
                record.values.push(NamedValue { name, value });
            }
            other => return Err(ExportError::CsvField { line, reason: format!("unknown kind {other:?}") }),
        }
    }
    Ok(records)
}

/// A suggested export file name.
pub fn export_file_name(extension: &str) -> String {
    format!("thorax-metrics.{extension}")
}

/// Writes `bytes` to `path` (used from a helper thread), through a temporary file renamed into place (the save
/// dialog has asked before replacing a file).
pub fn write_export(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::atomic_file::write_file(path, crate::atomic_file::IfExists::Replace, bytes).map_err(|e| e.into_io())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_records() -> Vec<MetricRecord> {
        let histogram = PairHistogram {
            counts: vec![1, 0, 2],
            bin_edges: vec![0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0],
            pairs_requested: 3,
            values: vec![0.1, 0.7, 0.812_345_678_901_234_5],
            undefined_pairs: 0,
            out_of_range: 0,
            mean: 0.537_448_559_633_744_8,
            std: 0.316_227_766_016_837_94,
            seed: 7,
        };
        vec![
            MetricRecord {
                id: 1,
                metric: MetricKind::MsSsimHistogram,
                settings: vec![
                    Setting { name: "real_folder".into(), value: "/data/real, \"quoted\"".into() },
                    Setting { name: "pairs".into(), value: "3".into() },
                    Setting { name: "seed".into(), value: "7".into() },
                ],
                values: vec![NamedValue { name: "mean all (real)".into(), value: 0.537_448_559_633_744_8 }],
                elapsed_ms: 12.25,
                detail: MetricDetail::MsSsimHistogram {
                    labels: vec![MsSsimLabel { label: "all".into(), real: Some(histogram), artificial: None }],
                    notes: vec!["artificial: no images".into()],
                },
            },
            MetricRecord {
                id: 2,
                metric: MetricKind::Correlation,
                settings: vec![Setting { name: "per_label".into(), value: "50".into() }],
                values: vec![NamedValue { name: "r Edema".into(), value: -1.0e-17 }],
                elapsed_ms: 1.0 / 3.0,
                detail: MetricDetail::Correlation {
                    matrix: CorrelationMatrix {
                        control_labels: vec!["Edema".into()],
                        output_labels: vec!["Edema".into(), "Mass".into()],
                        r: vec![vec![Some(0.5), None]],
                        counts: vec![50],
                        undefined_cells: vec![(0, 1)],
                    },
                },
            },
        ]
    }

    /// Equal JSON trees, numbers within `rel` relative difference (serde_json's reader is not correctly rounded).
    fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value, rel: f64, at: &str) {
        use serde_json::Value;
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                assert!((x - y).abs() <= rel * x.abs().max(y.abs()), "{at}: {x} vs {y}");
            }
            (Value::Array(x), Value::Array(y)) => {
                assert_eq!(x.len(), y.len(), "{at}");
                for (i, (x, y)) in x.iter().zip(y).enumerate() {
                    assert_json_close(x, y, rel, &format!("{at}[{i}]"));
                }
            }
            (Value::Object(x), Value::Object(y)) => {
                assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}");
                for (key, x) in x {
                    assert_json_close(x, &y[key], rel, &format!("{at}.{key}"));
                }
            }
            _ => assert_eq!(a, b, "{at}"),
        }
    }

    #[test]
    fn json_export_reads_back_the_same_records() {
        let records = sample_records();
        let text = records_to_json(&records).unwrap();
        assert!(text.contains("\"MsSsimHistogram\""));
        let read = records_from_json(&text).unwrap();
        let (before, after) = (serde_json::to_value(&records).unwrap(), serde_json::to_value(&read).unwrap());
        assert_json_close(&before, &after, 1e-15, "records");
        // Everything but the last bit of a float is the same: ids, kinds, settings, structure.
        assert_eq!(read.len(), records.len());
        for (a, b) in read.iter().zip(&records) {
            assert_eq!((a.id, a.metric, &a.settings), (b.id, b.metric, &b.settings));
        }
        assert!(records_from_json("[{\"id\": 1}]").is_err());
    }

    #[test]
    fn csv_export_reads_back_settings_and_values_exactly() {
        let records = sample_records();
        let text = records_to_csv(&records).unwrap();
        assert!(text.starts_with("result,metric,kind,name,value\n"));
        assert!(text.contains("1,MS-SSIM histogram,setting,real_folder,\"/data/real, \"\"quoted\"\"\"\n"), "{text}");
        let expected: Vec<CsvRecord> = records.iter().map(CsvRecord::from).collect();
        assert_eq!(records_from_csv(&text).unwrap(), expected);
        assert!(records_from_csv("a,b\n1,2\n").is_err());
        assert!(records_from_csv("result,metric,kind,name,value\n1,Nope,value,x,1\n").is_err());
        assert!(records_from_csv("result,metric,kind,name,value\n1,ROC / AUC,value,x,abc\n").is_err());
    }

    #[test]
    fn metric_names_parse_back() {
        for kind in MetricKind::ALL {
            assert_eq!(MetricKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(MetricKind::from_name("FID"), None);
    }
}
