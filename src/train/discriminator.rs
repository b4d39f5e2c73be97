//! A ProGAN-style discriminator (`D_paper` at full resolution, no progressive growing) with the AC-GAN head:
//! `FromRGB_lod0` (1x1), per resolution R..8 a 3x3 `Conv0` and a 3x3 `Conv1_down` followed by 2x2 average pooling,
//! then at 4x4 the minibatch standard deviation (group 4), a 3x3 `Conv`, `Dense0` and `Dense1` with 1 + L outputs:
//! the real/fake logit and one logit per label.
//!
//! Like the generator it uses the equalised learning rate: parameters are stored N(0, 1) and multiplied by
//! `gain / sqrt(fan_in)` in the forward pass. Leaky ReLU 0.2, no normalisation. Weights are in candle layout
//! (`[out, in, kh, kw]` convs, `[in, out]` dense) since only our own checkpoints hold them.

use std::collections::BTreeMap;

use candle_core::{D, Device, Tensor, Var};

use crate::models::progan::{ProganArchitecture, TensorRole, TensorSpec};
use crate::train::conv::conv2d_train;
use crate::train::error::TrainError;
use crate::train::fused_activation::bias_leaky_relu;
use crate::train::growth::{FROM_RGB_LOD1, Fade, discriminator_fade_specs, lerp};
use crate::train::rng::TrainRng;

/// Negative slope of the leaky ReLU, as in the original.
const LEAKY_RELU_ALPHA: f64 = 0.2;
/// Epsilon inside the minibatch standard deviation's square root.
const MBSTD_EPSILON: f64 = 1e-8;
/// The original's minibatch-stddev group size.
pub const MBSTD_GROUP: usize = 4;

/// Whether a forward pass should produce gradients for the discriminator's own parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightUse {
    /// Parameters are tracked (the discriminator's own step).
    Trainable,
    /// Parameters are detached: gradients reach only the input (the generator's step).
    Frozen,
}

/// The discriminator's two heads.
pub struct DiscriminatorOutput {
    /// Real/fake logits `[N]`.
    pub adversarial: Tensor,
    /// Label logits `[N, L]`.
    pub label_logits: Tensor,
}

/// The tensors of a discriminator matching a generator architecture (same `nf`, same labels and channels).
pub fn discriminator_specs(architecture: &ProganArchitecture) -> Vec<TensorSpec> {
    let sqrt2 = std::f64::consts::SQRT_2;
    let nf = |stage: usize| architecture.nf(stage);
    let mut specs = Vec::new();
    let mut push = |name: String, shape: Vec<usize>, gain: f64, fan_in: usize| {
        let bias_len = if shape.len() == 4 { shape[0] } else { shape[1] };
        specs.push(TensorSpec { name: format!("{name}/weight"), shape, role: TensorRole::Weight { gain, fan_in } });
        specs.push(TensorSpec { name: format!("{name}/bias"), shape: vec![bias_len], role: TensorRole::Bias });
    };
    let top = architecture.resolution_log2();
    let channels = architecture.channels;
    push("FromRGB_lod0".to_owned(), vec![nf(top - 1), channels, 1, 1], sqrt2, channels);
    for res_log2 in (3..=top).rev() {
        let side = 1usize << res_log2;
        let (maps_in, maps_out) = (nf(res_log2 - 1), nf(res_log2 - 2));
        push(format!("{side}x{side}/Conv0"), vec![maps_in, maps_in, 3, 3], sqrt2, 9 * maps_in);
        push(format!("{side}x{side}/Conv1_down"), vec![maps_out, maps_in, 3, 3], sqrt2, 9 * maps_in);
    }
    let c4 = nf(1);
    push("4x4/Conv".to_owned(), vec![c4, c4 + 1, 3, 3], sqrt2, 9 * (c4 + 1));
    push("4x4/Dense0".to_owned(), vec![c4 * 16, nf(0)], sqrt2, c4 * 16);
    push("4x4/Dense1".to_owned(), vec![nf(0), 1 + architecture.label_size], 1.0, nf(0));
    specs
}

/// The trainable discriminator.
pub struct Discriminator {
    architecture: ProganArchitecture,
    specs: Vec<TensorSpec>,
    params: BTreeMap<String, Var>,
}

impl Discriminator {
    /// Fresh parameters: weights N(0, 1) (scaled at run time), biases zero.
    pub fn new(architecture: &ProganArchitecture, device: &Device, rng: &mut TrainRng) -> Result<Self, TrainError> {
        let specs = discriminator_specs(architecture);
        let mut params = BTreeMap::new();
        for spec in &specs {
            let count: usize = spec.shape.iter().product();
            let values: Vec<f32> = match spec.role {
                TensorRole::Weight { .. } => (0..count).map(|_| rng.normal() as f32).collect(),
                TensorRole::Bias => vec![0.0; count],
            };
            params.insert(spec.name.clone(), Var::from_tensor(&Tensor::from_vec(values, spec.shape.clone(), device)?)?);
        }
        Ok(Self { architecture: architecture.clone(), specs, params })
    }

    /// Parameters from a checkpoint, checked by name and shape.
    pub fn from_params(
        architecture: &ProganArchitecture,
        tensors: BTreeMap<String, Tensor>,
    ) -> Result<Self, TrainError> {
        Self::from_params_with(architecture, tensors, Fade::Off)
    }

    /// Parameters from a checkpoint; with [`Fade::On`] also the previous resolution's `FromRGB_lod1` (see
    /// [`crate::train::growth`]).
    pub fn from_params_with(
        architecture: &ProganArchitecture,
        mut tensors: BTreeMap<String, Tensor>,
        fade: Fade,
    ) -> Result<Self, TrainError> {
        let mut specs = discriminator_specs(architecture);
        if fade == Fade::On {
            specs.extend(discriminator_fade_specs(architecture));
        }
        let mut params = BTreeMap::new();
        for spec in &specs {
            let tensor = tensors.remove(&spec.name).ok_or_else(|| TrainError::MissingParameter {
                network: "discriminator".to_owned(),
                name: spec.name.clone(),
            })?;
            if tensor.dims() != spec.shape.as_slice() {
                return Err(TrainError::BadConfig {
                    argument: format!("discriminator tensor `{}`", spec.name),
                    reason: format!("shape {:?}, expected {:?}", tensor.dims(), spec.shape),
                });
            }
            params.insert(spec.name.clone(), Var::from_tensor(&tensor)?);
        }
        Ok(Self { architecture: architecture.clone(), specs, params })
    }

    /// The unscaled parameters by name.
    pub fn params(&self) -> &BTreeMap<String, Var> {
        &self.params
    }

    /// The scaled weight or bias `name` for a forward pass.
    fn weight(&self, name: &str, weight_use: WeightUse) -> Result<Tensor, TrainError> {
        let missing = || TrainError::MissingParameter { network: "discriminator".to_owned(), name: name.to_owned() };
        let var = self.params.get(name).ok_or_else(missing)?;
        let spec = self.specs.iter().find(|s| s.name == name).ok_or_else(missing)?;
        let tensor = match weight_use {
            WeightUse::Trainable => var.as_tensor().clone(),
            WeightUse::Frozen => var.as_tensor().detach(),
        };
        Ok(match spec.role {
            TensorRole::Weight { .. } => (tensor * f64::from(spec.wscale()))?,
            TensorRole::Bias => tensor,
        })
    }

    fn conv(&self, x: &Tensor, prefix: &str, padding: usize, weight_use: WeightUse) -> Result<Tensor, TrainError> {
        Ok(conv2d_train(x, &self.weight(&format!("{prefix}/weight"), weight_use)?, 1, padding)?)
    }

    fn bias_act(&self, x: &Tensor, prefix: &str, weight_use: WeightUse) -> Result<Tensor, TrainError> {
        let bias = self.weight(&format!("{prefix}/bias"), weight_use)?;
        Ok(bias_leaky_relu(x, &bias, LEAKY_RELU_ALPHA)?)
    }

    /// Scores images `[N, C, R, R]` (N at least 2 and, from 4 up, a multiple of 4 for the stddev groups).
    pub fn forward(&self, images: &Tensor, weight_use: WeightUse) -> Result<DiscriminatorOutput, TrainError> {
        self.forward_faded(images, 1.0, weight_use)
    }

    /// Scores images during the fade-in of the top resolution: `alpha * block_R(FromRGB_lod0(img)) + (1 - alpha) *
    /// FromRGB_lod1(avgpool_2x2(img))` feeds the lower blocks (the original's `Grow_lod0` lerp). At `alpha >= 1`
    /// this is [`Self::forward`] and `FromRGB_lod1` is not read.
    pub fn forward_faded(
        &self,
        images: &Tensor,
        alpha: f64,
        weight_use: WeightUse,
    ) -> Result<DiscriminatorOutput, TrainError> {
        let architecture = &self.architecture;
        let side = architecture.resolution_px;
        let (batch, channels, height, width) = images.dims4()?;
        if channels != architecture.channels || height != side || width != side {
            return Err(TrainError::BadConfig {
                argument: "discriminator input".to_owned(),
                reason: format!("shape {:?}, expected [N, {}, {side}, {side}]", images.dims(), architecture.channels),
            });
        }
        let top = architecture.resolution_log2();
        let x = self.input_layer(images, "FromRGB_lod0", weight_use)?;
        let mut x = self.block(&x, top, weight_use)?;
        if alpha < 1.0 {
            let old = self.input_layer(&images.avg_pool2d(2)?, FROM_RGB_LOD1, weight_use)?;
            x = lerp(&old, &x, alpha)?;
        }
        for res_log2 in (3..top).rev() {
            x = self.block(&x, res_log2, weight_use)?;
        }
        let x = minibatch_stddev(&x, MBSTD_GROUP)?;
        let x = self.bias_act(&self.conv(&x, "4x4/Conv", 1, weight_use)?, "4x4/Conv", weight_use)?;
        let x = x.flatten_from(1)?;
        let x = self.bias_act(&x.matmul(&self.weight("4x4/Dense0/weight", weight_use)?)?, "4x4/Dense0", weight_use)?;
        let out = x
            .matmul(&self.weight("4x4/Dense1/weight", weight_use)?)?
            .broadcast_add(&self.weight("4x4/Dense1/bias", weight_use)?.unsqueeze(0)?)?;
        let labels = architecture.label_size;
        Ok(DiscriminatorOutput {
            adversarial: out.narrow(1, 0, 1)?.reshape(batch)?,
            label_logits: out.narrow(1, 1, labels)?,
        })
    }

    /// The 1x1 input layer `layer` (`FromRGB_lod0` or `FromRGB_lod1`) with bias and leaky ReLU.
    fn input_layer(&self, images: &Tensor, layer: &str, weight_use: WeightUse) -> Result<Tensor, TrainError> {
        self.bias_act(&self.conv(images, layer, 0, weight_use)?, layer, weight_use)
    }

    /// The block of resolution `2^res_log2`: `Conv0`, then `Conv1_down` with 2x2 average pooling.
    fn block(&self, x: &Tensor, res_log2: usize, weight_use: WeightUse) -> Result<Tensor, TrainError> {
        let side = 1usize << res_log2;
        let conv0 = format!("{side}x{side}/Conv0");
        let x = self.bias_act(&self.conv(x, &conv0, 1, weight_use)?, &conv0, weight_use)?;
        let conv1 = format!("{side}x{side}/Conv1_down");
        let down = self.conv(&x, &conv1, 1, weight_use)?.avg_pool2d(2)?;
        self.bias_act(&down, &conv1, weight_use)
    }
}

/// The original's `minibatch_stddev_layer`: samples are split into groups of `min(group, N)` (sample `n` belongs to
/// slot `n mod (N / G)`, as TF's reshape to `[G, -1, ...]` does), the standard deviation of each feature over the
/// group is averaged over features and pixels, and appended as one more feature map.
pub fn minibatch_stddev(x: &Tensor, group: usize) -> Result<Tensor, TrainError> {
    let (batch, channels, height, width) = x.dims4()?;
    let group = group.min(batch);
    if group == 0 || !batch.is_multiple_of(group) {
        return Err(TrainError::BadConfig {
            argument: "batch".to_owned(),
            reason: format!("{batch} images cannot be split into minibatch-stddev groups of {group}"),
        });
    }
    let slots = batch / group;
    let y = x.reshape((group, slots, channels, height, width))?;
    let centred = y.broadcast_sub(&y.mean_keepdim(0)?)?;
    let std = (centred.sqr()?.mean(0)? + MBSTD_EPSILON)?.sqrt()?;
    // [slots, C, H, W] -> [slots]
    let per_slot = std.flatten_from(1)?.mean(D::Minus1)?;
    let maps = per_slot.reshape((1, slots, 1, 1, 1))?.broadcast_as((group, slots, 1, height, width))?;
    Ok(Tensor::cat(&[x, &maps.reshape((batch, 1, height, width))?], 1)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn architecture(resolution_px: usize, fmap_max: usize) -> ProganArchitecture {
        ProganArchitecture {
            resolution_px,
            latent_size: 8,
            label_size: 3,
            channels: 1,
            fmap_base: 8192.0,
            fmap_decay: 1.0,
            fmap_max,
        }
    }

    #[test]
    fn minibatch_stddev_matches_a_direct_computation() {
        let values: Vec<f32> = (0..8 * 2 * 2 * 2).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
        let x = Tensor::from_vec(values.clone(), (8, 2, 2, 2), &Device::Cpu).unwrap();
        let out = minibatch_stddev(&x, 4).unwrap();
        assert_eq!(out.dims(), &[8, 3, 2, 2]);
        let stat = out.narrow(1, 2, 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Slot m holds samples m, m + 2, m + 4, m + 6.
        for slot in 0..2 {
            let mut total = 0.0f64;
            for feature in 0..8 {
                let members: Vec<f64> = (0..4).map(|g| f64::from(values[(g * 2 + slot) * 8 + feature])).collect();
                let mean = members.iter().sum::<f64>() / 4.0;
                let var = members.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
                total += (var + 1e-8).sqrt();
            }
            let expected = total / 8.0;
            for g in 0..4 {
                let sample = g * 2 + slot;
                for pixel in 0..4 {
                    assert!((f64::from(stat[sample * 4 + pixel]) - expected).abs() < 1e-5);
                }
            }
        }
        assert!(
            minibatch_stddev(&Tensor::zeros((6, 1, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap(), 4).is_err()
        );
    }

    #[test]
    fn forward_gives_one_logit_plus_labels() {
        let arch = architecture(16, 8);
        let d = Discriminator::new(&arch, &Device::Cpu, &mut TrainRng::new(1)).unwrap();
        let x = Tensor::randn(0f32, 1.0, (4, 1, 16, 16), &Device::Cpu).unwrap();
        let out = d.forward(&x, WeightUse::Trainable).unwrap();
        assert_eq!(out.adversarial.dims(), &[4]);
        assert_eq!(out.label_logits.dims(), &[4, 3]);
        let wrong = Tensor::zeros((4, 1, 8, 8), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(d.forward(&wrong, WeightUse::Frozen).is_err());
    }
}
