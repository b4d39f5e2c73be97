//! `thorax correlate`: Thorax_GAN's pathology correlation experiment (research/seed.md section 4.5, peers.md 3.5).
//!
//! For each generator label that the classifier also has (matched by name; the two cards order their labels
//! differently), `N` images are generated with that label's value drawn from U(0, 1) and every other label 0, saved
//! to 8-bit as the original pipeline did (`clip(rint((x + 1) * 127.5))`), preprocessed for the classifier (Resize
//! and centre crop to the classifier card's side, 224 for the study's, then its normalisation) and scored. Cell [p][k] of the matrix is Pearson's r between the
//! control values of label p and the classifier's probability of output k ([`crate::metrics::correlation`]); rows are
//! control labels in the classifier's order, columns all classifier outputs. Response curves are the mean
//! probability of every output in ten bins of the control value ([0, 0.1), ..., [0.9, 1.0)).
//!
//! Random numbers: the control label with generator index g uses numpy's `RandomState((seed + g) mod 2^32)`:
//! first `rand(N)` for the control values, then `randn(N, latent_size)` for the latents. The control values are
//! rounded to float32, the value the generator sees, before anything else uses them.
//!
//! [`run_correlation`] is the library entry point (progress callback with cancel, no printing); [`run`] is the CLI.

use std::io::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};
use sha2::{Digest as _, Sha256};

use crate::atomic_file::{IfExists, write_file};
use crate::cli::output_paths::check_not_replacing;
use crate::metrics::correlation::{ControlExperiment, CorrelationMatrix, correlation_matrix};
use crate::metrics::error::MetricError;
use crate::models::card::{ModelCard, ModelKind};
use crate::models::densenet::DenseNet121;
use crate::models::error::ModelError;
use crate::models::preprocess::{classifier_input_sized, classifier_side_px};
use crate::models::progan::{NumpyRandomState, ProganGenerator, to_png_u8};
use crate::models::weights::Weights;

/// Number of equal-width bins of the control value in the response curves.
pub const RESPONSE_BINS: usize = 10;

/// Run the pathology correlation experiment: generated images with one label varied, scored by the classifier.
#[derive(Debug, clap::Args)]
pub struct CorrelateArgs {
    /// Generator weights (.safetensors with a model card); default: the embedded default generator.
    #[arg(long)]
    pub generator: Option<PathBuf>,
    /// Classifier weights (.safetensors with a model card); default: the embedded default classifier.
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// Images per control label.
    #[arg(long, default_value_t = 5000)]
    pub per_label: usize,
    /// Seed of the control values and latents (see the module documentation for the exact streams).
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Images per generator and classifier pass.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Output folder (created if missing): per-label CSVs, matrix, response curves, summary.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write every generated image as an 8-bit PNG under OUT/images/<label>/.
    #[arg(long)]
    pub save_images: bool,
    /// Print the summary as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Replace files that already exist in --out (an earlier run's CSVs, summary.json, images); without it a run
    /// that would replace one is refused before anything is generated or written.
    #[arg(long)]
    pub overwrite: bool,
}

/// The knobs of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct CorrelationSettings {
    /// Images per control label.
    pub per_label: usize,
    pub seed: u32,
    /// Images per forward pass.
    pub batch: usize,
    /// Folder for the generated images as PNG, `<folder>/<label>/fake_<i>.png`; None keeps none.
    pub save_images: Option<PathBuf>,
}

/// One label present in both cards.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LabelPair {
    pub label: String,
    /// Position in the generator card (its input slot).
    pub generator_index: usize,
    /// Position in the classifier card (its output).
    pub classifier_index: usize,
}

/// How the generator's and the classifier's labels correspond, by exact name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LabelMatching {
    /// Labels in both cards, in the classifier's order.
    pub pairs: Vec<LabelPair>,
    /// Generator labels the classifier does not have (skipped as control labels).
    pub generator_only: Vec<String>,
    /// Classifier outputs no generator label controls (still columns of the matrix).
    pub classifier_only: Vec<String>,
}

/// Pairs the labels of the two cards by exact name.
pub fn match_labels(generator: &ModelCard, classifier: &ModelCard) -> LabelMatching {
    let pairs = classifier
        .labels
        .iter()
        .enumerate()
        .filter_map(|(classifier_index, label)| {
            generator.label_index(label).map(|generator_index| LabelPair {
                label: label.clone(),
                generator_index,
                classifier_index,
            })
        })
        .collect();
    let generator_only = generator.labels.iter().filter(|l| classifier.label_index(l).is_none()).cloned().collect();
    let classifier_only = classifier.labels.iter().filter(|l| generator.label_index(l).is_none()).cloned().collect();
    LabelMatching { pairs, generator_only, classifier_only }
}

/// Where a run is, reported after every batch.
#[derive(Clone, Debug, PartialEq)]
pub struct CorrelationProgress {
    /// The control label being generated.
    pub label: String,
    /// 0-based position of that label among the control labels, and their count.
    pub label_position: usize,
    pub label_count: usize,
    /// Images scored so far in all, and the run's total.
    pub images_done: usize,
    pub images_total: usize,
    pub elapsed_s: f64,
}

/// Mean classifier outputs of the images whose control value falls in one bin.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ResponseBin {
    pub control_low: f64,
    pub control_high: f64,
    pub count: usize,
    /// Mean probability per classifier output (card order); None for an empty bin.
    pub mean_probabilities: Vec<Option<f64>>,
}

/// The response of every classifier output to one control label.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ResponseCurve {
    pub control_label: String,
    pub bins: Vec<ResponseBin>,
}

/// Everything one run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct CorrelationRun {
    pub matching: LabelMatching,
    /// Classifier outputs (card order): the matrix columns and the probability order of every experiment.
    pub output_labels: Vec<String>,
    /// One per control label, in the classifier's order.
    pub experiments: Vec<ControlExperiment>,
    pub matrix: CorrelationMatrix,
    pub response_curves: Vec<ResponseCurve>,
    pub elapsed_s: f64,
}

/// Why a correlation run failed. Messages name the argument, model or file and the reason.
#[derive(Debug, thiserror::Error)]
pub enum CorrelateError {
    #[error("invalid setting `{argument}`: {reason}")]
    BadSetting { argument: &'static str, reason: String },
    #[error("the generator and the classifier share no label name (generator: {generator}; classifier: {classifier})")]
    NoSharedLabels { generator: String, classifier: String },
    #[error("the generator makes {channels}-channel images; the correlation run needs gray (1 channel) or RGB")]
    UnsupportedChannels { channels: usize },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("the run was cancelled")]
    Cancelled,
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Metric(#[from] MetricError),
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Control values (float32-rounded) and latents of the control label with generator index `generator_index`.
pub fn control_draws(seed: u32, generator_index: usize, n: usize, latent_size: usize) -> (Vec<f32>, Vec<f32>) {
    let stream_seed = seed.wrapping_add(generator_index as u32);
    let mut rng = NumpyRandomState::new(stream_seed);
    let controls = (0..n).map(|_| rng.next_f64() as f32).collect();
    let latents = (0..n * latent_size).map(|_| rng.standard_normal() as f32).collect();
    (controls, latents)
}

/// Generator label rows [controls.len(), label_count]: the control value in `slot`, 0 elsewhere.
pub fn control_label_rows(controls: &[f32], slot: usize, label_count: usize) -> Vec<f32> {
    let mut rows = vec![0.0f32; controls.len() * label_count];
    for (row, &value) in rows.chunks_exact_mut(label_count).zip(controls) {
        if let Some(cell) = row.get_mut(slot) {
            *cell = value;
        }
    }
    rows
}

/// Runs the experiment. `on_progress` is called after every batch; returning `ControlFlow::Break(())` cancels.
pub fn run_correlation(
    generator: &ProganGenerator,
    classifier: &DenseNet121,
    settings: &CorrelationSettings,
    on_progress: &mut dyn FnMut(&CorrelationProgress) -> ControlFlow<()>,
) -> Result<CorrelationRun, CorrelateError> {
    if settings.per_label < 2 {
        return Err(CorrelateError::BadSetting {
            argument: "per-label",
            reason: format!("{} images per label; Pearson's r needs at least 2", settings.per_label),
        });
    }
    if settings.batch == 0 {
        return Err(CorrelateError::BadSetting { argument: "batch", reason: "must be at least 1".to_owned() });
    }
    let matching = match_labels(generator.card(), classifier.card());
    if matching.pairs.is_empty() {
        return Err(CorrelateError::NoSharedLabels {
            generator: generator.card().labels.join(", "),
            classifier: classifier.card().labels.join(", "),
        });
    }
    let architecture = generator.architecture();
    let (latent_size, label_size) = (architecture.latent_size, architecture.label_size);
    let device = classifier_device(classifier);
    let normalization = classifier.card().input_normalization.clone();
    // The classifier's own input side (64 px for our trained default, 224 for the study's).
    let side_px = classifier_side_px(classifier.card());
    let output_labels = classifier.card().labels.clone();
    let started = Instant::now();
    let images_total = settings.per_label * matching.pairs.len();
    let mut images_done = 0;
    let mut experiments = Vec::with_capacity(matching.pairs.len());
    for (position, pair) in matching.pairs.iter().enumerate() {
        let (controls, latents) = control_draws(settings.seed, pair.generator_index, settings.per_label, latent_size);
        let label_rows = control_label_rows(&controls, pair.generator_index, label_size);
        let image_dir = match &settings.save_images {
            Some(root) => {
                let dir = root.join(safe_file_part(&pair.label));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| CorrelateError::Write { path: dir.clone(), reason: e.to_string() })?;
                Some(dir)
            }
            None => None,
        };
        let mut probabilities = Vec::with_capacity(settings.per_label);
        for start in (0..settings.per_label).step_by(settings.batch) {
            let end = (start + settings.batch).min(settings.per_label);
            let rows = end - start;
            let z = Tensor::from_slice(
                &latents[start * latent_size..end * latent_size],
                (rows, latent_size),
                generator.device(),
            )?;
            let y = Tensor::from_slice(
                &label_rows[start * label_size..end * label_size],
                (rows, label_size),
                generator.device(),
            )?;
            let images = generator.forward(&z, &y)?;
            let (_, channels, height, width) = images.dims4()?;
            if channels != 1 && channels != 3 {
                return Err(CorrelateError::UnsupportedChannels { channels });
            }
            // The first channel: generators of this study are gray (RGB ones repeat it).
            let pixels: Vec<u8> =
                images.narrow(1, 0, 1)?.flatten_all()?.to_vec1::<f32>()?.into_iter().map(to_png_u8).collect();
            let mut inputs = Vec::with_capacity(rows);
            for (offset, image) in pixels.chunks_exact(height * width).enumerate() {
                if let Some(dir) = &image_dir {
                    save_png(&dir.join(format!("fake_{}.png", start + offset)), image, width, height)?;
                }
                let gray: Vec<f32> = image.iter().map(|&p| f32::from(p) / 255.0).collect();
                inputs.push(classifier_input_sized(&gray, width, height, normalization.as_ref(), side_px, &device)?);
            }
            let batch = Tensor::cat(&inputs, 0)?;
            for row in classifier.forward(&batch)?.to_vec2::<f32>()? {
                probabilities.push(row.into_iter().map(f64::from).collect());
            }
            images_done += rows;
            let progress = CorrelationProgress {
                label: pair.label.clone(),
                label_position: position,
                label_count: matching.pairs.len(),
                images_done,
                images_total,
                elapsed_s: started.elapsed().as_secs_f64(),
            };
            if on_progress(&progress).is_break() {
                return Err(CorrelateError::Cancelled);
            }
        }
        experiments.push(ControlExperiment {
            control_label: pair.label.clone(),
            control_values: controls.iter().map(|&c| f64::from(c)).collect(),
            probabilities,
        });
    }
    let matrix = correlation_matrix(&experiments, &output_labels)?;
    let response_curves = experiments.iter().map(|e| response_curve(e, output_labels.len())).collect();
    Ok(CorrelationRun {
        matching,
        output_labels,
        experiments,
        matrix,
        response_curves,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

/// The device the classifier's weights live on.
fn classifier_device(classifier: &DenseNet121) -> Device {
    classifier.classifier_parameters().0.device().clone()
}

/// Mean probabilities in [`RESPONSE_BINS`] equal bins of the control value over [0, 1].
pub fn response_curve(experiment: &ControlExperiment, outputs: usize) -> ResponseCurve {
    let mut sums = vec![vec![0.0f64; outputs]; RESPONSE_BINS];
    let mut counts = vec![0usize; RESPONSE_BINS];
    for (&control, probabilities) in experiment.control_values.iter().zip(&experiment.probabilities) {
        let bin = ((control * RESPONSE_BINS as f64).floor().max(0.0) as usize).min(RESPONSE_BINS - 1);
        counts[bin] += 1;
        for (sum, &p) in sums[bin].iter_mut().zip(probabilities) {
            *sum += p;
        }
    }
    let bins = sums
        .into_iter()
        .zip(counts)
        .enumerate()
        .map(|(bin, (sums, count))| ResponseBin {
            control_low: bin as f64 / RESPONSE_BINS as f64,
            control_high: (bin + 1) as f64 / RESPONSE_BINS as f64,
            count,
            mean_probabilities: sums.into_iter().map(|s| (count > 0).then(|| s / count as f64)).collect(),
        })
        .collect();
    ResponseCurve { control_label: experiment.control_label.clone(), bins }
}

fn save_png(path: &Path, pixels: &[u8], width: usize, height: usize) -> Result<(), CorrelateError> {
    let write_error = |reason: String| CorrelateError::Write { path: path.to_path_buf(), reason };
    let (w, h) = (
        u32::try_from(width).map_err(|e| write_error(e.to_string()))?,
        u32::try_from(height).map_err(|e| write_error(e.to_string()))?,
    );
    let image = image::GrayImage::from_raw(w, h, pixels.to_vec())
        .ok_or_else(|| write_error("pixel buffer does not match the image size".to_owned()))?;
    let mut encoded = std::io::Cursor::new(Vec::new());
    image.write_to(&mut encoded, image::ImageFormat::Png).map_err(|e| write_error(e.to_string()))?;
    // Whole or not at all under its name; the command line has refused existing files unless --overwrite.
    write_file(path, IfExists::Replace, encoded.get_ref()).map_err(|e| write_error(e.to_string()))
}

/// Letters, digits, `-` and `_` only, so label names make portable file names.
fn safe_file_part(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// A number for CSV: f64's shortest round-trip text, empty for None.
fn csv_number(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// Quotes a CSV field when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

fn csv_header(first: &[&str], labels: &[String]) -> String {
    let mut fields: Vec<String> = first.iter().map(|f| (*f).to_owned()).collect();
    fields.extend(labels.iter().map(|l| csv_field(l)));
    fields.join(",")
}

/// The per-label CSV: `control,<outputs...>`, one row per image.
pub fn experiment_csv(experiment: &ControlExperiment, output_labels: &[String]) -> String {
    let mut text = csv_header(&["control"], output_labels);
    text.push('\n');
    for (control, probabilities) in experiment.control_values.iter().zip(&experiment.probabilities) {
        let mut fields = vec![csv_number(Some(*control))];
        fields.extend(probabilities.iter().map(|&p| csv_number(Some(p))));
        text.push_str(&fields.join(","));
        text.push('\n');
    }
    text
}

/// The matrix CSV: `control_label,<outputs...>`, one row per control label; undefined cells are empty.
pub fn matrix_csv(matrix: &CorrelationMatrix) -> String {
    let mut text = csv_header(&["control_label"], &matrix.output_labels);
    text.push('\n');
    for (label, row) in matrix.control_labels.iter().zip(&matrix.r) {
        let mut fields = vec![csv_field(label)];
        fields.extend(row.iter().map(|&r| csv_number(r)));
        text.push_str(&fields.join(","));
        text.push('\n');
    }
    text
}

/// The response-curve CSV: `control_label,bin,control_low,control_high,count,<outputs...>`.
pub fn response_curves_csv(curves: &[ResponseCurve], output_labels: &[String]) -> String {
    let mut text = csv_header(&["control_label", "bin", "control_low", "control_high", "count"], output_labels);
    text.push('\n');
    for curve in curves {
        for (index, bin) in curve.bins.iter().enumerate() {
            let mut fields = vec![
                csv_field(&curve.control_label),
                index.to_string(),
                csv_number(Some(bin.control_low)),
                csv_number(Some(bin.control_high)),
                bin.count.to_string(),
            ];
            fields.extend(bin.mean_probabilities.iter().map(|&m| csv_number(m)));
            text.push_str(&fields.join(","));
            text.push('\n');
        }
    }
    text
}

/// A model file read for the run: its bytes' SHA-256 and a name for messages.
struct LoadedModel {
    weights: Weights,
    sha256: String,
    name: String,
}

fn load_model(
    path: Option<&Path>,
    default_bytes: Option<&[u8]>,
    kind: ModelKind,
    what: &str,
    device: &Device,
) -> anyhow::Result<LoadedModel> {
    let (bytes, name) = match path {
        Some(path) => (
            std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))?,
            path.display().to_string(),
        ),
        None => match default_bytes {
            Some(bytes) => (bytes.to_vec(), format!("embedded default {what}")),
            None => bail!("no --{what} given and this build has no embedded default {what}"),
        },
    };
    let weights =
        Weights::from_bytes(&bytes, Path::new(&name), kind, device).with_context(|| format!("loading {name}"))?;
    let sha256 = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    Ok(LoadedModel { weights, sha256, name })
}

fn model_json(model: &LoadedModel) -> serde_json::Value {
    let card = &model.weights.card;
    serde_json::json!({
        "file": model.name,
        "name": card.name,
        "sha256": model.sha256,
        "untrained": card.untrained,
        "labels": card.labels,
    })
}

fn write_text(path: &Path, text: &str, if_exists: IfExists) -> anyhow::Result<()> {
    write_file(path, if_exists, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// The files `thorax correlate` writes into `--out` (besides the images of `--save-images`).
struct OutputFiles {
    /// Each matched label's CSV, by label.
    per_label: std::collections::BTreeMap<String, PathBuf>,
    matrix_csv: PathBuf,
    response_curves_csv: PathBuf,
    summary_json: PathBuf,
}

impl OutputFiles {
    fn new(out: &Path, matching: &LabelMatching) -> Self {
        let per_label = matching
            .pairs
            .iter()
            .map(|pair| {
                (pair.label.clone(), out.join("per_label").join(format!("{}.csv", safe_file_part(&pair.label))))
            })
            .collect();
        Self {
            per_label,
            matrix_csv: out.join("correlation_matrix.csv"),
            response_curves_csv: out.join("response_curves.csv"),
            summary_json: out.join("summary.json"),
        }
    }

    fn per_label_csv(&self, label: &str) -> PathBuf {
        self.per_label.get(label).cloned().unwrap_or_else(|| {
            self.matrix_csv.with_file_name("per_label").join(format!("{}.csv", safe_file_part(label)))
        })
    }

    fn named(&self) -> Vec<&Path> {
        let mut named: Vec<&Path> = self.per_label.values().map(PathBuf::as_path).collect();
        named.extend([self.matrix_csv.as_path(), self.response_curves_csv.as_path(), self.summary_json.as_path()]);
        named
    }
}

/// Runs `thorax correlate` on `device`; the defaults are the embedded generator and classifier.
pub fn run(
    args: &CorrelateArgs,
    device: &Device,
    default_generator_bytes: Option<&[u8]>,
    default_classifier_bytes: Option<&[u8]>,
) -> anyhow::Result<()> {
    if args.out.exists() && !args.out.is_dir() {
        anyhow::bail!(
            "--out {} is a file: give a folder (created if missing) for the CSVs, the matrix and summary.json",
            args.out.display()
        );
    }
    let generator_file = load_model(
        args.generator.as_deref(),
        default_generator_bytes,
        ModelKind::ProganGenerator,
        "generator",
        device,
    )?;
    let classifier_file = load_model(
        args.classifier.as_deref(),
        default_classifier_bytes,
        ModelKind::Densenet121Classifier,
        "classifier",
        device,
    )?;
    let generator_json = model_json(&generator_file);
    let classifier_json = model_json(&classifier_file);
    let generator = ProganGenerator::from_weights(generator_file.weights)
        .with_context(|| format!("building the generator from {}", generator_file.name))?;
    let classifier = DenseNet121::from_weights(classifier_file.weights)
        .with_context(|| format!("building the classifier from {}", classifier_file.name))?;
    let out_files = OutputFiles::new(&args.out, &match_labels(generator.card(), classifier.card()));
    let mut outputs: Vec<(&str, &Path)> = out_files.named().into_iter().map(|path| ("--out", path)).collect();
    let image_files: Vec<PathBuf> = if args.save_images {
        let images = args.out.join("images");
        let dirs: Vec<PathBuf> = out_files.per_label.keys().map(|label| images.join(safe_file_part(label))).collect();
        dirs.iter().flat_map(|dir| (0..args.per_label).map(move |i| dir.join(format!("fake_{i}.png")))).collect()
    } else {
        Vec::new()
    };
    outputs.extend(image_files.iter().map(|path| ("--save-images", path.as_path())));
    // Before any work, so that a refused run writes nothing.
    check_not_replacing(&outputs, args.overwrite)?;
    let if_exists = IfExists::replace_if(args.overwrite);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating --out {}", args.out.display()))?;
    let settings = CorrelationSettings {
        per_label: args.per_label,
        seed: args.seed,
        batch: args.batch,
        save_images: args.save_images.then(|| args.out.join("images")),
    };

    let matching = match_labels(generator.card(), classifier.card());
    for label in &matching.generator_only {
        eprintln!("correlate: generator label `{label}` has no classifier output of that name; skipped");
    }
    let mut last_report = Instant::now();
    let mut report = |progress: &CorrelationProgress| {
        let finished = progress.images_done == progress.images_total;
        if finished || last_report.elapsed().as_secs_f64() >= 2.0 {
            last_report = Instant::now();
            let rate = progress.images_done as f64 / progress.elapsed_s.max(1e-9);
            let remaining_s = (progress.images_total - progress.images_done) as f64 / rate.max(1e-9);
            eprintln!(
                "correlate: {} ({}/{}) {}/{} images, {rate:.1} img/s, about {remaining_s:.0} s left",
                progress.label,
                progress.label_position + 1,
                progress.label_count,
                progress.images_done,
                progress.images_total
            );
            let _ = std::io::stderr().flush();
        }
        ControlFlow::Continue(())
    };
    let result = run_correlation(&generator, &classifier, &settings, &mut report).context("correlation run")?;

    let per_label_dir = args.out.join("per_label");
    std::fs::create_dir_all(&per_label_dir).with_context(|| format!("creating {}", per_label_dir.display()))?;
    let mut per_label_files = serde_json::Map::new();
    for experiment in &result.experiments {
        let path = out_files.per_label_csv(&experiment.control_label);
        write_text(&path, &experiment_csv(experiment, &result.output_labels), if_exists)?;
        per_label_files.insert(experiment.control_label.clone(), path.display().to_string().into());
    }
    let matrix_path = &out_files.matrix_csv;
    write_text(matrix_path, &matrix_csv(&result.matrix), if_exists)?;
    let curves_path = &out_files.response_curves_csv;
    write_text(curves_path, &response_curves_csv(&result.response_curves, &result.output_labels), if_exists)?;
    let summary_path = &out_files.summary_json;

    let diagonal: serde_json::Map<String, serde_json::Value> = result
        .matching
        .pairs
        .iter()
        .zip(&result.matrix.r)
        .map(|(pair, row)| (pair.label.clone(), row.get(pair.classifier_index).copied().flatten().into()))
        .collect();
    let total_images = result.experiments.iter().map(|e| e.control_values.len()).sum::<usize>();
    let summary = serde_json::json!({
        "generator": generator_json,
        "classifier": classifier_json,
        "per_label": args.per_label,
        "seed": args.seed,
        "batch": args.batch,
        "random_streams": "control label with generator index g: numpy RandomState((seed + g) mod 2^32), rand(N) controls (as float32) then randn(N, latent_size) latents",
        "matched_labels": result.matching.pairs,
        "skipped_generator_labels": result.matching.generator_only,
        "classifier_outputs_without_control": result.matching.classifier_only,
        "matrix": result.matrix,
        "diagonal": diagonal,
        "response_curves": result.response_curves,
        "images": total_images,
        "elapsed_s": result.elapsed_s,
        "images_per_s": total_images as f64 / result.elapsed_s.max(1e-9),
        "files": {
            "per_label": per_label_files,
            "matrix_csv": matrix_path.display().to_string(),
            "response_curves_csv": curves_path.display().to_string(),
            "summary_json": summary_path.display().to_string(),
            "images": settings.save_images.as_ref().map(|p| p.display().to_string()),
        },
    });
    let summary_text = serde_json::to_string_pretty(&summary)?;
    write_text(summary_path, &summary_text, if_exists)?;

    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        if generator.card().untrained || classifier.card().untrained {
            println!("note: an untrained placeholder model is in use; these correlations mean nothing");
        }
        println!("control label vs the same classifier output (Pearson r, {} images each):", args.per_label);
        for (pair, row) in result.matching.pairs.iter().zip(&result.matrix.r) {
            let r = row.get(pair.classifier_index).copied().flatten();
            println!("  {:<20} {}", pair.label, r.map_or_else(|| "undefined".to_owned(), |r| format!("{r:+.3}")));
        }
        println!("written to {}", args.out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::card::Provenance;
    use crate::models::densenet::DenseNetConfig;

    fn card_with(labels: &[&str]) -> ModelCard {
        let config = DenseNetConfig::densenet121(labels.len());
        config.card("test", labels.iter().map(|l| (*l).to_owned()).collect(), Provenance::default())
    }

    #[test]
    fn labels_match_by_name_in_classifier_order() {
        let generator = card_with(&["Edema", "Pleural Effusion", "Cardiomegaly"]);
        let classifier = card_with(&["Cardiomegaly", "Effusion", "Edema"]);
        let matching = match_labels(&generator, &classifier);
        let pairs: Vec<_> =
            matching.pairs.iter().map(|p| (p.label.as_str(), p.generator_index, p.classifier_index)).collect();
        assert_eq!(pairs, vec![("Cardiomegaly", 2, 0), ("Edema", 0, 2)]);
        assert_eq!(matching.generator_only, vec!["Pleural Effusion".to_owned()]);
        assert_eq!(matching.classifier_only, vec!["Effusion".to_owned()]);
    }

    #[test]
    fn control_rows_put_the_value_in_the_named_slot_only() {
        let rows = control_label_rows(&[0.25, 0.75], 1, 3);
        assert_eq!(rows, vec![0.0, 0.25, 0.0, 0.0, 0.75, 0.0]);
    }

    #[test]
    fn draws_follow_numpy_random_state() {
        // Seed 3, generator index 2: rs = np.random.RandomState(5); rs.rand(2), then rs.randn(2, 2) (numpy 2.4).
        let (controls, latents) = control_draws(3, 2, 2, 2);
        let expected_controls = [0.22199317f64, 0.87073231];
        for (c, e) in controls.iter().zip(expected_controls) {
            assert!((f64::from(*c) - e).abs() < 1e-7, "{controls:?}");
        }
        let expected_latents =
            [2.4307711124420166f64, -0.2520921230316162, 0.10960984230041504, 1.5824811458587646].map(|v| v as f32);
        assert_eq!(latents, expected_latents);
        let (again, _) = control_draws(3, 2, 2, 2);
        assert_eq!(controls, again);
    }

    #[test]
    fn response_bins_cover_zero_to_one() {
        let experiment = ControlExperiment {
            control_label: "A".into(),
            control_values: vec![0.0, 0.05, 0.95, 0.999_999],
            probabilities: vec![vec![0.1], vec![0.3], vec![0.8], vec![1.0]],
        };
        let curve = response_curve(&experiment, 1);
        assert_eq!(curve.bins.len(), RESPONSE_BINS);
        assert_eq!(curve.bins[0].count, 2);
        assert!((curve.bins[0].mean_probabilities[0].unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(curve.bins[9].count, 2);
        assert_eq!(curve.bins[5].mean_probabilities[0], None);
    }

    #[test]
    fn csv_quotes_and_leaves_undefined_cells_empty() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        let matrix = CorrelationMatrix {
            control_labels: vec!["A".into()],
            output_labels: vec!["A".into(), "B, c".into()],
            r: vec![vec![Some(0.5), None]],
            counts: vec![3],
            undefined_cells: vec![(0, 1)],
        };
        assert_eq!(matrix_csv(&matrix), "control_label,A,\"B, c\"\nA,0.5,\n");
    }
}
