//! The Metrics panel's computations, run as [`BackgroundJob`](crate::engine::background_job::BackgroundJob)s:
//! each reports progress and checks for cancel between steps, and returns a [`MetricRecord`] with the settings the
//! run used (inputs, N, seeds, model names and SHA-256 as `thorax correlate` reports them). The metric math is the
//! library's (`crate::metrics`, `crate::cli::correlate`); these functions only load inputs and drive it.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;

use crate::app::metrics_record::{
    KidSummary, MetricDetail, MetricKind, MetricRecord, MsSsimLabel, NamedValue, RocLabel, Setting,
};
use crate::app::model_shelf::ModelChoice;
use crate::cli::correlate::{CorrelateError, CorrelationSettings, run_correlation};
use crate::cli::metrics::{image_files, load_gray, read_roc_inputs};
use crate::engine::ModelSource;
use crate::engine::background_job::{JobContext, JobError};
use crate::engine::device::{DeviceChoice, open_device};
use crate::metrics::bootstrap::bootstrap_auc;
use crate::metrics::features::FeatureMatrix;
use crate::metrics::fid::frechet_distance;
use crate::metrics::kid::{KidOptions, kernel_inception_distance_with_progress};
use crate::metrics::msssim::{GrayImage, MsSsimMode};
use crate::metrics::msssim_histogram::{DEFAULT_BINS, same_label_pair_histogram_with_progress};
use crate::metrics::roc::{roc_auc, roc_curve};
use crate::metrics::{MetricError, correlation::CorrelationMatrix};
use crate::models::card::ModelKind;
use crate::models::densenet::DenseNet121;
use crate::models::embedding::{EmbedError, Embedder, ImageEmbedding as _};
use crate::models::progan::ProganGenerator;
use crate::models::weights::Weights;

/// Largest number of pixels one MS-SSIM label group may hold in memory (1 GiB of f32).
pub const MAX_GROUP_PIXELS: usize = 256 * 1024 * 1024;

/// A model the job uses: an embedded or opened weights file and its identity.
#[derive(Clone, Debug)]
pub struct JobModel {
    pub file_name: String,
    pub source: ModelSource,
    pub card_name: String,
    pub sha256: String,
    pub untrained: bool,
}

impl From<&ModelChoice> for JobModel {
    fn from(model: &ModelChoice) -> Self {
        Self {
            file_name: model.source.name(),
            source: model.source.clone(),
            card_name: model.card.name.clone(),
            sha256: model.sha256.clone(),
            untrained: model.card.untrained,
        }
    }
}

impl JobModel {
    /// Settings `<role>`, `<role>_file`, `<role>_sha256`, `<role>_untrained`.
    fn settings(&self, role: &str) -> Vec<Setting> {
        vec![
            setting(role, &self.card_name),
            setting(&format!("{role}_file"), &self.file_name),
            setting(&format!("{role}_sha256"), &self.sha256),
            setting(&format!("{role}_untrained"), self.untrained),
        ]
    }

    fn weights(&self, kind: ModelKind, device: &Device) -> Result<Weights, JobError> {
        match &self.source {
            ModelSource::Embedded { bytes, .. } => Weights::from_bytes(bytes, Path::new(&self.file_name), kind, device),
            ModelSource::File(path) => Weights::load(path, kind, device),
        }
        .map_err(|e| failed(format!("loading {}: {e}", self.file_name)))
    }
}

fn setting(name: &str, value: impl ToString) -> Setting {
    Setting { name: name.to_owned(), value: value.to_string() }
}

fn value(name: impl Into<String>, value: f64) -> NamedValue {
    NamedValue { name: name.into(), value }
}

fn failed(message: impl Into<String>) -> JobError {
    JobError::Failed(message.into())
}

/// anyhow errors with their whole context chain.
fn failed_anyhow(error: anyhow::Error) -> JobError {
    JobError::Failed(format!("{error:#}"))
}

fn metric_failed(what: &str, error: MetricError) -> JobError {
    match error {
        MetricError::Cancelled { .. } => JobError::Cancelled,
        other => failed(format!("{what}: {other}")),
    }
}

/// `ControlFlow` for library callbacks: stop when cancel was requested.
fn continue_unless_cancelled(context: &JobContext) -> ControlFlow<()> {
    if context.is_cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
}

fn open(choice: DeviceChoice) -> Result<Device, JobError> {
    open_device(choice).map(|d| d.device).map_err(|e| failed(format!("opening the compute device: {e}")))
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------------------------------
// FD-DenseNet and KID

/// Settings of an FD-DenseNet + KID run between two image folders.
#[derive(Clone, Debug)]
pub struct FdKidSettings {
    pub real: PathBuf,
    pub artificial: PathBuf,
    pub classifier: JobModel,
    pub kid: KidOptions,
    /// Images per DenseNet pass.
    pub batch: usize,
    pub device: DeviceChoice,
}

/// DenseNet pooled features (1024 per image for DenseNet-121, the FD-DenseNet embedding) of `files`, one row
/// each, through the library's [`Embedder`] (the same features `thorax metrics fid` uses).
fn pooled_features(
    embedder: &Embedder,
    files: &[PathBuf],
    batch: usize,
    context: &JobContext,
    done_before: usize,
) -> Result<FeatureMatrix, JobError> {
    let rows = embedder
        .embed_files(files, batch, &mut |done, _| {
            context.set_done(done_before + done);
            context.checkpoint().is_ok()
        })
        .map_err(|e| match e {
            EmbedError::Cancelled { .. } => JobError::Cancelled,
            other => failed(other.to_string()),
        })?;
    FeatureMatrix::from_rows(&rows).map_err(|e| failed(format!("feature matrix: {e}")))
}

fn folder_images(folder: &Path) -> Result<Vec<PathBuf>, JobError> {
    let files = image_files(folder).map_err(failed_anyhow)?;
    if files.len() < 2 {
        return Err(failed(format!(
            "{} holds {} image(s) (png, jpg, jpeg, tif, tiff); FD and KID need at least 2",
            folder.display(),
            files.len()
        )));
    }
    Ok(files)
}

/// FD-DenseNet (Frechet distance of pooled DenseNet-121 features) and KID of the same features.
pub fn run_fd_kid(settings: &FdKidSettings, context: &JobContext) -> Result<MetricRecord, JobError> {
    let started = Instant::now();
    let real_files = folder_images(&settings.real)?;
    let artificial_files = folder_images(&settings.artificial)?;
    let device = open(settings.device)?;
    context.start_stage("loading the classifier", 1);
    let weights = settings.classifier.weights(ModelKind::Densenet121Classifier, &device)?;
    let net = DenseNet121::from_weights(weights).map_err(|e| failed(format!("building the classifier: {e}")))?;
    let embedder =
        Embedder::new(net, settings.classifier.file_name.clone(), settings.classifier.sha256.clone(), &device);
    let images = real_files.len() + artificial_files.len();
    context.start_stage("DenseNet features of the real images", images);
    let real = pooled_features(&embedder, &real_files, settings.batch, context, 0)?;
    context.start_stage("DenseNet features of the artificial images", images);
    context.set_done(real_files.len());
    let artificial = pooled_features(&embedder, &artificial_files, settings.batch, context, real_files.len())?;
    context.start_stage("Frechet distance", 1);
    context.checkpoint()?;
    let fd = frechet_distance(&real, &artificial).map_err(|e| metric_failed("Frechet distance", e))?;
    context.start_stage("KID subsets", settings.kid.subsets);
    let kid = kernel_inception_distance_with_progress(&real, &artificial, settings.kid, &mut |done| {
        context.set_done(done);
        continue_unless_cancelled(context)
    })
    .map_err(|e| metric_failed("KID", e))?;
    let mut record_settings = vec![
        setting("real_folder", settings.real.display()),
        setting("artificial_folder", settings.artificial.display()),
        setting("n_real", real.rows()),
        setting("n_artificial", artificial.rows()),
        setting("feature_dim", real.cols()),
        setting("features", "DenseNet global average pool (pooled_features)"),
        setting("kid_subsets", settings.kid.subsets),
        setting("kid_subset_size", kid.subset_size),
        setting("seed", settings.kid.seed),
    ];
    record_settings.extend(settings.classifier.settings("classifier"));
    Ok(MetricRecord {
        id: 0,
        metric: MetricKind::FdKid,
        settings: record_settings,
        values: vec![
            value("fd", fd.value),
            value("fd_mean_term", fd.mean_term),
            value("fd_covariance_term", fd.covariance_term),
            value("kid_mean", kid.mean),
            value("kid_std", kid.std),
        ],
        elapsed_ms: elapsed_ms(started),
        detail: MetricDetail::FdKid {
            fd,
            kid: KidSummary {
                mean: kid.mean,
                std: kid.std,
                subsets: settings.kid.subsets,
                subset_size: kid.subset_size,
                seed: settings.kid.seed,
                per_subset: kid.per_subset,
            },
        },
    })
}

// ---------------------------------------------------------------------------------------------------------------
// MS-SSIM histograms

/// Settings of a per-pathology MS-SSIM histogram run. A folder whose subfolders hold images is grouped by
/// subfolder (one pathology label each, as `thorax correlate --save-images` writes them); a folder of images alone
/// is one group named `all`.
#[derive(Clone, Debug)]
pub struct MsSsimSettings {
    pub real: PathBuf,
    pub artificial: PathBuf,
    /// Random pairs per label and side.
    pub pairs: usize,
    pub seed: u64,
    /// Thorax_GAN `SSIM/ms_ssim.py` (the study's figures) instead of pytorch-msssim.
    pub thorax_gan_compat: bool,
}

/// Image groups of a folder: `(label, files)` sorted by label.
pub fn label_groups(folder: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, JobError> {
    let entries = std::fs::read_dir(folder).map_err(|e| failed(format!("reading folder {}: {e}", folder.display())))?;
    let mut subfolders: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    subfolders.sort();
    let mut groups = Vec::new();
    for dir in subfolders {
        let files = image_files(&dir).map_err(failed_anyhow)?;
        if !files.is_empty() {
            let label = dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            groups.push((label, files));
        }
    }
    if groups.is_empty() {
        let files = image_files(folder).map_err(failed_anyhow)?;
        if files.is_empty() {
            return Err(failed(format!("{} holds no images and no subfolders of images", folder.display())));
        }
        groups.push(("all".to_owned(), files));
    }
    Ok(groups)
}

/// Decodes a group; returns the images and the largest natural data range among them.
fn load_group(files: &[PathBuf], context: &JobContext) -> Result<(Vec<GrayImage>, f64), JobError> {
    let mut images = Vec::with_capacity(files.len());
    let mut range: f64 = 0.0;
    let mut pixels = 0usize;
    for path in files {
        context.checkpoint()?;
        let (image, image_range) = load_gray(path).map_err(failed_anyhow)?;
        pixels = pixels.saturating_add(image.pixels().len());
        if pixels > MAX_GROUP_PIXELS {
            return Err(failed(format!(
                "the images of {} exceed {} Mpx in memory; use smaller images or fewer per label",
                path.parent().unwrap_or(path).display(),
                MAX_GROUP_PIXELS / (1024 * 1024)
            )));
        }
        range = range.max(image_range);
        images.push(image);
    }
    Ok((images, range))
}

/// MS-SSIM histograms (50 bins over [0, 1]) of random same-label pairs, real and artificial, per label.
pub fn run_msssim_histograms(settings: &MsSsimSettings, context: &JobContext) -> Result<MetricRecord, JobError> {
    let started = Instant::now();
    if settings.pairs == 0 {
        return Err(failed("pairs per label must be at least 1"));
    }
    let real_groups = label_groups(&settings.real)?;
    let artificial_groups = label_groups(&settings.artificial)?;
    let mut names: Vec<String> = real_groups.iter().chain(&artificial_groups).map(|(l, _)| l.clone()).collect();
    names.sort();
    names.dedup();
    let sides = [("real", &real_groups), ("artificial", &artificial_groups)];
    let total_pairs = settings.pairs * (real_groups.len() + artificial_groups.len());
    context.start_stage("MS-SSIM pairs", total_pairs);
    let mut pairs_done = 0;
    let mut labels = Vec::with_capacity(names.len());
    let mut notes = Vec::new();
    let mut values = Vec::new();
    for name in &names {
        let mut histograms = [None, None];
        for (slot, (side, groups)) in sides.iter().enumerate() {
            let Some((_, files)) = groups.iter().find(|(l, _)| l == name) else {
                notes.push(format!("{name}: no {side} images"));
                continue;
            };
            if files.len() < 2 {
                notes.push(format!("{name}: {} {side} image(s); pairs need 2", files.len()));
                pairs_done += settings.pairs;
                context.set_done(pairs_done);
                continue;
            }
            let distinct = files.len() * (files.len() - 1) / 2;
            if settings.pairs > distinct {
                // Drawn with replacement, as the study did: the histogram's count overstates the evidence.
                notes.push(format!(
                    "{name} ({side}): {} images give only {distinct} distinct pairs; the {} drawn repeat them",
                    files.len(),
                    settings.pairs
                ));
            }
            let (images, range) = load_group(files, context)?;
            let mode = if settings.thorax_gan_compat {
                MsSsimMode::ThoraxGanCompat
            } else {
                MsSsimMode::Standard { data_range: range }
            };
            let histogram = same_label_pair_histogram_with_progress(
                &images,
                settings.pairs,
                settings.seed,
                mode,
                DEFAULT_BINS,
                (0.0, 1.0),
                &mut |done| {
                    context.set_done(pairs_done + done);
                    continue_unless_cancelled(context)
                },
            )
            .map_err(|e| metric_failed(&format!("MS-SSIM of {name} ({side})"), e))?;
            pairs_done += settings.pairs;
            values.push(value(format!("mean {name} ({side})"), histogram.mean));
            values.push(value(format!("sd {name} ({side})"), histogram.std));
            histograms[slot] = Some(histogram);
        }
        let [real, artificial] = histograms;
        labels.push(MsSsimLabel { label: name.clone(), real, artificial });
    }
    let record_settings = vec![
        setting("real_folder", settings.real.display()),
        setting("artificial_folder", settings.artificial.display()),
        setting("pairs_per_label", settings.pairs),
        setting("seed", settings.seed),
        setting("mode", if settings.thorax_gan_compat { "thorax-gan" } else { "standard" }),
        setting("bins", DEFAULT_BINS),
        setting("n_real", real_groups.iter().map(|(_, f)| f.len()).sum::<usize>()),
        setting("n_artificial", artificial_groups.iter().map(|(_, f)| f.len()).sum::<usize>()),
    ];
    Ok(MetricRecord {
        id: 0,
        metric: MetricKind::MsSsimHistogram,
        settings: record_settings,
        values,
        elapsed_ms: elapsed_ms(started),
        detail: MetricDetail::MsSsimHistogram { labels, notes },
    })
}

// ---------------------------------------------------------------------------------------------------------------
// ROC / AUC

/// Settings of a ROC run: the inputs of `thorax metrics roc`.
#[derive(Clone, Debug)]
pub struct RocSettings {
    /// CSV of scores: an id column, then one column per label (`Label` or `prob_Label`).
    pub scores: PathBuf,
    /// CSV of 0/1 truth: an id column, then one column per label.
    pub truth: PathBuf,
    /// Percentile-bootstrap resamples (0: no CI).
    pub resamples: usize,
    pub seed: u64,
}

/// Confidence level of the bootstrap intervals.
pub const ROC_CI_LEVEL: f64 = 0.95;

/// ROC curve, AUC and percentile-bootstrap CI per label.
pub fn run_roc(settings: &RocSettings, context: &JobContext) -> Result<MetricRecord, JobError> {
    let started = Instant::now();
    let read = read_roc_inputs(&settings.scores, &settings.truth).map_err(failed_anyhow)?;
    let inputs = &read.labels;
    context.start_stage("ROC per label", inputs.len());
    let mut labels = Vec::with_capacity(inputs.len());
    let mut values = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        context.checkpoint()?;
        let positives = input.truth.iter().filter(|&&t| t).count();
        let mut label = RocLabel {
            label: input.label.clone(),
            cases: input.truth.len(),
            positives,
            auc: None,
            bootstrap: None,
            fpr: Vec::new(),
            tpr: Vec::new(),
            error: None,
        };
        let computed = roc_auc(&input.truth, &input.scores).and_then(|auc| {
            let curve = roc_curve(&input.truth, &input.scores, true)?;
            let bootstrap = if settings.resamples > 0 {
                Some(bootstrap_auc(&input.truth, &input.scores, settings.resamples, ROC_CI_LEVEL, settings.seed)?)
            } else {
                None
            };
            Ok((auc, curve, bootstrap))
        });
        match computed {
            Ok((auc, curve, bootstrap)) => {
                values.push(value(format!("auc {}", input.label), auc));
                if let Some(b) = &bootstrap {
                    values.push(value(format!("ci_low {}", input.label), b.ci_low));
                    values.push(value(format!("ci_high {}", input.label), b.ci_high));
                }
                label.auc = Some(auc);
                label.bootstrap = bootstrap;
                label.fpr = curve.fpr;
                label.tpr = curve.tpr;
            }
            Err(e) => label.error = Some(e.to_string()),
        }
        labels.push(label);
        context.set_done(index + 1);
    }
    let cases = inputs.first().map_or(0, |i| i.truth.len());
    let record_settings = vec![
        setting("scores_csv", settings.scores.display()),
        setting("truth_csv", settings.truth.display()),
        setting("n", cases),
        setting("scores_without_truth_left_out", read.scores_without_truth.len()),
        setting("bootstrap_resamples", settings.resamples),
        setting("ci_level", ROC_CI_LEVEL),
        setting("seed", settings.seed),
    ];
    Ok(MetricRecord {
        id: 0,
        metric: MetricKind::Roc,
        settings: record_settings,
        values,
        elapsed_ms: elapsed_ms(started),
        detail: MetricDetail::Roc { labels },
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Pathology correlation

/// Default images per control label in the panel (the CLI's `thorax correlate` default is 5000).
pub const UI_CORRELATION_PER_LABEL: usize = 50;

/// Settings of a pathology correlation run on the generator.
#[derive(Clone, Debug)]
pub struct CorrelationJobSettings {
    pub generator: JobModel,
    pub classifier: JobModel,
    pub per_label: usize,
    pub seed: u32,
    pub batch: usize,
    pub device: DeviceChoice,
}

/// `thorax correlate` without files: the generator varies one label, the classifier scores, Pearson per cell.
pub fn run_pathology_correlation(
    settings: &CorrelationJobSettings,
    context: &JobContext,
) -> Result<MetricRecord, JobError> {
    let started = Instant::now();
    let device = open(settings.device)?;
    context.start_stage("loading the models", 1);
    let generator = ProganGenerator::from_weights(settings.generator.weights(ModelKind::ProganGenerator, &device)?)
        .map_err(|e| failed(format!("building the generator: {e}")))?;
    let classifier = DenseNet121::from_weights(settings.classifier.weights(ModelKind::Densenet121Classifier, &device)?)
        .map_err(|e| failed(format!("building the classifier: {e}")))?;
    let run_settings = CorrelationSettings {
        per_label: settings.per_label,
        seed: settings.seed,
        batch: settings.batch,
        save_images: None,
    };
    context.start_stage("generating and classifying", 0);
    let run = run_correlation(&generator, &classifier, &run_settings, &mut |progress| {
        context.start_stage(
            &format!("{} ({}/{})", progress.label, progress.label_position + 1, progress.label_count),
            progress.images_total,
        );
        context.set_done(progress.images_done);
        continue_unless_cancelled(context)
    })
    .map_err(|e| match e {
        CorrelateError::Cancelled => JobError::Cancelled,
        other => failed(format!("correlation run: {other}")),
    })?;
    let values = diagonal_values(&run.matrix);
    let mut record_settings = vec![
        setting("per_label", settings.per_label),
        setting("seed", settings.seed),
        setting("batch", settings.batch),
        setting("control_labels", run.matching.pairs.len()),
        setting("images", run.experiments.iter().map(|e| e.control_values.len()).sum::<usize>()),
    ];
    record_settings.extend(settings.generator.settings("generator"));
    record_settings.extend(settings.classifier.settings("classifier"));
    Ok(MetricRecord {
        id: 0,
        metric: MetricKind::Correlation,
        settings: record_settings,
        values,
        elapsed_ms: elapsed_ms(started),
        detail: MetricDetail::Correlation { matrix: run.matrix },
    })
}

/// `r <label>` for every control label with the same-named output (the matrix's diagonal).
fn diagonal_values(matrix: &CorrelationMatrix) -> Vec<NamedValue> {
    matrix
        .control_labels
        .iter()
        .zip(&matrix.r)
        .filter_map(|(label, row)| {
            let column = matrix.output_labels.iter().position(|o| o == label)?;
            let r = row.get(column).copied().flatten()?;
            Some(value(format!("r {label}"), r))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::background_job::{BackgroundJob, JobOutcome};
    use std::sync::Arc;
    use std::time::Duration;

    /// Writes the first `count` small embedded samples into `dir` (8-bit gray, 256 px).
    fn sample_folder(dir: &Path, skip: usize, count: usize) {
        std::fs::create_dir_all(dir).unwrap();
        let samples = crate::imaging::samples::embedded_samples();
        for sample in samples.iter().filter(|s| s.file_name.starts_with("cxr256")).skip(skip).take(count) {
            std::fs::write(dir.join(&sample.file_name), sample.bytes).unwrap();
        }
    }

    #[test]
    fn msssim_histograms_match_the_library_and_record_their_settings() {
        let root = tempfile::tempdir().unwrap();
        sample_folder(&root.path().join("real/Edema"), 0, 3);
        sample_folder(&root.path().join("fake/Edema"), 3, 3);
        sample_folder(&root.path().join("fake/Mass"), 6, 1);
        let settings = MsSsimSettings {
            real: root.path().join("real"),
            artificial: root.path().join("fake"),
            pairs: 4,
            seed: 9,
            thorax_gan_compat: true,
        };
        let record = run_msssim_histograms(&settings, &JobContext::detached()).unwrap();
        assert_eq!(record.setting("pairs_per_label"), Some("4"));
        assert_eq!(record.setting("seed"), Some("9"));
        let MetricDetail::MsSsimHistogram { labels, notes } = &record.detail else { panic!("{record:?}") };
        let names: Vec<&str> = labels.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(names, ["Edema", "Mass"]);
        assert!(notes.iter().any(|n| n.contains("Mass") && n.contains("real")), "{notes:?}");
        // The same pairs as the library function draws directly.
        let files = image_files(&root.path().join("real/Edema")).unwrap();
        let images: Vec<GrayImage> = files.iter().map(|f| load_gray(f).unwrap().0).collect();
        let direct = crate::metrics::msssim_histogram::same_label_pair_histogram(
            &images,
            4,
            9,
            MsSsimMode::ThoraxGanCompat,
            DEFAULT_BINS,
            (0.0, 1.0),
        )
        .unwrap();
        assert_eq!(labels[0].real.as_ref(), Some(&direct));
        assert!(labels[1].artificial.is_none() && labels[1].real.is_none());
    }

    #[test]
    fn a_cancelled_msssim_job_reports_cancelled_without_a_record() {
        let root = tempfile::tempdir().unwrap();
        sample_folder(&root.path().join("real"), 0, 4);
        sample_folder(&root.path().join("fake"), 4, 4);
        let settings = MsSsimSettings {
            real: root.path().join("real"),
            artificial: root.path().join("fake"),
            pairs: 100_000,
            seed: 1,
            thorax_gan_compat: false,
        };
        let mut job =
            BackgroundJob::spawn("test-msssim", Arc::new(|| {}), move |c| run_msssim_histograms(&settings, c)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while job.progress().done < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        job.cancel();
        assert_eq!(job.wait(Duration::from_secs(60)), Some(JobOutcome::Cancelled));
        let progress = job.progress();
        assert!(progress.done < progress.total, "stopped early: {progress:?}");
    }

    #[test]
    fn roc_job_reads_the_cli_inputs_and_adds_a_bootstrap_ci() {
        let root = tempfile::tempdir().unwrap();
        let scores = root.path().join("scores.csv");
        let truth = root.path().join("truth.csv");
        std::fs::write(&scores, "id,prob_A,B\n1,0.9,0.5\n2,0.8,0.5\n3,0.3,0.5\n4,0.1,0.5\n5,0.6,0.5\n").unwrap();
        std::fs::write(&truth, "id,A,B\n1,1,0\n2,1,0\n3,0,0\n4,0,0\n5,0,0\n").unwrap();
        let settings = RocSettings { scores, truth, resamples: 200, seed: 3 };
        let record = run_roc(&settings, &JobContext::detached()).unwrap();
        let MetricDetail::Roc { labels } = &record.detail else { panic!("{record:?}") };
        assert_eq!(labels.len(), 2);
        assert_eq!(labels[0].auc, Some(1.0));
        assert_eq!(record.value("auc A"), Some(1.0));
        let bootstrap = labels[0].bootstrap.as_ref().unwrap();
        assert_eq!((bootstrap.resamples, bootstrap.seed), (200, 3));
        assert_eq!(labels[0].fpr.first(), Some(&0.0));
        assert_eq!(labels[0].tpr.last(), Some(&1.0));
        // Label B holds one class: no AUC, the reason is kept, the run goes on.
        assert!(labels[1].auc.is_none() && labels[1].error.as_deref().is_some_and(|e| e.contains("class")));
        assert_eq!(record.setting("n"), Some("5"));
    }

    fn embedded(kind: ModelKind) -> JobModel {
        JobModel::from(&ModelChoice::from(crate::models::registry::default_model(kind).expect("an embedded model")))
    }

    #[test]
    fn fd_kid_job_uses_pooled_densenet_features_and_records_the_model() {
        let root = tempfile::tempdir().unwrap();
        sample_folder(&root.path().join("real"), 0, 3);
        sample_folder(&root.path().join("fake"), 3, 3);
        let classifier = embedded(ModelKind::Densenet121Classifier);
        let settings = FdKidSettings {
            real: root.path().join("real"),
            artificial: root.path().join("fake"),
            classifier: classifier.clone(),
            kid: KidOptions { subsets: 4, subset_size: 100, seed: 2 },
            batch: 2,
            device: DeviceChoice::Cpu,
        };
        let record = run_fd_kid(&settings, &JobContext::detached()).unwrap();
        let MetricDetail::FdKid { fd, kid } = &record.detail else { panic!("{record:?}") };
        assert_eq!((fd.count_a, fd.count_b), (3, 3));
        // The embedded placeholder is a narrow DenseNet; the pooled width is the network's feature count.
        assert_eq!(record.setting("feature_dim"), Some(fd.dim.to_string().as_str()));
        assert!(fd.value.is_finite() && fd.value > 0.0, "{fd:?}");
        assert_eq!(record.value("fd"), Some(fd.value));
        assert_eq!((kid.subsets, kid.subset_size, kid.per_subset.len()), (4, 3, 4));
        assert_eq!(record.setting("classifier_sha256"), Some(classifier.sha256.as_str()));
        assert_eq!(record.setting("n_real"), Some("3"));
        assert_eq!(record.setting("seed"), Some("2"));
    }

    #[test]
    fn a_cancelled_correlation_run_reports_cancelled() {
        let settings = CorrelationJobSettings {
            generator: embedded(ModelKind::ProganGenerator),
            classifier: embedded(ModelKind::Densenet121Classifier),
            per_label: 1000,
            seed: 0,
            batch: 2,
            device: DeviceChoice::Cpu,
        };
        let mut job =
            BackgroundJob::spawn("test-correlate", Arc::new(|| {}), move |c| run_pathology_correlation(&settings, c))
                .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while job.progress().done == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        job.cancel();
        assert_eq!(job.wait(Duration::from_secs(120)), Some(JobOutcome::Cancelled));
        let progress = job.progress();
        assert!(progress.done > 0 && progress.done < progress.total, "{progress:?}");
    }

    #[test]
    fn missing_folders_fail_with_the_path() {
        let settings = MsSsimSettings {
            real: PathBuf::from("/nonexistent/real"),
            artificial: PathBuf::from("/nonexistent/fake"),
            pairs: 3,
            seed: 0,
            thorax_gan_compat: true,
        };
        let error = run_msssim_histograms(&settings, &JobContext::detached()).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/real"), "{error}");
    }
}
