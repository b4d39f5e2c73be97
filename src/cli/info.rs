//! `thorax info`: the compute device, the embedded samples and the models the workbench can find.

use serde::Serialize;

use crate::engine::device::{DeviceChoice, open_device};
use crate::imaging::samples::embedded_samples;

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

#[derive(Serialize)]
struct InfoReport {
    version: &'static str,
    device: String,
    device_fallback_reason: Option<String>,
    cuda_built: bool,
    samples: usize,
    models: Vec<crate::models::registry::ModelSummary>,
}

pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let device = open_device(args.device)?;
    let report = InfoReport {
        version: env!("CARGO_PKG_VERSION"),
        device: device.label,
        device_fallback_reason: device.fallback_reason,
        cuda_built: candle_core::utils::cuda_is_available(),
        samples: embedded_samples().len(),
        models: crate::models::registry::embedded_model_summaries(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("Thorax Workbench {}", report.version);
    println!("Device: {}", report.device);
    if let Some(reason) = &report.device_fallback_reason {
        println!("  (CUDA not used: {reason})");
    }
    println!("Embedded sample radiographs: {}", report.samples);
    if report.models.is_empty() {
        println!("Embedded models: none");
    }
    for model in &report.models {
        println!("Model {}: {}", model.file, model.summary);
    }
    Ok(())
}
