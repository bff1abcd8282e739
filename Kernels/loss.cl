// Losses on logits and the row-wise softmax. Rows are independent: one work item per row
// (classes are at most a few thousand), or per element for the binary loss.
#pragma OPENCL FP_CONTRACT OFF

// Per-row loss = logsumexp(z) - z[label]; dlogits = (softmax(z) - onehot(label)) * gradScale.
// Labels are class indices stored as floats; an index outside [0, classes) gives a NaN loss.
// weighted != 0: both are multiplied by classWeights[label] (Keras' class_weight); otherwise
// classWeights is any buffer and is not read.
__kernel void softmax_cross_entropy(__global const float* logits, __global const float* labels,
                                    int rows, int classes, __global float* loss, __global float* dlogits,
                                    float gradScale, __global const float* classWeights, int weighted) {
    int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* z = logits + r * classes;
    __global float* g = dlogits + r * classes;
    float mx = z[0];
    for (int j = 1; j < classes; ++j) mx = z[j] >= mx ? z[j] : mx;
    float sum = 0.0f;
    for (int j = 0; j < classes; ++j) sum += exp(z[j] - mx);
    float logSum = log(sum);
    int y = (int)labels[r];
    bool valid = y >= 0 && y < classes;
    float w = weighted && valid ? classWeights[y] : 1.0f;
    loss[r] = valid ? (logSum - (z[y] - mx)) * w : NAN;
    float scale = gradScale * w;
    for (int j = 0; j < classes; ++j) g[j] = (exp(z[j] - mx - logSum) - (j == y ? 1.0f : 0.0f)) * scale;
}

// Numerically stable sigmoid cross-entropy: max(z, 0) - z * t + log(1 + exp(-|z|)).
// weighted != 0: loss and gradient are multiplied by t * classWeights[1] + (1 - t) * classWeights[0].
__kernel void sigmoid_binary_cross_entropy(__global const float* logits, __global const float* targets, int count,
                                           __global float* loss, __global float* dlogits, float gradScale,
                                           __global const float* classWeights, int weighted) {
    int i = get_global_id(0);
    if (i >= count) return;
    float z = logits[i], t = targets[i];
    float w = weighted ? t * classWeights[1] + (1.0f - t) * classWeights[0] : 1.0f;
    float relu = 0.0f >= z ? 0.0f : z;
    loss[i] = (relu - z * t + log1p(exp(-fabs(z)))) * w;
    dlogits[i] = (1.0f / (1.0f + exp(-z)) - t) * (gradScale * w);
}

__kernel void softmax(__global const float* x, __global float* y, int rows, int classes) {
    int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* z = x + r * classes;
    __global float* out = y + r * classes;
    float mx = z[0];
    for (int j = 0; j < classes; ++j) mx = z[j] >= mx ? z[j] : mx;
    float sum = 0.0f;
    for (int j = 0; j < classes; ++j) { float e = exp(z[j] - mx); out[j] = e; sum += e; }
    for (int j = 0; j < classes; ++j) out[j] /= sum;
}
