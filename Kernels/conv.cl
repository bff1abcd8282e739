// im2col and its adjoint for NHWC input and HWIO kernels. A patch row is (kh, kw, c) with
// channels fastest, so it lines up with an HWIO kernel viewed as a (kH*kW*inC) x outC matrix.
#pragma OPENCL FP_CONTRACT OFF

// col[r, q] for rows r in [0, rows) of the tile starting at output pixel row0; one work item
// per column entry, so consecutive items write consecutive floats.
__kernel void im2col(__global const float* x, __global float* col,
                     int inH, int inW, int C, int kH, int kW,
                     int strideH, int strideW, int padTop, int padLeft,
                     int outH, int outW, int row0, int rows) {
    int patch = kH * kW * C;
    int gid = get_global_id(0);
    if (gid >= rows * patch) return;
    int r = gid / patch, q = gid - r * patch;
    int c = q % C, k = q / C;
    int kw = k % kW, kh = k / kW;
    int p = row0 + r;
    int ow = p % outW, t = p / outW;
    int oh = t % outH, n = t / outH;
    int ih = oh * strideH - padTop + kh, iw = ow * strideW - padLeft + kw;
    float v = 0.0f;
    if (ih >= 0 && ih < inH && iw >= 0 && iw < inW) v = x[((n * inH + ih) * inW + iw) * C + c];
    col[gid] = v;
}

// dx += col2im(dcol) for the tile of output rows [row0, row0 + rows), in gather form: one
// work item per (input pixel, channel) in pixels [pix0, pix0 + npix), summing the dcol entries
// that read it in (kh, kw) order. No two items write the same element, so no atomics.
__kernel void col2im_add(__global const float* dcol, __global float* dx,
                         int inH, int inW, int C, int kH, int kW,
                         int strideH, int strideW, int padTop, int padLeft,
                         int outH, int outW, int row0, int rows, int pix0, int npix) {
    int gid = get_global_id(0);
    if (gid >= npix * C) return;
    int pix = pix0 + gid / C, c = gid % C;
    int iw = pix % inW, t = pix / inW;
    int ih = t % inH, n = t / inH;
    int patch = kH * kW * C;
    int idx = pix * C + c;
    float acc = dx[idx];
    for (int kh = 0; kh < kH; ++kh) {
        int th = ih + padTop - kh;
        if (th < 0 || th % strideH != 0) continue;
        int oh = th / strideH;
        if (oh >= outH) continue;
        for (int kw = 0; kw < kW; ++kw) {
            int tw = iw + padLeft - kw;
            if (tw < 0 || tw % strideW != 0) continue;
            int ow = tw / strideW;
            if (ow >= outW) continue;
            int r = (n * outH + oh) * outW + ow - row0;
            if (r < 0 || r >= rows) continue;
            acc += dcol[r * patch + (kh * kW + kw) * C + c];
        }
    }
    dx[idx] = acc;
}
