//! Training checkpoints: one safetensors file with every tensor needed to continue exactly (G, D, the EMA of G, the
//! first and second moments of both optimisers, all f32) and a JSON state in its metadata (configuration, step,
//! optimiser step counts, accumulated wall time, the random generator state of the next step and, for a grown run,
//! its fade-in schedule).
//!
//! Tensor names are prefixed: `G/`, `D/`, `G_ema/`, `adam_G/m/`, `adam_G/v/`, `adam_D/m/`, `adam_D/v/`, followed
//! by the parameter's own name (TF names for G, `D_paper`-style names for D). The file is written next to its
//! destination and renamed into place, so an interrupted save never leaves a half-written checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::models::safetensors_file::write_safetensors;
use crate::train::error::TrainError;
use crate::train::gan_trainer::GanTrainConfig;
use crate::train::growth::FadeSchedule;
use crate::train::rng::TrainRng;

/// The safetensors metadata key holding [`CheckpointState`] as JSON.
pub const STATE_METADATA_KEY: &str = "thorax.train_state";
/// The format tag of this checkpoint layout.
pub const CHECKPOINT_FORMAT: &str = "thorax-gan-checkpoint-1";

/// Everything besides tensors that a resumed run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    pub format: String,
    pub config: GanTrainConfig,
    /// Training steps completed.
    pub step: u64,
    pub adam_generator_step: u64,
    pub adam_discriminator_step: u64,
    /// Wall time spent in training steps over all runs so far.
    pub train_seconds: f64,
    /// The generator state the next step starts from (derived from the seed and step; stored to check it).
    pub next_step_rng: TrainRng,
    /// For a run grown from a lower resolution: its fade-in (the lod-1 tensors are then stored too). Absent in
    /// checkpoints of runs that were never grown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fade: Option<FadeSchedule>,
}

/// Groups of tensors in a checkpoint, by prefix without the slash.
pub type TensorGroups = BTreeMap<String, BTreeMap<String, Tensor>>;

/// Writes `groups` (prefix -> name -> tensor) and `state` to `path` atomically.
pub fn save_checkpoint(path: &Path, groups: &TensorGroups, state: &CheckpointState) -> Result<(), TrainError> {
    let fail = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
    let mut flat: Vec<(String, Tensor)> = Vec::new();
    for (prefix, tensors) in groups {
        for (name, tensor) in tensors {
            flat.push((format!("{prefix}/{name}"), tensor.to_dtype(DType::F32)?.to_device(&Device::Cpu)?));
        }
    }
    let json = serde_json::to_string(state).map_err(|e| fail(format!("cannot encode the state: {e}")))?;
    let metadata = HashMap::from([(STATE_METADATA_KEY.to_owned(), json)]);
    let refs: Vec<(&str, &Tensor)> = flat.iter().map(|(k, v)| (k.as_str(), v)).collect();
    write_safetensors(&refs, metadata, path).map_err(fail)
}

/// Reads a checkpoint: its tensors grouped by prefix (on `device`) and its state.
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<(TensorGroups, CheckpointState), TrainError> {
    let fail = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let (_, metadata) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| fail(format!("not a safetensors file: {e}")))?;
    let json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(STATE_METADATA_KEY))
        .ok_or_else(|| fail(format!("no `{STATE_METADATA_KEY}` metadata: not a thorax training checkpoint")))?;
    let state: CheckpointState =
        serde_json::from_str(json).map_err(|e| fail(format!("the training state is not valid: {e}")))?;
    if state.format != CHECKPOINT_FORMAT {
        return Err(fail(format!("format `{}`, expected `{CHECKPOINT_FORMAT}`", state.format)));
    }
    let tensors = candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| fail(e.to_string()))?;
    let mut groups = TensorGroups::new();
    for (name, tensor) in tensors {
        // The group is everything before the last slash-separated parameter name part that follows the prefix.
        let (prefix, rest) = split_prefix(&name).ok_or_else(|| fail(format!("tensor `{name}` has no group prefix")))?;
        groups.entry(prefix.to_owned()).or_default().insert(rest.to_owned(), tensor);
    }
    Ok((groups, state))
}

/// `adam_G/m/4x4/Conv/weight` -> (`adam_G/m`, `4x4/Conv/weight`); `G/4x4/Conv/weight` -> (`G`, ...).
fn split_prefix(name: &str) -> Option<(&str, &str)> {
    for prefix in ["adam_G/m", "adam_G/v", "adam_D/m", "adam_D/v", "G_ema", "G", "D"] {
        if let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) {
            return Some((prefix, rest));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_split_at_the_group() {
        assert_eq!(split_prefix("adam_G/m/4x4/Conv/weight"), Some(("adam_G/m", "4x4/Conv/weight")));
        assert_eq!(split_prefix("G_ema/ToRGB_lod0/bias"), Some(("G_ema", "ToRGB_lod0/bias")));
        assert_eq!(split_prefix("G/8x8/Conv1/bias"), Some(("G", "8x8/Conv1/bias")));
        assert_eq!(split_prefix("D/FromRGB_lod0/weight"), Some(("D", "FromRGB_lod0/weight")));
        assert_eq!(split_prefix("other/x"), None);
    }
}
