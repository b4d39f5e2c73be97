//! The DenseNet classifier as a differentiable training forward pass, mirroring `models::densenet` layer for layer
//! under the same torchvision tensor names, so trained tensors load into [`DenseNet121`] unchanged.
//!
//! BatchNorm runs in train mode (batch statistics, biased variance for normalising) and updates the running
//! statistics as PyTorch does: `running = (1 - momentum) * running + momentum * batch`, with the unbiased variance.
//! Eval mode (running statistics) exists for the parity test; evaluation itself goes through the inference network
//! built by [`DenseNetParameters::inference_network`].
//!
//! Every convolution goes through [`conv2d_train`]. The stem's 3x3 stride-2 max pooling is built from slicing,
//! reshapes and `maximum` ([`max_pool_3x3_stride2_pad1`]) because candle has no backward pass for it.

use std::collections::{BTreeMap, HashMap};

use candle_core::{D, DType, Device, Tensor, Var};

use crate::models::card::ModelCard;
use crate::models::densenet::{DenseNet121, DenseNetConfig};
use crate::models::weights::Weights;
use crate::train::conv::conv2d_train;
use crate::train::error::TrainError;
use crate::train::fused_batch_norm::{Statistics, batch_norm_relu};

/// BatchNorm epsilon of torchvision's DenseNet.
const BATCH_NORM_EPS: f64 = 1e-5;

/// How BatchNorm layers normalise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BatchNormMode {
    /// Batch statistics; running statistics move by `momentum` (PyTorch's default 0.1).
    Train { momentum: f64 },
    /// Running statistics, nothing updated.
    Eval,
}

/// The trainable tensors (`Var`s) and the BatchNorm running statistics of one DenseNet, by torchvision name.
pub struct DenseNetParameters {
    pub config: DenseNetConfig,
    /// Convolution, BatchNorm affine and classifier tensors.
    pub trainable: BTreeMap<String, Var>,
    /// `*.running_mean` and `*.running_var`.
    pub running: BTreeMap<String, Tensor>,
}

/// True for the BatchNorm running-statistics tensors, which are state rather than parameters.
pub fn is_running_statistic(name: &str) -> bool {
    name.ends_with(".running_mean") || name.ends_with(".running_var")
}

impl DenseNetParameters {
    /// Splits `tensors` (every name of `config.tensor_shapes()`, shapes checked) into parameters and statistics.
    pub fn from_tensors(config: DenseNetConfig, tensors: &HashMap<String, Tensor>) -> Result<Self, TrainError> {
        let mut trainable = BTreeMap::new();
        let mut running = BTreeMap::new();
        for (name, shape) in config.tensor_shapes() {
            let tensor = tensors
                .get(&name)
                .ok_or_else(|| TrainError::MissingParameter { network: "classifier".to_owned(), name: name.clone() })?;
            if tensor.dims() != shape.as_slice() {
                return Err(TrainError::BadConfig {
                    argument: name,
                    reason: format!("shape {:?}, the architecture needs {shape:?}", tensor.dims()),
                });
            }
            let tensor = tensor.to_dtype(DType::F32)?;
            if is_running_statistic(&name) {
                running.insert(name, tensor);
            } else {
                trainable.insert(name, Var::from_tensor(&tensor)?);
            }
        }
        Ok(Self { config, trainable, running })
    }

    /// torchvision's initialisation for `card`'s architecture, deterministic in `seed`
    /// (see [`DenseNet121::random_weights`]).
    pub fn initial(card: &ModelCard, device: &Device, seed: u64) -> Result<Self, TrainError> {
        let config = DenseNetConfig::from_card(card)?;
        let weights = DenseNet121::random_weights(card, device, seed)?;
        Self::from_tensors(config, &weights.tensors)
    }

    /// Every tensor (detached) under its torchvision name, as a weights file stores them.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        let mut tensors: HashMap<String, Tensor> =
            self.trainable.iter().map(|(name, var)| (name.clone(), var.as_tensor().detach())).collect();
        tensors.extend(self.running.iter().map(|(name, tensor)| (name.clone(), tensor.clone())));
        tensors
    }

    /// The inference network on the current tensors (eval-mode BatchNorm, fused CPU kernels, no gradients).
    pub fn inference_network(&self, card: &ModelCard) -> Result<DenseNet121, TrainError> {
        Ok(DenseNet121::from_weights(Weights { card: card.clone(), tensors: self.tensors() })?)
    }

    fn param(&self, name: &str) -> Result<Tensor, TrainError> {
        self.trainable
            .get(name)
            .map(|var| var.as_tensor().clone())
            .ok_or_else(|| TrainError::MissingParameter { network: "classifier".to_owned(), name: name.to_owned() })
    }

    fn statistic(&self, name: &str) -> Result<Tensor, TrainError> {
        self.running
            .get(name)
            .cloned()
            .ok_or_else(|| TrainError::MissingParameter { network: "classifier".to_owned(), name: name.to_owned() })
    }

    /// BatchNorm `prefix` on `x` `[N, C, H, W]`, then ReLU; in train mode the new running statistics go into
    /// `updates`.
    fn batch_norm_relu(
        &self,
        prefix: &str,
        x: &Tensor,
        mode: BatchNormMode,
        updates: &mut BTreeMap<String, Tensor>,
    ) -> Result<Tensor, TrainError> {
        let gamma = self.param(&format!("{prefix}.weight"))?;
        let beta = self.param(&format!("{prefix}.bias"))?;
        let (mean_name, var_name) = (format!("{prefix}.running_mean"), format!("{prefix}.running_var"));
        match mode {
            BatchNormMode::Eval => {
                let (mean, variance) = (self.statistic(&mean_name)?, self.statistic(&var_name)?);
                let statistics = Statistics::Fixed { mean: &mean, variance: &variance };
                Ok(batch_norm_relu(x, &gamma, &beta, statistics, BATCH_NORM_EPS)?.0)
            }
            BatchNormMode::Train { momentum } => {
                let count = x.elem_count() / x.dim(1)?.max(1);
                // PyTorch keeps the unbiased variance in the running statistics (and needs two values per channel).
                if count < 2 {
                    return Err(TrainError::BadConfig {
                        argument: "batch".to_owned(),
                        reason: format!("BatchNorm `{prefix}` sees {count} value per channel; it needs at least 2"),
                    });
                }
                let (y, batch) = batch_norm_relu(x, &gamma, &beta, Statistics::Batch, BATCH_NORM_EPS)?;
                let unbiased = (batch.variance * (count as f64 / (count - 1) as f64))?;
                let old_mean = self.statistic(&mean_name)?;
                let old_var = self.statistic(&var_name)?;
                let new_mean = ((old_mean * (1.0 - momentum))? + (batch.mean * momentum)?)?;
                let new_var = ((old_var * (1.0 - momentum))? + (unbiased * momentum)?)?;
                updates.insert(mean_name, new_mean);
                updates.insert(var_name, new_var);
                Ok(y)
            }
        }
    }

    /// Logits `[N, L]` (before the sigmoid) of preprocessed input `[N, 3, R, R]`, with the running statistics the
    /// batch gives in train mode (empty in eval mode); apply them with [`Self::set_running`] after the update.
    pub fn forward(&self, x: &Tensor, mode: BatchNormMode) -> Result<(Tensor, BTreeMap<String, Tensor>), TrainError> {
        let config = &self.config;
        let mut updates = BTreeMap::new();
        let x = conv2d_train(x, &self.param("features.conv0.weight")?, 2, 3)?;
        let x = self.batch_norm_relu("features.norm0", &x, mode, &mut updates)?;
        let mut x = max_pool_3x3_stride2_pad1(&x)?;
        for (block, &layers) in config.block_config.iter().enumerate() {
            for layer in 0..layers {
                let prefix = format!("features.denseblock{}.denselayer{}", block + 1, layer + 1);
                let y = self.batch_norm_relu(&format!("{prefix}.norm1"), &x, mode, &mut updates)?;
                let y = conv2d_train(&y, &self.param(&format!("{prefix}.conv1.weight"))?, 1, 0)?;
                let y = self.batch_norm_relu(&format!("{prefix}.norm2"), &y, mode, &mut updates)?;
                let y = conv2d_train(&y, &self.param(&format!("{prefix}.conv2.weight"))?, 1, 1)?;
                x = Tensor::cat(&[&x, &y], 1)?;
            }
            if block + 1 < config.block_config.len() {
                let prefix = format!("features.transition{}", block + 1);
                // Pooling before the 1x1 convolution gives the same values (both linear), as the inference code does.
                let y = self.batch_norm_relu(&format!("{prefix}.norm"), &x, mode, &mut updates)?.avg_pool2d(2)?;
                x = conv2d_train(&y, &self.param(&format!("{prefix}.conv.weight"))?, 1, 0)?;
            }
        }
        let x = self.batch_norm_relu("features.norm5", &x, mode, &mut updates)?;
        let pooled = x.flatten_from(2)?.mean(D::Minus1)?;
        let weight = self.param("classifier.0.weight")?;
        let bias = self.param("classifier.0.bias")?;
        let logits = pooled.matmul(&weight.t()?)?.broadcast_add(&bias)?;
        Ok((logits, updates))
    }

    /// Replaces running statistics with `updates` (from a train-mode forward pass).
    pub fn set_running(&mut self, updates: BTreeMap<String, Tensor>) {
        for (name, tensor) in updates {
            self.running.insert(name, tensor);
        }
    }
}

/// `max_pool2d(kernel 3, stride 2, padding 1)` as torch computes it (implicit -inf padding, floor output size),
/// made of ops candle can differentiate: the map is padded with -inf, then the maximum is taken over the three
/// stride-2 row taps and then over the three stride-2 column taps (separable, since max over a square is the max of
/// row maxima). Ties split the gradient between the tied inputs (candle's `maximum` backward).
pub fn max_pool_3x3_stride2_pad1(x: &Tensor) -> candle_core::Result<Tensor> {
    let (_, _, height, width) = x.dims4()?;
    let rows = max_over_taps(x, 2, height)?;
    max_over_taps(&rows, 3, width)
}

/// The max over taps 0, 1, 2 at stride 2 along `dim` (of size `size`), after padding it with -inf by 1 in front.
fn max_over_taps(x: &Tensor, dim: usize, size: usize) -> candle_core::Result<Tensor> {
    // torch: out = floor((size + 2 - 3) / 2) + 1; reading taps ky + 2 * i for i < out needs 2 * out + 1 entries.
    let out = (size + 2 - 3) / 2 + 1;
    let padded_len = 2 * out + 2;
    let behind = padded_len - size - 1;
    let pad = |count: usize| -> candle_core::Result<Tensor> {
        let mut shape = x.dims().to_vec();
        if let Some(side) = shape.get_mut(dim) {
            *side = count;
        }
        Tensor::full(f32::NEG_INFINITY, shape, x.device())?.to_dtype(x.dtype())
    };
    let padded = Tensor::cat(&[&pad(1)?, x, &pad(behind)?], dim)?;
    let mut result: Option<Tensor> = None;
    for tap in 0..3 {
        // Entries tap, tap + 2, ...: take 2 * out from `tap`, fold into pairs and keep the first of each pair.
        let window = padded.narrow(dim, tap, 2 * out)?;
        let mut pairs_shape = window.dims().to_vec();
        pairs_shape.splice(dim..=dim, [out, 2]);
        let strided = window.reshape(pairs_shape)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)?;
        result = Some(match result {
            None => strided,
            Some(previous) => previous.maximum(&strided)?,
        });
    }
    result.ok_or_else(|| candle_core::Error::Msg("max pooling over no taps".to_owned()))
}

/// Mean binary cross-entropy of `logits` against 0/1 `targets`, counting only entries where `mask` is 1 (labels
/// that were annotated); computed from logits in the stable form `max(z, 0) - z y + log(1 + exp(-|z|))`.
/// Equals `nn.BCELoss` on `sigmoid(z)` where every label is annotated.
pub fn masked_bce_with_logits(logits: &Tensor, targets: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let per_entry = ((logits.relu()? - (logits * targets)?)? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    let count = mask.sum_all()?.to_scalar::<f32>()?.max(1.0);
    (per_entry * mask)?.sum_all()? / f64::from(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap()
    }

    /// torch semantics via candle's own max pooling of a -inf padded map (forward only), odd and even sides.
    #[test]
    fn max_pool_matches_candle_on_a_minus_infinity_padded_map() {
        for (h, w) in [(6usize, 6usize), (7, 5), (1, 2), (9, 8)] {
            let x = crate::test_random::randn(0f64, 1.0, (2, 3, h, w));
            let ours = max_pool_3x3_stride2_pad1(&x).unwrap();
            let neg = |rows: usize, cols: usize| Tensor::full(f64::NEG_INFINITY, (2, 3, rows, cols), &Device::Cpu);
            let padded = Tensor::cat(&[&neg(1, w).unwrap(), &x, &neg(1, w).unwrap()], 2).unwrap();
            let padded = Tensor::cat(&[&neg(h + 2, 1).unwrap(), &padded, &neg(h + 2, 1).unwrap()], 3).unwrap();
            let theirs = padded.max_pool2d_with_stride(3, 2).unwrap();
            assert_eq!(ours.dims(), theirs.dims(), "{h}x{w}");
            assert_eq!(max_diff(&ours, &theirs), 0.0);
        }
    }

    /// A hand-checked 4x4 example: each output is the max of its clipped 3x3 window.
    #[test]
    fn max_pool_values_by_hand() {
        let values: Vec<f32> = vec![1., -2., 3., 0., 5., 6., -7., 8., -9., 10., 11., -12., 13., 14., -15., 16.];
        let x = Tensor::from_vec(values, (1, 1, 4, 4), &Device::Cpu).unwrap();
        let out = max_pool_3x3_stride2_pad1(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // windows: rows {0,1} x cols {0,1}; rows {0,1} x cols {1,2,3}; rows {1,2,3} x cols {0,1}; rows/cols {1,2,3}
        assert_eq!(out, vec![6.0, 8.0, 14.0, 16.0]);
    }

    #[test]
    fn max_pool_gradient_matches_finite_differences() {
        let x0 = crate::test_random::randn(0f64, 1.0, (1, 2, 5, 6));
        let probe = crate::test_random::randn(0f64, 1.0, (1, 2, 3, 3));
        let var = Var::from_tensor(&x0).unwrap();
        let objective = |x: &Tensor| (max_pool_3x3_stride2_pad1(x).unwrap() * &probe).unwrap().sum_all().unwrap();
        let grads = objective(var.as_tensor()).backward().unwrap();
        let analytic = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let base = x0.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let eps = 1e-6;
        for (i, a) in analytic.iter().enumerate() {
            let shifted = |delta: f64| {
                let mut v = base.clone();
                v[i] += delta;
                let t = Tensor::from_vec(v, (1, 2, 5, 6), &Device::Cpu).unwrap();
                objective(&t).to_scalar::<f64>().unwrap()
            };
            let numeric = (shifted(eps) - shifted(-eps)) / (2.0 * eps);
            assert!((numeric - a).abs() < 1e-6, "entry {i}: numeric {numeric} analytic {a}");
        }
    }

    #[test]
    fn masked_bce_equals_the_definition() {
        let logits = Tensor::new(&[[2.0f32, -1.0, 0.5], [-3.0, 0.0, 1.0]], &Device::Cpu).unwrap();
        let targets = Tensor::new(&[[1.0f32, 0.0, 1.0], [0.0, 1.0, 0.0]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1.0f32, 1.0, 0.0], [1.0, 1.0, 1.0]], &Device::Cpu).unwrap();
        let got = masked_bce_with_logits(&logits, &targets, &mask).unwrap().to_scalar::<f32>().unwrap();
        let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
        let terms = [(2.0, 1.0), (-1.0, 0.0), (-3.0, 0.0), (0.0, 1.0), (1.0, 0.0)];
        let expected = terms
            .iter()
            .map(|&(z, y): &(f64, f64)| -(y * sigmoid(z).ln() + (1.0 - y) * (1.0 - sigmoid(z)).ln()))
            .sum::<f64>()
            / 5.0;
        assert!((f64::from(got) - expected).abs() < 1e-6, "{got} vs {expected}");
    }
}
