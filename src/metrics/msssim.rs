//! Multi-scale structural similarity (MS-SSIM) of two gray images.
//!
//! **Standard mode** reproduces `pytorch_msssim.ms_ssim` (VainF, v1.0) for one single-channel pair:
//! 11-tap Gaussian (sigma 1.5) applied separably with "valid" borders, `K = (0.01, 0.03)`, 5 scales with weights
//! `[0.0448, 0.2856, 0.3001, 0.2363, 0.1333]`, `avg_pool2d(kernel 2, stride 2, padding = side % 2)` between scales
//! (zero padding counted in the average, so an odd side gains a half-weighted first row/column), `relu` on the
//! contrast terms of scales 1-4 and on the SSIM of scale 5, and the product of their powers. Both sides must exceed
//! 160 px (VainF asserts this). The data range is a parameter (255 for 8-bit, 65535 for 16-bit, 1 for floats).
//!
//! **Thorax_GAN compatibility mode** reproduces `SSIM/ms_ssim.py` of Thorax_GAN (the jorge-pessoa code before its
//! 2021 fix): at every scale the range `L` is re-detected from the first image (`max > 128 -> 255 else 1`, minus
//! `-1` if `min < -0.5`), the window shrinks to `min(11, H, W)`, pooling is `avg_pool2d(2)` without padding (odd
//! edges dropped), no `relu`, and the result is `prod(cs[0..4]^w[0..4] * ssim[4]^w[4])`, i.e. the last-scale SSIM
//! enters four times (jorge-pessoa issues #7, #19). A negative base makes the original NaN; here it is
//! [`MetricError::Undefined`].
//!
//! Numerics: filtering runs in `f32` on mean-centred images (the Gaussian commutes with the shift, so the
//! variance terms keep their precision), maps and means are accumulated in `f64`. Against the float64 reference the
//! difference is below 1e-6 on the fixtures; against the float32 reference (what PyTorch users get) about 1e-6.

use crate::metrics::error::{MetricError, check_finite_f32};

/// Precision of the filtering passes.
type Sample = f32;

/// Weights of the five scales (Wang, Simoncelli and Bovik 2003).
pub const MS_SSIM_WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

/// Gaussian window size and sigma of the standard definition.
const WINDOW_SIZE: usize = 11;
const WINDOW_SIGMA: f64 = 1.5;
const K1: f64 = 0.01;
const K2: f64 = 0.03;
/// VainF's `ms_ssim` asserts `min(H, W) > (win_size - 1) * 2^4`.
const STANDARD_MIN_SIDE_EXCLUSIVE_PX: usize = (WINDOW_SIZE - 1) * 16;
/// The compatibility mode needs at least one pixel at the fifth scale.
const COMPAT_MIN_SIDE_PX: usize = 16;

/// A single-channel image stored row-major as `f32` intensities (any range; the mode says how it is read).
#[derive(Debug, Clone, PartialEq)]
pub struct GrayImage {
    width_px: usize,
    height_px: usize,
    pixels: Vec<f32>,
}

impl GrayImage {
    /// Wraps `pixels` (row-major, `width_px * height_px` values, all finite).
    pub fn new(width_px: usize, height_px: usize, pixels: Vec<f32>) -> Result<Self, MetricError> {
        let expected = width_px.checked_mul(height_px).ok_or(MetricError::InvalidArgument {
            what: "image size",
            reason: format!("{width_px}x{height_px} overflows"),
        })?;
        if pixels.len() != expected {
            return Err(MetricError::LengthMismatch {
                what: "image pixels vs width*height",
                left: pixels.len(),
                right: expected,
            });
        }
        check_finite_f32("image pixels", &pixels)?;
        Ok(Self { width_px, height_px, pixels })
    }

    /// From 8-bit gray values.
    pub fn from_u8(width_px: usize, height_px: usize, pixels: &[u8]) -> Result<Self, MetricError> {
        Self::new(width_px, height_px, pixels.iter().map(|&p| f32::from(p)).collect())
    }

    /// From 16-bit gray values.
    pub fn from_u16(width_px: usize, height_px: usize, pixels: &[u16]) -> Result<Self, MetricError> {
        Self::new(width_px, height_px, pixels.iter().map(|&p| f32::from(p)).collect())
    }

    /// Width in pixels.
    pub fn width_px(&self) -> usize {
        self.width_px
    }

    /// Height in pixels.
    pub fn height_px(&self) -> usize {
        self.height_px
    }

    /// Row-major intensities.
    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }
}

/// Which MS-SSIM definition to compute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MsSsimMode {
    /// pytorch-msssim's `ms_ssim` with the given data range (255 for 8-bit images, 1 for floats in [0, 1]).
    Standard { data_range: f64 },
    /// Thorax_GAN `SSIM/ms_ssim.py`, including its last-scale product bug and automatic range detection.
    ThoraxGanCompat,
}

/// MS-SSIM and its per-scale terms.
#[derive(Debug, Clone, PartialEq)]
pub struct MsSsim {
    /// The MS-SSIM value.
    pub value: f64,
    /// Mean SSIM at each scale (finest first), before any `relu`.
    pub ssim_per_scale: [f64; 5],
    /// Mean contrast-structure term at each scale, before any `relu`.
    pub cs_per_scale: [f64; 5],
    /// Data range `L` used at each scale.
    pub data_range_per_scale: [f64; 5],
}

/// Computes MS-SSIM of `a` and `b` (same size) under `mode`.
pub fn ms_ssim(a: &GrayImage, b: &GrayImage, mode: MsSsimMode) -> Result<MsSsim, MetricError> {
    if a.width_px != b.width_px || a.height_px != b.height_px {
        return Err(MetricError::ShapeMismatch {
            what: "MS-SSIM images",
            left: format!("{}x{}", a.width_px, a.height_px),
            right: format!("{}x{}", b.width_px, b.height_px),
        });
    }
    let min_side_px = a.width_px.min(a.height_px);
    match mode {
        MsSsimMode::Standard { data_range } => {
            if !(data_range.is_finite() && data_range > 0.0) {
                return Err(MetricError::InvalidArgument {
                    what: "MS-SSIM data range",
                    reason: format!("must be finite and positive, got {data_range}"),
                });
            }
            if min_side_px <= STANDARD_MIN_SIDE_EXCLUSIVE_PX {
                return Err(MetricError::InvalidArgument {
                    what: "MS-SSIM image size",
                    reason: format!(
                        "both sides must exceed {STANDARD_MIN_SIDE_EXCLUSIVE_PX} px for 4 downsamplings of an 11-px window, got {}x{}",
                        a.width_px, a.height_px
                    ),
                });
            }
            standard(a, b, data_range)
        }
        MsSsimMode::ThoraxGanCompat => {
            if min_side_px < COMPAT_MIN_SIDE_PX {
                return Err(MetricError::InvalidArgument {
                    what: "MS-SSIM image size",
                    reason: format!(
                        "both sides must be at least {COMPAT_MIN_SIDE_PX} px for 5 scales, got {}x{}",
                        a.width_px, a.height_px
                    ),
                });
            }
            thorax_gan_compat(a, b)
        }
    }
}

/// One scale of an image pair: raw intensities (pooling must see the uncentred values, zero padding included).
struct Level {
    width_px: usize,
    height_px: usize,
    x: Vec<f32>,
    y: Vec<f32>,
}

fn standard(a: &GrayImage, b: &GrayImage, data_range: f64) -> Result<MsSsim, MetricError> {
    let kernel = gaussian_kernel_like_vainf();
    let c1 = (K1 * data_range).powi(2);
    let c2 = (K2 * data_range).powi(2);
    let mut level = Level { width_px: a.width_px, height_px: a.height_px, x: a.pixels.clone(), y: b.pixels.clone() };
    let mut ssim_per_scale = [0.0; 5];
    let mut cs_per_scale = [0.0; 5];
    for scale in 0..5 {
        let (ssim, cs) = ssim_and_cs(&level, &kernel, c1, c2);
        ssim_per_scale[scale] = ssim;
        cs_per_scale[scale] = cs;
        if scale < 4 {
            level = pool_padded(&level);
        }
    }
    let mut value = 1.0;
    for scale in 0..4 {
        value *= cs_per_scale[scale].max(0.0).powf(MS_SSIM_WEIGHTS[scale]);
    }
    value *= ssim_per_scale[4].max(0.0).powf(MS_SSIM_WEIGHTS[4]);
    Ok(MsSsim { value, ssim_per_scale, cs_per_scale, data_range_per_scale: [data_range; 5] })
}

fn thorax_gan_compat(a: &GrayImage, b: &GrayImage) -> Result<MsSsim, MetricError> {
    let mut level = Level { width_px: a.width_px, height_px: a.height_px, x: a.pixels.clone(), y: b.pixels.clone() };
    let mut ssim_per_scale = [0.0; 5];
    let mut cs_per_scale = [0.0; 5];
    let mut data_range_per_scale = [0.0; 5];
    for scale in 0..5 {
        let data_range = auto_data_range(&level.x);
        let window = WINDOW_SIZE.min(level.width_px).min(level.height_px);
        let kernel = gaussian_kernel(window);
        let c1 = (K1 * data_range).powi(2);
        let c2 = (K2 * data_range).powi(2);
        let (ssim, cs) = ssim_and_cs(&level, &kernel, c1, c2);
        ssim_per_scale[scale] = ssim;
        cs_per_scale[scale] = cs;
        data_range_per_scale[scale] = data_range;
        if scale < 4 {
            level = pool_floor(&level);
        }
    }
    // The original's product: every one of the first four factors carries ssim[4]^w[4].
    let last = power_of_nonnegative("Thorax_GAN MS-SSIM scale-5 SSIM", ssim_per_scale[4], MS_SSIM_WEIGHTS[4])?;
    let mut value = 1.0;
    for scale in 0..4 {
        value *= power_of_nonnegative("Thorax_GAN MS-SSIM contrast term", cs_per_scale[scale], MS_SSIM_WEIGHTS[scale])?
            * last;
    }
    Ok(MsSsim { value, ssim_per_scale, cs_per_scale, data_range_per_scale })
}

/// `base^exponent` where the original would give NaN for a negative base.
fn power_of_nonnegative(what: &'static str, base: f64, exponent: f64) -> Result<f64, MetricError> {
    if base < 0.0 {
        return Err(MetricError::Undefined {
            what,
            reason: format!("negative base {base} raised to {exponent} (the original script returns NaN)"),
        });
    }
    Ok(base.powf(exponent))
}

/// Thorax_GAN's range rule, applied to the first image of the pair at the current scale.
fn auto_data_range(x: &[f32]) -> f64 {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let min = x.iter().copied().fold(f32::INFINITY, f32::min);
    let max_val = if max > 128.0 { 255.0 } else { 1.0 };
    let min_val = if min < -0.5 { -1.0 } else { 0.0 };
    max_val - min_val
}

/// The taps of VainF's `_fspecial_gauss_1d(11, 1.5)` exactly as torch builds them (float32 on the CPU; its
/// `exp` and vectorised `sum` round differently from a plain loop, so they are written out). They sum to
/// 1 - 3.07e-8, not 1, and pytorch-msssim's variance terms `G*(x^2) - (G*x)^2` are not shift-invariant under such a
/// kernel: renormalising moves MS-SSIM by about 3e-6 on 8-bit radiographs. The test
/// `vainf_taps_are_the_normalised_gaussian` checks them against the formula.
const VAINF_TAPS: [f32; WINDOW_SIZE] = [
    0.001_028_380_4,
    0.007_598_758,
    0.036_000_773,
    0.109_360_69,
    0.213_005_53,
    0.266_011_71,
    0.213_005_53,
    0.109_360_69,
    0.036_000_773,
    0.007_598_758,
    0.001_028_380_4,
];

fn gaussian_kernel_like_vainf() -> Vec<Sample> {
    VAINF_TAPS.iter().map(|&t| Sample::from(t)).collect()
}

/// Normalised 1-D Gaussian of `size` taps, sigma 1.5, centred at `size / 2`, normalised in `f64` (the compat
/// reference's kernel).
fn gaussian_kernel(size: usize) -> Vec<Sample> {
    let centre = (size / 2) as f64;
    let raw: Vec<f64> = (0..size)
        .map(|i| {
            let d = i as f64 - centre;
            (-(d * d) / (2.0 * WINDOW_SIGMA * WINDOW_SIGMA)).exp()
        })
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|v| (v / sum) as Sample).collect()
}

/// Mean, rounded to a multiple of 1/256 so that subtracting it from 8-bit data (and its poolings) is exact.
fn centring_offset(values: &[f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
    ((mean * 256.0).round() / 256.0) as f32
}

/// Mean SSIM and mean contrast-structure over the valid region of one scale.
fn ssim_and_cs(level: &Level, kernel: &[Sample], c1: f64, c2: f64) -> (f64, f64) {
    let w = level.width_px;
    let h = level.height_px;
    let k = kernel.len();
    let out_w = w + 1 - k;
    let out_h = h + 1 - k;
    let offset_x = centring_offset(&level.x);
    let offset_y = centring_offset(&level.y);

    // Horizontal pass of the five signals x, y, x^2, y^2, xy (centred), rows kept for the vertical pass.
    let plane = out_w * h;
    let mut horizontal: Vec<Sample> = vec![0.0; 5 * plane];
    let mut row_signals: Vec<Sample> = vec![0.0; 5 * w];
    for row in 0..h {
        let src_x = &level.x[row * w..(row + 1) * w];
        let src_y = &level.y[row * w..(row + 1) * w];
        {
            let (sx, rest) = row_signals.split_at_mut(w);
            let (sy, rest) = rest.split_at_mut(w);
            let (sxx, rest) = rest.split_at_mut(w);
            let (syy, sxy) = rest.split_at_mut(w);
            for i in 0..w {
                let xv = Sample::from(src_x[i] - offset_x);
                let yv = Sample::from(src_y[i] - offset_y);
                sx[i] = xv;
                sy[i] = yv;
                sxx[i] = xv * xv;
                syy[i] = yv * yv;
                sxy[i] = xv * yv;
            }
        }
        for signal in 0..5 {
            let src = &row_signals[signal * w..(signal + 1) * w];
            let dst = &mut horizontal[signal * plane + row * out_w..signal * plane + (row + 1) * out_w];
            dst.fill(0.0);
            for (tap, &weight) in kernel.iter().enumerate() {
                for (d, s) in dst.iter_mut().zip(&src[tap..tap + out_w]) {
                    *d += weight * s;
                }
            }
        }
    }

    // Vertical pass, one output row at a time, then the SSIM and cs maps in f64.
    let mut filtered: Vec<Sample> = vec![0.0; 5 * out_w];
    let mut ssim_sum = 0.0f64;
    let mut cs_sum = 0.0f64;
    let ox = f64::from(offset_x);
    let oy = f64::from(offset_y);
    // Filtering the centred images equals filtering the raw ones up to terms in (1 - s), s = sum of the 2-D
    // weights; adding them back reproduces the reference's arithmetic for a kernel that does not sum to 1.
    let tap_sum: f64 = kernel.iter().map(|&t| f64::from(t)).sum();
    let s = tap_sum * tap_sum;
    let leak = 1.0 - s;
    for out_row in 0..out_h {
        for signal in 0..5 {
            let dst = &mut filtered[signal * out_w..(signal + 1) * out_w];
            dst.fill(0.0);
            for (tap, &weight) in kernel.iter().enumerate() {
                let start = signal * plane + (out_row + tap) * out_w;
                for (d, s) in dst.iter_mut().zip(&horizontal[start..start + out_w]) {
                    *d += weight * s;
                }
            }
        }
        let (fx, rest) = filtered.split_at(out_w);
        let (fy, rest) = rest.split_at(out_w);
        let (fxx, rest) = rest.split_at(out_w);
        let (fyy, fxy) = rest.split_at(out_w);
        let mut row_ssim = 0.0f64;
        let mut row_cs = 0.0f64;
        for i in 0..out_w {
            let mx = f64::from(fx[i]);
            let my = f64::from(fy[i]);
            let var_x = f64::from(fxx[i]) - mx * mx + 2.0 * ox * leak * mx + ox * ox * s * leak;
            let var_y = f64::from(fyy[i]) - my * my + 2.0 * oy * leak * my + oy * oy * s * leak;
            let cov_xy = f64::from(fxy[i]) - mx * my + oy * leak * mx + ox * leak * my + ox * oy * s * leak;
            let mu_x = mx + s * ox;
            let mu_y = my + s * oy;
            let cs = (2.0 * cov_xy + c2) / (var_x + var_y + c2);
            let luminance = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1);
            row_cs += cs;
            row_ssim += luminance * cs;
        }
        ssim_sum += row_ssim;
        cs_sum += row_cs;
    }
    let count = (out_w * out_h) as f64;
    (ssim_sum / count, cs_sum / count)
}

/// VainF pooling: 2x2 mean, stride 2, zero padding of `side % 2` on both ends, the padding counted in the mean.
fn pool_padded(level: &Level) -> Level {
    let pad_x = level.width_px % 2;
    let pad_y = level.height_px % 2;
    let out_w = level.width_px / 2 + pad_x;
    let out_h = level.height_px / 2 + pad_y;
    let pool = |src: &[f32]| -> Vec<f32> {
        let at = |row: isize, col: isize| -> f64 {
            if row < 0 || col < 0 || row as usize >= level.height_px || col as usize >= level.width_px {
                0.0
            } else {
                f64::from(src[row as usize * level.width_px + col as usize])
            }
        };
        let mut out = Vec::with_capacity(out_w * out_h);
        for r in 0..out_h {
            let top = (2 * r) as isize - pad_y as isize;
            for c in 0..out_w {
                let left = (2 * c) as isize - pad_x as isize;
                let sum = at(top, left) + at(top, left + 1) + at(top + 1, left) + at(top + 1, left + 1);
                out.push((0.25 * sum) as f32);
            }
        }
        out
    };
    Level { width_px: out_w, height_px: out_h, x: pool(&level.x), y: pool(&level.y) }
}

/// Thorax_GAN pooling: `avg_pool2d(2)` without padding; an odd last row/column is dropped.
fn pool_floor(level: &Level) -> Level {
    let out_w = level.width_px / 2;
    let out_h = level.height_px / 2;
    let w = level.width_px;
    let pool = |src: &[f32]| -> Vec<f32> {
        let mut out = Vec::with_capacity(out_w * out_h);
        for r in 0..out_h {
            let top = &src[2 * r * w..(2 * r + 1) * w];
            let bottom = &src[(2 * r + 1) * w..(2 * r + 2) * w];
            for c in 0..out_w {
                let sum = f64::from(top[2 * c])
                    + f64::from(top[2 * c + 1])
                    + f64::from(bottom[2 * c])
                    + f64::from(bottom[2 * c + 1]);
                out.push((0.25 * sum) as f32);
            }
        }
        out
    };
    Level { width_px: out_w, height_px: out_h, x: pool(&level.x), y: pool(&level.y) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize, phase: f32) -> GrayImage {
        let pixels = (0..w * h)
            .map(|i| {
                let (r, c) = ((i / w) as f32, (i % w) as f32);
                (127.5 + 100.0 * ((r * 0.07 + phase).sin() * (c * 0.05).cos())).round()
            })
            .collect();
        GrayImage::new(w, h, pixels).unwrap()
    }

    #[test]
    fn identical_images_give_one_in_both_modes() {
        let a = ramp(200, 170, 0.0);
        let standard = ms_ssim(&a, &a, MsSsimMode::Standard { data_range: 255.0 }).unwrap();
        assert!((standard.value - 1.0).abs() < 1e-9, "{}", standard.value);
        let compat = ms_ssim(&a, &a, MsSsimMode::ThoraxGanCompat).unwrap();
        assert!((compat.value - 1.0).abs() < 1e-9, "{}", compat.value);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let a = ramp(200, 170, 0.0);
        let b = ramp(170, 200, 0.0);
        assert!(matches!(ms_ssim(&a, &b, MsSsimMode::ThoraxGanCompat), Err(MetricError::ShapeMismatch { .. })));
        let small = ramp(160, 300, 0.0);
        assert!(matches!(
            ms_ssim(&small, &small, MsSsimMode::Standard { data_range: 255.0 }),
            Err(MetricError::InvalidArgument { .. })
        ));
        assert!(matches!(
            ms_ssim(&a, &a, MsSsimMode::Standard { data_range: 0.0 }),
            Err(MetricError::InvalidArgument { .. })
        ));
        assert!(GrayImage::new(2, 2, vec![0.0, f32::NAN, 0.0, 0.0]).is_err());
        assert!(GrayImage::new(2, 2, vec![0.0; 3]).is_err());
    }

    #[test]
    fn vainf_taps_are_the_normalised_gaussian() {
        let exact = gaussian_kernel(WINDOW_SIZE);
        for (tap, e) in VAINF_TAPS.iter().zip(&exact) {
            // Within two float32 ulps of the f64-normalised Gaussian.
            assert!((f64::from(*tap) - f64::from(*e)).abs() < 5e-8, "{tap} vs {e}");
        }
        let sum: f64 = VAINF_TAPS.iter().map(|&t| f64::from(t)).sum();
        assert!((sum - (1.0 - 3.073_364_496e-8)).abs() < 1e-15, "{sum}");
    }

    #[test]
    fn pooling_matches_torch_padding_rule() {
        // 3x3 ones, padding 1 on both axes, count_include_pad: corners see 1 real pixel of 4.
        let level = Level { width_px: 3, height_px: 3, x: vec![1.0; 9], y: vec![1.0; 9] };
        let pooled = pool_padded(&level);
        assert_eq!((pooled.width_px, pooled.height_px), (2, 2));
        assert_eq!(pooled.x, vec![0.25, 0.5, 0.5, 1.0]);
        let floor = pool_floor(&level);
        assert_eq!((floor.width_px, floor.height_px, floor.x.clone()), (1, 1, vec![1.0]));
    }
}
