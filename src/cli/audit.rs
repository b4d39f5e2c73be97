//! `thorax audit`: the memorisation audit of [`crate::audit`] on three folders, printed or as one JSON document.

use std::path::PathBuf;

use anyhow::Context as _;
use candle_core::Device;

use crate::audit::{AuditInputs, AuditResult, check_export_folder, export_generated, run_audit};
use crate::metrics::memorisation::DEFAULT_THRESHOLD_PERCENTILE;
use crate::models::embedding::Embedder;

/// `thorax audit` arguments.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Folder of generated images.
    #[arg(long)]
    pub generated: PathBuf,
    /// Folder of the generator's training images.
    #[arg(long)]
    pub training: PathBuf,
    /// Folder of real images the generator never saw (sets the threshold).
    #[arg(long)]
    pub heldout: PathBuf,
    /// Classifier whose pooled features embed the images (default: the embedded one).
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// Held-out percentile of nearest-training similarity above which a generated image is flagged.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD_PERCENTILE)]
    pub percentile: f64,
    /// Closest generated-training pairs to list with their pixel MS-SSIM.
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// Copy the generated images that are not flagged into this folder (a shareable set); it must be new or empty.
    #[arg(long)]
    pub export_unflagged: Option<PathBuf>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Runs the audit on `device`; `default_classifier_bytes` is the embedded classifier.
pub fn run(args: &AuditArgs, device: &Device, default_classifier_bytes: Option<&[u8]>) -> anyhow::Result<()> {
    let embedder = Embedder::load(args.classifier.as_deref(), default_classifier_bytes, device)
        .context("loading the classifier that embeds images")?;
    let inputs = AuditInputs {
        generated: args.generated.clone(),
        training: args.training.clone(),
        heldout: args.heldout.clone(),
        percentile: args.percentile,
        top_k: args.top_k,
    };
    if let Some(dir) = &args.export_unflagged {
        // Before the audit's work, not after it.
        check_export_folder(dir)?;
    }
    let result = run_audit(&embedder, &inputs, &mut |_, _, _| true)?;
    let exported = match &args.export_unflagged {
        Some(dir) => {
            let flagged: Vec<PathBuf> = result.flagged.iter().map(|pair| pair.generated.clone()).collect();
            Some(export_generated(&result.generated_files, &flagged, dir)?)
        }
        None => None,
    };
    if args.json {
        let mut value = serde_json::to_value(&result)?;
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("exported_unflagged".into(), serde_json::json!(exported));
        }
        println!("{value}");
    } else {
        print_summary(&result, exported);
    }
    Ok(())
}

fn print_summary(result: &AuditResult, exported: Option<usize>) {
    if result.untrained_model {
        println!("note: {} is untrained (random weights): similarities reflect pixels more than anatomy", result.model);
    }
    println!(
        "Embedded {} generated, {} training, {} held-out images with {} ({})",
        result.count_generated,
        result.count_training,
        result.count_heldout,
        result.model,
        result.model_sha256.get(..12).unwrap_or(&result.model_sha256)
    );
    println!(
        "Nearest-training cosine similarity: median {:.4} generated vs {:.4} held-out; threshold (held-out P{}) {:.4}",
        result.generated_nearest_similarity_median,
        result.heldout_nearest_similarity_median,
        result.threshold_percentile,
        result.threshold_cosine_similarity
    );
    println!(
        "Flagged: {} of {} generated images ({:.1} %)",
        result.count_flagged,
        result.count_generated,
        result.fraction_flagged * 100.0
    );
    for caution in &result.cautions {
        println!("caution: {caution}");
    }
    println!("Closest pairs (cosine, pixel MS-SSIM):");
    for pair in &result.closest_pairs {
        println!(
            "  {:.4}  {:.4}  {}  <->  {}{}{}",
            pair.cosine_similarity,
            pair.pixel_ms_ssim.unwrap_or(f64::NAN),
            pair.generated.display(),
            pair.nearest_training.display(),
            if pair.nearest_training_mirrored { " (mirrored)" } else { "" },
            if pair.flagged { "  FLAGGED" } else { "" }
        );
    }
    if let Some(count) = exported {
        println!("Copied {count} unflagged generated images");
    }
}
