//! The two gradients of a convolution on the fast CPU path, for training (`train::conv`):
//!
//! - the input gradient of a stride-1 convolution is itself a stride-1 convolution of the output gradient, with
//!   the kernel flipped in space and its in/out channels swapped, padded by `k - 1 - padding`; it reuses the forward
//!   path (Winograd included);
//! - the weight gradient `dW[o, (c, ky, kx)] = sum over images and pixels of dY[o, px] * patch[(c, ky, kx), px]` is
//!   one GEMM per tile of output rows on the same im2col patches as the forward pass, accumulated per thread and
//!   summed at the end, so no `[pixels, C * kh * kw]` matrix of the whole batch is ever allocated.

use candle_core::{Device, Result, Tensor, bail};
use rayon::prelude::*;

use super::{
    Activation, ConvShape, EpilogueValues, MIN_TILE_PX, PATCH_BUDGET_FLOATS, Placement, SCRATCH, TileJob, TileScratch,
    conv2d_values, with_cpu_f32,
};

/// `weight` `[O, C, kh, kw]` flipped in both spatial axes with in and out swapped: `[C, O, kh, kw]`.
pub fn flipped_transposed_kernel(weight: &Tensor) -> Result<Tensor> {
    let (maps_out, maps_in, kernel_h, kernel_w) = weight.dims4()?;
    let values = weight.flatten_all()?.to_vec1::<f32>()?;
    let mut flipped = vec![0f32; values.len()];
    for o in 0..maps_out {
        for c in 0..maps_in {
            for ky in 0..kernel_h {
                for kx in 0..kernel_w {
                    let from = ((o * maps_in + c) * kernel_h + ky) * kernel_w + kx;
                    let to = ((c * maps_out + o) * kernel_h + (kernel_h - 1 - ky)) * kernel_w + (kernel_w - 1 - kx);
                    flipped[to] = values[from];
                }
            }
        }
    }
    Tensor::from_vec(flipped, (maps_in, maps_out, kernel_h, kernel_w), &Device::Cpu)
}

/// Input gradient of a stride-1 convolution by the square `weight` with `padding`, given `grad_output`: a
/// convolution with the flipped, transposed kernel, padded by `k - 1 - padding`. CPU float32 only.
pub fn conv2d_input_grad(grad_output: &Tensor, weight: &Tensor, padding: usize) -> Result<Tensor> {
    let (_, _, kernel_h, kernel_w) = weight.dims4()?;
    if kernel_h != kernel_w || padding >= kernel_h {
        bail!(
            "conv2d input gradient: needs a square kernel and padding below its size, got {kernel_h}x{kernel_w}, \
             padding {padding}"
        );
    }
    let grad_output = grad_output.contiguous()?;
    let kernel = flipped_transposed_kernel(weight)?;
    let (values, dims) = with_cpu_f32(&grad_output, "conv2d input gradient output gradient", |dy| {
        with_cpu_f32(&kernel, "conv2d input gradient kernel", |k| {
            conv2d_values(dy, dims4(&grad_output)?, k, dims4(&kernel)?, 1, kernel_h - 1 - padding)
        })
    })?;
    Tensor::from_vec(values, dims.to_vec(), &Device::Cpu)
}

fn dims4(tensor: &Tensor) -> Result<[usize; 4]> {
    let (a, b, c, d) = tensor.dims4()?;
    Ok([a, b, c, d])
}

/// Weight gradient `[O, C, kh, kw]` of the convolution of `input` `[N, C, H, W]` with a `kernel` of
/// `(kh, kw)`, `stride` and `padding`, given `grad_output` `[N, O, out_h, out_w]`. CPU float32 only.
pub fn conv2d_weight_grad(
    input: &Tensor,
    grad_output: &Tensor,
    kernel: (usize, usize),
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let (batch, channels_in, height, width) = input.dims4()?;
    let (grad_batch, channels_out, grad_h, grad_w) = grad_output.dims4()?;
    let shape = ConvShape::from_dims(
        [batch, channels_in, height, width],
        [channels_out, channels_in, kernel.0, kernel.1],
        stride,
        padding,
    )?;
    if grad_batch != batch || grad_h != shape.out_height || grad_w != shape.out_width {
        bail!(
            "conv2d weight gradient: output gradient {:?} does not match the output [{batch}, {channels_out}, {}, {}]",
            grad_output.dims(),
            shape.out_height,
            shape.out_width
        );
    }
    let input = input.contiguous()?;
    let grad_output = grad_output.contiguous()?;
    let values = with_cpu_f32(&input, "conv2d weight gradient input", |x| {
        with_cpu_f32(&grad_output, "conv2d weight gradient output gradient", |dy| Ok(weight_grad_cpu(x, dy, &shape)))
    })?;
    Tensor::from_vec(values, (channels_out, channels_in, kernel.0, kernel.1), &Device::Cpu)
}

fn weight_grad_cpu(input: &[f32], grad_output: &[f32], shape: &ConvShape) -> Vec<f32> {
    let patch_rows = shape.patch_rows();
    let gradient_len = shape.channels_out * patch_rows;
    let pixels = shape.out_height * shape.out_width;
    if gradient_len == 0 || pixels == 0 || shape.batch == 0 {
        return vec![0.0; gradient_len];
    }
    let threads = rayon::current_num_threads().max(1);
    let tile_px = (PATCH_BUDGET_FLOATS / patch_rows.max(1)).clamp(MIN_TILE_PX, pixels.max(MIN_TILE_PX));
    let rows_per_tile = tile_px.div_ceil(shape.out_width).clamp(1, shape.out_height);
    let tiles_per_image = shape.out_height.div_ceil(rows_per_tile);
    let tile_count = shape.batch * tiles_per_image;
    let identity =
        EpilogueValues { scale: None, shift: None, activation: Activation::Identity, pixel_norm_epsilon: None };
    // Tiles accumulate the transposed gradient `[C * kh * kw, O]`: with the output channel innermost, gemm reads
    // the patch matrix in place and only packs the (smaller) output-gradient tile (see `accumulate_weight_grad`).
    let accumulate_tile = |gradient: &mut [f32], tile: usize, parallelism: gemm::Parallelism| {
        let image = tile / tiles_per_image;
        let first_row = (tile % tiles_per_image) * rows_per_tile;
        let rows = rows_per_tile.min(shape.out_height - first_row);
        let job = TileJob {
            input,
            weight: &[],
            shape,
            prologue: None,
            epilogue: &identity,
            placement: Placement::Direct,
            winograd_weights: None,
            image,
            first_row,
            rows,
        };
        let mut run =
            |scratch: &mut TileScratch| job.accumulate_weight_grad(grad_output, gradient, scratch, parallelism);
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => run(&mut scratch),
            Err(_) => run(&mut TileScratch::default()),
        });
    };
    if tile_count >= threads && threads > 1 {
        // Each thread sums a fixed run of tiles and the partial sums are added in thread order, so the result does
        // not depend on scheduling (training resumes bit for bit).
        let tiles_per_thread = tile_count.div_ceil(threads);
        let partials: Vec<Vec<f32>> = (0..threads)
            .into_par_iter()
            .map(|part| {
                let mut gradient = vec![0f32; gradient_len];
                let first = part * tiles_per_thread;
                for tile in first..(first + tiles_per_thread).min(tile_count) {
                    accumulate_tile(&mut gradient, tile, gemm::Parallelism::None);
                }
                gradient
            })
            .collect();
        let mut partials = partials.into_iter();
        let mut gradient = partials.next().unwrap_or_else(|| vec![0f32; gradient_len]);
        for partial in partials {
            gradient.iter_mut().zip(&partial).for_each(|(x, y)| *x += y);
        }
        transposed(&gradient, patch_rows, shape.channels_out)
    } else {
        let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        let mut gradient = vec![0f32; gradient_len];
        (0..tile_count).for_each(|tile| accumulate_tile(&mut gradient, tile, parallelism));
        transposed(&gradient, patch_rows, shape.channels_out)
    }
}

/// The `[columns, rows]` transpose of the row-major `[rows, columns]` matrix `values`, in 16 x 16 blocks: a row at a
/// time, every write went to another cache line (`rows` floats apart), and the transposes took 5% of a CycleGAN
/// training step.
fn transposed(values: &[f32], rows: usize, columns: usize) -> Vec<f32> {
    const BLOCK: usize = 16;
    let mut out = vec![0f32; values.len()];
    for r0 in (0..rows).step_by(BLOCK) {
        for c0 in (0..columns).step_by(BLOCK) {
            for r in r0..(r0 + BLOCK).min(rows) {
                for c in c0..(c0 + BLOCK).min(columns) {
                    out[c * rows + r] = values[r * columns + c];
                }
            }
        }
    }
    out
}

impl TileJob<'_> {
    /// `gradient_t[r, o] += sum over this tile's pixels j of grad_output[image, o, j] * patches[r, j]`, into the
    /// transposed weight gradient `[patch_rows, O]`.
    ///
    /// Written as the product `[O, columns] x [columns, patch_rows]` with a column-major destination, gemm packs
    /// only the left operand, the output gradient (O rows), and reads the patches (patch_rows = 9 O for a 3x3 layer)
    /// where they lie. The row-major `[O, patch_rows]` destination made gemm swap the operands and gather the whole
    /// patch matrix element by element: 18% of a CPU GAN training step.
    fn accumulate_weight_grad(
        &self,
        grad_output: &[f32],
        gradient: &mut [f32],
        scratch: &mut TileScratch,
        parallelism: gemm::Parallelism,
    ) {
        let shape = self.shape;
        let pixels = shape.out_height * shape.out_width;
        let columns = self.rows * shape.out_width;
        let patch_rows = shape.patch_rows();
        let image_len = shape.channels_in * shape.height * shape.width;
        let image_input = &self.input[self.image * image_len..(self.image + 1) * image_len];
        // The patch matrix [patch_rows, columns]; a pointwise layer reads its input in place.
        let (rhs, rhs_row_stride) = if shape.is_pointwise() {
            (image_input[self.first_row * shape.out_width..].as_ptr(), pixels)
        } else {
            scratch.patches.resize(patch_rows * columns, 0.0);
            self.pack_patches(image_input, &mut scratch.patches);
            (scratch.patches.as_ptr(), columns)
        };
        let lhs_offset = self.image * shape.channels_out * pixels + self.first_row * shape.out_width;
        let lhs = &grad_output[lhs_offset..];
        debug_assert!(gradient.len() >= shape.channels_out * patch_rows);
        // SAFETY: lhs holds channels_out rows of `columns` values `pixels` apart (inside this image's gradient);
        // rhs, read transposed, holds patch_rows rows of `columns` values; gradient is patch_rows x channels_out,
        // written column-major as the channels_out x patch_rows product.
        unsafe {
            gemm::gemm(
                shape.channels_out,
                patch_rows,
                columns,
                gradient.as_mut_ptr(),
                shape.channels_out as isize,
                1,
                true,
                lhs.as_ptr(),
                1,
                pixels as isize,
                rhs,
                rhs_row_stride as isize,
                1,
                1.0f32,
                1.0f32,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Var;

    use super::super::tests::{random, relative_error};
    use super::*;

    /// Both gradients equal candle's autograd of its own conv2d, across kernel sizes, paddings, strides (weight
    /// gradient) and tile splits (a 64x64 image spans several tiles).
    #[test]
    fn gradients_match_candle_autograd() {
        // (batch, in, out, h, w, k, stride, padding)
        let cases = [
            (2, 3, 5, 9, 7, 3, 1, 1),
            (1, 16, 24, 64, 64, 3, 1, 1),
            (3, 4, 6, 8, 8, 2, 1, 1),
            (2, 8, 4, 6, 6, 1, 1, 0),
            (1, 5, 3, 7, 9, 3, 1, 0),
            (1, 2, 4, 6, 6, 4, 1, 0),
            (2, 3, 4, 11, 11, 3, 2, 1),
            (1, 3, 8, 23, 23, 7, 2, 3),
            // Small maps, packed by gathering: 3x3, pointwise, stride 2, an odd batch.
            (16, 48, 12, 4, 4, 3, 1, 1),
            (16, 40, 24, 2, 2, 1, 1, 0),
            (5, 7, 9, 6, 10, 3, 2, 1),
        ];
        for (i, (n, c, o, h, w, k, stride, padding)) in cases.into_iter().enumerate() {
            let x = Var::from_tensor(&random(&[n, c, h, w], 1 + i as u64)).unwrap();
            let weight = Var::from_tensor(&random(&[o, c, k, k], 100 + i as u64)).unwrap();
            let y = x.as_tensor().conv2d(weight.as_tensor(), padding, stride, 1, 1).unwrap();
            let probe = random(y.dims(), 200 + i as u64);
            let grads = (&y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let dw = conv2d_weight_grad(x.as_tensor(), &probe, (k, k), stride, padding).unwrap();
            let error = relative_error(&dw, grads.get(weight.as_tensor()).unwrap());
            assert!(error < 1e-5, "case {i}: weight gradient relative error {error}");
            if stride == 1 {
                let dx = conv2d_input_grad(&probe, weight.as_tensor(), padding).unwrap();
                let error = relative_error(&dx, grads.get(x.as_tensor()).unwrap());
                assert!(error < 1e-5, "case {i}: input gradient relative error {error}");
            }
        }
    }

    #[test]
    fn mismatched_output_gradient_is_refused_with_its_shape() {
        let x = random(&[1, 2, 5, 5], 1);
        let wrong = random(&[1, 3, 4, 4], 2);
        let message = conv2d_weight_grad(&x, &wrong, (3, 3), 1, 1).unwrap_err().to_string();
        assert!(message.contains("[1, 3, 4, 4]"), "{message}");
    }

    /// Against the definition, for shapes smaller than, equal to and not a multiple of the block.
    #[test]
    fn transposed_is_the_transpose() {
        for (rows, columns) in [(1usize, 1usize), (3, 5), (16, 16), (17, 33), (576, 64)] {
            let values: Vec<f32> = (0..rows * columns).map(|i| i as f32).collect();
            let out = transposed(&values, rows, columns);
            for r in 0..rows {
                for c in 0..columns {
                    assert_eq!(out[c * rows + r], values[r * columns + c], "{rows}x{columns} at ({r}, {c})");
                }
            }
        }
    }
}
