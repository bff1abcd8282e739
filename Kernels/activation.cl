// The activations of the newer backbones, one work item per element; `f` is
// PointwiseFunction's raw value: 0 relu6, 1 sigmoid, 2 swish, 3 exact GELU (erf).
// The formulas are those of the CPU backend (Sources/VGGTLCPU/CPUPointwise.swift).
#pragma OPENCL FP_CONTRACT OFF

inline float act_logistic(float v) {
    if (v >= 0.0f) return 1.0f / (1.0f + exp(-v));
    float e = exp(v);
    return e / (1.0f + e);
}

__kernel void pointwise(int f, __global const float* x, __global float* y, int count) {
    int i = get_global_id(0);
    if (i >= count) return;
    float v = x[i], r;
    switch (f) {
    case 0: r = fmin(fmax(v, 0.0f), 6.0f); break;
    case 1: r = act_logistic(v); break;
    case 2: r = v * act_logistic(v); break;
    default: r = 0.5f * v * (1.0f + erf(v * 0.70710678118654752f)); break;
    }
    y[i] = r;
}

// dx = dy * f'(x); dx may be dy.
__kernel void pointwise_backward(int f, __global const float* x, __global const float* dy, __global float* dx, int count) {
    int i = get_global_id(0);
    if (i >= count) return;
    float v = x[i], g = dy[i], r;
    switch (f) {
    case 0: r = (v > 0.0f && v < 6.0f) ? g : 0.0f; break;
    case 1: { float s = act_logistic(v); r = g * (s * (1.0f - s)); break; }
    case 2: { float s = act_logistic(v); r = g * (s * (1.0f + v * (1.0f - s))); break; }
    default: {
        float cdf = 0.5f * (1.0f + erf(v * 0.70710678118654752f));
        float pdf = exp(-0.5f * v * v) * 0.39894228040143268f;
        r = g * (cdf + v * pdf);
        break;
    }
    }
    dx[i] = r;
}
