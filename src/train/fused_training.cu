// CUDA kernels of the fused training ops (src/train/fused_activation.rs, src/train/phase_interleave.rs,
// src/train/fused_batch_norm.rs, src/train/fused_instance_norm.rs), float32, contiguous NCHW (or NC with plane = 1). Compiled to PTX by build.rs when the `cuda` feature is on. Each kernel
// computes what the CPU implementation of the same op computes; the CPU code documents the derivations.

#include <stdint.h>

__device__ __forceinline__ float leaky(float v, float alpha) { return v > 0.0f ? v : v * alpha; }
__device__ __forceinline__ float slope(float a, float alpha) { return a > 0.0f ? 1.0f : alpha; }

// y = lrelu(x + bias[c]), one thread per value.
extern "C" __global__ void bias_lrelu_fwd(const float* x, const float* bias, float* y, uint64_t count,
                                          uint32_t channels, uint32_t plane, float alpha) {
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < count;
         i += (uint64_t)gridDim.x * blockDim.x) {
        uint32_t c = (uint32_t)((i / plane) % channels);
        y[i] = leaky(x[i] + bias[c], alpha);
    }
}

// dx = dy * slope(lrelu(x + bias[c])), one thread per value.
extern "C" __global__ void bias_lrelu_bwd(const float* x, const float* bias, const float* dy, float* dx,
                                          uint64_t count, uint32_t channels, uint32_t plane, float alpha) {
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < count;
         i += (uint64_t)gridDim.x * blockDim.x) {
        uint32_t c = (uint32_t)((i / plane) % channels);
        dx[i] = dy[i] * slope(leaky(x[i] + bias[c], alpha), alpha);
    }
}

// Pixel norm over the channels of a = lrelu(x + bias): one thread per (image, pixel); neighbouring threads read
// neighbouring pixels of the same channel (coalesced).
extern "C" __global__ void bias_lrelu_pixel_norm_fwd(const float* x, const float* bias, float* y, uint32_t images,
                                                     uint32_t channels, uint32_t plane, float alpha, float epsilon) {
    uint64_t pixels = (uint64_t)images * plane;
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < pixels;
         i += (uint64_t)gridDim.x * blockDim.x) {
        uint64_t n = i / plane, p = i % plane;
        const float* xs = x + n * channels * plane + p;
        float* ys = y + n * channels * plane + p;
        float squares = 0.0f;
        for (uint32_t c = 0; c < channels; ++c) {
            float a = leaky(xs[(uint64_t)c * plane] + bias[c], alpha);
            squares += a * a;
        }
        float scale = 1.0f / sqrtf(squares / (float)channels + epsilon);
        for (uint32_t c = 0; c < channels; ++c) {
            ys[(uint64_t)c * plane] = leaky(xs[(uint64_t)c * plane] + bias[c], alpha) * scale;
        }
    }
}

// da_c = s dy_c - a_c s^3 mean_c(dy a); dx = da * slope(a). One thread per (image, pixel).
extern "C" __global__ void bias_lrelu_pixel_norm_bwd(const float* x, const float* bias, const float* dy, float* dx,
                                                     uint32_t images, uint32_t channels, uint32_t plane, float alpha,
                                                     float epsilon) {
    uint64_t pixels = (uint64_t)images * plane;
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < pixels;
         i += (uint64_t)gridDim.x * blockDim.x) {
        uint64_t n = i / plane, p = i % plane;
        uint64_t base = n * channels * plane + p;
        float squares = 0.0f, dot = 0.0f;
        for (uint32_t c = 0; c < channels; ++c) {
            uint64_t at = base + (uint64_t)c * plane;
            float a = leaky(x[at] + bias[c], alpha);
            squares += a * a;
            dot += a * dy[at];
        }
        float scale = 1.0f / sqrtf(squares / (float)channels + epsilon);
        float coefficient = scale * scale * scale * dot / (float)channels;
        for (uint32_t c = 0; c < channels; ++c) {
            uint64_t at = base + (uint64_t)c * plane;
            float a = leaky(x[at] + bias[c], alpha);
            dx[at] = (scale * dy[at] - a * coefficient) * slope(a, alpha);
        }
    }
}

// Sub-pixel phases [N, 4C, H + 1, W + 1] -> image [N, C, 2H, 2W]: out[n, c, 2y + a, 2x + b] =
// phases[n, (2a + b) C + c, y + a, x + b]. One thread per output value.
extern "C" __global__ void interleave_phases_fwd(const float* phases, float* out, uint32_t batch, uint32_t maps,
                                                 uint32_t height, uint32_t width) {
    uint64_t out_w = 2 * (uint64_t)width, out_h = 2 * (uint64_t)height;
    uint64_t count = (uint64_t)batch * maps * out_h * out_w;
    uint64_t phase_plane = (uint64_t)(height + 1) * (width + 1);
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < count;
         i += (uint64_t)gridDim.x * blockDim.x) {
        uint64_t ox = i % out_w, oy = (i / out_w) % out_h, c = (i / (out_w * out_h)) % maps,
                 n = i / (out_w * out_h * maps);
        uint64_t a = oy % 2, b = ox % 2, y = oy / 2, x = ox / 2;
        uint64_t plane = n * 4 * maps + (2 * a + b) * maps + c;
        out[i] = phases[plane * phase_plane + (y + a) * (width + 1) + x + b];
    }
}

// The adjoint: every phase value gets the output gradient it was copied to, or 0 if it was never read.
extern "C" __global__ void interleave_phases_bwd(const float* dy, float* dphases, uint32_t batch, uint32_t maps,
                                                 uint32_t height, uint32_t width) {
    uint64_t columns = (uint64_t)width + 1, rows = (uint64_t)height + 1;
    uint64_t count = (uint64_t)batch * 4 * maps * rows * columns;
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < count;
         i += (uint64_t)gridDim.x * blockDim.x) {
        uint64_t col = i % columns, row = (i / columns) % rows, q = (i / (columns * rows)) % (4 * (uint64_t)maps),
                 n = i / (columns * rows * 4 * maps);
        uint64_t phase = q / maps, c = q % maps, a = phase / 2, b = phase % 2;
        float value = 0.0f;
        if (row >= a && col >= b && row - a < height && col - b < width) {
            uint64_t oy = 2 * (row - a) + a, ox = 2 * (col - b) + b;
            value = dy[((n * maps + c) * 2 * height + oy) * 2 * width + ox];
        }
        dphases[i] = value;
    }
}

// ---- BatchNorm + ReLU (src/train/fused_batch_norm.rs). `params` is [4, C]: gamma, beta, mean, inv_std. ----

__device__ __forceinline__ uint64_t channel_index(uint64_t j, uint32_t c, uint32_t channels, uint32_t plane) {
    uint64_t n = j / plane, p = j % plane;
    return (n * channels + c) * plane + p;
}

// Block-wide sum of one double per thread (256 threads), fixed tree; every thread gets the total.
__device__ double block_sum(double value, double* partial) {
    partial[threadIdx.x] = value;
    __syncthreads();
    for (uint32_t width = blockDim.x / 2; width > 0; width /= 2) {
        if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
        __syncthreads();
    }
    double total = partial[0];
    __syncthreads();
    return total;
}

// out[c] = sum over images and pixels of v[n, c, p] (a bias gradient). One block of 256 threads per channel; each
// thread sums a fixed set of values in a fixed order and the block adds them in a fixed tree, so the result is
// deterministic. The sums are double: a float running sum over one thread's share of two 4 M-pixel maps (33 K values)
// drifts by up to 1.5e-5 relative.
extern "C" __global__ void channel_sum(const float* v, float* out, uint32_t images, uint32_t channels,
                                       uint32_t plane) {
    __shared__ double partial[256];
    uint32_t c = blockIdx.x;
    if (c >= channels) return;  // the launch has at least one block, even for zero channels
    uint64_t per_channel = (uint64_t)images * plane;
    double sum = 0.0;
    for (uint64_t j = threadIdx.x; j < per_channel; j += blockDim.x) sum += (double)v[channel_index(j, c, channels, plane)];
    double total = block_sum(sum, partial);
    if (threadIdx.x == 0) out[c] = (float)total;
}

// out[c] = mean, out[C + c] = biased variance of channel c (two passes, double sums). One block per channel.
extern "C" __global__ void channel_mean_var(const float* x, float* out, uint32_t images, uint32_t channels,
                                            uint32_t plane) {
    __shared__ double partial[256];
    uint32_t c = blockIdx.x;
    if (c >= channels) return;
    uint64_t count = (uint64_t)images * plane;
    double sum = 0.0;
    for (uint64_t j = threadIdx.x; j < count; j += blockDim.x) sum += (double)x[channel_index(j, c, channels, plane)];
    double mean = block_sum(sum, partial) / (double)(count > 0 ? count : 1);
    double squares = 0.0;
    for (uint64_t j = threadIdx.x; j < count; j += blockDim.x) {
        double d = (double)x[channel_index(j, c, channels, plane)] - mean;
        squares += d * d;
    }
    double variance = block_sum(squares, partial) / (double)(count > 0 ? count : 1);
    if (threadIdx.x == 0) {
        out[c] = (float)mean;
        out[channels + c] = (float)variance;
    }
}

// y = relu(x * scale + shift), scale = gamma inv_std, shift = beta - mean scale.
extern "C" __global__ void bn_relu_fwd(const float* x, const float* params, float* y, uint64_t count,
                                       uint32_t channels, uint32_t plane) {
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < count;
         i += (uint64_t)gridDim.x * blockDim.x) {
        uint32_t c = (uint32_t)((i / plane) % channels);
        float scale = params[c] * params[3 * channels + c];
        float shift = params[channels + c] - params[2 * channels + c] * scale;
        y[i] = fmaxf(x[i] * scale + shift, 0.0f);
    }
}

// out[c] = sum dz * xh (dgamma), out[C + c] = sum dz (dbeta), with dz = dy where the output is positive.
extern "C" __global__ void bn_relu_grad_sums(const float* x, const float* dy, const float* params, float* out,
                                             uint32_t images, uint32_t channels, uint32_t plane) {
    __shared__ double partial[256];
    uint32_t c = blockIdx.x;
    if (c >= channels) return;
    float gamma = params[c], beta = params[channels + c], mean = params[2 * channels + c],
          inv_std = params[3 * channels + c];
    float scale = gamma * inv_std, shift = beta - mean * scale;
    uint64_t count = (uint64_t)images * plane;
    double dz_xh = 0.0, dz_sum = 0.0;
    for (uint64_t j = threadIdx.x; j < count; j += blockDim.x) {
        uint64_t at = channel_index(j, c, channels, plane);
        float v = x[at];
        float dz = v * scale + shift > 0.0f ? dy[at] : 0.0f;
        dz_sum += (double)dz;
        dz_xh += (double)(dz * (v - mean) * inv_std);
    }
    double total_dz_xh = block_sum(dz_xh, partial);
    double total_dz = block_sum(dz_sum, partial);
    if (threadIdx.x == 0) {
        out[c] = (float)total_dz_xh;
        out[channels + c] = (float)total_dz;
    }
}

// dx = gamma inv_std (dz - dbeta / M - xh dgamma / M); `inv_count` is 1 / M with batch statistics, 0 with fixed
// ones. `params` is [6, C]: gamma, beta, mean, inv_std, dgamma, dbeta.
extern "C" __global__ void bn_relu_input_grad(const float* x, const float* dy, const float* params, float* dx,
                                              uint64_t count, uint32_t channels, uint32_t plane, float inv_count) {
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < count;
         i += (uint64_t)gridDim.x * blockDim.x) {
        uint32_t c = (uint32_t)((i / plane) % channels);
        float gamma = params[c], beta = params[channels + c], mean = params[2 * channels + c],
              inv_std = params[3 * channels + c], dgamma = params[4 * channels + c], dbeta = params[5 * channels + c];
        float scale = gamma * inv_std, shift = beta - mean * scale;
        float v = x[i];
        float dz = v * scale + shift > 0.0f ? dy[i] : 0.0f;
        dx[i] = scale * (dz - dbeta * inv_count - (v - mean) * inv_std * dgamma * inv_count);
    }
}

// ---- Instance norm (no affine) + leaky ReLU (src/train/fused_instance_norm.rs), one block of 256 threads per
// [H, W] plane of [N, C, H, W]. The plane's mean and biased variance are summed in double, as on the CPU, and
// rounded to float with 1 / sqrt(variance + epsilon) before use, as the CPU does. ----

// Mean and 1 / sqrt(variance + epsilon) of one plane (two passes); every thread gets both.
__device__ void plane_statistics(const float* xs, uint32_t plane, float epsilon, double* partial, float* mean_out,
                                 float* inv_std_out) {
    double count = (double)(plane > 0 ? plane : 1);
    double sum = 0.0;
    for (uint32_t j = threadIdx.x; j < plane; j += blockDim.x) sum += (double)xs[j];
    double mean = block_sum(sum, partial) / count;
    double squares = 0.0;
    for (uint32_t j = threadIdx.x; j < plane; j += blockDim.x) {
        double d = (double)xs[j] - mean;
        squares += d * d;
    }
    double variance = block_sum(squares, partial) / count;
    *mean_out = (float)mean;
    *inv_std_out = (float)(1.0 / sqrt(variance + (double)epsilon));
}

// y = leaky((x - mean) inv_std) per plane.
extern "C" __global__ void instance_norm_leaky_fwd(const float* x, float* y, uint32_t planes, uint32_t plane,
                                                   float alpha, float epsilon) {
    __shared__ double partial[256];
    uint32_t q = blockIdx.x;
    if (q >= planes) return;  // the launch has at least one block, even for zero planes
    const float* xs = x + (uint64_t)q * plane;
    float* ys = y + (uint64_t)q * plane;
    float mean, inv_std;
    plane_statistics(xs, plane, epsilon, partial, &mean, &inv_std);
    for (uint32_t j = threadIdx.x; j < plane; j += blockDim.x) ys[j] = leaky((xs[j] - mean) * inv_std, alpha);
}

// With z the normalised input and g = dy leaky'(z): dx = inv_std (g - mean(g) - z mean(g z)) per plane.
extern "C" __global__ void instance_norm_leaky_bwd(const float* x, const float* dy, float* dx, uint32_t planes,
                                                   uint32_t plane, float alpha, float epsilon) {
    __shared__ double partial[256];
    uint32_t q = blockIdx.x;
    if (q >= planes) return;
    const float* xs = x + (uint64_t)q * plane;
    const float* dys = dy + (uint64_t)q * plane;
    float* dxs = dx + (uint64_t)q * plane;
    float mean, inv_std;
    plane_statistics(xs, plane, epsilon, partial, &mean, &inv_std);
    double sum_g = 0.0, sum_gz = 0.0;
    for (uint32_t j = threadIdx.x; j < plane; j += blockDim.x) {
        float z = (xs[j] - mean) * inv_std;
        float g = z > 0.0f ? dys[j] : dys[j] * alpha;
        sum_g += (double)g;
        sum_gz += (double)g * (double)z;
    }
    double count = (double)(plane > 0 ? plane : 1);
    float mean_g = (float)(block_sum(sum_g, partial) / count);
    float mean_gz = (float)(block_sum(sum_gz, partial) / count);
    for (uint32_t j = threadIdx.x; j < plane; j += blockDim.x) {
        float z = (xs[j] - mean) * inv_std;
        float g = z > 0.0f ? dys[j] : dys[j] * alpha;
        dxs[j] = inv_std * (g - mean_g - z * mean_gz);
    }
}

// ---- Reflection padding (src/train/reflection_pad.rs): [N, C, H, W] -> [N, C, H + 2p, W + 2p], mirrored about the
// edge pixel, which is not repeated (needs p < H and p < W). ----

__device__ __forceinline__ uint32_t reflected(uint32_t o, uint32_t pad, uint32_t size) {
    int64_t i = (int64_t)o - pad, last = (int64_t)size - 1;
    return (uint32_t)(i < 0 ? -i : (i > last ? 2 * last - i : i));
}

// One thread per output value: its mirrored source.
extern "C" __global__ void reflection_pad_fwd(const float* x, float* y, uint32_t planes, uint32_t height,
                                              uint32_t width, uint32_t pad) {
    uint64_t out_h = height + 2 * (uint64_t)pad, out_w = width + 2 * (uint64_t)pad;
    uint64_t count = (uint64_t)planes * out_h * out_w;
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < count;
         i += (uint64_t)gridDim.x * blockDim.x) {
        uint64_t ox = i % out_w, oy = (i / out_w) % out_h, q = i / (out_w * out_h);
        y[i] = x[(q * height + reflected((uint32_t)oy, pad, height)) * width + reflected((uint32_t)ox, pad, width)];
    }
}

// The padded positions (at most 3) that read source index `s` of a side of `size` padded by `pad`, ascending.
__device__ __forceinline__ uint32_t readers(uint32_t s, uint32_t pad, uint32_t size, uint32_t* out) {
    uint32_t n = 0;
    if (s >= 1 && s <= pad) out[n++] = pad - s;                                        // the leading mirror
    out[n++] = s + pad;                                                                // the pixel itself
    if (s + 2 <= size && s + 1 + pad >= size) out[n++] = pad + 2 * (size - 1) - s;     // the trailing mirror
    return n;
}

// The adjoint, one thread per input value: the sum of the output gradients read from it, added in ascending output
// row, then column order, the order in which the CPU adds them (so the two agree bit for bit).
extern "C" __global__ void reflection_pad_bwd(const float* dy, float* dx, uint32_t planes, uint32_t height,
                                              uint32_t width, uint32_t pad) {
    uint64_t out_h = height + 2 * (uint64_t)pad, out_w = width + 2 * (uint64_t)pad;
    uint64_t count = (uint64_t)planes * height * width;
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < count;
         i += (uint64_t)gridDim.x * blockDim.x) {
        uint64_t sx = i % width, sy = (i / width) % height, q = i / ((uint64_t)width * height);
        uint32_t rows[3], columns[3];
        uint32_t row_count = readers((uint32_t)sy, pad, height, rows);
        uint32_t column_count = readers((uint32_t)sx, pad, width, columns);
        const float* plane = dy + q * out_h * out_w;
        float sum = 0.0f;
        for (uint32_t r = 0; r < row_count; ++r) {
            for (uint32_t c = 0; c < column_count; ++c) sum += plane[rows[r] * out_w + columns[c]];
        }
        dx[i] = sum;
    }
}
