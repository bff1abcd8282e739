// Column reductions over a rows x channels matrix (bias gradient, batch-norm statistics and
// batch-norm backward sums), batch-norm apply, running-statistics update and backward.
//
// A reduction runs in two stages. Stage 1 ("*_partial"): a 2-D range of work-groups of
// TC channel lanes x RL row lanes (dimension 0 = channels, so neighbouring items read
// neighbouring floats); group (tile, chunk) owns TC channels and the rows
// [chunk * rowsPerChunk, (chunk + 1) * rowsPerChunk). Each item sums a strided slice of those
// rows in float with Kahan compensation, then the group tree-reduces its RL lanes in local
// memory and writes one partial sum per channel: partial[chunk, c]. Stage 2 ("*_finish"): one
// item per channel adds the chunks' partial sums. This stays correct for millions of rows and
// 1..4096 (or more) channels, and keeps enough work-groups busy when channels are few.
#pragma OPENCL FP_CONTRACT OFF

#ifndef WG
#define WG 256
#endif
#ifndef TC
#define TC 16
#endif
#define RL (WG / TC)

#define KAHAN_ADD(sum, comp, value) { float y_ = (value) - comp; float t_ = sum + y_; comp = (t_ - sum) - y_; sum = t_; }

// Sums s[RL][TC] over the row lanes; afterwards s[lc] holds the column sums of the tile.
inline void reduce_row_lanes(__local float* s, int lc, int lr) {
    for (int stride = RL / 2; stride > 0; stride >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lr < stride) s[lr * TC + lc] += s[(lr + stride) * TC + lc];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

// partial[chunk, c] = sum over the chunk's rows of x[r, c]
__kernel __attribute__((reqd_work_group_size(TC, RL, 1)))
void column_sum_partial(__global const float* x, int rows, int channels, int rowsPerChunk,
                        __global float* partial) {
    __local float s[WG];
    int lc = get_local_id(0), lr = get_local_id(1);
    int c = get_group_id(0) * TC + lc, chunk = get_group_id(1);
    int r0 = chunk * rowsPerChunk, r1 = min(rows, r0 + rowsPerChunk);
    float sum = 0.0f, comp = 0.0f;
    if (c < channels)
        for (int r = r0 + lr; r < r1; r += RL) KAHAN_ADD(sum, comp, x[(size_t)r * channels + c]);
    s[lr * TC + lc] = sum;
    reduce_row_lanes(s, lc, lr);
    if (lr == 0 && c < channels) partial[chunk * channels + c] = s[lc];
}

// partial[chunk, c] = sum over the chunk's rows of (x[r, c] - mean[c])^2
__kernel __attribute__((reqd_work_group_size(TC, RL, 1)))
void column_sqdev_partial(__global const float* x, __global const float* mean, int rows, int channels,
                          int rowsPerChunk, __global float* partial) {
    __local float s[WG];
    int lc = get_local_id(0), lr = get_local_id(1);
    int c = get_group_id(0) * TC + lc, chunk = get_group_id(1);
    int r0 = chunk * rowsPerChunk, r1 = min(rows, r0 + rowsPerChunk);
    float sum = 0.0f, comp = 0.0f;
    if (c < channels) {
        float m = mean[c];
        for (int r = r0 + lr; r < r1; r += RL) {
            float d = x[(size_t)r * channels + c] - m;
            KAHAN_ADD(sum, comp, d * d);
        }
    }
    s[lr * TC + lc] = sum;
    reduce_row_lanes(s, lc, lr);
    if (lr == 0 && c < channels) partial[chunk * channels + c] = s[lc];
}

// Batch-norm backward sums: partialDy[chunk, c] = sum dy, partialDyXhat[chunk, c] = sum dy * xhat,
// xhat = (x - mean) / sqrt(variance + eps).
__kernel __attribute__((reqd_work_group_size(TC, RL, 1)))
void batch_norm_backward_partial(__global const float* x, __global const float* dy,
                                 __global const float* mean, __global const float* variance, float epsilon,
                                 int rows, int channels, int rowsPerChunk,
                                 __global float* partialDy, __global float* partialDyXhat) {
    __local float s[WG];
    __local float s2[WG];
    int lc = get_local_id(0), lr = get_local_id(1);
    int c = get_group_id(0) * TC + lc, chunk = get_group_id(1);
    int r0 = chunk * rowsPerChunk, r1 = min(rows, r0 + rowsPerChunk);
    float sum = 0.0f, comp = 0.0f, sum2 = 0.0f, comp2 = 0.0f;
    if (c < channels) {
        float m = mean[c], inv = 1.0f / sqrt(variance[c] + epsilon);
        for (int r = r0 + lr; r < r1; r += RL) {
            size_t i = (size_t)r * channels + c;
            float g = dy[i];
            KAHAN_ADD(sum, comp, g);
            KAHAN_ADD(sum2, comp2, g * ((x[i] - m) * inv));
        }
    }
    s[lr * TC + lc] = sum;
    s2[lr * TC + lc] = sum2;
    reduce_row_lanes(s, lc, lr);
    reduce_row_lanes(s2, lc, lr);
    if (lr == 0 && c < channels) {
        partialDy[chunk * channels + c] = s[lc];
        partialDyXhat[chunk * channels + c] = s2[lc];
    }
}

inline float sum_chunks(__global const float* partial, int chunks, int channels, int c) {
    float sum = 0.0f, comp = 0.0f;
    for (int k = 0; k < chunks; ++k) KAHAN_ADD(sum, comp, partial[k * channels + c]);
    return sum;
}

// db[c] = (accumulate ? db[c] : 0) + sum of the partial sums
__kernel void bias_gradient_finish(__global const float* partial, int chunks, int channels,
                                   __global float* db, int accumulate) {
    int c = get_global_id(0);
    if (c >= channels) return;
    float s = sum_chunks(partial, chunks, channels, c);
    db[c] = (accumulate ? db[c] : 0.0f) + s;
}

// out[c] = (sum of the partial sums) / rows: the mean, or the biased variance after the
// squared-deviation pass.
__kernel void column_mean_finish(__global const float* partial, int chunks, int channels, int rows,
                                 __global float* out) {
    int c = get_global_id(0);
    if (c >= channels) return;
    out[c] = sum_chunks(partial, chunks, channels, c) / (float)rows;
}

__kernel void batch_norm_backward_finish(__global const float* partialDy, __global const float* partialDyXhat,
                                         int chunks, int channels,
                                         __global float* dgamma, __global float* dbeta) {
    int c = get_global_id(0);
    if (c >= channels) return;
    dbeta[c] = sum_chunks(partialDy, chunks, channels, c);
    dgamma[c] = sum_chunks(partialDyXhat, chunks, channels, c);
}

// dx = gamma * inv / n * (n * dy - sum dy - xhat * sum dy*xhat), with the sums read from
// dbeta and dgamma as batch_norm_backward_finish left them.
__kernel void batch_norm_backward_dx(__global const float* x, __global const float* dy, __global float* dx,
                                     int count, int channels, int rows,
                                     __global const float* mean, __global const float* variance,
                                     __global const float* gamma, float epsilon,
                                     __global const float* dgamma, __global const float* dbeta) {
    int i = get_global_id(0);
    if (i >= count) return;
    int c = i % channels;
    float n = (float)rows;
    float inv = 1.0f / sqrt(variance[c] + epsilon);
    float a = gamma[c] * inv / n;
    float xhat = (x[i] - mean[c]) * inv;
    dx[i] = a * (n * dy[i] - dbeta[c] - xhat * dgamma[c]);
}

// y = x * scale + shift, scale = gamma / sqrt(variance + eps), shift = beta - mean * scale; with
// relu, max(y, 0) as the relu kernel writes it (a following ReLU fused into the same pass).
__kernel void batch_norm_apply(__global const float* x, __global float* y, int count, int channels,
                               __global const float* mean, __global const float* variance,
                               __global const float* gamma, __global const float* beta, float epsilon, int relu) {
    int i = get_global_id(0);
    if (i >= count) return;
    int c = i % channels;
    float s = gamma[c] / sqrt(variance[c] + epsilon);
    float shift = beta[c] - mean[c] * s;
    float v = x[i] * s + shift;
    y[i] = relu && 0.0f >= v ? 0.0f : v;
}

// running = momentum * running + (1 - momentum) * batch; unbias = rows / (rows - 1) for the variance.
__kernel void batch_norm_update_running(__global float* runningMean, __global float* runningVariance,
                                        __global const float* mean, __global const float* variance,
                                        int channels, float momentum, float unbias) {
    int c = get_global_id(0);
    if (c >= channels) return;
    runningMean[c] = momentum * runningMean[c] + (1.0f - momentum) * mean[c];
    runningVariance[c] = momentum * runningVariance[c] + (1.0f - momentum) * variance[c] * unbias;
}
