// Elementwise kernels: one work item per element. Global sizes are rounded up to the
// work-group size, so every kernel checks its id against the element count first.
// Contraction into fma is off so results match the CPU backend's separate multiply and add.
#pragma OPENCL FP_CONTRACT OFF

__kernel void fill(__global float* y, int offset, int count, float value) {
    int i = get_global_id(0);
    if (i >= count) return;
    y[offset + i] = value;
}

// y = max(x, 0), written as Swift's max(x, 0) so NaN propagates the same way.
__kernel void relu(__global const float* x, __global float* y, int count) {
    int i = get_global_id(0);
    if (i >= count) return;
    float v = x[i];
    y[i] = 0.0f >= v ? 0.0f : v;
}

// dx = dy where y > 0 else 0; dx may be dy.
__kernel void relu_backward(__global const float* y, __global const float* dy, __global float* dx, int count) {
    int i = get_global_id(0);
    if (i >= count) return;
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

__kernel void scale(__global const float* x, __global float* y, int count, float s) {
    int i = get_global_id(0);
    if (i >= count) return;
    y[i] = x[i] * s;
}

// y += alpha * x
__kernel void axpy(__global const float* x, __global float* y, int count, float alpha) {
    int i = get_global_id(0);
    if (i >= count) return;
    y[i] += alpha * x[i];
}

// y = a + b (y may be a or b): Add layers; with relu, max(y, 0) as the relu kernel writes it.
__kernel void add(__global const float* a, __global const float* b, __global float* y, int count, int relu) {
    int i = get_global_id(0);
    if (i >= count) return;
    float v = a[i] + b[i];
    y[i] = relu && 0.0f >= v ? 0.0f : v;
}

// dst[o, r, c] = src[o, r, c] over an outer x rows x cols block of two strided views: channel
// slices of a Concatenate's output, the interior of a ZeroPadding2D's output. One item per float.
__kernel void copy_block(__global const float* src, int srcOffset, int srcOuter, int srcRow,
                         __global float* dst, int dstOffset, int dstOuter, int dstRow,
                         int outer, int rows, int cols) {
    int i = get_global_id(0);
    if (i >= outer * rows * cols) return;
    int c = i % cols, q = i / cols;
    int r = q % rows, o = q / rows;
    dst[dstOffset + o * dstOuter + r * dstRow + c] = src[srcOffset + o * srcOuter + r * srcRow + c];
}

// y = max(x, 0) over rows x cols matrix views (a ReLU writing into a Concatenate's channels).
__kernel void relu_rows(__global const float* x, int xOffset, int xStride,
                        __global float* y, int yOffset, int yStride, int rows, int cols) {
    int i = get_global_id(0);
    if (i >= rows * cols) return;
    int r = i / cols, c = i % cols;
    float v = x[xOffset + r * xStride + c];
    y[yOffset + r * yStride + c] = 0.0f >= v ? 0.0f : v;
}

// dx = dy where y > 0 else 0 over matrix views; dx may be dy.
__kernel void relu_backward_rows(__global const float* y, int yOffset, int yStride,
                                 __global const float* dy, int dyOffset, int dyStride,
                                 __global float* dx, int dxOffset, int dxStride, int rows, int cols) {
    int i = get_global_id(0);
    if (i >= rows * cols) return;
    int r = i / cols, c = i % cols;
    dx[dxOffset + r * dxStride + c] = y[yOffset + r * yStride + c] > 0.0f ? dy[dyOffset + r * dyStride + c] : 0.0f;
}

// y[r, c] += bias[c] over a rows x channels matrix (count = rows * channels).
__kernel void add_bias(__global float* y, __global const float* bias, int count, int channels) {
    int i = get_global_id(0);
    if (i >= count) return;
    y[i] += bias[i % channels];
}

// C = beta * C over an m x n row-major view with leading dimension ldc (GEMM with k = 0).
__kernel void scale_matrix(__global float* c, int offset, int m, int n, int ldc, float beta) {
    int i = get_global_id(0);
    if (i >= m * n) return;
    int idx = offset + (i / n) * ldc + i % n;
    c[idx] = beta == 0.0f ? 0.0f : beta * c[idx];
}

// The twin of dropoutKeep(seed:index:rate:) in Devices/Device.swift: the same 32-bit hash,
// so both backends keep the same units for the same seed.
inline bool dropout_keep(uint seed, uint index, float rate) {
    uint h = index * 0x9E3779B9u ^ seed;
    h ^= h >> 16; h *= 0x85EBCA6Bu;
    h ^= h >> 13; h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return (float)(h >> 8) * (1.0f / 16777216.0f) >= rate;
}

// y = x * keep / (1 - rate); scale = 1 / (1 - rate) computed by the host. offset: where the
// batch starts in a data-parallel step's global batch (elements).
__kernel void dropout(__global const float* x, __global float* y, int count, float rate, float scale, uint seed, uint offset) {
    int i = get_global_id(0);
    if (i >= count) return;
    y[i] = dropout_keep(seed, (uint)i + offset, rate) ? x[i] * scale : 0.0f;
}
