// Max, average and global-average pooling over NHWC input, forward and backward.
// Backward passes are gathers: one work item per input element, so no atomics.
#pragma OPENCL FP_CONTRACT OFF

// One work item per output element (pixel, channel). Ties keep the first maximum in
// row-major window order; out-of-bounds (padding) positions are skipped.
__kernel void max_pool(__global const float* x, __global float* y,
                       int batch, int inH, int inW, int C, int kH, int kW,
                       int strideH, int strideW, int padTop, int padLeft, int outH, int outW) {
    int gid = get_global_id(0);
    if (gid >= batch * outH * outW * C) return;
    int c = gid % C, p = gid / C;
    int ow = p % outW, t = p / outW;
    int oh = t % outH, n = t / outH;
    float best = 0.0f;
    bool found = false;
    for (int kh = 0; kh < kH; ++kh) {
        int ih = oh * strideH - padTop + kh;
        if (ih < 0 || ih >= inH) continue;
        for (int kw = 0; kw < kW; ++kw) {
            int iw = ow * strideW - padLeft + kw;
            if (iw < 0 || iw >= inW) continue;
            float v = x[((n * inH + ih) * inW + iw) * C + c];
            if (!found || v > best) { best = v; found = true; }
        }
    }
    y[gid] = best;
}

// First output row (or column) whose window, starting at o * stride - pad and k long, covers i.
inline int first_window(int i, int pad, int k, int stride) {
    int t = i + pad - k + 1;
    return t <= 0 ? 0 : (t + stride - 1) / stride;
}

// dx (overwritten): each input element sums dy over the windows that contain it and whose
// first maximum it is, visiting windows in the same row-major order as the CPU scatter.
__kernel void max_pool_backward(__global const float* x, __global const float* dy, __global float* dx,
                                int batch, int inH, int inW, int C, int kH, int kW,
                                int strideH, int strideW, int padTop, int padLeft, int outH, int outW) {
    int gid = get_global_id(0);
    if (gid >= batch * inH * inW * C) return;
    int c = gid % C, p = gid / C;
    int iw = p % inW, t = p / inW;
    int ih = t % inH, n = t / inH;
    int ohLo = first_window(ih, padTop, kH, strideH), ohHi = min((ih + padTop) / strideH, outH - 1);
    int owLo = first_window(iw, padLeft, kW, strideW), owHi = min((iw + padLeft) / strideW, outW - 1);
    float acc = 0.0f;
    for (int oh = ohLo; oh <= ohHi; ++oh) {
        for (int ow = owLo; ow <= owHi; ++ow) {
            int bh = -1, bw = -1;
            float best = 0.0f;
            for (int kh = 0; kh < kH; ++kh) {
                int h = oh * strideH - padTop + kh;
                if (h < 0 || h >= inH) continue;
                for (int kw = 0; kw < kW; ++kw) {
                    int w = ow * strideW - padLeft + kw;
                    if (w < 0 || w >= inW) continue;
                    float v = x[((n * inH + h) * inW + w) * C + c];
                    if (bh < 0 || v > best) { best = v; bh = h; bw = w; }
                }
            }
            if (bh == ih && bw == iw) acc += dy[((n * outH + oh) * outW + ow) * C + c];
        }
    }
    dx[gid] = acc;
}

// Number of input positions under the window at (oh, ow) that the average divides by: the
// in-bounds ones (TensorFlow), or with countPadding also the padding ones up to the padded
// extent inH + padBottom, inW + padRight (PyTorch's count_include_pad=True).
inline int window_count(int oh, int ow, int inH, int inW, int kH, int kW,
                        int strideH, int strideW, int padTop, int padLeft,
                        int padBottom, int padRight, int countPadding) {
    int h0 = oh * strideH - padTop, w0 = ow * strideW - padLeft;
    if (countPadding) return (min(h0 + kH, inH + padBottom) - h0) * (min(w0 + kW, inW + padRight) - w0);
    int hs = min(h0 + kH, inH) - max(h0, 0), ws = min(w0 + kW, inW) - max(w0, 0);
    return max(hs, 0) * max(ws, 0);
}

__kernel void avg_pool(__global const float* x, __global float* y,
                       int batch, int inH, int inW, int C, int kH, int kW,
                       int strideH, int strideW, int padTop, int padLeft, int outH, int outW,
                       int padBottom, int padRight, int countPadding) {
    int gid = get_global_id(0);
    if (gid >= batch * outH * outW * C) return;
    int c = gid % C, p = gid / C;
    int ow = p % outW, t = p / outW;
    int oh = t % outH, n = t / outH;
    float acc = 0.0f;
    for (int kh = 0; kh < kH; ++kh) {
        int ih = oh * strideH - padTop + kh;
        if (ih < 0 || ih >= inH) continue;
        for (int kw = 0; kw < kW; ++kw) {
            int iw = ow * strideW - padLeft + kw;
            if (iw < 0 || iw >= inW) continue;
            acc += x[((n * inH + ih) * inW + iw) * C + c];
        }
    }
    float inv = 1.0f / (float)window_count(oh, ow, inH, inW, kH, kW, strideH, strideW, padTop, padLeft,
                                           padBottom, padRight, countPadding);
    y[gid] = acc * inv;
}

// dx (overwritten): each input element sums dy / count over the windows that contain it.
__kernel void avg_pool_backward(__global const float* dy, __global float* dx,
                                int batch, int inH, int inW, int C, int kH, int kW,
                                int strideH, int strideW, int padTop, int padLeft, int outH, int outW,
                                int padBottom, int padRight, int countPadding) {
    int gid = get_global_id(0);
    if (gid >= batch * inH * inW * C) return;
    int c = gid % C, p = gid / C;
    int iw = p % inW, t = p / inW;
    int ih = t % inH, n = t / inH;
    int ohLo = first_window(ih, padTop, kH, strideH), ohHi = min((ih + padTop) / strideH, outH - 1);
    int owLo = first_window(iw, padLeft, kW, strideW), owHi = min((iw + padLeft) / strideW, outW - 1);
    float acc = 0.0f;
    for (int oh = ohLo; oh <= ohHi; ++oh) {
        for (int ow = owLo; ow <= owHi; ++ow) {
            float inv = 1.0f / (float)window_count(oh, ow, inH, inW, kH, kW, strideH, strideW, padTop, padLeft,
                                                   padBottom, padRight, countPadding);
            acc += dy[((n * outH + oh) * outW + ow) * C + c] * inv;
        }
    }
    dx[gid] = acc;
}

// (n, pixels, c) -> (n, c): one work item per (image, channel).
__kernel void global_avg_pool(__global const float* x, __global float* y, int batch, int pixels, int channels) {
    int gid = get_global_id(0);
    if (gid >= batch * channels) return;
    int n = gid / channels, c = gid % channels;
    __global const float* src = x + n * pixels * channels + c;
    float acc = 0.0f;
    for (int q = 0; q < pixels; ++q) acc += src[q * channels];
    y[gid] = acc * (1.0f / (float)pixels);
}

__kernel void global_avg_pool_backward(__global const float* dy, __global float* dx,
                                       int batch, int pixels, int channels) {
    int gid = get_global_id(0);
    if (gid >= batch * pixels * channels) return;
    float inv = 1.0f / (float)pixels;
    dx[gid] = dy[(gid / (pixels * channels)) * channels + gid % channels] * inv;
}
