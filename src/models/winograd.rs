//! Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (a private part of `fast_conv`): each 2x2 output tile comes
//! from a 4x4 input tile with 16 multiplies per channel pair instead of 36, i.e. 16 GEMMs
//! `M[e] = U[e] (out x in) * V[e] (in x tiles)` with `U = G g G^T` (weights) and `V = B^T d B` (input tiles), and
//! the output `Y = A^T M A` (Lavin and Gray 2016). 2.25x fewer multiply-adds than im2col; the transforms are adds
//! only, and the rounding stays within a few float32 ulps of the direct sum at these sizes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use candle_core::TensorId;
use rayon::prelude::*;

use super::{ConvShape, EpilogueValues, SharedOutput, TileScratch, gemm_f32};

/// Transformed input tiles of one chunk are kept to about this many floats (1 MiB) per thread, inside L2.
const TRANSFORMED_BUDGET_FLOATS: usize = 1 << 18;
/// Fewest 2x2 tiles per chunk: thinner GEMMs lose their speed.
const MIN_CHUNK_TILES: usize = 64;
/// Most tiles per chunk.
const MAX_CHUNK_TILES: usize = 1024;

/// Most transformed-weight floats kept between calls (128 MiB; the 256 px generator needs about 12 M).
const WEIGHT_CACHE_FLOATS: usize = 32 << 20;

/// Transformed weights by the id of their weight tensor (candle never reuses ids and weights are immutable), so a
/// network pays the weight transform once rather than on every forward pass; oldest entries go first.
static WEIGHT_CACHE: Mutex<VecDeque<(TensorId, Arc<Vec<f32>>)>> = Mutex::new(VecDeque::new());

/// The transformed weights of tensor `id`, made by `transform` on first use; `None` (a weight copied to make it
/// contiguous, whose id is new on every call) is transformed without the cache.
pub(super) fn cached_weights(id: Option<TensorId>, transform: impl FnOnce() -> Vec<f32>) -> Arc<Vec<f32>> {
    let Some(id) = id else {
        return Arc::new(transform());
    };
    if let Ok(cache) = WEIGHT_CACHE.lock()
        && let Some((_, found)) = cache.iter().find(|(key, _)| *key == id)
    {
        return Arc::clone(found);
    }
    let made = Arc::new(transform());
    if made.len() <= WEIGHT_CACHE_FLOATS
        && let Ok(mut cache) = WEIGHT_CACHE.lock()
    {
        let mut held: usize = cache.iter().map(|(_, u)| u.len()).sum::<usize>() + made.len();
        while held > WEIGHT_CACHE_FLOATS {
            match cache.pop_front() {
                Some((_, evicted)) => held -= evicted.len(),
                None => break,
            }
        }
        cache.push_back((id, Arc::clone(&made)));
    }
    made
}

/// Fewest output pixels per image for Winograd: below 32x32 the per-call weight transform and the thin GEMMs
/// (few tiles) made it slower than im2col on the generator's 8x8 and 16x16 layers.
const MIN_OUTPUT_PX: usize = 1024;

/// Whether Winograd applies: 3x3, stride 1, channels and pixels enough for the GEMMs to dominate the transforms.
pub(super) fn applies(shape: &ConvShape) -> bool {
    shape.kernel_height == 3
        && shape.kernel_width == 3
        && shape.stride == 1
        && shape.channels_in >= 16
        && shape.channels_out >= 16
        && shape.out_height >= 2
        && shape.out_width >= 2
        && shape.out_height * shape.out_width >= MIN_OUTPUT_PX
}

/// `U[e][out][in]` from `weight` `[out, in, 3, 3]` (`e` over 4x4).
fn transform_weights(weight: &[f32], shape: &ConvShape) -> Vec<f32> {
    let (cout, cin) = (shape.channels_out, shape.channels_in);
    let mut u = vec![0.0f32; 16 * cout * cin];
    for (pair, g) in weight.chunks_exact(9).enumerate() {
        // G g: rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 (each a row of 3).
        let mut gg = [[0.0f32; 3]; 4];
        for col in 0..3 {
            let (g0, g1, g2) = (g[col], g[3 + col], g[6 + col]);
            gg[0][col] = g0;
            gg[1][col] = 0.5 * (g0 + g1 + g2);
            gg[2][col] = 0.5 * (g0 - g1 + g2);
            gg[3][col] = g2;
        }
        // (G g) G^T, row by row.
        for (row, [a, b, c]) in gg.iter().enumerate() {
            let values = [*a, 0.5 * (a + b + c), 0.5 * (a - b + c), *c];
            for (col, v) in values.iter().enumerate() {
                u[(row * 4 + col) * cout * cin + pair] = *v;
            }
        }
    }
    u
}

/// The 3x3 stride-1 convolution of contiguous NCHW `input` by Winograd F(2x2, 3x3), then the epilogue.
pub(super) fn conv3x3(
    input: &[f32],
    weight: &[f32],
    weight_id: Option<TensorId>,
    shape: &ConvShape,
    epilogue: &EpilogueValues,
    threads: usize,
) -> Vec<f32> {
    let (out_h, out_w) = (shape.out_height, shape.out_width);
    let mut output = vec![0.0f32; shape.batch * shape.channels_out * out_h * out_w];
    if output.is_empty() {
        return output;
    }
    let u = cached_weights(weight_id, || transform_weights(weight, shape));
    let (tile_rows, tile_cols) = (out_h.div_ceil(2), out_w.div_ceil(2));
    let widest = shape.channels_in.max(shape.channels_out);
    let chunk_tiles = (TRANSFORMED_BUDGET_FLOATS / (16 * widest)).clamp(MIN_CHUNK_TILES, MAX_CHUNK_TILES);
    let mut rows_per_chunk = (chunk_tiles / tile_cols).clamp(1, tile_rows);
    // Enough chunks to keep every thread busy.
    let chunks_wanted = threads.div_ceil(shape.batch);
    if tile_rows.div_ceil(rows_per_chunk) < chunks_wanted {
        rows_per_chunk = tile_rows.div_ceil(chunks_wanted).max(1);
    }
    let chunks_per_image = tile_rows.div_ceil(rows_per_chunk);
    let chunk_count = shape.batch * chunks_per_image;
    let shared = SharedOutput(output.as_mut_ptr());
    let run_chunk = |chunk: usize, parallelism: gemm::Parallelism| {
        let image = chunk / chunks_per_image;
        let first_tile_row = (chunk % chunks_per_image) * rows_per_chunk;
        let tile_row_count = rows_per_chunk.min(tile_rows - first_tile_row);
        let job = ChunkJob { input, u: &u, shape, epilogue, image, first_tile_row, tile_row_count, tile_cols };
        super::SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => job.run(&mut scratch, shared, parallelism),
            Err(_) => job.run(&mut TileScratch::default(), shared, parallelism),
        });
    };
    if chunk_count >= threads && threads > 1 {
        (0..chunk_count).into_par_iter().for_each(|chunk| run_chunk(chunk, gemm::Parallelism::None));
    } else {
        let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        (0..chunk_count).for_each(|chunk| run_chunk(chunk, parallelism));
    }
    output
}

/// Tile rows `first_tile_row..first_tile_row + tile_row_count` of one image (output rows twice that).
struct ChunkJob<'a> {
    input: &'a [f32],
    u: &'a [f32],
    shape: &'a ConvShape,
    epilogue: &'a EpilogueValues,
    image: usize,
    first_tile_row: usize,
    tile_row_count: usize,
    tile_cols: usize,
}

impl ChunkJob<'_> {
    fn run(&self, scratch: &mut TileScratch, output: SharedOutput, parallelism: gemm::Parallelism) {
        let s = self.shape;
        let (cin, cout) = (s.channels_in, s.channels_out);
        let tiles = self.tile_row_count * self.tile_cols;
        scratch.patches.resize(16 * cin * tiles, 0.0);
        scratch.products.resize(16 * cout * tiles, 0.0);
        self.transform_input(&mut scratch.patches, tiles);
        for e in 0..16 {
            let lhs = &self.u[e * cout * cin..(e + 1) * cout * cin];
            // SAFETY: products[e] holds cout x tiles values, patches[e] cin x tiles.
            unsafe {
                gemm_f32(
                    cout,
                    tiles,
                    cin,
                    scratch.products.as_mut_ptr().add(e * cout * tiles),
                    tiles,
                    lhs,
                    scratch.patches.as_ptr().add(e * cin * tiles),
                    tiles,
                    parallelism,
                );
            }
        }
        let (out_h, out_w) = (s.out_height, s.out_width);
        let first_row = 2 * self.first_tile_row;
        let rows = (2 * self.tile_row_count).min(out_h - first_row);
        let plane = out_h * out_w;
        let image_offset = self.image * cout * plane;
        for co in 0..cout {
            // SAFETY: output rows first_row..first_row + rows of channel co of this image belong to this chunk only.
            let out_rows = unsafe {
                std::slice::from_raw_parts_mut(
                    output.0.add(image_offset + co * plane + first_row * out_w),
                    rows * out_w,
                )
            };
            self.transform_output(&scratch.products, co, tiles, out_rows, rows);
        }
        // SAFETY: as above, for every channel's rows of this chunk.
        unsafe {
            self.epilogue.apply(
                output.0.add(image_offset + first_row * out_w),
                plane,
                cout,
                rows * out_w,
                &mut scratch.sumsq,
            );
        }
    }

    /// `V[e][ci][t] = (B^T d B)[e]` for the 4x4 input tile d of every tile t (zero outside the image), a whole
    /// tile row at a time: B^T along the rows as vector operations on four padded input rows, then B along the
    /// columns for all tiles of the row.
    fn transform_input(&self, v: &mut [f32], tiles: usize) {
        let s = self.shape;
        let plane = s.height * s.width;
        let image_input = &self.input[self.image * s.channels_in * plane..(self.image + 1) * s.channels_in * plane];
        let padded_width = 2 * self.tile_cols + 2;
        let mut rows = vec![0.0f32; 4 * padded_width];
        let mut combined = vec![0.0f32; 4 * padded_width];
        for ci in 0..s.channels_in {
            let channel = &image_input[ci * plane..(ci + 1) * plane];
            for tr in 0..self.tile_row_count {
                let first_y = 2 * (self.first_tile_row + tr);
                for (dy, row) in rows.chunks_exact_mut(padded_width).enumerate() {
                    row.fill(0.0);
                    // Input row first_y + dy - padding, placed at column offset `padding`.
                    let y = first_y + dy;
                    if y < s.padding || y - s.padding >= s.height {
                        continue;
                    }
                    let source = &channel[(y - s.padding) * s.width..(y - s.padding + 1) * s.width];
                    let end = (s.padding + s.width).min(padded_width);
                    if end > s.padding {
                        row[s.padding..end].copy_from_slice(&source[..end - s.padding]);
                    }
                }
                let (r0, rest) = rows.split_at(padded_width);
                let (r1, rest) = rest.split_at(padded_width);
                let (r2, r3) = rest.split_at(padded_width);
                let (c0, rest) = combined.split_at_mut(padded_width);
                let (c1, rest) = rest.split_at_mut(padded_width);
                let (c2, c3) = rest.split_at_mut(padded_width);
                // B^T d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3.
                for x in 0..padded_width {
                    c0[x] = r0[x] - r2[x];
                    c1[x] = r1[x] + r2[x];
                    c2[x] = r2[x] - r1[x];
                    c3[x] = r1[x] - r3[x];
                }
                let first_tile = tr * self.tile_cols;
                for (i, row) in combined.chunks_exact(padded_width).enumerate() {
                    // (.) B per tile: columns (a, b, c, d) at 2 tc .. 2 tc + 3 -> a - c, b + c, c - b, b - d.
                    let pairs = || row.chunks_exact(2).zip(row[2..].chunks_exact(2));
                    let destination = |j: usize| ((i * 4 + j) * s.channels_in + ci) * tiles + first_tile;
                    let dst = &mut v[destination(0)..destination(0) + self.tile_cols];
                    dst.iter_mut().zip(pairs()).for_each(|(o, (p, q))| *o = p[0] - q[0]);
                    let dst = &mut v[destination(1)..destination(1) + self.tile_cols];
                    dst.iter_mut().zip(pairs()).for_each(|(o, (p, q))| *o = p[1] + q[0]);
                    let dst = &mut v[destination(2)..destination(2) + self.tile_cols];
                    dst.iter_mut().zip(pairs()).for_each(|(o, (p, q))| *o = q[0] - p[1]);
                    let dst = &mut v[destination(3)..destination(3) + self.tile_cols];
                    dst.iter_mut().zip(pairs()).for_each(|(o, (p, q))| *o = p[1] - q[1]);
                }
            }
        }
    }

    /// Output rows of channel `co` for this chunk: `Y = A^T M A` per tile, a tile row at a time, clipped at the
    /// image edge.
    fn transform_output(&self, m: &[f32], co: usize, tiles: usize, out_rows: &mut [f32], rows: usize) {
        let s = self.shape;
        let cout = s.channels_out;
        let out_w = s.out_width;
        let cols = self.tile_cols;
        // A^T M: rows m0 + m1 + m2 and m1 - m2 - m3, for each of the 4 columns, over the tiles of a row.
        let mut am = vec![0.0f32; 8 * cols];
        for tr in 0..self.tile_row_count {
            let first_tile = tr * cols;
            let at = |e: usize| &m[(e * cout + co) * tiles + first_tile..][..cols];
            for col in 0..4 {
                let (m0, m1, m2, m3) = (at(col), at(4 + col), at(8 + col), at(12 + col));
                let (top, bottom) = am.split_at_mut(4 * cols);
                let top = &mut top[col * cols..(col + 1) * cols];
                let bottom = &mut bottom[col * cols..(col + 1) * cols];
                for t in 0..cols {
                    top[t] = m0[t] + m1[t] + m2[t];
                    bottom[t] = m1[t] - m2[t] - m3[t];
                }
            }
            for dy in 0..2 {
                let y = 2 * tr + dy;
                if y >= rows {
                    continue;
                }
                let half = &am[dy * 4 * cols..(dy + 1) * 4 * cols];
                let (a, rest) = half.split_at(cols);
                let (b, rest) = rest.split_at(cols);
                let (c, d) = rest.split_at(cols);
                // (.) A: a + b + c at column 2 tc, b - c - d at 2 tc + 1 (when inside the image).
                let out_row = &mut out_rows[y * out_w..(y + 1) * out_w];
                for (t, pair) in out_row.chunks_mut(2).enumerate() {
                    pair[0] = a[t] + b[t] + c[t];
                    if let Some(second) = pair.get_mut(1) {
                        *second = b[t] - c[t] - d[t];
                    }
                }
            }
        }
    }
}

/// Whether the sub-pixel upscale (2x2 phase kernels, padding 1) takes Winograd F(2x2, 2x2): 9 multiplies per 2x2
/// positions and channel pair instead of 16, worth it from 32x32 inputs.
pub(super) fn subpixel_applies(shape: &ConvShape) -> bool {
    shape.kernel_height == 2
        && shape.kernel_width == 2
        && shape.stride == 1
        && shape.padding == 1
        && shape.channels_in >= 16
        && shape.channels_out >= 16
        && shape.out_height * shape.out_width >= MIN_OUTPUT_PX
}

/// `U[e][out][in]` (e over 3x3) from 2x2 kernels `[out, in, 2, 2]`: `G g G^T` with G = [[1, 0], [1, 1], [0, 1]].
pub(super) fn transform_weights_2x2(weight: &[f32], shape: &ConvShape) -> Vec<f32> {
    let pairs = shape.channels_out * shape.channels_in;
    let mut u = vec![0.0f32; 9 * pairs];
    for (pair, g) in weight.chunks_exact(4).enumerate() {
        let gg = [[g[0], g[1]], [g[0] + g[2], g[1] + g[3]], [g[2], g[3]]];
        for (row, [a, b]) in gg.iter().enumerate() {
            for (col, v) in [*a, a + b, *b].iter().enumerate() {
                u[(row * 3 + col) * pairs + pair] = *v;
            }
        }
    }
    u
}

/// Positions `rows.0..rows.0 + rows.1` (`rows.0` even) of the 2x2, padding-1 convolution of one image with all
/// `channels_out` sub-pixel kernels, by Winograd F(2x2, 2x2), into `products` `[channels_out][rows.1 * out_width]`.
/// `v` and `m` are scratch buffers.
#[allow(clippy::too_many_arguments)]
pub(super) fn subpixel_positions(
    image_input: &[f32],
    u: &[f32],
    shape: &ConvShape,
    rows: (usize, usize),
    products: &mut [f32],
    v: &mut Vec<f32>,
    m: &mut Vec<f32>,
    parallelism: gemm::Parallelism,
) {
    let (first_row, row_count) = rows;
    let (cin, cout) = (shape.channels_in, shape.channels_out);
    let out_w = shape.out_width;
    let (tile_rows, tile_cols) = (row_count.div_ceil(2), out_w.div_ceil(2));
    let tiles = tile_rows * tile_cols;
    v.resize(9 * cin * tiles, 0.0);
    m.resize(9 * cout * tiles, 0.0);
    // V = B^T d B with B^T = [[1, -1, 0], [0, 1, 0], [0, -1, 1]], per 3x3 input tile at (2 ty - 1, 2 tx - 1).
    let plane = shape.height * shape.width;
    let padded_width = 2 * tile_cols + 2;
    let mut input_rows = vec![0.0f32; 3 * padded_width];
    for ci in 0..cin {
        let channel = &image_input[ci * plane..(ci + 1) * plane];
        for tr in 0..tile_rows {
            let first_y = first_row + 2 * tr;
            for (dy, row) in input_rows.chunks_exact_mut(padded_width).enumerate() {
                row.fill(0.0);
                let y = first_y + dy;
                if y < shape.padding || y - shape.padding >= shape.height {
                    continue;
                }
                let source = &channel[(y - shape.padding) * shape.width..(y - shape.padding + 1) * shape.width];
                let end = (shape.padding + shape.width).min(padded_width);
                row[shape.padding..end].copy_from_slice(&source[..end - shape.padding]);
            }
            let (r0, rest) = input_rows.split_at_mut(padded_width);
            let (r1, r2) = rest.split_at_mut(padded_width);
            // B^T d in place: rows d0 - d1, d1, d2 - d1.
            for x in 0..padded_width {
                r0[x] -= r1[x];
                r2[x] -= r1[x];
            }
            let first_tile = tr * tile_cols;
            for (i, row) in input_rows.chunks_exact(padded_width).enumerate() {
                // (.) B per tile: columns (a, b, c) at 2 tc .. 2 tc + 2 -> a - b, b, c - b.
                let pairs = || row.chunks_exact(2).zip(row[2..].chunks_exact(2));
                let destination = |j: usize| ((i * 3 + j) * cin + ci) * tiles + first_tile;
                let dst = &mut v[destination(0)..destination(0) + tile_cols];
                dst.iter_mut().zip(pairs()).for_each(|(o, (p, _))| *o = p[0] - p[1]);
                let dst = &mut v[destination(1)..destination(1) + tile_cols];
                dst.iter_mut().zip(pairs()).for_each(|(o, (p, _))| *o = p[1]);
                let dst = &mut v[destination(2)..destination(2) + tile_cols];
                dst.iter_mut().zip(pairs()).for_each(|(o, (p, q))| *o = q[0] - p[1]);
            }
        }
    }
    for e in 0..9 {
        // SAFETY: m[e] holds cout x tiles values, v[e] cin x tiles, u[e] cout x cin.
        unsafe {
            gemm_f32(
                cout,
                tiles,
                cin,
                m.as_mut_ptr().add(e * cout * tiles),
                tiles,
                &u[e * cout * cin..(e + 1) * cout * cin],
                v.as_ptr().add(e * cin * tiles),
                tiles,
                parallelism,
            );
        }
    }
    // Y = A^T M A with A^T = [[1, 1, 0], [0, 1, 1]].
    let columns = row_count * out_w;
    let mut am = vec![0.0f32; 6 * tile_cols];
    for co in 0..cout {
        let out = &mut products[co * columns..(co + 1) * columns];
        for tr in 0..tile_rows {
            let first_tile = tr * tile_cols;
            let at = |e: usize| &m[(e * cout + co) * tiles + first_tile..][..tile_cols];
            for col in 0..3 {
                let (m0, m1, m2) = (at(col), at(3 + col), at(6 + col));
                let (top, bottom) = am.split_at_mut(3 * tile_cols);
                let top = &mut top[col * tile_cols..(col + 1) * tile_cols];
                let bottom = &mut bottom[col * tile_cols..(col + 1) * tile_cols];
                for t in 0..tile_cols {
                    top[t] = m0[t] + m1[t];
                    bottom[t] = m1[t] + m2[t];
                }
            }
            for dy in 0..2 {
                let y = 2 * tr + dy;
                if y >= row_count {
                    continue;
                }
                let half = &am[dy * 3 * tile_cols..(dy + 1) * 3 * tile_cols];
                let (a, rest) = half.split_at(tile_cols);
                let (b, c) = rest.split_at(tile_cols);
                for (t, pair) in out[y * out_w..(y + 1) * out_w].chunks_mut(2).enumerate() {
                    pair[0] = a[t] + b[t];
                    if let Some(second) = pair.get_mut(1) {
                        *second = b[t] + c[t];
                    }
                }
            }
        }
    }
}
