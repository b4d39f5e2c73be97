//! Converts an original Thorax_GAN / PGGAN `network-snapshot-*.pkl` (a pickled tuple `(G, D, Gs)` of
//! `tfutil.Network`) into our safetensors: takes `Gs`, checks it is a fully grown `G_paper` (lod 0) with every
//! variable in its TF shape, multiplies the weights by their runtime scale `gain / sqrt(fan_in)`, and attaches a
//! model card with the label order of the dataset it was trained on. No TensorFlow or Python is involved.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};

use crate::convert::pickle::{self, NumpyError, PickleError, Value};
use crate::models::card::{ModelCard, Provenance};
use crate::models::error::ModelError;
use crate::models::labels::{CHEXPERT_GAN_LABELS, NIH_GAN_LABELS};
use crate::models::progan::{ProganArchitecture, progan_card};

/// The dataset a ProGAN was trained on, which fixes the meaning of its 14 label inputs (research/seed.md 1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GanDataset {
    /// CheXpert CSV column order.
    Chexpert,
    /// NIH ChestX-ray14 `nih_labels.csv` column order.
    Nih,
}

impl GanDataset {
    /// The generator's label names in input order.
    pub fn labels(self) -> &'static [&'static str; 14] {
        match self {
            GanDataset::Chexpert => &CHEXPERT_GAN_LABELS,
            GanDataset::Nih => &NIH_GAN_LABELS,
        }
    }

    /// Display name.
    pub fn display_name(self) -> &'static str {
        match self {
            GanDataset::Chexpert => "CheXpert",
            GanDataset::Nih => "NIH ChestX-ray14",
        }
    }
}

/// Why a pickle could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ProganConvertError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a readable Python pickle: {source}")]
    Pickle { path: PathBuf, source: PickleError },
    #[error("{path} is not a ProGAN network pickle: {reason}")]
    NotProgan { path: PathBuf, reason: String },
    #[error("{path}: Gs was saved at lod {lod} (still growing); only a fully grown network (lod 0) can be converted")]
    LodNotZero { path: PathBuf, lod: f64 },
    #[error("{path}: G_paper setting `{setting}` = {value} is not supported: {reason}")]
    UnsupportedSetting { path: PathBuf, setting: String, value: String, reason: String },
    #[error("{path}: Gs has no variable `{name}` (a {resolution} px G_paper needs it)")]
    MissingVariable { path: PathBuf, name: String, resolution: usize },
    #[error("{path}: variable `{name}` has shape {found:?}, expected {expected:?}")]
    WrongShape { path: PathBuf, name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("{path}: variable `{name}`: {source}")]
    BadArray { path: PathBuf, name: String, source: NumpyError },
    #[error("{path}: variable `{name}` contains NaN or infinite values")]
    NonFinite { path: PathBuf, name: String },
    #[error("{path}: Gs has {found} label inputs, but --dataset {dataset:?} defines 14")]
    LabelCount { path: PathBuf, dataset: GanDataset, found: usize },
    #[error("{path}: {source}")]
    Model { path: PathBuf, source: ModelError },
}

/// The result of a conversion: the card and the scaled tensors (CPU, f32, TF names and layouts).
pub struct ConvertedProgan {
    pub card: ModelCard,
    pub tensors: HashMap<String, Tensor>,
}

/// Reads `pkl`, converts it and writes `out` (safetensors with the card); returns what was written.
pub fn convert_progan_file(
    pkl: &Path,
    out: &Path,
    dataset: Option<GanDataset>,
) -> Result<ConvertedProgan, ProganConvertError> {
    let bytes = std::fs::read(pkl).map_err(|source| ProganConvertError::Read { path: pkl.to_path_buf(), source })?;
    let converted = convert_progan_pickle(&bytes, pkl, dataset)?;
    crate::models::weights::save(out, &converted.tensors, &converted.card)
        .map_err(|source| ProganConvertError::Model { path: out.to_path_buf(), source })?;
    Ok(converted)
}

/// Converts the bytes of a ProGAN pickle; `path` names the source in errors and in the card.
///
/// Without a dataset, a 14-label network gets the CheXpert order (the original `config.py` trains on CheXpert)
/// and any other label count gets the names `label_0`, `label_1`, ...
pub fn convert_progan_pickle(
    bytes: &[u8],
    path: &Path,
    dataset: Option<GanDataset>,
) -> Result<ConvertedProgan, ProganConvertError> {
    let not_progan = |reason: String| ProganConvertError::NotProgan { path: path.to_path_buf(), reason };
    let root = pickle::parse_pickle(bytes)
        .map_err(|source| ProganConvertError::Pickle { path: path.to_path_buf(), source })?;
    let networks = match &root {
        Value::Tuple(items) if items.len() == 3 => items,
        other => {
            return Err(not_progan(format!(
                "the top-level object is a {}, expected the tuple (G, D, Gs)",
                other.describe()
            )));
        }
    };
    let gs = &networks[2];
    let is_network = gs
        .object_class()
        .is_some_and(|(module, name)| name == "Network" && (module == "tfutil" || module.ends_with(".tfutil")));
    if !is_network {
        return Err(not_progan(format!("the third object is a {}, expected a tfutil.Network", gs.describe())));
    }
    let state = match gs {
        Value::Object { state: Some(state), .. } if matches!(state.as_ref(), Value::Dict(_)) => state.as_ref(),
        _ => return Err(not_progan("the Gs network has no state dict".to_owned())),
    };
    match state.dict_get("build_func_name").and_then(Value::as_str) {
        Some("G_paper") => {}
        Some(other) => {
            return Err(not_progan(format!("Gs was built by `{other}`, expected `G_paper`")));
        }
        None => return Err(not_progan("the Gs state has no `build_func_name`".to_owned())),
    }
    let empty = Value::Dict(Vec::new());
    let kwargs = state.dict_get("static_kwargs").unwrap_or(&empty);
    let settings = Settings { kwargs, path };
    settings.check_fixed()?;
    let resolution = settings.whole("resolution", 32)?;
    let channels = settings.whole("num_channels", 1)?;
    let label_size = settings.whole("label_size", 0)?;
    let labels: Vec<String> = match dataset {
        Some(dataset) if label_size != 14 => {
            return Err(ProganConvertError::LabelCount { path: path.to_path_buf(), dataset, found: label_size });
        }
        Some(dataset) => dataset.labels().iter().map(|s| (*s).to_owned()).collect(),
        None if label_size == 14 => CHEXPERT_GAN_LABELS.iter().map(|s| (*s).to_owned()).collect(),
        None => (0..label_size).map(|i| format!("label_{i}")).collect(),
    };
    let mut probe = progan_card("", labels.clone(), &default_architecture(), false, Provenance::default());
    probe.resolution = resolution;
    probe.channels = channels;
    probe.hyper.insert("fmap_base".to_owned(), settings.number("fmap_base", 8192.0)?);
    probe.hyper.insert("fmap_decay".to_owned(), settings.number("fmap_decay", 1.0)?);
    probe.hyper.insert("fmap_max".to_owned(), settings.number("fmap_max", 512.0)?);
    probe.hyper.remove("latent_size");
    if let Some(latent) = kwargs.dict_get("latent_size").filter(|v| **v != Value::None) {
        let latent = number_of(latent).ok_or_else(|| settings.unsupported("latent_size", latent, "not a number"))?;
        probe.hyper.insert("latent_size".to_owned(), latent);
    }
    let architecture = ProganArchitecture::from_card(&probe)
        .map_err(|source| ProganConvertError::Model { path: path.to_path_buf(), source })?;

    let variables = variables_of(state).ok_or_else(|| not_progan("the Gs state has no `variables` list".to_owned()))?;
    check_lod(&variables, path, resolution)?;
    let mut tensors = HashMap::new();
    for spec in architecture.tensor_specs() {
        let value = variables.get(spec.name.as_str()).ok_or_else(|| ProganConvertError::MissingVariable {
            path: path.to_path_buf(),
            name: spec.name.clone(),
            resolution,
        })?;
        let array = pickle::ndarray_from_value(value).map_err(|source| ProganConvertError::BadArray {
            path: path.to_path_buf(),
            name: spec.name.clone(),
            source,
        })?;
        if array.shape != spec.shape {
            return Err(ProganConvertError::WrongShape {
                path: path.to_path_buf(),
                name: spec.name.clone(),
                expected: spec.shape.clone(),
                found: array.shape,
            });
        }
        if !array.data.iter().all(|v| v.is_finite()) {
            return Err(ProganConvertError::NonFinite { path: path.to_path_buf(), name: spec.name.clone() });
        }
        // Same float32 product as the TF graph's `weight * np.float32(gain / np.sqrt(fan_in))`.
        let scale = spec.wscale();
        let scaled: Vec<f32> = array.data.iter().map(|v| v * scale).collect();
        let tensor = Tensor::from_vec(scaled, spec.shape.clone(), &Device::Cpu)
            .map_err(|e| ProganConvertError::Model { path: path.to_path_buf(), source: e.into() })?;
        tensors.insert(spec.name, tensor);
    }

    let file_name =
        path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    let dataset_name = match dataset {
        Some(dataset) => dataset.display_name(),
        None if label_size == 14 => "CheXpert (assumed; pass --dataset to state it)",
        None => "unknown",
    };
    let network_name = state.dict_get("name").and_then(Value::as_str).unwrap_or("Gs");
    let provenance = Provenance {
        source: format!(
            "{file_name} (network `{network_name}`, converted by thorax convert progan-tf; weights stored with the \
             equalised-learning-rate scale applied)"
        ),
        source_sha256: Some(sha256_hex(bytes)),
        training_data: Some(dataset_name.to_owned()),
        licence: None,
        training_command: None,
    };
    let name = format!(
        "ProGAN G_paper, {}, {resolution} px ({file_name})",
        dataset.map_or("unnamed dataset", GanDataset::display_name)
    );
    let card = progan_card(&name, labels, &architecture, false, provenance);
    Ok(ConvertedProgan { card, tensors })
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn default_architecture() -> ProganArchitecture {
    ProganArchitecture {
        resolution_px: 256,
        latent_size: 512,
        label_size: 14,
        channels: 1,
        fmap_base: 8192.0,
        fmap_decay: 1.0,
        fmap_max: 512,
    }
}

/// The `variables` list `[(name, array), ...]` as a map.
fn variables_of(state: &Value) -> Option<HashMap<&str, &Value>> {
    let list = state.dict_get("variables")?.as_sequence()?;
    let mut map = HashMap::with_capacity(list.len());
    for item in list {
        if let [Value::Str(name), value] = item.as_sequence()? {
            map.insert(name.as_str(), value);
        } else {
            return None;
        }
    }
    Some(map)
}

/// Requires the `lod` variable to be 0.
fn check_lod(variables: &HashMap<&str, &Value>, path: &Path, resolution: usize) -> Result<(), ProganConvertError> {
    let value = variables.get("lod").ok_or_else(|| ProganConvertError::MissingVariable {
        path: path.to_path_buf(),
        name: "lod".to_owned(),
        resolution,
    })?;
    let lod = match value {
        Value::Float(lod) => *lod,
        other => {
            let array = pickle::ndarray_from_value(other).map_err(|source| ProganConvertError::BadArray {
                path: path.to_path_buf(),
                name: "lod".to_owned(),
                source,
            })?;
            match array.data.as_slice() {
                [lod] => f64::from(*lod),
                _ => {
                    return Err(ProganConvertError::WrongShape {
                        path: path.to_path_buf(),
                        name: "lod".to_owned(),
                        expected: Vec::new(),
                        found: array.shape,
                    });
                }
            }
        }
    };
    if lod != 0.0 {
        return Err(ProganConvertError::LodNotZero { path: path.to_path_buf(), lod });
    }
    Ok(())
}

/// A Python number or a one-element numpy value (settings may hold `np.int64` from a dataset's shape).
fn number_of(value: &Value) -> Option<f64> {
    value.as_f64().or_else(|| {
        let array = pickle::ndarray_from_value(value).ok()?;
        match array.data.as_slice() {
            [single] => Some(f64::from(*single)),
            _ => None,
        }
    })
}

/// The `static_kwargs` of `Gs` with `G_paper`'s defaults.
struct Settings<'a> {
    kwargs: &'a Value,
    path: &'a Path,
}

impl Settings<'_> {
    fn unsupported(&self, setting: &str, value: &Value, reason: &str) -> ProganConvertError {
        ProganConvertError::UnsupportedSetting {
            path: self.path.to_path_buf(),
            setting: setting.to_owned(),
            value: match value {
                Value::Str(text) => format!("'{text}'"),
                Value::Int(v) => v.to_string(),
                Value::Float(v) => v.to_string(),
                Value::Bool(v) => if *v { "True" } else { "False" }.to_owned(),
                other => other.describe(),
            },
            reason: reason.to_owned(),
        }
    }

    fn whole(&self, key: &str, default: usize) -> Result<usize, ProganConvertError> {
        match self.kwargs.dict_get(key) {
            None => Ok(default),
            Some(value) => number_of(value)
                .filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= 1e9)
                .map(|v| v as usize)
                .ok_or_else(|| self.unsupported(key, value, "not a non-negative integer")),
        }
    }

    fn number(&self, key: &str, default: f64) -> Result<f64, ProganConvertError> {
        match self.kwargs.dict_get(key) {
            None => Ok(default),
            Some(value) => number_of(value).ok_or_else(|| self.unsupported(key, value, "not a number")),
        }
    }

    /// Settings our implementation fixes to the original's values.
    fn check_fixed(&self) -> Result<(), ProganConvertError> {
        for key in ["normalize_latents", "use_wscale", "use_pixelnorm", "use_leakyrelu", "fused_scale"] {
            if let Some(value) = self.kwargs.dict_get(key)
                && !matches!(value, Value::Bool(true) | Value::Int(1))
            {
                return Err(self.unsupported(key, value, "only the original's True is implemented"));
            }
        }
        if let Some(value) = self.kwargs.dict_get("pixelnorm_epsilon")
            && value.as_f64() != Some(1e-8)
        {
            return Err(self.unsupported("pixelnorm_epsilon", value, "only the original's 1e-8 is implemented"));
        }
        if let Some(value) = self.kwargs.dict_get("dtype")
            && value.as_str() != Some("float32")
        {
            return Err(self.unsupported("dtype", value, "only float32 networks are implemented"));
        }
        Ok(())
    }
}
