//! `thorax traverse`: one pathology label swept while the latent stays fixed, as a looping animated GIF, to show
//! what the generator does with that label (a slide, a teaching file, a check that the label means what it says).
//! Frame k of N is `generate --seed S -n 1` with the label at `from + k (to - from) / (N - 1)`, the same pixels
//! as that command's PNG; the provenance goes into a GIF comment.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::atomic_file::{IfExists, write_file};
use crate::cli::generate::{load_generator, parse_labels};
use crate::cli::output_paths::check_not_replacing;
use crate::models::label_traversal::{
    MAX_FRAMES, Sweep, encode_gif, frame_delay_cs, play_order, provenance_comment, render_frames, sweep_values,
};

/// Sweep one label of a conditional ProGAN with the latent fixed, as an animated GIF.
#[derive(Debug, clap::Args)]
pub struct TraverseArgs {
    /// Generator weights (.safetensors with a model card); default: the embedded default generator.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The label swept, by name as in the model card (e.g. Cardiomegaly).
    #[arg(long)]
    pub label: String,
    /// The label's value in the first frame.
    #[arg(long, default_value_t = 0.0)]
    pub from: f32,
    /// The label's value in the last frame.
    #[arg(long, default_value_t = 1.0)]
    pub to: f32,
    /// Frames from `--from` to `--to` (at least 2).
    #[arg(long, default_value_t = 16)]
    pub frames: usize,
    /// The other labels, held fixed: "Name=v,..." (unnamed labels are 0).
    #[arg(long, default_value = "")]
    pub labels: String,
    /// The latent: numpy's RandomState(SEED).randn(1, latent_size), the latent of `generate --seed SEED -n 1`.
    #[arg(long)]
    pub seed: u32,
    /// Frames per second.
    #[arg(long, default_value_t = 8.0)]
    pub fps: f32,
    /// Play forward then back (--to to --from), so the loop has no jump.
    #[arg(long)]
    pub bounce: bool,
    /// The animated GIF to write.
    #[arg(long)]
    pub out: PathBuf,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: crate::engine::device::DeviceChoice,
    /// Print one JSON document describing what was written.
    #[arg(long)]
    pub json: bool,
    /// Replace the --out file if it exists; without it such a run is refused before anything is generated.
    #[arg(long)]
    pub overwrite: bool,
}

/// Runs `thorax traverse`. `default_model_bytes` is the embedded default generator, used without `--model`.
pub fn run(args: &TraverseArgs, default_model_bytes: Option<&[u8]>) -> anyhow::Result<()> {
    if args.frames < 2 || args.frames > MAX_FRAMES {
        bail!("--frames {} is out of range: give 2 to {MAX_FRAMES}", args.frames);
    }
    if !(args.fps.is_finite() && args.fps > 0.0) {
        bail!("--fps {} must be a positive number", args.fps);
    }
    if !(args.from.is_finite() && args.to.is_finite()) {
        bail!("--from and --to must be numbers");
    }
    if args.out.is_dir() {
        bail!("--out {} is a folder: give a .gif file", args.out.display());
    }
    check_not_replacing(&[("--out", args.out.as_path())], args.overwrite)?;
    let device = crate::engine::device::open_device(args.device)?.device;
    let (generator, model_sha256, model_name) = load_generator(args.model.as_deref(), default_model_bytes, &device)?;
    let card = generator.card().clone();
    let architecture = generator.architecture().clone();
    let Some(label_index) = card.labels.iter().position(|name| name.eq_ignore_ascii_case(&args.label)) else {
        bail!("--label {}: the model has no such label (its labels: {})", args.label, card.labels.join(", "));
    };
    let base_labels = parse_labels(&args.labels, &card, "--labels")?;
    let values = sweep_values(args.from, args.to, args.frames);

    let started = Instant::now();
    let (pixels, width, height) = render_frames(&generator, args.seed, &base_labels, label_index, &values, &device)?;
    let frames = values.len();
    let order = play_order(frames, args.bounce);
    let sweep = Sweep { label_index, base_labels: &base_labels, values: &values, seed: args.seed, bounce: args.bounce };
    let comment = provenance_comment(&card, &sweep, &model_name, &model_sha256, architecture.latent_size);
    let delay_cs = frame_delay_cs(args.fps);
    let encoded = encode_gif(&pixels, width, height, &order, delay_cs, &comment)
        .with_context(|| format!("encoding {}", args.out.display()))?;
    write_file(&args.out, IfExists::replace_if(args.overwrite), &encoded)?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;

    if args.json {
        let document = serde_json::json!({
            "out": args.out,
            "model": model_name,
            "model_sha256": model_sha256,
            "untrained": card.untrained,
            "label": card.labels[label_index],
            "values": values,
            "frames_shown": order.len(),
            "frame_delay_ms": u32::from(delay_cs) * 10,
            "seed": args.seed,
            "size_px": [width, height],
            "elapsed_ms": elapsed_ms,
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        if card.untrained {
            eprintln!("note: {} is an UNTRAINED placeholder (random weights)", card.name);
        }
        println!(
            "{}: {} from {} to {} in {frames} frames of {width}x{height} px ({} shown, {} ms each) in {elapsed_ms:.0} ms",
            args.out.display(),
            card.labels[label_index],
            args.from,
            args.to,
            order.len(),
            u32::from(delay_cs) * 10,
        );
    }
    Ok(())
}
