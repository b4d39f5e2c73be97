//! Artificial cases from the conditional generator: one image per case, seeds counted up from a base seed, labels
//! replayed from the real cases (as the original study did) or chosen once for all cases.

use std::path::Path;

use image::{DynamicImage, GrayImage as Luma8Image};

use crate::convert::progan_tf::sha256_hex;
use crate::models::card::ModelKind;
use crate::models::progan::{ProganGenerator, latents_from_seed, to_png_u8};
use crate::models::weights::Weights;

use super::error::{StudyError, StudyResult};
use super::sources::{ArtificialSource, CaseLabels, RealImageEntry, SourceImage};

/// Labels of a real case as the generator's conditioning vector (in the card's order).
///
/// A column named like a label (case, spaces and underscores ignored) gives its value, a number from 0 to 1 ("1",
/// "0.5"; an empty cell is 0); otherwise a `findings` / `Finding Labels` column in the NIH style ("Effusion|Mass")
/// sets each named label to 1. Labels the case does not mention are 0.
///
/// Any other value in a label's column is refused, naming it: "yes" became 0 and "7" reached the generator as 7,
/// far outside what it was trained on, and both were recorded in the case's provenance as if meant.
pub fn labels_from_case(card_labels: &[String], case: &CaseLabels) -> Result<Vec<f32>, String> {
    let key = |name: &str| name.to_lowercase().replace(['_', ' '], "");
    let findings: Vec<String> = case
        .iter()
        .filter(|(column, _)| matches!(key(column).as_str(), "findings" | "findinglabels"))
        .flat_map(|(_, value)| value.split('|').map(key).collect::<Vec<_>>())
        .collect();
    card_labels
        .iter()
        .map(|label| {
            let wanted = key(label);
            let Some((column, value)) = case.iter().find(|(column, _)| key(column) == wanted) else {
                return Ok(if findings.contains(&wanted) { 1.0 } else { 0.0 });
            };
            let text = value.trim();
            if text.is_empty() {
                return Ok(0.0);
            }
            match text.parse::<f32>() {
                Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
                _ => Err(format!(
                    "column {column:?} holds {text:?}: a label replayed to the generator must be a number from 0 to 1"
                )),
            }
        })
        .collect()
}

/// Checks, before any case is made, that every row of a real labels CSV (`csv`; `entries` are its rows in order,
/// the first on line 2) replays to the generator: some column names one of the card's labels or is a findings column,
/// and every label value is a number from 0 to 1. The error names the file, the line and the image.
pub fn check_replayable_labels(card_labels: &[String], entries: &[RealImageEntry], csv: &Path) -> StudyResult<()> {
    let key = |name: &str| name.to_lowercase().replace(['_', ' '], "");
    let wanted: Vec<String> = card_labels.iter().map(|l| key(l)).collect();
    let columns: Vec<&String> = entries.first().map(|e| e.labels.keys().collect()).unwrap_or_default();
    let replays = columns.iter().any(|c| {
        let c = key(c);
        wanted.contains(&c) || matches!(c.as_str(), "findings" | "findinglabels")
    });
    if !entries.is_empty() && !replays {
        return Err(StudyError::Parse {
            path: csv.to_path_buf(),
            line: 1,
            reason: format!(
                "no column names one of the generator's labels ({}) or holds findings (`findings`, `Finding Labels`), \
                 so every artificial case would be generated with no pathology; columns: {}",
                card_labels.join(", "),
                columns.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    for (index, entry) in entries.iter().enumerate() {
        labels_from_case(card_labels, &entry.labels).map_err(|reason| StudyError::Parse {
            path: csv.to_path_buf(),
            line: index as u64 + 2,
            reason: format!("{} ({})", reason, entry.path.display()),
        })?;
    }
    Ok(())
}

/// The generator as a study's artificial source.
pub struct GeneratorSource {
    generator: ProganGenerator,
    model_name: String,
    model_sha256: String,
    base_seed: u32,
    /// Used for every case when no real labels are replayed.
    chosen_labels: Vec<f32>,
}

impl GeneratorSource {
    /// `chosen_labels` (card order) apply when the study does not replay real labels; `None` means all zero.
    pub fn new(
        generator: ProganGenerator,
        model_name: String,
        model_sha256: String,
        base_seed: u32,
        chosen_labels: Option<Vec<f32>>,
    ) -> StudyResult<Self> {
        let label_count = generator.architecture().label_size;
        let chosen_labels = chosen_labels.unwrap_or_else(|| vec![0.0; label_count]);
        if chosen_labels.len() != label_count {
            return Err(StudyError::Source(format!(
                "{} labels given, the generator {model_name} takes {label_count}",
                chosen_labels.len()
            )));
        }
        Ok(Self { generator, model_name, model_sha256, base_seed, chosen_labels })
    }

    /// The generator's labels, in its card's order.
    pub fn card_labels(&self) -> &[String] {
        &self.generator.card().labels
    }

    /// Loads the generator from safetensors `bytes` (`name` labels it in errors and provenance).
    pub fn from_model_bytes(
        bytes: &[u8],
        name: &str,
        device: &candle_core::Device,
        base_seed: u32,
        chosen_labels: Option<Vec<f32>>,
    ) -> StudyResult<Self> {
        let failed = |e: &dyn std::fmt::Display| StudyError::Source(format!("loading the generator {name}: {e}"));
        let weights = Weights::from_bytes(bytes, std::path::Path::new(name), ModelKind::ProganGenerator, device)
            .map_err(|e| failed(&e))?;
        let generator = ProganGenerator::from_weights(weights).map_err(|e| failed(&e))?;
        Self::new(generator, name.to_owned(), sha256_hex(bytes), base_seed, chosen_labels)
    }

    /// The side of the images it makes.
    pub fn side_px(&self) -> u32 {
        u32::try_from(self.generator.card().resolution).unwrap_or(u32::MAX)
    }

    /// The generator's label names, in its order.
    pub fn label_names(&self) -> &[String] {
        &self.generator.card().labels
    }

    fn generate(&self, seed: u32, labels: &[f32]) -> StudyResult<Luma8Image> {
        let failed = |e: &dyn std::fmt::Display| StudyError::Source(format!("generator {}: {e}", self.model_name));
        let architecture = self.generator.architecture();
        let device = self.generator.device();
        let latents = candle_core::Tensor::from_vec(
            latents_from_seed(seed, 1, architecture.latent_size),
            (1, architecture.latent_size),
            device,
        )
        .map_err(|e| failed(&e))?;
        let labels =
            candle_core::Tensor::from_vec(labels.to_vec(), (1, labels.len()), device).map_err(|e| failed(&e))?;
        let output = self.generator.forward(&latents, &labels).map_err(|e| failed(&e))?;
        let (_, _, height, width) = output.dims4().map_err(|e| failed(&e))?;
        let values = output
            .narrow(1, 0, 1)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| failed(&e))?;
        // Exactly the PNG the generator CLI writes: clip(rint((x + 1) * 127.5)).
        let pixels = values.into_iter().map(to_png_u8).collect();
        Luma8Image::from_raw(width as u32, height as u32, pixels)
            .ok_or_else(|| StudyError::Source(format!("generator {}: output of unexpected size", self.model_name)))
    }
}

impl ArtificialSource for GeneratorSource {
    fn description(&self) -> String {
        format!("generator {} (sha256 {}), seeds from {}", self.model_name, self.model_sha256, self.base_seed)
    }

    fn produce(&mut self, index: usize, replay_labels: Option<&CaseLabels>) -> StudyResult<Option<SourceImage>> {
        let card_labels = self.generator.card().labels.clone();
        let labels = match replay_labels {
            Some(case) => labels_from_case(&card_labels, case).map_err(|reason| {
                let file = ["file", "filename", "image", "path"].iter().find_map(|c| case.get(*c));
                let row = file.map(|f| format!(" (row of {f})")).unwrap_or_default();
                StudyError::Source(format!("real labels CSV{row}: {reason}"))
            })?,
            None => self.chosen_labels.clone(),
        };
        let seed = self.base_seed.wrapping_add(index as u32);
        let image = self.generate(seed, &labels)?;
        let label_text: Vec<String> = card_labels.iter().zip(&labels).map(|(n, v)| format!("{n}={v}")).collect();
        Ok(Some(SourceImage {
            image: DynamicImage::ImageLuma8(image),
            provenance: format!(
                "generator {} sha256={} seed={seed} labels={}",
                self.model_name,
                self.model_sha256,
                label_text.join(",")
            ),
            labels: card_labels.iter().zip(&labels).map(|(n, v)| (n.clone(), v.to_string())).collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(pairs: &[(&str, &str)]) -> CaseLabels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn labels_come_from_numeric_columns_or_nih_findings() {
        let labels: Vec<String> = ["Cardiomegaly", "Effusion", "Pleural_Thickening"].map(String::from).to_vec();
        assert_eq!(
            labels_from_case(&labels, &case(&[("Cardiomegaly", "1"), ("effusion", "0.5")])).unwrap(),
            vec![1.0, 0.5, 0.0]
        );
        assert_eq!(
            labels_from_case(&labels, &case(&[("findings", "Effusion|Pleural Thickening"), ("sex", "M")])).unwrap(),
            vec![0.0, 1.0, 1.0]
        );
        assert_eq!(labels_from_case(&labels, &case(&[("Finding Labels", "No Finding")])).unwrap(), vec![0.0; 3]);
        assert_eq!(labels_from_case(&labels, &case(&[("Effusion", " ")])).unwrap(), vec![0.0; 3]);
    }

    #[test]
    fn a_labels_csv_is_checked_whole_before_any_case_is_made() {
        let labels: Vec<String> = ["Cardiomegaly", "Effusion"].map(String::from).to_vec();
        let entry = |file: &str, pairs: &[(&str, &str)]| RealImageEntry { path: file.into(), labels: case(pairs) };
        let csv = Path::new("real.csv");
        let good = [entry("a.png", &[("Effusion", "1")]), entry("b.png", &[("Effusion", "0")])];
        check_replayable_labels(&labels, &good, csv).unwrap();
        let bad_second = [entry("a.png", &[("Effusion", "1")]), entry("b.png", &[("Effusion", "nan")])];
        let error = check_replayable_labels(&labels, &bad_second, csv).unwrap_err().to_string();
        assert!(error.contains("line 3") && error.contains("b.png") && error.contains("real.csv"), "{error}");
        let unknown = [entry("a.png", &[("Foo", "1"), ("Bar", "0")])];
        let error = check_replayable_labels(&labels, &unknown, csv).unwrap_err().to_string();
        assert!(error.contains("no column names one of the generator's labels") && error.contains("Foo"), "{error}");
        let findings = [entry("a.png", &[("Finding Labels", "Effusion")])];
        check_replayable_labels(&labels, &findings, csv).unwrap();
    }

    #[test]
    fn a_label_value_the_generator_cannot_take_is_refused_by_name() {
        let labels: Vec<String> = ["Cardiomegaly", "Effusion"].map(String::from).to_vec();
        for bad in ["yes", "7", "-1", "NaN"] {
            let error = labels_from_case(&labels, &case(&[("Cardiomegaly", bad)])).unwrap_err();
            assert!(
                error.contains("\"Cardiomegaly\"") && error.contains(bad) && error.contains("from 0 to 1"),
                "{error}"
            );
        }
    }
}
