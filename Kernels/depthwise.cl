// Depthwise convolution (channel multiplier 1), NHWC activations, kernel [kH, kW, C] (Keras'
// [kH, kW, C, 1] as stored). Memory-bound: no im2col, no GEMM. One work item per element with
// the channel fastest, so neighbouring items read neighbouring floats of x, w and dy.
// Sums run in the CPU backend's order with contraction off, so the two agree to rounding.
#pragma OPENCL FP_CONTRACT OFF

__kernel void depthwise_conv(__global const float* x, __global const float* w, __global const float* bias, int hasBias,
                             __global float* y, int batch, int inH, int inW, int C, int kH, int kW,
                             int strideH, int strideW, int padTop, int padLeft, int outH, int outW) {
    int i = get_global_id(0);
    if (i >= batch * outH * outW * C) return;
    int c = i % C, p = i / C;
    int ow = p % outW, oh = (p / outW) % outH, n = p / (outW * outH);
    int ih0 = oh * strideH - padTop, iw0 = ow * strideW - padLeft;
    float acc = hasBias ? bias[c] : 0.0f;
    for (int kh = 0; kh < kH; kh++) {
        int ih = ih0 + kh;
        if (ih < 0 || ih >= inH) continue;
        __global const float* xrow = x + ((n * inH + ih) * inW) * C + c;
        for (int kw = 0; kw < kW; kw++) {
            int iw = iw0 + kw;
            if (iw < 0 || iw >= inW) continue;
            acc += xrow[iw * C] * w[(kh * kW + kw) * C + c];
        }
    }
    y[i] = acc;
}

// dx[n, ih, iw, c]: a gather over the outputs whose windows read it (no atomics).
__kernel void depthwise_conv_backward_data(__global const float* dy, __global const float* w, __global float* dx,
                                           int batch, int inH, int inW, int C, int kH, int kW,
                                           int strideH, int strideW, int padTop, int padLeft, int outH, int outW) {
    int i = get_global_id(0);
    if (i >= batch * inH * inW * C) return;
    int c = i % C, p = i / C;
    int iw = p % inW, ih = (p / inW) % inH, n = p / (inW * inH);
    float acc = 0.0f;
    for (int kh = 0; kh < kH; kh++) {
        int th = ih + padTop - kh;
        if (th < 0 || th % strideH != 0 || th / strideH >= outH) continue;
        int oh = th / strideH;
        for (int kw = 0; kw < kW; kw++) {
            int tw = iw + padLeft - kw;
            if (tw < 0 || tw % strideW != 0 || tw / strideW >= outW) continue;
            acc += dy[((n * outH + oh) * outW + tw / strideW) * C + c] * w[(kh * kW + kw) * C + c];
        }
    }
    dx[i] = acc;
}

// Partial kernel gradients: item (chunk, tap, c) sums dy * x over output rows
// [chunk * rowsPerChunk, ...) of the batch * outH rows; bias_gradient_finish adds the chunks.
__kernel void depthwise_conv_backward_filter_partial(__global const float* x, __global const float* dy, __global float* partial,
                                                     int batch, int inH, int inW, int C, int kH, int kW,
                                                     int strideH, int strideW, int padTop, int padLeft, int outH, int outW,
                                                     int chunks, int rowsPerChunk) {
    int taps = kH * kW * C;
    int i = get_global_id(0);
    if (i >= chunks * taps) return;
    int j = i % taps, chunk = i / taps;
    int c = j % C, kw = (j / C) % kW, kh = j / (C * kW);
    int row0 = chunk * rowsPerChunk, row1 = min(row0 + rowsPerChunk, batch * outH);
    float acc = 0.0f;
    for (int row = row0; row < row1; row++) {
        int n = row / outH, oh = row % outH;
        int ih = oh * strideH - padTop + kh;
        if (ih < 0 || ih >= inH) continue;
        __global const float* xrow = x + ((n * inH + ih) * inW) * C + c;
        __global const float* dyrow = dy + (row * outW) * C + c;
        float rowSum = 0.0f;
        for (int ow = 0; ow < outW; ow++) {
            int iw = ow * strideW - padLeft + kw;
            if (iw < 0 || iw >= inW) continue;
            rowSum += dyrow[ow * C] * xrow[iw * C];
        }
        acc += rowSum;
    }
    partial[chunk * taps + j] = acc;
}
