//! `thorax classify`: label probabilities from the DenseNet-121 classifier, for image files or a preprocessed tensor.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};

use crate::convert::npy::read_npy_f32;
use crate::models::densenet::{DenseNet121, INPUT_SIZE_PX};
use crate::models::preprocess::classifier_input;
use crate::models::weights::Weights;

/// Classify radiographs with the DenseNet-121 classifier.
#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Classifier weights (.safetensors with a model card); default: the embedded default classifier.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Image files (PNG, JPEG, TIFF); colour images are converted to gray.
    #[arg(required_unless_present = "tensor_npy", conflicts_with = "tensor_npy")]
    pub images: Vec<PathBuf>,
    /// Already preprocessed input, float32 [N, 3, 224, 224] (no resizing or normalisation is applied).
    #[arg(long)]
    pub tensor_npy: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Print one JSON document: [{"input": ..., "probabilities": {label: p, ...}}] in the card's label order.
    #[arg(long)]
    pub json: bool,
}

/// One classified input: its name and probabilities in the card's label order.
struct Classified {
    input: String,
    probabilities: Vec<f32>,
}

/// Loads the classifier named by `--model`, or the embedded default.
fn load_classifier(
    model: Option<&Path>,
    default_model_bytes: Option<&[u8]>,
    device: &Device,
) -> anyhow::Result<DenseNet121> {
    use crate::models::card::ModelKind;
    let weights = match model {
        Some(path) => Weights::load(path, ModelKind::Densenet121Classifier, device)
            .with_context(|| format!("loading classifier {}", path.display()))?,
        None => {
            let bytes =
                default_model_bytes.context("no --model given and this build has no embedded default classifier")?;
            Weights::from_bytes(
                bytes,
                Path::new("embedded default classifier"),
                ModelKind::Densenet121Classifier,
                device,
            )
            .context("loading the embedded default classifier")?
        }
    };
    DenseNet121::from_weights(weights).context("building the classifier")
}

/// Decodes an image file to a gray f32 buffer in [0, 1].
pub fn read_gray_image(path: &Path) -> anyhow::Result<(Vec<f32>, usize, usize)> {
    let image = image::ImageReader::open(path)
        .with_context(|| format!("opening image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("reading image {}", path.display()))?
        .decode()
        .with_context(|| format!("decoding image {} (PNG, JPEG and TIFF are supported)", path.display()))?;
    let gray = image.to_luma32f();
    let (width, height) = (gray.width() as usize, gray.height() as usize);
    Ok((gray.into_raw(), width, height))
}

/// Runs `thorax classify` on `device`. `default_model_bytes` is the embedded default classifier, used without
/// `--model`.
pub fn run(args: &ClassifyArgs, device: &Device, default_model_bytes: Option<&[u8]>) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let classifier = load_classifier(args.model.as_deref(), default_model_bytes, device)?;
    let mut results = Vec::new();
    if let Some(npy) = &args.tensor_npy {
        let (shape, data) = read_npy_f32(npy).with_context(|| format!("reading --tensor-npy {}", npy.display()))?;
        let [n, c, h, w] = shape.as_slice() else {
            bail!("--tensor-npy {}: shape {shape:?}, expected [N, 3, {INPUT_SIZE_PX}, {INPUT_SIZE_PX}]", npy.display());
        };
        if (*c, *h, *w) != (3, INPUT_SIZE_PX, INPUT_SIZE_PX) || *n == 0 {
            bail!("--tensor-npy {}: shape {shape:?}, expected [N, 3, {INPUT_SIZE_PX}, {INPUT_SIZE_PX}]", npy.display());
        }
        let x = Tensor::from_vec(data, shape.clone(), device).context("copying --tensor-npy to the device")?;
        for start in (0..*n).step_by(args.batch_size) {
            let count = args.batch_size.min(n - start);
            let probabilities = classifier
                .forward(&x.narrow(0, start, count)?)
                .with_context(|| format!("classifying rows {start}..{} of --tensor-npy", start + count))?
                .to_vec2::<f32>()?;
            for (offset, row) in probabilities.into_iter().enumerate() {
                results
                    .push(Classified { input: format!("{}[{}]", npy.display(), start + offset), probabilities: row });
            }
        }
    } else {
        let normalization = classifier.card().input_normalization.clone();
        for path in &args.images {
            let (gray, width, height) = read_gray_image(path)?;
            let x = classifier_input(&gray, width, height, normalization.as_ref(), device)
                .with_context(|| format!("preprocessing {}", path.display()))?;
            let probabilities = classifier
                .forward(&x)
                .with_context(|| format!("classifying {}", path.display()))?
                .to_vec2::<f32>()?
                .into_iter()
                .next()
                .context("the classifier returned no row")?;
            results.push(Classified { input: path.display().to_string(), probabilities });
        }
    }
    let labels = &classifier.card().labels;
    if args.json {
        println!("{}", results_json(&results, labels)?);
    } else {
        if classifier.card().untrained {
            println!("note: {} is untrained (random weights); its probabilities mean nothing", classifier.card().name);
        }
        for result in &results {
            println!("{}", result.input);
            for (label, p) in labels.iter().zip(&result.probabilities) {
                println!("  {label:<20} {p:.4}");
            }
        }
    }
    Ok(())
}

/// The classification JSON with labels in the card's order (serde_json's map would sort them by name).
fn results_json(results: &[Classified], labels: &[String]) -> anyhow::Result<String> {
    let mut json = String::from("[");
    for (i, result) in results.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        write!(json, "{{\"input\":{},\"probabilities\":{{", serde_json::to_string(&result.input)?)?;
        for (j, (label, p)) in labels.iter().zip(&result.probabilities).enumerate() {
            if j > 0 {
                json.push(',');
            }
            if !p.is_finite() {
                bail!("probability of {label} for {} is not finite", result.input);
            }
            // f32's Display is the shortest text that reads back to the same value, and valid JSON.
            write!(json, "{}:{p}", serde_json::to_string(label)?)?;
        }
        json.push_str("}}");
    }
    json.push(']');
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_the_card_label_order() {
        let results = vec![Classified { input: "a \"b\".png".into(), probabilities: vec![0.25, 0.5] }];
        let json = results_json(&results, &["Zeta".into(), "Alpha".into()]).unwrap();
        assert_eq!(json, r#"[{"input":"a \"b\".png","probabilities":{"Zeta":0.25,"Alpha":0.5}}]"#);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed[0]["probabilities"]["Alpha"], 0.5);
    }
}
