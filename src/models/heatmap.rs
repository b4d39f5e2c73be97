//! Class activation maps of the DenseNet-121 classifier: CAM, Grad-CAM and Grad-CAM++, for one label at a time.
//!
//! All three read the rectified `norm5` feature map `A` ([`DenseNet121::features`], [C, 7, 7] for 224 px input),
//! the tensor the classifier pools, and weigh its channels:
//! - **CAM** (Zhou et al. 2016, exact for this architecture): `M = sum_k W[label, k] * A_k` with the head's
//!   `classifier.0` weights; no ReLU, as in Zhou's reference code, so negative evidence maps to the low end.
//! - **Grad-CAM**: channel weights are the spatial mean of `dY/dA`; `M = ReLU(sum_k w_k * A_k)`.
//! - **Grad-CAM++**: jacobgil/pytorch-grad-cam's `GradCAMPlusPlus` (eq. 19 of arXiv:1710.11063):
//!   `alpha = g^2 / (2 g^2 + sum_ij(A_k) * g^3 + 1e-6)`, zero where `g == 0`, `w_k = sum_ij ReLU(g) * alpha`,
//!   `M = ReLU(sum_k w_k * A_k)`.
//!
//! `Y` is the label's **probability** (after the head's sigmoid) by default: what pytorch-grad-cam's
//! `ClassifierOutputTarget(label)` differentiates on this model, whose head is `Sequential(Linear, Sigmoid)`.
//! [`TargetOutput::Logit`] differentiates the logit instead. For Grad-CAM the choice only rescales the map (it is
//! normalised away) unless the sigmoid saturates; for Grad-CAM++ it changes the map. Gradients come from candle's
//! autograd through the head ([`DenseNet121::logits_from_features`]).
//!
//! Scaling follows pytorch-grad-cam's `BaseCAM` pipeline: `scale_cam_image` (min-max, `(m - min) / (1e-7 + max)`)
//! at feature resolution, OpenCV-style bilinear upsampling (`cv2.resize`, half-pixel centres, edge clamp) to the
//! input size, and a second `scale_cam_image`. A map that is constant (all-zero gradient, saturated sigmoid, all
//! weighted sums <= 0) therefore comes out all zero, never NaN, and the [`Heatmap::note`] says why.
//!
//! Which gradient pytorch-grad-cam sees with its documented DenseNet target `model.features[-1]` depends on the
//! device: torchvision applies `F.relu(features, inplace=True)` after `norm5`, so on the CPU the stored activations
//! alias the rectified map while the tensor hook returns the gradient before the ReLU (zero where `norm5 <= 0`).
//! [`GradientLayer::Norm5BeforeRelu`] reproduces that combination; the default takes the gradient with respect to
//! the rectified map itself, the tensor the classifier pools (pytorch-grad-cam with an explicit ReLU module as
//! target layer). Both are tested against pytorch-grad-cam (`tools/make_heatmap_fixtures.py`).

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device, Tensor, Var};

use crate::models::card::{InputNormalization, ModelCard};
use crate::models::densenet::{DenseNet121, INPUT_SIZE_PX};
use crate::models::error::ModelError;
use crate::models::preprocess::{classifier_input_sized, classifier_side_px, shorter_side_size};

/// pytorch-grad-cam's `scale_cam_image` divides by `1e-7 + max`, so a constant map becomes zeros, not NaN.
const SCALE_EPSILON: f32 = 1e-7;
/// pytorch-grad-cam's Grad-CAM++ denominator epsilon.
const GRADCAM_PLUS_PLUS_EPSILON: f64 = 1e-6;

/// How the channels of the feature map are weighted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeatmapMethod {
    /// Class activation mapping: the classifier weights of the label (exact for global-average-pool heads).
    Cam,
    /// Grad-CAM: the spatial mean of the gradient.
    GradCam,
    /// Grad-CAM++ as pytorch-grad-cam computes it.
    GradCamPlusPlus,
}

impl HeatmapMethod {
    /// Every method, in menu order.
    pub const ALL: [Self; 3] = [Self::Cam, Self::GradCam, Self::GradCamPlusPlus];

    /// The command-line spelling: `cam`, `gradcam` or `gradcampp`.
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::Cam => "cam",
            Self::GradCam => "gradcam",
            Self::GradCamPlusPlus => "gradcampp",
        }
    }

    /// The name shown to people: `CAM`, `Grad-CAM` or `Grad-CAM++`.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Cam => "CAM",
            Self::GradCam => "Grad-CAM",
            Self::GradCamPlusPlus => "Grad-CAM++",
        }
    }

    fn uses_gradients(self) -> bool {
        !matches!(self, Self::Cam)
    }
}

impl fmt::Display for HeatmapMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

impl FromStr for HeatmapMethod {
    type Err = HeatmapError;

    /// Accepts `cam`, `gradcam`, `gradcampp` (also `grad-cam`, `grad-cam++`, `gradcam++`), any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "cam" => Ok(Self::Cam),
            "gradcam" | "grad-cam" => Ok(Self::GradCam),
            "gradcampp" | "gradcam++" | "grad-cam++" | "gradcamplusplus" => Ok(Self::GradCamPlusPlus),
            _ => Err(HeatmapError::UnknownMethod { name: text.to_owned() }),
        }
    }
}

/// The classifier output the gradient methods differentiate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TargetOutput {
    /// The label's probability (after the sigmoid): pytorch-grad-cam's `ClassifierOutputTarget` on this model.
    #[default]
    Probability,
    /// The label's logit (before the sigmoid): never saturates.
    Logit,
}

/// The tensor whose gradient the gradient methods read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GradientLayer {
    /// The rectified `norm5` map the classifier pools (the activations and the gradient of the same tensor).
    #[default]
    RectifiedFeatures,
    /// The gradient at the `norm5` output before the final ReLU (zero where `norm5 <= 0`) with the rectified
    /// activations: what pytorch-grad-cam returns for `target_layers=[model.features[-1]]` on a CPU model.
    Norm5BeforeRelu,
}

/// Everything that selects a heatmap besides the image and the label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HeatmapOptions {
    pub method: HeatmapMethod,
    pub target_output: TargetOutput,
    pub gradient_layer: GradientLayer,
}

impl HeatmapOptions {
    /// `method` with the defaults: probability target, gradient of the rectified feature map.
    pub fn new(method: HeatmapMethod) -> Self {
        Self { method, target_output: TargetOutput::default(), gradient_layer: GradientLayer::default() }
    }
}

/// A single-channel float map, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct GrayMap {
    pub width_px: usize,
    pub height_px: usize,
    pub values: Vec<f32>,
}

impl GrayMap {
    /// The value at column `x`, row `y`; 0 outside the map.
    pub fn get(&self, x: usize, y: usize) -> f32 {
        if x >= self.width_px {
            return 0.0;
        }
        self.values.get(y * self.width_px + x).copied().unwrap_or(0.0)
    }
}

/// One heatmap: a label of one image with one method.
#[derive(Clone, Debug, PartialEq)]
pub struct Heatmap {
    /// The label's name, as the classifier card spells it.
    pub label: String,
    /// The label's position in the classifier card.
    pub label_index: usize,
    pub options: HeatmapOptions,
    /// The classifier's probability of the label for this image.
    pub probability: f32,
    /// The weighted channel sum at feature resolution before any ReLU or scaling (unnormalised scores).
    pub raw: GrayMap,
    /// The map at feature resolution after ReLU (Grad-CAM, Grad-CAM++) and min-max scaling, in [0, 1].
    pub scaled: GrayMap,
    /// Why the map is blank, when it is (zero gradient, saturated probability, constant map).
    pub note: Option<String>,
}

impl Heatmap {
    /// The map at the classifier input (224 x 224 for the crop the classifier saw), in [0, 1]: exactly what
    /// pytorch-grad-cam returns (`cv2.resize` of the scaled map, scaled again).
    pub fn at_input_size(&self, width_px: usize, height_px: usize) -> GrayMap {
        let geometry = Geometry::identity(width_px, height_px, self.scaled.width_px, self.scaled.height_px);
        upsample_and_rescale(&self.scaled, &geometry)
    }

    /// The map over the whole original image of `width_px` x `height_px`, in [0, 1], undoing the classifier's
    /// preprocessing (shorter side resized to 224, centre crop 224). Pixels the crop cut away are 0; scaling uses
    /// the pixels inside the crop. For a square image this equals [`Self::at_input_size`] at that size.
    pub fn at_image_size(&self, width_px: usize, height_px: usize) -> GrayMap {
        let geometry = Geometry::center_crop(width_px, height_px, self.scaled.width_px, self.scaled.height_px);
        upsample_and_rescale(&self.scaled, &geometry)
    }

    /// True when the map carries no information (all zero).
    pub fn is_blank(&self) -> bool {
        self.scaled.values.iter().all(|&v| v == 0.0)
    }
}

/// Why a heatmap could not be made. Messages name the argument and the reason.
#[derive(Debug, thiserror::Error)]
pub enum HeatmapError {
    #[error("unknown heatmap target `{name}`; this classifier's labels are: {valid} (or `all`)")]
    UnknownTarget { name: String, valid: String },
    #[error("heatmap target index {index} is out of range: the classifier has {count} labels")]
    TargetOutOfRange { index: usize, count: usize },
    #[error("unknown heatmap method `{name}`; use cam, gradcam or gradcampp")]
    UnknownMethod { name: String },
    #[error("invalid heatmap input `{argument}`: {reason}")]
    BadInput { argument: String, reason: String },
    #[error("the {what} holds a NaN or infinite value at flat index {index}")]
    NonFinite { what: &'static str, index: usize },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("heatmap tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// The label indices named by `spec`: one label name of the card (exact spelling), a comma-separated list of
/// names, or `all` (every label, card order). Unknown names give an error listing the valid ones.
pub fn resolve_targets(card: &ModelCard, spec: &str) -> Result<Vec<usize>, HeatmapError> {
    let unknown = |name: &str| HeatmapError::UnknownTarget { name: name.to_owned(), valid: card.labels.join(", ") };
    if spec.trim().eq_ignore_ascii_case("all") {
        return Ok((0..card.labels.len()).collect());
    }
    let mut targets = Vec::new();
    for name in spec.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(unknown(spec));
        }
        let index = card.label_index(name).ok_or_else(|| unknown(name))?;
        if !targets.contains(&index) {
            targets.push(index);
        }
    }
    Ok(targets)
}

/// Heatmaps of `targets` (label indices, card order) for one preprocessed image `input` [1, 3, 224, 224].
/// The network's features are computed once; each gradient target costs one backward pass through the head only.
pub fn heatmaps(
    net: &DenseNet121,
    input: &Tensor,
    targets: &[usize],
    options: HeatmapOptions,
) -> Result<Vec<Heatmap>, HeatmapError> {
    match input.dims() {
        [1, _, _, _] => {}
        dims => {
            return Err(HeatmapError::BadInput {
                argument: "classifier input".to_owned(),
                reason: format!("heatmaps take one image, [1, 3, H, W]; got shape {dims:?}"),
            });
        }
    }
    let features = net.features(input)?;
    heatmaps_from_features(net, &features, targets, options)
}

/// [`heatmaps`] for one label.
pub fn heatmap(
    net: &DenseNet121,
    input: &Tensor,
    target: usize,
    options: HeatmapOptions,
) -> Result<Heatmap, HeatmapError> {
    let mut maps = heatmaps(net, input, &[target], options)?;
    maps.pop().ok_or(HeatmapError::TargetOutOfRange { index: target, count: net.card().labels.len() })
}

/// [`heatmaps`] straight from a gray image in [0, 1] (row-major), preprocessed as the classifier expects
/// (the card's normalisation; Resize 224, centre crop 224). Use [`Heatmap::at_image_size`] with the same size to
/// overlay the result on the image.
pub fn heatmaps_for_gray_image(
    net: &DenseNet121,
    gray: &[f32],
    width_px: usize,
    height_px: usize,
    targets: &[usize],
    options: HeatmapOptions,
    device: &Device,
) -> Result<Vec<Heatmap>, HeatmapError> {
    let normalization: Option<&InputNormalization> = net.card().input_normalization.as_ref();
    let side_px = classifier_side_px(net.card());
    let input = classifier_input_sized(gray, width_px, height_px, normalization, side_px, device)?;
    heatmaps(net, &input, targets, options)
}

/// Heatmaps from a rectified feature map [1, C, h, w] as [`DenseNet121::features`] returns it (so a caller that
/// already has the features, e.g. for several methods, computes them once).
pub fn heatmaps_from_features(
    net: &DenseNet121,
    features: &Tensor,
    targets: &[usize],
    options: HeatmapOptions,
) -> Result<Vec<Heatmap>, HeatmapError> {
    let labels = &net.card().labels;
    if let Some(&index) = targets.iter().find(|&&t| t >= labels.len()) {
        return Err(HeatmapError::TargetOutOfRange { index, count: labels.len() });
    }
    let (channels, height, width) = match features.dims() {
        [1, c, h, w] if *h > 0 && *w > 0 => (*c, *h, *w),
        dims => {
            return Err(HeatmapError::BadInput {
                argument: "feature map".to_owned(),
                reason: format!("expected [1, C, h, w] for one image, got shape {dims:?}"),
            });
        }
    };
    let features = features.to_dtype(DType::F32)?;
    let activations = features.flatten_all()?.to_vec1::<f32>()?;
    if let Some(index) = activations.iter().position(|v| !v.is_finite()) {
        return Err(HeatmapError::NonFinite { what: "feature map", index });
    }
    let plane = height * width;
    // The head runs on a Var so that candle records the graph from the features to the outputs.
    let variable = Var::from_tensor(&features)?;
    let logits = net.logits_from_features(variable.as_tensor())?;
    let probabilities_tensor = candle_nn::ops::sigmoid(&logits)?;
    let probabilities = probabilities_tensor.flatten_all()?.to_vec1::<f32>()?;
    let (classifier_weight, _) = net.classifier_parameters();
    let mut maps = Vec::with_capacity(targets.len());
    for &target in targets {
        let probability = probabilities.get(target).copied().unwrap_or(f32::NAN);
        let label = labels.get(target).cloned().unwrap_or_default();
        let (channel_weights, zero_gradient) = if options.method.uses_gradients() {
            let output = match options.target_output {
                TargetOutput::Probability => &probabilities_tensor,
                TargetOutput::Logit => &logits,
            };
            let gradients = output.narrow(1, target, 1)?.sum_all()?.backward()?;
            let mut gradient = match gradients.get(variable.as_tensor()) {
                Some(g) => g.flatten_all()?.to_vec1::<f32>()?,
                None => vec![0.0; activations.len()],
            };
            if gradient.len() != activations.len() {
                return Err(HeatmapError::BadInput {
                    argument: "gradient".to_owned(),
                    reason: format!("{} values for a feature map of {}", gradient.len(), activations.len()),
                });
            }
            if let Some(index) = gradient.iter().position(|v| !v.is_finite()) {
                return Err(HeatmapError::NonFinite { what: "gradient", index });
            }
            if options.gradient_layer == GradientLayer::Norm5BeforeRelu {
                // ReLU's backward passes the gradient where its output is positive.
                for (g, a) in gradient.iter_mut().zip(&activations) {
                    if *a <= 0.0 {
                        *g = 0.0;
                    }
                }
            }
            let zero = gradient.iter().all(|&g| g == 0.0);
            let weights = match options.method {
                HeatmapMethod::GradCamPlusPlus => grad_cam_plus_plus_weights(&activations, &gradient, plane),
                _ => grad_cam_weights(&gradient, plane),
            };
            (weights, zero)
        } else {
            let row = classifier_weight.narrow(0, target, 1)?.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            (row.iter().map(|&w| f64::from(w)).collect(), false)
        };
        if channel_weights.len() != channels {
            return Err(HeatmapError::BadInput {
                argument: "feature map".to_owned(),
                reason: format!("{channels} channels but {} channel weights", channel_weights.len()),
            });
        }
        let raw = weighted_sum(&activations, &channel_weights, plane);
        let rectified: Vec<f32> =
            if options.method.uses_gradients() { raw.iter().map(|&v| v.max(0.0)).collect() } else { raw.clone() };
        let scaled = scale_min_max(&rectified);
        let note = blank_reason(&label, probability, options, zero_gradient, &scaled);
        maps.push(Heatmap {
            label,
            label_index: target,
            options,
            probability,
            raw: GrayMap { width_px: width, height_px: height, values: raw },
            scaled: GrayMap { width_px: width, height_px: height, values: scaled },
            note,
        });
    }
    Ok(maps)
}

/// Grad-CAM: the spatial mean of the gradient of each channel.
fn grad_cam_weights(gradient: &[f32], plane: usize) -> Vec<f64> {
    gradient.chunks_exact(plane).map(|g| g.iter().map(|&v| f64::from(v)).sum::<f64>() / plane as f64).collect()
}

/// pytorch-grad-cam's `GradCAMPlusPlus.get_cam_weights` for one image.
fn grad_cam_plus_plus_weights(activations: &[f32], gradient: &[f32], plane: usize) -> Vec<f64> {
    activations
        .chunks_exact(plane)
        .zip(gradient.chunks_exact(plane))
        .map(|(a, g)| {
            let sum_activations: f64 = a.iter().map(|&v| f64::from(v)).sum();
            g.iter()
                .map(|&g| {
                    let g = f64::from(g);
                    if g == 0.0 {
                        return 0.0;
                    }
                    let g2 = g * g;
                    let alpha = g2 / (2.0 * g2 + sum_activations * g2 * g + GRADCAM_PLUS_PLUS_EPSILON);
                    g.max(0.0) * alpha
                })
                .sum()
        })
        .collect()
}

/// `sum_k weights[k] * activations[k]` over channels, one value per pixel.
fn weighted_sum(activations: &[f32], weights: &[f64], plane: usize) -> Vec<f32> {
    let mut sum = vec![0.0f64; plane];
    for (channel, &weight) in activations.chunks_exact(plane).zip(weights) {
        for (s, &a) in sum.iter_mut().zip(channel) {
            *s += weight * f64::from(a);
        }
    }
    sum.into_iter().map(|v| v as f32).collect()
}

/// pytorch-grad-cam's `scale_cam_image` without resizing: `(m - min) / (1e-7 + max(m - min))`, in float32.
fn scale_min_max(values: &[f32]) -> Vec<f32> {
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    if !min.is_finite() {
        return vec![0.0; values.len()];
    }
    let shifted: Vec<f32> = values.iter().map(|&v| v - min).collect();
    let max = shifted.iter().copied().fold(0.0f32, f32::max);
    shifted.into_iter().map(|v| v / (SCALE_EPSILON + max)).collect()
}

/// The note for a blank map, or None when the map shows something.
fn blank_reason(
    label: &str,
    probability: f32,
    options: HeatmapOptions,
    zero_gradient: bool,
    scaled: &[f32],
) -> Option<String> {
    let method = options.method.display_name();
    if zero_gradient {
        let saturated =
            options.target_output == TargetOutput::Probability && (probability <= 0.0 || probability >= 1.0);
        let why = if saturated {
            format!("the probability is saturated at {probability} in float32")
        } else {
            "no feature influences this output".to_owned()
        };
        return Some(format!("{method} of {label}: the gradient is zero everywhere ({why}); the map is blank"));
    }
    if scaled.iter().all(|&v| v == 0.0) {
        return Some(if options.method.uses_gradients() {
            format!(
                "{method} of {label}: no region adds evidence for {label} (the weighted activations are negative \
                 everywhere, as for most unlikely labels), so the map is blank; CAM shows where its evidence is \
                 strongest"
            )
        } else {
            format!("{method} of {label}: the map is constant, so it is blank")
        });
    }
    None
}

/// Where each output pixel samples the feature map: feature coordinate = `scale * (output + 0.5) + offset - 0.5`
/// per axis, with the rectangle of output pixels that the classifier saw.
struct Geometry {
    width_px: usize,
    height_px: usize,
    scale_x: f64,
    offset_x: f64,
    scale_y: f64,
    offset_y: f64,
    /// Output pixels inside the crop: [x0, x1) x [y0, y1).
    inside: (usize, usize, usize, usize),
}

impl Geometry {
    /// `cv2.resize` from `map_w` x `map_h` to `width_px` x `height_px`.
    fn identity(width_px: usize, height_px: usize, map_w: usize, map_h: usize) -> Self {
        Self {
            width_px,
            height_px,
            scale_x: map_w as f64 / width_px.max(1) as f64,
            offset_x: 0.0,
            scale_y: map_h as f64 / height_px.max(1) as f64,
            offset_y: 0.0,
            inside: (0, width_px, 0, height_px),
        }
    }

    /// The inverse of torchvision's `Resize(224)` + `CenterCrop(224)` on a `width_px` x `height_px` image.
    fn center_crop(width_px: usize, height_px: usize, map_w: usize, map_h: usize) -> Self {
        let crop = INPUT_SIZE_PX as f64;
        let (resized_w, resized_h) = shorter_side_size(width_px, height_px, INPUT_SIZE_PX);
        // torchvision's CenterCrop: int(round((resized - 224) / 2)), Python rounding half to even.
        let left = ((resized_w as f64 - crop) / 2.0).round_ties_even().max(0.0);
        let top = ((resized_h as f64 - crop) / 2.0).round_ties_even().max(0.0);
        // image pixel centre (x + 0.5) -> resized (x + 0.5) * resized_w / width -> crop, minus left -> feature map.
        let axis = |size: usize, resized: usize, start: f64, map: usize| {
            let to_resized = resized as f64 / size.max(1) as f64;
            let to_map = map as f64 / crop;
            let scale = to_resized * to_map;
            let offset = -start * to_map;
            // Output pixels whose centre lies inside the crop [start, start + 224) of the resized image.
            let first = ((start / to_resized) - 0.5).ceil().max(0.0) as usize;
            let last = (((start + crop) / to_resized) - 0.5).ceil().max(0.0) as usize;
            (scale, offset, first.min(size), last.min(size))
        };
        let (scale_x, offset_x, x0, x1) = axis(width_px, resized_w, left, map_w);
        let (scale_y, offset_y, y0, y1) = axis(height_px, resized_h, top, map_h);
        Self { width_px, height_px, scale_x, offset_x, scale_y, offset_y, inside: (x0, x1, y0, y1) }
    }
}

/// Source index and fraction of one output coordinate as OpenCV's `INTER_LINEAR` computes them (clamped edges).
fn source_tap(output: usize, scale: f64, offset: f64, source_len: usize) -> (usize, usize, f32) {
    let position = ((output as f64 + 0.5) * scale + offset - 0.5) as f32;
    let floor = position.floor();
    let mut fraction = position - floor;
    let last = source_len.saturating_sub(1);
    let index = if floor < 0.0 {
        fraction = 0.0;
        0
    } else if floor as usize >= last {
        fraction = 0.0;
        last
    } else {
        floor as usize
    };
    (index, (index + 1).min(last), fraction)
}

/// Bilinear upsampling of `map` onto `geometry`, zero outside the crop, then `scale_cam_image` over the crop.
fn upsample_and_rescale(map: &GrayMap, geometry: &Geometry) -> GrayMap {
    let (x0, x1, y0, y1) = geometry.inside;
    let taps_x: Vec<_> = (x0..x1).map(|x| source_tap(x, geometry.scale_x, geometry.offset_x, map.width_px)).collect();
    let mut inside = Vec::with_capacity((x1 - x0) * (y1 - y0));
    for y in y0..y1 {
        let (row0, row1, fy) = source_tap(y, geometry.scale_y, geometry.offset_y, map.height_px);
        for &(col0, col1, fx) in &taps_x {
            // Horizontal then vertical, as cv2.resize does.
            let top = map.get(col0, row0) * (1.0 - fx) + map.get(col1, row0) * fx;
            let bottom = map.get(col0, row1) * (1.0 - fx) + map.get(col1, row1) * fx;
            inside.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    let rescaled = scale_min_max(&inside.iter().map(|&v| v.max(0.0)).collect::<Vec<_>>());
    let mut values = vec![0.0f32; geometry.width_px * geometry.height_px];
    let inside_width = x1 - x0;
    if inside_width > 0 {
        for (row, chunk) in rescaled.chunks_exact(inside_width).enumerate() {
            let start = (y0 + row) * geometry.width_px + x0;
            if let Some(target) = values.get_mut(start..start + inside_width) {
                target.copy_from_slice(chunk);
            }
        }
    }
    GrayMap { width_px: geometry.width_px, height_px: geometry.height_px, values }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::card::Provenance;
    use crate::models::densenet::DenseNetConfig;

    fn tiny_net() -> DenseNet121 {
        let config = DenseNetConfig {
            growth_rate: 4,
            bn_size: 2,
            num_init_features: 8,
            block_config: vec![2, 2],
            num_labels: 3,
        };
        let card = config.card("tiny", vec!["A".into(), "B b".into(), "C".into()], Provenance::default());
        DenseNet121::random(&card, &Device::Cpu, 5).unwrap()
    }

    #[test]
    fn method_names_round_trip() {
        for method in HeatmapMethod::ALL {
            assert_eq!(method.cli_name().parse::<HeatmapMethod>().unwrap(), method);
        }
        assert_eq!("Grad-CAM++".parse::<HeatmapMethod>().unwrap(), HeatmapMethod::GradCamPlusPlus);
        let message = "lime".parse::<HeatmapMethod>().unwrap_err().to_string();
        assert!(message.contains("lime") && message.contains("gradcampp"), "{message}");
    }

    #[test]
    fn targets_resolve_by_name_and_all() {
        let net = tiny_net();
        assert_eq!(resolve_targets(net.card(), "all").unwrap(), vec![0, 1, 2]);
        assert_eq!(resolve_targets(net.card(), "C, B b").unwrap(), vec![2, 1]);
        let message = resolve_targets(net.card(), "Hernia").unwrap_err().to_string();
        assert!(message.contains("`Hernia`") && message.contains("A, B b, C"), "{message}");
        assert!(resolve_targets(net.card(), "").is_err());
    }

    #[test]
    fn scaling_matches_scale_cam_image_and_never_divides_by_zero() {
        assert_eq!(scale_min_max(&[2.0, 2.0, 2.0]), vec![0.0; 3]);
        let scaled = scale_min_max(&[1.0, 3.0, 2.0]);
        assert_eq!(scaled[0], 0.0);
        assert!((scaled[1] - 2.0 / (2.0 + 1e-7)).abs() < 1e-7);
        assert!((scaled[2] - 1.0 / (2.0 + 1e-7)).abs() < 1e-7);
    }

    #[test]
    fn upsampling_follows_opencv_half_pixel_taps() {
        // 2 -> 4: cv2.resize(np.float32([[0, 1]]), (4, 1)) gives [0, 0.25, 0.75, 1].
        let map = GrayMap { width_px: 2, height_px: 1, values: vec![0.0, 1.0] };
        let up = upsample_and_rescale(&map, &Geometry::identity(4, 1, 2, 1));
        let expected = [0.0, 0.25, 0.75, 1.0];
        for (a, e) in up.values.iter().zip(expected) {
            assert!((a - e / (1.0 + 1e-7)).abs() < 1e-6, "{:?}", up.values);
        }
    }

    #[test]
    fn square_image_geometry_equals_input_geometry_and_crop_blanks_the_margins() {
        let map = GrayMap { width_px: 3, height_px: 3, values: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 0.3, 0.1, 0.5] };
        let heatmap = Heatmap {
            label: "A".into(),
            label_index: 0,
            options: HeatmapOptions::new(HeatmapMethod::Cam),
            probability: 0.5,
            raw: map.clone(),
            scaled: map,
            note: None,
        };
        assert_eq!(heatmap.at_image_size(448, 448), heatmap.at_input_size(448, 448));
        // 224 x 300: resized 224 x 300, crop rows 38..262 (round half even of 38).
        let tall = heatmap.at_image_size(224, 300);
        assert_eq!((tall.width_px, tall.height_px), (224, 300));
        assert!(tall.values[..38 * 224].iter().all(|&v| v == 0.0));
        assert!(tall.values[262 * 224..].iter().all(|&v| v == 0.0));
        let cropped: Vec<f32> = tall.values[38 * 224..262 * 224].to_vec();
        assert_eq!(cropped, heatmap.at_input_size(224, 224).values);
    }

    #[test]
    fn all_methods_give_finite_maps_in_unit_range() {
        let net = tiny_net();
        let x = Tensor::randn(0f32, 1.0, (1, 3, 224, 224), &Device::Cpu).unwrap();
        for method in HeatmapMethod::ALL {
            let maps = heatmaps(&net, &x, &[0, 1, 2], HeatmapOptions::new(method)).unwrap();
            assert_eq!(maps.len(), 3);
            for map in maps {
                let up = map.at_input_size(224, 224);
                assert!(up.values.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
            }
        }
    }

    #[test]
    fn zero_features_give_a_blank_map_with_a_note() {
        let net = tiny_net();
        let channels = net.config().num_features();
        let zeros = Tensor::zeros((1, channels, 7, 7), DType::F32, &Device::Cpu).unwrap();
        for method in HeatmapMethod::ALL {
            let map = heatmaps_from_features(&net, &zeros, &[1], HeatmapOptions::new(method)).unwrap().remove(0);
            assert!(map.is_blank(), "{method}");
            assert!(map.at_input_size(224, 224).values.iter().all(|&v| v == 0.0));
            let note = map.note.unwrap_or_default();
            assert!(note.contains("blank") && note.contains("B b"), "{method}: {note}");
        }
    }

    #[test]
    fn bad_inputs_are_named() {
        let net = tiny_net();
        let x = Tensor::zeros((2, 3, 224, 224), DType::F32, &Device::Cpu).unwrap();
        let message = heatmaps(&net, &x, &[0], HeatmapOptions::new(HeatmapMethod::Cam)).unwrap_err().to_string();
        assert!(message.contains("one image"), "{message}");
        let x = Tensor::zeros((1, 3, 224, 224), DType::F32, &Device::Cpu).unwrap();
        let message = heatmaps(&net, &x, &[3], HeatmapOptions::new(HeatmapMethod::Cam)).unwrap_err().to_string();
        assert!(message.contains("index 3") && message.contains("3 labels"), "{message}");
    }
}
