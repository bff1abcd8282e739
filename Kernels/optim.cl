// Optimizer updates, one work item per parameter. The formulas follow the CPU backend
// operation by operation (no fma contraction) so both devices step the same way.
#pragma OPENCL FP_CONTRACT OFF

// p -= lr * (g + wd * p)
__kernel void sgd(__global float* p, __global const float* g, int count, float lr, float weightDecay) {
    int i = get_global_id(0);
    if (i >= count) return;
    p[i] -= lr * (g[i] + weightDecay * p[i]);
}

// v = momentum * v + g'; p -= lr * (nesterov ? g' + momentum * v : v), g' = g + wd * p
__kernel void sgd_momentum(__global float* p, __global const float* g, __global float* v, int count,
                           float lr, float momentum, int nesterov, float weightDecay) {
    int i = get_global_id(0);
    if (i >= count) return;
    float gi = g[i] + weightDecay * p[i];
    float vi = momentum * v[i] + gi;
    v[i] = vi;
    p[i] -= lr * (nesterov ? gi + momentum * vi : vi);
}

// Adam with bias corrections c1 = 1 - beta1^step, c2 = 1 - beta2^step computed by the host.
__kernel void adam(__global float* p, __global const float* g, __global float* m, __global float* v, int count,
                   float lr, float beta1, float beta2, float epsilon, float weightDecay, float c1, float c2) {
    int i = get_global_id(0);
    if (i >= count) return;
    float gi = g[i] + weightDecay * p[i];
    float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * (mi / c1) / (sqrt(vi / c2) + epsilon);
}

__kernel void rmsprop(__global float* p, __global const float* g, __global float* s, int count,
                      float lr, float rho, float epsilon, float weightDecay) {
    int i = get_global_id(0);
    if (i >= count) return;
    float gi = g[i] + weightDecay * p[i];
    float si = rho * s[i] + (1.0f - rho) * gi * gi;
    s[i] = si;
    p[i] -= lr * gi / (sqrt(si) + epsilon);
}
