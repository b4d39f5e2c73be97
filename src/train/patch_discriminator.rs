//! junyanz's `NLayerDiscriminator` (the 70x70 PatchGAN for `n_layers = 3`) with InstanceNorm2d (affine=False; with
//! instance norm junyanz gives every convolution a bias) and LeakyReLU 0.2:
//! `0` Conv 4x4 s2 p1 in->ndf, LReLU; for n in 1..n_layers: Conv 4x4 s2 p1 ndf*2^(n-1)->ndf*2^n (capped at 8 ndf),
//! IN, LReLU; then Conv 4x4 s1 p1 -> ndf*min(2^n_layers, 8), IN, LReLU; and Conv 4x4 s1 p1 -> 1 (the patch scores).
//! Tensor names are the state_dict's (`model.0`, `model.2`, `model.5`, `model.8`, `model.11` for 3 layers).
//! Strided layers run as stride-1 convolutions through [`conv2d_stride2_train`].

use std::collections::HashMap;

use candle_core::Tensor;

use crate::models::cyclegan::INSTANCE_NORM_EPS;
use crate::train::conv::{conv2d_stride2_train, conv2d_train};
use crate::train::error::TrainError;
use crate::train::fused_instance_norm::instance_norm_leaky;

/// Negative slope of the LeakyReLUs.
const LEAKY_RELU_ALPHA: f64 = 0.2;
/// Kernel side of every layer.
const KERNEL: usize = 4;

/// The architecture of one PatchGAN discriminator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PatchDiscriminatorSpec {
    /// Image channels.
    pub input_nc: usize,
    /// Filters of the first layer.
    pub ndf: usize,
    /// Stride-2 layers (3 for the 70x70 PatchGAN).
    pub n_layers: usize,
}

/// One convolution of the discriminator.
struct Layer {
    index: usize,
    maps_in: usize,
    maps_out: usize,
    stride2: bool,
    normalised: bool,
    activated: bool,
}

impl PatchDiscriminatorSpec {
    fn layers(&self) -> Vec<Layer> {
        let mut layers = vec![Layer {
            index: 0,
            maps_in: self.input_nc,
            maps_out: self.ndf,
            stride2: true,
            normalised: false,
            activated: true,
        }];
        let mut index = 2;
        let mut mult = 1;
        for n in 1..=self.n_layers {
            let previous = mult;
            mult = (1usize << n.min(3)).min(8);
            let stride2 = n < self.n_layers;
            layers.push(Layer {
                index,
                maps_in: self.ndf * previous,
                maps_out: self.ndf * mult,
                stride2,
                normalised: true,
                activated: true,
            });
            index += 3;
        }
        layers.push(Layer {
            index,
            maps_in: self.ndf * mult,
            maps_out: 1,
            stride2: false,
            normalised: false,
            activated: false,
        });
        layers
    }

    /// Every tensor name with its shape.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.layers()
            .iter()
            .flat_map(|layer| {
                [
                    (format!("model.{}.weight", layer.index), vec![layer.maps_out, layer.maps_in, KERNEL, KERNEL]),
                    (format!("model.{}.bias", layer.index), vec![layer.maps_out]),
                ]
            })
            .collect()
    }

    /// The smallest image side that leaves at least one patch score.
    pub fn min_side_px(&self) -> usize {
        // Each stride-2 layer halves (floor), each of the two stride-1 4x4 layers with padding 1 removes one pixel.
        3 << self.n_layers
    }

    /// Patch scores `[N, 1, h, w]` of `images` `[N, input_nc, H, W]` with `tensors` (state_dict names).
    pub fn forward(&self, tensors: &HashMap<String, Tensor>, images: &Tensor) -> Result<Tensor, TrainError> {
        let (_, channels, height, width) = images.dims4()?;
        if channels != self.input_nc || height.min(width) < self.min_side_px() {
            return Err(TrainError::BadConfig {
                argument: "discriminator input".to_owned(),
                reason: format!(
                    "shape {:?}; expected {} channel(s) and sides of at least {} px",
                    images.dims(),
                    self.input_nc,
                    self.min_side_px()
                ),
            });
        }
        let take = |name: String| {
            tensors
                .get(&name)
                .cloned()
                .ok_or(TrainError::MissingParameter { network: "discriminator".to_owned(), name })
        };
        let mut x = images.clone();
        for layer in self.layers() {
            let weight = take(format!("model.{}.weight", layer.index))?;
            let y =
                if layer.stride2 { conv2d_stride2_train(&x, &weight, 1)? } else { conv2d_train(&x, &weight, 1, 1)? };
            // The instance norm subtracts each channel's mean, which cancels the bias exactly: it is added only where
            // no norm follows (its gradient would be 0 but for rounding; see `cyclegan_generator_forward`).
            let y = if layer.normalised {
                // Instance norm and leaky ReLU as one op (slope 1: no activation).
                let slope = if layer.activated { LEAKY_RELU_ALPHA } else { 1.0 };
                instance_norm_leaky(&y, slope, INSTANCE_NORM_EPS)?
            } else {
                let bias = take(format!("model.{}.bias", layer.index))?;
                let y = y.broadcast_add(&bias.reshape((1, layer.maps_out, 1, 1))?)?;
                if layer.activated { y.maximum(&(&y * LEAKY_RELU_ALPHA)?)? } else { y }
            };
            x = y;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    fn spec() -> PatchDiscriminatorSpec {
        PatchDiscriminatorSpec { input_nc: 1, ndf: 4, n_layers: 3 }
    }

    #[test]
    fn names_and_shapes_follow_the_junyanz_state_dict() {
        let shapes: HashMap<String, Vec<usize>> = spec().tensor_shapes().into_iter().collect();
        assert_eq!(shapes.len(), 10);
        assert_eq!(shapes["model.0.weight"], vec![4, 1, 4, 4]);
        assert_eq!(shapes["model.2.weight"], vec![8, 4, 4, 4]);
        assert_eq!(shapes["model.5.weight"], vec![16, 8, 4, 4]);
        assert_eq!(shapes["model.8.weight"], vec![32, 16, 4, 4]);
        assert_eq!(shapes["model.11.weight"], vec![1, 32, 4, 4]);
        assert_eq!(shapes["model.11.bias"], vec![1]);
    }

    /// The 70x70 PatchGAN maps 256 px to 30x30 scores (and 32 px to 2x2), and equals a direct candle computation.
    #[test]
    fn forward_gives_patch_scores_like_strided_candle_convolutions() {
        let device = Device::Cpu;
        let mut tensors = HashMap::new();
        for (i, (name, shape)) in spec().tensor_shapes().into_iter().enumerate() {
            tensors.insert(name, Tensor::randn(0f32, 0.1 + i as f32 * 0.01, shape, &device).unwrap());
        }
        let images = Tensor::randn(0f32, 1.0, (2, 1, 32, 32), &device).unwrap();
        let scores = spec().forward(&tensors, &images).unwrap();
        assert_eq!(scores.dims(), &[2, 1, 2, 2]);
        let mut x = images.clone();
        for (index, stride, norm, act) in
            [(0, 2, false, true), (2, 2, true, true), (5, 2, true, true), (8, 1, true, true), (11, 1, false, false)]
        {
            let w = &tensors[&format!("model.{index}.weight")];
            let b = &tensors[&format!("model.{index}.bias")];
            let mut y =
                x.conv2d(w, 1, stride, 1, 1).unwrap().broadcast_add(&b.reshape((1, (), 1, 1)).unwrap()).unwrap();
            if norm {
                y = crate::train::fused_instance_norm::composed(&y, 1.0, INSTANCE_NORM_EPS).unwrap();
            }
            if act {
                y = y.maximum(&(&y * 0.2).unwrap()).unwrap();
            }
            x = y;
        }
        let diff = (scores - x).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-4, "{diff}");
        let big = PatchDiscriminatorSpec { input_nc: 1, ndf: 1, n_layers: 3 };
        let mut small_tensors = HashMap::new();
        for (name, shape) in big.tensor_shapes() {
            small_tensors.insert(name, Tensor::ones(shape, DType::F32, &device).unwrap());
        }
        let scores =
            big.forward(&small_tensors, &Tensor::zeros((1, 1, 256, 256), DType::F32, &device).unwrap()).unwrap();
        assert_eq!(scores.dims(), &[1, 1, 30, 30]);
        let error = big.forward(&small_tensors, &Tensor::zeros((1, 1, 16, 16), DType::F32, &device).unwrap());
        assert!(error.unwrap_err().to_string().contains("at least 24 px"));
    }
}
