//! Training a CycleGAN (junyanz's `cycle_gan_model.py`) between two image domains: generators `G_A` (A to B) and
//! `G_B` (B to A), the ResnetGenerator of [`crate::models::cyclegan`], and PatchGAN discriminators `D_A` (judges
//! domain B: real B against `G_A`'s fakes) and `D_B` (judges domain A).
//!
//! One step, as `optimize_parameters`: the G update (D frozen) on LSGAN losses `MSE(D_A(G_A(a)), 1)` and
//! `MSE(D_B(G_B(b)), 1)`, cycle losses `lambda_A * |G_B(G_A(a)) - a|` and `lambda_B * |G_A(G_B(b)) - b|`, identity
//! losses `lambda_idt * lambda_B * |G_A(b) - b|` and `lambda_idt * lambda_A * |G_B(a) - a|`; then the D update on
//! `0.5 * (MSE(D(real), 1) + MSE(D(fake), 0))`, the fakes (those of this step, made before the G update) passed
//! through a 50-image pool per direction. One Adam (lr 0.0002, beta1 0.5, beta2 0.999) for both generators and one for
//! both discriminators; optional linear decay of the learning rate to 0 over the last steps. Weights N(0, 0.02),
//! biases 0 (`init_weights('normal', 0.02)`).
//!
//! Randomness of step `t` (the pools) comes from `TrainRng::for_stream(seed, Step, t)` and the data order of domain
//! `d` in epoch `e` from `for_stream(seed, EpochOrder, 2e + d)`; the checkpoint holds the pools' images, so a resumed
//! run continues bit for bit (on the same device).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::models::card::{ModelCard, Provenance};
use crate::models::cyclegan::{CycleGanConfig, CycleGanGenerator, Direction};
use crate::models::safetensors_file::write_safetensors;
use crate::models::weights::{self, Weights};
use crate::train::adam::{AdamSettings, AdamW};
use crate::train::cyclegan_train::cyclegan_generator_forward;
use crate::train::domain_images::DomainImages;
use crate::train::error::TrainError;
use crate::train::patch_discriminator::PatchDiscriminatorSpec;
use crate::train::rng::{RngStream, TrainRng};

/// The safetensors metadata key holding [`CycleGanCheckpointState`] as JSON.
pub const CYCLEGAN_STATE_METADATA_KEY: &str = "thorax.cyclegan_train_state";
/// The format tag of this checkpoint layout.
pub const CYCLEGAN_CHECKPOINT_FORMAT: &str = "thorax-cyclegan-checkpoint-1";
/// Images per inference batch when measuring the cycle error.
const EVAL_BATCH: usize = 8;

/// Linear decay of the learning rate, junyanz's `linear` policy counted in steps: the factor is
/// `1 - max(0, t + 1 - start_step) / (end_step - start_step + 1)` at (0-based) step `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearDecay {
    pub start_step: u64,
    pub end_step: u64,
}

/// Everything that defines a CycleGAN training run; stored in checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CycleGanTrainConfig {
    pub resolution_px: usize,
    /// Generator width (`ngf`) and residual blocks (`n_blocks`).
    pub ngf: usize,
    pub n_blocks: usize,
    /// Discriminator width (`ndf`) and stride-2 layers (`n_layers_D`, 3 for the 70x70 PatchGAN).
    pub ndf: usize,
    pub n_layers_d: usize,
    /// Names of domain A and domain B.
    pub domains: [String; 2],
    pub batch: usize,
    /// The same settings for the generators' and the discriminators' optimisers.
    pub adam: AdamSettings,
    pub lambda_a: f64,
    pub lambda_b: f64,
    /// Identity loss weight, relative to the cycle weights (junyanz `lambda_identity`).
    pub lambda_identity: f64,
    /// Fakes kept per direction for the discriminator updates (0: use only the current fakes).
    pub pool_size: usize,
    pub decay: Option<LinearDecay>,
    pub seed: u64,
    /// Images per domain held out of training (the split is drawn from `seed`); a resumed run must keep them out.
    #[serde(default = "held_out_before_it_was_stored")]
    pub held_out_per_domain: usize,
    /// Images per domain before the hold-out split, recorded by the first run so a resume on other folders fails
    /// instead of silently training on a different split (absent in checkpoints written before it was recorded).
    #[serde(default)]
    pub domain_image_counts: Option<[usize; 2]>,
}

/// The held-out count of checkpoints written before it was stored: the then default of `--val-count`.
fn held_out_before_it_was_stored() -> usize {
    16
}

impl CycleGanTrainConfig {
    /// junyanz's defaults at `resolution_px` with the given widths: batch 1, Adam 0.0002 / 0.5 / 0.999, lambdas 10,
    /// identity 0.5, pool 50, 3-layer PatchGAN, no decay.
    pub fn new(resolution_px: usize, ngf: usize, ndf: usize, n_blocks: usize, domains: [String; 2]) -> Self {
        Self {
            resolution_px,
            ngf,
            n_blocks,
            ndf,
            n_layers_d: 3,
            domains,
            batch: 1,
            adam: AdamSettings { lr: 0.0002, beta1: 0.5, beta2: 0.999, epsilon: 1e-8, weight_decay: 0.0 },
            lambda_a: 10.0,
            lambda_b: 10.0,
            lambda_identity: 0.5,
            pool_size: 50,
            decay: None,
            seed: 2020,
            held_out_per_domain: held_out_before_it_was_stored(),
            domain_image_counts: None,
        }
    }

    /// The generator of `direction`.
    pub fn generator_config(&self, direction: Direction) -> CycleGanConfig {
        CycleGanConfig {
            ngf: self.ngf,
            n_blocks: self.n_blocks,
            input_nc: 1,
            output_nc: 1,
            use_dropout: false,
            direction,
        }
    }

    /// The discriminators' architecture.
    pub fn discriminator_spec(&self) -> PatchDiscriminatorSpec {
        PatchDiscriminatorSpec { input_nc: 1, ndf: self.ndf, n_layers: self.n_layers_d }
    }

    /// The learning rate of (0-based) step `step`.
    pub fn lr_at(&self, step: u64) -> f64 {
        match self.decay {
            Some(LinearDecay { start_step, end_step }) if end_step > start_step => {
                let past = (step + 1).saturating_sub(start_step) as f64;
                self.adam.lr * (1.0 - past / (end_step - start_step + 1) as f64).max(0.0)
            }
            _ => self.adam.lr,
        }
    }

    /// Checks every setting, naming the first bad one.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |argument: &str, reason: String| Err(TrainError::BadConfig { argument: argument.to_owned(), reason });
        let min_side = self.discriminator_spec().min_side_px().max(8);
        if !self.resolution_px.is_power_of_two() || !(min_side..=1024).contains(&self.resolution_px) {
            return bad(
                "resolution",
                format!("{} px is not a power of two from {min_side} to 1024", self.resolution_px),
            );
        }
        for (argument, value) in [("ngf", self.ngf), ("ndf", self.ndf), ("batch", self.batch)] {
            if value == 0 {
                return bad(argument, "must be at least 1".to_owned());
            }
        }
        if !(1..=5).contains(&self.n_layers_d) {
            return bad("n-layers-d", format!("{} is not from 1 to 5", self.n_layers_d));
        }
        if self.n_blocks > 64 {
            return bad("blocks", format!("{} residual blocks; at most 64", self.n_blocks));
        }
        if self.domains.iter().any(|d| d.trim().is_empty()) || self.domains[0] == self.domains[1] {
            return bad("domain names", format!("{:?} must be two different non-empty names", self.domains));
        }
        let adam = &self.adam;
        if !(adam.lr.is_finite() && adam.lr > 0.0) {
            return bad("lr", format!("{} is not a positive number", adam.lr));
        }
        if !(0.0..1.0).contains(&adam.beta1) || !(0.0..1.0).contains(&adam.beta2) {
            return bad("adam betas", format!("{} and {} must lie in [0, 1)", adam.beta1, adam.beta2));
        }
        for (argument, value) in
            [("lambda-a", self.lambda_a), ("lambda-b", self.lambda_b), ("lambda-identity", self.lambda_identity)]
        {
            if !(value.is_finite() && value >= 0.0) {
                return bad(argument, format!("{value} is not a non-negative number"));
            }
        }
        if self.pool_size > 10_000 {
            return bad("pool-size", format!("{} images; at most 10000", self.pool_size));
        }
        if let Some(decay) = self.decay
            && decay.end_step < decay.start_step
        {
            return bad("decay", format!("ends at step {} before it starts at {}", decay.end_step, decay.start_step));
        }
        Ok(())
    }
}

/// Losses of one training step (junyanz's names), the weighted values that were differentiated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CycleGanStepLosses {
    pub d_a: f32,
    pub d_b: f32,
    pub g_a: f32,
    pub g_b: f32,
    pub cycle_a: f32,
    pub cycle_b: f32,
    pub idt_a: f32,
    pub idt_b: f32,
    /// The sum of the generator terms.
    pub g_total: f32,
    /// The learning rate of this step.
    pub lr: f64,
}

/// Mean absolute cycle-reconstruction error in [-1, 1] units on held-out images, with the inference networks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CycleErrors {
    /// `|G_B(G_A(a)) - a|` averaged over the pixels of every held-out A image.
    pub a_to_b_to_a: f64,
    /// `|G_A(G_B(b)) - b|` over the held-out B images.
    pub b_to_a_to_b: f64,
    pub images_a: usize,
    pub images_b: usize,
}

/// junyanz's `ImagePool`: once full, each new fake is, with probability 1/2, swapped for a random stored one.
#[derive(Clone, Debug, Default)]
struct ImagePool {
    capacity: usize,
    images: Vec<Tensor>,
}

impl ImagePool {
    fn query(&mut self, fakes: &Tensor, rng: &mut TrainRng) -> candle_core::Result<Tensor> {
        if self.capacity == 0 {
            return Ok(fakes.clone());
        }
        let mut out = Vec::with_capacity(fakes.dim(0)?);
        for i in 0..fakes.dim(0)? {
            let image = fakes.narrow(0, i, 1)?;
            if self.images.len() < self.capacity {
                self.images.push(image.clone());
                out.push(image);
            } else if rng.next_f64() > 0.5 {
                let slot = rng.below(self.images.len());
                match self.images.get_mut(slot) {
                    Some(stored) => out.push(std::mem::replace(stored, image)),
                    None => out.push(image),
                }
            } else {
                out.push(image);
            }
        }
        Tensor::cat(&out, 0)
    }

    fn as_tensor(&self) -> candle_core::Result<Option<Tensor>> {
        if self.images.is_empty() { Ok(None) } else { Tensor::cat(&self.images, 0).map(Some) }
    }
}

/// Everything besides tensors that a resumed run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CycleGanCheckpointState {
    pub format: String,
    pub config: CycleGanTrainConfig,
    pub step: u64,
    pub adam_generator_step: u64,
    pub adam_discriminator_step: u64,
    pub train_seconds: f64,
    /// The generator state the next step starts from (derived from the seed and step; stored to check it).
    pub next_step_rng: TrainRng,
}

/// Whether a network's parameters take part in the gradient.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Trainable,
    Frozen,
}

/// The training state: both generators, both discriminators, both optimisers, the fake pools and the step count.
pub struct CycleGanTrainer {
    config: CycleGanTrainConfig,
    device: Device,
    /// `G_A.<state_dict name>` and `G_B.<...>`.
    generators: BTreeMap<String, Var>,
    /// `D_A.<state_dict name>` and `D_B.<...>`.
    discriminators: BTreeMap<String, Var>,
    adam_generators: AdamW,
    adam_discriminators: AdamW,
    /// Fakes of domain A (from `G_B`), for `D_B`.
    pool_a: ImagePool,
    /// Fakes of domain B (from `G_A`), for `D_A`.
    pool_b: ImagePool,
    step: u64,
    train_seconds: f64,
    /// Per domain, the data order of one epoch (derived from the seed, never saved).
    epoch_orders: [Option<(u64, Vec<usize>)>; 2],
}

/// N(0, 0.02) weights and zero biases for `shapes`, under `prefix.`.
fn init_params(
    prefix: &str,
    shapes: Vec<(String, Vec<usize>)>,
    rng: &mut TrainRng,
    device: &Device,
    into: &mut BTreeMap<String, Var>,
) -> Result<(), TrainError> {
    for (name, shape) in shapes {
        let count: usize = shape.iter().product();
        let values: Vec<f32> = if name.ends_with(".bias") {
            vec![0.0; count]
        } else {
            (0..count).map(|_| (rng.normal() * 0.02) as f32).collect()
        };
        into.insert(format!("{prefix}.{name}"), Var::from_tensor(&Tensor::from_vec(values, shape, device)?)?);
    }
    Ok(())
}

/// `mean((x - target)^2)`.
fn mse_to(x: &Tensor, target: f64) -> candle_core::Result<Tensor> {
    (x - target)?.sqr()?.mean_all()
}

/// `mean(|a - b|)`.
fn l1(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    (a - b)?.abs()?.mean_all()
}

impl CycleGanTrainer {
    /// A fresh run.
    pub fn new(config: CycleGanTrainConfig, device: &Device) -> Result<Self, TrainError> {
        config.validate()?;
        let mut generators = BTreeMap::new();
        let mut discriminators = BTreeMap::new();
        let g_shapes = config.generator_config(Direction::AToB).tensor_shapes();
        let d_shapes = config.discriminator_spec().tensor_shapes();
        for (index, prefix) in ["G_A", "G_B"].iter().enumerate() {
            let mut rng = TrainRng::for_stream(config.seed, RngStream::Init, index as u64);
            init_params(prefix, g_shapes.clone(), &mut rng, device, &mut generators)?;
        }
        for (index, prefix) in ["D_A", "D_B"].iter().enumerate() {
            let mut rng = TrainRng::for_stream(config.seed, RngStream::Init, 2 + index as u64);
            init_params(prefix, d_shapes.clone(), &mut rng, device, &mut discriminators)?;
        }
        let adam_generators = AdamW::new(config.adam, &generators)?;
        let adam_discriminators = AdamW::new(config.adam, &discriminators)?;
        let pool = ImagePool { capacity: config.pool_size, images: Vec::new() };
        Ok(Self {
            config,
            device: device.clone(),
            generators,
            discriminators,
            adam_generators,
            adam_discriminators,
            pool_a: pool.clone(),
            pool_b: pool,
            step: 0,
            train_seconds: 0.0,
            epoch_orders: [None, None],
        })
    }

    /// The run's configuration.
    pub fn config(&self) -> &CycleGanTrainConfig {
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

    /// Changes the base learning rate of both optimisers (e.g. on resume).
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<(), TrainError> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(TrainError::BadConfig { argument: "lr".to_owned(), reason: format!("{lr} is not positive") });
        }
        self.config.adam.lr = lr;
        Ok(())
    }

    /// Sets (or clears) the linear decay, e.g. when a resumed run goes on to a new step count.
    pub fn set_decay(&mut self, decay: Option<LinearDecay>) -> Result<(), TrainError> {
        let mut config = self.config.clone();
        config.decay = decay;
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Records how many images each domain has before the hold-out split, or, for a run that recorded them, checks
    /// that the domains still have as many (other folders would change the split and the data order).
    pub fn check_domain_image_counts(&mut self, counts: [usize; 2]) -> Result<(), TrainError> {
        match self.config.domain_image_counts {
            None => {
                self.config.domain_image_counts = Some(counts);
                Ok(())
            }
            Some(recorded) if recorded == counts => Ok(()),
            Some(recorded) => Err(TrainError::BadConfig {
                argument: "domain folders".to_owned(),
                reason: format!(
                    "the domains have {} and {} images, the run being resumed had {} and {}; give the same folders \
                     and prefixes",
                    counts[0], counts[1], recorded[0], recorded[1]
                ),
            }),
        }
    }

    /// The tensors of network `prefix` (`G_A`, `G_B`, `D_A`, `D_B`) under their state_dict names.
    fn network(&self, prefix: &str, usage: Use) -> HashMap<String, Tensor> {
        let params = if prefix.starts_with('G') { &self.generators } else { &self.discriminators };
        let dotted = format!("{prefix}.");
        params
            .iter()
            .filter_map(|(name, var)| {
                let local = name.strip_prefix(&dotted)?;
                let tensor = match usage {
                    Use::Trainable => var.as_tensor().clone(),
                    Use::Frozen => var.as_tensor().detach(),
                };
                Some((local.to_owned(), tensor))
            })
            .collect()
    }

    /// The weights of the generator mapping `direction` (the saved file's tensors, card as given).
    pub fn generator_weights(&self, direction: Direction, card: ModelCard) -> Weights {
        let prefix = generator_prefix(direction);
        Weights { card, tensors: self.network(prefix, Use::Frozen) }
    }

    /// A card for the generator of `direction` (domains from the configuration, `untrained: false`).
    pub fn generator_card(&self, direction: Direction, name: &str, provenance: Provenance) -> ModelCard {
        let [a, b] = &self.config.domains;
        self.config.generator_config(direction).card(name, [a.as_str(), b.as_str()], provenance)
    }

    /// The inference network of `direction` built from the current weights.
    pub fn generator_network(&self, direction: Direction) -> Result<CycleGanGenerator, TrainError> {
        let card = self.generator_card(direction, "training generator", Provenance::default());
        Ok(CycleGanGenerator::from_weights(self.generator_weights(direction, card))?)
    }

    /// Writes the generator of `direction` with `card` (a file the CycleGAN loader reads), as `dtype`.
    pub fn save_generator(
        &self,
        path: &Path,
        direction: Direction,
        card: &ModelCard,
        dtype: DType,
    ) -> Result<(), TrainError> {
        let tensors = self
            .generator_weights(direction, card.clone())
            .tensors
            .into_iter()
            .map(|(name, tensor)| Ok((name, tensor.to_dtype(dtype)?)))
            .collect::<Result<HashMap<_, _>, candle_core::Error>>()?;
        weights::save(path, &tensors, card)?;
        Ok(())
    }

    /// Rows of domain `domain` (0: A, 1: B, `len` images) for this step: consecutive places of the epoch orders.
    fn rows(&mut self, domain: usize, len: usize) -> Vec<usize> {
        let batch = self.config.batch;
        let mut rows = Vec::with_capacity(batch);
        for i in 0..batch {
            let position = self.step * batch as u64 + i as u64;
            let epoch = position / len.max(1) as u64;
            let within = (position % len.max(1) as u64) as usize;
            let slot = &mut self.epoch_orders[domain.min(1)];
            if slot.as_ref().is_none_or(|(e, _)| *e != epoch) {
                let mut order: Vec<usize> = (0..len).collect();
                TrainRng::for_stream(self.config.seed, RngStream::EpochOrder, 2 * epoch + domain as u64)
                    .shuffle(&mut order);
                *slot = Some((epoch, order));
            }
            rows.push(slot.as_ref().and_then(|(_, order)| order.get(within).copied()).unwrap_or(0));
        }
        rows
    }

    fn check_domain(&self, data: &DomainImages, which: &str) -> Result<(), TrainError> {
        if data.is_empty() || data.side_px() != self.config.resolution_px {
            return Err(TrainError::BadConfig {
                argument: format!("domain {which} images"),
                reason: format!(
                    "{} images at {} px, but the run trains at {} px",
                    data.len(),
                    data.side_px(),
                    self.config.resolution_px
                ),
            });
        }
        Ok(())
    }

    fn finite(&self, value: &Tensor, what: &str) -> Result<f32, TrainError> {
        let value = value.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(TrainError::NonFinite { step: self.step, what: what.to_owned() })
        }
    }

    /// One training step (G update, then D update) on a batch of each domain.
    pub fn train_step(
        &mut self,
        data_a: &DomainImages,
        data_b: &DomainImages,
    ) -> Result<CycleGanStepLosses, TrainError> {
        self.check_domain(data_a, "A")?;
        self.check_domain(data_b, "B")?;
        let started = std::time::Instant::now();
        let mut rng = TrainRng::for_stream(self.config.seed, RngStream::Step, self.step);
        let rows_a = self.rows(0, data_a.len());
        let rows_b = self.rows(1, data_b.len());
        let real_a = data_a.batch(&rows_a, &self.device)?;
        let real_b = data_b.batch(&rows_b, &self.device)?;
        let lr = self.config.lr_at(self.step);
        self.adam_generators.settings.lr = lr;
        self.adam_discriminators.settings.lr = lr;
        let config = self.config.clone();
        let (config_a, config_b) = (config.generator_config(Direction::AToB), config.generator_config(Direction::BToA));
        let spec = config.discriminator_spec();

        // Generators, with the discriminators frozen.
        let (g_a, g_b) = (self.network("G_A", Use::Trainable), self.network("G_B", Use::Trainable));
        let (d_a, d_b) = (self.network("D_A", Use::Frozen), self.network("D_B", Use::Frozen));
        let fake_b = cyclegan_generator_forward(&config_a, &g_a, &real_a)?;
        let rec_a = cyclegan_generator_forward(&config_b, &g_b, &fake_b)?;
        let fake_a = cyclegan_generator_forward(&config_b, &g_b, &real_b)?;
        let rec_b = cyclegan_generator_forward(&config_a, &g_a, &fake_a)?;
        let loss_g_a = mse_to(&spec.forward(&d_a, &fake_b)?, 1.0)?;
        let loss_g_b = mse_to(&spec.forward(&d_b, &fake_a)?, 1.0)?;
        let cycle_a = (l1(&rec_a, &real_a)? * config.lambda_a)?;
        let cycle_b = (l1(&rec_b, &real_b)? * config.lambda_b)?;
        let mut total = (((&loss_g_a + &loss_g_b)? + &cycle_a)? + &cycle_b)?;
        let (mut idt_a_value, mut idt_b_value) = (0.0, 0.0);
        if config.lambda_identity > 0.0 {
            let idt_a = cyclegan_generator_forward(&config_a, &g_a, &real_b)?;
            let idt_b = cyclegan_generator_forward(&config_b, &g_b, &real_a)?;
            let loss_idt_a = (l1(&idt_a, &real_b)? * (config.lambda_b * config.lambda_identity))?;
            let loss_idt_b = (l1(&idt_b, &real_a)? * (config.lambda_a * config.lambda_identity))?;
            idt_a_value = self.finite(&loss_idt_a, "identity loss A")?;
            idt_b_value = self.finite(&loss_idt_b, "identity loss B")?;
            total = ((total + loss_idt_a)? + loss_idt_b)?;
        }
        let g_total = self.finite(&total, "generator loss")?;
        let grads = total.backward()?;
        self.adam_generators.update(&self.generators, &grads)?;
        drop(grads);

        // Discriminators, on pooled fakes made before the generator update.
        let pooled_b = self.pool_b.query(&fake_b.detach(), &mut rng)?;
        let pooled_a = self.pool_a.query(&fake_a.detach(), &mut rng)?;
        let (d_a, d_b) = (self.network("D_A", Use::Trainable), self.network("D_B", Use::Trainable));
        let loss_d_a =
            ((mse_to(&spec.forward(&d_a, &real_b)?, 1.0)? + mse_to(&spec.forward(&d_a, &pooled_b)?, 0.0)?)? * 0.5)?;
        let loss_d_b =
            ((mse_to(&spec.forward(&d_b, &real_a)?, 1.0)? + mse_to(&spec.forward(&d_b, &pooled_a)?, 0.0)?)? * 0.5)?;
        let losses = CycleGanStepLosses {
            d_a: self.finite(&loss_d_a, "discriminator A loss")?,
            d_b: self.finite(&loss_d_b, "discriminator B loss")?,
            g_a: self.finite(&loss_g_a, "generator A adversarial loss")?,
            g_b: self.finite(&loss_g_b, "generator B adversarial loss")?,
            cycle_a: self.finite(&cycle_a, "cycle loss A")?,
            cycle_b: self.finite(&cycle_b, "cycle loss B")?,
            idt_a: idt_a_value,
            idt_b: idt_b_value,
            g_total,
            lr,
        };
        let grads = (loss_d_a + loss_d_b)?.backward()?;
        self.adam_discriminators.update(&self.discriminators, &grads)?;

        self.step += 1;
        self.train_seconds += started.elapsed().as_secs_f64();
        Ok(losses)
    }

    /// The cycle-reconstruction errors on held-out images with the inference networks (`None` for an empty set).
    pub fn cycle_errors(
        &self,
        validation_a: &DomainImages,
        validation_b: &DomainImages,
    ) -> Result<Option<CycleErrors>, TrainError> {
        if validation_a.is_empty() || validation_b.is_empty() {
            return Ok(None);
        }
        let g_a = self.generator_network(Direction::AToB)?;
        let g_b = self.generator_network(Direction::BToA)?;
        let mean_error = |data: &DomainImages, first: &CycleGanGenerator, second: &CycleGanGenerator| {
            let mut total = 0.0f64;
            let mut values = 0usize;
            for start in (0..data.len()).step_by(EVAL_BATCH) {
                let rows: Vec<usize> = (start..(start + EVAL_BATCH).min(data.len())).collect();
                let real = data.batch(&rows, &self.device)?;
                let reconstructed = second.forward(&first.forward(&real)?)?;
                let error = (reconstructed - &real)?.abs()?.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
                total += error;
                values += real.elem_count();
            }
            Ok::<f64, TrainError>(total / values.max(1) as f64)
        };
        Ok(Some(CycleErrors {
            a_to_b_to_a: mean_error(validation_a, &g_a, &g_b)?,
            b_to_a_to_b: mean_error(validation_b, &g_b, &g_a)?,
            images_a: validation_a.len(),
            images_b: validation_b.len(),
        }))
    }

    /// Writes the full training state to `path` (atomically: written beside it, then renamed).
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), TrainError> {
        let fail = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
        let mut flat: Vec<(String, Tensor)> = Vec::new();
        let mut push = |group: &str, name: &str, tensor: &Tensor| -> Result<(), TrainError> {
            flat.push((format!("{group}/{name}"), tensor.to_dtype(DType::F32)?.to_device(&Device::Cpu)?));
            Ok(())
        };
        for (name, var) in &self.generators {
            push("G", name, var.as_tensor())?;
        }
        for (name, var) in &self.discriminators {
            push("D", name, var.as_tensor())?;
        }
        for (group, adam) in [("adam_G", &self.adam_generators), ("adam_D", &self.adam_discriminators)] {
            for (name, tensor) in &adam.first_moment {
                push(&format!("{group}/m"), name, tensor)?;
            }
            for (name, tensor) in &adam.second_moment {
                push(&format!("{group}/v"), name, tensor)?;
            }
        }
        for (name, pool) in [("A", &self.pool_a), ("B", &self.pool_b)] {
            if let Some(images) = pool.as_tensor()? {
                push("pool", name, &images)?;
            }
        }
        let state = CycleGanCheckpointState {
            format: CYCLEGAN_CHECKPOINT_FORMAT.to_owned(),
            config: self.config.clone(),
            step: self.step,
            adam_generator_step: self.adam_generators.step,
            adam_discriminator_step: self.adam_discriminators.step,
            train_seconds: self.train_seconds,
            next_step_rng: TrainRng::for_stream(self.config.seed, RngStream::Step, self.step),
        };
        let json = serde_json::to_string(&state).map_err(|e| fail(format!("cannot encode the state: {e}")))?;
        let metadata = HashMap::from([(CYCLEGAN_STATE_METADATA_KEY.to_owned(), json)]);
        let refs: Vec<(&str, &Tensor)> = flat.iter().map(|(k, v)| (k.as_str(), v)).collect();
        write_safetensors(&refs, metadata, path).map_err(fail)
    }

    /// Reads only the state of a checkpoint written by [`Self::save_checkpoint`].
    pub fn read_checkpoint_state(path: &Path) -> Result<CycleGanCheckpointState, TrainError> {
        let bytes = std::fs::read(path)
            .map_err(|e| TrainError::Checkpoint { path: path.to_path_buf(), reason: e.to_string() })?;
        Self::state_of(path, &bytes)
    }

    fn state_of(path: &Path, bytes: &[u8]) -> Result<CycleGanCheckpointState, TrainError> {
        let fail = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
        let (_, metadata) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| fail(format!("not a safetensors file: {e}")))?;
        let json = metadata.metadata().as_ref().and_then(|m| m.get(CYCLEGAN_STATE_METADATA_KEY)).ok_or_else(|| {
            fail(format!("no `{CYCLEGAN_STATE_METADATA_KEY}` metadata: not a thorax CycleGAN training checkpoint"))
        })?;
        let state: CycleGanCheckpointState =
            serde_json::from_str(json).map_err(|e| fail(format!("the training state is not valid: {e}")))?;
        if state.format != CYCLEGAN_CHECKPOINT_FORMAT {
            return Err(fail(format!("format `{}`, expected `{CYCLEGAN_CHECKPOINT_FORMAT}`", state.format)));
        }
        Ok(state)
    }

    /// Continues a run from a checkpoint written by [`Self::save_checkpoint`].
    pub fn resume(path: &Path, device: &Device) -> Result<Self, TrainError> {
        let fail = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
        let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let state = Self::state_of(path, &bytes)?;
        if state.next_step_rng != TrainRng::for_stream(state.config.seed, RngStream::Step, state.step) {
            return Err(fail("the stored random state does not match its seed and step".to_owned()));
        }
        let mut tensors = candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| fail(e.to_string()))?;
        let mut trainer = Self::new(state.config.clone(), device)?;
        let mut take = |key: String, like: &Tensor| -> Result<Tensor, TrainError> {
            let tensor = tensors.remove(&key).ok_or_else(|| fail(format!("`{key}` is missing")))?;
            if tensor.dims() != like.dims() {
                return Err(fail(format!("`{key}` has shape {:?}, expected {:?}", tensor.dims(), like.dims())));
            }
            Ok(tensor)
        };
        for (group, params) in [("G", &trainer.generators), ("D", &trainer.discriminators)] {
            for (name, var) in params {
                var.set(&take(format!("{group}/{name}"), var.as_tensor())?)?;
            }
        }
        for (group, adam) in [("adam_G", &mut trainer.adam_generators), ("adam_D", &mut trainer.adam_discriminators)] {
            for (name, tensor) in adam.first_moment.iter_mut() {
                *tensor = take(format!("{group}/m/{name}"), tensor)?;
            }
            for (name, tensor) in adam.second_moment.iter_mut() {
                *tensor = take(format!("{group}/v/{name}"), tensor)?;
            }
        }
        for (name, pool) in [("A", &mut trainer.pool_a), ("B", &mut trainer.pool_b)] {
            if let Some(images) = tensors.remove(&format!("pool/{name}")) {
                let (count, channels, height, width) = images.dims4()?;
                let side = trainer.config.resolution_px;
                if count > pool.capacity || (channels, height, width) != (1, side, side) {
                    return Err(fail(format!("`pool/{name}` has shape {:?}", images.dims())));
                }
                pool.images = (0..count).map(|i| images.narrow(0, i, 1)).collect::<candle_core::Result<_>>()?;
            }
        }
        trainer.adam_generators.step = state.adam_generator_step;
        trainer.adam_discriminators.step = state.adam_discriminator_step;
        trainer.step = state.step;
        trainer.train_seconds = state.train_seconds;
        Ok(trainer)
    }
}

/// The parameter prefix of the generator mapping `direction`.
fn generator_prefix(direction: Direction) -> &'static str {
    match direction {
        Direction::AToB => "G_A",
        Direction::BToA => "G_B",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CycleGanTrainConfig {
        CycleGanTrainConfig::new(32, 4, 4, 1, ["A".to_owned(), "B".to_owned()])
    }

    #[test]
    fn linear_decay_follows_the_junyanz_rule() {
        let mut config = config();
        assert_eq!(config.lr_at(1000), 0.0002);
        config.decay = Some(LinearDecay { start_step: 10, end_step: 20 });
        assert_eq!(config.lr_at(8), 0.0002);
        assert!((config.lr_at(9) - 0.0002 * (1.0 - 0.0 / 11.0)).abs() < 1e-15);
        assert!((config.lr_at(10) - 0.0002 * (1.0 - 1.0 / 11.0)).abs() < 1e-15);
        assert!((config.lr_at(19) - 0.0002 / 11.0).abs() < 1e-15);
        assert!(config.lr_at(19) > 0.0);
    }

    #[test]
    fn bad_settings_are_named() {
        let mut bad = config();
        bad.resolution_px = 16;
        assert!(bad.validate().unwrap_err().to_string().contains("16 px is not a power of two from 24"));
        let mut bad = config();
        bad.domains = ["NIH".to_owned(), "NIH".to_owned()];
        assert!(bad.validate().unwrap_err().to_string().contains("domain names"));
        let mut bad = config();
        bad.ngf = 0;
        assert!(bad.validate().unwrap_err().to_string().contains("`ngf`"));
    }

    #[test]
    fn image_pool_fills_then_swaps_half_the_time() {
        let device = Device::Cpu;
        let mut pool = ImagePool { capacity: 2, images: Vec::new() };
        let mut rng = TrainRng::new(5);
        let image = |v: f32| Tensor::full(v, (1, 1, 2, 2), &device).unwrap();
        let first = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
        assert_eq!(first(&pool.query(&image(1.0), &mut rng).unwrap()), 1.0);
        assert_eq!(first(&pool.query(&image(2.0), &mut rng).unwrap()), 2.0);
        let mut swapped = 0;
        for i in 0..200 {
            let v = 3.0 + i as f32;
            if first(&pool.query(&image(v), &mut rng).unwrap()) != v {
                swapped += 1;
            }
        }
        assert!((70..130).contains(&swapped), "{swapped}");
        assert_eq!(pool.images.len(), 2);
    }
}
