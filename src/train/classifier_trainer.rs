//! Training the DenseNet classifier (reproduce-chexnet's recipe): masked BCE on the labels, SGD with momentum 0.9,
//! lr 0.01 and weight decay 1e-4 (on every parameter, as `optim.SGD(model.parameters())`), lr divided by 10 when the
//! validation loss has not improved for `plateau_patience` epochs, early stop after `early_stop_patience` epochs
//! without improvement; the weights of the best validation loss are the result.
//!
//! Images are prepared as the classifier's inference preprocessing does (Pillow bilinear resize of the shorter side
//! and centre crop to the training resolution, grey replicated to 3 channels, the card's ImageNet normalisation),
//! so the saved card makes inference see the same input. Augmentation: small random translations (edge pixels
//! repeated), no flips (chest films are not left-right symmetric).
//!
//! Step `t` uses the rows `t mod E` of epoch `t / E` (E = steps per epoch) in the order drawn from
//! `TrainRng::for_stream(seed, EpochOrder, epoch)`, and its shifts from `for_stream(seed, Step, t)`; checkpoints hold
//! parameters, running statistics, momentum buffers, the best weights and the schedule, so a resumed run continues
//! bit for bit (on the same device).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::metrics::roc::roc_auc;
use crate::models::card::{ModelCard, Provenance};
use crate::models::densenet::{DenseNet121, DenseNetConfig};
use crate::models::preprocess::{Gray8, classifier_gray8, normalized_value};
use crate::models::safetensors_file::write_safetensors;
use crate::models::weights;
use crate::train::classifier_split::RowSplit;
use crate::train::dataset::{DatasetError, GanDataset};
use crate::train::densenet_train::{BatchNormMode, DenseNetParameters, masked_bce_with_logits};
use crate::train::error::TrainError;
use crate::train::rng::{RngStream, TrainRng};

/// The safetensors metadata key holding [`ClassifierCheckpointState`] as JSON.
pub const CLASSIFIER_STATE_KEY: &str = "thorax.classifier_train_state";
/// The format tag of the classifier checkpoint layout.
pub const CLASSIFIER_CHECKPOINT_FORMAT: &str = "thorax-classifier-checkpoint-1";
/// Tensor groups of a checkpoint (`group/name`).
const GROUPS: [&str; 4] = ["params", "running", "momentum", "best"];

/// Everything that defines a classifier training run; stored in checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierTrainConfig {
    /// Output label names, in the network's order.
    pub labels: Vec<String>,
    pub resolution_px: usize,
    pub growth_rate: usize,
    pub bn_size: usize,
    pub num_init_features: usize,
    pub block_config: Vec<usize>,
    pub batch: usize,
    /// Initial SGD learning rate.
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    /// The learning rate is divided by this on a plateau.
    pub lr_decay_factor: f64,
    /// Epochs without a better validation loss before the learning rate drops.
    pub plateau_patience: u32,
    /// Epochs without a better validation loss before training stops (`None`: never).
    pub early_stop_patience: Option<u32>,
    /// BatchNorm running-statistics momentum (PyTorch's 0.1).
    pub bn_momentum: f64,
    /// Largest random shift of a training image, in pixels (0: no augmentation).
    pub max_shift_px: usize,
    pub seed: u64,
}

impl ClassifierTrainConfig {
    /// reproduce-chexnet's settings for `labels` at `resolution_px` with DenseNet-121's layout.
    pub fn new(labels: Vec<String>, resolution_px: usize) -> Self {
        let densenet = DenseNetConfig::densenet121(labels.len());
        Self {
            labels,
            resolution_px,
            growth_rate: densenet.growth_rate,
            bn_size: densenet.bn_size,
            num_init_features: densenet.num_init_features,
            block_config: densenet.block_config,
            batch: 16,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
            lr_decay_factor: 10.0,
            plateau_patience: 1,
            early_stop_patience: Some(3),
            bn_momentum: 0.1,
            max_shift_px: resolution_px / 16,
            seed: 2020,
        }
    }

    /// The architecture this configuration trains.
    pub fn densenet(&self) -> DenseNetConfig {
        DenseNetConfig {
            growth_rate: self.growth_rate,
            bn_size: self.bn_size,
            num_init_features: self.num_init_features,
            block_config: self.block_config.clone(),
            num_labels: self.labels.len(),
        }
    }

    /// A card for the network: the architecture, the training resolution, ImageNet normalisation.
    pub fn card(&self, name: &str, provenance: Provenance) -> ModelCard {
        let mut card = self.densenet().card(name, self.labels.clone(), provenance);
        card.resolution = self.resolution_px;
        card
    }

    /// Checks every setting, naming the first bad one.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |argument: &str, reason: String| Err(TrainError::BadConfig { argument: argument.to_owned(), reason });
        let positive = |value: f64| value.is_finite() && value > 0.0;
        if !(32..=1024).contains(&self.resolution_px) {
            return bad("resolution", format!("{} px; the network needs 32 to 1024", self.resolution_px));
        }
        if self.labels.is_empty() {
            return bad("labels", "the classifier needs at least one label".to_owned());
        }
        if self.growth_rate == 0 || self.bn_size == 0 || self.num_init_features == 0 {
            return bad("growth-rate", "growth rate, bn_size and stem width must be at least 1".to_owned());
        }
        if self.block_config.is_empty() || self.block_config.contains(&0) {
            return bad("block-config", format!("{:?}: every block needs at least one layer", self.block_config));
        }
        // Each block after the first halves the side; the stem quarters it.
        let halvings = 2 + self.block_config.len() - 1;
        if self.resolution_px >> halvings.min(63) == 0 {
            return bad(
                "resolution",
                format!(
                    "{} px vanishes after {halvings} halvings of {} blocks",
                    self.resolution_px,
                    self.block_config.len()
                ),
            );
        }
        if self.batch < 2 {
            return bad("batch", format!("{}: BatchNorm needs at least 2 images", self.batch));
        }
        if !positive(self.lr) {
            return bad("lr", format!("{} is not a positive number", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", format!("{} must lie in [0, 1)", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight-decay", format!("{} is not a non-negative number", self.weight_decay));
        }
        if !(self.lr_decay_factor.is_finite() && self.lr_decay_factor >= 1.0) {
            return bad("lr-decay-factor", format!("{} must be at least 1", self.lr_decay_factor));
        }
        if self.plateau_patience == 0 || self.early_stop_patience == Some(0) {
            return bad("plateau-patience", "patience is counted in epochs and must be at least 1".to_owned());
        }
        if !(self.bn_momentum > 0.0 && self.bn_momentum <= 1.0) {
            return bad("bn-momentum", format!("{} must lie in (0, 1]", self.bn_momentum));
        }
        if self.max_shift_px >= self.resolution_px / 2 {
            return bad("max-shift-px", format!("{} must be below half the side", self.max_shift_px));
        }
        Ok(())
    }
}

/// Decodes an image file to grey and prepares it as the classifier's inference preprocessing does.
pub fn prepare_classifier_image(path: &Path, side_px: usize) -> Result<Vec<u8>, DatasetError> {
    let bad = |reason: String| DatasetError::BadImage { path: path.to_path_buf(), reason };
    let grey = image::ImageReader::open(path)
        .map_err(|e| bad(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?
        .decode()
        .map_err(|e| bad(e.to_string()))?
        .into_luma8();
    let (width, height) = grey.dimensions();
    let image = Gray8 { width_px: width as usize, height_px: height as usize, pixels: grey.into_raw() };
    if image.width_px == 0 || image.height_px == 0 {
        return Err(bad("the image is empty".to_owned()));
    }
    Ok(classifier_gray8(&image, side_px).map_err(|e| bad(e.to_string()))?.pixels)
}

/// Loads the training images for `config` (labels in its order), prepared with [`prepare_classifier_image`].
pub fn load_classifier_dataset(
    images_dir: &Path,
    labels_csv: &Path,
    config: &ClassifierTrainConfig,
) -> Result<GanDataset, DatasetError> {
    GanDataset::load_prepared(images_dir, labels_csv, config.resolution_px, &config.labels, &prepare_classifier_image)
}

/// One epoch's summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: u64,
    pub step: u64,
    pub train_loss: f64,
    pub validation_loss: f64,
    pub lr: f64,
    pub improved: bool,
}

/// What happened at the end of an epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochOutcome {
    pub record: EpochRecord,
    pub lr_decayed: bool,
    pub stop: bool,
}

/// Validation AUC of one label.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelAuc {
    pub label: String,
    /// `None` when the label has no annotated positives or negatives in the validation rows.
    pub auc: Option<f64>,
    pub positives: usize,
    pub negatives: usize,
}

/// Non-tensor state of a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierCheckpointState {
    pub format: String,
    pub config: ClassifierTrainConfig,
    pub step: u64,
    pub lr: f64,
    pub best_validation_loss: Option<f64>,
    pub best_step: u64,
    pub epochs_without_improvement: u32,
    pub epochs_since_lr_change: u32,
    pub stopped_early: bool,
    pub train_seconds: f64,
    /// Sum and count of training losses of the running epoch.
    pub epoch_loss_sum: f64,
    pub epoch_loss_count: u64,
    pub history: Vec<EpochRecord>,
    /// The rows each side of the split holds; a resumed run must split identically.
    pub train_rows: Vec<usize>,
    pub validation_rows: Vec<usize>,
}

/// The classifier training state.
pub struct ClassifierTrainer {
    config: ClassifierTrainConfig,
    card: ModelCard,
    device: Device,
    params: DenseNetParameters,
    momentum: BTreeMap<String, Tensor>,
    best: Option<HashMap<String, Tensor>>,
    split: RowSplit,
    step: u64,
    lr: f64,
    best_validation_loss: Option<f64>,
    best_step: u64,
    epochs_without_improvement: u32,
    epochs_since_lr_change: u32,
    stopped_early: bool,
    train_seconds: f64,
    epoch_loss_sum: f64,
    epoch_loss_count: u64,
    history: Vec<EpochRecord>,
    /// The training order of one epoch (derived from the seed, never saved).
    epoch_order: Option<(u64, Vec<usize>)>,
}

impl ClassifierTrainer {
    /// A fresh run: torchvision's initialisation (seeded), zero momentum, the given split of the dataset rows.
    pub fn new(config: ClassifierTrainConfig, split: RowSplit, device: &Device) -> Result<Self, TrainError> {
        config.validate()?;
        let card = config.card("training classifier", Provenance::default());
        let init_seed = TrainRng::for_stream(config.seed, RngStream::Init, 0).next_u64();
        let params = DenseNetParameters::initial(&card, device, init_seed)?;
        let momentum = params
            .trainable
            .iter()
            .map(|(name, var)| Ok((name.clone(), var.as_tensor().zeros_like()?)))
            .collect::<Result<_, candle_core::Error>>()?;
        Ok(Self {
            lr: config.lr,
            config,
            card,
            device: device.clone(),
            params,
            momentum,
            best: None,
            split,
            step: 0,
            best_validation_loss: None,
            best_step: 0,
            epochs_without_improvement: 0,
            epochs_since_lr_change: 0,
            stopped_early: false,
            train_seconds: 0.0,
            epoch_loss_sum: 0.0,
            epoch_loss_count: 0,
            history: Vec::new(),
            epoch_order: None,
        })
    }

    pub fn config(&self) -> &ClassifierTrainConfig {
        &self.config
    }
    pub fn step(&self) -> u64 {
        self.step
    }
    pub fn lr(&self) -> f64 {
        self.lr
    }
    pub fn split(&self) -> &RowSplit {
        &self.split
    }
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }
    pub fn stopped_early(&self) -> bool {
        self.stopped_early
    }
    pub fn best_validation_loss(&self) -> Option<f64> {
        self.best_validation_loss
    }
    pub fn best_step(&self) -> u64 {
        self.best_step
    }
    /// Wall time spent in training steps and validations over this run and the runs it resumed.
    pub fn train_seconds(&self) -> f64 {
        self.train_seconds
    }
    /// The parameters being trained.
    pub fn parameters(&self) -> &DenseNetParameters {
        &self.params
    }

    /// SGD's momentum buffers by parameter name.
    pub fn momentum_buffers(&self) -> &BTreeMap<String, Tensor> {
        &self.momentum
    }

    /// Training steps that make one pass over the training rows (at least 1).
    pub fn steps_per_epoch(&self) -> u64 {
        (self.split.train.len() / self.config.batch).max(1) as u64
    }

    /// Checks that `data` is what the run trains on (resolution, labels, every split row present).
    pub fn check_dataset(&self, data: &GanDataset) -> Result<(), TrainError> {
        let largest = self.split.train.iter().chain(&self.split.validation).max().copied().unwrap_or(0);
        if data.resolution_px() != self.config.resolution_px
            || data.label_names() != self.config.labels.as_slice()
            || largest >= data.len()
        {
            return Err(TrainError::BadConfig {
                argument: "dataset".to_owned(),
                reason: format!(
                    "{} images at {} px with labels [{}], but the run trains {} px with labels [{}] on rows up to {largest}",
                    data.len(),
                    data.resolution_px(),
                    data.label_names().join(", "),
                    self.config.resolution_px,
                    self.config.labels.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// Network input `[B, 3, R, R]` of rows, each shifted by `(dy, dx)` (edge pixels repeated).
    fn input_batch(&self, data: &GanDataset, rows: &[usize], shifts: &[(isize, isize)]) -> Result<Tensor, TrainError> {
        let side = self.config.resolution_px;
        let normalization = self.card.input_normalization.clone().unwrap_or(crate::models::card::InputNormalization {
            mean: crate::models::densenet::IMAGENET_MEAN.to_vec(),
            std: crate::models::densenet::IMAGENET_STD.to_vec(),
        });
        let mut values = Vec::with_capacity(rows.len() * 3 * side * side);
        let clamp = |v: isize| v.clamp(0, side as isize - 1) as usize;
        for (index, &row) in rows.iter().enumerate() {
            let pixels = data.image_u8(row).ok_or_else(|| TrainError::BadConfig {
                argument: "dataset".to_owned(),
                reason: format!("row {row} is past the {} images", data.len()),
            })?;
            let (dy, dx) = shifts.get(index).copied().unwrap_or((0, 0));
            for (mean, std) in normalization.mean.iter().zip(&normalization.std) {
                for y in 0..side as isize {
                    let source_row = clamp(y - dy) * side;
                    for x in 0..side as isize {
                        let pixel = pixels.get(source_row + clamp(x - dx)).copied().unwrap_or(0);
                        values.push(normalized_value(pixel, *mean, *std));
                    }
                }
            }
        }
        Ok(Tensor::from_vec(values, (rows.len(), 3, side, side), &self.device)?)
    }

    /// The training rows of step `step`.
    fn step_rows(&mut self) -> Vec<usize> {
        let per_epoch = self.steps_per_epoch();
        let epoch = self.step / per_epoch;
        let within = (self.step % per_epoch) as usize;
        let train = &self.split.train;
        if self.epoch_order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut order = train.clone();
            TrainRng::for_stream(self.config.seed, RngStream::EpochOrder, epoch).shuffle(&mut order);
            self.epoch_order = Some((epoch, order));
        }
        let order = self.epoch_order.as_ref().map(|(_, order)| order.as_slice()).unwrap_or(train);
        let batch = self.config.batch;
        (0..batch).filter_map(|i| order.get((within * batch + i) % order.len().max(1)).copied()).collect()
    }

    /// One SGD step; at an epoch's end also validates and applies the schedule (then returns its outcome).
    pub fn train_step(&mut self, data: &GanDataset) -> Result<(f32, Option<EpochOutcome>), TrainError> {
        self.check_dataset(data)?;
        let started = std::time::Instant::now();
        let rows = self.step_rows();
        let mut rng = TrainRng::for_stream(self.config.seed, RngStream::Step, self.step);
        let radius = self.config.max_shift_px;
        let shifts: Vec<(isize, isize)> = rows.iter().map(|_| (rng.symmetric(radius), rng.symmetric(radius))).collect();
        let x = self.input_batch(data, &rows, &shifts)?;
        let (labels, masks) = data.labels_of(&rows, &self.device)?;
        let (logits, running) = self.params.forward(&x, BatchNormMode::Train { momentum: self.config.bn_momentum })?;
        let loss = masked_bce_with_logits(&logits, &labels, &masks)?;
        let loss_value = loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        if !loss_value.is_finite() {
            return Err(TrainError::NonFinite { step: self.step, what: "training loss".to_owned() });
        }
        let grads = loss.backward()?;
        self.sgd_update(&grads)?;
        self.params.set_running(running);
        self.step += 1;
        self.epoch_loss_sum += f64::from(loss_value);
        self.epoch_loss_count += 1;
        let outcome = if self.step.is_multiple_of(self.steps_per_epoch()) { Some(self.end_epoch(data)?) } else { None };
        self.train_seconds += started.elapsed().as_secs_f64();
        Ok((loss_value, outcome))
    }

    /// PyTorch SGD: `d = g + wd * p; buf = momentum * buf + d; p -= lr * buf` (the first buffer is `d`).
    fn sgd_update(&mut self, grads: &candle_core::backprop::GradStore) -> Result<(), TrainError> {
        let (lr, momentum, weight_decay) = (self.lr, self.config.momentum, self.config.weight_decay);
        for (name, var) in &self.params.trainable {
            let Some(grad) = grads.get(var.as_tensor()) else { continue };
            // Detached: `var * weight_decay` would record the variable in its graph, the buffer would then keep the
            // previous step's buffer alive, and every step's buffers (about 25 MB a step for growth 12) would stay in
            // memory until the process ended (18 GB after 800 steps).
            let (grad, weights) = (grad.detach(), var.as_tensor().detach());
            let direction = (grad + (&weights * weight_decay)?)?;
            let missing = || TrainError::MissingParameter { network: "SGD momentum".to_owned(), name: name.clone() };
            let buffer = self.momentum.get_mut(name).ok_or_else(missing)?;
            *buffer = ((&*buffer * momentum)? + direction)?;
            var.set(&(weights - (&*buffer * lr)?)?)?;
        }
        Ok(())
    }

    /// Validation loss, plateau decay, early stop and best-weights bookkeeping at the end of an epoch.
    fn end_epoch(&mut self, data: &GanDataset) -> Result<EpochOutcome, TrainError> {
        let (probabilities, _) = self.predict(data, &self.split.validation.clone())?;
        let validation_loss = masked_bce_of_probabilities(data, &self.split.validation, &probabilities);
        if !validation_loss.is_finite() {
            return Err(TrainError::NonFinite { step: self.step, what: "validation loss".to_owned() });
        }
        let improved = self.best_validation_loss.is_none_or(|best| validation_loss < best);
        let mut lr_decayed = false;
        if improved {
            self.best_validation_loss = Some(validation_loss);
            self.best_step = self.step;
            self.best = Some(self.params.tensors());
            self.epochs_without_improvement = 0;
            self.epochs_since_lr_change = 0;
        } else {
            self.epochs_without_improvement += 1;
            self.epochs_since_lr_change += 1;
            if self.epochs_since_lr_change >= self.config.plateau_patience {
                self.lr /= self.config.lr_decay_factor;
                self.epochs_since_lr_change = 0;
                lr_decayed = true;
            }
        }
        let stop = self.config.early_stop_patience.is_some_and(|patience| self.epochs_without_improvement >= patience);
        self.stopped_early |= stop;
        let record = EpochRecord {
            epoch: self.step / self.steps_per_epoch(),
            step: self.step,
            train_loss: self.epoch_loss_sum / self.epoch_loss_count.max(1) as f64,
            validation_loss,
            lr: self.lr,
            improved,
        };
        self.epoch_loss_sum = 0.0;
        self.epoch_loss_count = 0;
        self.history.push(record.clone());
        Ok(EpochOutcome { record, lr_decayed, stop })
    }

    /// Probabilities `rows x labels` of the current weights through the inference network (eval mode).
    pub fn predict(&self, data: &GanDataset, rows: &[usize]) -> Result<(Vec<Vec<f32>>, DenseNet121), TrainError> {
        let network = self.params.inference_network(&self.card)?;
        let probabilities = predict_with(&network, self, data, rows)?;
        Ok((probabilities, network))
    }

    /// The network to ship: the weights of the best validation loss (the current ones before any validation).
    pub fn result_tensors(&self) -> HashMap<String, Tensor> {
        self.best.clone().unwrap_or_else(|| self.params.tensors())
    }

    /// Per-label validation AUC of the result network (rows where the label was annotated, both classes present).
    pub fn validation_auc(&self, data: &GanDataset) -> Result<Vec<LabelAuc>, TrainError> {
        let network =
            DenseNet121::from_weights(weights::Weights { card: self.card.clone(), tensors: self.result_tensors() })?;
        let rows = self.split.validation.clone();
        let probabilities = predict_with(&network, self, data, &rows)?;
        let mut result = Vec::with_capacity(self.config.labels.len());
        for (j, label) in self.config.labels.iter().enumerate() {
            let mut truth = Vec::new();
            let mut scores = Vec::new();
            for (&row, probs) in rows.iter().zip(&probabilities) {
                let Some((labels, mask)) = data.labels_and_mask(row) else { continue };
                if mask.get(j).is_some_and(|m| *m > 0.5) {
                    truth.push(labels.get(j).is_some_and(|v| *v > 0.5));
                    scores.push(f64::from(probs.get(j).copied().unwrap_or(0.0)));
                }
            }
            let positives = truth.iter().filter(|t| **t).count();
            let negatives = truth.len() - positives;
            let auc = if positives > 0 && negatives > 0 { roc_auc(&truth, &scores).ok() } else { None };
            result.push(LabelAuc { label: label.clone(), auc, positives, negatives });
        }
        Ok(result)
    }

    /// A card for the result with `name` and `provenance` (architecture, resolution, normalisation).
    pub fn result_card(&self, name: &str, provenance: Provenance) -> ModelCard {
        self.config.card(name, provenance)
    }

    /// Writes the result network with `card`.
    pub fn save_result(&self, path: &Path, card: &ModelCard) -> Result<(), TrainError> {
        weights::save(path, &self.result_tensors(), card)?;
        Ok(())
    }

    /// Writes everything a resumed run needs to `path` (atomically).
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), TrainError> {
        let fail = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
        let mut flat: Vec<(String, Tensor)> = Vec::new();
        let mut push = |group: &str, name: &str, tensor: &Tensor| -> Result<(), TrainError> {
            flat.push((format!("{group}/{name}"), tensor.to_device(&Device::Cpu)?));
            Ok(())
        };
        for (name, var) in &self.params.trainable {
            push("params", name, var.as_tensor())?;
        }
        for (name, tensor) in &self.params.running {
            push("running", name, tensor)?;
        }
        for (name, tensor) in &self.momentum {
            push("momentum", name, tensor)?;
        }
        for (name, tensor) in self.best.iter().flatten() {
            push("best", name, tensor)?;
        }
        let state = ClassifierCheckpointState {
            format: CLASSIFIER_CHECKPOINT_FORMAT.to_owned(),
            config: self.config.clone(),
            step: self.step,
            lr: self.lr,
            best_validation_loss: self.best_validation_loss,
            best_step: self.best_step,
            epochs_without_improvement: self.epochs_without_improvement,
            epochs_since_lr_change: self.epochs_since_lr_change,
            stopped_early: self.stopped_early,
            train_seconds: self.train_seconds,
            epoch_loss_sum: self.epoch_loss_sum,
            epoch_loss_count: self.epoch_loss_count,
            history: self.history.clone(),
            train_rows: self.split.train.clone(),
            validation_rows: self.split.validation.clone(),
        };
        let json = serde_json::to_string(&state).map_err(|e| fail(format!("cannot encode the state: {e}")))?;
        let metadata = HashMap::from([(CLASSIFIER_STATE_KEY.to_owned(), json)]);
        let refs: Vec<(&str, &Tensor)> = flat.iter().map(|(k, v)| (k.as_str(), v)).collect();
        write_safetensors(&refs, metadata, path).map_err(fail)
    }

    /// Continues a run from a checkpoint written by [`Self::save_checkpoint`].
    pub fn resume(path: &Path, device: &Device) -> Result<Self, TrainError> {
        let fail = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
        let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| fail(format!("not a safetensors file: {e}")))?;
        let json = metadata.metadata().as_ref().and_then(|m| m.get(CLASSIFIER_STATE_KEY)).ok_or_else(|| {
            fail(format!("no `{CLASSIFIER_STATE_KEY}` metadata: not a thorax classifier training checkpoint"))
        })?;
        let state: ClassifierCheckpointState =
            serde_json::from_str(json).map_err(|e| fail(format!("the training state is not valid: {e}")))?;
        if state.format != CLASSIFIER_CHECKPOINT_FORMAT {
            return Err(fail(format!("format `{}`, expected `{CLASSIFIER_CHECKPOINT_FORMAT}`", state.format)));
        }
        let loaded = candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| fail(e.to_string()))?;
        let mut groups: BTreeMap<&str, HashMap<String, Tensor>> = BTreeMap::new();
        for (key, tensor) in loaded {
            let (group, name) = key.split_once('/').ok_or_else(|| fail(format!("tensor `{key}` has no group")))?;
            let group =
                GROUPS.iter().find(|g| **g == group).ok_or_else(|| fail(format!("unknown group of `{key}`")))?;
            groups.entry(group).or_default().insert(name.to_owned(), tensor);
        }
        let mut take = |group: &str| groups.remove(group).unwrap_or_default();
        let mut tensors = take("params");
        tensors.extend(take("running"));
        let momentum_tensors = take("momentum");
        let best = take("best");
        let split = RowSplit {
            train: state.train_rows.clone(),
            validation: state.validation_rows.clone(),
            train_patients: 0,
            validation_patients: 0,
        };
        let mut trainer = Self::new(state.config.clone(), split, device)?;
        trainer.params = DenseNetParameters::from_tensors(state.config.densenet(), &tensors)?;
        for (name, buffer) in trainer.momentum.iter_mut() {
            *buffer = momentum_tensors.get(name).cloned().ok_or_else(|| fail(format!("no momentum for `{name}`")))?;
        }
        trainer.best = if best.is_empty() { None } else { Some(best) };
        trainer.step = state.step;
        trainer.lr = state.lr;
        trainer.best_validation_loss = state.best_validation_loss;
        trainer.best_step = state.best_step;
        trainer.epochs_without_improvement = state.epochs_without_improvement;
        trainer.epochs_since_lr_change = state.epochs_since_lr_change;
        trainer.stopped_early = state.stopped_early;
        trainer.train_seconds = state.train_seconds;
        trainer.epoch_loss_sum = state.epoch_loss_sum;
        trainer.epoch_loss_count = state.epoch_loss_count;
        trainer.history = state.history;
        Ok(trainer)
    }

    /// Replaces the split's patient counts (a resumed run only stores the rows) and checks the rows agree.
    pub fn confirm_split(&mut self, split: RowSplit) -> Result<(), TrainError> {
        if split.train != self.split.train || split.validation != self.split.validation {
            return Err(TrainError::BadConfig {
                argument: "split".to_owned(),
                reason: format!(
                    "the labels CSV now splits into {} training and {} validation rows, the checkpoint into {} and {}",
                    split.train.len(),
                    split.validation.len(),
                    self.split.train.len(),
                    self.split.validation.len()
                ),
            });
        }
        self.split = split;
        Ok(())
    }

    /// Sets the learning rate (e.g. on resume).
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<(), TrainError> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(TrainError::BadConfig { argument: "lr".to_owned(), reason: format!("{lr} is not positive") });
        }
        self.lr = lr;
        Ok(())
    }

    /// All trainable parameters, for tests and tools.
    pub fn trainable(&self) -> &BTreeMap<String, Var> {
        &self.params.trainable
    }
}

/// Probabilities of `rows` through `network`, in batches of the run's batch size.
fn predict_with(
    network: &DenseNet121,
    trainer: &ClassifierTrainer,
    data: &GanDataset,
    rows: &[usize],
) -> Result<Vec<Vec<f32>>, TrainError> {
    let mut probabilities = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(trainer.config.batch.max(1)) {
        let x = trainer.input_batch(data, chunk, &[])?;
        probabilities.extend(network.forward(&x)?.to_vec2::<f32>()?);
    }
    Ok(probabilities)
}

/// `nn.BCELoss` (logarithms clamped at -100 as PyTorch does) over annotated labels of `rows`.
fn masked_bce_of_probabilities(data: &GanDataset, rows: &[usize], probabilities: &[Vec<f32>]) -> f64 {
    let (mut sum, mut count) = (0.0f64, 0usize);
    for (&row, probs) in rows.iter().zip(probabilities) {
        let Some((labels, mask)) = data.labels_and_mask(row) else { continue };
        for ((&y, &m), &p) in labels.iter().zip(mask).zip(probs) {
            if m > 0.5 {
                let p = f64::from(p);
                let (y, log_p, log_q) = (f64::from(y), p.ln().max(-100.0), (1.0 - p).ln().max(-100.0));
                sum -= y * log_p + (1.0 - y) * log_q;
                count += 1;
            }
        }
    }
    sum / count.max(1) as f64
}
