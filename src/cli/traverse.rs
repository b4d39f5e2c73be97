//! `thorax traverse`: one pathology label swept while the latent stays fixed, as a looping animated GIF, to show
//! what the generator does with that label (a slide, a teaching file, a check that the label means what it says).
//! Frame k of N is `generate --seed S -n 1` with the label at `from + k (to - from) / (N - 1)`, the same pixels
//! as that command's PNG; the provenance goes into a GIF comment.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::Tensor;

use crate::atomic_file::{IfExists, write_file};
use crate::cli::generate::{load_generator, parse_labels};
use crate::cli::output_paths::check_not_replacing;
use crate::models::progan::{NumpyRandomState, labels_text, seeded_latent_description, to_png_u8};

/// The most frames one animation holds: a GIF slide rarely needs more than a few seconds.
const MAX_FRAMES: usize = 240;

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

/// The label's value in each frame: `frames` evenly spaced values from `from` to `to`, both included.
pub fn sweep_values(from: f32, to: f32, frames: usize) -> Vec<f32> {
    let last = frames.saturating_sub(1).max(1) as f32;
    (0..frames).map(|k| from + (to - from) * (k as f32 / last)).collect()
}

/// Frame delays in GIF units (1/100 s) for `fps`: the nearest, at least 2 (browsers slow anything faster to 10).
fn frame_delay_cs(fps: f32) -> u16 {
    (100.0 / fps).round().clamp(2.0, 6000.0) as u16
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
    let mut rng = NumpyRandomState::new(args.seed);
    let latent: Vec<f32> = (0..architecture.latent_size).map(|_| rng.standard_normal() as f32).collect();
    let frames = values.len();
    let z = Tensor::from_vec(latent, (1, architecture.latent_size), &device)?;
    // One frame per pass, as `generate -n 1` runs it: a batch of several can round a pixel differently (the sums of
    // a batched product run in another order), and a frame must be exactly that command's image.
    let (mut pixels, mut shape) = (Vec::new(), [0usize; 3]);
    for &value in &values {
        let mut row = base_labels.clone();
        row[label_index] = value;
        let y = Tensor::from_vec(row, (1, architecture.label_size), &device)?;
        let image = generator.forward(&z, &y).context("running the generator")?;
        let (_, channels, height, width) = image.dims4()?;
        shape = [channels, height, width];
        pixels.extend(image.flatten_all()?.to_vec1::<f32>()?.into_iter().map(to_png_u8));
    }
    let [channels, height, width] = shape;
    if channels != 1 {
        bail!("the generator makes {channels}-channel images; an animation is written for grayscale (1 channel)");
    }
    let mut order: Vec<usize> = (0..frames).collect();
    if args.bounce {
        // Back without repeating either end: 0..N-1 then N-2..1.
        order.extend((1..frames - 1).rev());
    }
    let comment = format!(
        "Synthetic images: generated, no patient data. thorax traverse: {} from {} to {} in {frames} frames{}; \
         model {model_name} (sha256 {model_sha256}, {}); latent {}; other labels {}",
        card.labels[label_index],
        args.from,
        args.to,
        if args.bounce { ", forward then back" } else { "" },
        card.name,
        seeded_latent_description(args.seed, 1, architecture.latent_size, 0),
        labels_text(&card.labels, &base_labels),
    );
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

/// A looping grayscale GIF of the `width` x `height` frames in `pixels` (frame after frame), shown in `order`, with
/// `comment` in a comment extension.
fn encode_gif(
    pixels: &[u8],
    width: usize,
    height: usize,
    order: &[usize],
    delay_cs: u16,
    comment: &str,
) -> anyhow::Result<Vec<u8>> {
    let (Ok(width16), Ok(height16)) = (u16::try_from(width), u16::try_from(height)) else {
        bail!("{width}x{height} px is larger than a GIF can hold (65535 px a side)");
    };
    // Grey level v is palette entry v: the frames keep their 8-bit values exactly.
    let palette: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v]).collect();
    let mut encoded = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut encoded, width16, height16, &palette)?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        // 0xFE: the Comment Extension of GIF89a.
        encoder.write_raw_extension(gif::AnyExtension(0xFE), &[comment.as_bytes()])?;
        let frame_px = width * height;
        for &index in order {
            let Some(buffer) = pixels.get(index * frame_px..(index + 1) * frame_px) else {
                bail!("frame {index} is missing from the generator's output");
            };
            let frame = gif::Frame {
                delay: delay_cs,
                width: width16,
                height: height16,
                buffer: std::borrow::Cow::Borrowed(buffer),
                ..gif::Frame::default()
            };
            encoder.write_frame(&frame)?;
        }
    }
    Ok(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_includes_both_ends_evenly() {
        assert_eq!(sweep_values(0.0, 1.0, 5), [0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(sweep_values(1.0, 0.0, 2), [1.0, 0.0]);
    }

    #[test]
    fn frame_delays_are_in_hundredths_and_never_below_two() {
        assert_eq!(frame_delay_cs(8.0), 13);
        assert_eq!(frame_delay_cs(25.0), 4);
        assert_eq!(frame_delay_cs(100.0), 2);
        assert_eq!(frame_delay_cs(0.5), 200);
    }

    #[test]
    fn a_gif_keeps_the_grey_values_and_the_comment() {
        let pixels: Vec<u8> = (0..2 * 3 * 2).map(|v| (v * 20) as u8).collect();
        let encoded = encode_gif(&pixels, 3, 2, &[0, 1, 0], 10, "made by a test").unwrap();
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::Indexed);
        let mut decoder = options.read_info(encoded.as_slice()).unwrap();
        let mut frames = Vec::new();
        while let Some(frame) = decoder.read_next_frame().unwrap() {
            assert_eq!((frame.width, frame.height, frame.delay), (3, 2, 10));
            frames.push(frame.buffer.to_vec());
        }
        assert_eq!(frames, [pixels[..6].to_vec(), pixels[6..].to_vec(), pixels[..6].to_vec()]);
        let palette = decoder.global_palette().unwrap();
        assert_eq!(&palette[3 * 120..3 * 121], [120, 120, 120]);
        assert!(encoded.windows(14).any(|w| w == b"made by a test"));
    }
}
