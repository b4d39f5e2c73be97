//! Differentiable augmentation (DiffAugment, Zhao et al. 2020, policy `translation,cutout`) applied to every image
//! the discriminator sees, real and fake alike, so that a small training set is not memorised by D. Both operations
//! are made of slicing, padding and multiplication, so gradients flow through them to the generator.

use candle_core::Tensor;

use crate::train::rng::TrainRng;

/// Largest shift, as a fraction of the image side (DiffAugment's 1/8).
const TRANSLATION_RATIO: f64 = 0.125;
/// Side of the cut-out square, as a fraction of the image side (DiffAugment's 1/2).
const CUTOUT_RATIO: f64 = 0.5;

/// Shifts each image by its own random offset of up to 1/8 of the side, filling with zeros, then blanks a random
/// square of half the side (clipped at the borders) in each image.
pub fn diff_augment(images: &Tensor, rng: &mut TrainRng) -> candle_core::Result<Tensor> {
    let shifted = translate(images, rng)?;
    cutout(&shifted, rng)
}

fn translate(images: &Tensor, rng: &mut TrainRng) -> candle_core::Result<Tensor> {
    let (batch, _, height, width) = images.dims4()?;
    let radius = ((height.min(width) as f64) * TRANSLATION_RATIO).round() as usize;
    if radius == 0 {
        return Ok(images.clone());
    }
    let padded = images.pad_with_zeros(2, radius, radius)?.pad_with_zeros(3, radius, radius)?;
    let mut shifted = Vec::with_capacity(batch);
    for i in 0..batch {
        // Window start radius + shift reads the image moved by -shift.
        let dy = (radius as isize + rng.symmetric(radius)) as usize;
        let dx = (radius as isize + rng.symmetric(radius)) as usize;
        shifted.push(padded.narrow(0, i, 1)?.narrow(2, dy, height)?.narrow(3, dx, width)?);
    }
    Tensor::cat(&shifted, 0)
}

fn cutout(images: &Tensor, rng: &mut TrainRng) -> candle_core::Result<Tensor> {
    let (batch, _, height, width) = images.dims4()?;
    let cut_h = ((height as f64) * CUTOUT_RATIO).round() as usize;
    let cut_w = ((width as f64) * CUTOUT_RATIO).round() as usize;
    let mut mask = vec![1.0f32; batch * height * width];
    for plane in mask.chunks_mut(height * width).take(batch) {
        // Centre anywhere in the image (DiffAugment: offset in [0, size + (1 - cut % 2))).
        let cy = rng.below(height + (1 - cut_h % 2)) as isize;
        let cx = rng.below(width + (1 - cut_w % 2)) as isize;
        let top = (cy - (cut_h / 2) as isize).clamp(0, height as isize) as usize;
        let bottom = (cy - (cut_h / 2) as isize + cut_h as isize).clamp(0, height as isize) as usize;
        let left = (cx - (cut_w / 2) as isize).clamp(0, width as isize) as usize;
        let right = (cx - (cut_w / 2) as isize + cut_w as isize).clamp(0, width as isize) as usize;
        for row in plane.chunks_mut(width).take(bottom).skip(top) {
            for value in row.iter_mut().take(right).skip(left) {
                *value = 0.0;
            }
        }
    }
    let mask = Tensor::from_vec(mask, (batch, 1, height, width), images.device())?.to_dtype(images.dtype())?;
    images.broadcast_mul(&mask)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;

    #[test]
    fn augmentation_keeps_shape_blanks_a_quarter_at_most_and_passes_gradients() {
        let device = Device::Cpu;
        let var = Var::from_tensor(&Tensor::ones((4, 1, 16, 16), DType::F32, &device).unwrap()).unwrap();
        let out = diff_augment(var.as_tensor(), &mut TrainRng::new(5)).unwrap();
        assert_eq!(out.dims(), &[4, 1, 16, 16]);
        let kept = out.sum_all().unwrap().to_scalar::<f32>().unwrap();
        // Each image loses at most its shifted-out border (2 px) plus the 8x8 cut-out.
        assert!((4.0 * (256.0 - 64.0 - 2.0 * 16.0 * 2.0)..4.0 * 256.0).contains(&kept), "{kept}");
        let grad = out.sum_all().unwrap().backward().unwrap();
        let g = grad.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(g.iter().all(|v| *v == 0.0 || *v == 1.0));
        assert_eq!(g.iter().sum::<f32>(), kept);
    }
}
