//! A label traversal: one pathology label of a conditional ProGAN swept while the latent stays fixed, each frame
//! made as `generate --seed S -n 1` makes its image, encoded as a looping grayscale GIF whose comment carries the
//! provenance. Shared by `thorax traverse` and the workbench's Export traversal GIF.

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};

use crate::models::card::ModelCard;
use crate::models::progan::{NumpyRandomState, ProganGenerator, labels_text, seeded_latent_description, to_png_u8};

/// The most frames one animation holds: a GIF slide rarely needs more than a few seconds.
pub const MAX_FRAMES: usize = 240;

/// The label's value in each frame: `frames` evenly spaced values from `from` to `to`, both included.
pub fn sweep_values(from: f32, to: f32, frames: usize) -> Vec<f32> {
    let last = frames.saturating_sub(1).max(1) as f32;
    (0..frames).map(|k| from + (to - from) * (k as f32 / last)).collect()
}

/// Frame delays in GIF units (1/100 s) for `fps`: the nearest, at least 2 (browsers slow anything faster to 10).
pub fn frame_delay_cs(fps: f32) -> u16 {
    (100.0 / fps).round().clamp(2.0, 6000.0) as u16
}

/// The frames of `label_index` taking each of `values`, the other labels at `base_labels`, the latent numpy's
/// `RandomState(seed).randn(1, latent_size)`: 8-bit grey, frame after frame, and their size (width, height).
pub fn render_frames(
    generator: &ProganGenerator,
    seed: u32,
    base_labels: &[f32],
    label_index: usize,
    values: &[f32],
    device: &Device,
) -> anyhow::Result<(Vec<u8>, usize, usize)> {
    let architecture = generator.architecture();
    if base_labels.len() != architecture.label_size || label_index >= architecture.label_size {
        bail!("the generator takes {} labels", architecture.label_size);
    }
    let mut rng = NumpyRandomState::new(seed);
    let latent: Vec<f32> = (0..architecture.latent_size).map(|_| rng.standard_normal() as f32).collect();
    let z = Tensor::from_vec(latent, (1, architecture.latent_size), device)?;
    // One frame per pass, as `generate -n 1` runs it: a batch of several can round a pixel differently (the sums of
    // a batched product run in another order), and a frame must be exactly that command's image.
    let (mut pixels, mut size) = (Vec::new(), (0, 0));
    for &value in values {
        let mut row = base_labels.to_vec();
        row[label_index] = value;
        let y = Tensor::from_vec(row, (1, architecture.label_size), device)?;
        let image = generator.forward(&z, &y).context("running the generator")?;
        let (_, channels, height, width) = image.dims4()?;
        if channels != 1 {
            bail!("the generator makes {channels}-channel images; an animation is written for grayscale (1 channel)");
        }
        size = (width, height);
        pixels.extend(image.flatten_all()?.to_vec1::<f32>()?.into_iter().map(to_png_u8));
    }
    Ok((pixels, size.0, size.1))
}

/// What a traversal sweeps, for its provenance.
pub struct Sweep<'a> {
    pub label_index: usize,
    /// Every label's value, the swept one's included (it is replaced frame by frame).
    pub base_labels: &'a [f32],
    pub values: &'a [f32],
    pub seed: u32,
    pub bounce: bool,
}

/// The GIF comment: that the frames are synthetic, and how they were made (model, latent, labels).
pub fn provenance_comment(
    card: &ModelCard,
    sweep: &Sweep<'_>,
    model_name: &str,
    model_sha256: &str,
    latent_size: usize,
) -> String {
    let label = card.labels.get(sweep.label_index).map_or("?", String::as_str);
    let (from, to) = (sweep.values.first().copied().unwrap_or(0.0), sweep.values.last().copied().unwrap_or(0.0));
    format!(
        "Synthetic images: generated, no patient data. Label traversal: {label} from {from} to {to} in {} frames{}; \
         model {model_name} (sha256 {model_sha256}, {}); latent {}; other labels {}",
        sweep.values.len(),
        if sweep.bounce { ", forward then back" } else { "" },
        card.name,
        seeded_latent_description(sweep.seed, 1, latent_size, 0),
        other_labels_text(&card.labels, sweep.base_labels, sweep.label_index),
    )
}

/// `Name=value,...` of every label but the swept one, whose value the sweep gives.
fn other_labels_text(label_names: &[String], base_labels: &[f32], swept: usize) -> String {
    let others: Vec<(String, f32)> = label_names
        .iter()
        .zip(base_labels)
        .enumerate()
        .filter(|&(index, _)| index != swept)
        .map(|(_, (name, &value))| (name.clone(), value))
        .collect();
    let (names, values): (Vec<String>, Vec<f32>) = others.into_iter().unzip();
    labels_text(&names, &values)
}

/// The order frames are shown in: forward, then (with `bounce`) back without repeating either end.
pub fn play_order(frames: usize, bounce: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..frames).collect();
    if bounce && frames > 2 {
        order.extend((1..frames - 1).rev());
    }
    order
}

/// A looping grayscale GIF of the `width` x `height` frames in `pixels` (frame after frame), shown in `order`, with
/// `comment` in a comment extension.
pub fn encode_gif(
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

    #[test]
    fn the_comments_other_labels_leave_out_the_swept_one() {
        let names: Vec<String> = ["Atelectasis", "Cardiomegaly", "Effusion"].map(String::from).to_vec();
        assert_eq!(other_labels_text(&names, &[0.25, 0.0, 1.0], 1), "Atelectasis=0.25,Effusion=1");
        assert_eq!(other_labels_text(&names, &[0.25, 0.0, 1.0], 0), "Cardiomegaly=0,Effusion=1");
    }
}
