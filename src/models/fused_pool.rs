//! DenseNet's two pooling steps as single passes over the map on the CPU, where candle's pooling loops and
//! composed elementwise ops took about a sixth of a batch-1 DenseNet-121 pass (`thorax bench classifier
//! --profile`). Other devices compose candle ops (one fused BatchNorm kernel on CUDA).

use candle_core::{Result, Tensor, bail};
use rayon::prelude::*;

use crate::models::fast_conv::{self, InputAffineRelu, channel_values, is_cpu_f32, with_cpu_f32};

/// `avg_pool2d(relu(x * scale + shift), 2)` per channel of `x` `[N, C, H, W]` (PyTorch's `_Transition` before its
/// convolution, the pool moved ahead of the 1x1 convolution); odd sides lose their last row or column, as in
/// PyTorch.
pub fn affine_relu_avg_pool2(x: &Tensor, prologue: &InputAffineRelu) -> Result<Tensor> {
    if !is_cpu_f32(x) {
        return fast_conv::input_affine_relu(x, prologue)?.avg_pool2d(2);
    }
    let (batch, channels, height, width) = x.dims4()?;
    let scale = channel_values(&prologue.scale, channels, "affine_relu_avg_pool2 scale")?;
    let shift = channel_values(&prologue.shift, channels, "affine_relu_avg_pool2 shift")?;
    let (out_h, out_w) = (height / 2, width / 2);
    if out_h == 0 || out_w == 0 {
        bail!("affine_relu_avg_pool2: a {height}x{width} map is too small for 2x2 pooling");
    }
    let x = x.contiguous()?;
    let mut out = vec![0f32; batch * channels * out_h * out_w];
    with_cpu_f32(&x, "affine_relu_avg_pool2 input", |values| {
        out.par_chunks_mut(out_h * out_w).enumerate().for_each(|(plane, pooled)| {
            let (s, b) = (scale[plane % channels], shift[plane % channels]);
            let input = &values[plane * height * width..(plane + 1) * height * width];
            let activated = |v: f32| (v * s + b).max(0.0);
            for (i, row) in pooled.chunks_exact_mut(out_w).enumerate() {
                let (top, bottom) = (&input[2 * i * width..], &input[(2 * i + 1) * width..]);
                for (j, value) in row.iter_mut().enumerate() {
                    let sum = activated(top[2 * j])
                        + activated(top[2 * j + 1])
                        + activated(bottom[2 * j])
                        + activated(bottom[2 * j + 1]);
                    *value = sum * 0.25;
                }
            }
        });
        Ok(())
    })?;
    Tensor::from_vec(out, (batch, channels, out_h, out_w), x.device())
}

/// Max pooling 3x3, stride 2, zero padding 1 of `x` `[N, C, H, W]`: a window that reaches past the border also
/// sees the padding's zeros (DenseNet's `pool0` follows a ReLU, so this equals PyTorch's -inf padding there).
pub fn max_pool3x3_stride2_zero_pad1(x: &Tensor) -> Result<Tensor> {
    if !is_cpu_f32(x) {
        let padded = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
        return padded.max_pool2d_with_stride(3, 2);
    }
    let (batch, channels, height, width) = x.dims4()?;
    if height < 2 || width < 2 {
        bail!("max_pool3x3_stride2_zero_pad1: a {height}x{width} map is too small for a 3x3 window");
    }
    let (out_h, out_w) = ((height - 1) / 2 + 1, (width - 1) / 2 + 1);
    let x = x.contiguous()?;
    let mut out = vec![0f32; batch * channels * out_h * out_w];
    with_cpu_f32(&x, "max_pool3x3_stride2_zero_pad1 input", |values| {
        out.par_chunks_mut(out_h * out_w).enumerate().for_each(|(plane, pooled)| {
            let input = &values[plane * height * width..(plane + 1) * height * width];
            for (i, row) in pooled.chunks_exact_mut(out_w).enumerate() {
                // Padded rows 2i..2i+2 are input rows 2i-1..2i+1.
                let rows = (2 * i).saturating_sub(1)..(2 * i + 2).min(height);
                let touches_row_padding = 2 * i == 0 || 2 * i + 1 >= height;
                for (j, value) in row.iter_mut().enumerate() {
                    let cols = (2 * j).saturating_sub(1)..(2 * j + 2).min(width);
                    let touches_padding = touches_row_padding || 2 * j == 0 || 2 * j + 1 >= width;
                    let mut max = if touches_padding { 0.0f32 } else { f32::NEG_INFINITY };
                    for r in rows.clone() {
                        for &v in &input[r * width + cols.start..r * width + cols.end] {
                            if v > max {
                                max = v;
                            }
                        }
                    }
                    *value = max;
                }
            }
        });
        Ok(())
    })?;
    Tensor::from_vec(out, (batch, channels, out_h, out_w), x.device())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(dims: &[usize]) -> Tensor {
        crate::test_random::randn(0f32, 1.0, dims)
    }

    fn max_abs_difference(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn affine_relu_avg_pool_matches_candle_ops_on_even_and_odd_sides() {
        for dims in [[2, 5, 8, 6], [1, 3, 7, 9], [3, 4, 2, 2]] {
            let x = random(&dims);
            let prologue = InputAffineRelu { scale: random(&[dims[1]]), shift: random(&[dims[1]]) };
            let reference = x
                .broadcast_mul(&prologue.scale.reshape((1, dims[1], 1, 1)).unwrap())
                .unwrap()
                .broadcast_add(&prologue.shift.reshape((1, dims[1], 1, 1)).unwrap())
                .unwrap()
                .relu()
                .unwrap()
                .avg_pool2d(2)
                .unwrap();
            let fused = affine_relu_avg_pool2(&x, &prologue).unwrap();
            assert!(max_abs_difference(&fused, &reference) < 1e-6, "{dims:?}");
        }
    }

    #[test]
    fn max_pool_matches_zero_padding_then_candle_max_pool_for_any_sign() {
        // Negative values show the padding's zeros at the border and -inf starts inside.
        for dims in [[2, 3, 8, 8], [1, 2, 7, 5], [1, 1, 2, 3], [2, 2, 112, 112]] {
            let x = random(&dims);
            let reference = x
                .pad_with_zeros(2, 1, 1)
                .unwrap()
                .pad_with_zeros(3, 1, 1)
                .unwrap()
                .max_pool2d_with_stride(3, 2)
                .unwrap();
            let fused = max_pool3x3_stride2_zero_pad1(&x).unwrap();
            assert_eq!(fused.dims(), reference.dims(), "{dims:?}");
            assert_eq!(max_abs_difference(&fused, &reference), 0.0, "{dims:?}");
        }
    }

    #[test]
    fn too_small_maps_and_wrong_parameters_are_errors() {
        let tiny = random(&[1, 2, 1, 1]);
        assert!(max_pool3x3_stride2_zero_pad1(&tiny).is_err());
        let prologue = InputAffineRelu { scale: random(&[2]), shift: random(&[2]) };
        assert!(affine_relu_avg_pool2(&tiny, &prologue).is_err());
        let wrong = InputAffineRelu { scale: random(&[3]), shift: random(&[3]) };
        assert!(affine_relu_avg_pool2(&random(&[1, 2, 4, 4]), &wrong).is_err());
    }
}
