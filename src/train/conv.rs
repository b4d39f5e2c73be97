//! Convolution for training as explicit im2col + one matrix product, made only of ops whose backward candle
//! computes with copies and matrix products. candle 0.11's own conv2d backward computes the input gradient with its
//! direct CPU `conv_transpose2d`, which dominated the training step on our 2-core machine; going through `matmul`
//! in both directions is several times faster there (and is the same arithmetic).

use candle_core::Tensor;

/// The convolution every trainer uses: `x` `[N, C, H, W]` with `weight` `[O, C, kh, kw]`, square `stride` and zero
/// `padding`, no bias, differentiable in both arguments. Stride 1 goes through [`conv2d_im2col`]; other strides use
/// candle's conv2d (its backward is slow on the CPU, so keep strided layers few).
pub fn conv2d_train(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> candle_core::Result<Tensor> {
    if stride == 1 { conv2d_im2col(x, weight, padding) } else { x.conv2d(weight, padding, stride, 1, 1) }
}

/// Stride-1 convolution of `x` `[N, C, H, W]` with `weight` `[O, C, kh, kw]`, zero padding `padding` on every side;
/// returns `[N, O, H + 2p - kh + 1, W + 2p - kw + 1]`.
pub fn conv2d_im2col(x: &Tensor, weight: &Tensor, padding: usize) -> candle_core::Result<Tensor> {
    let (batch, channels, height, width) = x.dims4()?;
    let (maps_out, weight_channels, kernel_h, kernel_w) = weight.dims4()?;
    if weight_channels != channels {
        candle_core::bail!("conv2d_im2col: input has {channels} channels, the kernel expects {weight_channels}");
    }
    let (padded_h, padded_w) = (height + 2 * padding, width + 2 * padding);
    if padded_h < kernel_h || padded_w < kernel_w {
        candle_core::bail!("conv2d_im2col: kernel {kernel_h}x{kernel_w} larger than the padded {padded_h}x{padded_w}");
    }
    let (out_h, out_w) = (padded_h - kernel_h + 1, padded_w - kernel_w + 1);
    // Channels last, so each kernel tap is a contiguous run of C values per pixel.
    let mut nhwc = x.permute((0, 2, 3, 1))?;
    if padding > 0 {
        nhwc = nhwc.pad_with_zeros(1, padding, padding)?.pad_with_zeros(2, padding, padding)?;
    }
    let patches = if kernel_h == 1 && kernel_w == 1 {
        nhwc.contiguous()?
    } else {
        let mut taps = Vec::with_capacity(kernel_h * kernel_w);
        for ky in 0..kernel_h {
            for kx in 0..kernel_w {
                taps.push(nhwc.narrow(1, ky, out_h)?.narrow(2, kx, out_w)?);
            }
        }
        // [N, out_h, out_w, kh * kw * C], taps in (ky, kx, c) order
        Tensor::cat(&taps, 3)?
    };
    let rows = patches.reshape((batch * out_h * out_w, kernel_h * kernel_w * channels))?;
    // [O, C, kh, kw] -> [kh, kw, C, O] -> [(ky, kx, c), O]
    let matrix = weight.permute((2, 3, 1, 0))?.reshape((kernel_h * kernel_w * channels, maps_out))?;
    rows.matmul(&matrix)?.reshape((batch, out_h, out_w, maps_out))?.permute((0, 3, 1, 2))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
    }

    /// Values and both gradients equal candle's conv2d for 3x3, 2x2 and 1x1 kernels.
    #[test]
    fn matches_candle_conv2d_and_its_gradients() {
        for (kernel, padding) in [(3usize, 1usize), (2, 1), (1, 0), (3, 0)] {
            let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, (2, 3, 5, 6), &Device::Cpu).unwrap()).unwrap();
            let w = Var::from_tensor(&Tensor::randn(0f64, 1.0, (4, 3, kernel, kernel), &Device::Cpu).unwrap()).unwrap();
            let ours = conv2d_im2col(x.as_tensor(), w.as_tensor(), padding).unwrap();
            let theirs = x.as_tensor().conv2d(w.as_tensor(), padding, 1, 1, 1).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            assert!(max_diff(&ours, &theirs) < 1e-10);
            let probe = Tensor::randn(0f64, 1.0, ours.dims(), &Device::Cpu).unwrap();
            let g_ours = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let g_theirs = (theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            for var in [&x, &w] {
                let a = g_ours.get(var.as_tensor()).unwrap();
                let b = g_theirs.get(var.as_tensor()).unwrap();
                assert!(max_diff(a, b) < 1e-10, "kernel {kernel}");
            }
        }
    }
}
