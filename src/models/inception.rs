//! The FID Inception-v3 of pytorch-fid (`pytorch_fid.inception.fid_inception_v3`): torchvision's `Inception3` with
//! TensorFlow's FID graph patched in (FIDInceptionA/C/E_1 average-pool without counting the zero padding,
//! FIDInceptionE_2 max-pools instead), BatchNorm eps 0.001, eval mode, up to the 2048-d pool3 output.
//!
//! Tensor names are pytorch-fid's state_dict names (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.bias`, ...),
//! so the published `pt_inception-2015-12-05-6726825d.pth` converts without renaming; its classifier (`fc.*`) is not
//! needed for FID and is left out.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{D, DType, Device, Tensor};

use crate::models::card::{ModelCard, ModelKind, Provenance};
use crate::models::error::ModelError;
use crate::models::fast_conv::{self, Activation, Epilogue};
use crate::models::upload_cache::upload_cache_guard;
use crate::models::weights::Weights;

/// The network's input side: pytorch-fid resizes every image to 299x299.
pub const FID_INPUT_SIZE_PX: usize = 299;
/// Dimension of the pool3 features FID is computed on.
pub const POOL3_FEATURES: usize = 2048;
/// torchvision `BasicConv2d`'s BatchNorm epsilon (TensorFlow's value), not PyTorch's default 1e-5.
const BATCH_NORM_EPS: f64 = 0.001;
/// Smallest input side the stride-2 layers leave a pixel of (torchvision needs 75 px).
const MIN_INPUT_SIZE_PX: usize = 75;
/// File name of the published FID weights (pytorch-fid's `FID_WEIGHTS_URL`); torch hub names files by the first
/// eight hex digits of their SHA-256.
pub const PUBLISHED_WEIGHTS_FILE: &str = "pt_inception-2015-12-05-6726825d.pth";
/// Where pytorch-fid downloads the published weights from.
pub const PUBLISHED_WEIGHTS_URL: &str =
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth";
/// First hex digits of the published file's SHA-256.
pub const PUBLISHED_SHA256_PREFIX: &str = "6726825d";

/// One torchvision `BasicConv2d` (bias-free convolution, BatchNorm, ReLU) as the architecture needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    /// Module path, e.g. `Mixed_6b.branch7x7_2`.
    pub name: String,
    pub channels_in: usize,
    pub channels_out: usize,
    /// Kernel (height, width).
    pub kernel: (usize, usize),
    pub stride: usize,
    /// Zero padding (rows, columns).
    pub padding: (usize, usize),
}

fn conv(name: String, channels_in: usize, channels_out: usize, kernel: (usize, usize)) -> ConvSpec {
    ConvSpec { name, channels_in, channels_out, kernel, stride: 1, padding: (kernel.0 / 2, kernel.1 / 2) }
}

fn strided(name: String, channels_in: usize, channels_out: usize, kernel: usize, stride: usize) -> ConvSpec {
    ConvSpec { name, channels_in, channels_out, kernel: (kernel, kernel), stride, padding: (0, 0) }
}

/// Every `BasicConv2d` of the FID Inception-v3 up to pool3, in state_dict order.
pub fn conv_specs() -> Vec<ConvSpec> {
    let mut specs = vec![
        strided("Conv2d_1a_3x3".into(), 3, 32, 3, 2),
        strided("Conv2d_2a_3x3".into(), 32, 32, 3, 1),
        conv("Conv2d_2b_3x3".into(), 32, 64, (3, 3)),
        conv("Conv2d_3b_1x1".into(), 64, 80, (1, 1)),
        strided("Conv2d_4a_3x3".into(), 80, 192, 3, 1),
    ];
    for (block, channels_in, pool_features) in [("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)] {
        let n = |branch: &str| format!("{block}.{branch}");
        specs.extend([
            conv(n("branch1x1"), channels_in, 64, (1, 1)),
            conv(n("branch5x5_1"), channels_in, 48, (1, 1)),
            conv(n("branch5x5_2"), 48, 64, (5, 5)),
            conv(n("branch3x3dbl_1"), channels_in, 64, (1, 1)),
            conv(n("branch3x3dbl_2"), 64, 96, (3, 3)),
            conv(n("branch3x3dbl_3"), 96, 96, (3, 3)),
            conv(n("branch_pool"), channels_in, pool_features, (1, 1)),
        ]);
    }
    specs.extend([
        strided("Mixed_6a.branch3x3".into(), 288, 384, 3, 2),
        conv("Mixed_6a.branch3x3dbl_1".into(), 288, 64, (1, 1)),
        conv("Mixed_6a.branch3x3dbl_2".into(), 64, 96, (3, 3)),
        strided("Mixed_6a.branch3x3dbl_3".into(), 96, 96, 3, 2),
    ]);
    for (block, c7) in [("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)] {
        let n = |branch: &str| format!("{block}.{branch}");
        specs.extend([
            conv(n("branch1x1"), 768, 192, (1, 1)),
            conv(n("branch7x7_1"), 768, c7, (1, 1)),
            conv(n("branch7x7_2"), c7, c7, (1, 7)),
            conv(n("branch7x7_3"), c7, 192, (7, 1)),
            conv(n("branch7x7dbl_1"), 768, c7, (1, 1)),
            conv(n("branch7x7dbl_2"), c7, c7, (7, 1)),
            conv(n("branch7x7dbl_3"), c7, c7, (1, 7)),
            conv(n("branch7x7dbl_4"), c7, c7, (7, 1)),
            conv(n("branch7x7dbl_5"), c7, 192, (1, 7)),
            conv(n("branch_pool"), 768, 192, (1, 1)),
        ]);
    }
    specs.extend([
        conv("Mixed_7a.branch3x3_1".into(), 768, 192, (1, 1)),
        strided("Mixed_7a.branch3x3_2".into(), 192, 320, 3, 2),
        conv("Mixed_7a.branch7x7x3_1".into(), 768, 192, (1, 1)),
        conv("Mixed_7a.branch7x7x3_2".into(), 192, 192, (1, 7)),
        conv("Mixed_7a.branch7x7x3_3".into(), 192, 192, (7, 1)),
        strided("Mixed_7a.branch7x7x3_4".into(), 192, 192, 3, 2),
    ]);
    for (block, channels_in) in [("Mixed_7b", 1280), ("Mixed_7c", 2048)] {
        let n = |branch: &str| format!("{block}.{branch}");
        specs.extend([
            conv(n("branch1x1"), channels_in, 320, (1, 1)),
            conv(n("branch3x3_1"), channels_in, 384, (1, 1)),
            conv(n("branch3x3_2a"), 384, 384, (1, 3)),
            conv(n("branch3x3_2b"), 384, 384, (3, 1)),
            conv(n("branch3x3dbl_1"), channels_in, 448, (1, 1)),
            conv(n("branch3x3dbl_2"), 448, 384, (3, 3)),
            conv(n("branch3x3dbl_3a"), 384, 384, (1, 3)),
            conv(n("branch3x3dbl_3b"), 384, 384, (3, 1)),
            conv(n("branch_pool"), channels_in, 192, (1, 1)),
        ]);
    }
    specs
}

/// Names and shapes of every tensor the network reads, in pytorch-fid's state_dict order (without `fc.*` and the
/// integer `num_batches_tracked` counters).
pub fn tensor_shapes() -> Vec<(String, Vec<usize>)> {
    let mut shapes = Vec::new();
    for spec in conv_specs() {
        let ConvSpec { name, channels_in, channels_out, kernel, .. } = spec;
        shapes.push((format!("{name}.conv.weight"), vec![channels_out, channels_in, kernel.0, kernel.1]));
        for suffix in ["weight", "bias", "running_mean", "running_var"] {
            shapes.push((format!("{name}.bn.{suffix}"), vec![channels_out]));
        }
    }
    shapes
}

/// The card of FID Inception-v3 weights.
pub fn inception_card(name: &str, untrained: bool, provenance: Provenance) -> ModelCard {
    let mut hyper = BTreeMap::new();
    hyper.insert("feature_dim".to_owned(), POOL3_FEATURES as f64);
    hyper.insert("batch_norm_eps".to_owned(), BATCH_NORM_EPS);
    ModelCard {
        kind: ModelKind::InceptionV3,
        name: name.to_owned(),
        labels: Vec::new(),
        resolution: FID_INPUT_SIZE_PX,
        channels: 3,
        hyper,
        // pytorch-fid's `2 * x - 1` on [0, 1] input is this normalisation.
        input_normalization: Some(crate::models::card::InputNormalization { mean: vec![0.5; 3], std: vec![0.5; 3] }),
        output_range: None,
        untrained,
        provenance,
        metrics: BTreeMap::new(),
    }
}

/// A value in [-1, 1) for element `index` of tensor `name`: splitmix64 of (FNV-1a of the name) XOR index, top 24
/// bits. `tools/make_inception_fixture.py` computes the same numbers.
fn formula_unit(name_hash: u64, index: u64) -> f64 {
    let mut z = (name_hash ^ index).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f64 / f64::from(1u32 << 23) - 1.0
}

fn fnv1a64(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325, |h, byte| (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3))
}

/// Stand-in weights for parity tests and benchmarks, not a trained network: every tensor filled by the formula of
/// `tools/make_inception_fixture.py` (He-uniform convolutions, BatchNorm near identity with positive variance).
pub fn formula_weights(device: &Device) -> Result<Weights, ModelError> {
    let mut tensors = HashMap::new();
    for (name, shape) in tensor_shapes() {
        let count: usize = shape.iter().product();
        let hash = fnv1a64(&name);
        let fan_in: usize = shape.iter().skip(1).product();
        let (offset, scale) = if name.ends_with("conv.weight") {
            (0.0, (6.0 / fan_in.max(1) as f64).sqrt())
        } else if name.ends_with("bn.weight") {
            (1.0, 0.25)
        } else if name.ends_with("bn.running_var") {
            (1.0, 0.5)
        } else {
            (0.0, 0.1)
        };
        let values: Vec<f32> = (0..count as u64)
            .map(|i| {
                // Rounded once to f32 after the f64 arithmetic, as numpy's `astype(np.float32)`.
                (offset + scale * formula_unit(hash, i)) as f32
            })
            .collect();
        tensors.insert(name, Tensor::from_vec(values, shape, device)?);
    }
    let card = inception_card("FID Inception-v3 (formula weights, untrained)", true, Provenance::default());
    Ok(Weights { card, tensors })
}

/// `BasicConv2d` with its eval-mode BatchNorm folded into the convolution's epilogue with the ReLU.
struct BasicConv {
    weight: Tensor,
    stride: usize,
    padding: (usize, usize),
    epilogue: Epilogue,
}

impl BasicConv {
    fn load(weights: &Weights, spec: &ConvSpec) -> Result<Self, ModelError> {
        let name = &spec.name;
        let shape = [spec.channels_out, spec.channels_in, spec.kernel.0, spec.kernel.1];
        let weight = weights.get(&format!("{name}.conv.weight"), &shape)?;
        let get = |suffix: &str| weights.get(&format!("{name}.bn.{suffix}"), &[spec.channels_out]);
        let (gamma, beta) = (get("weight")?, get("bias")?);
        let (mean, var) = (get("running_mean")?, get("running_var")?);
        // torch computes (x - mean) / sqrt(var + eps) * weight + bias; folding it differs only by rounding.
        let scale = gamma.div(&(var + BATCH_NORM_EPS)?.sqrt()?)?;
        let shift = beta.sub(&mean.mul(&scale)?)?;
        let epilogue =
            Epilogue { scale: Some(scale), shift: Some(shift), activation: Activation::Relu, pixel_norm_epsilon: None };
        Ok(Self { weight, stride: spec.stride, padding: spec.padding, epilogue })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let (rows, columns) = self.padding;
        let y = if rows == columns {
            fast_conv::conv2d_fused(x, &self.weight, self.stride, rows, None, &self.epilogue)?
        } else {
            // The 1x7 / 7x1 / 1x3 / 3x1 factorised kernels pad one axis only; the fused convolution pads both alike.
            let padded = x.pad_with_zeros(2, rows, rows)?.pad_with_zeros(3, columns, columns)?;
            fast_conv::conv2d_fused(&padded, &self.weight, self.stride, 0, None, &self.epilogue)?
        };
        Ok(y)
    }
}

/// 3x3 average pooling, stride 1, padding 1, dividing by the pixels inside the image only
/// (`count_include_pad=False`, TensorFlow's behaviour that pytorch-fid patches in).
fn avg_pool_3x3_exclude_padding(x: &Tensor) -> Result<Tensor, ModelError> {
    let (_, _, height, width) = x.dims4()?;
    let padded = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
    let mean_of_nine = padded.avg_pool2d_with_stride(3, 1)?;
    // Pixels of the window inside the image along one axis: 3 inside, 2 at a border, 1 when the side is 1 px.
    let inside = |i: usize, side: usize| (i + 1).min(side - 1) + 1 - i.saturating_sub(1);
    let mut correction = Vec::with_capacity(height * width);
    for y in 0..height {
        for x_px in 0..width {
            correction.push(9.0 / (inside(y, height) * inside(x_px, width)) as f32);
        }
    }
    let correction = Tensor::from_vec(correction, (1, 1, height, width), x.device())?;
    Ok(mean_of_nine.broadcast_mul(&correction)?)
}

/// 3x3 max pooling, stride 1, padding 1 (PyTorch pads with -inf). Edge-replicated padding gives the same maxima:
/// each padded value repeats a pixel that is already inside the same window.
fn max_pool_3x3_same(x: &Tensor) -> Result<Tensor, ModelError> {
    let padded = x.pad_with_same(2, 1, 1)?.pad_with_same(3, 1, 1)?;
    Ok(padded.max_pool2d_with_stride(3, 1)?)
}

/// 3x3 max pooling, stride 2, no padding (`nn.MaxPool2d(3, stride=2)`, floor mode).
fn max_pool_3x3_stride2(x: &Tensor) -> Result<Tensor, ModelError> {
    Ok(x.max_pool2d_with_stride(3, 2)?)
}

fn load_all(weights: &Weights, specs: &[ConvSpec], prefix: &str) -> Result<Vec<BasicConv>, ModelError> {
    specs.iter().filter(|s| s.name.starts_with(prefix)).map(|s| BasicConv::load(weights, s)).collect()
}

/// Runs `convs` one after the other.
fn chain(convs: &[BasicConv], x: &Tensor) -> Result<Tensor, ModelError> {
    let mut y = x.clone();
    for conv in convs {
        y = conv.forward(&y)?;
    }
    Ok(y)
}

/// FIDInceptionA / FIDInceptionC: a 1x1 branch, two convolution chains, and average pooling (excluding the
/// padding) then a 1x1 convolution.
fn four_branches(
    x: &Tensor,
    branch1x1: &BasicConv,
    second: &[BasicConv],
    third: &[BasicConv],
    branch_pool: &BasicConv,
) -> Result<Vec<Tensor>, ModelError> {
    let pooled = avg_pool_3x3_exclude_padding(x)?;
    Ok(vec![branch1x1.forward(x)?, chain(second, x)?, chain(third, x)?, branch_pool.forward(&pooled)?])
}

/// How a mixed block pools its input for the pool branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PoolBranch {
    /// Average over the pixels inside the image (FIDInceptionA, FIDInceptionC, FIDInceptionE_1).
    AverageExcludingPadding,
    /// Max pooling 3x3 stride 1 (FIDInceptionE_2, as in the FID graph).
    Max,
}

/// One mixed block. The convolutions are held in state_dict order; which of them form each branch depends on the
/// block type.
enum MixedBlock {
    /// FIDInceptionA: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | pool-1x1.
    A(Vec<BasicConv>),
    /// InceptionB (Mixed_6a): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2.
    B(Vec<BasicConv>),
    /// FIDInceptionC: 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | pool-1x1.
    C(Vec<BasicConv>),
    /// InceptionD (Mixed_7a): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2.
    D(Vec<BasicConv>),
    /// FIDInceptionE_1 / E_2: 1x1 | 1x1-(1x3, 3x1) | 1x1-3x3-(1x3, 3x1) | pool-1x1.
    E(Vec<BasicConv>, PoolBranch),
}

impl MixedBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let branches: Vec<Tensor> = match self {
            Self::A(c) if c.len() == 7 => four_branches(x, &c[0], &c[1..3], &c[3..6], &c[6])?,
            Self::C(c) if c.len() == 10 => four_branches(x, &c[0], &c[1..4], &c[4..9], &c[9])?,
            Self::B(c) if c.len() == 4 => vec![c[0].forward(x)?, chain(&c[1..4], x)?, max_pool_3x3_stride2(x)?],
            Self::D(c) if c.len() == 6 => {
                vec![chain(&c[0..2], x)?, chain(&c[2..6], x)?, max_pool_3x3_stride2(x)?]
            }
            Self::E(c, pool) if c.len() == 9 => {
                let branch3x3 = c[1].forward(x)?;
                let branch3x3dbl = chain(&c[4..6], x)?;
                let pooled = match pool {
                    PoolBranch::AverageExcludingPadding => avg_pool_3x3_exclude_padding(x)?,
                    PoolBranch::Max => max_pool_3x3_same(x)?,
                };
                vec![
                    c[0].forward(x)?,
                    c[2].forward(&branch3x3)?,
                    c[3].forward(&branch3x3)?,
                    c[6].forward(&branch3x3dbl)?,
                    c[7].forward(&branch3x3dbl)?,
                    c[8].forward(&pooled)?,
                ]
            }
            _ => {
                return Err(ModelError::BadInput {
                    argument: "Inception mixed block".to_owned(),
                    reason: "built with the wrong number of convolutions".to_owned(),
                });
            }
        };
        Ok(Tensor::cat(&branches, 1)?)
    }
}

/// pytorch-fid's FID Inception-v3 up to pool3, with its card.
pub struct FidInceptionV3 {
    card: ModelCard,
    /// Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3 (block 0, then max pooling).
    stem0: Vec<BasicConv>,
    /// Conv2d_3b_1x1, Conv2d_4a_3x3 (block 1, then max pooling).
    stem1: Vec<BasicConv>,
    /// Mixed_5b .. Mixed_6e (block 2).
    mixed6: Vec<MixedBlock>,
    /// Mixed_7a .. Mixed_7c (block 3, then global average pooling).
    mixed7: Vec<MixedBlock>,
}

impl FidInceptionV3 {
    /// Builds the network from weights with an Inception-v3 card; every tensor of [`tensor_shapes`] must be there
    /// with its shape (errors name the tensor). Other tensors are ignored.
    pub fn from_weights(weights: Weights) -> Result<Self, ModelError> {
        if weights.card.kind != ModelKind::InceptionV3 {
            return Err(ModelError::BadInput {
                argument: "model card kind".to_owned(),
                reason: format!("{:?} is not the FID Inception-v3", weights.card.kind),
            });
        }
        let specs = conv_specs();
        let exact = |name: &str| -> Result<Vec<BasicConv>, ModelError> {
            specs.iter().filter(|s| s.name == name).map(|s| BasicConv::load(&weights, s)).collect()
        };
        let mut stem0 = exact("Conv2d_1a_3x3")?;
        stem0.extend(exact("Conv2d_2a_3x3")?);
        stem0.extend(exact("Conv2d_2b_3x3")?);
        let mut stem1 = exact("Conv2d_3b_1x1")?;
        stem1.extend(exact("Conv2d_4a_3x3")?);
        let block = |name: &str| load_all(&weights, &specs, &format!("{name}."));
        let mixed6 = vec![
            MixedBlock::A(block("Mixed_5b")?),
            MixedBlock::A(block("Mixed_5c")?),
            MixedBlock::A(block("Mixed_5d")?),
            MixedBlock::B(block("Mixed_6a")?),
            MixedBlock::C(block("Mixed_6b")?),
            MixedBlock::C(block("Mixed_6c")?),
            MixedBlock::C(block("Mixed_6d")?),
            MixedBlock::C(block("Mixed_6e")?),
        ];
        let mixed7 = vec![
            MixedBlock::D(block("Mixed_7a")?),
            MixedBlock::E(block("Mixed_7b")?, PoolBranch::AverageExcludingPadding),
            MixedBlock::E(block("Mixed_7c")?, PoolBranch::Max),
        ];
        Ok(Self { card: weights.card, stem0, stem1, mixed6, mixed7 })
    }

    /// Loads a safetensors weights file with an Inception-v3 card onto `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self, ModelError> {
        Self::from_weights(Weights::load(path, ModelKind::InceptionV3, device)?)
    }

    /// The model card.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    fn check_input(x: &Tensor) -> Result<(), ModelError> {
        let bad = |reason: String| ModelError::BadInput { argument: "Inception input".to_owned(), reason };
        let (_, channels, height, width) =
            x.dims4().map_err(|_| bad(format!("expected a [N, 3, H, W] tensor, got shape {:?}", x.dims())))?;
        if channels != 3 {
            return Err(bad(format!("expected 3 channels, got shape {:?}", x.dims())));
        }
        if height < MIN_INPUT_SIZE_PX || width < MIN_INPUT_SIZE_PX {
            return Err(bad(format!("sides must be at least {MIN_INPUT_SIZE_PX} px, got shape {:?}", x.dims())));
        }
        if x.dtype() != DType::F32 {
            return Err(bad(format!("expected float32, got {:?}", x.dtype())));
        }
        Ok(())
    }

    /// pytorch-fid's four output blocks for input already resized and scaled to [-1, 1] ([N, 3, 299, 299]):
    /// after the first max pooling [N, 64, 73, 73], the second [N, 192, 35, 35], before the auxiliary classifier
    /// [N, 768, 17, 17], and the pool3 features [N, 2048] (flattened from [N, 2048, 1, 1]).
    pub fn blocks(&self, x: &Tensor) -> Result<[Tensor; 4], ModelError> {
        Self::check_input(x)?;
        let _upload_cache = upload_cache_guard(x.device());
        let block0 = max_pool_3x3_stride2(&chain(&self.stem0, x)?)?;
        let block1 = max_pool_3x3_stride2(&chain(&self.stem1, &block0)?)?;
        let mut block2 = block1.clone();
        for block in &self.mixed6 {
            block2 = block.forward(&block2)?;
        }
        let mut y = block2.clone();
        for block in &self.mixed7 {
            y = block.forward(&y)?;
        }
        let pool3 = y.flatten_from(2)?.mean(D::Minus1)?;
        Ok([block0, block1, block2, pool3])
    }

    /// The 2048-d pool3 features [N, 2048] FID is computed on, for input already resized and scaled to [-1, 1].
    pub fn pool3(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let [.., pool3] = self.blocks(x)?;
        Ok(pool3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_list_matches_the_published_state_dict_layout() {
        let shapes = tensor_shapes();
        // 94 BasicConv2d up to Mixed_7c, five float tensors each (fc.* and num_batches_tracked are not read).
        assert_eq!(shapes.len(), 94 * 5);
        assert_eq!(shapes[0], ("Conv2d_1a_3x3.conv.weight".to_owned(), vec![32, 3, 3, 3]));
        let find = |name: &str| shapes.iter().find(|(n, _)| n == name).map(|(_, s)| s.clone());
        assert_eq!(find("Mixed_6b.branch7x7_2.conv.weight"), Some(vec![128, 128, 1, 7]));
        assert_eq!(find("Mixed_7c.branch3x3dbl_1.conv.weight"), Some(vec![448, 2048, 1, 1]));
        assert_eq!(find("Mixed_5b.branch_pool.bn.running_var"), Some(vec![32]));
        let parameters: usize = shapes.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        // pytorch-fid's float tensors without fc.* (counted with tools/make_inception_fixture.py's template).
        assert_eq!(parameters, 21_820_000);
    }

    #[test]
    fn formula_units_are_in_range_and_spread() {
        let hash = fnv1a64("Conv2d_1a_3x3.conv.weight");
        let values: Vec<f64> = (0..10_000).map(|i| formula_unit(hash, i)).collect();
        assert!(values.iter().all(|v| (-1.0..1.0).contains(v)));
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!(mean.abs() < 0.05, "mean {mean}");
    }

    #[test]
    fn average_pool_excludes_padding_like_count_include_pad_false() {
        let x = Tensor::arange(0f32, 12.0, &Device::Cpu).unwrap().reshape((1, 1, 3, 4)).unwrap();
        let y = avg_pool_3x3_exclude_padding(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Corner (0,0): mean of 0, 1, 4, 5; centre (1,1): mean of 0..=2, 4..=6, 8..=10.
        assert!((y[0] - 2.5).abs() < 1e-6, "{y:?}");
        assert!((y[5] - 5.0).abs() < 1e-6, "{y:?}");
        // Edge (0,1): mean of 0, 1, 2, 4, 5, 6.
        assert!((y[1] - 3.0).abs() < 1e-6, "{y:?}");
    }

    #[test]
    fn max_pool_same_ignores_padding_for_negative_values() {
        let x = Tensor::new(&[[-5f32, -4.0], [-3.0, -9.0]], &Device::Cpu).unwrap().reshape((1, 1, 2, 2)).unwrap();
        let y = max_pool_3x3_same(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(y, vec![-3.0; 4]);
    }

    #[test]
    fn missing_or_misshapen_tensors_are_named() {
        let mut weights = formula_weights(&Device::Cpu).unwrap();
        weights.tensors.remove("Mixed_6c.branch7x7dbl_3.bn.running_var");
        let error = FidInceptionV3::from_weights(weights).err().unwrap().to_string();
        assert!(error.contains("Mixed_6c.branch7x7dbl_3.bn.running_var"), "{error}");
    }
}
