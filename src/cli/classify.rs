//! `thorax classify`: label probabilities from the DenseNet-121 classifier, for image files or a preprocessed tensor,
//! and optionally class activation maps (`--heatmap DIR --method cam|gradcam|gradcampp --target NAME|all`).
//!
//! Each heatmap is written three ways, at the size of the input image (the map is placed back through the
//! classifier's resize and centre crop; what the crop cut away is 0): `<stem>_<label>_<method>_overlay.png` (jet
//! colormap blended half and half on the gray image, 8-bit RGB), `<stem>_<label>_<method>_map.png` (16-bit gray,
//! `round(map * 65535)`) and `<stem>_<label>_<method>_map.npy` (float32 [H, W] in [0, 1]).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};

use crate::cli::npy_input::read_finite_npy;
use crate::cli::output_paths::check_not_replacing;
use crate::imaging::chest_domain::not_a_chest_radiograph;
use crate::models::densenet::{DenseNet121, IMAGENET_MEAN, IMAGENET_STD, INPUT_SIZE_PX};
use crate::models::heatmap::{GrayMap, Heatmap, HeatmapMethod, HeatmapOptions, heatmaps, resolve_targets};
use crate::models::heatmap_export::{
    HeatmapFiles, OverlayStyle, heatmap_file_paths, safe_file_part, write_heatmap_files,
};
use crate::models::preprocess::classifier_input_sized;
use crate::models::weights::Weights;

/// Classify radiographs with the DenseNet-121 classifier.
#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Classifier weights (.safetensors with a model card); default: the embedded default classifier.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Image files (PNG, JPEG, TIFF, DICOM); colour images are converted to gray, DICOM pixels go through their
    /// modality LUT and photometric interpretation.
    #[arg(required_unless_present = "tensor_npy", conflicts_with = "tensor_npy")]
    pub images: Vec<PathBuf>,
    /// Already preprocessed input, float32 [N, 3, S, S] with S the classifier's input side (224 px for the
    /// torchvision recipe; the embedded classifier's card says 128); no resizing or normalisation is applied.
    #[arg(long)]
    pub tensor_npy: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Print one JSON document: [{"input": ..., "probabilities": {label: p, ...}}] in the card's label order
    /// (with `--heatmap`, each entry also lists its "heatmaps").
    #[arg(long)]
    pub json: bool,
    /// Write class activation maps into this folder (created if missing).
    #[arg(long, value_name = "DIR")]
    pub heatmap: Option<PathBuf>,
    /// Heatmap method: cam (where the label's evidence is strongest, relative to the rest of the image), gradcam
    /// (positive evidence only: blank when no region argues for the label, as for most unlikely labels) or gradcampp
    /// (Grad-CAM++).
    #[arg(long, default_value = "cam", requires = "heatmap", value_parser = parse_method)]
    pub method: HeatmapMethod,
    /// Heatmap label: a name of the classifier card, several names separated by commas, or `all`.
    #[arg(long, default_value = "all", requires = "heatmap")]
    pub target: String,
    /// Replace heatmap files that already exist in the --heatmap folder; without it a run that would replace one is
    /// refused before anything is computed or written.
    #[arg(long, requires = "heatmap")]
    pub overwrite: bool,
}

fn parse_method(text: &str) -> Result<HeatmapMethod, String> {
    text.parse().map_err(|e: crate::models::heatmap::HeatmapError| e.to_string())
}

/// One written heatmap, as listed in the JSON output.
#[derive(Debug, serde::Serialize)]
struct HeatmapRecord {
    label: String,
    method: &'static str,
    probability: f32,
    /// Why the map is blank, when it is.
    note: Option<String>,
    overlay_png: String,
    map_png: String,
    map_npy: String,
}

/// One classified input: its name and probabilities in the card's label order.
struct Classified {
    input: String,
    probabilities: Vec<f32>,
    /// `None` without `--heatmap`.
    heatmaps: Option<Vec<HeatmapRecord>>,
    /// Why the input is not a chest radiograph, when its DICOM attributes say so (the classifier knows only those).
    out_of_domain: Option<String>,
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

/// Decodes an image file (PNG, JPEG, TIFF or DICOM) to a gray f32 buffer in [0, 1]: integer data by its type's
/// range (8-bit DICOM too, MONOCHROME1 mirrored within it and colour as luma), other DICOM and float data by their own
/// value range after the modality LUT.
pub fn read_gray_image(path: &Path) -> anyhow::Result<(Vec<f32>, usize, usize)> {
    let image = crate::imaging::load_image(path)?;
    Ok((image.to_unit_range(), image.width_px(), image.height_px()))
}

/// Runs `thorax classify` on `device`. `default_model_bytes` is the embedded default classifier, used without
/// `--model`.
pub fn run(args: &ClassifyArgs, device: &Device, default_model_bytes: Option<&[u8]>) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let classifier = load_classifier(args.model.as_deref(), default_model_bytes, device)?;
    let tensor = match &args.tensor_npy {
        Some(npy) => Some((npy, read_finite_npy(npy, "--tensor-npy")?)),
        None => None,
    };
    // The file-name stem of each input's heatmaps, unique within the run.
    let mut used_stems = HashSet::new();
    let stems: Vec<String> = match &tensor {
        Some((npy, (shape, _))) => (0..shape.first().copied().unwrap_or(0))
            .map(|index| unique_stem(&format!("{}_{index}", file_stem(npy)), &mut used_stems))
            .collect(),
        None => args.images.iter().map(|path| unique_stem(&file_stem(path), &mut used_stems)).collect(),
    };
    let heatmap_job = match &args.heatmap {
        Some(dir) => {
            let targets = resolve_targets(classifier.card(), &args.target).context("--target")?;
            let job = HeatmapJob { dir: dir.clone(), targets, options: HeatmapOptions::new(args.method) };
            // Every file the run writes, checked before any work, so that a refused run writes nothing.
            let files: Vec<HeatmapFiles> = stems
                .iter()
                .flat_map(|stem| job.targets.iter().map(|&t| job.files(label_name(classifier.card(), t), stem)))
                .collect();
            let outputs: Vec<(&str, &Path)> =
                files.iter().flat_map(|f| f.paths()).map(|path| ("--heatmap", path)).collect();
            check_not_replacing(&outputs, args.overwrite)?;
            std::fs::create_dir_all(dir).with_context(|| format!("creating --heatmap folder {}", dir.display()))?;
            Some(job)
        }
        None => None,
    };
    let mut results = Vec::new();
    if let Some((npy, (shape, data))) = tensor {
        // The classifier's own input side (its card's resolution; 224 px for the torchvision recipe).
        let side = match classifier.card().resolution {
            0 => INPUT_SIZE_PX,
            side => side,
        };
        let expected = || format!("expected [N, 3, {side}, {side}] for this classifier");
        let [n, c, h, w] = shape.as_slice() else {
            bail!("--tensor-npy {}: shape {shape:?}, {}", npy.display(), expected());
        };
        if (*c, *h, *w) != (3, side, side) || *n == 0 {
            bail!("--tensor-npy {}: shape {shape:?}, {}", npy.display(), expected());
        }
        let x = Tensor::from_vec(data, shape.clone(), device).context("copying --tensor-npy to the device")?;
        for start in (0..*n).step_by(args.batch_size) {
            let count = args.batch_size.min(n - start);
            let probabilities = classifier
                .forward(&x.narrow(0, start, count)?)
                .with_context(|| format!("classifying rows {start}..{} of --tensor-npy", start + count))?
                .to_vec2::<f32>()?;
            for (offset, row) in probabilities.into_iter().enumerate() {
                let index = start + offset;
                let input = format!("{}[{}]", npy.display(), index);
                let heatmaps = match &heatmap_job {
                    Some(job) => {
                        let x = x.narrow(0, index, 1)?;
                        let gray = denormalized_gray(&x, classifier.card().input_normalization.as_ref())?;
                        Some(job.write(&classifier, &x, &gray, &stems[index], &input)?)
                    }
                    None => None,
                };
                results.push(Classified { input, probabilities: row, heatmaps, out_of_domain: None });
            }
        }
    } else {
        let normalization = classifier.card().input_normalization.clone();
        for (path, stem) in args.images.iter().zip(&stems) {
            let radiograph = crate::imaging::load_radiograph(path)?;
            let out_of_domain = radiograph.dicom.as_deref().and_then(not_a_chest_radiograph);
            if let Some(doubt) = &out_of_domain {
                eprintln!("note: {}: {doubt}; the classifier was trained on chest radiographs", path.display());
            }
            let (width, height) = (radiograph.image.width_px(), radiograph.image.height_px());
            let gray = radiograph.image.to_unit_range();
            let side_px = crate::models::preprocess::classifier_side_px(classifier.card());
            let x = classifier_input_sized(&gray, width, height, normalization.as_ref(), side_px, device)
                .with_context(|| format!("preprocessing {}", path.display()))?;
            let probabilities = classifier
                .forward(&x)
                .with_context(|| format!("classifying {}", path.display()))?
                .to_vec2::<f32>()?
                .into_iter()
                .next()
                .context("the classifier returned no row")?;
            let input = path.display().to_string();
            let heatmaps = match &heatmap_job {
                Some(job) => {
                    let gray = GrayMap { width_px: width, height_px: height, values: gray };
                    Some(job.write(&classifier, &x, &gray, stem, &input)?)
                }
                None => None,
            };
            results.push(Classified { input, probabilities, heatmaps, out_of_domain });
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
            for record in result.heatmaps.iter().flatten() {
                println!("  {} {} heatmap: {}", record.method, record.label, record.overlay_png);
                if let Some(note) = &record.note {
                    println!("    note: {note}");
                }
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
        json.push('}');
        if let Some(heatmaps) = &result.heatmaps {
            write!(json, ",\"heatmaps\":{}", serde_json::to_string(heatmaps)?)?;
        }
        if let Some(doubt) = &result.out_of_domain {
            write!(json, ",\"out_of_domain\":{}", serde_json::to_string(doubt)?)?;
        }
        json.push('}');
    }
    json.push(']');
    Ok(json)
}

/// What `--heatmap` asks for.
struct HeatmapJob {
    dir: PathBuf,
    targets: Vec<usize>,
    options: HeatmapOptions,
}

impl HeatmapJob {
    /// Computes the heatmaps of one preprocessed image `x` [1, 3, 224, 224] whose source is `gray`, and writes them.
    fn write(
        &self,
        classifier: &DenseNet121,
        x: &Tensor,
        gray: &GrayMap,
        stem: &str,
        input: &str,
    ) -> anyhow::Result<Vec<HeatmapRecord>> {
        let maps = heatmaps(classifier, x, &self.targets, self.options)
            .with_context(|| format!("computing {} heatmaps of {input}", self.options.method))?;
        maps.iter().map(|map| self.write_one(map, gray, stem)).collect()
    }

    /// The files of the `label` heatmap of the input `stem`.
    fn files(&self, label: &str, stem: &str) -> HeatmapFiles {
        heatmap_file_paths(&self.dir, &self.base(label, stem))
    }

    fn base(&self, label: &str, stem: &str) -> String {
        format!("{stem}_{}_{}", safe_file_part(label), self.options.method.cli_name())
    }

    fn write_one(&self, map: &Heatmap, gray: &GrayMap, stem: &str) -> anyhow::Result<HeatmapRecord> {
        let method = map.options.method.cli_name();
        let base = self.base(&map.label, stem);
        let full = map.at_image_size(gray.width_px, gray.height_px);

        let files = write_heatmap_files(&self.dir, &base, gray, &full, OverlayStyle::HALF_AND_HALF)?;
        Ok(HeatmapRecord {
            label: map.label.clone(),
            method,
            probability: map.probability,
            note: map.note.clone(),
            overlay_png: files.overlay_png.display().to_string(),
            map_png: files.map_png.display().to_string(),
            map_npy: files.map_npy.display().to_string(),
        })
    }
}

/// Channel 0 of a normalised classifier input back in [0, 1], to draw heatmaps of `--tensor-npy` rows on.
fn denormalized_gray(
    x: &Tensor,
    normalization: Option<&crate::models::card::InputNormalization>,
) -> anyhow::Result<GrayMap> {
    let (mean, std) = match normalization {
        Some(n) => (n.mean.first().copied().unwrap_or(0.0), n.std.first().copied().unwrap_or(1.0)),
        None => (IMAGENET_MEAN[0], IMAGENET_STD[0]),
    };
    let (_, _, height, width) = x.dims4()?;
    let values = x.narrow(1, 0, 1)?.flatten_all()?.to_vec1::<f32>()?;
    let values = values.into_iter().map(|v| (v * std + mean).clamp(0.0, 1.0)).collect();
    Ok(GrayMap { width_px: width, height_px: height, values })
}

/// The card's name of label `index` (targets come from the card, so it has one).
fn label_name(card: &crate::models::card::ModelCard, index: usize) -> &str {
    card.labels.get(index).map_or("", String::as_str)
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map_or_else(|| "input".to_owned(), |s| safe_file_part(&s.to_string_lossy()))
}

/// `stem`, or `stem_2`, `stem_3`, ... when two inputs share a file name.
pub(crate) fn unique_stem(stem: &str, used: &mut HashSet<String>) -> String {
    let mut candidate = stem.to_owned();
    let mut n = 2;
    while !used.insert(candidate.clone()) {
        candidate = format!("{stem}_{n}");
        n += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_the_card_label_order() {
        let results = vec![Classified {
            input: "a \"b\".png".into(),
            probabilities: vec![0.25, 0.5],
            heatmaps: None,
            out_of_domain: None,
        }];
        let json = results_json(&results, &["Zeta".into(), "Alpha".into()]).unwrap();
        assert_eq!(json, r#"[{"input":"a \"b\".png","probabilities":{"Zeta":0.25,"Alpha":0.5}}]"#);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed[0]["probabilities"]["Alpha"], 0.5);
    }

    #[test]
    fn json_lists_heatmaps_when_asked() {
        let record = HeatmapRecord {
            label: "Zeta".into(),
            method: "gradcam",
            probability: 0.25,
            note: None,
            overlay_png: "o.png".into(),
            map_png: "m.png".into(),
            map_npy: "m.npy".into(),
        };
        let results = vec![Classified {
            input: "a.png".into(),
            probabilities: vec![0.25],
            heatmaps: Some(vec![record]),
            out_of_domain: None,
        }];
        let parsed: serde_json::Value =
            serde_json::from_str(&results_json(&results, &["Zeta".into()]).unwrap()).unwrap();
        assert_eq!(parsed[0]["heatmaps"][0]["map_npy"], "m.npy");
        assert_eq!(parsed[0]["heatmaps"][0]["note"], serde_json::Value::Null);
    }

    #[test]
    fn file_names_are_portable_and_unique() {
        assert_eq!(safe_file_part("Pleural Effusion/x"), "Pleural_Effusion_x");
        let mut used = HashSet::new();
        assert_eq!(unique_stem("a", &mut used), "a");
        assert_eq!(unique_stem("a", &mut used), "a_2");
        assert_eq!(unique_stem("a", &mut used), "a_3");
    }
}
