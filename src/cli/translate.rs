//! `thorax translate`: style transfer between the two domains of a CycleGAN generator (e.g. NIH and CheXpert).

use std::path::{Path, PathBuf};

use crate::atomic_file::{IfExists, PartialFile};
use crate::cli::output_paths::{check_not_replacing, check_outputs_apart};
use anyhow::{Context, bail};
use candle_core::{Device, Tensor};

use crate::cli::classify::{read_gray_image, unique_stem};
use crate::cli::npy_input::read_finite_npy;
use crate::convert::npy::write_npy_f32;
use crate::models::card::ModelKind;
use crate::models::cyclegan::{CycleGanGenerator, Direction};
use crate::models::preprocess::check_cyclegan_size;
use crate::models::style_transfer::{NetworkScale, network_size, translate_gray_at};
use crate::models::weights::Weights;

/// Which way to translate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DirectionArg {
    /// Domain A to domain B (the generator `G_A`).
    A2b,
    /// Domain B to domain A (the generator `G_B`).
    B2a,
}

/// `--scale`: the image size the generator sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScaleArg {
    /// Resized so the shorter side is the training resolution in the card (the image's own size when the card
    /// records none), as junyanz resizes test images to the training size
    Training,
    /// The image's own size, sides rounded to multiples of 4 (junyanz `--preprocess none`)
    Native,
}

impl From<ScaleArg> for NetworkScale {
    fn from(value: ScaleArg) -> Self {
        match value {
            ScaleArg::Training => NetworkScale::Training,
            ScaleArg::Native => NetworkScale::Native,
        }
    }
}

impl From<DirectionArg> for Direction {
    fn from(value: DirectionArg) -> Self {
        match value {
            DirectionArg::A2b => Direction::AToB,
            DirectionArg::B2a => Direction::BToA,
        }
    }
}

/// Translate radiographs with a CycleGAN generator.
#[derive(Debug, clap::Args)]
pub struct TranslateArgs {
    /// Generator weights (.safetensors with a model card); default: the embedded default generator.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Which way to translate; a generator file maps one way, and a mismatch is an error.
    #[arg(long, value_enum)]
    pub direction: Option<DirectionArg>,
    /// Image files (PNG, JPEG, TIFF); sides are rounded to multiples of 4 as junyanz does.
    #[arg(required_unless_present = "tensor_npy", conflicts_with = "tensor_npy", requires = "out")]
    pub images: Vec<PathBuf>,
    /// The size the generator sees an image at (--tensor-npy always runs as given).
    #[arg(long, value_enum, default_value = "training")]
    pub scale: ScaleArg,
    /// Folder for the translated PNGs `<name>_<direction>.png` at the network size, clip(rint((x+1)*127.5)).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Input tensor float32 [N, C, H, W] in [-1, 1], H and W multiples of 4.
    #[arg(long, requires = "out_npy")]
    pub tensor_npy: Option<PathBuf>,
    /// Output tensor float32 [N, C, H, W] in [-1, 1], the network output as is.
    #[arg(long)]
    pub out_npy: Option<PathBuf>,
    /// Print one JSON document describing what was written.
    #[arg(long)]
    pub json: bool,
    /// Replace files that already exist (`<name>_<direction>.png` in --out, the --out-npy file); without it a run
    /// that would replace one is refused before anything is translated or written.
    #[arg(long)]
    pub overwrite: bool,
}

/// Loads the generator named by `--model`, or the embedded default for the direction, and checks its direction.
fn load_generator(
    args: &TranslateArgs,
    default_model_bytes: Option<&[u8]>,
    device: &Device,
) -> anyhow::Result<CycleGanGenerator> {
    let wanted = args.direction.map(Direction::from);
    let weights = match &args.model {
        Some(path) => Weights::load(path, ModelKind::CycleganGenerator, device)
            .with_context(|| format!("loading generator {}", path.display()))?,
        None => {
            if let Some(wanted) = wanted
                && let Some(generator) = embedded_generator_for(wanted, device)
            {
                return Ok(generator);
            }
            let bytes = default_model_bytes.context("no --model given and this build has no embedded generator")?;
            Weights::from_bytes(bytes, Path::new("embedded default generator"), ModelKind::CycleganGenerator, device)
                .context("loading the embedded default generator")?
        }
    };
    let generator = CycleGanGenerator::from_weights(weights).context("building the generator")?;
    let own = generator.config().direction;
    if let Some(wanted) = wanted
        && wanted != own
    {
        let partner = args.model.as_deref().and_then(|path| partner_file(path, own)).filter(|p| p.is_file());
        let advice = match partner {
            Some(partner) => format!("its partner is {}: pass that with --model", partner.display()),
            None => "pass the other generator of the pair with --model".to_owned(),
        };
        bail!(
            "--direction {}: this generator ({}) translates {}; {advice}",
            wanted.as_str(),
            generator.card().name,
            own.as_str()
        );
    }
    Ok(generator)
}

/// The embedded CycleGAN generator that translates `direction` (a trained one first), if the build has one.
fn embedded_generator_for(direction: Direction, device: &Device) -> Option<CycleGanGenerator> {
    let mut embedded: Vec<_> = crate::models::registry::embedded_models()
        .into_iter()
        .filter(|m| m.card.kind == ModelKind::CycleganGenerator)
        .collect();
    embedded.sort_by_key(|m| m.card.untrained);
    embedded.into_iter().find_map(|model| {
        let name = Path::new(model.file_name);
        let weights = Weights::from_bytes(model.bytes, name, ModelKind::CycleganGenerator, device).ok()?;
        let generator = CycleGanGenerator::from_weights(weights).ok()?;
        (generator.config().direction == direction).then_some(generator)
    })
}

/// The other generator of a pair as `train cyclegan` names it: `NAME_b2a.safetensors` beside `NAME.safetensors`.
fn partner_file(path: &Path, own: Direction) -> Option<std::path::PathBuf> {
    let stem = path.file_stem()?.to_str()?;
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("safetensors");
    let partner_stem = match own {
        Direction::AToB => format!("{stem}_b2a"),
        Direction::BToA => stem.strip_suffix("_b2a")?.to_owned(),
    };
    Some(path.with_file_name(format!("{partner_stem}.{extension}")))
}

/// Runs `thorax translate` on `device`. `default_model_bytes` is the embedded default generator (one direction; a
/// `--direction` it does not map is an error), used without `--model`.
pub fn run(args: &TranslateArgs, device: &Device, default_model_bytes: Option<&[u8]>) -> anyhow::Result<()> {
    let generator = load_generator(args, default_model_bytes, device)?;
    let direction = generator.config().direction.as_str();
    let mut written = Vec::new();
    if let Some(npy) = &args.tensor_npy {
        let out_npy = args.out_npy.as_ref().context("--tensor-npy needs --out-npy")?;
        check_outputs_apart(&[("--out-npy", out_npy)], &[("--tensor-npy", npy)])?;
        check_not_replacing(&[("--out-npy", out_npy)], args.overwrite)?;
        let (shape, data) = read_finite_npy(npy, "--tensor-npy")?;
        if shape.len() != 4 {
            bail!("--tensor-npy {}: shape {shape:?}, expected [N, C, H, W]", npy.display());
        }
        let x = Tensor::from_vec(data, shape.clone(), device).context("copying --tensor-npy to the device")?;
        let y = generator.forward(&x).with_context(|| format!("translating --tensor-npy {}", npy.display()))?;
        let y_shape = y.dims().to_vec();
        let values = y.flatten_all()?.to_vec1::<f32>()?;
        write_npy_f32(out_npy, &y_shape, &values).with_context(|| format!("writing {}", out_npy.display()))?;
        written.push(serde_json::json!({
            "input": npy.display().to_string(),
            "output": out_npy.display().to_string(),
            "shape": y_shape,
        }));
    } else {
        let out = args.out.as_ref().context("image inputs need --out DIR")?;
        if out.exists() && !out.is_dir() {
            bail!("--out {} is a file: translate writes its PNGs into a folder", out.display());
        }
        let targets = output_files(out, &args.images, direction);
        let outputs: Vec<(&str, &Path)> = targets.iter().map(|t| ("--out", t.as_path())).collect();
        let inputs: Vec<(&str, &Path)> = args.images.iter().map(|p| ("an input image", p.as_path())).collect();
        check_outputs_apart(&outputs, &inputs)?;
        check_not_replacing(&outputs, args.overwrite)?;
        // Every input is decoded once before anything is written, so that a bad file late in a batch stops the run
        // with no output half done (decoding is cheap next to the generator).
        for path in &args.images {
            let checking = || format!("checking the inputs before writing: {}", path.display());
            let (_, width, height) = read_gray_image(path).with_context(checking)?;
            let size = network_size(generator.card(), args.scale.into(), width, height);
            check_cyclegan_size(width, height, size).with_context(checking)?;
        }
        std::fs::create_dir_all(out).with_context(|| format!("creating --out {}", out.display()))?;
        for (path, target) in args.images.iter().zip(&targets) {
            let (gray, width, height) = read_gray_image(path)?;
            let translated = translate_gray_at(&generator, &gray, width, height, args.scale.into(), device)
                .with_context(|| format!("translating {}", path.display()))?;
            let (out_w, out_h) = (translated.width_px, translated.height_px);
            let if_exists = IfExists::replace_if(args.overwrite);
            save_png(target, &translated.pixels, translated.channels, out_w, out_h, if_exists)?;
            written.push(serde_json::json!({
                "input": path.display().to_string(),
                "output": target.display().to_string(),
                "width_px": out_w,
                "height_px": out_h,
            }));
        }
    }
    if args.json {
        let document = serde_json::json!({
            "model": generator.card().name,
            "untrained": generator.card().untrained,
            "direction": direction,
            "outputs": written,
        });
        println!("{}", serde_json::to_string(&document)?);
    } else {
        if generator.card().untrained {
            println!("note: {} is untrained (random weights)", generator.card().name);
        }
        for item in &written {
            println!("{} -> {}", item["input"].as_str().unwrap_or(""), item["output"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}

/// The output file of each input image: `<stem>_<direction>.png` in `out`, where two inputs of one name (from
/// different folders) get `_2`, `_3`, ... instead of one overwriting the other.
fn output_files(out: &Path, images: &[PathBuf], direction: &str) -> Vec<PathBuf> {
    let mut used_stems = std::collections::HashSet::new();
    images
        .iter()
        .map(|path| {
            let stem = unique_stem(&path.file_stem().map_or("image".into(), |s| s.to_string_lossy()), &mut used_stems);
            out.join(format!("{stem}_{direction}.png"))
        })
        .collect()
}

/// Writes planar [C, H, W] 8-bit pixels as a gray (C = 1) or RGB (C = 3) PNG.
fn save_png(
    path: &Path,
    planar: &[u8],
    channels: usize,
    width: usize,
    height: usize,
    if_exists: IfExists,
) -> anyhow::Result<()> {
    let plane = width * height;
    let (w, h) = (u32::try_from(width)?, u32::try_from(height)?);
    let partial = PartialFile::create(path, if_exists)?;
    let temp = partial.path().to_path_buf();
    let save = |image: image::DynamicImage| image.save_with_format(&temp, image::ImageFormat::Png);
    let result = match channels {
        1 => image::GrayImage::from_raw(w, h, planar.to_vec()).map(|img| save(img.into())),
        3 => {
            let mut interleaved = Vec::with_capacity(3 * plane);
            for i in 0..plane {
                for c in 0..3 {
                    interleaved.push(planar.get(c * plane + i).copied().unwrap_or_default());
                }
            }
            image::RgbImage::from_raw(w, h, interleaved).map(|img| save(img.into()))
        }
        other => bail!("cannot write a {other}-channel image to {}", path.display()),
    };
    result
        .context("pixel buffer does not match the image size")?
        .with_context(|| format!("writing {}", path.display()))?;
    partial.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partner_of_a_generator_is_named_as_train_cyclegan_names_it() {
        let a2b = Path::new("runs/nih_gz.safetensors");
        assert_eq!(partner_file(a2b, Direction::AToB), Some(Path::new("runs/nih_gz_b2a.safetensors").to_path_buf()));
        let b2a = Path::new("runs/nih_gz_b2a.safetensors");
        assert_eq!(partner_file(b2a, Direction::BToA), Some(a2b.to_path_buf()));
        assert_eq!(partner_file(Path::new("g_B.safetensors"), Direction::BToA), None);
    }

    #[test]
    fn without_a_model_each_direction_gets_the_embedded_generator_for_it() {
        for direction in [Direction::AToB, Direction::BToA] {
            let generator = embedded_generator_for(direction, &Device::Cpu).expect("the build embeds both");
            assert_eq!(generator.config().direction, direction);
            assert!(!generator.card().untrained, "a trained generator comes first");
        }
    }
}
