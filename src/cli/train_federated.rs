//! `thorax train gan --federated --sites DIR1,DIR2,... --rounds R --local-steps K`: FedAvg over sites that never
//! share their images (`train::federated`), with a progress line per round, per-site checkpoints that resume, a loss
//! log, and the averaged EMA generator saved with a card naming every site and its image count.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::DType;

use crate::cli::train::{GAN_LOG_HEADER, TrainGanArgs, build_trainer, default_checkpoint_path, log_line};
use crate::cli::train_run::{LossLog, RunClock, check_run_outputs, format_duration, training_command};
use crate::engine::device::open_device;
use crate::models::card::Provenance;
use crate::train::federated::{FederatedSchedule, Site, train_federated};
use crate::train::gan_trainer::{GanTrainer, GeneratorCopy};

/// The labels file of a site folder, first found: ours, NIH ChestX-ray14's, CheXpert's.
const SITE_LABEL_FILES: [&str; 4] = ["labels.csv", "Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv", "train.csv"];

/// `BASE.ckpt.safetensors` -> `BASE.ckpt.site{index}.safetensors`: each site's own checkpoint.
pub fn site_checkpoint_path(base: &Path, index: usize) -> PathBuf {
    let stem = base.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "checkpoint".to_owned());
    base.with_file_name(format!("{stem}.site{index}.safetensors"))
}

/// The first site folder given twice (compared after resolving links and `..`, so `a` and `./a` are one site).
fn repeated_site(sites: &[PathBuf]) -> Option<&PathBuf> {
    let mut seen = std::collections::HashSet::new();
    sites.iter().find(|folder| !seen.insert(std::fs::canonicalize(folder).unwrap_or_else(|_| (*folder).clone())))
}

pub fn train_gan_federated(args: &TrainGanArgs) -> anyhow::Result<()> {
    if args.sites.is_empty() {
        bail!("--federated needs --sites DIR1,DIR2,...");
    }
    if let Some(repeated) = repeated_site(&args.sites) {
        bail!(
            "--sites names {} twice: FedAvg would weight that site's data double and train it as two hospitals",
            repeated.display()
        );
    }
    let compute = open_device(args.device).context("--device")?;
    let device = compute.device.clone();
    let base_checkpoint = match &args.resume {
        Some(path) => path.clone(),
        None => args.checkpoint.clone().unwrap_or_else(|| default_checkpoint_path(&args.out)),
    };
    let mut sites = Vec::with_capacity(args.sites.len());
    for (index, folder) in args.sites.iter().enumerate() {
        // Our layout's labels.csv, or the file the NIH or CheXpert release ships; --layout etc. say how to read it.
        let Some(labels) = SITE_LABEL_FILES.iter().map(|name| folder.join(name)).find(|path| path.is_file()) else {
            bail!(
                "site {}: no labels file in {} (looked for {})",
                index,
                folder.display(),
                SITE_LABEL_FILES.join(", ")
            );
        };
        let name = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| format!("{index}"));
        let checkpoint = site_checkpoint_path(&base_checkpoint, index);
        if args.resume.is_some() && !checkpoint.is_file() {
            bail!("--resume: site {name} has no checkpoint {}", checkpoint.display());
        }
        sites.push(Site {
            name,
            images: folder.clone(),
            labels,
            checkpoint: Some(checkpoint),
            layout: args.layout.options(),
        });
    }
    let config = match &args.resume {
        Some(_) => GanTrainer::resume(sites[0].checkpoint.as_deref().unwrap_or(&base_checkpoint), &device)
            .context("reading site 0's checkpoint")?
            .config()
            .clone(),
        None => build_trainer(&TrainGanArgs { resume: None, ..args.clone() }, &device)?.config().clone(),
    };
    for site in &sites {
        if let Some(checkpoint) = &site.checkpoint {
            // A resumed federation continues each site's checkpoint in place.
            let continued = args.resume.is_some().then_some(checkpoint.as_path());
            let outputs = [("--out", args.out.as_path()), ("site checkpoint", checkpoint.as_path())];
            let site_folders: Vec<_> = sites.iter().map(|s| ("a site folder", s.images.as_path())).collect();
            check_run_outputs(&outputs, &site_folders, checkpoint, continued, args.overwrite)
                .with_context(|| format!("site {}", site.name))?;
        }
    }
    if args.resume.is_none() && (args.rounds == 0 || args.local_steps == 0) {
        bail!("--rounds and --local-steps must be at least 1 for a new run");
    }
    let schedule =
        FederatedSchedule { rounds: args.rounds, local_steps: args.local_steps, resume: args.resume.is_some() };
    let mut log = LossLog::open(args.log.as_deref(), GAN_LOG_HEADER, args.resume.is_some())?;
    eprintln!(
        "thorax train gan --federated: {} sites, {} rounds of {} local steps, {} px, batch {}, on {}",
        sites.len(),
        schedule.rounds,
        schedule.local_steps,
        config.resolution_px,
        config.batch,
        compute.label
    );
    // Counted in rounds: the progress line's rate is rounds per second.
    let clock = RunClock::start(0);
    let mut log_error = None;
    let outcome = train_federated(&config, &sites, &schedule, &device, |report| {
        let step = report.round * schedule.local_steps;
        let parts: Vec<String> = report
            .sites
            .iter()
            .map(|(name, images, l)| {
                format!("{name} ({images} img) D {:.3} G {:.3}", l.discriminator.total, l.generator.total)
            })
            .collect();
        let rate = clock.rate_per_s(report.round);
        eprintln!("round {}/{}  step {step}  {}  {rate:.3} round/s", report.round, schedule.rounds, parts.join("  "));
        for (_, _, losses) in &report.sites {
            if let Err(error) = log.write_row(|| log_line(step, losses, clock.elapsed_seconds())) {
                log_error.get_or_insert(error);
            }
        }
    })
    .context("federated training")?;
    if let Some(error) = log_error {
        return Err(error);
    }
    let total_images: usize = outcome.site_images.iter().map(|(_, n)| n).sum();
    let site_list: Vec<String> = outcome.site_images.iter().map(|(name, n)| format!("{name}: {n} images")).collect();
    let name = args.name.clone().unwrap_or_else(|| {
        format!("ProGAN {} px, federated over {} sites ({total_images} images)", config.resolution_px, sites.len())
    });
    let provenance = Provenance {
        source: "trained by thorax (`thorax train gan --federated`, FedAvg weighted by image count); the averaged \
                 EMA generator"
            .to_owned(),
        source_sha256: None,
        training_data: Some(args.data_description.clone().unwrap_or_else(|| site_list.join("; "))),
        licence: args.licence.clone(),
        training_command: Some(training_command()),
    };
    let mut card = outcome.trainer.generator_card(&name, provenance);
    let metrics = [
        ("federated_sites", serde_json::json!(site_list)),
        ("federated_rounds", serde_json::json!(outcome.rounds)),
        ("local_steps_per_round", serde_json::json!(schedule.local_steps)),
        ("training_steps_per_site", serde_json::json!(outcome.rounds * schedule.local_steps)),
        ("training_images", serde_json::json!(total_images)),
        ("batch", serde_json::json!(config.batch)),
        ("learning_rate", serde_json::json!(config.adam.lr)),
        ("run_wall_seconds", serde_json::json!(clock.elapsed_seconds())),
        ("device", serde_json::json!(compute.label)),
    ];
    for (key, value) in metrics {
        card.metrics.insert(key.to_owned(), value);
    }
    let dtype = if args.f16 { DType::F16 } else { DType::F32 };
    outcome
        .trainer
        .save_generator(&args.out, GeneratorCopy::Ema, &card, dtype)
        .with_context(|| format!("writing the generator {}", args.out.display()))?;
    let run_seconds = clock.elapsed_seconds();
    eprintln!(
        "done: {} rounds over {} sites in {}; generator {}, site checkpoints next to {}",
        outcome.rounds,
        sites.len(),
        format_duration(run_seconds),
        args.out.display(),
        base_checkpoint.display()
    );
    if args.json {
        let summary = serde_json::json!({
            "generator": args.out,
            "site_checkpoints": sites.iter().map(|s| s.checkpoint.clone()).collect::<Vec<_>>(),
            "sites": outcome.site_images,
            "rounds": outcome.rounds,
            "local_steps": schedule.local_steps,
            "run_seconds": run_seconds,
            "device": compute.label,
        });
        println!("{summary}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_given_twice_is_found_whatever_its_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        assert_eq!(repeated_site(&[a.clone(), b.clone()]), None);
        let a_again = dir.path().join("b/../a");
        assert_eq!(repeated_site(&[a.clone(), b, a_again.clone()]), Some(&a_again));
    }
}
