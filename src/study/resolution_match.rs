//! Bringing real cases down to the artificial cases' resolution before display. A generator makes 128 or 256 px
//! images; real films are often 1024 px or more. Upscaled to the same display size, the real cases stay sharp and
//! the artificial ones soft, and readers tell them apart by sharpness alone (Han et al. showed readers images at
//! the generator's resolution for this reason).

use std::path::Path;

use image::DynamicImage;
use image::imageops::FilterType;

use super::error::StudyResult;
use super::harmonise::RealImageTransform;

/// Downsamples every real image whose longer side exceeds `side_px` so that side becomes `side_px` (aspect kept,
/// Lanczos-3, bit depth kept); smaller images pass unchanged.
pub struct ResolutionMatch {
    pub side_px: u32,
}

impl RealImageTransform for ResolutionMatch {
    fn description(&self) -> String {
        format!("brought down to {} px, the artificial cases' resolution", self.side_px)
    }

    fn apply(&mut self, image: &DynamicImage, _source: &str) -> StudyResult<DynamicImage> {
        let longer = image.width().max(image.height());
        if longer <= self.side_px || self.side_px == 0 {
            return Ok(image.clone());
        }
        let scale = f64::from(self.side_px) / f64::from(longer);
        let width = ((f64::from(image.width()) * scale).round() as u32).max(1);
        let height = ((f64::from(image.height()) * scale).round() as u32).max(1);
        // `resize_exact` widens the filter when shrinking, so the result is low-passed, not aliased.
        Ok(image.resize_exact(width, height, FilterType::Lanczos3))
    }
}

/// How many artificial files, spread over the folder, are read (headers only) to learn their resolution: enough
/// for a median that one odd image cannot move, few enough to read in moments from a network folder.
pub const SIDE_SURVEY_SAMPLE: usize = 256;

/// The longer sides of a folder's artificial images, read from their headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideSurvey {
    /// The median longer side (the lower one of an even count): what the real cases are brought down to, so that
    /// one outlier image cannot undo the matching.
    pub median_px: u32,
    pub smallest_px: u32,
    pub largest_px: u32,
    /// How many images were read.
    pub images: usize,
}

impl SideSurvey {
    /// The warning for a folder whose images differ in size; `None` when they are all one size.
    pub fn mixed_size_warning(&self) -> Option<String> {
        (self.smallest_px != self.largest_px).then(|| {
            format!(
                "the artificial images differ in size ({} to {} px on their longer side, {} read); real cases are \
                 matched to the median, {} px, and artificial images of another resolution may still stand out by \
                 their sharpness",
                self.smallest_px, self.largest_px, self.images, self.median_px
            )
        })
    }
}

/// The longer sides of up to `sample` images of `files`, spread evenly over the list, that can be read (headers
/// only), or `None` when none can.
pub fn survey_sides(files: &[impl AsRef<Path>], sample: usize) -> Option<SideSurvey> {
    let stride = files.len().div_ceil(sample.max(1)).max(1);
    let mut sides: Vec<u32> = files
        .iter()
        .step_by(stride)
        .filter_map(|f| image::image_dimensions(f.as_ref()).ok())
        .map(|(w, h)| w.max(h))
        .collect();
    sides.sort_unstable();
    Some(SideSurvey {
        median_px: *sides.get((sides.len().checked_sub(1)?) / 2)?,
        smallest_px: *sides.first()?,
        largest_px: *sides.last()?,
        images: sides.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn larger_images_come_down_to_the_side_and_keep_aspect_and_depth() {
        let wide =
            DynamicImage::ImageLuma16(image::ImageBuffer::from_fn(512, 256, |x, _| image::Luma([x as u16 * 100])));
        let out = ResolutionMatch { side_px: 128 }.apply(&wide, "wide").unwrap();
        assert_eq!((out.width(), out.height()), (128, 64));
        assert!(matches!(out, DynamicImage::ImageLuma16(_)));
        // A horizontal ramp stays a ramp: no aliasing, values stay in range.
        let row: Vec<u16> = out.to_luma16().rows().next().unwrap().map(|p| p.0[0]).collect();
        assert!(row.windows(2).all(|w| w[1] >= w[0]), "{row:?}");

        let small = DynamicImage::ImageLuma8(image::GrayImage::new(100, 80));
        let same = ResolutionMatch { side_px: 128 }.apply(&small, "small").unwrap();
        assert_eq!((same.width(), same.height()), (100, 80));
    }

    #[test]
    fn the_survey_reads_headers_skips_unreadable_files_and_takes_the_median() {
        let dir = tempfile::tempdir().unwrap();
        image::GrayImage::new(64, 200).save(dir.path().join("a.png")).unwrap();
        image::GrayImage::new(128, 128).save(dir.path().join("b.png")).unwrap();
        std::fs::write(dir.path().join("c.png"), b"not a png").unwrap();
        image::GrayImage::new(128, 100).save(dir.path().join("d.png")).unwrap();
        let files = ["a.png", "b.png", "c.png", "d.png"].map(|f| dir.path().join(f));
        let survey = survey_sides(&files, 16).unwrap();
        // One 200 px outlier among 128 px images does not set the side.
        assert_eq!(survey, SideSurvey { median_px: 128, smallest_px: 128, largest_px: 200, images: 3 });
        assert_eq!(survey_sides(&files[..2], 16).unwrap().median_px, 128);
        assert_eq!(survey_sides(&files[2..3], 16), None);
        // A sample smaller than the list is spread over it: every other file here.
        assert_eq!(survey_sides(&files, 2).unwrap().images, 1);
        assert_eq!(
            survey_sides(&files[1..], 2).unwrap(),
            SideSurvey { median_px: 128, smallest_px: 128, largest_px: 128, images: 2 }
        );
    }
}
