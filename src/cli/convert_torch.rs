//! `thorax convert densenet`, `thorax convert cyclegan` and `thorax convert inception`: PyTorch checkpoints to
//! safetensors with a model card.

use std::path::{Path, PathBuf};

use crate::cli::output_paths::{check_model_output, check_not_replacing};
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::cli::translate::DirectionArg;
use crate::convert::pytorch::{
    Converted, cyclegan_weights, densenet_weights, inception_weights, read_checkpoint_bytes,
};
use crate::models::card::Provenance;
use crate::models::cyclegan::{CycleGanGenerator, Direction};
use crate::models::densenet::DenseNet121;
use crate::models::inception::{FidInceptionV3, PUBLISHED_SHA256_PREFIX};
use crate::models::labels::NIH_CLASSIFIER_LABELS;
use crate::models::weights::{Weights, save};

/// Arguments of `thorax convert densenet`.
#[derive(Debug, clap::Args)]
pub struct ConvertDensenetArgs {
    /// The PyTorch checkpoint (.pth, zip or legacy format).
    pub checkpoint: PathBuf,
    /// The safetensors file to write.
    pub out: PathBuf,
    /// Output label names in order: `nih14` (reproduce-chexnet's 14 NIH labels) or a comma-separated list.
    #[arg(long, default_value = "nih14")]
    pub labels: String,
    /// Name shown in the model picker (default: the checkpoint's file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Replace OUT if it already exists; without it such a run is refused before anything is converted.
    #[arg(long)]
    pub overwrite: bool,
    /// Print one JSON document describing the conversion.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `thorax convert cyclegan`.
#[derive(Debug, clap::Args)]
pub struct ConvertCycleganArgs {
    /// The generator state_dict (.pth, zip or legacy format).
    pub checkpoint: PathBuf,
    /// The safetensors file to write.
    pub out: PathBuf,
    /// Which way this generator maps (default: b2a when the file name contains `G_B`, else a2b).
    #[arg(long, value_enum)]
    pub direction: Option<DirectionArg>,
    /// Names of domain A and domain B, comma-separated.
    #[arg(long, default_value = "NIH,CheXpert")]
    pub domains: String,
    /// Name shown in the model picker (default: the checkpoint's file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Replace OUT if it already exists; without it such a run is refused before anything is converted.
    #[arg(long)]
    pub overwrite: bool,
    /// Print one JSON document describing the conversion.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `thorax convert inception`.
#[derive(Debug, clap::Args)]
pub struct ConvertInceptionArgs {
    /// pytorch-fid's FID weights, pt_inception-2015-12-05-6726825d.pth (a state_dict of the FID Inception-v3).
    pub checkpoint: PathBuf,
    /// The safetensors file to write.
    pub out: PathBuf,
    /// Name shown in results (default: the checkpoint's file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Replace OUT if it already exists; without it such a run is refused before anything is converted.
    #[arg(long)]
    pub overwrite: bool,
    /// Print one JSON document describing the conversion.
    #[arg(long)]
    pub json: bool,
}

/// The output of a conversion is a new safetensors file, never the checkpoint it converts, and replaces an existing
/// file only with `--overwrite`.
fn check_conversion_paths(checkpoint: &Path, out: &Path, overwrite: bool) -> anyhow::Result<()> {
    check_model_output("the output", out, &[("the checkpoint converted", checkpoint)])?;
    check_not_replacing(&[("the output", out)], overwrite)
}

/// The label list for `--labels`.
fn parse_label_list(text: &str) -> anyhow::Result<Vec<String>> {
    if text == "nih14" {
        return Ok(NIH_CLASSIFIER_LABELS.iter().map(|l| (*l).to_owned()).collect());
    }
    let labels: Vec<String> = text.split(',').map(|l| l.trim().to_owned()).collect();
    if labels.iter().any(String::is_empty) {
        bail!("--labels `{text}`: use nih14 or a comma-separated list of non-empty names");
    }
    let mut unique = labels.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != labels.len() {
        bail!("--labels `{text}`: a label name appears twice");
    }
    Ok(labels)
}

fn read_bytes(path: &Path) -> anyhow::Result<(Vec<u8>, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let sha256 = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    Ok((bytes, sha256))
}

fn provenance(path: &Path, sha256: &str) -> Provenance {
    Provenance {
        source: path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
        source_sha256: Some(sha256.to_owned()),
        ..Provenance::default()
    }
}

fn default_name(path: &Path, kind: &str) -> String {
    let stem = path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    format!("{kind} ({stem})")
}

/// Copies weights (tensors are reference-counted) so one copy can be checked by building the network.
fn clone_weights(weights: &Weights) -> Weights {
    Weights { card: weights.card.clone(), tensors: weights.tensors.clone() }
}

fn report(
    args_json: bool,
    out: &Path,
    converted: &Converted,
    format: &str,
    container: &str,
    sha256: &str,
) -> anyhow::Result<()> {
    let card = &converted.weights.card;
    if args_json {
        let document = serde_json::json!({
            "out": out.display().to_string(),
            "kind": card.kind,
            "name": card.name,
            "format": format,
            "container": container,
            "tensors": converted.weights.tensors.len(),
            "dropped": converted.dropped,
            "hyper": card.hyper,
            "labels": card.labels,
            "source_sha256": sha256,
        });
        println!("{}", serde_json::to_string(&document)?);
    } else {
        println!(
            "wrote {} ({} tensors from the {format} checkpoint's {container}; architecture {:?})",
            out.display(),
            converted.weights.tensors.len(),
            card.hyper
        );
        let dropped = &converted.dropped;
        if !dropped.is_empty() {
            let shown: Vec<&str> = dropped.iter().take(4).map(String::as_str).collect();
            let more = dropped.len() - shown.len();
            let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
            println!("left out {} unused tensors: {}{tail}", dropped.len(), shown.join(", "));
        }
    }
    Ok(())
}

/// Runs `thorax convert densenet`.
pub fn run_densenet(args: &ConvertDensenetArgs) -> anyhow::Result<()> {
    check_conversion_paths(&args.checkpoint, &args.out, args.overwrite)?;
    let labels = parse_label_list(&args.labels)?;
    let (bytes, sha256) = read_bytes(&args.checkpoint)?;
    let checkpoint = read_checkpoint_bytes(&bytes, &args.checkpoint)?;
    let name = args.name.clone().unwrap_or_else(|| default_name(&args.checkpoint, "DenseNet-121"));
    let converted =
        densenet_weights(&checkpoint, labels, &name, provenance(&args.checkpoint, &sha256), &args.checkpoint)?;
    DenseNet121::from_weights(clone_weights(&converted.weights)).context("checking the converted classifier")?;
    save(&args.out, &converted.weights.tensors, &converted.weights.card)
        .with_context(|| format!("writing {}", args.out.display()))?;
    report(args.json, &args.out, &converted, &format!("{:?}", checkpoint.format), &checkpoint.container, &sha256)
}

/// Runs `thorax convert cyclegan`.
pub fn run_cyclegan(args: &ConvertCycleganArgs) -> anyhow::Result<()> {
    check_conversion_paths(&args.checkpoint, &args.out, args.overwrite)?;
    let domains: Vec<&str> = args.domains.split(',').map(str::trim).collect();
    let [domain_a, domain_b] = domains.as_slice() else {
        bail!("--domains `{}`: give exactly two names, A then B", args.domains);
    };
    let direction = match args.direction {
        Some(direction) => Direction::from(direction),
        None if args.checkpoint.to_string_lossy().contains("G_B") => Direction::BToA,
        None => Direction::AToB,
    };
    let (bytes, sha256) = read_bytes(&args.checkpoint)?;
    let checkpoint = read_checkpoint_bytes(&bytes, &args.checkpoint)?;
    let name = args.name.clone().unwrap_or_else(|| default_name(&args.checkpoint, "CycleGAN generator"));
    let converted = cyclegan_weights(
        &checkpoint,
        direction,
        [domain_a, domain_b],
        &name,
        provenance(&args.checkpoint, &sha256),
        &args.checkpoint,
    )?;
    CycleGanGenerator::from_weights(clone_weights(&converted.weights)).context("checking the converted generator")?;
    save(&args.out, &converted.weights.tensors, &converted.weights.card)
        .with_context(|| format!("writing {}", args.out.display()))?;
    report(args.json, &args.out, &converted, &format!("{:?}", checkpoint.format), &checkpoint.container, &sha256)
}

/// Runs `thorax convert inception`.
pub fn run_inception(args: &ConvertInceptionArgs) -> anyhow::Result<()> {
    check_conversion_paths(&args.checkpoint, &args.out, args.overwrite)?;
    let (bytes, sha256) = read_bytes(&args.checkpoint)?;
    let checkpoint = read_checkpoint_bytes(&bytes, &args.checkpoint)?;
    let name = args.name.clone().unwrap_or_else(|| default_name(&args.checkpoint, "FID Inception-v3"));
    let converted = inception_weights(&checkpoint, &name, provenance(&args.checkpoint, &sha256), &args.checkpoint)?;
    FidInceptionV3::from_weights(clone_weights(&converted.weights)).context("checking the converted network")?;
    save(&args.out, &converted.weights.tensors, &converted.weights.card)
        .with_context(|| format!("writing {}", args.out.display()))?;
    if !sha256.starts_with(PUBLISHED_SHA256_PREFIX) {
        eprintln!(
            "warning: {} is not pytorch-fid's published FID weights (SHA-256 does not start with \
             {PUBLISHED_SHA256_PREFIX}); FID with it is not comparable with published values",
            args.checkpoint.display()
        );
    }
    report(args.json, &args.out, &converted, &format!("{:?}", checkpoint.format), &checkpoint.container, &sha256)
}
