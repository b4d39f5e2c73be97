//! `thorax train classifier`: trains the DenseNet classifier on a folder of radiographs and a labels CSV with a
//! patient-wise validation split, progress and ETA on stderr, losses in a CSV, resumable checkpoints, and the weights
//! of the best validation loss saved with a card that carries the per-label validation AUC.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::cli::train::{check_same, default_checkpoint_path};
use crate::cli::train_run::{LossLog, RunClock, check_run_outputs, checkpoint_due, format_duration, training_command};
use crate::engine::device::{DeviceChoice, open_device};
use crate::models::card::Provenance;
use crate::models::labels::NIH_CLASSIFIER_LABELS;
use crate::train::classifier_split::{ValidationSplit, split_labeled_rows};
use crate::train::classifier_trainer::{ClassifierTrainConfig, ClassifierTrainer, LabelAuc, prepare_classifier_image};
use crate::train::dataset::GanDataset;
use crate::train::dataset_layout::read_labeled_rows;

/// Options of `thorax train classifier`.
#[derive(Debug, clap::Args)]
pub struct TrainClassifierArgs {
    /// Folder of training images (paths in the labels CSV are relative to it).
    #[arg(long)]
    pub images: PathBuf,
    /// Labels CSV: ours (`file`, one 0/1 column per NIH label or `findings`, optional `labels_annotated`,
    /// `patient_id` and `fold`), NIH's Data_Entry_2017.csv or CheXpert's train.csv / valid.csv (see --layout).
    #[arg(long)]
    pub labels: PathBuf,
    #[command(flatten)]
    pub layout: crate::cli::dataset_layout_args::DatasetLayoutArgs,
    /// Validation rows: those whose `fold` column equals K (needs a `fold` column).
    #[arg(long, conflicts_with = "val_fraction")]
    pub val_fold: Option<String>,
    /// Validation rows: this share of the patients, drawn with the seed [default: 0.2 when --val-fold is absent].
    #[arg(long)]
    pub val_fraction: Option<f64>,
    /// Training (and inference) input side in pixels, 32 to 1024 [default: 224].
    #[arg(long)]
    pub resolution: Option<usize>,
    /// Channels each dense layer adds [default: 32].
    #[arg(long)]
    pub growth_rate: Option<usize>,
    /// Output channels of the stem convolution [default: 64].
    #[arg(long)]
    pub num_init_features: Option<usize>,
    /// Bottleneck width as a multiple of the growth rate [default: 4].
    #[arg(long)]
    pub bn_size: Option<usize>,
    /// Dense layers per block, comma-separated [default: 6,12,24,16]; at most once (a second one used to append).
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set)]
    pub block_config: Option<Vec<usize>>,
    /// Images per batch [default: 16].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Initial SGD learning rate [default: 0.01].
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD weight decay [default: 1e-4].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Divide the learning rate by 10 after this many epochs without a better validation loss [default: 1].
    #[arg(long)]
    pub plateau_patience: Option<u32>,
    /// Stop after this many epochs without a better validation loss; 0 turns early stopping off [default: 3].
    #[arg(long)]
    pub early_stop_patience: Option<u32>,
    /// Largest random translation of a training image in pixels; 0 turns augmentation off [default: side / 16].
    #[arg(long)]
    pub max_shift_px: Option<usize>,
    /// Most epochs (a resumed run continues up to this count).
    #[arg(long, default_value_t = 100)]
    pub epochs: u64,
    /// Most training steps in all (a resumed run continues up to this count); default: no limit besides --epochs.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Seed of initial weights, split, data order and augmentation [default: 2020].
    #[arg(long)]
    pub seed: Option<u64>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Continue from this checkpoint (its settings are used; --lr may change).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Where checkpoints are written [default: OUT with `.ckpt.safetensors`].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Write a checkpoint every N steps (and always at the end and at every epoch end).
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: u64,
    /// Stop (after checkpointing) once this many minutes of wall time have passed.
    #[arg(long)]
    pub max_minutes: Option<f64>,
    /// Write per-step losses (and validation losses at epoch ends) to this CSV (a --resume run appends; a new run
    /// refuses a file that holds lines).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Model name for the card.
    #[arg(long)]
    pub name: Option<String>,
    /// Training-data description for the card (sources, counts); default: counts, folder and CSV.
    #[arg(long)]
    pub data_description: Option<String>,
    /// Licence statement for the card (of the weights and the data they derive from).
    #[arg(long)]
    pub licence: Option<String>,
    /// Let a new run (not --resume) replace an existing model, sample grid or held-out list at its output names;
    /// without it such a run is refused before the first step.
    #[arg(long)]
    pub overwrite: bool,
    /// Print one JSON document describing the run on stdout.
    #[arg(long)]
    pub json: bool,
    /// Output classifier weights (.safetensors with its model card).
    #[arg(long)]
    pub out: PathBuf,
}

impl TrainClassifierArgs {
    fn validation_split(&self) -> ValidationSplit {
        match &self.val_fold {
            Some(fold) => ValidationSplit::Fold(fold.clone()),
            None => ValidationSplit::PatientFraction(self.val_fraction.unwrap_or(0.2)),
        }
    }

    /// The run's configuration from the flags and the NIH label order.
    fn config(&self) -> ClassifierTrainConfig {
        let labels: Vec<String> = NIH_CLASSIFIER_LABELS.iter().map(|s| (*s).to_owned()).collect();
        let resolution = self.resolution.unwrap_or(crate::models::densenet::INPUT_SIZE_PX);
        let mut config = ClassifierTrainConfig::new(labels, resolution);
        let set = |target: &mut usize, value: Option<usize>| {
            if let Some(value) = value {
                *target = value;
            }
        };
        set(&mut config.growth_rate, self.growth_rate);
        set(&mut config.num_init_features, self.num_init_features);
        set(&mut config.bn_size, self.bn_size);
        set(&mut config.batch, self.batch);
        set(&mut config.max_shift_px, self.max_shift_px);
        if let Some(blocks) = &self.block_config {
            config.block_config = blocks.clone();
        }
        if let Some(lr) = self.lr {
            config.lr = lr;
        }
        if let Some(weight_decay) = self.weight_decay {
            config.weight_decay = weight_decay;
        }
        if let Some(patience) = self.plateau_patience {
            config.plateau_patience = patience;
        }
        if let Some(patience) = self.early_stop_patience {
            config.early_stop_patience = (patience > 0).then_some(patience);
        }
        if let Some(seed) = self.seed {
            config.seed = seed;
        }
        config
    }
}

const LOG_HEADER: &str = "step,epoch,train_loss,validation_loss,lr,train_seconds";

/// `0.8123` or `n/a` for the printed AUC table.
fn auc_text(auc: &LabelAuc) -> String {
    auc.auc.map_or_else(|| "n/a".to_owned(), |value| format!("{value:.4}"))
}

/// Runs `thorax train classifier`.
pub fn train_classifier(args: &TrainClassifierArgs) -> anyhow::Result<()> {
    let compute = open_device(args.device).context("--device")?;
    let device = compute.device.clone();
    let mut trainer = if let Some(path) = &args.resume {
        let mut trainer =
            ClassifierTrainer::resume(path, &device).with_context(|| format!("resuming from {}", path.display()))?;
        let stored = trainer.config().clone();
        check_same("resolution", args.resolution, stored.resolution_px)?;
        check_same("growth-rate", args.growth_rate, stored.growth_rate)?;
        check_same("num-init-features", args.num_init_features, stored.num_init_features)?;
        check_same("bn-size", args.bn_size, stored.bn_size)?;
        check_same("block-config", args.block_config.clone(), stored.block_config.clone())?;
        check_same("batch", args.batch, stored.batch)?;
        check_same("seed", args.seed, stored.seed)?;
        check_same("max-shift-px", args.max_shift_px, stored.max_shift_px)?;
        if let Some(lr) = args.lr {
            trainer.set_learning_rate(lr).context("--lr")?;
        }
        Some(trainer)
    } else {
        None
    };
    let config = trainer.as_ref().map_or_else(|| args.config(), |t| t.config().clone());
    config.validate().context("checking the training settings")?;
    // A resumed run keeps the checkpoint's split unless a split flag asks for a check against the CSV.
    let split_flag_given = args.val_fold.is_some() || args.val_fraction.is_some();
    let rows = read_labeled_rows(&args.images, &args.labels, &config.labels, &args.layout.options())
        .context("reading the labels CSV")?;
    let split = match (&trainer, split_flag_given) {
        (Some(_), false) => None,
        _ => Some(
            split_labeled_rows(&args.labels, &rows, &args.validation_split(), config.seed)
                .context("splitting by patient")?,
        ),
    };
    let data =
        GanDataset::from_rows(rows, &args.labels, config.resolution_px, &config.labels, &prepare_classifier_image)
            .context("loading the training images")?;
    let split_rows_count = match (&split, &trainer) {
        (Some(split), _) => split.train.len() + split.validation.len(),
        (None, Some(trainer)) => trainer.split().train.len() + trainer.split().validation.len(),
        (None, None) => data.len(),
    };
    if data.len() != split_rows_count {
        bail!("the split has {split_rows_count} rows but the labels CSV gives {} loaded images", data.len());
    }
    let mut trainer = match (trainer.take(), split) {
        (Some(mut trainer), Some(split)) => {
            trainer.confirm_split(split).context("checking the split against the checkpoint")?;
            trainer
        }
        (Some(trainer), None) => trainer,
        (None, Some(split)) => ClassifierTrainer::new(config.clone(), split, &device)?,
        (None, None) => bail!("no split: give --val-fold or --val-fraction"),
    };
    let (train_rows, validation_rows) = (trainer.split().train.len(), trainer.split().validation.len());
    let steps_per_epoch = trainer.steps_per_epoch();
    let target_steps = args.steps.unwrap_or(u64::MAX).min(args.epochs.saturating_mul(steps_per_epoch));
    if trainer.step() == 0 && target_steps == 0 {
        bail!("--steps 0 or --epochs 0: a new run needs at least one step");
    }
    let checkpoint_path = args.checkpoint.clone().unwrap_or_else(|| default_checkpoint_path(&args.out));
    let mut outputs = vec![("--out", args.out.as_path()), ("--checkpoint", checkpoint_path.as_path())];
    outputs.extend(args.log.as_deref().map(|log| ("--log", log)));
    let inputs = [("the labels CSV", args.labels.as_path()), ("the --images folder", args.images.as_path())];
    check_run_outputs(&outputs, &inputs, &checkpoint_path, args.resume.as_deref(), args.overwrite)?;
    let mut log = LossLog::open(args.log.as_deref(), LOG_HEADER, args.resume.is_some())?;
    eprintln!(
        "thorax train classifier: {train_rows} training / {validation_rows} validation images ({} / {} patients) at {} \
         px, batch {}, {steps_per_epoch} steps per epoch, on {}; steps {} -> {target_steps}",
        trainer.split().train_patients,
        trainer.split().validation_patients,
        config.resolution_px,
        config.batch,
        compute.label,
        trainer.step(),
    );
    let mut clock = RunClock::start(trainer.step());
    let mut last_loss = f32::NAN;
    let mut stop_reason = "step or epoch limit reached";
    if trainer.stopped_early() {
        stop_reason = "the checkpoint had already stopped early";
    }
    while trainer.step() < target_steps && !trainer.stopped_early() {
        let (loss, outcome) = trainer.train_step(&data).with_context(|| format!("training step {}", trainer.step()))?;
        last_loss = loss;
        let step = trainer.step();
        log.write_row(|| {
            let validation = outcome.as_ref().map(|o| o.record.validation_loss.to_string()).unwrap_or_default();
            let epoch = step.div_ceil(steps_per_epoch);
            format!("{step},{epoch},{loss},{validation},{},{:.3}", trainer.lr(), trainer.train_seconds())
        })?;
        if let Some(outcome) = &outcome {
            let r = &outcome.record;
            eprintln!(
                "epoch {} (step {step}): train loss {:.4}, validation loss {:.4}{}{}",
                r.epoch,
                r.train_loss,
                r.validation_loss,
                if r.improved { " (best)" } else { "" },
                if outcome.lr_decayed { format!(", lr now {}", trainer.lr()) } else { String::new() }
            );
            trainer.save_checkpoint(&checkpoint_path).context("writing the checkpoint")?;
            if outcome.stop {
                stop_reason = "early stop: the validation loss stopped improving";
                eprintln!("stopping at step {step}: {stop_reason}");
                break;
            }
        }
        if clock.should_print(step, target_steps) {
            // No --steps and more epochs than u64 steps hold: the end is unknown.
            let eta = if target_steps == u64::MAX {
                "?".to_owned()
            } else {
                format_duration(clock.eta_seconds(step, target_steps))
            };
            eprintln!(
                "step {step}/{target_steps} (epoch {:.2})  {:.3} step/s  loss {loss:.4}  lr {}  ETA {eta}",
                step as f64 / steps_per_epoch as f64,
                clock.rate_per_s(step),
                trainer.lr()
            );
        }
        if checkpoint_due(step, args.checkpoint_every) {
            trainer.save_checkpoint(&checkpoint_path).context("writing the checkpoint")?;
        }
        if clock.time_is_up(args.max_minutes) {
            stop_reason = "--max-minutes reached";
            eprintln!("stopping at step {step}: {stop_reason}");
            break;
        }
    }
    trainer.save_checkpoint(&checkpoint_path).context("writing the checkpoint")?;
    let totals = clock.totals(trainer.step());

    let aucs = trainer.validation_auc(&data).context("computing the validation AUC")?;
    let name = args.name.clone().unwrap_or_else(|| {
        format!(
            "DenseNet {} px (growth {}, blocks {:?}), NIH labels, trained by thorax on {train_rows} images",
            config.resolution_px, config.growth_rate, config.block_config
        )
    });
    let split_text = match args.validation_split() {
        ValidationSplit::Fold(fold) => format!("validation = fold {fold}"),
        ValidationSplit::PatientFraction(f) => format!("validation = {f} of the patients (seed {})", config.seed),
    };
    let provenance = Provenance {
        source: "trained by thorax (`thorax train classifier`); weights of the best validation loss".to_owned(),
        source_sha256: None,
        training_data: Some(args.data_description.clone().unwrap_or_else(|| {
            format!(
                "{} images from {} (labels {}): {train_rows} training, {validation_rows} validation, split by patient \
                 ({split_text})",
                data.len(),
                args.images.display(),
                args.labels.display()
            )
        })),
        licence: args.licence.clone(),
        training_command: Some(training_command()),
    };
    let mut card = trainer.result_card(&name, provenance);
    let auc_json: serde_json::Map<String, serde_json::Value> = aucs
        .iter()
        .map(|a| {
            let value = serde_json::json!({"auc": a.auc, "positives": a.positives, "negatives": a.negatives});
            (a.label.clone(), value)
        })
        .collect();
    let counts: serde_json::Map<String, serde_json::Value> =
        config.labels.iter().cloned().zip(data.label_counts().into_iter().map(serde_json::Value::from)).collect();
    let defined: Vec<f64> = aucs.iter().filter_map(|a| a.auc).collect();
    let mean_auc = (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64);
    let metrics = [
        ("validation_auc", serde_json::Value::Object(auc_json)),
        ("validation_auc_mean", serde_json::json!(mean_auc)),
        ("validation_loss_best", serde_json::json!(trainer.best_validation_loss())),
        ("best_step", serde_json::json!(trainer.best_step())),
        ("training_steps", serde_json::json!(trainer.step())),
        ("epochs", serde_json::json!(trainer.history().len())),
        ("training_images", serde_json::json!(train_rows)),
        ("validation_images", serde_json::json!(validation_rows)),
        ("label_counts_all_rows", serde_json::Value::Object(counts)),
        ("batch", serde_json::json!(config.batch)),
        ("learning_rate_initial", serde_json::json!(config.lr)),
        ("learning_rate_final", serde_json::json!(trainer.lr())),
        ("augmentation", serde_json::json!(format!("random translation up to {} px", config.max_shift_px))),
        ("train_wall_seconds", serde_json::json!(trainer.train_seconds())),
        ("device", serde_json::json!(compute.label)),
        ("stop_reason", serde_json::json!(stop_reason)),
    ];
    for (key, value) in metrics {
        card.metrics.insert(key.to_owned(), value);
    }
    trainer.save_result(&args.out, &card).with_context(|| format!("writing the classifier {}", args.out.display()))?;
    eprintln!("validation AUC ({validation_rows} images; annotated rows only):");
    for auc in &aucs {
        eprintln!("  {:<20} {:>6}  ({} positive, {} negative)", auc.label, auc_text(auc), auc.positives, auc.negatives);
    }
    eprintln!(
        "done: {totals}; {stop_reason}; classifier {}, checkpoint {}",
        args.out.display(),
        checkpoint_path.display()
    );
    if args.json {
        let summary = serde_json::json!({
            "classifier": args.out,
            "checkpoint": checkpoint_path,
            "steps": trainer.step(),
            "steps_this_run": totals.steps_this_run,
            "run_seconds": totals.run_seconds,
            "steps_per_second": totals.steps_per_second,
            "train_wall_seconds": trainer.train_seconds(),
            "training_images": train_rows,
            "validation_images": validation_rows,
            "device": compute.label,
            "final_train_loss": last_loss,
            "best_validation_loss": trainer.best_validation_loss(),
            "epochs": trainer.history(),
            "validation_auc": aucs,
            "stop_reason": stop_reason,
        });
        println!("{summary}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: TrainClassifierArgs,
    }

    #[test]
    fn a_repeated_block_config_is_refused_instead_of_appended() {
        let args = |extra: &[&'static str]| {
            let mut args = vec!["train-classifier", "--images", "i", "--labels", "l.csv", "--out", "c.safetensors"];
            args.extend_from_slice(extra);
            Command::try_parse_from(args)
        };
        assert_eq!(args(&["--block-config", "1,1,1,1"]).unwrap().args.block_config, Some(vec![1, 1, 1, 1]));
        let error = args(&["--block-config", "1,1,1,1", "--block-config", "2,2"]).err().unwrap();
        assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
