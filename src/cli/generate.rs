//! `thorax generate`: artificial radiographs from a ProGAN generator, as PNGs with provenance and/or raw `.npy`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};

use crate::atomic_file::{IfExists, PartialFile, write_file};
use crate::cli::npy_input::read_finite_npy;
use crate::cli::output_paths::{check_not_replacing, check_outputs_apart};
use crate::convert::npy::npy_f32_header;
use crate::convert::progan_tf::sha256_hex;
use crate::models::card::{ModelCard, ModelKind};
use crate::models::progan::{NumpyRandomState, ProganGenerator, labels_text, seeded_latent_description, to_png_u8};
use crate::models::weights::Weights;

/// Generate images from a conditional ProGAN.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("label_source").required(true).args(["labels", "labels_npy"])))]
#[command(group(clap::ArgGroup::new("latent_source").required(true).args(["seed", "latent_npy"])))]
pub struct GenerateArgs {
    /// Generator weights (.safetensors with a model card); default: the embedded default generator.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Label values by name, e.g. "Cardiomegaly=1,Edema=0.5"; unnamed labels are 0; "" gives all zeros.
    #[arg(long)]
    pub labels: Option<String>,
    /// Labels as .npy float32/float64 [N, L] (or [L] / [1, L] for all images), in the model card's label order.
    #[arg(long)]
    pub labels_npy: Option<PathBuf>,
    /// Latents as numpy's np.random.RandomState(SEED).randn(N, latent_size), like the original notebook.
    #[arg(long)]
    pub seed: Option<u32>,
    /// Latents as .npy float32/float64 [N, latent_size].
    #[arg(long)]
    pub latent_npy: Option<PathBuf>,
    /// Number of images (default: the rows of --latent-npy or --labels-npy, else 1).
    #[arg(short = 'n', long = "count")]
    pub count: Option<usize>,
    /// Folder for 8-bit PNGs fake_<i>.png, clip(rint((x+1)*127.5)), with provenance in tEXt chunks.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Raw network output as float32 .npy [N, C, H, W].
    #[arg(long)]
    pub out_npy: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: crate::engine::device::DeviceChoice,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Print one JSON document describing what was written.
    #[arg(long)]
    pub json: bool,
    /// Replace files that already exist (fake_<i>.png in --out, the --out-npy file); without it a run that would
    /// replace one is refused before anything is generated or written.
    #[arg(long)]
    pub overwrite: bool,
}

/// Parses `"Name=v,Name=v"` (given as `argument`) into a vector in the card's label order; unknown names list the
/// valid ones.
pub fn parse_labels(text: &str, card: &ModelCard, argument: &str) -> anyhow::Result<Vec<f32>> {
    let mut values = vec![0.0f32; card.labels.len()];
    let mut given = vec![false; card.labels.len()];
    for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (name, value) =
            item.rsplit_once('=').with_context(|| format!("{argument} item `{item}` is not Name=value"))?;
        let name = name.trim();
        let index = card.label_index(name).with_context(|| {
            format!("{argument}: unknown label `{name}`; this model's labels are: {}", card.labels.join(", "))
        })?;
        let value: f32 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f32| v.is_finite())
            .with_context(|| format!("{argument}: value `{value}` of `{name}` is not a finite number"))?;
        if std::mem::replace(&mut given[index], true) {
            bail!("{argument}: `{name}` is given twice");
        }
        values[index] = value;
    }
    Ok(values)
}

/// A `[rows, width]` matrix read from a .npy file; a 1-D array is one row.
fn read_matrix(path: &Path, argument: &str, width: usize, width_name: &str) -> anyhow::Result<(usize, Vec<f32>)> {
    let (shape, data) = read_finite_npy(path, argument)?;
    let rows = match shape.as_slice() {
        [w] if *w == width => 1,
        [rows, w] if *w == width => *rows,
        _ => bail!(
            "{argument} {} has shape {shape:?}, expected [N, {width}] ({width_name} of this model)",
            path.display()
        ),
    };
    Ok((rows, data))
}

/// Loads the generator named by `--model`, or the embedded default; returns it with its file's SHA-256 and name.
pub(crate) fn load_generator(
    model: Option<&Path>,
    default_model_bytes: Option<&[u8]>,
    device: &Device,
) -> anyhow::Result<(ProganGenerator, String, String)> {
    let (bytes, name) = match model {
        Some(path) => (
            std::fs::read(path).with_context(|| format!("reading model {}", path.display()))?,
            path.display().to_string(),
        ),
        None => match default_model_bytes {
            Some(bytes) => (bytes.to_vec(), "embedded default generator".to_owned()),
            None => bail!("no --model given and this build has no embedded default generator"),
        },
    };
    let weights = Weights::from_bytes(&bytes, Path::new(&name), ModelKind::ProganGenerator, device)
        .with_context(|| format!("loading {name}"))?;
    let generator =
        ProganGenerator::from_weights(weights).with_context(|| format!("building the generator from {name}"))?;
    Ok((generator, sha256_hex(&bytes), name))
}

/// Runs `thorax generate`. `default_model_bytes` is the embedded default generator, used without `--model`.
pub fn run(args: &GenerateArgs, default_model_bytes: Option<&[u8]>) -> anyhow::Result<()> {
    if args.out.is_none() && args.out_npy.is_none() {
        bail!("nothing to write: give --out DIR for PNGs and/or --out-npy FILE for the raw output");
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let device = crate::engine::device::open_device(args.device)?.device;
    let (generator, model_sha256, model_name) = load_generator(args.model.as_deref(), default_model_bytes, &device)?;
    let card = generator.card().clone();
    let architecture = generator.architecture().clone();
    let latent_size = architecture.latent_size;
    let label_size = architecture.label_size;

    // Labels: one vector for all images, or one row per image.
    let (label_rows, label_values) = match (&args.labels, &args.labels_npy) {
        (Some(text), _) => (1, parse_labels(text, &card, "--labels")?),
        (None, Some(path)) => read_matrix(path, "--labels-npy", label_size, "label count")?,
        (None, None) => bail!("give --labels or --labels-npy"),
    };
    let latent_file = match &args.latent_npy {
        Some(path) => Some(read_matrix(path, "--latent-npy", latent_size, "latent size")?),
        None => None,
    };
    let count = match (&latent_file, args.count) {
        (Some((rows, _)), Some(n)) if *rows != n => {
            bail!("-n {n} but --latent-npy holds {rows} latents")
        }
        (Some((rows, _)), _) => *rows,
        (None, Some(n)) => n,
        (None, None) => label_rows,
    };
    if count == 0 {
        bail!("nothing to generate: the image count is 0");
    }
    if label_rows != 1 && label_rows != count {
        bail!("--labels-npy holds {label_rows} label rows for {count} images (give 1 row or one per image)");
    }
    let mut latents = match (latent_file, args.seed) {
        (Some((_, values)), _) => LatentStream::File { values, next_row: 0 },
        (None, Some(seed)) => LatentStream::Seeded(Box::new(NumpyRandomState::new(seed))),
        (None, None) => bail!("give --seed or --latent-npy"),
    };
    let label_row = |i: usize| -> &[f32] {
        let row = if label_rows == 1 { 0 } else { i };
        &label_values[row * label_size..(row + 1) * label_size]
    };
    let mut inputs: Vec<(&str, &Path)> = Vec::new();
    inputs.extend(args.latent_npy.as_deref().map(|path| ("--latent-npy", path)));
    inputs.extend(args.labels_npy.as_deref().map(|path| ("--labels-npy", path)));
    if let Some(npy) = &args.out_npy {
        check_outputs_apart(&[("--out-npy", npy)], &inputs)?;
    }
    if let Some(dir) = &args.out
        && dir.exists()
        && !dir.is_dir()
    {
        bail!("--out {} is a file: give a folder for the PNGs", dir.display());
    }
    // Every name this run writes, checked before any work, so that a refused run writes nothing.
    let png_paths: Vec<PathBuf> = match &args.out {
        Some(dir) => (0..count).map(|i| dir.join(format!("fake_{i}.png"))).collect(),
        None => Vec::new(),
    };
    let mut outputs: Vec<(&str, &Path)> = args.out_npy.iter().map(|npy| ("--out-npy", npy.as_path())).collect();
    outputs.extend(png_paths.iter().map(|path| ("--out", path.as_path())));
    check_not_replacing(&outputs, args.overwrite)?;
    let if_exists = IfExists::replace_if(args.overwrite);
    if let Some(dir) = &args.out {
        // Made only now, so that a run refused above leaves no empty folder behind.
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let stale = (count..).take_while(|i| dir.join(format!("fake_{i}.png")).exists()).count();
        if stale > 0 {
            eprintln!(
                "note: {} still holds {stale} image(s) from an earlier, larger run (fake_{count}.png onwards); they are \
                 not from this run",
                dir.display()
            );
        }
    }

    // Each batch is written as soon as it is made: a long run holds one batch in memory, and what it wrote before
    // an interruption stays usable.
    let started = Instant::now();
    let mut npy_file: Option<std::io::BufWriter<PartialFile>> = None;
    let mut image_shape = [0usize; 3];
    let mut written = Vec::new();
    for start in (0..count).step_by(args.batch_size) {
        let end = (start + args.batch_size).min(count);
        let rows = end - start;
        let z = Tensor::from_vec(latents.next_rows(rows, latent_size), (rows, latent_size), &device)?;
        let labels: Vec<f32> = (start..end).flat_map(|i| label_row(i).iter().copied()).collect();
        let y = Tensor::from_vec(labels, (rows, label_size), &device)?;
        let images = generator.forward(&z, &y).context("running the generator")?;
        let (_, c, h, w) = images.dims4()?;
        image_shape = [c, h, w];
        let outputs = images.flatten_all()?.to_vec1::<f32>()?;
        if let Some(path) = &args.out_npy {
            let file = match &mut npy_file {
                Some(file) => file,
                None => npy_file.insert(create_npy(path, &[count, c, h, w], if_exists)?),
            };
            let bytes: Vec<u8> = outputs.iter().flat_map(|v| v.to_le_bytes()).collect();
            file.write_all(&bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(dir) = &args.out {
            let per_image = c * h * w;
            for (offset, image) in outputs.chunks_exact(per_image).enumerate() {
                let i = start + offset;
                let labels_text = labels_text(&card.labels, label_row(i));
                let latent_text = match (&args.latent_npy, args.seed) {
                    (Some(path), _) => format!("{} row {i}", path.display()),
                    (None, Some(seed)) => seeded_latent_description(seed, count, latent_size, i),
                    (None, None) => String::new(),
                };
                let text = [
                    ("Software", "thorax generate".to_owned()),
                    ("thorax.model", model_name.clone()),
                    ("thorax.model_sha256", model_sha256.clone()),
                    ("thorax.model_card_name", card.name.clone()),
                    ("thorax.untrained", card.untrained.to_string()),
                    ("thorax.seed", args.seed.map(|s| s.to_string()).unwrap_or_default()),
                    ("thorax.latent", latent_text),
                    ("thorax.labels", labels_text),
                ];
                let path = dir.join(format!("fake_{i}.png"));
                write_png(&path, image, c, h, w, &text, if_exists)?;
                written.push(path);
            }
        }
    }
    if let (Some(file), Some(path)) = (npy_file, &args.out_npy) {
        // Under its name only once whole: an interrupted run leaves no .npy whose header promises more rows.
        let partial =
            file.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", path.display()))?;
        partial.commit()?;
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    let [channels, height, width] = image_shape;

    if args.json {
        let document = serde_json::json!({
            "model": model_name,
            "model_sha256": model_sha256,
            "untrained": card.untrained,
            "device": format!("{device:?}"),
            "count": count,
            "shape": [count, channels, height, width],
            "seed": args.seed,
            "images": written,
            "out_npy": args.out_npy,
            "elapsed_ms": elapsed_ms,
            "ms_per_image": elapsed_ms / count as f64,
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        if card.untrained {
            eprintln!("note: {} is an UNTRAINED placeholder (random weights)", card.name);
        }
        println!(
            "generated {count} image(s) of {channels}x{height}x{width} in {elapsed_ms:.0} ms ({:.1} ms per image)",
            elapsed_ms / count as f64
        );
        if let Some(dir) = &args.out {
            println!("  PNGs in {}", dir.display());
        }
        if let Some(path) = &args.out_npy {
            println!("  raw output {}", path.display());
        }
    }
    Ok(())
}

/// Where the latents come from, row by row: a `--latent-npy` matrix, or numpy's `RandomState(seed).randn(n, d)`
/// drawn as it goes (the same values, in the same order, without holding `n x d` of them).
enum LatentStream {
    File { values: Vec<f32>, next_row: usize },
    Seeded(Box<NumpyRandomState>),
}

impl LatentStream {
    fn next_rows(&mut self, rows: usize, latent_size: usize) -> Vec<f32> {
        match self {
            Self::File { values, next_row } => {
                let taken = values[*next_row * latent_size..(*next_row + rows) * latent_size].to_vec();
                *next_row += rows;
                taken
            }
            Self::Seeded(rng) => (0..rows * latent_size).map(|_| rng.standard_normal() as f32).collect(),
        }
    }
}

/// Starts `path` (and makes its folder) with the `.npy` header of `shape`; the values follow batch by batch, and the
/// file takes its name when committed.
fn create_npy(path: &Path, shape: &[usize], if_exists: IfExists) -> anyhow::Result<std::io::BufWriter<PartialFile>> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    }
    let header =
        npy_f32_header(shape).with_context(|| format!("{}: shape {shape:?} too large for .npy", path.display()))?;
    let mut file = std::io::BufWriter::new(PartialFile::create(path, if_exists)?);
    file.write_all(&header).with_context(|| format!("writing {}", path.display()))?;
    Ok(file)
}

/// Writes one image (`[C, H, W]`, values in [-1, 1]) as an 8-bit gray (C = 1) or RGB (C = 3) PNG with tEXt chunks.
fn write_png(
    path: &Path,
    image: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    text: &[(&str, String)],
    if_exists: IfExists,
) -> anyhow::Result<()> {
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        other => bail!("cannot write a {other}-channel image as PNG (1 or 3 channels)"),
    };
    let plane = height * width;
    // [C, H, W] -> interleaved H, W, C
    let pixels: Vec<u8> =
        (0..plane).flat_map(|p| (0..channels).map(move |c| to_png_u8(image[c * plane + p]))).collect();
    // Encoded in memory (one image), then written whole through a temporary file.
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width as u32, height as u32);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    crate::imaging::png_text::add_text_chunks(
        &mut encoder,
        text.iter().map(|(keyword, value)| (keyword, value.as_str())),
    )
    .with_context(|| format!("writing {}", path.display()))?;
    let mut writer = encoder.write_header().with_context(|| format!("writing {}", path.display()))?;
    writer.write_image_data(&pixels).with_context(|| format!("writing {}", path.display()))?;
    writer.finish().with_context(|| format!("writing {}", path.display()))?;
    write_file(path, if_exists, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::card::Provenance;
    use crate::models::labels::NIH_CLASSIFIER_LABELS;
    use crate::models::progan::{ProganArchitecture, progan_card};

    #[test]
    fn labels_are_parsed_by_name_and_mistakes_name_the_argument() {
        let architecture = ProganArchitecture {
            resolution_px: 32,
            latent_size: 8,
            label_size: NIH_CLASSIFIER_LABELS.len(),
            channels: 1,
            fmap_base: 64.0,
            fmap_decay: 1.0,
            fmap_max: 16,
        };
        let labels = NIH_CLASSIFIER_LABELS.iter().map(|l| (*l).to_owned()).collect();
        let card = progan_card("test", labels, &architecture, true, Provenance::default());
        let values = parse_labels("Edema=0.5, Mass=1", &card, "--labels").unwrap();
        assert_eq!(values[card.label_index("Edema").unwrap()], 0.5);
        assert_eq!(values.iter().sum::<f32>(), 1.5);
        for (text, expected) in [
            ("Mass=1,Mass=0", "`Mass` is given twice"),
            ("Foo=1", "unknown label `Foo`"),
            ("Mass=nan", "not a finite number"),
            ("Mass", "not Name=value"),
        ] {
            let error = parse_labels(text, &card, "--generator-labels").unwrap_err().to_string();
            assert!(error.starts_with("--generator-labels") && error.contains(expected), "{text}: {error}");
        }
    }
}
