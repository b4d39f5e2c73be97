//! `thorax card FILE`: shows the model card of a weights file, and with `--add-metrics JSON` records measured
//! quality in it (e.g. the Frechet distance and memorisation audit of a trained generator), keeping every tensor
//! and its dtype as they are.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use candle_core::Device;

use crate::models::registry::read_card;
use crate::models::weights;

/// Options of `thorax card`.
#[derive(Debug, clap::Args)]
pub struct CardArgs {
    /// A weights file (.safetensors with a model card).
    pub file: PathBuf,
    /// A JSON file holding one object, whose keys are written into the card's `metrics` (replacing keys of the same
    /// name). The file's SHA-256 changes, and with it the `model_sha256` that generated images record.
    #[arg(long)]
    pub add_metrics: Option<PathBuf>,
    /// Print the card as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &CardArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let mut card = read_card(&bytes)
        .map_err(|reason| anyhow::anyhow!("{}: no readable model card: {reason}", args.file.display()))?;
    if let Some(metrics_path) = &args.add_metrics {
        let text = std::fs::read_to_string(metrics_path)
            .with_context(|| format!("reading the metrics {}", metrics_path.display()))?;
        let value: serde_json::Value =
            // Editors on Windows save UTF-8 with a byte-order mark, which JSON does not allow.
            serde_json::from_str(text.trim_start_matches('\u{feff}'))
                .with_context(|| format!("{} is not JSON", metrics_path.display()))?;
        let serde_json::Value::Object(metrics) = value else {
            bail!("{} must hold a JSON object of metric names and values", metrics_path.display());
        };
        card.metrics.extend(metrics);
        let tensors: HashMap<_, _> = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?
            .into_iter()
            .collect();
        // weights::save writes atomically and keeps the file's permissions.
        weights::save(&args.file, &tensors, &card).with_context(|| format!("writing {}", args.file.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&card)?);
    } else {
        println!(
            "{} ({:?}, {}{})",
            card.name,
            card.kind,
            card.shape_summary(),
            if card.untrained { ", UNTRAINED" } else { "" }
        );
        println!("source: {}", card.provenance.source);
        if let Some(data) = &card.provenance.training_data {
            println!("training data: {data}");
        }
        for (key, value) in &card.metrics {
            println!("  {key}: {value}");
        }
    }
    Ok(())
}
