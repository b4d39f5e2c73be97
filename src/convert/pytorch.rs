//! Reading PyTorch checkpoints without Python: the `torch.save` zip format (PyTorch >= 1.6) and the legacy format
//! (magic number, protocol and system-info pickles, the object pickle, the storage key list, then raw storages),
//! holding a state_dict, a `{'state_dict': ...}` wrapper, or a whole pickled module (e.g. reproduce-chexnet's
//! `{'model': DenseNet, ...}`), whose parameters and buffers are collected under their state_dict names.
//!
//! Pickles are parsed by `candle_core::pickle::Stack` (protocol 2, what `torch.save` writes by default); tensors are
//! rebuilt from their storages here, with any strides, as f32. Formats this cannot read (very old tar archives,
//! pickles using opcodes of protocol 4+) can be exported once with `tools/export_checkpoint.py`.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};

/// The legacy format's first pickle: protocol 2, `LONG1` of 10 bytes holding 0x1950a86a20f9469cfc6c, `STOP`.
const LEGACY_MAGIC_PICKLE: [u8; 15] =
    [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];
/// Zip archives start with a local file header.
const ZIP_MAGIC: [u8; 4] = [0x50, 0x4b, 0x03, 0x04];

/// Why a checkpoint could not be read; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TorchError {
    #[error("cannot read checkpoint {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{path} is not a PyTorch checkpoint this reader knows (neither a torch.save zip archive nor the legacy \
         format); export it with tools/export_checkpoint.py"
    )]
    UnknownFormat { path: PathBuf },
    #[error("checkpoint {path}: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("checkpoint {path}: the pickle cannot be parsed ({reason}); export it with tools/export_checkpoint.py")]
    Pickle { path: PathBuf, reason: String },
    #[error("checkpoint {path}: tensor `{tensor}`: {reason}")]
    Tensor { path: PathBuf, tensor: String, reason: String },
    #[error("checkpoint {path} holds no tensors in a form this reader knows (top level: {found})")]
    NoTensors { path: PathBuf, found: String },
}

/// How the checkpoint was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointFormat {
    /// `torch.save` since PyTorch 1.6: a zip archive with `data.pkl` and one file per storage.
    Zip,
    /// `torch.save(..., _use_new_zipfile_serialization=False)` and PyTorch < 1.6.
    Legacy,
}

/// The floating-point tensors of a checkpoint under their state_dict names, in the order the pickle lists them.
#[derive(Debug)]
pub struct Checkpoint {
    pub format: CheckpointFormat,
    /// Where the tensors were found, e.g. `state_dict`, `dict key 'state_dict'`, `module under 'model'`.
    pub container: String,
    /// Name and f32 tensor on the CPU.
    pub tensors: Vec<(String, Tensor)>,
    /// Integer or boolean tensors that were left out (e.g. BatchNorm's `num_batches_tracked`).
    pub skipped: Vec<String>,
}

/// Reads the tensors of a PyTorch checkpoint file.
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint, TorchError> {
    let bytes = std::fs::read(path).map_err(|source| TorchError::Io { path: path.to_path_buf(), source })?;
    read_checkpoint_bytes(&bytes, path)
}

/// Same as [`read_checkpoint`] for bytes in memory; `path` only names them in errors.
pub fn read_checkpoint_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint, TorchError> {
    let (format, root, storages) = if bytes.starts_with(&ZIP_MAGIC) {
        let (root, storages) = read_zip(bytes, path)?;
        (CheckpointFormat::Zip, root, storages)
    } else if bytes.starts_with(&LEGACY_MAGIC_PICKLE) {
        let (root, storages) = read_legacy(bytes, path)?;
        (CheckpointFormat::Legacy, root, storages)
    } else {
        return Err(TorchError::UnknownFormat { path: path.to_path_buf() });
    };
    let mut collector = Collector { path, storages: &storages, tensors: Vec::new(), skipped: Vec::new() };
    let container = collector.collect_root(&root)?;
    if collector.tensors.is_empty() {
        return Err(TorchError::NoTensors { path: path.to_path_buf(), found: describe(&root) });
    }
    Ok(Checkpoint { format, container, tensors: collector.tensors, skipped: collector.skipped })
}

/// Raw storage bytes by storage key.
type Storages = HashMap<String, Vec<u8>>;

fn malformed(path: &Path, reason: impl Into<String>) -> TorchError {
    TorchError::Malformed { path: path.to_path_buf(), reason: reason.into() }
}

/// Parses one pickle starting at `*cursor` and advances the cursor past its STOP opcode.
fn parse_pickle(cursor: &mut &[u8], path: &Path) -> Result<Object, TorchError> {
    // candle's parser can panic on arithmetic overflow for hostile integers; keep that from taking the program down.
    let result = crate::contained_panic::contain(|| {
        let mut stack = Stack::empty();
        stack.read_loop(cursor)?;
        stack.finalize()
    });
    match result {
        Ok(Ok(object)) => Ok(object),
        Ok(Err(error)) => Err(TorchError::Pickle { path: path.to_path_buf(), reason: error.to_string() }),
        Err(_) => Err(TorchError::Pickle {
            path: path.to_path_buf(),
            reason: "the pickle parser gave up on a malformed value".to_owned(),
        }),
    }
}

fn read_zip(bytes: &[u8], path: &Path) -> Result<(Object, Storages), TorchError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| malformed(path, format!("bad zip archive: {e}")))?;
    let names: Vec<String> = archive
        .file_names()
        .map(|name| name.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| malformed(path, format!("bad zip entry name: {e}")))?;
    let pickle_name = names
        .iter()
        .find(|name| name.ends_with("data.pkl") && name.matches('/').count() <= 1)
        .ok_or_else(|| malformed(path, "zip archive has no data.pkl: not a torch.save file"))?
        .clone();
    let prefix = pickle_name.trim_end_matches("data.pkl").to_owned();
    let mut read_entry = |name: &str| -> Result<Vec<u8>, TorchError> {
        let mut entry = archive.by_name(name).map_err(|e| malformed(path, format!("zip entry {name}: {e}")))?;
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(|e| malformed(path, format!("zip entry {name}: {e}")))?;
        Ok(data)
    };
    if names.iter().any(|name| *name == format!("{prefix}byteorder")) {
        let order = read_entry(&format!("{prefix}byteorder"))?;
        if order != b"little" {
            return Err(malformed(path, "tensors are stored big-endian, which this reader does not support"));
        }
    }
    let pickle = read_entry(&pickle_name)?;
    let root = parse_pickle(&mut pickle.as_slice(), path)?;
    let data_prefix = format!("{prefix}data/");
    let mut storages = HashMap::new();
    for name in &names {
        if let Some(key) = name.strip_prefix(&data_prefix)
            && !key.is_empty()
            && !key.contains('/')
        {
            storages.insert(key.to_owned(), read_entry(name)?);
        }
    }
    Ok((root, storages))
}

fn read_legacy(bytes: &[u8], path: &Path) -> Result<(Object, Storages), TorchError> {
    let mut cursor = bytes.get(LEGACY_MAGIC_PICKLE.len()..).unwrap_or_default();
    let protocol_version = parse_pickle(&mut cursor, path)?;
    if !matches!(protocol_version, Object::Int(1001)) {
        return Err(malformed(path, format!("legacy protocol version {protocol_version:?}, expected 1001")));
    }
    let system_info = parse_pickle(&mut cursor, path)?;
    if let Object::Dict(items) = &system_info {
        let little_endian = items
            .iter()
            .find(|(key, _)| *key == Object::Unicode("little_endian".to_owned()))
            .map(|(_, value)| value.clone());
        if little_endian == Some(Object::Bool(false)) {
            return Err(malformed(path, "the checkpoint was written big-endian, which this reader does not support"));
        }
    }
    let root = parse_pickle(&mut cursor, path)?;
    let keys = match parse_pickle(&mut cursor, path)? {
        Object::List(keys) | Object::Tuple(keys) => keys,
        other => return Err(malformed(path, format!("expected the storage key list, found {}", describe(&other)))),
    };
    // Element sizes come from the storage types named by the tensors in the object pickle.
    let mut element_sizes = HashMap::new();
    visit_persistent_ids(&root, &mut |id| {
        if let Some((key, storage_type)) = storage_key_and_type(id) {
            element_sizes.insert(key, storage_type.element_size);
        }
    });
    let mut storages = HashMap::new();
    for key in keys {
        let key = match key {
            Object::Unicode(key) => key,
            other => return Err(malformed(path, format!("storage key {other:?} is not a string"))),
        };
        let element_size = element_sizes
            .get(&key)
            .copied()
            .ok_or_else(|| malformed(path, format!("storage {key} is listed but no tensor names its type")))?;
        let (count_bytes, rest) =
            cursor.split_first_chunk::<8>().ok_or_else(|| malformed(path, format!("storage {key} is truncated")))?;
        let count = u64::from_le_bytes(*count_bytes);
        let length = usize::try_from(count)
            .ok()
            .and_then(|count| count.checked_mul(element_size))
            .filter(|&length| length <= rest.len())
            .ok_or_else(|| malformed(path, format!("storage {key} of {count} elements is truncated")))?;
        let (data, rest) = rest.split_at(length);
        storages.insert(key, data.to_vec());
        cursor = rest;
    }
    Ok((root, storages))
}

/// Calls `visit` on every persistent id in `object`.
fn visit_persistent_ids(object: &Object, visit: &mut dyn FnMut(&Object)) {
    match object {
        Object::PersistentLoad(id) => visit(id),
        Object::Tuple(items) | Object::List(items) => items.iter().for_each(|item| visit_persistent_ids(item, visit)),
        Object::Dict(items) => items.iter().for_each(|(key, value)| {
            visit_persistent_ids(key, visit);
            visit_persistent_ids(value, visit);
        }),
        Object::Reduce { callable, args } | Object::Build { callable, args } => {
            visit_persistent_ids(callable, visit);
            visit_persistent_ids(args, visit);
        }
        _ => {}
    }
}

/// What a storage type holds: its element size, and the dtype when it is floating point (the only tensors kept).
#[derive(Clone, Copy, Debug)]
struct StorageType {
    element_size: usize,
    float_dtype: Option<DType>,
}

/// `('storage', torch.FloatStorage, key, location, numel[, view_metadata])` -> key and storage type.
fn storage_key_and_type(id: &Object) -> Option<(String, StorageType)> {
    let Object::Tuple(items) = id else { return None };
    let [Object::Unicode(kind), Object::Class { class_name, .. }, Object::Unicode(key), ..] = items.as_slice() else {
        return None;
    };
    if kind != "storage" {
        return None;
    }
    let (element_size, float_dtype) = match class_name.as_str() {
        "FloatStorage" => (4, Some(DType::F32)),
        "DoubleStorage" => (8, Some(DType::F64)),
        "HalfStorage" => (2, Some(DType::F16)),
        "BFloat16Storage" => (2, Some(DType::BF16)),
        "LongStorage" => (8, None),
        "IntStorage" => (4, None),
        "ShortStorage" => (2, None),
        "CharStorage" | "ByteStorage" | "BoolStorage" => (1, None),
        _ => return None,
    };
    Some((key.clone(), StorageType { element_size, float_dtype }))
}

fn describe(object: &Object) -> String {
    match object {
        Object::Dict(items) => {
            let keys: Vec<String> = items
                .iter()
                .take(8)
                .map(|(key, _)| match key {
                    Object::Unicode(key) => format!("'{key}'"),
                    other => format!("{other:?}"),
                })
                .collect();
            format!("dict with keys {}", keys.join(", "))
        }
        Object::Build { callable, .. } => match module_class(callable) {
            Some(class) => format!("object {class}"),
            None => "object".to_owned(),
        },
        Object::Reduce { callable, .. } => format!("call of {callable:?}"),
        Object::List(items) => format!("list of {}", items.len()),
        Object::Tuple(items) => format!("tuple of {}", items.len()),
        other => format!("{other:?}"),
    }
}

fn module_class(object: &Object) -> Option<String> {
    match object {
        Object::Reduce { callable, .. } => module_class(callable),
        // The legacy format pickles module classes as persistent ids ('module', class, source file, source).
        Object::PersistentLoad(id) => match id.as_ref() {
            Object::Tuple(items) => items.get(1).and_then(module_class),
            _ => None,
        },
        Object::Class { module_name, class_name } => Some(format!("{module_name}.{class_name}")),
        _ => None,
    }
}

/// A pickled `nn.Module`: the object built from `__dict__` holding `_parameters`, `_buffers` and `_modules`.
fn module_state(object: &Object) -> Option<&[(Object, Object)]> {
    let Object::Build { args, .. } = object else { return None };
    let Object::Dict(items) = args.as_ref() else { return None };
    let has = |name: &str| items.iter().any(|(key, _)| *key == Object::Unicode(name.to_owned()));
    (has("_parameters") || has("_modules")).then_some(items.as_slice())
}

fn dict_entry<'a>(items: &'a [(Object, Object)], name: &str) -> Option<&'a Object> {
    items.iter().find(|(key, _)| *key == Object::Unicode(name.to_owned())).map(|(_, value)| value)
}

/// A tensor before its values are read: storage, offset, size and stride.
struct TensorRef<'a> {
    storage_id: &'a Object,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

fn integers(object: &Object) -> Option<Vec<usize>> {
    let Object::Tuple(items) = object else { return None };
    items
        .iter()
        .map(|item| match item {
            Object::Int(v) => usize::try_from(*v).ok(),
            Object::Long(v) => usize::try_from(*v).ok(),
            _ => None,
        })
        .collect()
}

/// Recognises the ways torch pickles a tensor: `_rebuild_tensor_v2` / `_rebuild_tensor`, wrapped in
/// `_rebuild_parameter`, `_rebuild_parameter_with_state` or `_rebuild_from_type_v2`.
fn tensor_ref(object: &Object) -> Option<TensorRef<'_>> {
    match object {
        Object::Reduce { callable, args } => tensor_ref_call(callable, args),
        Object::Build { callable, .. } => tensor_ref(callable),
        _ => None,
    }
}

fn tensor_ref_call<'a>(callable: &'a Object, args: &'a Object) -> Option<TensorRef<'a>> {
    let Object::Class { module_name, class_name } = callable else {
        return None;
    };
    let Object::Tuple(args) = args else { return None };
    match (module_name.as_str(), class_name.as_str()) {
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
            let [Object::PersistentLoad(storage_id), offset, size, stride, ..] = args.as_slice() else {
                return None;
            };
            let offset = match offset {
                Object::Int(v) => usize::try_from(*v).ok()?,
                Object::Long(v) => usize::try_from(*v).ok()?,
                _ => return None,
            };
            Some(TensorRef { storage_id, offset, size: integers(size)?, stride: integers(stride)? })
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => tensor_ref(args.first()?),
        ("torch._tensor", "_rebuild_from_type_v2") => {
            let [function, _type, function_args, ..] = args.as_slice() else { return None };
            tensor_ref_call(function, function_args)
        }
        _ => None,
    }
}

struct Collector<'a> {
    path: &'a Path,
    storages: &'a Storages,
    tensors: Vec<(String, Tensor)>,
    skipped: Vec<String>,
}

impl Collector<'_> {
    /// Finds the state_dict in the checkpoint's top-level object and says where it was.
    fn collect_root(&mut self, root: &Object) -> Result<String, TorchError> {
        if module_state(root).is_some() {
            self.collect_module(root, "")?;
            return Ok(format!("pickled module {}", describe(root)));
        }
        let Object::Dict(items) = root else {
            return Ok(describe(root));
        };
        for key in ["state_dict", "model_state_dict", "model", "net", "netG", "generator"] {
            if let Some(value) = dict_entry(items, key) {
                if module_state(value).is_some() {
                    self.collect_module(value, "")?;
                    return Ok(format!("pickled module {} under '{key}'", describe(value)));
                }
                if let Object::Dict(inner) = value
                    && inner.iter().any(|(_, v)| tensor_ref(v).is_some())
                {
                    self.collect_dict(inner, "")?;
                    return Ok(format!("state_dict under '{key}'"));
                }
            }
        }
        self.collect_dict(items, "")?;
        Ok("state_dict".to_owned())
    }

    /// A state_dict: string keys to tensors; other values (`_metadata`, epochs, losses) are ignored.
    fn collect_dict(&mut self, items: &[(Object, Object)], prefix: &str) -> Result<(), TorchError> {
        for (key, value) in items {
            let Object::Unicode(key) = key else { continue };
            if let Some(reference) = tensor_ref(value) {
                self.push(format!("{prefix}{key}"), &reference)?;
            }
        }
        Ok(())
    }

    fn collect_module(&mut self, module: &Object, prefix: &str) -> Result<(), TorchError> {
        let Some(state) = module_state(module) else { return Ok(()) };
        for group in ["_parameters", "_buffers"] {
            if let Some(Object::Dict(items)) = dict_entry(state, group) {
                self.collect_dict(items, prefix)?;
            }
        }
        if let Some(Object::Dict(children)) = dict_entry(state, "_modules") {
            for (name, child) in children {
                if let Object::Unicode(name) = name {
                    self.collect_module(child, &format!("{prefix}{name}."))?;
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, name: String, reference: &TensorRef<'_>) -> Result<(), TorchError> {
        let error = |reason: String| TorchError::Tensor { path: self.path.to_path_buf(), tensor: name.clone(), reason };
        let (key, storage_type) = storage_key_and_type(reference.storage_id)
            .ok_or_else(|| error(format!("unrecognised storage {:?}", reference.storage_id)))?;
        let Some(dtype) = storage_type.float_dtype else {
            self.skipped.push(name);
            return Ok(());
        };
        let bytes = self.storages.get(&key).ok_or_else(|| error(format!("storage {key} is missing from the file")))?;
        if reference.size.len() != reference.stride.len() {
            return Err(error("size and stride disagree".to_owned()));
        }
        let element_size = dtype.size_in_bytes();
        let storage_len = bytes.len() / element_size;
        let storage = Tensor::from_raw_buffer(
            bytes.get(..storage_len * element_size).unwrap_or_default(),
            dtype,
            &[storage_len],
            &Device::Cpu,
        )
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| error(e.to_string()))?;
        let count: usize = reference.size.iter().product();
        let mut values = Vec::with_capacity(count);
        let mut index = vec![0usize; reference.size.len()];
        for _ in 0..count {
            let position = reference.offset + index.iter().zip(&reference.stride).map(|(i, s)| i * s).sum::<usize>();
            let value = storage
                .get(position)
                .ok_or_else(|| error(format!("element {position} lies beyond its storage of {storage_len}")))?;
            values.push(*value);
            // Advance the multi-index in C order.
            for dim in (0..index.len()).rev() {
                index[dim] += 1;
                if index[dim] < reference.size[dim] {
                    break;
                }
                index[dim] = 0;
            }
        }
        let tensor =
            Tensor::from_vec(values, reference.size.clone(), &Device::Cpu).map_err(|e| error(e.to_string()))?;
        self.tensors.push((name, tensor));
        Ok(())
    }
}

/// Why a checkpoint's tensors do not make the network they were converted for.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("checkpoint {path}: {reason}")]
    Architecture { path: PathBuf, reason: String },
    #[error("checkpoint {path}: tensor `{tensor}` is missing")]
    Missing { path: PathBuf, tensor: String },
    #[error("checkpoint {path}: tensor `{tensor}` has shape {found:?}, expected {expected:?}")]
    Shape { path: PathBuf, tensor: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("checkpoint {path}: unexpected tensors {names}")]
    Unexpected { path: PathBuf, names: String },
    #[error("checkpoint {path}: tensor `{tensor}` contains NaN or infinite values")]
    NonFinite { path: PathBuf, tensor: String },
    #[error("checkpoint {path}: {argument}: {reason}")]
    Argument { path: PathBuf, argument: String, reason: String },
    #[error("checkpoint {path}: tensor computation failed: {source}")]
    Candle { path: PathBuf, source: candle_core::Error },
}

/// Result of a conversion: the weights with their card, and what was left out and why.
pub struct Converted {
    pub weights: crate::models::weights::Weights,
    /// Tensors in the checkpoint that the network does not use (stale InstanceNorm statistics, integer counters).
    pub dropped: Vec<String>,
}

fn dims_of(tensors: &HashMap<String, Tensor>, name: &str, path: &Path) -> Result<Vec<usize>, ConvertError> {
    tensors
        .get(name)
        .map(|t| t.dims().to_vec())
        .ok_or_else(|| ConvertError::Missing { path: path.to_path_buf(), tensor: name.to_owned() })
}

fn dim(dims: &[usize], index: usize, name: &str, path: &Path) -> Result<usize, ConvertError> {
    dims.get(index).copied().ok_or_else(|| ConvertError::Architecture {
        path: path.to_path_buf(),
        reason: format!("tensor `{name}` has shape {dims:?}, too few dimensions"),
    })
}

/// Checks the tensors are exactly `expected` (names and shapes) and finite, and returns them.
fn checked_tensors(
    mut tensors: HashMap<String, Tensor>,
    expected: &[(String, Vec<usize>)],
    path: &Path,
) -> Result<HashMap<String, Tensor>, ConvertError> {
    let mut out = HashMap::with_capacity(expected.len());
    for (name, shape) in expected {
        let tensor = tensors
            .remove(name)
            .ok_or_else(|| ConvertError::Missing { path: path.to_path_buf(), tensor: name.clone() })?;
        if tensor.dims() != shape.as_slice() {
            return Err(ConvertError::Shape {
                path: path.to_path_buf(),
                tensor: name.clone(),
                expected: shape.clone(),
                found: tensor.dims().to_vec(),
            });
        }
        let finite = tensor
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|source| ConvertError::Candle { path: path.to_path_buf(), source })?
            .iter()
            .all(|v| v.is_finite());
        if !finite {
            return Err(ConvertError::NonFinite { path: path.to_path_buf(), tensor: name.clone() });
        }
        out.insert(name.clone(), tensor);
    }
    if !tensors.is_empty() {
        let mut names: Vec<String> = tensors.into_keys().collect();
        names.sort();
        let shown: Vec<String> = names.iter().take(6).map(|n| format!("`{n}`")).collect();
        let more = names.len().saturating_sub(shown.len());
        return Err(ConvertError::Unexpected {
            path: path.to_path_buf(),
            names: if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") },
        });
    }
    Ok(out)
}

/// Converts a DenseNet checkpoint (torchvision names, old or new, any `module.` prefix) to weights with a card.
/// The architecture is read off the tensors; `labels` must name every classifier output in order.
pub fn densenet_weights(
    checkpoint: &Checkpoint,
    labels: Vec<String>,
    name: &str,
    provenance: crate::models::card::Provenance,
    path: &Path,
) -> Result<Converted, ConvertError> {
    use crate::models::densenet::{DenseNetConfig, canonical_key};
    let mut tensors = HashMap::new();
    for (key, tensor) in &checkpoint.tensors {
        let canonical = canonical_key(key);
        if tensors.insert(canonical.clone(), tensor.clone()).is_some() {
            return Err(ConvertError::Architecture {
                path: path.to_path_buf(),
                reason: format!("tensor `{canonical}` appears twice (under old and new names?)"),
            });
        }
    }
    if tensors.contains_key("classifier.weight") {
        return Err(ConvertError::Architecture {
            path: path.to_path_buf(),
            reason: "it has `classifier.weight`, a plain torchvision head without the CheXNet \
                     Sequential(Linear, Sigmoid); expected `classifier.0.weight`"
                .to_owned(),
        });
    }
    let conv0 = dims_of(&tensors, "features.conv0.weight", path)?;
    let num_init_features = dim(&conv0, 0, "features.conv0.weight", path)?;
    let conv2_name = "features.denseblock1.denselayer1.conv2.weight";
    let growth_rate = dim(&dims_of(&tensors, conv2_name, path)?, 0, conv2_name, path)?;
    let conv1_name = "features.denseblock1.denselayer1.conv1.weight";
    let bottleneck = dim(&dims_of(&tensors, conv1_name, path)?, 0, conv1_name, path)?;
    if growth_rate == 0 || bottleneck % growth_rate != 0 {
        return Err(ConvertError::Architecture {
            path: path.to_path_buf(),
            reason: format!("bottleneck width {bottleneck} is not a multiple of the growth rate {growth_rate}"),
        });
    }
    let mut block_config = Vec::new();
    loop {
        let block = block_config.len() + 1;
        let layers = (1..)
            .take_while(|layer| {
                tensors.contains_key(&format!("features.denseblock{block}.denselayer{layer}.conv1.weight"))
            })
            .count();
        if layers == 0 {
            break;
        }
        block_config.push(layers);
    }
    let classifier = dims_of(&tensors, "classifier.0.weight", path)?;
    let num_labels = dim(&classifier, 0, "classifier.0.weight", path)?;
    if labels.len() != num_labels {
        return Err(ConvertError::Argument {
            path: path.to_path_buf(),
            argument: "--labels".to_owned(),
            reason: format!("{} label names given, but `classifier.0.weight` has {num_labels} outputs", labels.len()),
        });
    }
    let config =
        DenseNetConfig { growth_rate, bn_size: bottleneck / growth_rate, num_init_features, block_config, num_labels };
    let tensors = checked_tensors(tensors, &config.tensor_shapes(), path)?;
    let card = config.card(name, labels, provenance);
    Ok(Converted { weights: crate::models::weights::Weights { card, tensors }, dropped: checkpoint.skipped.clone() })
}

/// Converts a junyanz ResnetGenerator state_dict (`latest_net_G_A.pth`) to weights with a card; stale InstanceNorm
/// running statistics are dropped, the architecture is read off the tensors.
pub fn cyclegan_weights(
    checkpoint: &Checkpoint,
    direction: crate::models::cyclegan::Direction,
    domains: [&str; 2],
    name: &str,
    provenance: crate::models::card::Provenance,
    path: &Path,
) -> Result<Converted, ConvertError> {
    use crate::models::cyclegan::CycleGanConfig;
    let mut tensors = HashMap::new();
    let mut dropped = checkpoint.skipped.clone();
    for (key, tensor) in &checkpoint.tensors {
        let key = key.strip_prefix("module.").unwrap_or(key);
        if key.ends_with(".running_mean") || key.ends_with(".running_var") {
            dropped.push(key.to_owned());
        } else {
            tensors.insert(key.to_owned(), tensor.clone());
        }
    }
    if tensors.contains_key("model.2.weight") {
        return Err(ConvertError::Architecture {
            path: path.to_path_buf(),
            reason: "it has `model.2.weight`: a normalisation layer with learned parameters (--norm batch or an \
                     affine InstanceNorm); only junyanz's default instance norm without affine is supported"
                .to_owned(),
        });
    }
    if !tensors.contains_key("model.1.bias") && tensors.contains_key("model.1.weight") {
        return Err(ConvertError::Architecture {
            path: path.to_path_buf(),
            reason: "tensor `model.1.bias` is missing: the generator was built without conv biases \
                     (--norm batch); only instance norm is supported"
                .to_owned(),
        });
    }
    let stem = dims_of(&tensors, "model.1.weight", path)?;
    let ngf = dim(&stem, 0, "model.1.weight", path)?;
    let input_nc = dim(&stem, 1, "model.1.weight", path)?;
    let n_blocks =
        (0..).take_while(|block| tensors.contains_key(&format!("model.{}.conv_block.1.weight", 10 + block))).count();
    let use_dropout = tensors.contains_key("model.10.conv_block.6.weight");
    let head_name = format!("model.{}.weight", 17 + n_blocks);
    let output_nc = dim(&dims_of(&tensors, &head_name, path)?, 0, &head_name, path)?;
    let config = CycleGanConfig { ngf, n_blocks, input_nc, output_nc, use_dropout, direction };
    for (key, channels) in [("input", input_nc), ("output", output_nc)] {
        if channels != 1 && channels != 3 {
            return Err(ConvertError::Architecture {
                path: path.to_path_buf(),
                reason: format!("{channels} {key} channels; the generator must take and give 1 or 3"),
            });
        }
    }
    let tensors = checked_tensors(tensors, &config.tensor_shapes(), path)?;
    let card = config.card(name, domains, provenance);
    Ok(Converted { weights: crate::models::weights::Weights { card, tensors }, dropped })
}

/// Converts pytorch-fid's FID Inception-v3 checkpoint (`pt_inception-2015-12-05-6726825d.pth`, a state_dict of
/// torchvision's Inception3 with the FID blocks, any `module.` prefix) to weights with a card. The classifier
/// (`fc.*`), unused for FID, is dropped; every tensor up to pool3 must be there with its shape.
pub fn inception_weights(
    checkpoint: &Checkpoint,
    name: &str,
    provenance: crate::models::card::Provenance,
    path: &Path,
) -> Result<Converted, ConvertError> {
    use crate::models::inception::{inception_card, tensor_shapes};
    let mut tensors = HashMap::new();
    let mut dropped = checkpoint.skipped.clone();
    for (key, tensor) in &checkpoint.tensors {
        let key = key.strip_prefix("module.").unwrap_or(key);
        if key.starts_with("fc.") {
            dropped.push(key.to_owned());
        } else {
            tensors.insert(key.to_owned(), tensor.clone());
        }
    }
    if tensors.keys().any(|key| key.starts_with("AuxLogits.")) {
        return Err(ConvertError::Architecture {
            path: path.to_path_buf(),
            reason: "it has `AuxLogits.*`: torchvision's ImageNet Inception-v3, not the FID Inception weights \
                     (pt_inception-2015-12-05-6726825d.pth); FID with other weights is not comparable"
                .to_owned(),
        });
    }
    let tensors = checked_tensors(tensors, &tensor_shapes(), path)?;
    let card = inception_card(name, false, provenance);
    Ok(Converted { weights: crate::models::weights::Weights { card, tensors }, dropped })
}
