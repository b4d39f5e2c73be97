//! Training images with their labels: a folder of radiographs plus a labels CSV in one of the layouts of
//! [`crate::train::dataset_layout`] (ours, NIH ChestX-ray14, CheXpert). The label loss ignores labels that were not
//! annotated (the mask).
//!
//! Images are decoded to 8-bit grey, centre-cropped to a square and resized (Lanczos 3) to the training resolution,
//! and kept in memory as bytes; batches become `[-1, 1]` floats as the original's `drange_net`.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use image::imageops::FilterType;

use crate::train::dataset_layout::{LabeledRow, LayoutOptions, read_labeled_rows};

/// Why a training set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("images folder {path} does not exist or is not a folder")]
    MissingImagesFolder { path: PathBuf },
    #[error("cannot read labels CSV {path}: {reason}")]
    LabelsCsv { path: PathBuf, reason: String },
    #[error("labels CSV {path} has no `file` column (its columns: {columns})")]
    NoFileColumn { path: PathBuf, columns: String },
    #[error(
        "labels CSV {path} has neither a `findings` column nor a column for every label (missing: {missing}); \
         give `file,findings` with `|`-joined names, or one 0/1 column per label"
    )]
    NoLabelColumns { path: PathBuf, missing: String },
    #[error("labels CSV {path}, row {row}: unknown label `{name}`; known labels: {known}")]
    UnknownLabel { path: PathBuf, row: usize, name: String, known: String },
    #[error("labels CSV {path}, row {row}, column `{column}`: `{value}` is not a number from 0 to 1")]
    BadLabelValue { path: PathBuf, row: usize, column: String, value: String },
    #[error(
        "labels CSV {path}, row {row}: `labels_annotated` is `{value}`; use nih14, all, pneumonia_only or leave it empty"
    )]
    UnknownAnnotation { path: PathBuf, row: usize, value: String },
    #[error("labels CSV {path}, row {row}: the `file` cell is empty")]
    EmptyFileName { path: PathBuf, row: usize },
    #[error("labels CSV {csv}, row {row} names image {image}, which does not exist")]
    MissingImage { csv: PathBuf, row: usize, image: PathBuf },
    #[error("labels CSV {csv}, row {row}: image `{name}` not found; looked in: {searched}")]
    ImageNotFound { csv: PathBuf, row: usize, name: String, searched: String },
    #[error(
        "labels CSV {path} matches no known layout (ours: `file`; NIH: `Image Index`, `Finding Labels`; \
             CheXpert: `Path` and observation columns); its columns: {columns}"
    )]
    UnknownLayout { path: PathBuf, columns: String },
    #[error("labels CSV {path} lacks the columns of the {layout} layout ({missing}); its columns: {columns}")]
    LayoutColumns { path: PathBuf, layout: String, missing: String, columns: String },
    #[error(
        "labels CSV {path}, row {row}, column `{column}`: `{value}` is not a CheXpert label (1.0, 0.0, -1.0 or blank)"
    )]
    BadChexpertValue { path: PathBuf, row: usize, column: String, value: String },
    #[error("cannot decode image {path}: {reason}")]
    BadImage { path: PathBuf, reason: String },
    #[error("labels CSV {path}: rows {first_row} and {row} both list image `{image}`; list each image once")]
    RepeatedImage { path: PathBuf, first_row: usize, row: usize, image: String },
    #[error("labels CSV {path} lists no images")]
    Empty { path: PathBuf },
    #[error("training resolution {resolution_px} px is not supported (the GAN: a power of two from 4 to 1024)")]
    BadResolution { resolution_px: usize },
    #[error("the dataset needs at least one label name")]
    NoLabels,
    #[error("batch tensor: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Real training images in memory, with labels and annotation masks in a fixed label order.
pub struct GanDataset {
    resolution_px: usize,
    label_names: Vec<String>,
    files: Vec<String>,
    /// `len * resolution^2` grey bytes, image after image.
    pixels: Vec<u8>,
    /// `len * labels`: 1.0 where the finding is present.
    labels: Vec<f32>,
    /// `len * labels`: 1.0 where the label was annotated.
    masks: Vec<f32>,
}

/// Turns an image file into `side * side` grey bytes (see [`GanDataset::load_prepared`]).
pub type ImagePreparation = dyn Fn(&Path, usize) -> Result<Vec<u8>, DatasetError>;

/// Images `[B, 1, R, R]` in [-1, 1], labels `[B, L]` and masks `[B, L]`.
pub struct RealBatch {
    pub images: Tensor,
    pub labels: Tensor,
    pub masks: Tensor,
}

impl GanDataset {
    /// Reads `labels_csv` (its layout detected from the columns) and every image it names under `images_dir`, resized
    /// to `resolution_px`; labels are returned in the order of `label_names`.
    pub fn load(
        images_dir: &Path,
        labels_csv: &Path,
        resolution_px: usize,
        label_names: &[String],
    ) -> Result<Self, DatasetError> {
        Self::load_with_layout(images_dir, labels_csv, resolution_px, label_names, &LayoutOptions::default())
    }

    /// Same as [`Self::load`], with the layout and its options chosen by `options`.
    pub fn load_with_layout(
        images_dir: &Path,
        labels_csv: &Path,
        resolution_px: usize,
        label_names: &[String],
        options: &LayoutOptions,
    ) -> Result<Self, DatasetError> {
        if !resolution_px.is_power_of_two() || !(4..=1024).contains(&resolution_px) {
            return Err(DatasetError::BadResolution { resolution_px });
        }
        let rows = read_labeled_rows(images_dir, labels_csv, label_names, options)?;
        Self::from_rows(rows, labels_csv, resolution_px, label_names, &load_square_grey)
    }

    /// Same as [`Self::load`], with `prepare(path, side)` turning each image file into `side * side` grey bytes
    /// (the classifier trainer resizes as its inference preprocessing does); any side from 1 to 4096 px.
    pub fn load_prepared(
        images_dir: &Path,
        labels_csv: &Path,
        resolution_px: usize,
        label_names: &[String],
        prepare: &ImagePreparation,
    ) -> Result<Self, DatasetError> {
        if !(1..=4096).contains(&resolution_px) {
            return Err(DatasetError::BadResolution { resolution_px });
        }
        let rows = read_labeled_rows(images_dir, labels_csv, label_names, &LayoutOptions::default())?;
        Self::from_rows(rows, labels_csv, resolution_px, label_names, prepare)
    }

    /// Decodes the images of `rows` (read from `labels_csv` by a layout reader) with `prepare(path, side)`, which
    /// turns each image file into `side * side` grey bytes; any side from 1 to 4096 px.
    pub fn from_rows(
        rows: Vec<LabeledRow>,
        labels_csv: &Path,
        resolution_px: usize,
        label_names: &[String],
        prepare: &ImagePreparation,
    ) -> Result<Self, DatasetError> {
        if !(1..=4096).contains(&resolution_px) {
            return Err(DatasetError::BadResolution { resolution_px });
        }
        if label_names.is_empty() {
            return Err(DatasetError::NoLabels);
        }
        let side = resolution_px;
        let mut dataset = Self {
            resolution_px,
            label_names: label_names.to_vec(),
            files: Vec::new(),
            pixels: Vec::new(),
            labels: Vec::new(),
            masks: Vec::new(),
        };
        for row in rows {
            if row.labels.len() != label_names.len() || row.mask.len() != label_names.len() {
                return Err(DatasetError::LabelsCsv {
                    path: labels_csv.to_path_buf(),
                    reason: format!(
                        "row {}: {} labels and {} mask values for {} label names",
                        row.row,
                        row.labels.len(),
                        row.mask.len(),
                        label_names.len()
                    ),
                });
            }
            let pixels = prepare(&row.path, side)?;
            if pixels.len() != side * side {
                return Err(DatasetError::BadImage {
                    path: row.path,
                    reason: format!("prepared to {} values, expected {side}x{side}", pixels.len()),
                });
            }
            dataset.pixels.extend_from_slice(&pixels);
            dataset.labels.extend_from_slice(&row.labels);
            dataset.masks.extend_from_slice(&row.mask);
            dataset.files.push(row.file);
        }
        if dataset.files.is_empty() {
            return Err(DatasetError::Empty { path: labels_csv.to_path_buf() });
        }
        Ok(dataset)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when there are no images (never for a loaded dataset).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Image side in pixels.
    pub fn resolution_px(&self) -> usize {
        self.resolution_px
    }

    /// Label names, in the order of the label vectors.
    pub fn label_names(&self) -> &[String] {
        &self.label_names
    }

    /// File names as the CSV gives them.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The grey bytes (`resolution^2`, row-major) of row `index`, or `None` past the end.
    pub fn image_u8(&self, index: usize) -> Option<&[u8]> {
        let area = self.resolution_px * self.resolution_px;
        self.pixels.get(index.checked_mul(area)?..index.checked_add(1)?.checked_mul(area)?)
    }

    /// Labels and annotation mask of row `index`, or `None` past the end.
    pub fn labels_and_mask(&self, index: usize) -> Option<(&[f32], &[f32])> {
        let width = self.label_names.len();
        let range = index.checked_mul(width)?..index.checked_add(1)?.checked_mul(width)?;
        Some((self.labels.get(range.clone())?, self.masks.get(range)?))
    }

    /// How many images carry each label (annotated and present), in label order.
    pub fn label_counts(&self) -> Vec<usize> {
        let width = self.label_names.len();
        (0..width).map(|j| self.labels.iter().skip(j).step_by(width).filter(|v| **v > 0.5).count()).collect()
    }

    /// The images, labels and masks of rows `indices` (taken modulo the length) on `device`.
    pub fn batch(&self, indices: &[usize], device: &Device) -> Result<RealBatch, DatasetError> {
        let area = self.resolution_px * self.resolution_px;
        let mut pixels = Vec::with_capacity(indices.len() * area);
        for &index in indices {
            let start = (index % self.len()) * area;
            pixels.extend(self.pixels.iter().skip(start).take(area).map(|&p| f32::from(p) / 127.5 - 1.0));
        }
        let side = self.resolution_px;
        let images = Tensor::from_vec(pixels, (indices.len(), 1, side, side), device)?;
        let (labels, masks) = self.labels_of(indices, device)?;
        Ok(RealBatch { images, labels, masks })
    }

    /// Label vectors `[B, L]` and masks `[B, L]` of rows `indices` (taken modulo the length) on `device`.
    pub fn labels_of(&self, indices: &[usize], device: &Device) -> Result<(Tensor, Tensor), DatasetError> {
        let width = self.label_names.len();
        let gather = |source: &[f32]| -> Vec<f32> {
            indices.iter().flat_map(|&i| source.iter().skip((i % self.len()) * width).take(width).copied()).collect()
        };
        let labels = Tensor::from_vec(gather(&self.labels), (indices.len(), width), device)?;
        let masks = Tensor::from_vec(gather(&self.masks), (indices.len(), width), device)?;
        Ok((labels, masks))
    }
}

/// Decodes an image to grey, crops the centre square and resizes it to `side` x `side` (Lanczos 3).
fn load_square_grey(path: &Path, side: usize) -> Result<Vec<u8>, DatasetError> {
    let bad = |reason: String| DatasetError::BadImage { path: path.to_path_buf(), reason };
    let grey = image::ImageReader::open(path)
        .map_err(|e| bad(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?
        .decode()
        .map_err(|e| bad(e.to_string()))?
        .into_luma8();
    let (width, height) = grey.dimensions();
    if width == 0 || height == 0 {
        return Err(bad("the image is empty".to_owned()));
    }
    let crop = width.min(height);
    let square = image::imageops::crop_imm(&grey, (width - crop) / 2, (height - crop) / 2, crop, crop).to_image();
    let side_u32 = u32::try_from(side).map_err(|_| bad(format!("side {side} is too large")))?;
    let resized = if crop == side_u32 {
        square
    } else {
        image::imageops::resize(&square, side_u32, side_u32, FilterType::Lanczos3)
    };
    Ok(resized.into_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, side: u32, value: u8) {
        image::GrayImage::from_pixel(side, side, image::Luma([value])).save(path).unwrap();
    }

    fn names() -> Vec<String> {
        ["Cardiomegaly", "Effusion", "Pneumonia"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_findings_and_masks_and_scales_pixels() {
        let dir = std::env::temp_dir().join(format!("thorax-dataset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_png(&dir.join("a.png"), 16, 255);
        write_png(&dir.join("b.png"), 8, 0);
        let csv = dir.join("labels.csv");
        std::fs::write(
            &csv,
            "file,findings,labels_annotated\na.png,Effusion|Cardiomegaly,nih14\nb.png,No Finding,pneumonia_only\n",
        )
        .unwrap();
        let data = GanDataset::load(&dir, &csv, 8, &names()).unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data.label_counts(), vec![1, 1, 0]);
        let batch = data.batch(&[0, 1], &Device::Cpu).unwrap();
        assert_eq!(batch.images.dims(), &[2, 1, 8, 8]);
        let pixels = batch.images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(pixels[..64].iter().all(|&p| (p - 1.0).abs() < 1e-6));
        assert!(pixels[64..].iter().all(|&p| (p + 1.0).abs() < 1e-6));
        assert_eq!(batch.labels.to_vec2::<f32>().unwrap(), vec![vec![1.0, 1.0, 0.0], vec![0.0, 0.0, 0.0]]);
        assert_eq!(batch.masks.to_vec2::<f32>().unwrap(), vec![vec![1.0, 1.0, 1.0], vec![0.0, 0.0, 1.0]]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
