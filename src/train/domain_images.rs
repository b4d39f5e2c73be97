//! One CycleGAN domain: the images (PNG, JPEG, TIFF, DICOM) directly in a folder whose names start with a prefix,
//! decoded with [`crate::imaging::decode`], as grey, centre-cropped to a square, resized to the training side and
//! scaled to [-1, 1]; kept in memory as f32. A seeded hold-out split keeps validation images out of training.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::imaging::decode::load_image;
use crate::imaging::gray_image::GrayImage;
use crate::imaging::resize::resize;
use crate::models::embedding::image_files_in;
use crate::train::rng::TrainRng;

/// Why a domain's images could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DomainImagesError {
    #[error("domain {domain}: folder {path} does not exist or is not a folder")]
    MissingFolder { domain: String, path: PathBuf },
    #[error("domain {domain}: cannot list folder {path}: {reason}")]
    Unreadable { domain: String, path: PathBuf, reason: String },
    #[error("domain {domain}: folder {path} has no PNG, JPEG, TIFF or DICOM images{filter}")]
    Empty { domain: String, path: PathBuf, filter: String },
    #[error("domain {domain}: cannot use image {path}: {reason}")]
    BadImage { domain: String, path: PathBuf, reason: String },
    #[error("domain {domain}: {count} images cannot spare {held_out} for validation and keep one for training")]
    TooFewForHoldOut { domain: String, count: usize, held_out: usize },
}

/// The images of one domain at one square side.
#[derive(Clone, Debug)]
pub struct DomainImages {
    side_px: usize,
    files: Vec<PathBuf>,
    /// `files.len()` planes of `side_px * side_px` values in [-1, 1].
    pixels: Vec<f32>,
}

impl DomainImages {
    /// Loads the images in `folder` whose file names start with `prefix` (all when empty), sorted by name.
    /// `domain` names the domain in errors.
    pub fn load(domain: &str, folder: &Path, prefix: &str, side_px: usize) -> Result<Self, DomainImagesError> {
        if !folder.is_dir() {
            return Err(DomainImagesError::MissingFolder { domain: domain.to_owned(), path: folder.to_path_buf() });
        }
        let files: Vec<PathBuf> = image_files_in(folder)
            .map_err(|e| DomainImagesError::Unreadable {
                domain: domain.to_owned(),
                path: folder.to_path_buf(),
                reason: e.to_string(),
            })?
            .into_iter()
            .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)))
            .collect();
        if files.is_empty() {
            let filter = if prefix.is_empty() { String::new() } else { format!(" named `{prefix}*`") };
            return Err(DomainImagesError::Empty { domain: domain.to_owned(), path: folder.to_path_buf(), filter });
        }
        let mut pixels = Vec::with_capacity(files.len() * side_px * side_px);
        for path in &files {
            let bad =
                |reason: String| DomainImagesError::BadImage { domain: domain.to_owned(), path: path.clone(), reason };
            let image = load_image(path).map_err(|e| bad(e.to_string()))?;
            let square = centre_square(&image, side_px).map_err(bad)?;
            pixels.extend(square.to_unit_range().iter().map(|v| v * 2.0 - 1.0));
        }
        Ok(Self { side_px, files, pixels })
    }

    /// Loads the images of every folder in `folders` (each filtered by `prefix`, in name order), folder after
    /// folder, e.g. one dataset stored at two resolutions. Every folder must hold at least one matching image.
    pub fn load_folders(
        domain: &str,
        folders: &[PathBuf],
        prefix: &str,
        side_px: usize,
    ) -> Result<Self, DomainImagesError> {
        let Some((first, others)) = folders.split_first() else {
            return Err(DomainImagesError::MissingFolder { domain: domain.to_owned(), path: PathBuf::new() });
        };
        let mut joined = Self::load(domain, first, prefix, side_px)?;
        for folder in others {
            let one = Self::load(domain, folder, prefix, side_px)?;
            joined.files.extend(one.files);
            joined.pixels.extend(one.pixels);
        }
        Ok(joined)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when there are no images (never for a loaded domain).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Image side in pixels.
    pub fn side_px(&self) -> usize {
        self.side_px
    }

    /// The image files, in row order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Splits off `held_out` images chosen by `seed` (validation) from the rest (training), each keeping name order.
    pub fn split_hold_out(self, domain: &str, held_out: usize, seed: u64) -> Result<(Self, Self), DomainImagesError> {
        if held_out >= self.len() {
            return Err(DomainImagesError::TooFewForHoldOut { domain: domain.to_owned(), count: self.len(), held_out });
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        TrainRng::new(seed).shuffle(&mut order);
        let mut validation_rows: Vec<usize> = order.iter().take(held_out).copied().collect();
        validation_rows.sort_unstable();
        let training_rows: Vec<usize> = (0..self.len()).filter(|row| !validation_rows.contains(row)).collect();
        Ok((self.subset(&training_rows), self.subset(&validation_rows)))
    }

    fn subset(&self, rows: &[usize]) -> Self {
        let area = self.side_px * self.side_px;
        let mut files = Vec::with_capacity(rows.len());
        let mut pixels = Vec::with_capacity(rows.len() * area);
        for &row in rows {
            if let Some(file) = self.files.get(row) {
                files.push(file.clone());
                pixels.extend(self.pixels.iter().skip(row * area).take(area));
            }
        }
        Self { side_px: self.side_px, files, pixels }
    }

    /// The images of rows `indices` (taken modulo the length) as `[B, 1, side, side]` on `device`.
    pub fn batch(&self, indices: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let area = self.side_px * self.side_px;
        let mut pixels: Vec<f32> = Vec::with_capacity(indices.len() * area);
        for &index in indices {
            let start = (index % self.len().max(1)) * area;
            pixels.extend(self.pixels.iter().skip(start).take(area));
        }
        Tensor::from_vec(pixels, (indices.len(), 1, self.side_px, self.side_px), device)
    }
}

/// The centre square of `image`, resized to `side_px`.
fn centre_square(image: &GrayImage, side_px: usize) -> Result<GrayImage, String> {
    let (width, height) = (image.width_px(), image.height_px());
    let crop = width.min(height);
    if crop == 0 {
        return Err("the image is empty".to_owned());
    }
    let (left, top) = ((width - crop) / 2, (height - crop) / 2);
    let pixels: Vec<f32> =
        (0..crop).flat_map(|y| image.pixels().iter().skip((top + y) * width + left).take(crop).copied()).collect();
    let square = GrayImage::new(crop, crop, image.depth(), pixels).map_err(|e| e.to_string())?;
    resize(&square, side_px, side_px).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_filters_crops_scales_and_splits() {
        let dir = tempfile::tempdir().unwrap();
        // A 12x8 image: left and right 2 columns black, the centre 8x8 white.
        let mut wide = image::GrayImage::from_pixel(12, 8, image::Luma([255u8]));
        for y in 0..8 {
            for x in [0, 1, 10, 11] {
                wide.put_pixel(x, y, image::Luma([0]));
            }
        }
        wide.save(dir.path().join("a_0.png")).unwrap();
        image::GrayImage::from_pixel(8, 8, image::Luma([0u8])).save(dir.path().join("a_1.png")).unwrap();
        image::GrayImage::from_pixel(8, 8, image::Luma([0u8])).save(dir.path().join("b_0.png")).unwrap();
        std::fs::write(dir.path().join("a_notes.txt"), "not an image").unwrap();
        let domain = DomainImages::load("A", dir.path(), "a_", 4).unwrap();
        assert_eq!(domain.len(), 2);
        let batch = domain.batch(&[0, 1], &Device::Cpu).unwrap();
        assert_eq!(batch.dims(), &[2, 1, 4, 4]);
        let values = batch.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // The centre crop of the wide image is nearly all white; the second image keeps its nominal black.
        assert!(values[..16].iter().all(|&v| v > 0.5), "{values:?}");
        assert!(values[16..].iter().all(|&v| v < -0.99), "{values:?}");
        let (train, validation) = domain.split_hold_out("A", 1, 3).unwrap();
        assert_eq!((train.len(), validation.len()), (1, 1));
        assert_ne!(train.files(), validation.files());

        let empty = DomainImages::load("B", dir.path(), "c_", 4).unwrap_err().to_string();
        assert!(empty.contains("domain B") && empty.contains("no PNG") && empty.contains("`c_*`"), "{empty}");
        let missing = DomainImages::load("A", Path::new("/no/such/dir"), "", 4).unwrap_err().to_string();
        assert!(missing.contains("/no/such/dir") && missing.contains("does not exist"), "{missing}");
        let one = DomainImages::load("B", dir.path(), "b_", 4).unwrap();
        assert!(one.split_hold_out("B", 1, 3).unwrap_err().to_string().contains("1 images cannot spare 1"));
    }

    #[test]
    fn joins_folders_in_order_and_names_a_folder_without_matches() {
        let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        image::GrayImage::from_pixel(8, 8, image::Luma([255u8])).save(first.path().join("n_0.png")).unwrap();
        image::GrayImage::from_pixel(4, 4, image::Luma([0u8])).save(second.path().join("n64_0.png")).unwrap();
        image::GrayImage::from_pixel(4, 4, image::Luma([0u8])).save(second.path().join("n64_1.png")).unwrap();
        let folders = [first.path().to_path_buf(), second.path().to_path_buf()];
        let joined = DomainImages::load_folders("NIH", &folders, "n", 4).unwrap();
        assert_eq!(joined.len(), 3);
        assert_eq!(joined.files()[0], first.path().join("n_0.png"));
        let values = joined.batch(&[0, 2], &Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(values[..16].iter().all(|&v| v > 0.99) && values[16..].iter().all(|&v| v < -0.99), "{values:?}");
        let error = DomainImages::load_folders("NIH", &folders, "n64", 4).unwrap_err().to_string();
        assert!(error.contains(&first.path().display().to_string()) && error.contains("`n64*`"), "{error}");
    }
}
