//! The memorisation (privacy) audit: are generated images closer to training images than unseen real images are?
//!
//! Generated, training and held-out real images are embedded with the classifier's pooled features; each image's
//! nearest training image by cosine similarity is found; generated images above the held-out set's 99th
//! percentile are flagged; the closest pairs also get a pixel-space MS-SSIM (peers.md 2.10). Used by
//! `thorax audit` and the workbench's Audit window.

use crate::atomic_file::{IfExists, PartialFile};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::imaging::load_image;
use crate::imaging::resize::resize;
use crate::metrics::features::FeatureMatrix;
use crate::metrics::memorisation::{COPY_SIMILARITY, MemorisationReport, memorisation_audit};
use crate::metrics::msssim::{GrayImage as MsSsimImage, MsSsimMode, ms_ssim};
use crate::models::embedding::{DEFAULT_EMBED_BATCH, EmbedError, Embedder, ImageEmbedding as _, image_files_in};

/// Side both images of a pair are resampled to for MS-SSIM (five scales need at least 161 px).
const PAIR_SIDE_PX: usize = 256;

/// What the audit compares.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditInputs {
    pub generated: PathBuf,
    pub training: PathBuf,
    pub heldout: PathBuf,
    /// Held-out percentile of nearest-training similarity above which a generated image is flagged.
    pub percentile: f64,
    /// Closest pairs to list with a pixel MS-SSIM.
    pub top_k: usize,
}

/// Why the audit failed. Messages name the folder or file.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{argument}: cannot read folder {folder}: {source}")]
    Folder {
        argument: &'static str,
        folder: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{argument}: no images (png, jpg, jpeg, tif, tiff, dcm) in {folder}")]
    NoImages { argument: &'static str, folder: String },
    #[error("{argument}: {source}")]
    Embed {
        argument: &'static str,
        #[source]
        source: Box<EmbedError>,
    },
    #[error("{0}")]
    Metric(#[from] crate::metrics::MetricError),
    #[error("pixel MS-SSIM of {generated} and {training}: {reason}")]
    PairSimilarity { generated: String, training: String, reason: String },
    #[error("copying {from} to {to}: {source}")]
    Copy {
        from: String,
        to: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "export folder {folder} already holds {entries} entries: choose a new or empty folder, so that the shareable \
         set holds only this audit's unflagged images"
    )]
    ExportFolderNotEmpty { folder: String, entries: usize },
    #[error("cancelled")]
    Cancelled,
}

/// A generated image and its nearest training image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditPair {
    pub generated: PathBuf,
    pub nearest_training: PathBuf,
    /// The generated image is nearest to the training image's left-right mirror image.
    pub nearest_training_mirrored: bool,
    pub cosine_similarity: f64,
    /// MS-SSIM of the two images mapped to [0, 1] and resampled to 256x256; for the listed closest pairs.
    pub pixel_ms_ssim: Option<f64>,
    pub flagged: bool,
}

/// The audit's result with what produced it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditResult {
    pub embedding: &'static str,
    pub model: String,
    pub model_sha256: String,
    pub untrained_model: bool,
    pub count_generated: usize,
    pub count_training: usize,
    pub count_heldout: usize,
    pub threshold_percentile: f64,
    pub threshold_cosine_similarity: f64,
    pub count_flagged: usize,
    pub fraction_flagged: f64,
    pub heldout_nearest_similarity_median: f64,
    pub generated_nearest_similarity_median: f64,
    /// The `top_k` most similar pairs, most similar first.
    pub closest_pairs: Vec<AuditPair>,
    /// Every flagged generated image, most similar first.
    pub flagged: Vec<AuditPair>,
    /// Every generated image, in file-name order (for export decisions).
    pub generated_files: Vec<PathBuf>,
    /// Nearest-training similarity of each held-out and generated image (for the distribution plot).
    pub heldout_similarities: Vec<f64>,
    pub generated_similarities: Vec<f64>,
    /// Why the threshold may not mean what it should (held-out images that are training images, too few held-out
    /// images for the percentile), for people deciding whether images may be shared.
    pub cautions: Vec<String>,
}

/// What makes an audit's threshold unreliable, from its held-out similarities and percentile.
pub fn audit_cautions(heldout_similarities: &[f64], threshold_percentile: f64) -> Vec<String> {
    let mut cautions = Vec::new();
    let copies = heldout_similarities.iter().filter(|&&s| s >= COPY_SIMILARITY).count();
    if copies > 0 {
        cautions.push(format!(
            "{copies} of {} held-out images are identical to a training image: the held-out set must be images the \
             generator never saw, or the threshold it sets means nothing (exact copies are still flagged)",
            heldout_similarities.len()
        ));
    }
    // Below 1 / (1 - p) images the p-th percentile is interpolated between the largest values, i.e. near the maximum.
    let tail = 1.0 - threshold_percentile / 100.0;
    let needed = if tail > 0.0 { (1.0 / tail).ceil() as usize } else { usize::MAX };
    if heldout_similarities.len() < needed {
        let advice = if needed == usize::MAX { String::new() } else { format!("; use at least {needed}") };
        cautions.push(format!(
            "{} held-out images are too few for a P{threshold_percentile} threshold: it is close to their largest \
             similarity, and near-copies below it pass{advice}",
            heldout_similarities.len()
        ));
    }
    cautions
}

/// Progress of a running audit: which stage and how far (`done` of `total` images).
pub type AuditProgress<'a> = &'a mut dyn FnMut(&str, usize, usize) -> bool;

/// Runs the audit. `progress(stage, done, total)` returning `false` cancels.
pub fn run_audit(
    embedder: &Embedder,
    inputs: &AuditInputs,
    progress: AuditProgress<'_>,
) -> Result<AuditResult, AuditError> {
    let (generated_files, generated) = embed_folder(embedder, &inputs.generated, "--generated", progress)?;
    let (training_files, training) = embed_training_and_mirrors(embedder, &inputs.training, progress)?;
    let (_, heldout) = embed_folder(embedder, &inputs.heldout, "--heldout", progress)?;
    // Training rows are the images then their mirror images, so a flipped copy is as near as a copy; held-out images
    // are measured against the same rows, which keeps the threshold fair.
    let report = memorisation_audit(&generated, &training, &heldout, inputs.percentile)?;
    let pair = |index: usize| -> Result<AuditPair, AuditError> {
        let nearest = report.generated_nearest[index];
        let generated_path = generated_files[index].clone();
        let mirrored = nearest.index >= training_files.len();
        let training_path = training_files[nearest.index % training_files.len()].clone();
        let pixel_ms_ssim = Some(pixel_ms_ssim(&generated_path, &training_path, mirrored)?);
        Ok(AuditPair {
            generated: generated_path,
            nearest_training: training_path,
            nearest_training_mirrored: mirrored,
            cosine_similarity: nearest.similarity,
            pixel_ms_ssim,
            flagged: report.flagged.contains(&index),
        })
    };
    let mut by_similarity: Vec<usize> = (0..report.generated_nearest.len()).collect();
    by_similarity
        .sort_by(|&a, &b| report.generated_nearest[b].similarity.total_cmp(&report.generated_nearest[a].similarity));
    let top_k = inputs.top_k.min(by_similarity.len());
    let mut closest_pairs = Vec::with_capacity(top_k);
    for (done, &index) in by_similarity.iter().take(top_k).enumerate() {
        if !progress("pixel MS-SSIM of the closest pairs", done, top_k) {
            return Err(AuditError::Cancelled);
        }
        closest_pairs.push(pair(index)?);
    }
    // Flagged pairs carry their pixel MS-SSIM too (it was null where the same pair in closest_pairs had one); the
    // ones already among the closest pairs are not computed twice.
    let mut flagged = Vec::with_capacity(report.flagged.len());
    for (done, &index) in report.flagged.iter().enumerate() {
        if !progress("pixel MS-SSIM of the flagged images", done, report.flagged.len()) {
            return Err(AuditError::Cancelled);
        }
        let known = by_similarity.iter().take(top_k).position(|&i| i == index).map(|at| closest_pairs[at].clone());
        flagged.push(match known {
            Some(pair) => pair,
            None => pair(index)?,
        });
    }
    let similarities = |report: &MemorisationReport, heldout: bool| -> Vec<f64> {
        let nearest = if heldout { &report.heldout_nearest } else { &report.generated_nearest };
        nearest.iter().map(|n| n.similarity).collect()
    };
    let heldout_similarities = similarities(&report, true);
    let generated_similarities = similarities(&report, false);
    Ok(AuditResult {
        embedding: "DenseNet-121 pooled norm5 features, cosine similarity; training images also mirrored left-right",
        model: embedder.model_name.clone(),
        model_sha256: embedder.model_sha256.clone(),
        untrained_model: embedder.classifier.card().untrained,
        count_generated: generated.rows(),
        count_training: training_files.len(),
        count_heldout: heldout.rows(),
        threshold_percentile: report.threshold_percentile,
        threshold_cosine_similarity: report.threshold,
        count_flagged: report.flagged.len(),
        fraction_flagged: report.fraction_flagged,
        heldout_nearest_similarity_median: median(&heldout_similarities),
        generated_nearest_similarity_median: median(&generated_similarities),
        closest_pairs,
        flagged,
        generated_files,
        cautions: audit_cautions(&heldout_similarities, report.threshold_percentile),
        heldout_similarities,
        generated_similarities,
    })
}

/// The training images' features, then their mirror images' features (rows `n..2n` mirror rows `0..n`).
fn embed_training_and_mirrors(
    embedder: &Embedder,
    folder: &Path,
    progress: AuditProgress<'_>,
) -> Result<(Vec<PathBuf>, FeatureMatrix), AuditError> {
    let argument = "--training";
    let files = list_images(folder, argument)?;
    let stage = "embedding --training images and their mirror images";
    let (mut rows, mirrored) = embedder
        .embed_files_and_mirrors(&files, DEFAULT_EMBED_BATCH, &mut |done, total| progress(stage, done, total))
        .map_err(|source| embed_error(argument, source))?;
    rows.extend(mirrored);
    Ok((files, FeatureMatrix::from_rows(&rows)?))
}

fn embed_folder(
    embedder: &Embedder,
    folder: &Path,
    argument: &'static str,
    progress: AuditProgress<'_>,
) -> Result<(Vec<PathBuf>, FeatureMatrix), AuditError> {
    let files = list_images(folder, argument)?;
    let stage = format!("embedding {argument} images");
    let rows = embedder
        .embed_files(&files, DEFAULT_EMBED_BATCH, &mut |done, total| progress(&stage, done, total))
        .map_err(|source| embed_error(argument, source))?;
    Ok((files, FeatureMatrix::from_rows(&rows)?))
}

/// The image files of the folder given as `argument`; none is an error.
fn list_images(folder: &Path, argument: &'static str) -> Result<Vec<PathBuf>, AuditError> {
    let folder_text = folder.display().to_string();
    let files = image_files_in(folder).map_err(|source| AuditError::Folder {
        argument,
        folder: folder_text.clone(),
        source,
    })?;
    if files.is_empty() {
        return Err(AuditError::NoImages { argument, folder: folder_text });
    }
    Ok(files)
}

fn embed_error(argument: &'static str, source: EmbedError) -> AuditError {
    match source {
        EmbedError::Cancelled { .. } => AuditError::Cancelled,
        source => AuditError::Embed { argument, source: Box::new(source) },
    }
}

/// MS-SSIM of two images after mapping each to [0, 1] and resampling to 256x256.
fn pixel_ms_ssim(generated: &Path, training: &Path, mirror_training: bool) -> Result<f64, AuditError> {
    let error = |reason: String| AuditError::PairSimilarity {
        generated: generated.display().to_string(),
        training: training.display().to_string(),
        reason,
    };
    let load = |path: &Path| -> Result<MsSsimImage, AuditError> {
        let image = load_image(path).map_err(|e| error(e.to_string()))?;
        let resized = resize(&image, PAIR_SIDE_PX, PAIR_SIDE_PX).map_err(|e| error(e.to_string()))?;
        MsSsimImage::new(PAIR_SIDE_PX, PAIR_SIDE_PX, resized.to_unit_range()).map_err(|e| error(e.to_string()))
    };
    let training_image = load(training)?;
    let training_image = if mirror_training {
        let mirrored: Vec<f32> =
            training_image.pixels().chunks_exact(PAIR_SIDE_PX).flat_map(|row| row.iter().rev().copied()).collect();
        MsSsimImage::new(PAIR_SIDE_PX, PAIR_SIDE_PX, mirrored).map_err(|e| error(e.to_string()))?
    } else {
        training_image
    };
    let value = ms_ssim(&load(generated)?, &training_image, MsSsimMode::Standard { data_range: 1.0 })
        .map_err(|e| error(e.to_string()))?;
    Ok(value.value)
}

/// Checks that `dir` can receive an export: new, or an empty folder. An export into a folder that already holds
/// files would mix them (an earlier export's flagged images, or the generated images themselves) into what is meant
/// to be this audit's shareable set.
pub fn check_export_folder(dir: &Path) -> Result<(), AuditError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(AuditError::Folder { argument: "export folder", folder: dir.display().to_string(), source });
        }
    };
    let held = entries.count();
    if held > 0 {
        return Err(AuditError::ExportFolderNotEmpty { folder: dir.display().to_string(), entries: held });
    }
    Ok(())
}

/// Copies the generated images not in `excluded` into `dir`, which must be new or empty
/// ([`check_export_folder`]); returns how many were copied. Never overwrites: two images of one name (from
/// different subfolders) are an error naming both.
pub fn export_generated(files: &[PathBuf], excluded: &[PathBuf], dir: &Path) -> Result<usize, AuditError> {
    check_export_folder(dir)?;
    std::fs::create_dir_all(dir).map_err(|source| AuditError::Copy {
        from: "(creating the folder)".to_owned(),
        to: dir.display().to_string(),
        source,
    })?;
    let mut copied = 0;
    for path in files.iter().filter(|path| !excluded.contains(path)) {
        let Some(name) = path.file_name() else { continue };
        let target = dir.join(name);
        let copy_error =
            |source| AuditError::Copy { from: path.display().to_string(), to: target.display().to_string(), source };
        // Refuse: a second image of the same name fails instead of replacing the first. Through a temporary file,
        // so an interrupted export leaves no half-copied image in the shareable set.
        let mut output = PartialFile::create(&target, IfExists::Refuse).map_err(|e| copy_error(e.into_io()))?;
        let mut input = std::fs::File::open(path).map_err(copy_error)?;
        std::io::copy(&mut input, output.file()).map_err(copy_error)?;
        output.commit().map_err(|e| copy_error(e.into_io()))?;
        copied += 1;
    }
    Ok(copied)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    crate::metrics::bootstrap::percentile_sorted(&sorted, 50.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cautions_name_held_out_copies_and_too_few_held_out_images() {
        let many: Vec<f64> = (0..120).map(|i| 0.5 + f64::from(i) / 1000.0).collect();
        assert!(audit_cautions(&many, 99.0).is_empty(), "120 distinct held-out images suit P99");

        let mut with_copies = many.clone();
        with_copies[3] = 1.0;
        let cautions = audit_cautions(&with_copies, 99.0);
        assert_eq!(cautions.len(), 1);
        assert!(cautions[0].starts_with("1 of 120 held-out images are identical"), "{}", cautions[0]);

        let few = audit_cautions(&many[..16], 99.0);
        assert_eq!(few.len(), 1);
        assert!(few[0].contains("16 held-out images are too few") && few[0].contains("at least 100"), "{}", few[0]);
        assert!(audit_cautions(&many[..16], 90.0).is_empty(), "16 images are enough for P90 (10 needed)");
    }
}
