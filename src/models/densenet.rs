//! DenseNet-121 classifier exactly as torchvision computes it in eval mode, with the CheXNet head of
//! reproduce-chexnet (`classifier = Sequential(Linear(1024, L), Sigmoid())`).
//!
//! Tensor names are torchvision's state_dict keys (`features.conv0.weight`,
//! `features.denseblock1.denselayer1.norm1.running_mean`, `features.transition1.conv.weight`, `features.norm5.*`,
//! `classifier.0.weight`). Older torchvision (0.2) names (`norm.1`, `conv.1`) and DataParallel `module.` prefixes are
//! mapped by [`canonical_key`] when weights are loaded or converted.
//!
//! The block layout, growth rate, bottleneck width, stem width and label count come from the model card
//! (`card.hyper`, see [`DenseNetConfig`]), so narrower models of our own run through the same code.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{D, DType, Device, Tensor};

use crate::models::card::{InputNormalization, ModelCard, ModelKind, Provenance};
use crate::models::dense_block_buffer::DenseBlockBuffer;
use crate::models::error::ModelError;
use crate::models::fast_conv::{self, Activation, Epilogue, InputAffineRelu};
use crate::models::fused_pool;
use crate::models::op_profile;
use crate::models::upload_cache::upload_cache_guard;
use crate::models::weights::Weights;

/// BatchNorm epsilon of torchvision's DenseNet.
const BATCH_NORM_EPS: f64 = 1e-5;
/// ImageNet channel means the original classifier was trained with.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations the original classifier was trained with.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Input side of the original classifier, in pixels.
pub const INPUT_SIZE_PX: usize = 224;
/// Smallest input side that survives the five halvings to a 1x1 feature map.
const MIN_INPUT_SIZE_PX: usize = 32;

/// Architecture hyper-parameters, read from and written to `card.hyper`.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseNetConfig {
    /// Channels each dense layer adds (`growth_rate`).
    pub growth_rate: usize,
    /// Bottleneck width as a multiple of the growth rate (`bn_size`).
    pub bn_size: usize,
    /// Output channels of the stem convolution (`num_init_features`).
    pub num_init_features: usize,
    /// Dense layers per block (`dense_block_{i}_layers`, `num_dense_blocks` of them).
    pub block_config: Vec<usize>,
    /// Number of classifier outputs (the card's label count).
    pub num_labels: usize,
}

impl DenseNetConfig {
    /// torchvision's `densenet121`: blocks 6/12/24/16, growth 32, bottleneck 4, stem 64.
    pub fn densenet121(num_labels: usize) -> Self {
        Self { growth_rate: 32, bn_size: 4, num_init_features: 64, block_config: vec![6, 12, 24, 16], num_labels }
    }

    /// Reads the hyper-parameters from a card; missing keys take the DenseNet-121 values.
    pub fn from_card(card: &ModelCard) -> Result<Self, ModelError> {
        let defaults = Self::densenet121(card.labels.len());
        if card.labels.is_empty() {
            return Err(bad_card("labels", "the card lists no labels".to_owned()));
        }
        let read = |key: &str, default: usize| -> Result<usize, ModelError> {
            match card.hyper.get(key) {
                None => Ok(default),
                Some(&value) => positive_integer(key, value),
            }
        };
        let num_blocks = read("num_dense_blocks", defaults.block_config.len())?;
        let mut block_config = Vec::with_capacity(num_blocks);
        for block in 0..num_blocks {
            let default = defaults.block_config.get(block).copied();
            let key = format!("dense_block_{}_layers", block + 1);
            let layers = match (card.hyper.get(&key), default) {
                (Some(&value), _) => positive_integer(&key, value)?,
                (None, Some(default)) => default,
                (None, None) => return Err(bad_card(&key, "missing".to_owned())),
            };
            block_config.push(layers);
        }
        Ok(Self {
            growth_rate: read("growth_rate", defaults.growth_rate)?,
            bn_size: read("bn_size", defaults.bn_size)?,
            num_init_features: read("num_init_features", defaults.num_init_features)?,
            block_config,
            num_labels: card.labels.len(),
        })
    }

    /// The hyper-parameters as card entries.
    pub fn to_hyper(&self) -> BTreeMap<String, f64> {
        let mut hyper = BTreeMap::new();
        hyper.insert("growth_rate".to_owned(), self.growth_rate as f64);
        hyper.insert("bn_size".to_owned(), self.bn_size as f64);
        hyper.insert("num_init_features".to_owned(), self.num_init_features as f64);
        hyper.insert("num_dense_blocks".to_owned(), self.block_config.len() as f64);
        for (block, layers) in self.block_config.iter().enumerate() {
            hyper.insert(format!("dense_block_{}_layers", block + 1), *layers as f64);
        }
        hyper
    }

    /// A card for this architecture with ImageNet normalisation and probabilities in [0, 1].
    pub fn card(&self, name: &str, labels: Vec<String>, provenance: Provenance) -> ModelCard {
        ModelCard {
            kind: ModelKind::Densenet121Classifier,
            name: name.to_owned(),
            labels,
            resolution: INPUT_SIZE_PX,
            channels: 3,
            hyper: self.to_hyper(),
            input_normalization: Some(InputNormalization { mean: IMAGENET_MEAN.to_vec(), std: IMAGENET_STD.to_vec() }),
            output_range: Some([0.0, 1.0]),
            untrained: false,
            provenance,
            metrics: BTreeMap::new(),
        }
    }

    /// Channels entering each dense block, entering `norm5` last.
    fn block_input_channels(&self) -> Vec<usize> {
        let mut channels = Vec::with_capacity(self.block_config.len() + 1);
        let mut current = self.num_init_features;
        for (block, layers) in self.block_config.iter().enumerate() {
            channels.push(current);
            current += layers * self.growth_rate;
            if block + 1 < self.block_config.len() {
                current /= 2;
            }
        }
        channels.push(current);
        channels
    }

    /// Channels of the feature map before pooling (1024 for DenseNet-121).
    pub fn num_features(&self) -> usize {
        self.block_input_channels().last().copied().unwrap_or(self.num_init_features)
    }

    /// Every tensor name with its shape, in torchvision's state_dict order.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut shapes = Vec::new();
        let batch_norm = |shapes: &mut Vec<(String, Vec<usize>)>, prefix: &str, channels: usize| {
            for suffix in ["weight", "bias", "running_mean", "running_var"] {
                shapes.push((format!("{prefix}.{suffix}"), vec![channels]));
            }
        };
        shapes.push(("features.conv0.weight".to_owned(), vec![self.num_init_features, 3, 7, 7]));
        batch_norm(&mut shapes, "features.norm0", self.num_init_features);
        let inputs = self.block_input_channels();
        let bottleneck = self.bn_size * self.growth_rate;
        for (block, (&layers, &block_in)) in self.block_config.iter().zip(&inputs).enumerate() {
            for layer in 0..layers {
                let prefix = format!("features.denseblock{}.denselayer{}", block + 1, layer + 1);
                let layer_in = block_in + layer * self.growth_rate;
                batch_norm(&mut shapes, &format!("{prefix}.norm1"), layer_in);
                shapes.push((format!("{prefix}.conv1.weight"), vec![bottleneck, layer_in, 1, 1]));
                batch_norm(&mut shapes, &format!("{prefix}.norm2"), bottleneck);
                shapes.push((format!("{prefix}.conv2.weight"), vec![self.growth_rate, bottleneck, 3, 3]));
            }
            if block + 1 < self.block_config.len() {
                let block_out = block_in + layers * self.growth_rate;
                let prefix = format!("features.transition{}", block + 1);
                batch_norm(&mut shapes, &format!("{prefix}.norm"), block_out);
                shapes.push((format!("{prefix}.conv.weight"), vec![block_out / 2, block_out, 1, 1]));
            }
        }
        batch_norm(&mut shapes, "features.norm5", self.num_features());
        shapes.push(("classifier.0.weight".to_owned(), vec![self.num_labels, self.num_features()]));
        shapes.push(("classifier.0.bias".to_owned(), vec![self.num_labels]));
        shapes
    }
}

fn bad_card(key: &str, reason: String) -> ModelError {
    ModelError::BadInput { argument: format!("model card hyper `{key}`"), reason }
}

fn positive_integer(key: &str, value: f64) -> Result<usize, ModelError> {
    if value.is_finite() && value >= 1.0 && value.fract() == 0.0 && value <= 1e6 {
        Ok(value as usize)
    } else {
        Err(bad_card(key, format!("{value} is not a positive integer")))
    }
}

/// Maps a checkpoint key to torchvision's current name: strips DataParallel `module.` prefixes and renames
/// torchvision 0.2's `norm.1`/`conv.1`/`norm.2`/`conv.2` to `norm1`/`conv1`/`norm2`/`conv2`.
pub fn canonical_key(key: &str) -> String {
    let mut name = key;
    while let Some(rest) = name.strip_prefix("module.") {
        name = rest;
    }
    let mut name = name.to_owned();
    for (old, new) in
        [(".norm.1.", ".norm1."), (".conv.1.", ".conv1."), (".norm.2.", ".norm2."), (".conv.2.", ".conv2.")]
    {
        name = name.replace(old, new);
    }
    name
}

/// Eval-mode BatchNorm folded into a per-channel scale and shift.
struct BatchNorm {
    scale: Tensor,
    shift: Tensor,
}

impl BatchNorm {
    fn load(weights: &Weights, prefix: &str, channels: usize) -> Result<Self, ModelError> {
        let get = |suffix: &str| weights.get(&format!("{prefix}.{suffix}"), &[channels]);
        let (weight, bias) = (get("weight")?, get("bias")?);
        let (mean, var) = (get("running_mean")?, get("running_var")?);
        // torch computes (x - mean) / sqrt(var + eps) * weight + bias; folding it differs only by rounding.
        let scale = weight.div(&(var + BATCH_NORM_EPS)?.sqrt()?)?;
        let shift = bias.sub(&mean.mul(&scale)?)?;
        Ok(Self { scale: scale.reshape((1, channels, 1, 1))?, shift: shift.reshape((1, channels, 1, 1))? })
    }

    /// `relu(BatchNorm(x))` on its own (one fused pass on CUDA).
    fn forward_relu(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        Ok(fast_conv::input_affine_relu(x, &self.as_prologue())?)
    }

    /// This BatchNorm + ReLU applied to a convolution's input while its patches are packed.
    fn as_prologue(&self) -> InputAffineRelu {
        InputAffineRelu { scale: self.scale.clone(), shift: self.shift.clone() }
    }

    /// This BatchNorm + ReLU fused into a convolution's output tiles.
    fn as_epilogue(&self) -> Epilogue {
        Epilogue {
            scale: Some(self.scale.clone()),
            shift: Some(self.shift.clone()),
            activation: Activation::Relu,
            pixel_norm_epsilon: None,
        }
    }
}

/// A bias-free convolution with its stride and padding.
struct Conv {
    weight: Tensor,
    stride: usize,
    padding: usize,
}

impl Conv {
    fn load(
        weights: &Weights,
        name: &str,
        shape: [usize; 4],
        stride: usize,
        padding: usize,
    ) -> Result<Self, ModelError> {
        Ok(Self { weight: weights.get(name, &shape)?, stride, padding })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        Ok(fast_conv::conv2d_nchw(x, &self.weight, None, self.stride, self.padding)?)
    }

    /// `epilogue(conv(prologue(x)))` in one pass over the output on the CPU.
    fn forward_fused(
        &self,
        x: &Tensor,
        prologue: Option<&InputAffineRelu>,
        epilogue: &Epilogue,
    ) -> Result<Tensor, ModelError> {
        Ok(fast_conv::conv2d_fused(x, &self.weight, self.stride, self.padding, prologue, epilogue)?)
    }
}

/// torchvision `_DenseLayer`: BN-ReLU-conv1x1 (bottleneck) then BN-ReLU-conv3x3 (growth channels).
struct DenseLayer {
    norm1: BatchNorm,
    conv1: Conv,
    norm2: BatchNorm,
    conv2: Conv,
}

impl DenseLayer {
    fn forward(&self, concatenated: &Tensor) -> Result<Tensor, ModelError> {
        // norm1 + ReLU packed with conv1's input, norm2 + ReLU fused into its output: conv2's input is ready.
        let x = self.conv1.forward_fused(concatenated, Some(&self.norm1.as_prologue()), &self.norm2.as_epilogue())?;
        self.conv2.forward(&x)
    }

    /// [`Self::forward`] on the CPU, reading the channels so far in place from the block's buffer.
    fn forward_in_buffer(&self, block: &DenseBlockBuffer) -> Result<Tensor, ModelError> {
        let (values, dims, image_stride) = block.filled();
        let x = fast_conv::conv2d_fused_prefix(
            values,
            dims,
            image_stride,
            &self.conv1.weight,
            self.conv1.stride,
            self.conv1.padding,
            Some(&self.norm1.as_prologue()),
            &self.norm2.as_epilogue(),
        )?;
        self.conv2.forward(&x)
    }
}

/// torchvision `_Transition`: BN-ReLU-conv1x1 halving the channels, then 2x2 average pooling.
struct Transition {
    norm: BatchNorm,
    conv: Conv,
}

impl Transition {
    fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        // The 1x1 convolution and the 2x2 average commute (both linear, per pixel and per channel): pooling first
        // gives the same values (up to rounding) for a quarter of the multiply-adds.
        let pooled = fused_pool::affine_relu_avg_pool2(x, &self.norm.as_prologue())?;
        op_profile::mark("transition BatchNorm + ReLU + average pool")?;
        self.conv.forward(&pooled)
    }
}

/// The stem's `pool0`: max pooling 3x3, stride 2, padding 1.
///
/// Its input comes straight after `relu0`, so every value is >= 0 and zero padding gives the same maxima as
/// PyTorch's implicit -inf padding. Inference only (no backward); training builds its own differentiable pool
/// (`train::densenet_train`).
fn stem_max_pool(x: &Tensor) -> Result<Tensor, ModelError> {
    Ok(fused_pool::max_pool3x3_stride2_zero_pad1(x)?)
}

/// The DenseNet-121 classifier with its card.
pub struct DenseNet121 {
    card: ModelCard,
    config: DenseNetConfig,
    conv0: Conv,
    norm0: BatchNorm,
    blocks: Vec<Vec<DenseLayer>>,
    transitions: Vec<Transition>,
    norm5: BatchNorm,
    classifier_weight: Tensor,
    classifier_bias: Tensor,
}

impl DenseNet121 {
    /// Builds the network from weights whose card describes a DenseNet classifier; tensor names may use the
    /// older torchvision spellings (see [`canonical_key`]).
    pub fn from_weights(weights: Weights) -> Result<Self, ModelError> {
        if weights.card.kind != ModelKind::Densenet121Classifier {
            return Err(ModelError::BadInput {
                argument: "model card kind".to_owned(),
                reason: format!("{:?} is not a DenseNet classifier", weights.card.kind),
            });
        }
        let tensors: HashMap<String, Tensor> =
            weights.tensors.into_iter().map(|(name, tensor)| (canonical_key(&name), tensor)).collect();
        let weights = Weights { card: weights.card, tensors };
        let config = DenseNetConfig::from_card(&weights.card)?;
        let inputs = config.block_input_channels();
        let bottleneck = config.bn_size * config.growth_rate;
        let conv0 = Conv::load(&weights, "features.conv0.weight", [config.num_init_features, 3, 7, 7], 2, 3)?;
        let norm0 = BatchNorm::load(&weights, "features.norm0", config.num_init_features)?;
        let mut blocks = Vec::with_capacity(config.block_config.len());
        let mut transitions = Vec::with_capacity(config.block_config.len().saturating_sub(1));
        for (block, (&layers, &block_in)) in config.block_config.iter().zip(&inputs).enumerate() {
            let mut dense_layers = Vec::with_capacity(layers);
            for layer in 0..layers {
                let prefix = format!("features.denseblock{}.denselayer{}", block + 1, layer + 1);
                let layer_in = block_in + layer * config.growth_rate;
                dense_layers.push(DenseLayer {
                    norm1: BatchNorm::load(&weights, &format!("{prefix}.norm1"), layer_in)?,
                    conv1: Conv::load(&weights, &format!("{prefix}.conv1.weight"), [bottleneck, layer_in, 1, 1], 1, 0)?,
                    norm2: BatchNorm::load(&weights, &format!("{prefix}.norm2"), bottleneck)?,
                    conv2: Conv::load(
                        &weights,
                        &format!("{prefix}.conv2.weight"),
                        [config.growth_rate, bottleneck, 3, 3],
                        1,
                        1,
                    )?,
                });
            }
            blocks.push(dense_layers);
            if block + 1 < config.block_config.len() {
                let block_out = block_in + layers * config.growth_rate;
                let prefix = format!("features.transition{}", block + 1);
                transitions.push(Transition {
                    norm: BatchNorm::load(&weights, &format!("{prefix}.norm"), block_out)?,
                    conv: Conv::load(
                        &weights,
                        &format!("{prefix}.conv.weight"),
                        [block_out / 2, block_out, 1, 1],
                        1,
                        0,
                    )?,
                });
            }
        }
        let num_features = config.num_features();
        let norm5 = BatchNorm::load(&weights, "features.norm5", num_features)?;
        let classifier_weight = weights.get("classifier.0.weight", &[config.num_labels, num_features])?;
        let classifier_bias = weights.get("classifier.0.bias", &[config.num_labels])?;
        Ok(Self {
            card: weights.card,
            config,
            conv0,
            norm0,
            blocks,
            transitions,
            norm5,
            classifier_weight,
            classifier_bias,
        })
    }

    /// Loads a safetensors weights file with a DenseNet card onto `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self, ModelError> {
        Self::from_weights(Weights::load(path, ModelKind::Densenet121Classifier, device)?)
    }

    /// Randomly initialised weights for `card`'s architecture, initialised as torchvision does (Kaiming-normal
    /// convolutions, unit BatchNorm, zero biases, PyTorch's default uniform Linear weights); deterministic in `seed`.
    pub fn random_weights(card: &ModelCard, device: &Device, seed: u64) -> Result<Weights, ModelError> {
        let config = DenseNetConfig::from_card(card)?;
        let mut rng = SeededRng::new(seed);
        let mut tensors = HashMap::new();
        for (name, shape) in config.tensor_shapes() {
            let count: usize = shape.iter().product();
            let suffix = name.rsplit('.').next().unwrap_or_default();
            let is_norm = name.rsplit('.').nth(1).is_some_and(|module| module.starts_with("norm"));
            let values: Vec<f32> = match suffix {
                "running_var" => vec![1.0; count],
                "weight" if is_norm => vec![1.0; count],
                "bias" | "running_mean" => vec![0.0; count],
                _ if name == "classifier.0.weight" => {
                    let bound = 1.0 / (config.num_features() as f64).sqrt();
                    (0..count).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect()
                }
                _ => {
                    // Convolutions: kaiming_normal_ with fan_in and the ReLU gain, std = sqrt(2 / fan_in).
                    let fan_in: usize = shape.iter().skip(1).product();
                    let std = (2.0 / fan_in.max(1) as f64).sqrt();
                    (0..count).map(|_| (rng.normal() * std) as f32).collect()
                }
            };
            tensors.insert(name, Tensor::from_vec(values, shape, device)?);
        }
        Ok(Weights { card: card.clone(), tensors })
    }

    /// An untrained network for `card` (see [`Self::random_weights`]).
    pub fn random(card: &ModelCard, device: &Device, seed: u64) -> Result<Self, ModelError> {
        Self::from_weights(Self::random_weights(card, device, seed)?)
    }

    /// The model card.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// The architecture hyper-parameters.
    pub fn config(&self) -> &DenseNetConfig {
        &self.config
    }

    fn check_input(&self, x: &Tensor) -> Result<(), ModelError> {
        let bad = |reason: String| ModelError::BadInput { argument: "classifier input".to_owned(), reason };
        let (_, channels, height, width) =
            x.dims4().map_err(|_| bad(format!("expected a [N, 3, H, W] tensor, got shape {:?}", x.dims())))?;
        if channels != 3 {
            return Err(bad(format!("expected 3 channels, got shape {:?}", x.dims())));
        }
        let expected = self.card.resolution;
        if expected != 0 && (height != expected || width != expected) {
            return Err(bad(format!("expected {expected}x{expected} pixels, got shape {:?}", x.dims())));
        }
        if height < MIN_INPUT_SIZE_PX || width < MIN_INPUT_SIZE_PX {
            return Err(bad(format!("sides must be at least {MIN_INPUT_SIZE_PX} px, got shape {:?}", x.dims())));
        }
        if x.dtype() != DType::F32 {
            return Err(bad(format!("expected float32, got {:?}", x.dtype())));
        }
        Ok(())
    }

    /// The feature map after `norm5` and the final ReLU, [N, 1024, 7, 7] for 224 px inputs: the layer class
    /// activation maps and Grad-CAM read.
    pub fn features(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        self.check_input(x)?;
        let _upload_cache = upload_cache_guard(x.device());
        let x = self.conv0.forward_fused(x, None, &self.norm0.as_epilogue())?;
        let mut x = stem_max_pool(&x)?;
        op_profile::mark("stem max pool")?;
        for (block, layers) in self.blocks.iter().enumerate() {
            x = if fast_conv::is_cpu_f32(&x) {
                let channels_total = x.dim(1)? + layers.len() * self.config.growth_rate;
                let mut buffer = DenseBlockBuffer::new(&x, channels_total)?;
                for layer in layers {
                    let new_features = layer.forward_in_buffer(&buffer)?;
                    buffer.append(&new_features)?;
                    op_profile::mark("concatenation")?;
                }
                buffer.into_tensor()?
            } else {
                for layer in layers {
                    let new_features = layer.forward(&x)?;
                    x = Tensor::cat(&[&x, &new_features], 1)?;
                    op_profile::mark("concatenation")?;
                }
                x
            };
            if let Some(transition) = self.transitions.get(block) {
                x = transition.forward(&x)?;
            }
        }
        let features = self.norm5.forward_relu(&x)?;
        op_profile::mark("final BatchNorm + ReLU")?;
        Ok(features)
    }

    /// Globally average-pooled features, [N, 1024]: the embedding for Frechet distances.
    pub fn pooled_features(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let pooled = self.features(x)?.flatten_from(2)?.mean(D::Minus1)?;
        op_profile::mark("global average pool")?;
        Ok(pooled)
    }

    /// Label probabilities [N, L] in the card's label order, from preprocessed input [N, 3, 224, 224].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let pooled = self.pooled_features(x)?;
        self.classify_pooled(&pooled)
    }

    /// The classifier head (`classifier.0` and the sigmoid) applied to pooled features [N, 1024].
    pub fn classify_pooled(&self, pooled: &Tensor) -> Result<Tensor, ModelError> {
        let logits = pooled.matmul(&self.classifier_weight.t()?)?.broadcast_add(&self.classifier_bias)?;
        let probabilities = candle_nn::ops::sigmoid(&logits)?;
        op_profile::mark("classifier head")?;
        Ok(probabilities)
    }
}

/// A small deterministic generator (SplitMix64) for reproducible random initialisation; candle's CPU
/// random numbers cannot be seeded.
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A generator whose sequence depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// What class activation maps and Grad-CAM (`models::heatmap`) need from the classifier head.
impl DenseNet121 {
    /// The head's `classifier.0` weight [L, C] and bias [L]; CAM weighs the feature channels with one row.
    pub fn classifier_parameters(&self) -> (&Tensor, &Tensor) {
        (&self.classifier_weight, &self.classifier_bias)
    }

    /// Logits [N, L] (before the sigmoid) from a feature map [N, C, H, W] as [`Self::features`] returns it: global
    /// average pooling then `classifier.0`. Only differentiable ops, so gradients reach a `Var` holding the features.
    pub fn logits_from_features(&self, features: &Tensor) -> Result<Tensor, ModelError> {
        let channels = self.config.num_features();
        match features.dims() {
            [_, c, h, w] if *c == channels && *h > 0 && *w > 0 => {}
            dims => {
                return Err(ModelError::BadInput {
                    argument: "classifier feature map".to_owned(),
                    reason: format!("expected [N, {channels}, H, W], got shape {dims:?}"),
                });
            }
        }
        let pooled = features.flatten_from(2)?.mean(D::Minus1)?;
        Ok(pooled.matmul(&self.classifier_weight.t()?)?.broadcast_add(&self.classifier_bias)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_card() -> ModelCard {
        let config = DenseNetConfig {
            growth_rate: 4,
            bn_size: 2,
            num_init_features: 8,
            block_config: vec![2, 3],
            num_labels: 3,
        };
        config.card("tiny", vec!["A".into(), "B".into(), "C".into()], Provenance::default())
    }

    #[test]
    fn canonical_key_maps_old_torchvision_names_and_prefixes() {
        assert_eq!(
            canonical_key("module.features.denseblock1.denselayer2.norm.1.running_var"),
            "features.denseblock1.denselayer2.norm1.running_var"
        );
        assert_eq!(
            canonical_key("features.denseblock4.denselayer16.conv.2.weight"),
            "features.denseblock4.denselayer16.conv2.weight"
        );
        assert_eq!(canonical_key("features.transition1.norm.weight"), "features.transition1.norm.weight");
    }

    #[test]
    fn densenet121_has_torchvision_parameter_count_and_1024_features() {
        let config = DenseNetConfig::densenet121(14);
        assert_eq!(config.num_features(), 1024);
        let trainable: usize = config
            .tensor_shapes()
            .iter()
            .filter(|(name, _)| !name.contains("running_"))
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum();
        // torchvision densenet121 has 7,978,856 parameters with its 1000-class head (1024*1000 + 1000);
        // with 14 outputs that is 7,978,856 - 1,025,000 + 14,350.
        assert_eq!(trainable, 7_978_856 - 1_025_000 + 14_350);
    }

    #[test]
    fn card_round_trips_the_config() {
        let card = tiny_card();
        let config = DenseNetConfig::from_card(&card).unwrap();
        assert_eq!(config.block_config, vec![2, 3]);
        assert_eq!(config.num_features(), (8 + 2 * 4) / 2 + 3 * 4);
    }

    #[test]
    fn random_network_gives_probabilities_and_feature_maps_of_the_right_shape() {
        let card = tiny_card();
        let net = DenseNet121::random(&card, &Device::Cpu, 3).unwrap();
        let x = Tensor::zeros((2, 3, 224, 224), DType::F32, &Device::Cpu).unwrap();
        let features = net.features(&x).unwrap();
        // Stem (/4) and one transition (/2): 224 -> 28.
        assert_eq!(features.dims(), &[2, net.config().num_features(), 28, 28]);
        let probabilities = net.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        assert!(probabilities.iter().flatten().all(|p| (0.0..=1.0).contains(p)));
    }

    #[test]
    fn wrong_input_shape_is_named() {
        let net = DenseNet121::random(&tiny_card(), &Device::Cpu, 3).unwrap();
        let x = Tensor::zeros((1, 1, 224, 224), DType::F32, &Device::Cpu).unwrap();
        let message = net.forward(&x).err().unwrap().to_string();
        assert!(message.contains("classifier input") && message.contains("3 channels"), "{message}");
        let x = Tensor::zeros((1, 3, 200, 224), DType::F32, &Device::Cpu).unwrap();
        let message = net.forward(&x).err().unwrap().to_string();
        assert!(message.contains("224x224"), "{message}");
    }

    #[test]
    fn missing_and_misshapen_tensors_are_named() {
        let card = tiny_card();
        let mut weights = DenseNet121::random_weights(&card, &Device::Cpu, 1).unwrap();
        weights.tensors.remove("features.denseblock2.denselayer3.norm2.running_mean");
        let message = DenseNet121::from_weights(weights).err().unwrap().to_string();
        assert!(message.contains("features.denseblock2.denselayer3.norm2.running_mean"), "{message}");

        let mut weights = DenseNet121::random_weights(&card, &Device::Cpu, 1).unwrap();
        weights.tensors.insert("classifier.0.weight".into(), Tensor::zeros((4, 20), DType::F32, &Device::Cpu).unwrap());
        let message = DenseNet121::from_weights(weights).err().unwrap().to_string();
        assert!(message.contains("classifier.0.weight") && message.contains("[4, 20]"), "{message}");
    }
}
