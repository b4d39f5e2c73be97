//! Optional harmonisation of the real cases with a CycleGAN generator (e.g. NIH -> CheXpert style), so that a
//! hospital's style cannot tell real from artificial. Applied before the common display pipeline.

use image::{DynamicImage, GrayImage as Luma8Image};

use crate::convert::progan_tf::sha256_hex;
use crate::models::card::ModelKind;
use crate::models::cyclegan::CycleGanGenerator;
use crate::models::style_transfer::{NetworkScale, direction_label, translate_gray_at};
use crate::models::weights::Weights;

use super::error::{StudyError, StudyResult};

/// A transform of every real case's image before display.
pub trait RealImageTransform {
    /// One line for the case's provenance (never shown to readers).
    fn description(&self) -> String;
    /// The transformed image; `source` names the case's file in errors.
    fn apply(&mut self, image: &DynamicImage, source: &str) -> StudyResult<DynamicImage>;
}

/// Transforms applied one after another (e.g. a CycleGAN, then the artificial cases' resolution).
pub struct TransformChain(pub Vec<Box<dyn RealImageTransform>>);

impl RealImageTransform for TransformChain {
    fn description(&self) -> String {
        self.0.iter().map(|t| t.description()).collect::<Vec<_>>().join(", then ")
    }

    fn apply(&mut self, image: &DynamicImage, source: &str) -> StudyResult<DynamicImage> {
        let mut image = image.clone();
        for transform in &mut self.0 {
            image = transform.apply(&image, source)?;
        }
        Ok(image)
    }
}

/// Harmonisation with a CycleGAN generator, run on the CPU (study creation is a one-off batch).
pub struct CycleGanHarmoniser {
    generator: CycleGanGenerator,
    name: String,
    sha256: String,
    device: candle_core::Device,
    /// The size the generator sees each image at. The training scale applies the style the generator learned but
    /// leaves a 64 px generator's output softer than the artificial cases; the native scale keeps each real image's
    /// resolution. Which leaks less depends on the study's sources and display size, so the study designer chooses.
    scale: NetworkScale,
}

impl CycleGanHarmoniser {
    /// Loads the generator from safetensors `bytes`; `name` labels it in errors and provenance.
    pub fn from_model_bytes(
        bytes: &[u8],
        name: &str,
        device: &candle_core::Device,
        scale: NetworkScale,
    ) -> StudyResult<Self> {
        let failed = |e: &dyn std::fmt::Display| StudyError::Harmoniser(format!("loading the CycleGAN {name}: {e}"));
        let weights = Weights::from_bytes(bytes, std::path::Path::new(name), ModelKind::CycleganGenerator, device)
            .map_err(|e| failed(&e))?;
        let generator = CycleGanGenerator::from_weights(weights).map_err(|e| failed(&e))?;
        Ok(Self { generator, name: name.to_owned(), sha256: sha256_hex(bytes), device: device.clone(), scale })
    }
}

impl RealImageTransform for CycleGanHarmoniser {
    fn description(&self) -> String {
        let direction = direction_label(self.generator.card(), self.generator.config().direction);
        let scale = match (self.scale, self.generator.card().training_side_px()) {
            (NetworkScale::Training, Some(side_px)) => format!("at its training scale ({side_px} px)"),
            _ => "at the image's own scale".to_owned(),
        };
        format!("harmonised {direction} by CycleGAN {} sha256={} {scale}", self.name, self.sha256)
    }

    fn apply(&mut self, image: &DynamicImage, source: &str) -> StudyResult<DynamicImage> {
        let gray = image.to_luma32f();
        let (width_px, height_px) = (gray.width() as usize, gray.height() as usize);
        // The display pipeline brings the result to the study size either way.
        let translated =
            translate_gray_at(&self.generator, gray.as_raw(), width_px, height_px, self.scale, &self.device)
                .map_err(|e| StudyError::Harmoniser(format!("harmonising {source} with {}: {e}", self.name)))?;
        let plane = translated.first_plane().to_vec();
        Luma8Image::from_raw(translated.width_px as u32, translated.height_px as u32, plane)
            .map(DynamicImage::ImageLuma8)
            .ok_or_else(|| StudyError::Harmoniser(format!("harmonising {source}: output of unexpected size")))
    }
}
