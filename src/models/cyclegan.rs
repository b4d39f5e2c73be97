//! CycleGAN generator: junyanz/pytorch-CycleGAN-and-pix2pix `ResnetGenerator` (`resnet_9blocks` by default) with
//! instance normalisation (affine=False, eps 1e-5, so convolutions carry biases), exactly as it computes in eval mode.
//!
//! Layout of `model` (an `nn.Sequential`, whose indices are the state_dict names), for `n` residual blocks:
//! `0` ReflectionPad(3), `1` Conv 7x7 in->ngf, `2` IN, `3` ReLU, `4` Conv 3x3 s2 ngf->2ngf, `5` IN, `6` ReLU,
//! `7` Conv 3x3 s2 2ngf->4ngf, `8` IN, `9` ReLU, `10..10+n` ResnetBlocks (`conv_block`: `0` ReflectionPad(1),
//! `1` Conv 3x3, `2` IN, `3` ReLU, [`4` Dropout], ReflectionPad(1), Conv 3x3 (`5`, or `6` with dropout), IN),
//! `10+n` ConvTranspose 3x3 s2 p1 op1 4ngf->2ngf, IN, ReLU, `13+n` ConvTranspose 2ngf->ngf, IN, ReLU,
//! `16+n` ReflectionPad(3), `17+n` Conv 7x7 ngf->out, `18+n` Tanh. For `n = 9`: `model.19`, `model.22`, `model.26`.
//!
//! The card carries `ngf`, `n_blocks`, `input_nc`, `output_nc` (default: `card.channels`), `use_dropout` (0/1) and
//! `direction_b2a` (0: this is `G_A`, domain A to B; 1: `G_B`, B to A); `card.labels` names the domains [A, B].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::models::card::{ModelCard, ModelKind, Provenance};
use crate::models::densenet::SeededRng;
use crate::models::error::ModelError;
use crate::models::fast_conv;
use crate::models::op_profile;
use crate::models::upload_cache::upload_cache_guard;
use crate::models::weights::Weights;
// The training ops serve inference too: one pass per plane instead of a chain of candle ops.
use crate::train::{fused_instance_norm, reflection_pad};

/// InstanceNorm epsilon of PyTorch's default.
pub(crate) const INSTANCE_NORM_EPS: f64 = 1e-5;
/// Downsampling steps of the junyanz generator; input sides must be multiples of 2^2.
const N_DOWNSAMPLING: usize = 2;
/// Input sides must be a multiple of this.
pub const SIDE_MULTIPLE_PX: usize = 4;
/// Smallest side whose reflection paddings stay valid at every scale (pad 1 at 1/4 resolution needs 2 px).
const MIN_SIDE_PX: usize = 8;

/// Which way a generator translates between the card's two domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Domain A to domain B (`netG_A`).
    AToB,
    /// Domain B to domain A (`netG_B`).
    BToA,
}

impl Direction {
    /// The CLI spelling, `a2b` or `b2a`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::AToB => "a2b",
            Direction::BToA => "b2a",
        }
    }
}

/// Architecture hyper-parameters, read from and written to `card.hyper`.
#[derive(Clone, Debug, PartialEq)]
pub struct CycleGanConfig {
    /// Filters of the first convolution (`ngf`).
    pub ngf: usize,
    /// Residual blocks (`n_blocks`; 9 for `resnet_9blocks`).
    pub n_blocks: usize,
    /// Input channels (`input_nc`, 1 or 3).
    pub input_nc: usize,
    /// Output channels (`output_nc`, 1 or 3).
    pub output_nc: usize,
    /// Whether the blocks had dropout (`--no_dropout` off), which shifts the second block conv to index 6.
    pub use_dropout: bool,
    /// Which way the generator maps.
    pub direction: Direction,
}

impl CycleGanConfig {
    /// Reads the hyper-parameters from a card.
    pub fn from_card(card: &ModelCard) -> Result<Self, ModelError> {
        let read = |key: &str, default: Option<usize>| -> Result<usize, ModelError> {
            match (card.hyper.get(key), default) {
                (Some(&value), _) if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= 1e6 => {
                    Ok(value as usize)
                }
                (Some(&value), _) => Err(bad_card(key, format!("{value} is not a non-negative integer"))),
                (None, Some(default)) => Ok(default),
                (None, None) => Err(bad_card(key, "missing".to_owned())),
            }
        };
        let config = Self {
            ngf: read("ngf", None)?,
            n_blocks: read("n_blocks", None)?,
            input_nc: read("input_nc", Some(card.channels))?,
            output_nc: read("output_nc", Some(card.channels))?,
            use_dropout: read("use_dropout", Some(0))? != 0,
            direction: if read("direction_b2a", Some(0))? != 0 { Direction::BToA } else { Direction::AToB },
        };
        if config.ngf == 0 {
            return Err(bad_card("ngf", "must be at least 1".to_owned()));
        }
        for (key, channels) in [("input_nc", config.input_nc), ("output_nc", config.output_nc)] {
            if channels != 1 && channels != 3 {
                return Err(bad_card(key, format!("{channels} channels; expected 1 or 3")));
            }
        }
        Ok(config)
    }

    /// The hyper-parameters as card entries.
    pub fn to_hyper(&self) -> BTreeMap<String, f64> {
        let mut hyper = BTreeMap::new();
        hyper.insert("ngf".to_owned(), self.ngf as f64);
        hyper.insert("n_blocks".to_owned(), self.n_blocks as f64);
        hyper.insert("input_nc".to_owned(), self.input_nc as f64);
        hyper.insert("output_nc".to_owned(), self.output_nc as f64);
        hyper.insert("use_dropout".to_owned(), f64::from(u8::from(self.use_dropout)));
        hyper.insert("direction_b2a".to_owned(), f64::from(u8::from(self.direction == Direction::BToA)));
        hyper
    }

    /// A card for this generator; `domains` names domain A and domain B.
    pub fn card(&self, name: &str, domains: [&str; 2], provenance: Provenance) -> ModelCard {
        ModelCard {
            kind: ModelKind::CycleganGenerator,
            name: name.to_owned(),
            labels: domains.iter().map(|d| (*d).to_owned()).collect(),
            resolution: 0,
            channels: self.input_nc,
            hyper: self.to_hyper(),
            input_normalization: None,
            output_range: Some([-1.0, 1.0]),
            untrained: false,
            provenance,
            metrics: BTreeMap::new(),
        }
    }

    /// Index of the second convolution inside a residual block's `conv_block`.
    fn second_block_conv(&self) -> usize {
        if self.use_dropout { 6 } else { 5 }
    }

    /// Every tensor name with its shape, in junyanz's state_dict order.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let g = self.ngf;
        let mut shapes = Vec::new();
        let mut conv = |index: String, shape: Vec<usize>, bias: usize| {
            shapes.push((format!("model.{index}.weight"), shape));
            shapes.push((format!("model.{index}.bias"), vec![bias]));
        };
        conv("1".into(), vec![g, self.input_nc, 7, 7], g);
        conv("4".into(), vec![2 * g, g, 3, 3], 2 * g);
        conv("7".into(), vec![4 * g, 2 * g, 3, 3], 4 * g);
        for block in 0..self.n_blocks {
            for inner in [1, self.second_block_conv()] {
                conv(format!("{}.conv_block.{inner}", 10 + block), vec![4 * g, 4 * g, 3, 3], 4 * g);
            }
        }
        let n = self.n_blocks;
        // ConvTranspose2d weights are [in, out, k, k].
        conv(format!("{}", 10 + n), vec![4 * g, 2 * g, 3, 3], 2 * g);
        conv(format!("{}", 13 + n), vec![2 * g, g, 3, 3], g);
        conv(format!("{}", 17 + n), vec![self.output_nc, g, 7, 7], self.output_nc);
        shapes
    }
}

fn bad_card(key: &str, reason: String) -> ModelError {
    ModelError::BadInput { argument: format!("model card hyper `{key}`"), reason }
}

/// A biased convolution (or transposed convolution) with its geometry.
struct Conv {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    padding: usize,
    transposed: bool,
    /// For the transposed convolutions (3x3, stride 2, padding 1, output_padding 1): the same operator as four 2x2
    /// sub-pixel phase kernels, computed on the low-resolution input by [`fast_conv::subpixel_upscale`].
    phase_kernels: Option<Tensor>,
}

impl Conv {
    fn load(
        weights: &Weights,
        index: &str,
        shape: &[usize],
        stride: usize,
        padding: usize,
        transposed: bool,
    ) -> Result<Self, ModelError> {
        let out_channels = if transposed { shape[1] } else { shape[0] };
        let weight = weights.get(&format!("model.{index}.weight"), shape)?;
        let bias = weights.get(&format!("model.{index}.bias"), &[out_channels])?.reshape((1, out_channels, 1, 1))?;
        let subpixel = transposed && stride == 2 && padding == 1 && shape.get(2..) == Some(&[3, 3][..]);
        let phase_kernels =
            if subpixel { Some(fast_conv::subpixel_kernels_from_transposed_3x3(&weight)?) } else { None };
        Ok(Self { weight, bias, stride, padding, transposed, phase_kernels })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        // The sub-pixel form on the CPU fast path and on CUDA (GEMMs on shifted views: candle's CUDA transposed
        // convolution is a direct, untiled kernel); candle's transposed convolution elsewhere.
        if let Some(phase_kernels) = &self.phase_kernels
            && (fast_conv::is_cpu_f32(x) || crate::models::shifted_conv::applies_on_device(x, phase_kernels, 1, 1))
        {
            let maps_out = self.bias.elem_count();
            Ok(fast_conv::subpixel_upscale(x, phase_kernels, maps_out, &fast_conv::Epilogue::bias(Some(&self.bias)))?)
        } else if self.transposed {
            // kernel 3, stride 2, padding 1, output_padding 1: exactly doubles the size.
            let y = x.conv_transpose2d(&self.weight, self.padding, 1, self.stride, 1)?;
            Ok(y.broadcast_add(&self.bias)?)
        } else {
            Ok(fast_conv::conv2d_nchw(x, &self.weight, Some(&self.bias), self.stride, self.padding)?)
        }
    }
}

/// The source index of position `i` of a side of `size` reflection-padded by `pad` (< `size`) on both ends:
/// mirrored about the edge pixel, which is not repeated.
pub(crate) fn reflected_index(i: usize, pad: usize, size: usize) -> usize {
    let (i, last) = (i as i64 - pad as i64, size as i64 - 1);
    let reflected = if i < 0 {
        -i
    } else if i > last {
        2 * last - i
    } else {
        i
    };
    reflected as usize
}

/// `nn.ReflectionPad2d(pad)`: mirror without repeating the edge pixel (`train::reflection_pad`: one copy pass on the
/// CPU), with the error a user sees when an image is too small for it.
fn reflection_pad(x: &Tensor, pad: usize) -> Result<Tensor, ModelError> {
    let (_, _, height, width) = x.dims4()?;
    for size in [height, width] {
        if pad >= size {
            return Err(ModelError::BadInput {
                argument: "generator input".to_owned(),
                reason: format!("reflection padding {pad} needs a side larger than {size} px at this scale"),
            });
        }
    }
    let padded = reflection_pad::reflection_pad(x, pad)?;
    op_profile::mark("reflection padding")?;
    Ok(padded)
}

/// `nn.InstanceNorm2d(affine=False)` (each sample and channel normalised over its pixels, biased variance), then a
/// ReLU or nothing: the training op, which makes two passes over each plane on the CPU (one kernel on CUDA) where
/// the composed ops make eight (and which composes them itself on other devices).
fn instance_norm(x: &Tensor, activation: NormActivation) -> Result<Tensor, ModelError> {
    let negative_slope = match activation {
        NormActivation::Relu => 0.0,
        NormActivation::Identity => 1.0,
    };
    let normalised = fused_instance_norm::instance_norm_leaky(x, negative_slope, INSTANCE_NORM_EPS)?;
    op_profile::mark("instance norm + activation")?;
    Ok(normalised)
}

/// What follows an instance norm in the generator.
#[derive(Clone, Copy, Debug)]
enum NormActivation {
    Relu,
    Identity,
}

/// `ResnetBlock`: x + IN(conv(pad(ReLU(IN(conv(pad(x))))))).
struct ResnetBlock {
    conv1: Conv,
    conv2: Conv,
}

impl ResnetBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let y = instance_norm(&self.conv1.forward(&reflection_pad(x, 1)?)?, NormActivation::Relu)?;
        let y = instance_norm(&self.conv2.forward(&reflection_pad(&y, 1)?)?, NormActivation::Identity)?;
        Ok((x + y)?)
    }
}

/// The CycleGAN ResnetGenerator with its card.
pub struct CycleGanGenerator {
    card: ModelCard,
    config: CycleGanConfig,
    stem: Conv,
    downsample: [Conv; 2],
    blocks: Vec<ResnetBlock>,
    upsample: [Conv; 2],
    head: Conv,
}

impl CycleGanGenerator {
    /// Builds the generator from weights whose card describes a CycleGAN generator.
    pub fn from_weights(weights: Weights) -> Result<Self, ModelError> {
        if weights.card.kind != ModelKind::CycleganGenerator {
            return Err(ModelError::BadInput {
                argument: "model card kind".to_owned(),
                reason: format!("{:?} is not a CycleGAN generator", weights.card.kind),
            });
        }
        let config = CycleGanConfig::from_card(&weights.card)?;
        let (g, n) = (config.ngf, config.n_blocks);
        let w = &weights;
        let stem = Conv::load(w, "1", &[g, config.input_nc, 7, 7], 1, 0, false)?;
        let downsample = [
            Conv::load(w, "4", &[2 * g, g, 3, 3], 2, 1, false)?,
            Conv::load(w, "7", &[4 * g, 2 * g, 3, 3], 2, 1, false)?,
        ];
        let mut blocks = Vec::with_capacity(n);
        for block in 0..n {
            let prefix = format!("{}.conv_block", 10 + block);
            blocks.push(ResnetBlock {
                conv1: Conv::load(w, &format!("{prefix}.1"), &[4 * g, 4 * g, 3, 3], 1, 0, false)?,
                conv2: Conv::load(
                    w,
                    &format!("{prefix}.{}", config.second_block_conv()),
                    &[4 * g, 4 * g, 3, 3],
                    1,
                    0,
                    false,
                )?,
            });
        }
        let upsample = [
            Conv::load(w, &format!("{}", 10 + n), &[4 * g, 2 * g, 3, 3], 2, 1, true)?,
            Conv::load(w, &format!("{}", 13 + n), &[2 * g, g, 3, 3], 2, 1, true)?,
        ];
        let head = Conv::load(w, &format!("{}", 17 + n), &[config.output_nc, g, 7, 7], 1, 0, false)?;
        Ok(Self { card: weights.card, config, stem, downsample, blocks, upsample, head })
    }

    /// Loads a safetensors weights file with a CycleGAN card onto `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self, ModelError> {
        Self::from_weights(Weights::load(path, ModelKind::CycleganGenerator, device)?)
    }

    /// Randomly initialised weights as junyanz `init_weights('normal', 0.02)` makes them (N(0, 0.02) weights, zero
    /// biases); deterministic in `seed`.
    pub fn random_weights(card: &ModelCard, device: &Device, seed: u64) -> Result<Weights, ModelError> {
        let config = CycleGanConfig::from_card(card)?;
        let mut rng = SeededRng::new(seed);
        let mut tensors = HashMap::new();
        for (name, shape) in config.tensor_shapes() {
            let count: usize = shape.iter().product();
            let values: Vec<f32> = if name.ends_with(".bias") {
                vec![0.0; count]
            } else {
                (0..count).map(|_| (rng.normal() * 0.02) as f32).collect()
            };
            tensors.insert(name, Tensor::from_vec(values, shape, device)?);
        }
        Ok(Weights { card: card.clone(), tensors })
    }

    /// An untrained generator for `card` (see [`Self::random_weights`]).
    pub fn random(card: &ModelCard, device: &Device, seed: u64) -> Result<Self, ModelError> {
        Self::from_weights(Self::random_weights(card, device, seed)?)
    }

    /// The model card.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// The architecture hyper-parameters.
    pub fn config(&self) -> &CycleGanConfig {
        &self.config
    }

    fn check_input(&self, x: &Tensor) -> Result<(), ModelError> {
        let bad = |reason: String| ModelError::BadInput { argument: "generator input".to_owned(), reason };
        let expected_channels = self.config.input_nc;
        let (_, channels, height, width) = x
            .dims4()
            .map_err(|_| bad(format!("expected a [N, {expected_channels}, H, W] tensor, got shape {:?}", x.dims())))?;
        if channels != expected_channels {
            return Err(bad(format!("expected {expected_channels} channel(s), got shape {:?}", x.dims())));
        }
        if height % SIDE_MULTIPLE_PX != 0
            || width % SIDE_MULTIPLE_PX != 0
            || height < MIN_SIDE_PX
            || width < MIN_SIDE_PX
        {
            return Err(bad(format!(
                "height and width must be multiples of {SIDE_MULTIPLE_PX} and at least {MIN_SIDE_PX} px, got {height}x{width}"
            )));
        }
        if x.dtype() != DType::F32 {
            return Err(bad(format!("expected float32, got {:?}", x.dtype())));
        }
        Ok(())
    }

    /// Translates `x` [N, C, H, W] in [-1, 1] (H, W multiples of 4) to the other domain, [N, C_out, H, W] in [-1, 1].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        self.check_input(x)?;
        let _upload_cache = upload_cache_guard(x.device());
        let mut y = instance_norm(&self.stem.forward(&reflection_pad(x, 3)?)?, NormActivation::Relu)?;
        for conv in &self.downsample {
            y = instance_norm(&conv.forward(&y)?, NormActivation::Relu)?;
        }
        for block in &self.blocks {
            y = block.forward(&y)?;
        }
        for conv in &self.upsample {
            y = instance_norm(&conv.forward(&y)?, NormActivation::Relu)?;
        }
        let image = self.head.forward(&reflection_pad(&y, 3)?)?.tanh()?;
        op_profile::mark("tanh")?;
        Ok(image)
    }

    /// Number of halvings inside the generator.
    pub fn downsampling_steps(&self) -> usize {
        N_DOWNSAMPLING
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(n_blocks: usize) -> CycleGanConfig {
        CycleGanConfig { ngf: 4, n_blocks, input_nc: 1, output_nc: 1, use_dropout: false, direction: Direction::AToB }
    }

    #[test]
    fn tensor_names_follow_junyanz_indices() {
        let names: Vec<String> = config(9).tensor_shapes().into_iter().map(|(n, _)| n).collect();
        for expected in [
            "model.1.weight",
            "model.4.bias",
            "model.7.weight",
            "model.10.conv_block.1.weight",
            "model.18.conv_block.5.bias",
            "model.19.weight",
            "model.22.weight",
            "model.26.weight",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
        }
        let names: Vec<String> = config(6).tensor_shapes().into_iter().map(|(n, _)| n).collect();
        assert!(names.iter().any(|n| n == "model.16.weight") && names.iter().any(|n| n == "model.23.bias"));
    }

    #[test]
    fn reflection_pad_mirrors_without_the_edge() {
        let x = Tensor::arange(0f32, 4.0, &Device::Cpu).unwrap().reshape((1, 1, 1, 4)).unwrap();
        let x = x.repeat((1, 1, 3, 1)).unwrap();
        let y = reflection_pad(&x, 2).unwrap();
        let row: Vec<f32> = y.get(0).unwrap().get(0).unwrap().get(0).unwrap().to_vec1().unwrap();
        assert_eq!(row, vec![2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0, 1.0]);
    }

    #[test]
    fn output_keeps_size_and_range_and_bad_sizes_are_refused() {
        let card = config(2).card("t", ["A", "B"], Provenance::default());
        let net = CycleGanGenerator::random(&card, &Device::Cpu, 9).unwrap();
        let x = Tensor::zeros((1, 1, 12, 20), DType::F32, &Device::Cpu).unwrap();
        let y = net.forward(&x).unwrap();
        assert_eq!(y.dims(), &[1, 1, 12, 20]);
        let x = Tensor::zeros((1, 1, 30, 20), DType::F32, &Device::Cpu).unwrap();
        let message = net.forward(&x).err().unwrap().to_string();
        assert!(message.contains("multiples of 4") && message.contains("30x20"), "{message}");
        let x = Tensor::zeros((1, 3, 32, 32), DType::F32, &Device::Cpu).unwrap();
        let message = net.forward(&x).err().unwrap().to_string();
        assert!(message.contains("1 channel"), "{message}");
    }
}
