//! `thorax train gan`: trains the conditional ProGAN generator on a folder of radiographs and a labels CSV, with
//! progress and ETA on stderr, losses in a CSV, resumable checkpoints, and the EMA generator saved with its card.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::{DType, Device, Tensor};

use crate::cli::train_run::{LossLog, RunClock, check_run_outputs, checkpoint_due, format_duration, training_command};
use crate::engine::device::{DeviceChoice, open_device};
use crate::models::card::Provenance;
use crate::models::labels::NIH_GAN_LABELS;
use crate::models::progan::{latents_from_seed, to_png_u8};
use crate::train::dataset::GanDataset;
use crate::train::gan_trainer::{GanTrainConfig, GanTrainer, GeneratorCopy, StepLosses};

/// Train our own models.
#[derive(Debug, clap::Subcommand)]
pub enum TrainCommand {
    /// Train the conditional ProGAN generator (NIH label order) on real radiographs.
    Gan(TrainGanArgs),
    /// Train the DenseNet classifier (14 NIH labels, reproduce-chexnet recipe) on real radiographs.
    Classifier(crate::cli::train_classifier::TrainClassifierArgs),
    /// Train a CycleGAN (two ResnetGenerators, two PatchGANs) between two folders of radiographs.
    Cyclegan(crate::cli::train_cyclegan::TrainCycleGanArgs),
}

/// Options of `thorax train gan`.
#[derive(Clone, Debug, clap::Args)]
pub struct TrainGanArgs {
    /// Folder of training images (paths in the labels CSV are relative to it).
    #[arg(long, required_unless_present = "federated")]
    pub images: Option<PathBuf>,
    /// Labels CSV: ours (`file` plus `findings` or one 0/1 column per NIH label), NIH's Data_Entry_2017.csv or
    /// CheXpert's train.csv / valid.csv (see --layout).
    #[arg(long, required_unless_present = "federated")]
    pub labels: Option<PathBuf>,
    #[command(flatten)]
    pub layout: crate::cli::dataset_layout_args::DatasetLayoutArgs,
    /// Federated training (FedAvg): one site per `--sites` folder, each trained by its own thread on its own data.
    #[arg(long, requires = "sites", conflicts_with_all = ["images", "labels", "samples"])]
    pub federated: bool,
    /// With --federated: comma-separated site folders, each holding its images and a `labels.csv`.
    #[arg(long, value_delimiter = ',')]
    pub sites: Vec<PathBuf>,
    /// With --federated: rounds of local training and averaging (a resumed run continues up to this count).
    #[arg(long, default_value_t = 10)]
    pub rounds: u64,
    /// With --federated: training steps each site runs per round.
    #[arg(long, default_value_t = 50)]
    pub local_steps: u64,
    /// Training (and generator output) resolution in pixels: a power of two from 8 to 1024 (the study used 256)
    /// [default: 64].
    #[arg(long)]
    pub resolution: Option<usize>,
    /// Most feature maps per layer (the original uses 512) [default: 128].
    #[arg(long)]
    pub fmap_max: Option<usize>,
    /// Feature-map base: stage s has min(fmap_base / 2^s, fmap_max) maps (the original uses 8192) [default: 8192].
    #[arg(long)]
    pub fmap_base: Option<f64>,
    /// Latent size (the original: 512) [default: 512].
    #[arg(long)]
    pub latent_size: Option<usize>,
    /// Total training steps to reach (a resumed run continues up to this count).
    #[arg(long, default_value_t = 1000)]
    pub steps: u64,
    /// Images per batch: 2, 3 or a multiple of 4 [default: 16].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Adam learning rate for G and D [default: 0.002].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of initial weights, data order, latents and augmentation [default: 2020].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Turn off DiffAugment (translation + cutout) on the images D sees.
    #[arg(long)]
    pub no_augment: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Continue from this checkpoint (its settings are used; --lr may change).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Grow a run at half the --resolution from this checkpoint (ProGAN progressive growing): its G, EMA and D are
    /// carried over, the new block fades in over --fade-steps steps; feature maps, latent size, labels and seed stay
    /// the checkpoint's (--batch, --lr, --no-augment may change); the step count continues.
    #[arg(long, requires_all = ["resolution", "fade_steps"], conflicts_with_all = ["resume", "federated"])]
    pub grow_from: Option<PathBuf>,
    /// With --grow-from: steps over which the new resolution fades in (alpha 0 -> 1).
    #[arg(long, requires = "grow_from")]
    pub fade_steps: Option<u64>,
    /// Where checkpoints are written [default: OUT with `.ckpt.safetensors`].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Write a checkpoint every N steps (and always at the end).
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: u64,
    /// Stop (after checkpointing) once this many minutes of wall time have passed.
    #[arg(long)]
    pub max_minutes: Option<f64>,
    /// Write per-step losses to this CSV (a --resume run appends; a new run refuses a file that holds lines).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Write an 8x8 grid of EMA-generator samples (latents RandomState(1000), labels of spread training rows).
    #[arg(long)]
    pub samples: Option<PathBuf>,
    /// Model name for the card.
    #[arg(long)]
    pub name: Option<String>,
    /// Training-data description for the card (sources, counts); default: image count, folder and CSV.
    #[arg(long)]
    pub data_description: Option<String>,
    /// Licence statement for the card (of the weights and the data they derive from).
    #[arg(long)]
    pub licence: Option<String>,
    /// Store the generator as f16 (half the size) instead of f32.
    #[arg(long)]
    pub f16: bool,
    /// Let a new run (not --resume) replace an existing model, sample grid or held-out list at its output names;
    /// without it such a run is refused before the first step.
    #[arg(long)]
    pub overwrite: bool,
    /// Print one JSON document describing the run on stdout.
    #[arg(long)]
    pub json: bool,
    /// Time each phase of a step (data, forward, backward, optimiser, EMA), synchronising the device between
    /// phases, and print the mean per step at the end (the first step is not counted). Slows training a little.
    #[arg(long)]
    pub profile: bool,
    /// Output generator weights (.safetensors with its model card): the EMA generator.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs a `thorax train` command.
pub fn run(command: TrainCommand) -> anyhow::Result<()> {
    crate::train::allocator::keep_freed_memory_for_reuse();
    match command {
        TrainCommand::Gan(args) if args.federated => crate::cli::train_federated::train_gan_federated(&args),
        TrainCommand::Gan(args) => train_gan(&args),
        TrainCommand::Classifier(args) => crate::cli::train_classifier::train_classifier(&args),
        TrainCommand::Cyclegan(args) => crate::cli::train_cyclegan::train_cyclegan(&args),
    }
}

/// Fails when an option given on the command line disagrees with the resumed checkpoint.
pub(crate) fn check_same<T: PartialEq + std::fmt::Debug>(
    flag: &str,
    given: Option<T>,
    stored: T,
) -> anyhow::Result<()> {
    match given {
        Some(value) if value != stored => {
            bail!("--{flag} {value:?} differs from the checkpoint's {stored:?}; leave it out to resume")
        }
        _ => Ok(()),
    }
}

pub(crate) fn build_trainer(args: &TrainGanArgs, device: &Device) -> anyhow::Result<GanTrainer> {
    if let Some(path) = &args.resume {
        let mut trainer =
            GanTrainer::resume(path, device).with_context(|| format!("resuming from {}", path.display()))?;
        let stored = trainer.config().clone();
        check_same("resolution", args.resolution, stored.resolution_px)?;
        check_same("fmap-max", args.fmap_max, stored.fmap_max)?;
        check_same("fmap-base", args.fmap_base, stored.fmap_base)?;
        check_same("latent-size", args.latent_size, stored.latent_size)?;
        check_same("batch", args.batch, stored.batch)?;
        check_same("seed", args.seed, stored.seed)?;
        if args.no_augment && stored.augment {
            bail!("--no-augment differs from the checkpoint, which trains with augmentation");
        }
        if let Some(lr) = args.lr {
            trainer.set_learning_rate(lr).context("--lr")?;
        }
        return Ok(trainer);
    }
    if let Some(path) = &args.grow_from {
        return grow_trainer(args, path, device);
    }
    let labels: Vec<String> = NIH_GAN_LABELS.iter().map(|s| (*s).to_owned()).collect();
    let mut config = GanTrainConfig::new(args.resolution.unwrap_or(64), args.fmap_max.unwrap_or(128), labels);
    if let Some(fmap_base) = args.fmap_base {
        config.fmap_base = fmap_base;
    }
    if let Some(latent_size) = args.latent_size {
        config.latent_size = latent_size;
    }
    if let Some(batch) = args.batch {
        config.batch = batch;
    }
    if let Some(lr) = args.lr {
        config.adam.lr = lr;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    config.augment = !args.no_augment;
    Ok(GanTrainer::new(config, device)?)
}

/// `--grow-from`: the checkpoint's run grown to `--resolution`, with the flags that may change applied.
fn grow_trainer(args: &TrainGanArgs, path: &Path, device: &Device) -> anyhow::Result<GanTrainer> {
    let old = GanTrainer::resume(path, device).with_context(|| format!("reading --grow-from {}", path.display()))?;
    let stored = old.config().clone();
    check_same("fmap-max", args.fmap_max, stored.fmap_max)?;
    check_same("fmap-base", args.fmap_base, stored.fmap_base)?;
    check_same("latent-size", args.latent_size, stored.latent_size)?;
    check_same("seed", args.seed, stored.seed)?;
    let mut config = stored.clone();
    config.resolution_px = args.resolution.context("--grow-from needs --resolution")?;
    if let Some(batch) = args.batch {
        config.batch = batch;
    }
    if let Some(lr) = args.lr {
        config.adam.lr = lr;
    }
    config.augment = stored.augment && !args.no_augment;
    let fade_steps = args.fade_steps.context("--grow-from needs --fade-steps")?;
    old.grow(config, fade_steps).with_context(|| {
        format!(
            "growing the {} px run of {} to {} px",
            stored.resolution_px,
            path.display(),
            args.resolution.unwrap_or(0)
        )
    })
}

/// `OUT.safetensors` -> `OUT.ckpt.safetensors`.
pub(crate) fn default_checkpoint_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "generator".to_owned());
    out.with_file_name(format!("{stem}.ckpt.safetensors"))
}

/// Columns of the GAN loss log (plain and federated runs).
pub(crate) const GAN_LOG_HEADER: &str =
    "step,d_loss,d_adversarial,d_label,g_loss,g_adversarial,g_label,real_score,fake_score,train_seconds";

pub(crate) fn log_line(step: u64, losses: &StepLosses, seconds: f64) -> String {
    let (d, g) = (&losses.discriminator, &losses.generator);
    format!(
        "{step},{},{},{},{},{},{},{},{},{seconds:.3}",
        d.total, d.adversarial, d.label, g.total, g.adversarial, g.label, d.real_score, d.fake_score
    )
}

/// An 8x8 grid of EMA samples as an 8-bit grey PNG. During a fade-in they come from the same faded function that
/// training uses ([`GanTrainer::generate`]), not from the lod-0 network the saved generator holds.
pub fn write_sample_grid(trainer: &GanTrainer, data: &GanDataset, path: &Path, device: &Device) -> anyhow::Result<()> {
    const SIDE: usize = 8;
    let count = SIDE * SIDE;
    let config = trainer.config();
    let latents =
        Tensor::from_vec(latents_from_seed(1000, count, config.latent_size), (count, config.latent_size), device)?;
    let rows: Vec<usize> = (0..count).map(|i| i * data.len() / count).collect();
    let (labels, _) = data.labels_of(&rows, device)?;
    let mut images = Vec::new();
    for start in (0..count).step_by(16) {
        let z = latents.narrow(0, start, 16)?;
        let l = labels.narrow(0, start, 16)?;
        images.push(trainer.generate(GeneratorCopy::Ema, &z, &l)?);
    }
    let pixels = Tensor::cat(&images, 0)?.flatten_all()?.to_vec1::<f32>()?;
    let r = config.resolution_px;
    let mut grid = image::GrayImage::new((SIDE * r) as u32, (SIDE * r) as u32);
    for (index, value) in pixels.iter().enumerate() {
        let (sample, within) = (index / (r * r), index % (r * r));
        let (y, x) = ((sample / SIDE) * r + within / r, (sample % SIDE) * r + within % r);
        grid.put_pixel(x as u32, y as u32, image::Luma([to_png_u8(*value)]));
    }
    let mut encoded = std::io::Cursor::new(Vec::new());
    grid.write_to(&mut encoded, image::ImageFormat::Png).context("encoding the sample grid")?;
    // Replaced whole: the run has been allowed to write here (check_run_outputs).
    crate::atomic_file::write_file(path, crate::atomic_file::IfExists::Replace, encoded.get_ref())
        .with_context(|| format!("writing the sample grid {}", path.display()))
}

fn train_gan(args: &TrainGanArgs) -> anyhow::Result<()> {
    let compute = open_device(args.device).context("--device")?;
    let device = compute.device.clone();
    let mut trainer = build_trainer(args, &device)?;
    if args.profile {
        trainer.enable_profile();
    }
    let config = trainer.config().clone();
    let images = args.images.as_deref().context("--images is required without --federated")?;
    let labels = args.labels.as_deref().context("--labels is required without --federated")?;
    let data =
        GanDataset::load_with_layout(images, labels, config.resolution_px, &config.labels, &args.layout.options())
            .context("loading the training images")?;
    if trainer.step() == 0 && args.steps == 0 {
        // It would write untrained weights under a trained model's card.
        bail!("--steps 0: a new run needs at least one step");
    }
    let checkpoint_path = args.checkpoint.clone().unwrap_or_else(|| default_checkpoint_path(&args.out));
    let mut outputs = vec![("--out", args.out.as_path()), ("--checkpoint", checkpoint_path.as_path())];
    if let Some(samples) = &args.samples {
        outputs.push(("--samples", samples));
    }
    outputs.extend(args.log.as_deref().map(|log| ("--log", log)));
    let mut inputs = vec![("the labels CSV", labels), ("the --images folder", images)];
    inputs.extend(args.grow_from.as_deref().map(|from| ("the model --grow-from reads", from)));
    check_run_outputs(&outputs, &inputs, &checkpoint_path, args.resume.as_deref(), args.overwrite)?;
    // A grown run continues the step count, so its log continues too.
    let continues = args.resume.is_some() || args.grow_from.is_some();
    let mut log = LossLog::open(args.log.as_deref(), GAN_LOG_HEADER, continues)?;
    if let Some(fade) = trainer.fade() {
        eprintln!(
            "fade-in of {} px: steps {} -> {}, alpha now {:.3}",
            config.resolution_px,
            fade.start_step,
            fade.end_step(),
            trainer.fade_alpha()
        );
    }
    eprintln!(
        "thorax train gan: {} images at {} px, batch {}, on {}; steps {} -> {}",
        data.len(),
        config.resolution_px,
        config.batch,
        compute.label,
        trainer.step(),
        args.steps
    );
    let mut clock = RunClock::start(trainer.step());
    let mut recent: Vec<StepLosses> = Vec::new();
    while trainer.step() < args.steps {
        let losses = trainer.train_step(&data).with_context(|| format!("training step {}", trainer.step()))?;
        let step = trainer.step();
        log.write_row(|| log_line(step, &losses, trainer.train_seconds()))?;
        recent.push(losses);
        if recent.len() > 50 {
            recent.remove(0);
        }
        if clock.should_print(step, args.steps) {
            eprintln!(
                "step {step}/{} ({:.1}%)  {:.3} step/s  D {:.3} G {:.3}  real {:+.2} fake {:+.2}  ETA {}",
                args.steps,
                100.0 * step as f64 / args.steps.max(1) as f64,
                clock.rate_per_s(step),
                losses.discriminator.total,
                losses.generator.total,
                losses.discriminator.real_score,
                losses.discriminator.fake_score,
                format_duration(clock.eta_seconds(step, args.steps))
            );
        }
        if checkpoint_due(step, args.checkpoint_every) {
            trainer.save_checkpoint(&checkpoint_path).context("writing the checkpoint")?;
        }
        if clock.time_is_up(args.max_minutes) {
            eprintln!("stopping at step {step}: --max-minutes reached");
            break;
        }
    }
    trainer.save_checkpoint(&checkpoint_path).context("writing the checkpoint")?;
    let totals = clock.totals(trainer.step());

    let mean = |f: &dyn Fn(&StepLosses) -> f32| -> f64 {
        recent.iter().map(|l| f64::from(f(l))).sum::<f64>() / recent.len().max(1) as f64
    };
    let name = args.name.clone().unwrap_or_else(|| {
        format!("ProGAN {} px, NIH label order, trained by thorax on {} images", config.resolution_px, data.len())
    });
    let provenance = Provenance {
        source: "trained by thorax (`thorax train gan`); the EMA generator (beta 0.999)".to_owned(),
        source_sha256: None,
        training_data: Some(args.data_description.clone().unwrap_or_else(|| {
            format!("{} images from {} (labels {})", data.len(), images.display(), labels.display())
        })),
        licence: args.licence.clone(),
        training_command: Some(training_command()),
    };
    let mut card = trainer.generator_card(&name, provenance);
    let counts: serde_json::Map<String, serde_json::Value> =
        config.labels.iter().cloned().zip(data.label_counts().into_iter().map(serde_json::Value::from)).collect();
    let metrics = [
        ("training_steps", serde_json::json!(trainer.step())),
        ("training_images", serde_json::json!(data.len())),
        ("training_label_counts", serde_json::Value::Object(counts)),
        ("batch", serde_json::json!(config.batch)),
        ("learning_rate", serde_json::json!(config.adam.lr)),
        ("augmentation", serde_json::json!(if config.augment { "DiffAugment translation,cutout" } else { "none" })),
        ("train_wall_seconds", serde_json::json!(trainer.train_seconds())),
        ("device", serde_json::json!(compute.label)),
        ("final_d_loss_mean_last_50", serde_json::json!(mean(&|l| l.discriminator.total))),
        ("final_g_loss_mean_last_50", serde_json::json!(mean(&|l| l.generator.total))),
    ];
    let mut metrics = metrics.to_vec();
    if let Some(fade) = trainer.fade() {
        metrics.push(("grown_at_step", serde_json::json!(fade.start_step)));
        metrics.push(("fade_steps", serde_json::json!(fade.steps)));
        // Saved mid-fade, the file holds only the lod-0 network, which is not yet what training computes.
        if trainer.fade_alpha() < 1.0 {
            metrics.push(("fade_alpha", serde_json::json!(trainer.fade_alpha())));
        }
    }
    for (key, value) in metrics {
        // A run that trained no step has no recent losses to report (the previous card's stay in its log).
        if recent.is_empty() && key.starts_with("final_") {
            continue;
        }
        card.metrics.insert(key.to_owned(), value);
    }
    let dtype = if args.f16 { DType::F16 } else { DType::F32 };
    trainer
        .save_generator(&args.out, GeneratorCopy::Ema, &card, dtype)
        .with_context(|| format!("writing the generator {}", args.out.display()))?;
    if let Some(path) = &args.samples {
        write_sample_grid(&trainer, &data, path, &device)?;
    }
    eprintln!("done: {totals}; generator {}, checkpoint {}", args.out.display(), checkpoint_path.display());
    if let Some(profile) = trainer.profile() {
        eprint!("{}", profile.table());
    }
    if args.json {
        let summary = serde_json::json!({
            "generator": args.out,
            "checkpoint": checkpoint_path,
            "samples": args.samples,
            "steps": trainer.step(),
            "steps_this_run": totals.steps_this_run,
            "run_seconds": totals.run_seconds,
            "steps_per_second": totals.steps_per_second,
            "train_wall_seconds": trainer.train_seconds(),
            "images": data.len(),
            "device": compute.label,
            "final_losses": recent.last(),
            "profile": trainer.profile().map(|p| p.report()),
        });
        println!("{summary}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_path_sits_next_to_the_output() {
        assert_eq!(default_checkpoint_path(Path::new("/a/g.safetensors")), PathBuf::from("/a/g.ckpt.safetensors"));
    }

    #[test]
    fn resume_flags_must_agree() {
        assert!(check_same("batch", Some(4usize), 4).is_ok());
        assert!(check_same("batch", None, 4usize).is_ok());
        let error = check_same("batch", Some(8usize), 4).unwrap_err().to_string();
        assert!(error.contains("--batch") && error.contains('4') && error.contains('8'), "{error}");
    }
}
