// NHWC/HWIO <-> NCHW/OIHW copies around CLBlast's convgemm (which takes NCHW images and OIHW
// kernels), for the geometry constants IH IW IC KH KW OH OW OC. One work item per element,
// neighbouring items writing neighbouring floats.

// xt (N, IC, IH, IW) = x (N, IH, IW, IC)
__kernel void nhwc_to_nchw(__global const float* x, __global float* xt, int batch) {
    int i = get_global_id(0);
    if (i >= batch * IC * IH * IW) return;
    int w = i % IW, t = i / IW;
    int h = t % IH; t /= IH;
    int c = t % IC, n = t / IC;
    xt[i] = x[((n * IH + h) * IW + w) * IC + c];
}

// wt (OC, IC, KH, KW) = w (KH, KW, IC, OC)
__kernel void hwio_to_oihw(__global const float* w, __global float* wt) {
    int i = get_global_id(0);
    if (i >= OC * IC * KH * KW) return;
    int kw = i % KW, t = i / KW;
    int kh = t % KH; t /= KH;
    int c = t % IC, k = t / IC;
    wt[i] = w[((kh * KW + kw) * IC + c) * OC + k];
}

// y (N, OH, OW, OC) = yt (N, OC, OH, OW) (+ bias) (then ReLU)
__kernel void nchw_to_nhwc(__global const float* yt, __global const float* bias, __global float* y,
                           int batch, int useBias, int relu) {
    int i = get_global_id(0);
    if (i >= batch * OH * OW * OC) return;
    int k = i % OC, t = i / OC;
    int ow = t % OW; t /= OW;
    int oh = t % OH, n = t / OH;
    float v = yt[((n * OC + k) * OH + oh) * OW + ow] + (useBias ? bias[k] : 0.0f);
    y[i] = relu ? fmax(v, 0.0f) : v;
}
