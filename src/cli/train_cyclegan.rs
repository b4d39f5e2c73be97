//! `thorax train cyclegan`: trains a CycleGAN between two folders of radiographs, with progress and ETA on stderr,
//! losses in a CSV, resumable checkpoints, and both generators saved with their cards (`--out` holds `G_A`, domain A
//! to B; `--out-b2a` holds `G_B`), each carrying the cycle-reconstruction error measured on held-out images.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::{DType, Device};

use crate::atomic_file::{IfExists, PartialFile};
use crate::cli::output_paths::same_file;
use crate::cli::train::{check_same, default_checkpoint_path};
use crate::cli::train_run::{LossLog, RunClock, check_run_outputs, checkpoint_due, format_duration, training_command};
use crate::engine::device::{DeviceChoice, open_device};
use crate::models::card::Provenance;
use crate::models::cyclegan::Direction;
use crate::train::cyclegan_trainer::{
    CycleErrors, CycleGanStepLosses, CycleGanTrainConfig, CycleGanTrainer, LinearDecay,
};
use crate::train::domain_images::DomainImages;

/// Resolutions the command trains at (32 only for quick trials).
const RESOLUTIONS_PX: [usize; 4] = [32, 64, 128, 256];
/// Seed offset of the hold-out split of domain B (domain A uses the run seed itself).
const SPLIT_SALT_B: u64 = 0x5EED_0000_000B;

/// Options of `thorax train cyclegan`.
#[derive(Debug, clap::Args)]
pub struct TrainCycleGanArgs {
    /// Folder of domain A images (PNG, JPEG, TIFF, DICOM); repeat it to join folders (e.g. one dataset stored at
    /// two resolutions).
    #[arg(long, required = true)]
    pub domain_a: Vec<PathBuf>,
    /// Folder of domain B images; may be repeated like --domain-a.
    #[arg(long, required = true)]
    pub domain_b: Vec<PathBuf>,
    /// Only files in the --domain-a folders whose names start with this (e.g. `nih_`).
    #[arg(long, default_value = "")]
    pub domain_a_prefix: String,
    /// Only files in --domain-b whose names start with this (e.g. `ker_`).
    #[arg(long, default_value = "")]
    pub domain_b_prefix: String,
    /// Name of domain A in the model card [default: A].
    #[arg(long)]
    pub domain_a_name: Option<String>,
    /// Name of domain B in the model card [default: B].
    #[arg(long)]
    pub domain_b_name: Option<String>,
    /// Training resolution in pixels: 64, 128 or 256 (32 for quick trials) [default: 128].
    #[arg(long)]
    pub resolution: Option<usize>,
    /// Generator filters of the first layer [default: 64].
    #[arg(long)]
    pub ngf: Option<usize>,
    /// Discriminator filters of the first layer [default: 64].
    #[arg(long)]
    pub ndf: Option<usize>,
    /// Residual blocks of the generators [default: 9].
    #[arg(long)]
    pub blocks: Option<usize>,
    /// Total training steps to reach (a resumed run continues up to this count).
    #[arg(long, default_value_t = 1000)]
    pub steps: u64,
    /// Linearly decay the learning rate to 0 over the last N steps of --steps.
    #[arg(long)]
    pub decay_steps: Option<u64>,
    /// Images per batch and domain [default: 1].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Adam learning rate [default: 0.0002].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of initial weights, data order, pools and the hold-out split [default: 2020].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Images per domain kept out of training to measure the cycle-reconstruction error [default: 16]; a resumed run
    /// keeps its own.
    #[arg(long)]
    pub val_count: Option<usize>,
    /// Write the held-out images as CSV `domain,file` here (e.g. to measure a domain Frechet distance on them).
    #[arg(long)]
    pub held_out_list: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Continue from this checkpoint (its settings are used; --lr may change).
    #[arg(long)]
    pub resume: Option<PathBuf>,
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
    /// Model name for the cards (the direction is appended).
    #[arg(long)]
    pub name: Option<String>,
    /// Licence statement for the cards (of the weights and the data they derive from).
    #[arg(long)]
    pub licence: Option<String>,
    /// Store the generators as f16 (half the size) instead of f32.
    #[arg(long)]
    pub f16: bool,
    /// Let a new run (not --resume) replace an existing model, sample grid or held-out list at its output names;
    /// without it such a run is refused before the first step.
    #[arg(long)]
    pub overwrite: bool,
    /// Print one JSON document describing the run on stdout.
    #[arg(long)]
    pub json: bool,
    /// Where the B-to-A generator `G_B` goes [default: OUT with `_b2a` before the extension].
    #[arg(long)]
    pub out_b2a: Option<PathBuf>,
    /// Output: the A-to-B generator `G_A` (.safetensors with its model card).
    #[arg(long)]
    pub out: PathBuf,
}

/// `OUT.safetensors` -> `OUT_b2a.safetensors`.
fn default_b2a_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "cyclegan".to_owned());
    let extension = out.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_else(|| "safetensors".into());
    out.with_file_name(format!("{stem}_b2a.{extension}"))
}

fn build_trainer(args: &TrainCycleGanArgs, device: &Device) -> anyhow::Result<CycleGanTrainer> {
    let decay =
        args.decay_steps.map(|n| LinearDecay { start_step: args.steps.saturating_sub(n), end_step: args.steps });
    if let Some(path) = &args.resume {
        let mut trainer =
            CycleGanTrainer::resume(path, device).with_context(|| format!("resuming from {}", path.display()))?;
        let stored = trainer.config().clone();
        check_same("resolution", args.resolution, stored.resolution_px)?;
        check_same("ngf", args.ngf, stored.ngf)?;
        check_same("ndf", args.ndf, stored.ndf)?;
        check_same("blocks", args.blocks, stored.n_blocks)?;
        check_same("batch", args.batch, stored.batch)?;
        check_same("seed", args.seed, stored.seed)?;
        check_same("val-count", args.val_count, stored.held_out_per_domain)?;
        check_same("domain-a-name", args.domain_a_name.clone(), stored.domains[0].clone())?;
        check_same("domain-b-name", args.domain_b_name.clone(), stored.domains[1].clone())?;
        if let Some(lr) = args.lr {
            trainer.set_learning_rate(lr).context("--lr")?;
        }
        if decay.is_some() {
            trainer.set_decay(decay).context("--decay-steps")?;
        }
        return Ok(trainer);
    }
    let resolution = args.resolution.unwrap_or(128);
    if !RESOLUTIONS_PX.contains(&resolution) {
        bail!("--resolution {resolution}: expected 64, 128 or 256 (or 32 for quick trials)");
    }
    let domains = [
        args.domain_a_name.clone().unwrap_or_else(|| "A".to_owned()),
        args.domain_b_name.clone().unwrap_or_else(|| "B".to_owned()),
    ];
    let mut config = CycleGanTrainConfig::new(
        resolution,
        args.ngf.unwrap_or(64),
        args.ndf.unwrap_or(64),
        args.blocks.unwrap_or(9),
        domains,
    );
    if let Some(batch) = args.batch {
        config.batch = batch;
    }
    if let Some(lr) = args.lr {
        config.adam.lr = lr;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    config.decay = decay;
    config.held_out_per_domain = args.val_count.unwrap_or(config.held_out_per_domain);
    Ok(CycleGanTrainer::new(config, device)?)
}

const LOG_HEADER: &str = "step,d_a,d_b,g_a,g_b,cycle_a,cycle_b,idt_a,idt_b,g_total,lr,train_seconds";

fn log_line(step: u64, l: &CycleGanStepLosses, seconds: f64) -> String {
    format!(
        "{step},{},{},{},{},{},{},{},{},{},{},{seconds:.3}",
        l.d_a, l.d_b, l.g_a, l.g_b, l.cycle_a, l.cycle_b, l.idt_a, l.idt_b, l.g_total, l.lr
    )
}

/// "DIR" or "DIR1 + DIR2 + ...".
fn folder_list(folders: &[PathBuf]) -> String {
    folders.iter().map(|folder| folder.display().to_string()).collect::<Vec<_>>().join(" + ")
}

/// Writes `domain,file` rows for the held-out images of both domains.
fn write_held_out_list(path: &Path, domains: [(&str, &DomainImages); 2]) -> anyhow::Result<()> {
    let context = || format!("writing the held-out list {}", path.display());
    // The csv writer quotes names and paths that hold commas or quotes.
    let partial = PartialFile::create(path, IfExists::Replace).with_context(context)?;
    let mut writer = csv::Writer::from_writer(partial);
    writer.write_record(["domain", "file"]).with_context(context)?;
    for (name, images) in domains {
        for file in images.files() {
            writer.write_record([name, &file.display().to_string()]).with_context(context)?;
        }
    }
    // Under its name only once whole (replacing an earlier list is allowed by check_run_outputs).
    writer.into_inner().map_err(|e| e.into_error()).with_context(context)?.commit().with_context(context)
}

/// Loads one domain and splits off its validation images.
fn load_domain(
    label: &str,
    folders: &[PathBuf],
    prefix: &str,
    side_px: usize,
    val_count: usize,
    seed: u64,
) -> anyhow::Result<(DomainImages, DomainImages)> {
    let images = DomainImages::load_folders(label, folders, prefix, side_px)
        .with_context(|| format!("loading domain {label} from {}", folder_list(folders)))?;
    Ok(images.split_hold_out(label, val_count, seed)?)
}

/// Runs `thorax train cyclegan`.
pub fn train_cyclegan(args: &TrainCycleGanArgs) -> anyhow::Result<()> {
    let compute = open_device(args.device).context("--device")?;
    let device = compute.device.clone();
    let mut trainer = build_trainer(args, &device)?;
    // One folder may hold both domains under two prefixes; the same folder and prefix twice is one domain.
    if args.domain_a_prefix == args.domain_b_prefix
        && let Some(shared) = args.domain_a.iter().find(|a| args.domain_b.iter().any(|b| same_file(a, b)))
    {
        bail!(
            "--domain-a and --domain-b both take {} with the same file prefix: a CycleGAN learns between two \
             styles; give each domain its own folder, or --domain-a-prefix / --domain-b-prefix",
            shared.display()
        );
    }
    let config = trainer.config().clone();
    let [name_a, name_b] = &config.domains;
    let side = config.resolution_px;
    let held_out = config.held_out_per_domain;
    let (train_a, val_a) = load_domain(name_a, &args.domain_a, &args.domain_a_prefix, side, held_out, config.seed)?;
    let (train_b, val_b) =
        load_domain(name_b, &args.domain_b, &args.domain_b_prefix, side, held_out, config.seed ^ SPLIT_SALT_B)?;
    trainer.check_domain_image_counts([train_a.len() + val_a.len(), train_b.len() + val_b.len()])?;
    if trainer.step() == 0 && args.steps == 0 {
        bail!("--steps 0: a new run needs at least one step");
    }
    let checkpoint_path = args.checkpoint.clone().unwrap_or_else(|| default_checkpoint_path(&args.out));
    let out_b2a = args.out_b2a.clone().unwrap_or_else(|| default_b2a_path(&args.out));
    let mut outputs = vec![
        ("--out", args.out.as_path()),
        ("--out-b2a", out_b2a.as_path()),
        ("--checkpoint", checkpoint_path.as_path()),
    ];
    if let Some(path) = &args.held_out_list {
        outputs.push(("--held-out-list", path));
    }
    outputs.extend(args.log.as_deref().map(|log| ("--log", log)));
    let folders_a = args.domain_a.iter().map(|f| ("a --domain-a folder", f.as_path()));
    let inputs: Vec<_> = folders_a.chain(args.domain_b.iter().map(|f| ("a --domain-b folder", f.as_path()))).collect();
    check_run_outputs(&outputs, &inputs, &checkpoint_path, args.resume.as_deref(), args.overwrite)?;
    if let Some(path) = &args.held_out_list {
        write_held_out_list(path, [(name_a.as_str(), &val_a), (name_b.as_str(), &val_b)])?;
    }
    let mut log = LossLog::open(args.log.as_deref(), LOG_HEADER, args.resume.is_some())?;
    eprintln!(
        "thorax train cyclegan: {name_a} {} + {} held out, {name_b} {} + {} held out, at {side} px, ngf {} ndf {} \
         blocks {}, batch {}, on {}; steps {} -> {}",
        train_a.len(),
        val_a.len(),
        train_b.len(),
        val_b.len(),
        config.ngf,
        config.ndf,
        config.n_blocks,
        config.batch,
        compute.label,
        trainer.step(),
        args.steps
    );
    let mut clock = RunClock::start(trainer.step());
    let mut last_losses = None;
    while trainer.step() < args.steps {
        let losses =
            trainer.train_step(&train_a, &train_b).with_context(|| format!("training step {}", trainer.step()))?;
        let step = trainer.step();
        log.write_row(|| log_line(step, &losses, trainer.train_seconds()))?;
        last_losses = Some(losses);
        if clock.should_print(step, args.steps) {
            eprintln!(
                "step {step}/{} ({:.1}%)  {:.3} step/s  D_A {:.3} D_B {:.3} G_A {:.3} G_B {:.3} cycle {:.3}/{:.3} \
                 idt {:.3}/{:.3}  ETA {}",
                args.steps,
                100.0 * step as f64 / args.steps.max(1) as f64,
                clock.rate_per_s(step),
                losses.d_a,
                losses.d_b,
                losses.g_a,
                losses.g_b,
                losses.cycle_a,
                losses.cycle_b,
                losses.idt_a,
                losses.idt_b,
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
    let errors = trainer.cycle_errors(&val_a, &val_b).context("measuring the cycle-reconstruction error")?;

    let base_name = args.name.clone().unwrap_or_else(|| {
        format!(
            "CycleGAN {name_a} <-> {name_b}, {side} px, trained by thorax on {} + {} images",
            train_a.len(),
            train_b.len()
        )
    });
    let describe = |label: &str, folders: &[PathBuf], prefix: &str, train: usize, val: usize| {
        let filter = if prefix.is_empty() { String::new() } else { format!(" files `{prefix}*`") };
        let from = folder_list(folders);
        format!("{label}: {} images from {from}{filter} ({train} training, {val} held out)", train + val)
    };
    let training_data = format!(
        "{}; {}",
        describe(name_a, &args.domain_a, &args.domain_a_prefix, train_a.len(), val_a.len()),
        describe(name_b, &args.domain_b, &args.domain_b_prefix, train_b.len(), val_b.len())
    );
    let provenance = Provenance {
        source: "trained by thorax (`thorax train cyclegan`)".to_owned(),
        source_sha256: None,
        training_data: Some(training_data),
        licence: args.licence.clone(),
        training_command: Some(training_command()),
    };
    let objective = format!(
        "junyanz CycleGAN: LSGAN, cycle lambda_A {} lambda_B {}, identity {}, pool {}",
        config.lambda_a, config.lambda_b, config.lambda_identity, config.pool_size
    );
    let dtype = if args.f16 { DType::F16 } else { DType::F32 };
    for (direction, path) in [(Direction::AToB, &args.out), (Direction::BToA, &out_b2a)] {
        let network = if direction == Direction::AToB { "G_A" } else { "G_B" };
        let name = format!("{base_name} ({network}, {})", direction.as_str());
        let mut card = trainer.generator_card(direction, &name, provenance.clone());
        let metrics = [
            ("training_steps", serde_json::json!(trainer.step())),
            ("training_resolution_px", serde_json::json!(side)),
            ("training_images", serde_json::json!({ name_a.as_str(): train_a.len(), name_b.as_str(): train_b.len() })),
            ("held_out_images", serde_json::json!({ name_a.as_str(): val_a.len(), name_b.as_str(): val_b.len() })),
            ("batch", serde_json::json!(config.batch)),
            ("ndf", serde_json::json!(config.ndf)),
            ("learning_rate", serde_json::json!(config.adam.lr)),
            ("objective", serde_json::json!(objective)),
            ("lr_decay", serde_json::json!(config.decay)),
            ("train_wall_seconds", serde_json::json!(trainer.train_seconds())),
            ("device", serde_json::json!(compute.label)),
        ];
        for (key, value) in metrics {
            card.metrics.insert(key.to_owned(), value);
        }
        if let Some(errors) = errors {
            card.metrics.insert("cycle_l1_a_to_b_to_a".to_owned(), serde_json::json!(errors.a_to_b_to_a));
            card.metrics.insert("cycle_l1_b_to_a_to_b".to_owned(), serde_json::json!(errors.b_to_a_to_b));
        }
        trainer
            .save_generator(path, direction, &card, dtype)
            .with_context(|| format!("writing the generator {}", path.display()))?;
    }
    eprintln!(
        "done: {totals}; G_A {}, G_B {}, checkpoint {}",
        args.out.display(),
        out_b2a.display(),
        checkpoint_path.display()
    );
    match errors {
        Some(CycleErrors { a_to_b_to_a, b_to_a_to_b, images_a, images_b }) => eprintln!(
            "cycle-reconstruction mean abs error in [-1, 1] units: {name_a}->{name_b}->{name_a} {a_to_b_to_a:.4} \
             ({images_a} held-out images), {name_b}->{name_a}->{name_b} {b_to_a_to_b:.4} ({images_b})"
        ),
        None => eprintln!("no held-out images (--val-count 0): cycle-reconstruction error not measured"),
    }
    if args.json {
        let summary = serde_json::json!({
            "generator_a2b": args.out,
            "generator_b2a": out_b2a,
            "checkpoint": checkpoint_path,
            "steps": trainer.step(),
            "steps_this_run": totals.steps_this_run,
            "run_seconds": totals.run_seconds,
            "steps_per_second": totals.steps_per_second,
            "train_wall_seconds": trainer.train_seconds(),
            "training_images": [train_a.len(), train_b.len()],
            "held_out_images": [val_a.len(), val_b.len()],
            "domains": config.domains,
            "device": compute.label,
            "cycle_errors": errors,
            "final_losses": last_losses,
        });
        println!("{summary}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b2a_path_sits_next_to_the_output() {
        assert_eq!(default_b2a_path(Path::new("/m/cg.safetensors")), PathBuf::from("/m/cg_b2a.safetensors"));
    }
}
