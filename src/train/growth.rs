//! Progressive growing as in ProGAN (`G_paper` / `D_paper` with `structure='linear'`): a run at R px starts from a
//! checkpoint at R/2 px and fades the new resolution in.
//!
//! - G: the old `ToRGB_lod0` becomes `ToRGB_lod1`; the new block `{R}x{R}/Conv0_up`, `{R}x{R}/Conv1` and the new
//!   `ToRGB_lod0` start as a fresh run would. Output `alpha * ToRGB_lod0(x_R) + (1 - alpha) *
//!   upsample_2x(ToRGB_lod1(x_{R/2}))` (the original's `Grow_lod0` lerp).
//! - D: the old `FromRGB_lod0` becomes `FromRGB_lod1`; `FromRGB_lod0` and the block `{R}x{R}/Conv0`,
//!   `{R}x{R}/Conv1_down` are new. Input path `alpha * block_R(FromRGB_lod0(img)) + (1 - alpha) *
//!   FromRGB_lod1(avgpool_2x2(img))`, then the lower blocks.
//! - Reals are faded too (the original's `process_reals` / `FadeLOD`: `lerp(x, upsample(downsample(x)), lod -
//!   floor(lod))`, i.e. `alpha * x + (1 - alpha) * upsample(downsample(x))`).
//! - `alpha` rises linearly from 0 at the first step after the grow to 1 after `steps` steps ([`FadeSchedule`]).
//! - Both optimisers restart (zero moments, step 0) when the fade starts and when it ends, as the original's
//!   `reset_opt_for_new_lod=True` does whenever `floor(lod)` or `ceil(lod)` changes.

use std::collections::BTreeMap;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::models::progan::{ProganArchitecture, TensorRole, TensorSpec};
use crate::train::error::TrainError;

/// The generator's output layer of the previous resolution, used only while fading.
pub const TO_RGB_LOD1: &str = "ToRGB_lod1";
/// The discriminator's input layer of the previous resolution, used only while fading.
pub const FROM_RGB_LOD1: &str = "FromRGB_lod1";

/// Whether a network carries the previous resolution's lod-1 layer (`ToRGB_lod1` / `FromRGB_lod1`) for a fade-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fade {
    Off,
    On,
}

/// When the fade-in of the newest resolution runs, in training steps (stored in checkpoints).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FadeSchedule {
    /// The step count at the grow: the first faded step sees `alpha = 0`.
    pub start_step: u64,
    /// Steps over which `alpha` rises linearly to 1.
    pub steps: u64,
}

impl FadeSchedule {
    /// `alpha` used by the step that starts with `step` steps completed: `(step - start) / steps`, clamped to [0, 1].
    pub fn alpha_at(&self, step: u64) -> f64 {
        if self.steps == 0 {
            return 1.0;
        }
        (step.saturating_sub(self.start_step) as f64 / self.steps as f64).min(1.0)
    }

    /// The first step count with `alpha = 1`.
    pub fn end_step(&self) -> u64 {
        self.start_step.saturating_add(self.steps)
    }
}

/// The generator's `ToRGB_lod1` tensors at `architecture`'s resolution (the previous resolution's output layer).
pub fn generator_fade_specs(architecture: &ProganArchitecture) -> Vec<TensorSpec> {
    let maps_in = architecture.nf(architecture.resolution_log2().saturating_sub(2));
    let channels = architecture.channels;
    vec![
        TensorSpec {
            name: format!("{TO_RGB_LOD1}/weight"),
            shape: vec![1, 1, maps_in, channels],
            role: TensorRole::Weight { gain: 1.0, fan_in: maps_in },
        },
        TensorSpec { name: format!("{TO_RGB_LOD1}/bias"), shape: vec![channels], role: TensorRole::Bias },
    ]
}

/// The discriminator's `FromRGB_lod1` tensors at `architecture`'s resolution (the previous resolution's input).
pub fn discriminator_fade_specs(architecture: &ProganArchitecture) -> Vec<TensorSpec> {
    let maps_out = architecture.nf(architecture.resolution_log2().saturating_sub(2));
    let channels = architecture.channels;
    vec![
        TensorSpec {
            name: format!("{FROM_RGB_LOD1}/weight"),
            shape: vec![maps_out, channels, 1, 1],
            role: TensorRole::Weight { gain: std::f64::consts::SQRT_2, fan_in: channels },
        },
        TensorSpec { name: format!("{FROM_RGB_LOD1}/bias"), shape: vec![maps_out], role: TensorRole::Bias },
    ]
}

/// The name a tensor of the R/2 network takes in the grown one: the output/input layer moves from lod 0 to lod 1,
/// everything else keeps its name.
pub fn grown_name(name: &str) -> String {
    for (old, new) in [("ToRGB_lod0/", "ToRGB_lod1/"), ("FromRGB_lod0/", "FromRGB_lod1/")] {
        if let Some(rest) = name.strip_prefix(old) {
            return format!("{new}{rest}");
        }
    }
    name.to_owned()
}

/// `fresh` (the grown network's tensors as a fresh run initialises them, plus the lod-1 names) with every tensor of
/// `old` (the R/2 network) copied in under its [`grown_name`]; shapes must agree and every old tensor must land.
pub fn carry_over(
    network: &str,
    old: &BTreeMap<String, Tensor>,
    mut fresh: BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>, TrainError> {
    for (name, tensor) in old {
        let target = grown_name(name);
        let slot = fresh.get_mut(&target).ok_or_else(|| TrainError::BadConfig {
            argument: "grow-from".to_owned(),
            reason: format!("the {network} tensor `{name}` has no place (`{target}`) in the grown network"),
        })?;
        if slot.dims() != tensor.dims() {
            return Err(TrainError::BadConfig {
                argument: "grow-from".to_owned(),
                reason: format!(
                    "the {network} tensor `{name}` has shape {:?}, but `{target}` in the grown network has {:?}",
                    tensor.dims(),
                    slot.dims()
                ),
            });
        }
        *slot = tensor.copy()?;
    }
    Ok(fresh)
}

/// `[N, C, H, W]` -> `[N, C, 2H, 2W]`, each pixel repeated 2x2 (the original's `upscale2d`).
pub fn upsample_nearest_2x(x: &Tensor) -> candle_core::Result<Tensor> {
    let (batch, channels, height, width) = x.dims4()?;
    x.reshape((batch, channels, height, 1, width, 1))?.broadcast_as((batch, channels, height, 2, width, 2))?.reshape((
        batch,
        channels,
        2 * height,
        2 * width,
    ))
}

/// `alpha * new + (1 - alpha) * old`.
pub fn lerp(old: &Tensor, new: &Tensor, alpha: f64) -> candle_core::Result<Tensor> {
    (new * alpha)? + (old * (1.0 - alpha))?
}

/// Real images as D sees them during the fade: `alpha * x + (1 - alpha) * upsample(avgpool_2x2(x))`.
pub fn fade_real_images(images: &Tensor, alpha: f64) -> candle_core::Result<Tensor> {
    if alpha >= 1.0 {
        return Ok(images.clone());
    }
    lerp(&upsample_nearest_2x(&images.avg_pool2d(2)?)?, images, alpha)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn alpha_rises_linearly_from_the_grow() {
        let fade = FadeSchedule { start_step: 100, steps: 4 };
        let alphas: Vec<f64> = (99..106).map(|step| fade.alpha_at(step)).collect();
        assert_eq!(alphas, vec![0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]);
        assert_eq!(fade.end_step(), 104);
        assert_eq!(FadeSchedule { start_step: 3, steps: 0 }.alpha_at(3), 1.0);
    }

    #[test]
    fn names_move_from_lod0_to_lod1() {
        assert_eq!(grown_name("ToRGB_lod0/weight"), "ToRGB_lod1/weight");
        assert_eq!(grown_name("FromRGB_lod0/bias"), "FromRGB_lod1/bias");
        assert_eq!(grown_name("64x64/Conv1/weight"), "64x64/Conv1/weight");
    }

    #[test]
    fn upsampling_repeats_pixels_and_real_fade_blends_the_box_average() {
        let x = Tensor::new(&[[[[1f32, 2.0], [3.0, 4.0]]]], &Device::Cpu).unwrap();
        let up = upsample_nearest_2x(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(up, vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0]);
        let faded = fade_real_images(&x, 0.25).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let expected: Vec<f32> = [1f32, 2.0, 3.0, 4.0].iter().map(|v| 0.25 * v + 0.75 * 2.5).collect();
        for (got, want) in faded.iter().zip(&expected) {
            assert!((got - want).abs() < 1e-6, "{faded:?} vs {expected:?}");
        }
        let same = fade_real_images(&x, 1.0).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(same, vec![1.0, 2.0, 3.0, 4.0]);
    }
}
