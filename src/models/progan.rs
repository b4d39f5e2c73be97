//! The conditional ProGAN generator of Thorax_GAN (`ProGAN/networks.py: G_paper`) evaluated at `lod = 0`.
//!
//! The computation, exactly as the original TensorFlow graph does it (research/seed.md 1.5):
//! 1. `combo = pixel_norm(concat(latents, labels))` over all `latent_size + label_size` values;
//! 2. `4x4/Dense` (gain sqrt(2)/4), reshaped NCHW to `[nf(1), 4, 4]` (column `c*16 + y*4 + x`), + bias, leaky ReLU
//!    0.2, pixel norm; `4x4/Conv` 3x3;
//! 3. per resolution 8..R: `Conv0_up`, TF `conv2d_transpose` (stride 2, SAME) with the 4x4 kernel made by summing
//!    the four shifted copies of the 3x3 kernel, then `Conv1` 3x3; + bias, leaky ReLU, pixel norm after each;
//! 4. `ToRGB_lod0`, a linear 1x1 conv (gain 1) + bias.
//!
//! Weights files hold the TF variables under their TF names and TF layouts (`[in, out]` dense, `[kh, kw, in, out]`
//! conv, `[kh, kw, out, in]` for `Conv0_up`), already multiplied by the equalised-learning-rate scale
//! `gain / sqrt(fan_in)`; the card says so with `hyper.wscale_applied = 1`.
//!
//! `Conv0_up` runs as a sub-pixel convolution: each of the four output phases (row parity, column parity) is a 2x2
//! convolution of the input with taps of the 4x4 kernel, all four computed by one GEMM and interleaved
//! ([`fast_conv::subpixel_upscale`]). That is the transposed convolution's own arithmetic (4 multiply-adds per output
//! value and channel pair, against 9 for nearest-upsample-then-3x3). On the CPU every convolution runs through
//! [`fast_conv`] with bias, leaky ReLU and pixel norm fused into its output tiles; other devices use candle's conv2d.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::models::card::{ModelCard, ModelKind, Provenance};
use crate::models::error::ModelError;
use crate::models::fast_conv::{self, Activation, Epilogue};
use crate::models::op_profile;
use crate::models::upload_cache::upload_cache_guard;
use crate::models::weights::Weights;

/// Pixel-norm epsilon of the original (`pixelnorm_epsilon=1e-8`).
const PIXEL_NORM_EPSILON: f64 = 1e-8;
/// Negative slope of the original leaky ReLU.
const LEAKY_RELU_ALPHA: f64 = 0.2;
/// `hyper` key that records that the stored weights already include the runtime weight scale.
pub const WSCALE_APPLIED_KEY: &str = "wscale_applied";

/// The architecture of one `G_paper` instance, from its model card.
#[derive(Clone, Debug, PartialEq)]
pub struct ProganArchitecture {
    pub resolution_px: usize,
    pub latent_size: usize,
    pub label_size: usize,
    pub channels: usize,
    pub fmap_base: f64,
    pub fmap_decay: f64,
    pub fmap_max: usize,
}

/// How a stored tensor is initialised and scaled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TensorRole {
    /// A weight drawn N(0, 1) and multiplied at run time by `gain / sqrt(fan_in)`.
    Weight { gain: f64, fan_in: usize },
    /// A bias, zero-initialised and never scaled.
    Bias,
}

/// One tensor of the generator as the original defines it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// TF variable name, e.g. `8x8/Conv0_up/weight`.
    pub name: String,
    /// TF layout shape.
    pub shape: Vec<usize>,
    pub role: TensorRole,
}

impl TensorSpec {
    /// The equalised-learning-rate factor `np.float32(gain / np.sqrt(fan_in))` (1 for biases).
    pub fn wscale(&self) -> f32 {
        match self.role {
            TensorRole::Weight { gain, fan_in } => (gain / (fan_in as f64).sqrt()) as f32,
            TensorRole::Bias => 1.0,
        }
    }
}

impl ProganArchitecture {
    /// Reads and checks the architecture from a card: `resolution`, `channels`, `labels` and `hyper` keys
    /// `latent_size` (default `nf(0)`), `fmap_base` (8192), `fmap_decay` (1.0), `fmap_max` (512).
    pub fn from_card(card: &ModelCard) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::BadInput { argument: "model card".to_owned(), reason };
        let resolution_px = card.resolution;
        if !resolution_px.is_power_of_two() || !(4..=1024).contains(&resolution_px) {
            return Err(bad(format!("resolution {resolution_px} is not a power of two from 4 to 1024")));
        }
        if !(1..=4).contains(&card.channels) {
            return Err(bad(format!("channels {} is not 1 to 4", card.channels)));
        }
        let positive = |key: &str, default: f64| -> Result<f64, ModelError> {
            let value = card.hyper.get(key).copied().unwrap_or(default);
            if value.is_finite() && value > 0.0 {
                Ok(value)
            } else {
                Err(bad(format!("hyper `{key}` = {value} is not a positive number")))
            }
        };
        let whole = |key: &str, value: f64| -> Result<usize, ModelError> {
            if value.fract() == 0.0 && value <= 65536.0 {
                Ok(value as usize)
            } else {
                Err(bad(format!("hyper `{key}` = {value} is not a whole number up to 65536")))
            }
        };
        if let Some(&applied) = card.hyper.get(WSCALE_APPLIED_KEY)
            && applied != 1.0
        {
            return Err(bad(format!(
                "hyper `{WSCALE_APPLIED_KEY}` = {applied}: only weights with the runtime scale applied are supported"
            )));
        }
        let fmap_base = positive("fmap_base", 8192.0)?;
        let fmap_decay = positive("fmap_decay", 1.0)?;
        let fmap_max = whole("fmap_max", positive("fmap_max", 512.0)?)?;
        let mut architecture = Self {
            resolution_px,
            latent_size: 0,
            label_size: card.labels.len(),
            channels: card.channels,
            fmap_base,
            fmap_decay,
            fmap_max,
        };
        let default_latent = architecture.nf(0) as f64;
        architecture.latent_size = whole("latent_size", positive("latent_size", default_latent)?)?;
        for stage in 0..architecture.resolution_log2() {
            if architecture.nf(stage) == 0 {
                return Err(bad(format!(
                    "fmap_base {fmap_base} with fmap_decay {fmap_decay} leaves stage {stage} with no feature maps"
                )));
            }
        }
        Ok(architecture)
    }

    /// The card `hyper` entries that describe this architecture (with `wscale_applied = 1`).
    pub fn hyper(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("latent_size".to_owned(), self.latent_size as f64),
            ("fmap_base".to_owned(), self.fmap_base),
            ("fmap_decay".to_owned(), self.fmap_decay),
            ("fmap_max".to_owned(), self.fmap_max as f64),
            (WSCALE_APPLIED_KEY.to_owned(), 1.0),
        ])
    }

    /// `log2(resolution)`.
    pub fn resolution_log2(&self) -> usize {
        self.resolution_px.trailing_zeros() as usize
    }

    /// Feature maps at `stage`: `min(int(fmap_base / 2^(stage * fmap_decay)), fmap_max)`, with Thorax_GAN's tweak
    /// that stages from 8 on (512 px and up) use the count of the stage before.
    pub fn nf(&self, stage: usize) -> usize {
        let stage = if stage >= 8 { stage - 1 } else { stage };
        let maps = (self.fmap_base / 2f64.powf(stage as f64 * self.fmap_decay)).floor();
        (maps.max(0.0) as usize).min(self.fmap_max)
    }

    /// Every tensor the lod-0 generator uses, in the original's creation order, with TF names and layouts.
    /// The other `ToRGB_lodN` layers and the `lod` variable are not needed at lod 0 and are not included.
    pub fn tensor_specs(&self) -> Vec<TensorSpec> {
        let sqrt2 = std::f64::consts::SQRT_2;
        let combo = self.latent_size + self.label_size;
        let c4 = self.nf(1);
        let mut specs = Vec::new();
        let mut push = |name: String, shape: Vec<usize>, gain: f64, fan_in: usize, bias_len: usize| {
            specs.push(TensorSpec { name: format!("{name}/weight"), shape, role: TensorRole::Weight { gain, fan_in } });
            specs.push(TensorSpec { name: format!("{name}/bias"), shape: vec![bias_len], role: TensorRole::Bias });
        };
        push("4x4/Dense".to_owned(), vec![combo, c4 * 16], sqrt2 / 4.0, combo, c4);
        push("4x4/Conv".to_owned(), vec![3, 3, c4, c4], sqrt2, 9 * c4, c4);
        let mut maps_in = c4;
        for res_log2 in 3..=self.resolution_log2() {
            let side = 1usize << res_log2;
            let maps_out = self.nf(res_log2 - 1);
            push(format!("{side}x{side}/Conv0_up"), vec![3, 3, maps_out, maps_in], sqrt2, 9 * maps_in, maps_out);
            push(format!("{side}x{side}/Conv1"), vec![3, 3, maps_out, maps_out], sqrt2, 9 * maps_out, maps_out);
            maps_in = maps_out;
        }
        push("ToRGB_lod0".to_owned(), vec![1, 1, maps_in, self.channels], 1.0, maps_in, self.channels);
        specs
    }
}

/// A convolution with its bias, in candle layout.
struct ConvLayer {
    /// `[out, in, kh, kw]`.
    weight: Tensor,
    /// `[1, out, 1, 1]`.
    bias: Tensor,
    padding: usize,
}

/// `Conv0_up` prepared as four 2x2 sub-pixel kernels.
struct UpscaleConv {
    /// `[4 * out, in, 2, 2]`, phases in order (row parity, column parity) = (0,0), (0,1), (1,0), (1,1).
    phase_kernels: Tensor,
    /// `[1, out, 1, 1]`.
    bias: Tensor,
    maps_out: usize,
}

struct Block {
    conv0_up: UpscaleConv,
    conv1: ConvLayer,
}

/// The conditional ProGAN generator at lod 0.
pub struct ProganGenerator {
    card: ModelCard,
    architecture: ProganArchitecture,
    device: Device,
    /// `[latent + labels, 16 * nf(1)]`, the TF layout.
    dense_weight: Tensor,
    /// `[1, nf(1), 1, 1]`.
    dense_bias: Tensor,
    conv_4x4: ConvLayer,
    blocks: Vec<Block>,
    to_rgb: ConvLayer,
}

impl ProganGenerator {
    /// Builds the generator from loaded weights, checking every tensor's presence and shape against the card.
    pub fn from_weights(weights: Weights) -> Result<Self, ModelError> {
        if weights.card.kind != ModelKind::ProganGenerator {
            return Err(ModelError::BadInput {
                argument: "model card".to_owned(),
                reason: format!("kind is {:?}, expected ProganGenerator", weights.card.kind),
            });
        }
        let architecture = ProganArchitecture::from_card(&weights.card)?;
        let specs = architecture.tensor_specs();
        let mut by_name = HashMap::with_capacity(specs.len());
        for spec in &specs {
            let tensor = weights.get(&spec.name, &spec.shape)?;
            let finite = tensor.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?.iter().all(|v| v.is_finite());
            if !finite {
                return Err(ModelError::NonFinite { name: spec.name.clone() });
            }
            by_name.insert(spec.name.as_str(), tensor.to_dtype(DType::F32)?);
        }
        let take =
            |name: &str| by_name.get(name).cloned().ok_or_else(|| ModelError::MissingTensor { name: name.to_owned() });
        let bias4 = |name: &str| -> Result<Tensor, ModelError> {
            let bias = take(name)?;
            let len = bias.dims1()?;
            Ok(bias.reshape((1, len, 1, 1))?)
        };
        let conv = |prefix: &str, padding: usize| -> Result<ConvLayer, ModelError> {
            // [kh, kw, in, out] -> [out, in, kh, kw]
            let weight = take(&format!("{prefix}/weight"))?.permute((3, 2, 0, 1))?.contiguous()?;
            Ok(ConvLayer { weight, bias: bias4(&format!("{prefix}/bias"))?, padding })
        };
        let mut blocks = Vec::new();
        for res_log2 in 3..=architecture.resolution_log2() {
            let side = 1usize << res_log2;
            let prefix = format!("{side}x{side}");
            let up_weight = take(&format!("{prefix}/Conv0_up/weight"))?;
            blocks.push(Block {
                conv0_up: UpscaleConv {
                    phase_kernels: subpixel_kernels(&up_weight)?,
                    bias: bias4(&format!("{prefix}/Conv0_up/bias"))?,
                    maps_out: architecture.nf(res_log2 - 1),
                },
                conv1: conv(&format!("{prefix}/Conv1"), 1)?,
            });
        }
        let device = weights.tensors.values().next().map(|t| t.device().clone()).unwrap_or(Device::Cpu);
        Ok(Self {
            dense_weight: take("4x4/Dense/weight")?,
            dense_bias: bias4("4x4/Dense/bias")?,
            conv_4x4: conv("4x4/Conv", 1)?,
            to_rgb: conv("ToRGB_lod0", 0)?,
            blocks,
            card: weights.card,
            architecture,
            device,
        })
    }

    /// Loads a ProGAN safetensors file (with its card) onto `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self, ModelError> {
        Self::from_weights(Weights::load(path, ModelKind::ProganGenerator, device)?)
    }

    /// A randomly initialised generator (equalised-LR init: weights N(0,1) times their wscale, zero biases) for
    /// untrained placeholders, and its tensors under TF names and layouts, ready for [`crate::models::weights::save`].
    /// Normal draws come from numpy's `RandomState(seed)`, tensor after tensor in creation order.
    pub fn random(card: ModelCard, device: &Device, seed: u32) -> Result<(Self, HashMap<String, Tensor>), ModelError> {
        let architecture = ProganArchitecture::from_card(&card)?;
        let mut rng = NumpyRandomState::new(seed);
        let mut tensors = HashMap::new();
        for spec in architecture.tensor_specs() {
            let count: usize = spec.shape.iter().product();
            let values: Vec<f32> = match spec.role {
                TensorRole::Weight { .. } => {
                    let scale = spec.wscale();
                    (0..count).map(|_| rng.standard_normal() as f32 * scale).collect()
                }
                TensorRole::Bias => vec![0.0; count],
            };
            tensors.insert(spec.name, Tensor::from_vec(values, spec.shape, device)?);
        }
        let generator = Self::from_weights(Weights { card, tensors: tensors.clone() })?;
        Ok((generator, tensors))
    }

    /// The model card.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// The architecture read from the card.
    pub fn architecture(&self) -> &ProganArchitecture {
        &self.architecture
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the generator: `latents` `[N, latent_size]`, `labels` `[N, label_size]` (card order) -> images
    /// `[N, channels, resolution, resolution]`, nominally in [-1, 1] (linear output, not clipped).
    pub fn forward(&self, latents: &Tensor, labels: &Tensor) -> Result<Tensor, ModelError> {
        let architecture = &self.architecture;
        let batch = check_matrix(latents, "latents", architecture.latent_size, "latent_size")?;
        let label_batch = check_matrix(labels, "labels", architecture.label_size, "label count")?;
        if label_batch != batch {
            return Err(ModelError::BadInput {
                argument: "labels".to_owned(),
                reason: format!("{label_batch} label rows for {batch} latents"),
            });
        }
        if batch == 0 {
            return Err(ModelError::BadInput {
                argument: "latents".to_owned(),
                reason: "the batch is empty".to_owned(),
            });
        }
        let latents = latents.to_dtype(DType::F32)?.to_device(&self.device)?;
        let combo = if architecture.label_size == 0 {
            latents
        } else {
            let labels = labels.to_dtype(DType::F32)?.to_device(&self.device)?;
            Tensor::cat(&[&latents, &labels], 1)?
        };
        // After the inputs' upload: a cached request would stay in GPU memory for good.
        let _upload_cache = upload_cache_guard(&self.device);
        let combo = pixel_norm(&combo)?;
        let maps = architecture.nf(1);
        let x = combo.matmul(&self.dense_weight)?.reshape((batch, maps, 4, 4))?;
        let x = fast_conv::apply_epilogue_on_device(&x, &act_norm_epilogue(&self.dense_bias), maps)?;
        op_profile::mark("latent input, dense 4x4 layer")?;
        let mut x = self.conv_4x4.forward_act_norm(&x)?;
        for block in &self.blocks {
            x = block.conv0_up.forward_act_norm(&x)?;
            x = block.conv1.forward_act_norm(&x)?;
        }
        Ok(self.to_rgb.forward_linear(&x)?)
    }
}

impl ConvLayer {
    fn forward_linear(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        fast_conv::conv2d_nchw(x, &self.weight, Some(&self.bias), 1, self.padding)
    }

    fn forward_act_norm(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        fast_conv::conv2d_fused(x, &self.weight, 1, self.padding, None, &act_norm_epilogue(&self.bias))
    }
}

impl UpscaleConv {
    fn forward_act_norm(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        fast_conv::subpixel_upscale(x, &self.phase_kernels, self.maps_out, &act_norm_epilogue(&self.bias))
    }
}

/// `x + bias`, leaky ReLU 0.2 (`max(x * 0.2, x)`), pixel norm over channels, as a convolution epilogue: fused into
/// the convolution's output tiles on the CPU, one kernel on CUDA.
fn act_norm_epilogue(bias: &Tensor) -> Epilogue {
    Epilogue {
        scale: None,
        shift: Some(bias.clone()),
        activation: Activation::LeakyRelu { negative_slope: LEAKY_RELU_ALPHA as f32 },
        pixel_norm_epsilon: Some(PIXEL_NORM_EPSILON as f32),
    }
}

/// The 4x4 kernel of the original's fused upscale: zero-pad the 3x3 kernel `[3, 3, out, in]` to 5x5 and add its
/// four 4x4 windows (`w[1:,1:] + w[:-1,1:] + w[1:,:-1] + w[:-1,:-1]`); result `[4, 4, out, in]`.
fn summed_kernel(weight: &Tensor) -> candle_core::Result<Tensor> {
    let padded = weight.pad_with_zeros(0, 1, 1)?.pad_with_zeros(1, 1, 1)?;
    let window = |dy: usize, dx: usize| padded.narrow(0, dy, 4)?.narrow(1, dx, 4);
    (window(1, 1)? + window(0, 1)?)? + (window(1, 0)? + window(0, 0)?)?
}

/// Taps of the 4x4 transposed-conv kernel that output phase `parity` reads, for input offsets (-1, 0) when even
/// and (0, +1) when odd (with padding 1 these are window positions 0 and 1): output row 2m takes
/// `x[m-1]*k[3] + x[m]*k[1]`, row 2m+1 takes `x[m]*k[2] + x[m+1]*k[0]`.
const PHASE_TAPS: [[u32; 2]; 2] = [[3, 1], [2, 0]];

/// The four 2x2 phase kernels `[4*out, in, 2, 2]` of `Conv0_up` from its TF weight `[3, 3, out, in]`.
fn subpixel_kernels(weight: &Tensor) -> candle_core::Result<Tensor> {
    let summed = summed_kernel(weight)?;
    let device = weight.device();
    let mut phases = Vec::with_capacity(4);
    for row_taps in PHASE_TAPS {
        for col_taps in PHASE_TAPS {
            let rows = Tensor::new(&row_taps, device)?;
            let cols = Tensor::new(&col_taps, device)?;
            // [2, 2, out, in] -> [out, in, 2, 2]
            let kernel = summed.index_select(&rows, 0)?.index_select(&cols, 1)?;
            phases.push(kernel.permute((2, 3, 0, 1))?);
        }
    }
    Tensor::cat(&phases, 0)?.contiguous()
}

/// `x * rsqrt(mean(x^2 over dim 1) + 1e-8)`.
fn pixel_norm(x: &Tensor) -> candle_core::Result<Tensor> {
    let scale = (x.sqr()?.mean_keepdim(1)? + PIXEL_NORM_EPSILON)?.sqrt()?.recip()?;
    x.broadcast_mul(&scale)
}

/// Checks a `[N, width]` input and returns N.
fn check_matrix(tensor: &Tensor, argument: &str, width: usize, what: &str) -> Result<usize, ModelError> {
    match tensor.dims() {
        [rows, columns] if *columns == width => Ok(*rows),
        dims => Err(ModelError::BadInput {
            argument: argument.to_owned(),
            reason: format!("shape {dims:?}, expected [N, {width}] ({what} {width} of this model)"),
        }),
    }
}

/// A model card for a `G_paper` generator: kind, architecture hyper-parameters, output range [-1, 1].
pub fn progan_card(
    name: &str,
    labels: Vec<String>,
    architecture: &ProganArchitecture,
    untrained: bool,
    provenance: Provenance,
) -> ModelCard {
    ModelCard {
        kind: ModelKind::ProganGenerator,
        name: name.to_owned(),
        labels,
        resolution: architecture.resolution_px,
        channels: architecture.channels,
        hyper: architecture.hyper(),
        input_normalization: None,
        output_range: Some([-1.0, 1.0]),
        untrained,
        provenance,
        metrics: BTreeMap::new(),
    }
}

/// How provenance names row `row` of [`latents_from_seed`]`(seed, n, latent_size)`: a seed alone does not say which
/// row of a batch an image is.
pub fn seeded_latent_description(seed: u32, n: usize, latent_size: usize, row: usize) -> String {
    format!("np.random.RandomState({seed}).randn({n}, {latent_size}) row {row}")
}

/// Provenance's `Name=value,...` text of generator `labels` in the card's label order, as `thorax generate` writes
/// it.
pub fn labels_text(label_names: &[String], labels: &[f32]) -> String {
    label_names.iter().zip(labels).map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join(",")
}

/// Latents `[n, latent_size]` (row-major) exactly as `np.random.RandomState(seed).randn(n, latent_size)` gives
/// them (the original sampling notebook uses `RandomState(1000)`), rounded to f32 as the network's float32
/// input does.
pub fn latents_from_seed(seed: u32, n: usize, latent_size: usize) -> Vec<f32> {
    let mut rng = NumpyRandomState::new(seed);
    (0..n * latent_size).map(|_| rng.standard_normal() as f32).collect()
}

/// One generator output value to an 8-bit pixel as the original notebook does:
/// `clip(rint((x + 1) * 127.5), 0, 255)` with round-half-to-even; NaN gives 0.
pub fn to_png_u8(x: f32) -> u8 {
    let scaled = ((x + 1.0) * 127.5).round_ties_even();
    if scaled.is_nan() { 0 } else { scaled.clamp(0.0, 255.0) as u8 }
}

/// numpy's legacy `RandomState`: MT19937 seeded by `init_genrand(seed)`, 53-bit doubles from two 32-bit draws,
/// and the polar Box-Muller `legacy_gauss` that caches its second value.
pub struct NumpyRandomState {
    state: [u32; 624],
    index: usize,
    cached_gauss: Option<f64>,
}

impl NumpyRandomState {
    /// `np.random.RandomState(seed)`.
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let previous = state[i - 1];
            state[i] = 1_812_433_253u32.wrapping_mul(previous ^ (previous >> 30)).wrapping_add(i as u32);
        }
        Self { state, index: 624, cached_gauss: None }
    }

    fn next_u32(&mut self) -> u32 {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        if self.index >= 624 {
            for i in 0..624 {
                let y = (self.state[i] & UPPER) | (self.state[(i + 1) % 624] & LOWER);
                let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    next ^= MATRIX_A;
                }
                self.state[i] = next;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A double in [0, 1) with 53 random bits (`random_sample`).
    pub fn next_f64(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// One standard normal draw (`randn`).
    pub fn standard_normal(&mut self) -> f64 {
        if let Some(cached) = self.cached_gauss.take() {
            return cached;
        }
        loop {
            let x1 = 2.0 * self.next_f64() - 1.0;
            let x2 = 2.0 * self.next_f64() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.cached_gauss = Some(f * x1);
                return f * x2;
            }
        }
    }
}

/// Reference formulations of `Conv0_up` used to prove the sub-pixel path equal to them.
#[cfg(test)]
mod tests {
    use super::*;

    fn random_tensor(shape: &[usize], seed: u32) -> Tensor {
        let mut rng = NumpyRandomState::new(seed);
        let count = shape.iter().product();
        let values: Vec<f32> = (0..count).map(|_| rng.standard_normal() as f32).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// TF `conv2d_transpose(x, k4 [4,4,out,in], stride 2, SAME)` is candle's `conv_transpose2d` with the kernel as
    /// `[in, out, 4, 4]` and padding 1 (SAME pads 1 before and 1 after for this size).
    fn conv_transpose_reference(x: &Tensor, weight: &Tensor) -> Tensor {
        let k4 = summed_kernel(weight).unwrap().permute((3, 2, 0, 1)).unwrap().contiguous().unwrap();
        x.conv_transpose2d(&k4, 1, 0, 2, 1).unwrap()
    }

    /// Nearest x2 upsample, then a 3x3 SAME conv with the kernel rotated 180 degrees and read as [kh, kw, out, in].
    fn upsample_conv_reference(x: &Tensor, weight: &Tensor) -> Tensor {
        let (_, _, h, w) = x.dims4().unwrap();
        let flip = Tensor::new(&[2u32, 1, 0], &Device::Cpu).unwrap();
        let rotated = weight.index_select(&flip, 0).unwrap().index_select(&flip, 1).unwrap();
        let kernel = rotated.permute((2, 3, 0, 1)).unwrap().contiguous().unwrap();
        x.upsample_nearest2d(2 * h, 2 * w).unwrap().conv2d(&kernel, 1, 1, 1, 1).unwrap()
    }

    #[test]
    fn subpixel_upscale_equals_transposed_conv_and_upsample_conv() {
        for (batch, maps_in, maps_out, h, w) in [(2, 3, 5, 4, 4), (1, 8, 4, 5, 7), (3, 1, 2, 1, 1)] {
            let x = random_tensor(&[batch, maps_in, h, w], 7);
            let weight = random_tensor(&[3, 3, maps_out, maps_in], 11);
            let kernels = subpixel_kernels(&weight).unwrap();
            let fast = fast_conv::subpixel_upscale(&x, &kernels, maps_out, &Epilogue::identity()).unwrap();
            let transposed = conv_transpose_reference(&x, &weight);
            let upsampled = upsample_conv_reference(&x, &weight);
            assert_eq!(fast.dims(), &[batch, maps_out, 2 * h, 2 * w]);
            assert_eq!(transposed.dims(), fast.dims());
            assert!(max_abs_diff(&fast, &transposed) < 1e-4);
            assert!(max_abs_diff(&fast, &upsampled) < 1e-4);
        }
    }

    #[test]
    fn numpy_random_state_matches_numpy() {
        // np.random.RandomState(1000).randn(3) and RandomState(0).randn(2) (numpy 1.26 and 2.x agree)
        let mut rng = NumpyRandomState::new(1000);
        let expected_1000 = [-0.8044583035248052, 0.3209315470898572, -0.025482880472072204];
        for expected in expected_1000 {
            assert!((rng.standard_normal() - expected).abs() < 1e-15);
        }
        let mut rng = NumpyRandomState::new(0);
        for expected in [1.764052345967664, 0.4001572083672233] {
            assert!((rng.standard_normal() - expected).abs() < 1e-15);
        }
    }

    #[test]
    fn png_mapping_rounds_half_to_even_and_clips() {
        assert_eq!(to_png_u8(-1.0), 0);
        assert_eq!(to_png_u8(1.0), 255);
        assert_eq!(to_png_u8(-2.0), 0);
        assert_eq!(to_png_u8(3.0), 255);
        assert_eq!(to_png_u8(0.0), 128); // 127.5 rounds to the even 128
        assert_eq!(to_png_u8(f32::NAN), 0);
        // (x + 1) * 127.5 = 2.5 -> 2
        assert_eq!(to_png_u8(2.5 / 127.5 - 1.0), 2);
    }

    #[test]
    fn nf_matches_the_original_table() {
        let architecture = ProganArchitecture {
            resolution_px: 256,
            latent_size: 512,
            label_size: 14,
            channels: 1,
            fmap_base: 8192.0,
            fmap_decay: 1.0,
            fmap_max: 512,
        };
        let maps: Vec<usize> = (0..9).map(|s| architecture.nf(s)).collect();
        assert_eq!(maps, vec![512, 512, 512, 512, 512, 256, 128, 64, 64]);
        let params: usize = architecture.tensor_specs().iter().map(|s| s.shape.iter().product::<usize>()).sum();
        // 23.1 M parameters minus the six unused ToRGB layers (seed.md 1.5)
        assert!((23_000_000..23_200_000).contains(&params), "{params}");
    }
}
