//! Training the conditional ProGAN generator (`G_paper` at full resolution) against [`Discriminator`].
//!
//! One step: a D update on a real batch (the epoch's shuffled order) and a batch of fakes whose labels are label
//! vectors of random real rows (as the original draws them), then a G update on fresh latents and labels, then the
//! EMA of G. Loss: [`crate::train::gan_loss`]; optimiser: [`AdamW`] with beta1 0, beta2 0.99; augmentation:
//! [`diff_augment`] on everything D sees.
//!
//! The generator's parameters are kept unscaled (std 1 at init) in `Var`s under the TF names and layouts; every
//! forward pass multiplies them by their equalised-learning-rate scale. The G step differentiates
//! [`crate::train::generator::generator_forward`] (candle ops); D's fakes and samples come from the inference network
//! [`ProganGenerator::from_weights`] built from the same scaled tensors (a test checks the two agree). Saved
//! generators hold the scaled weights (`wscale_applied = 1`), as the inference path expects.
//!
//! A run may be grown from a checkpoint at half the resolution ([`GanTrainer::grow`], [`crate::train::growth`]):
//! until its fade-in ends, G's output, D's input path and the reals D sees blend the new resolution with the old one.
//!
//! All randomness of step `t` comes from `TrainRng::for_stream(seed, Step, t)` and the data order of epoch `e` from
//! `for_stream(seed, EpochOrder, e)`, so a run resumed from a checkpoint continues bit for bit (on the same device).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::models::card::{ModelCard, Provenance};
use crate::models::progan::{ProganArchitecture, ProganGenerator, TensorRole, TensorSpec, progan_card};
use crate::models::weights::{self, Weights};
use crate::train::adam::{AdamSettings, AdamW};
use crate::train::augment::diff_augment;
use crate::train::checkpoint::{CHECKPOINT_FORMAT, CheckpointState, TensorGroups, load_checkpoint, save_checkpoint};
use crate::train::dataset::{GanDataset, RealBatch};
use crate::train::discriminator::{Discriminator, DiscriminatorOutput, MBSTD_GROUP, WeightUse, discriminator_specs};
use crate::train::ema::Ema;
use crate::train::error::TrainError;
use crate::train::federated::SharedWeights;
use crate::train::gan_loss::{discriminator_loss, generator_loss};
use crate::train::generator::generator_forward_faded;
use crate::train::growth::{
    Fade, FadeSchedule, carry_over, discriminator_fade_specs, fade_real_images, generator_fade_specs,
};
use crate::train::rng::{RngStream, TrainRng};
use crate::train::step_profile::StepProfile;

/// Everything that defines a training run; stored in checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GanTrainConfig {
    pub resolution_px: usize,
    /// `nf(stage) = min(fmap_base / 2^stage, fmap_max)` (the original: 8192 and 512).
    pub fmap_base: f64,
    pub fmap_max: usize,
    pub latent_size: usize,
    /// Label names in the generator's input order.
    pub labels: Vec<String>,
    pub batch: usize,
    /// The same settings for G and D.
    pub adam: AdamSettings,
    /// Target decay of the generator's moving average.
    pub ema_beta: f64,
    /// Weight of the AC-GAN label loss for D (on reals) and G (on fakes).
    pub label_weight: f64,
    /// DiffAugment translation + cutout on every image D sees.
    pub augment: bool,
    pub seed: u64,
}

impl GanTrainConfig {
    /// The defaults for small-data training at `resolution_px`: latent 512, batch 16, Adam lr 0.002 with
    /// beta1 0, beta2 0.99, EMA 0.999, label weight 1, augmentation on.
    pub fn new(resolution_px: usize, fmap_max: usize, labels: Vec<String>) -> Self {
        Self {
            resolution_px,
            fmap_base: 8192.0,
            fmap_max,
            latent_size: 512,
            labels,
            batch: 16,
            adam: AdamSettings { lr: 0.002, beta1: 0.0, beta2: 0.99, epsilon: 1e-8, weight_decay: 0.0 },
            ema_beta: 0.999,
            label_weight: 1.0,
            augment: true,
            seed: 2020,
        }
    }

    /// The generator architecture (one grey channel) this configuration trains.
    pub fn architecture(&self) -> ProganArchitecture {
        ProganArchitecture {
            resolution_px: self.resolution_px,
            latent_size: self.latent_size,
            label_size: self.labels.len(),
            channels: 1,
            fmap_base: self.fmap_base,
            fmap_decay: 1.0,
            fmap_max: self.fmap_max,
        }
    }

    /// Checks every setting, naming the first bad one.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |argument: &str, reason: String| Err(TrainError::BadConfig { argument: argument.to_owned(), reason });
        if !self.resolution_px.is_power_of_two() || !(8..=1024).contains(&self.resolution_px) {
            return bad("resolution", format!("{} px is not a power of two from 8 to 1024", self.resolution_px));
        }
        if self.fmap_max == 0 || !(self.fmap_base.is_finite() && self.fmap_base >= 1.0) {
            return bad(
                "fmap-max",
                format!("fmap_max {} / fmap_base {} leave no feature maps", self.fmap_max, self.fmap_base),
            );
        }
        let architecture = self.architecture();
        if (0..architecture.resolution_log2()).any(|stage| architecture.nf(stage) == 0) {
            return bad("fmap-base", format!("{} leaves a stage with no feature maps", self.fmap_base));
        }
        if self.latent_size == 0 {
            return bad("latent-size", "must be at least 1".to_owned());
        }
        if self.labels.is_empty() {
            return bad("labels", "the generator needs at least one label".to_owned());
        }
        let group = MBSTD_GROUP.min(self.batch);
        if self.batch < 2 || !self.batch.is_multiple_of(group) {
            return bad("batch", format!("{} must be 2 or 3, or a multiple of {MBSTD_GROUP}", self.batch));
        }
        let adam = &self.adam;
        if !(adam.lr.is_finite() && adam.lr > 0.0) {
            return bad("lr", format!("{} is not a positive number", adam.lr));
        }
        if !(0.0..1.0).contains(&adam.beta1) || !(0.0..1.0).contains(&adam.beta2) {
            return bad("adam betas", format!("{} and {} must lie in [0, 1)", adam.beta1, adam.beta2));
        }
        if !(0.0..1.0).contains(&self.ema_beta) {
            return bad("ema-beta", format!("{} must lie in [0, 1)", self.ema_beta));
        }
        if !(self.label_weight.is_finite() && self.label_weight >= 0.0) {
            return bad("label-weight", format!("{} is not a non-negative number", self.label_weight));
        }
        Ok(())
    }
}

/// Which copy of the generator to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratorCopy {
    /// The parameters being optimised.
    Training,
    /// Their moving average (the one to ship).
    Ema,
}

/// Losses of one discriminator update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct DiscriminatorStepLosses {
    pub total: f32,
    pub adversarial: f32,
    pub label: f32,
    /// Mean real/fake logit on real images.
    pub real_score: f32,
    /// Mean real/fake logit on fakes.
    pub fake_score: f32,
}

/// Losses of one generator update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct GeneratorStepLosses {
    pub total: f32,
    pub adversarial: f32,
    pub label: f32,
}

/// Losses of one training step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct StepLosses {
    pub discriminator: DiscriminatorStepLosses,
    pub generator: GeneratorStepLosses,
}

/// The training state: both networks, the EMA, both optimisers and the step count.
pub struct GanTrainer {
    config: GanTrainConfig,
    architecture: ProganArchitecture,
    device: Device,
    generator_specs: Vec<TensorSpec>,
    generator: BTreeMap<String, Var>,
    discriminator: Discriminator,
    ema: Ema,
    adam_generator: AdamW,
    adam_discriminator: AdamW,
    step: u64,
    train_seconds: f64,
    /// The fade-in of a run grown from half the resolution (none for a run that started at its resolution).
    fade: Option<FadeSchedule>,
    /// The generator's `ToRGB_lod1` tensors while a fade exists (empty otherwise).
    fade_specs: Vec<TensorSpec>,
    /// The data order of one epoch, kept to avoid reshuffling every step (derived from the seed, never saved).
    epoch_order: Option<(u64, Vec<usize>)>,
    /// Phase timing (`--profile`); none unless asked for.
    profile: Option<StepProfile>,
}

impl GanTrainer {
    /// A fresh run: weights N(0, 1) (scaled at run time), zero biases, zero optimiser moments.
    pub fn new(config: GanTrainConfig, device: &Device) -> Result<Self, TrainError> {
        config.validate()?;
        let architecture = config.architecture();
        let generator_specs = architecture.tensor_specs();
        let mut rng = TrainRng::for_stream(config.seed, RngStream::Init, 0);
        let mut generator = BTreeMap::new();
        for spec in &generator_specs {
            let count: usize = spec.shape.iter().product();
            let values: Vec<f32> = match spec.role {
                TensorRole::Weight { .. } => (0..count).map(|_| rng.normal() as f32).collect(),
                TensorRole::Bias => vec![0.0; count],
            };
            let tensor = Tensor::from_vec(values, spec.shape.clone(), device)?;
            generator.insert(spec.name.clone(), Var::from_tensor(&tensor)?);
        }
        let mut d_rng = TrainRng::for_stream(config.seed, RngStream::Init, 1);
        let discriminator = Discriminator::new(&architecture, device, &mut d_rng)?;
        let ema = Ema::new(config.ema_beta, &generator)?;
        let adam_generator = AdamW::new(config.adam, &generator)?;
        let adam_discriminator = AdamW::new(config.adam, discriminator.params())?;
        Ok(Self {
            config,
            architecture,
            device: device.clone(),
            generator_specs,
            generator,
            discriminator,
            ema,
            adam_generator,
            adam_discriminator,
            step: 0,
            train_seconds: 0.0,
            fade: None,
            fade_specs: Vec::new(),
            epoch_order: None,
            profile: None,
        })
    }

    /// The run's configuration.
    pub fn config(&self) -> &GanTrainConfig {
        &self.config
    }

    /// Training steps completed.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Wall time spent in [`Self::train_step`] over this run and the runs it resumed.
    pub fn train_seconds(&self) -> f64 {
        self.train_seconds
    }

    /// Changes the learning rate of both optimisers (e.g. on resume).
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<(), TrainError> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(TrainError::BadConfig { argument: "lr".to_owned(), reason: format!("{lr} is not positive") });
        }
        self.config.adam.lr = lr;
        self.adam_generator.settings.lr = lr;
        self.adam_discriminator.settings.lr = lr;
        Ok(())
    }

    /// The fade-in of a grown run, if any.
    pub fn fade(&self) -> Option<FadeSchedule> {
        self.fade
    }

    /// The fade-in weight of the next step (1 for a run that was not grown, or once its fade has ended).
    pub fn fade_alpha(&self) -> f64 {
        self.fade.map_or(1.0, |fade| fade.alpha_at(self.step))
    }

    /// The discriminator being trained.
    pub fn discriminator(&self) -> &Discriminator {
        &self.discriminator
    }

    /// The generator's scaled lod-0 tensors under their TF names, as a weights file stores them (without the
    /// `ToRGB_lod1` of a fade, which the inference network does not read).
    pub fn generator_tensors(
        &self,
        copy: GeneratorCopy,
        weight_use: WeightUse,
    ) -> Result<HashMap<String, Tensor>, TrainError> {
        self.scaled_generator_tensors(&self.generator_specs, copy, weight_use)
    }

    /// [`Self::generator_tensors`] plus, during a fade, `ToRGB_lod1`: what the training forward reads.
    pub fn training_generator_tensors(
        &self,
        copy: GeneratorCopy,
        weight_use: WeightUse,
    ) -> Result<HashMap<String, Tensor>, TrainError> {
        let mut tensors = self.generator_tensors(copy, weight_use)?;
        tensors.extend(self.scaled_generator_tensors(&self.fade_specs, copy, weight_use)?);
        Ok(tensors)
    }

    fn scaled_generator_tensors(
        &self,
        specs: &[TensorSpec],
        copy: GeneratorCopy,
        weight_use: WeightUse,
    ) -> Result<HashMap<String, Tensor>, TrainError> {
        let mut tensors = HashMap::with_capacity(specs.len());
        for spec in specs {
            let missing = || TrainError::MissingParameter { network: "generator".to_owned(), name: spec.name.clone() };
            let raw = match copy {
                GeneratorCopy::Training => {
                    let var = self.generator.get(&spec.name).ok_or_else(missing)?;
                    match weight_use {
                        WeightUse::Trainable => var.as_tensor().clone(),
                        WeightUse::Frozen => var.as_tensor().detach(),
                    }
                }
                GeneratorCopy::Ema => self.ema.tensors.get(&spec.name).ok_or_else(missing)?.clone(),
            };
            let scaled = match spec.role {
                TensorRole::Weight { .. } => (raw * f64::from(spec.wscale()))?,
                TensorRole::Bias => raw,
            };
            tensors.insert(spec.name.clone(), scaled);
        }
        Ok(tensors)
    }

    /// A card for the generator being trained (labels, architecture, `untrained: false`).
    pub fn generator_card(&self, name: &str, provenance: Provenance) -> ModelCard {
        progan_card(name, self.config.labels.clone(), &self.architecture, false, provenance)
    }

    /// The inference network built from the current (or averaged) weights (no gradients: on the CPU it runs the
    /// fused `fast_conv` kernels). It computes the lod-0 network only, which is what training computes once a fade
    /// has ended; [`Self::generate`] covers the fade too.
    pub fn generator_network(&self, copy: GeneratorCopy) -> Result<ProganGenerator, TrainError> {
        let tensors = self.generator_tensors(copy, WeightUse::Frozen)?;
        let card = self.generator_card("training generator", Provenance::default());
        Ok(ProganGenerator::from_weights(Weights { card, tensors })?)
    }

    /// Images from `latents` and `labels` as the next training step would make them (no gradients): the inference
    /// network, or during a fade the faded training forward. D's fakes and the sample grids come from here.
    pub fn generate(&self, copy: GeneratorCopy, latents: &Tensor, labels: &Tensor) -> Result<Tensor, TrainError> {
        let alpha = self.fade_alpha();
        if alpha < 1.0 {
            return self.generate_faded(copy, latents, labels, alpha);
        }
        Ok(self.generator_network(copy)?.forward(latents, labels)?)
    }

    /// The training forward (candle ops) at fade weight `alpha`, without gradients.
    pub fn generate_faded(
        &self,
        copy: GeneratorCopy,
        latents: &Tensor,
        labels: &Tensor,
        alpha: f64,
    ) -> Result<Tensor, TrainError> {
        let tensors = self.training_generator_tensors(copy, WeightUse::Frozen)?;
        Ok(generator_forward_faded(&self.architecture, &tensors, latents, labels, alpha)?.detach())
    }

    /// D's scores of `images` at the next step's fade weight, without gradients to D.
    pub fn discriminate(&self, images: &Tensor) -> Result<DiscriminatorOutput, TrainError> {
        self.discriminator.forward_faded(images, self.fade_alpha(), WeightUse::Frozen)
    }

    /// Writes a generator (with the weight scale applied) and its card, converting to `dtype` (F32 or F16). Only
    /// the lod-0 tensors the inference network reads are written, also during a fade.
    pub fn save_generator(
        &self,
        path: &Path,
        copy: GeneratorCopy,
        card: &ModelCard,
        dtype: DType,
    ) -> Result<(), TrainError> {
        let tensors = self
            .generator_tensors(copy, WeightUse::Frozen)?
            .into_iter()
            .map(|(name, tensor)| Ok((name, tensor.to_dtype(dtype)?)))
            .collect::<Result<HashMap<_, _>, candle_core::Error>>()?;
        weights::save(path, &tensors, card)?;
        Ok(())
    }

    /// Copies of the weights a federated site shares: `G`, `D` and `G_ema` (never optimiser moments or data).
    pub fn shared_weights(&self) -> Result<SharedWeights, TrainError> {
        let copy_vars = |params: &BTreeMap<String, Var>| -> Result<BTreeMap<String, Tensor>, TrainError> {
            params.iter().map(|(name, var)| Ok((name.clone(), var.as_tensor().detach().copy()?))).collect()
        };
        let ema = self
            .ema
            .tensors
            .iter()
            .map(|(name, t)| Ok((name.clone(), t.copy()?)))
            .collect::<Result<_, TrainError>>()?;
        let groups = BTreeMap::from([
            ("G".to_owned(), copy_vars(&self.generator)?),
            ("D".to_owned(), copy_vars(self.discriminator.params())?),
            ("G_ema".to_owned(), ema),
        ]);
        Ok(SharedWeights { groups })
    }

    /// Replaces `G`, `D` and `G_ema` by `weights` (the federated average), keeping optimiser state and step.
    pub fn load_shared_weights(&mut self, weights: &SharedWeights) -> Result<(), TrainError> {
        let group = |name: &str| {
            weights.groups.get(name).ok_or_else(|| TrainError::Federated { reason: format!("no `{name}` weights") })
        };
        let set_vars = |params: &BTreeMap<String, Var>, tensors: &BTreeMap<String, Tensor>, network: &str| {
            for (name, var) in params {
                let tensor = tensors
                    .get(name)
                    .ok_or_else(|| TrainError::MissingParameter { network: network.to_owned(), name: name.clone() })?;
                var.set(tensor)?;
            }
            Ok::<(), TrainError>(())
        };
        set_vars(&self.generator, group("G")?, "generator")?;
        set_vars(self.discriminator.params(), group("D")?, "discriminator")?;
        let ema = group("G_ema")?;
        for (name, average) in self.ema.tensors.iter_mut() {
            let tensor = ema.get(name).ok_or_else(|| TrainError::MissingParameter {
                network: "generator EMA".to_owned(),
                name: name.clone(),
            })?;
            *average = tensor.copy()?;
        }
        Ok(())
    }

    /// Real rows for step `step`: positions `step * B .. (step + 1) * B` of the concatenated epoch orders.
    fn real_indices(&mut self, len: usize) -> Vec<usize> {
        let batch = self.config.batch;
        let mut indices = Vec::with_capacity(batch);
        for i in 0..batch {
            let position = self.step * batch as u64 + i as u64;
            let epoch = position / len as u64;
            let within = (position % len as u64) as usize;
            if self.epoch_order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                let mut order: Vec<usize> = (0..len).collect();
                TrainRng::for_stream(self.config.seed, RngStream::EpochOrder, epoch).shuffle(&mut order);
                self.epoch_order = Some((epoch, order));
            }
            let row = self.epoch_order.as_ref().and_then(|(_, order)| order.get(within).copied()).unwrap_or(0);
            indices.push(row);
        }
        indices
    }

    /// `[B, latent_size]` standard normal latents.
    fn latents(&self, rng: &mut TrainRng) -> Result<Tensor, TrainError> {
        let count = self.config.batch * self.config.latent_size;
        let values: Vec<f32> = (0..count).map(|_| rng.normal() as f32).collect();
        Ok(Tensor::from_vec(values, (self.config.batch, self.config.latent_size), &self.device)?)
    }

    /// Times each phase of the following steps, synchronising the device between them (see [`StepProfile`]).
    pub fn enable_profile(&mut self) {
        self.profile = Some(StepProfile::new(&self.device));
    }

    pub fn profile(&self) -> Option<&StepProfile> {
        self.profile.as_ref()
    }

    fn mark(&mut self, phase: &'static str) -> Result<(), TrainError> {
        if let Some(profile) = self.profile.as_mut() {
            profile.mark(phase)?;
        }
        Ok(())
    }

    /// One training step (D update, G update, EMA update) on `data`.
    pub fn train_step(&mut self, data: &GanDataset) -> Result<StepLosses, TrainError> {
        self.check_dataset(data)?;
        if let Some(profile) = self.profile.as_mut() {
            profile.begin_step()?;
        }
        let started = std::time::Instant::now();
        if self.fade.is_some_and(|fade| fade.steps > 0 && fade.end_step() == self.step) {
            // The fade ends: the original resets both optimisers whenever ceil(lod) changes.
            self.reset_optimisers()?;
        }
        let mut rng = TrainRng::for_stream(self.config.seed, RngStream::Step, self.step);
        let real_rows = self.real_indices(data.len());
        let real = data.batch(&real_rows, &self.device)?;
        let latents = self.latents(&mut rng)?;
        let fake_rows: Vec<usize> = (0..self.config.batch).map(|_| rng.below(data.len())).collect();
        let (fake_labels, _) = data.labels_of(&fake_rows, &self.device)?;
        let augment = self.config.augment;
        self.mark("data (D step)")?;
        let discriminator = self.discriminator_step(&real, &latents, &fake_labels, augment.then_some(&mut rng))?;

        let latents = self.latents(&mut rng)?;
        let fake_rows: Vec<usize> = (0..self.config.batch).map(|_| rng.below(data.len())).collect();
        let (fake_labels, fake_masks) = data.labels_of(&fake_rows, &self.device)?;
        self.mark("data (G step)")?;
        let generator = self.generator_step(&latents, &fake_labels, &fake_masks, augment.then_some(&mut rng))?;

        self.ema.update(&self.generator, self.step)?;
        self.mark("EMA update")?;
        if let Some(profile) = self.profile.as_mut() {
            profile.end_step();
        }
        self.step += 1;
        self.train_seconds += started.elapsed().as_secs_f64();
        Ok(StepLosses { discriminator, generator })
    }

    /// Zero moments and step 0 for both optimisers (the original's `reset_optimizer_state`).
    fn reset_optimisers(&mut self) -> Result<(), TrainError> {
        self.adam_generator = AdamW::new(self.adam_generator.settings, &self.generator)?;
        self.adam_discriminator = AdamW::new(self.adam_discriminator.settings, self.discriminator.params())?;
        Ok(())
    }

    fn check_dataset(&self, data: &GanDataset) -> Result<(), TrainError> {
        if data.resolution_px() != self.config.resolution_px || data.label_names() != self.config.labels.as_slice() {
            return Err(TrainError::BadConfig {
                argument: "dataset".to_owned(),
                reason: format!(
                    "{} px with labels [{}], but the run trains {} px with labels [{}]",
                    data.resolution_px(),
                    data.label_names().join(", "),
                    self.config.resolution_px,
                    self.config.labels.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// One discriminator update on `real` and on fakes of the (frozen) generator from `latents` and `fake_labels`;
    /// with `augment`, DiffAugment draws from it.
    pub fn discriminator_step(
        &mut self,
        real: &RealBatch,
        latents: &Tensor,
        fake_labels: &Tensor,
        augment: Option<&mut TrainRng>,
    ) -> Result<DiscriminatorStepLosses, TrainError> {
        let alpha = self.fade_alpha();
        let fake = self.generate(GeneratorCopy::Training, latents, fake_labels)?.detach();
        self.mark("D step: G forward (fakes)")?;
        let real_images = fade_real_images(&real.images, alpha)?;
        let (real_in, fake_in) = match augment {
            Some(rng) => (diff_augment(&real_images, rng)?, diff_augment(&fake, rng)?),
            None => (real_images, fake),
        };
        let real_out = self.discriminator.forward_faded(&real_in, alpha, WeightUse::Trainable)?;
        let fake_out = self.discriminator.forward_faded(&fake_in, alpha, WeightUse::Trainable)?;
        let loss = discriminator_loss(
            &real_out.adversarial,
            &fake_out.adversarial,
            &real_out.label_logits,
            &real.labels,
            &real.masks,
            self.config.label_weight,
        )?;
        self.mark("D step: D forward, loss")?;
        let losses = DiscriminatorStepLosses {
            total: self.finite(&loss.total, "discriminator loss")?,
            adversarial: self.finite(&loss.adversarial, "discriminator adversarial loss")?,
            label: self.finite(&loss.label, "discriminator label loss")?,
            real_score: self.finite(&real_out.adversarial.mean_all()?, "real score")?,
            fake_score: self.finite(&fake_out.adversarial.mean_all()?, "fake score")?,
        };
        self.mark("D step: loss read-back")?;
        let grads = loss.total.backward()?;
        self.mark("D step: backward")?;
        self.adam_discriminator.update(self.discriminator.params(), &grads)?;
        self.mark("D step: AdamW")?;
        Ok(losses)
    }

    /// One generator update on fakes from `latents` and `fake_labels` (masks say which labels count in the label
    /// loss), scored by the frozen discriminator.
    pub fn generator_step(
        &mut self,
        latents: &Tensor,
        fake_labels: &Tensor,
        fake_masks: &Tensor,
        augment: Option<&mut TrainRng>,
    ) -> Result<GeneratorStepLosses, TrainError> {
        let alpha = self.fade_alpha();
        let tensors = self.training_generator_tensors(GeneratorCopy::Training, WeightUse::Trainable)?;
        let fake = generator_forward_faded(&self.architecture, &tensors, latents, fake_labels, alpha)?;
        let fake_in = match augment {
            Some(rng) => diff_augment(&fake, rng)?,
            None => fake,
        };
        let out = self.discriminator.forward_faded(&fake_in, alpha, WeightUse::Frozen)?;
        let loss =
            generator_loss(&out.adversarial, &out.label_logits, fake_labels, fake_masks, self.config.label_weight)?;
        self.mark("G step: G and D forward, loss")?;
        let losses = GeneratorStepLosses {
            total: self.finite(&loss.total, "generator loss")?,
            adversarial: self.finite(&loss.adversarial, "generator adversarial loss")?,
            label: self.finite(&loss.label, "generator label loss")?,
        };
        self.mark("G step: loss read-back")?;
        let grads = loss.total.backward()?;
        self.mark("G step: backward")?;
        self.adam_generator.update(&self.generator, &grads)?;
        self.mark("G step: AdamW")?;
        Ok(losses)
    }

    fn finite(&self, value: &Tensor, what: &str) -> Result<f32, TrainError> {
        let value = value.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(TrainError::NonFinite { step: self.step, what: what.to_owned() })
        }
    }

    /// Writes the full training state to `path` (atomically).
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), TrainError> {
        let tensors_of = |params: &BTreeMap<String, Var>| -> BTreeMap<String, Tensor> {
            params.iter().map(|(name, var)| (name.clone(), var.as_tensor().detach())).collect()
        };
        let mut groups = TensorGroups::new();
        groups.insert("G".to_owned(), tensors_of(&self.generator));
        groups.insert("D".to_owned(), tensors_of(self.discriminator.params()));
        groups.insert("G_ema".to_owned(), self.ema.tensors.clone());
        groups.insert("adam_G/m".to_owned(), self.adam_generator.first_moment.clone());
        groups.insert("adam_G/v".to_owned(), self.adam_generator.second_moment.clone());
        groups.insert("adam_D/m".to_owned(), self.adam_discriminator.first_moment.clone());
        groups.insert("adam_D/v".to_owned(), self.adam_discriminator.second_moment.clone());
        let state = CheckpointState {
            format: CHECKPOINT_FORMAT.to_owned(),
            config: self.config.clone(),
            step: self.step,
            adam_generator_step: self.adam_generator.step,
            adam_discriminator_step: self.adam_discriminator.step,
            train_seconds: self.train_seconds,
            next_step_rng: TrainRng::for_stream(self.config.seed, RngStream::Step, self.step),
            fade: self.fade,
        };
        save_checkpoint(path, &groups, &state)
    }

    /// Continues a run from a checkpoint written by [`Self::save_checkpoint`].
    pub fn resume(path: &Path, device: &Device) -> Result<Self, TrainError> {
        let (mut groups, state) = load_checkpoint(path, device)?;
        let fail = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
        state.config.validate()?;
        if state.next_step_rng != TrainRng::for_stream(state.config.seed, RngStream::Step, state.step) {
            return Err(fail("the stored random state does not match its seed and step".to_owned()));
        }
        let mut take = |group: &str| groups.remove(group).ok_or_else(|| fail(format!("no `{group}/` tensors")));
        let (g, d, g_ema) = (take("G")?, take("D")?, take("G_ema")?);
        let (g_m, g_v, d_m, d_v) = (take("adam_G/m")?, take("adam_G/v")?, take("adam_D/m")?, take("adam_D/v")?);
        let config = state.config.clone();
        let mut trainer = Self::new(config, device)?;
        if let Some(fade) = state.fade {
            trainer.enable_fade(fade)?;
        }
        let architecture = trainer.architecture.clone();
        let expect =
            |group: &str, tensors: &BTreeMap<String, Tensor>, specs: &[TensorSpec]| -> Result<(), TrainError> {
                for spec in specs {
                    let tensor =
                        tensors.get(&spec.name).ok_or_else(|| fail(format!("`{group}/{}` is missing", spec.name)))?;
                    if tensor.dims() != spec.shape.as_slice() {
                        return Err(fail(format!(
                            "`{group}/{}` has shape {:?}, expected {:?}",
                            spec.name,
                            tensor.dims(),
                            spec.shape
                        )));
                    }
                }
                Ok(())
            };
        let mut g_specs = trainer.generator_specs.clone();
        g_specs.extend(trainer.fade_specs.iter().cloned());
        let mut d_specs = discriminator_specs(&architecture);
        let d_fade = if state.fade.is_some() { Fade::On } else { Fade::Off };
        if d_fade == Fade::On {
            d_specs.extend(discriminator_fade_specs(&architecture));
        }
        for (group, tensors, specs) in [
            ("G", &g, &g_specs),
            ("G_ema", &g_ema, &g_specs),
            ("adam_G/m", &g_m, &g_specs),
            ("adam_G/v", &g_v, &g_specs),
            ("D", &d, &d_specs),
            ("adam_D/m", &d_m, &d_specs),
            ("adam_D/v", &d_v, &d_specs),
        ] {
            expect(group, tensors, specs)?;
        }
        for (name, var) in &trainer.generator {
            if let Some(tensor) = g.get(name) {
                var.set(tensor)?;
            }
        }
        trainer.discriminator = Discriminator::from_params_with(&architecture, d, d_fade)?;
        trainer.ema.tensors = g_ema;
        trainer.adam_generator.first_moment = g_m;
        trainer.adam_generator.second_moment = g_v;
        trainer.adam_generator.step = state.adam_generator_step;
        trainer.adam_discriminator.first_moment = d_m;
        trainer.adam_discriminator.second_moment = d_v;
        trainer.adam_discriminator.step = state.adam_discriminator_step;
        trainer.step = state.step;
        trainer.train_seconds = state.train_seconds;
        Ok(trainer)
    }

    /// Adds the generator's `ToRGB_lod1` (zero until filled) and the fade schedule.
    fn enable_fade(&mut self, fade: FadeSchedule) -> Result<(), TrainError> {
        self.fade_specs = generator_fade_specs(&self.architecture);
        for spec in &self.fade_specs {
            let zeros = Tensor::zeros(spec.shape.clone(), DType::F32, &self.device)?;
            self.generator.insert(spec.name.clone(), Var::from_tensor(&zeros)?);
        }
        self.fade = Some(fade);
        Ok(())
    }

    /// A run at `config` (twice this run's resolution, the same feature maps, latent size, labels and seed; batch,
    /// learning rate and augmentation may change) grown from this one, fading the new resolution in over
    /// `fade_steps` steps (see [`crate::train::growth`]). Every tensor of G, its EMA and D is carried over (the
    /// output/input layer as lod 1); the new block and layers start as a fresh run at `config` would start them. The
    /// step count continues (so data order and latents go on as they would); both optimisers restart from zero
    /// moments and step 0, as the original's `reset_opt_for_new_lod` does at a new level of detail.
    pub fn grow(self, config: GanTrainConfig, fade_steps: u64) -> Result<Self, TrainError> {
        let bad = |argument: &str, reason: String| TrainError::BadConfig { argument: argument.to_owned(), reason };
        let old = &self.config;
        let alpha = self.fade_alpha();
        if alpha < 1.0 {
            return Err(bad(
                "grow-from",
                format!(
                    "the checkpoint (step {}) is still fading in its {} px resolution (alpha {alpha:.3}); train it \
                     to step {} first",
                    self.step,
                    old.resolution_px,
                    self.fade.map_or(self.step, |fade| fade.end_step())
                ),
            ));
        }
        if config.resolution_px != 2 * old.resolution_px {
            return Err(bad(
                "resolution",
                format!(
                    "growing doubles the resolution: the checkpoint trains {} px, so the grown run trains {} px, not {} px",
                    old.resolution_px,
                    2 * old.resolution_px,
                    config.resolution_px
                ),
            ));
        }
        let kept = [
            ("fmap-base", format!("{}", config.fmap_base), format!("{}", old.fmap_base)),
            ("fmap-max", config.fmap_max.to_string(), old.fmap_max.to_string()),
            ("latent-size", config.latent_size.to_string(), old.latent_size.to_string()),
            ("labels", config.labels.join(","), old.labels.join(",")),
            ("seed", config.seed.to_string(), old.seed.to_string()),
        ];
        for (argument, given, stored) in kept {
            if given != stored {
                return Err(bad(
                    argument,
                    format!("{given} differs from the checkpoint's {stored}; a grown run keeps it"),
                ));
            }
        }
        if fade_steps == 0 {
            return Err(bad("fade-steps", "must be at least 1 step".to_owned()));
        }
        let tensors_of = |params: &BTreeMap<String, Var>| -> Result<BTreeMap<String, Tensor>, TrainError> {
            params.iter().map(|(name, var)| Ok((name.clone(), var.as_tensor().detach().copy()?))).collect()
        };
        let mut grown = Self::new(config, &self.device)?;
        grown.enable_fade(FadeSchedule { start_step: self.step, steps: fade_steps })?;
        let generator = carry_over("generator", &tensors_of(&self.generator)?, tensors_of(&grown.generator)?)?;
        for (name, var) in &grown.generator {
            let tensor = generator
                .get(name)
                .ok_or_else(|| TrainError::MissingParameter { network: "generator".to_owned(), name: name.clone() })?;
            var.set(tensor)?;
        }
        let fresh_ema = Ema::new(grown.config.ema_beta, &grown.generator)?;
        grown.ema.tensors = carry_over("generator EMA", &self.ema.tensors, fresh_ema.tensors)?;
        let mut fresh_d = tensors_of(grown.discriminator.params())?;
        for spec in discriminator_fade_specs(&grown.architecture) {
            fresh_d.insert(spec.name, Tensor::zeros(spec.shape, DType::F32, &self.device)?);
        }
        let discriminator = carry_over("discriminator", &tensors_of(self.discriminator.params())?, fresh_d)?;
        grown.discriminator = Discriminator::from_params_with(&grown.architecture, discriminator, Fade::On)?;
        grown.reset_optimisers()?;
        grown.step = self.step;
        grown.train_seconds = self.train_seconds;
        Ok(grown)
    }
}
