//! File ▸ Save artificial image: the generator's latest image as an 8-bit PNG with the same provenance chunks
//! `thorax generate` writes (model SHA-256, seed, latent row, labels, a synthetic-image statement), so a saved
//! image can be traced and re-made, and `thorax dicom export-sc` reads its provenance.

use std::path::Path;

use crate::imaging::GrayImage;
use crate::imaging::dicom::{GrayImage as SampleImage, GraySamples, Provenance, write_png_with_provenance};
use crate::models::card::ModelCard;
use crate::models::progan::{labels_text, seeded_latent_description};

/// The generator's latest image and where it came from.
#[derive(Clone, Debug)]
pub struct GeneratedRecord {
    pub image: GrayImage,
    pub provenance: Provenance,
    /// Suggested file name, e.g. `seed1000_Cardiomegaly.png`.
    pub file_name: String,
}

impl GeneratedRecord {
    /// The record of an image made by the generator of `card` (weights `model_sha256`) from `seed` and `labels`
    /// (in the card's label order), as the worker makes it: latent row 0 of a one-row seeded batch.
    pub fn new(
        image: GrayImage,
        card: &ModelCard,
        model_sha256: &str,
        seed: u32,
        labels: &[f32],
    ) -> Result<Self, String> {
        let latent_size = card.hyper.get("latent_size").map_or(512, |&size| size as usize);
        let latent = seeded_latent_description(seed, 1, latent_size, 0);
        let provenance = Provenance::new(model_sha256, u64::from(seed), &labels_text(&card.labels, labels))
            .and_then(|p| p.with_latent(&latent))
            .map_err(|e| e.to_string())?;
        let findings: Vec<&str> =
            card.labels.iter().zip(labels).filter(|(_, v)| **v > 0.0).map(|(name, _)| name.as_str()).collect();
        let file_name = if findings.is_empty() {
            format!("seed{seed}.png")
        } else {
            format!("seed{seed}_{}.png", findings.join("_").replace(' ', "_"))
        };
        Ok(Self { image, provenance, file_name })
    }

    /// Writes the PNG (8-bit, the values shown) with its provenance.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        // The worker's output is 8-bit values held as f32.
        let bytes: Vec<u8> = self.image.pixels().iter().map(|v| v.round().clamp(0.0, 255.0) as u8).collect();
        let width = u32::try_from(self.image.width_px()).map_err(|e| e.to_string())?;
        let height = u32::try_from(self.image.height_px()).map_err(|e| e.to_string())?;
        let image = SampleImage::new(width, height, GraySamples::U8(bytes)).map_err(|e| e.to_string())?;
        write_png_with_provenance(path, &image, &self.provenance).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::BitDepth;
    use crate::imaging::dicom::read_png_with_provenance;
    use crate::models::card::ModelKind;

    #[test]
    fn saved_image_reads_back_with_its_values_and_provenance() {
        let card = ModelCard {
            kind: ModelKind::ProganGenerator,
            name: "test".to_owned(),
            labels: vec!["Cardiomegaly".to_owned(), "Pleural Thickening".to_owned(), "Mass".to_owned()],
            resolution: 4,
            channels: 1,
            hyper: [("latent_size".to_owned(), 512.0)].into(),
            input_normalization: None,
            output_range: None,
            untrained: false,
            provenance: Default::default(),
            metrics: Default::default(),
        };
        let pixels: Vec<f32> = (0..16).map(|i| (i * 16) as f32).collect();
        let image = GrayImage::new(4, 4, BitDepth::U8, pixels.clone()).unwrap();
        let sha = "ab".repeat(32);
        let record = GeneratedRecord::new(image, &card, &sha, 1000, &[1.0, 0.5, 0.0]).unwrap();
        assert_eq!(record.file_name, "seed1000_Cardiomegaly_Pleural_Thickening.png");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(&record.file_name);
        record.save(&path).unwrap();
        let (read, provenance) = read_png_with_provenance(&path).unwrap();
        let GraySamples::U8(bytes) = read.samples else { panic!("8-bit expected") };
        assert_eq!(bytes.iter().map(|&b| f32::from(b)).collect::<Vec<_>>(), pixels);
        let provenance = provenance.unwrap();
        assert_eq!(provenance.seed, 1000);
        assert_eq!(provenance.model_sha256, sha);
        assert_eq!(provenance.labels, "Cardiomegaly=1,Pleural Thickening=0.5,Mass=0");
        assert_eq!(provenance.latent, "np.random.RandomState(1000).randn(1, 512) row 0");
    }
}
