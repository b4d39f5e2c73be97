//! `thorax convert progan-tf NETWORK.pkl OUT.safetensors [--dataset chexpert|nih] [--json]`.

use std::path::PathBuf;

use crate::cli::output_paths::{check_not_replacing, check_outputs_apart};
use anyhow::Context;

use crate::convert::progan_tf::{GanDataset, convert_progan_file};

/// Convert an original ProGAN `network-snapshot-*.pkl` (TF pickle of (G, D, Gs)) to safetensors; reads Gs.
#[derive(Debug, clap::Args)]
pub struct ConvertProganArgs {
    /// The original pickle, e.g. network-snapshot-012000.pkl.
    pub network: PathBuf,
    /// The safetensors file to write.
    pub out: PathBuf,
    /// The dataset the GAN was trained on; fixes the label order. Without it a 14-label network is assumed to be
    /// the CheXpert GAN (the original config.py) and the card says it was assumed.
    #[arg(long, value_enum)]
    pub dataset: Option<GanDataset>,
    /// Replace OUT if it already exists; without it such a run is refused before anything is converted.
    #[arg(long)]
    pub overwrite: bool,
    /// Print one JSON document (the written card) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs the conversion and reports what was written.
pub fn run(args: &ConvertProganArgs) -> anyhow::Result<()> {
    check_outputs_apart(&[("the output", &args.out)], &[("the pickle converted", &args.network)])?;
    check_not_replacing(&[("the output", &args.out)], args.overwrite)?;
    let converted = convert_progan_file(&args.network, &args.out, args.dataset)
        .with_context(|| format!("converting {}", args.network.display()))?;
    let card = &converted.card;
    if args.json {
        let document = serde_json::json!({
            "output": args.out,
            "tensors": converted.tensors.len(),
            "card": card,
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        if args.dataset.is_none() && card.labels.len() == 14 {
            eprintln!("note: no --dataset given; assuming the CheXpert label order");
        }
        println!("wrote {}", args.out.display());
        println!("  {}", card.name);
        println!(
            "  {} px, {} channel(s), latent {}, {} labels: {}",
            card.resolution,
            card.channels,
            card.hyper.get("latent_size").copied().unwrap_or_default(),
            card.labels.len(),
            card.labels.join(", ")
        );
        println!("  source SHA-256 {}", card.provenance.source_sha256.as_deref().unwrap_or("-"));
    }
    Ok(())
}
