// Layer normalisation over each row's channels (NHWC: a pixel's channels), one work-group of WG
// items per row, and the channel-scaling primitives (squeeze-and-excitation, layer scale,
// stochastic depth). Column sums go through per-chunk partials that bias_gradient_finish adds.
#pragma OPENCL FP_CONTRACT OFF

// The sum of every item's v over the work-group (all items get it).
inline float ln_group_sum(__local float* red, float v) {
    int l = get_local_id(0);
    red[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (l < s) red[l] += red[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

__kernel void layer_norm(__global const float* x, __global float* y, int C, __global const float* gamma,
                         __global const float* beta, float eps, __global float* mean, __global float* invStd) {
    __local float red[WG];
    int r = get_group_id(0), l = get_local_id(0);
    __global const float* xr = x + r * C;
    __global float* yr = y + r * C;
    float s = 0.0f;
    for (int j = l; j < C; j += WG) s += xr[j];
    float m = ln_group_sum(red, s) / C;
    float q = 0.0f;
    for (int j = l; j < C; j += WG) { float d = xr[j] - m; q += d * d; }
    float inv = 1.0f / sqrt(ln_group_sum(red, q) / C + eps);
    if (l == 0) { mean[r] = m; invStd[r] = inv; }
    for (int j = l; j < C; j += WG) yr[j] = (xr[j] - m) * inv * gamma[j] + beta[j];
}

// dx = invStd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
__kernel void layer_norm_backward_dx(__global const float* x, __global const float* dy, __global float* dx, int C,
                                     __global const float* mean, __global const float* invStd, __global const float* gamma) {
    __local float red[WG];
    int r = get_group_id(0), l = get_local_id(0);
    __global const float* xr = x + r * C;
    __global const float* dyr = dy + r * C;
    float m = mean[r], inv = invStd[r];
    float sg = 0.0f, sgx = 0.0f;
    for (int j = l; j < C; j += WG) {
        float g = dyr[j] * gamma[j];
        sg += g; sgx += g * ((xr[j] - m) * inv);
    }
    float meanG = ln_group_sum(red, sg) / C;
    float meanGX = ln_group_sum(red, sgx) / C;
    for (int j = l; j < C; j += WG) {
        float xhat = (xr[j] - m) * inv;
        dx[r * C + j] = inv * (dyr[j] * gamma[j] - meanG - xhat * meanGX);
    }
}

// Item (chunk, c): sums of dy * xhat and dy over rows [chunk * rowsPerChunk, ...).
__kernel void layer_norm_backward_params_partial(__global const float* x, __global const float* dy, int rows, int C,
                                                 __global const float* mean, __global const float* invStd,
                                                 int chunks, int rowsPerChunk,
                                                 __global float* partialGamma, __global float* partialBeta) {
    int i = get_global_id(0);
    if (i >= chunks * C) return;
    int c = i % C, chunk = i / C;
    int r0 = chunk * rowsPerChunk, r1 = min(r0 + rowsPerChunk, rows);
    float sg = 0.0f, sb = 0.0f;
    for (int r = r0; r < r1; r++) {
        float g = dy[r * C + c];
        sg += g * ((x[r * C + c] - mean[r]) * invStd[r]);
        sb += g;
    }
    partialGamma[i] = sg;
    partialBeta[i] = sb;
}

// y[n, p, c] = x[n, p, c] * s[n, c]; y may be x.
__kernel void channel_scale(__global const float* x, __global const float* s, __global float* y, int pixels, int C, int count) {
    int i = get_global_id(0);
    if (i >= count) return;
    y[i] = x[i] * s[(i / (pixels * C)) * C + i % C];
}

// Item (chunk, n, c): sum over pixels [chunk * pixelsPerChunk, ...) of image n of dy * x, at
// partial[chunk * batch * C + n * C + c].
__kernel void channel_scale_gradient_partial(__global const float* x, __global const float* dy, int batch, int pixels, int C,
                                             int chunks, int pixelsPerChunk, __global float* partial) {
    int i = get_global_id(0);
    if (i >= chunks * batch * C) return;
    int c = i % C, n = (i / C) % batch, chunk = i / (C * batch);
    int p0 = chunk * pixelsPerChunk, p1 = min(p0 + pixelsPerChunk, pixels);
    float acc = 0.0f;
    for (int p = p0; p < p1; p++) {
        int k = (n * pixels + p) * C + c;
        acc += dy[k] * x[k];
    }
    partial[i] = acc;
}
