// Winograd minimal filtering F(m x m, 3 x 3) for 3x3 stride-1 convolutions (Lavin & Gray):
// input transform -> ALPHA^2 batched GEMMs (tiles x IC) * (IC x OC) -> output transform with
// bias and ReLU. The kernel gradient runs the same algebra backwards: with V = B^T d B and
// dM = A dY A^T per tile, dU = sum over tiles of V^T dM (GEMMs reducing over tiles, split like
// split_k.cl), and dw = G^T dU G. Compiled per geometry with WINO_M (2 or 4), IH IW IC OH OW OC PH PW (padding
// top/left of the 3x3 window), FLIP (1: the kernel is the forward kernel of the convolution
// whose input gradient this is, read flipped with its channel axes swapped) and the tile shape
// of gemm_tile.h for the GEMMs. A chunk of tiles at a time: t0 is its first tile, tiles its size.
#if WINO_M == 2
#define ALPHA 4
#elif WINO_M == 4
#define ALPHA 6
#else
#error "WINO_M must be 2 or 4"
#endif
#define XI (ALPHA * ALPHA)
#define TH ((OH + WINO_M - 1) / WINO_M)
#define TW ((OW + WINO_M - 1) / WINO_M)

// One-dimensional transforms, strided so that they run over rows or columns of a tile.
// out = B^T in (ALPHA inputs -> ALPHA outputs)
inline void bt1(const float* d, int ds, float* r, int rs) {
#if WINO_M == 2
    r[0] = d[0] - d[2 * ds];
    r[rs] = d[ds] + d[2 * ds];
    r[2 * rs] = d[2 * ds] - d[ds];
    r[3 * rs] = d[ds] - d[3 * ds];
#else
    float d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds];
    r[0] = 4.0f * d0 - 5.0f * d2 + d4;
    r[rs] = -4.0f * (d1 + d2) + d3 + d4;
    r[2 * rs] = 4.0f * (d1 - d2) - d3 + d4;
    r[3 * rs] = 2.0f * (d3 - d1) - d2 + d4;
    r[4 * rs] = 2.0f * (d1 - d3) - d2 + d4;
    r[5 * rs] = 4.0f * d1 - 5.0f * d3 + d5;
#endif
}

// out = G g (3 inputs -> ALPHA outputs)
inline void g1(const float* g, int gs, float* u, int us) {
    float g0 = g[0], g1_ = g[gs], g2 = g[2 * gs];
#if WINO_M == 2
    u[0] = g0;
    u[us] = 0.5f * (g0 + g1_ + g2);
    u[2 * us] = 0.5f * (g0 - g1_ + g2);
    u[3 * us] = g2;
#else
    u[0] = 0.25f * g0;
    u[us] = -(g0 + g1_ + g2) / 6.0f;
    u[2 * us] = -(g0 - g1_ + g2) / 6.0f;
    u[3 * us] = g0 / 24.0f + g1_ / 12.0f + g2 / 6.0f;
    u[4 * us] = g0 / 24.0f - g1_ / 12.0f + g2 / 6.0f;
    u[5 * us] = g2;
#endif
}

// out = A^T m (ALPHA inputs -> WINO_M outputs)
inline void at1(const float* m, int ms, float* o, int os) {
#if WINO_M == 2
    o[0] = m[0] + m[ms] + m[2 * ms];
    o[os] = m[ms] - m[2 * ms] - m[3 * ms];
#else
    float m0 = m[0], m1 = m[ms], m2 = m[2 * ms], m3 = m[3 * ms], m4 = m[4 * ms], m5 = m[5 * ms];
    o[0] = m0 + m1 + m2 + m3 + m4;
    o[os] = m1 - m2 + 2.0f * (m3 - m4);
    o[2 * os] = m1 + m2 + 4.0f * (m3 + m4);
    o[3 * os] = m1 - m2 + 8.0f * (m3 - m4) + m5;
#endif
}

// out = A in (WINO_M inputs -> ALPHA outputs): the output transform's adjoint
inline void a1(const float* y, int ys, float* m, int ms) {
#if WINO_M == 2
    float y0 = y[0], y1 = y[ys];
    m[0] = y0;
    m[ms] = y0 + y1;
    m[2 * ms] = y0 - y1;
    m[3 * ms] = -y1;
#else
    float y0 = y[0], y1 = y[ys], y2 = y[2 * ys], y3 = y[3 * ys];
    m[0] = y0;
    m[ms] = y0 + y1 + y2 + y3;
    m[2 * ms] = y0 - y1 + y2 - y3;
    m[3 * ms] = y0 + 2.0f * y1 + 4.0f * y2 + 8.0f * y3;
    m[4 * ms] = y0 - 2.0f * y1 + 4.0f * y2 - 8.0f * y3;
    m[5 * ms] = y3;
#endif
}

// out = G^T in (ALPHA inputs -> 3 outputs): the kernel transform's adjoint
inline void gt1(const float* u, int us, float* g, int gs) {
#if WINO_M == 2
    float u0 = u[0], u1 = u[us], u2 = u[2 * us], u3 = u[3 * us];
    g[0] = u0 + 0.5f * (u1 + u2);
    g[gs] = 0.5f * (u1 - u2);
    g[2 * gs] = 0.5f * (u1 + u2) + u3;
#else
    float u0 = u[0], u1 = u[us], u2 = u[2 * us], u3 = u[3 * us], u4 = u[4 * us], u5 = u[5 * us];
    g[0] = 0.25f * u0 - (u1 + u2) / 6.0f + (u3 + u4) / 24.0f;
    g[gs] = (u2 - u1) / 6.0f + (u3 - u4) / 12.0f;
    g[2 * gs] = (u3 + u4 - u1 - u2) / 6.0f + u5;
#endif
}

// U[xi, c, k] = (G g G^T)[xi] for each input channel c and output channel k: one work item each.
__kernel void winograd_kernel_transform(__global const float* w, __global float* U) {
    int gid = get_global_id(0);
    if (gid >= IC * OC) return;
    int c = gid / OC, k = gid - c * OC;
    float g[9], t[ALPHA * 3], u[XI];
    for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b)
#if FLIP
            g[a * 3 + b] = w[(((2 - a) * 3 + (2 - b)) * OC + k) * IC + c];
#else
            g[a * 3 + b] = w[((a * 3 + b) * IC + c) * OC + k];
#endif
    for (int b = 0; b < 3; ++b) g1(g + b, 3, t + b, 3);          // columns: t = G g (ALPHA x 3)
    for (int a = 0; a < ALPHA; ++a) g1(t + a * 3, 1, u + a * ALPHA, 1);  // rows: u = t G^T
    for (int xi = 0; xi < XI; ++xi) U[(xi * IC + c) * OC + k] = u[xi];
}

// V[xi, t, c] = (B^T d B)[xi] for tile t of the chunk and channel c: one work item each.
__kernel void winograd_input_transform(__global const float* x, __global float* V, int t0, int tiles) {
    int gid = get_global_id(0);
    if (gid >= tiles * IC) return;
    int tl = gid / IC, c = gid - tl * IC;
    int t = t0 + tl;
    int n = t / (TH * TW), r = t - n * (TH * TW);
    int th = r / TW, tw = r - th * TW;
    int ih0 = th * WINO_M - PH, iw0 = tw * WINO_M - PW;
    __global const float* xn = x + n * (IH * IW * IC) + c;
    float d[XI], s[XI], v[XI];
    for (int a = 0; a < ALPHA; ++a) {
        int ih = ih0 + a;
        for (int b = 0; b < ALPHA; ++b) {
            int iw = iw0 + b;
            d[a * ALPHA + b] = (ih >= 0 && ih < IH && iw >= 0 && iw < IW) ? xn[(ih * IW + iw) * IC] : 0.0f;
        }
    }
    for (int b = 0; b < ALPHA; ++b) bt1(d + b, ALPHA, s + b, ALPHA);          // columns
    for (int a = 0; a < ALPHA; ++a) bt1(s + a * ALPHA, 1, v + a * ALPHA, 1);  // rows
    for (int xi = 0; xi < XI; ++xi) V[(xi * tiles + tl) * IC + c] = v[xi];
}

// Reads step k0's share of item tid into registers: A_ELEMS values of V[xi], B_ELEMS of U[xi].
inline void stage_products(__global const float* A, __global const float* B, int k0, int m0, int n0, int tid,
                           int tiles, float* ra, float* rb) {
    int k = k0 + tid % TK;
#pragma unroll
    for (int r = 0; r < A_ELEMS; ++r) {
        int m = m0 + tid / TK + r * (NT / TK);
        ra[r] = (k < IC && m < tiles) ? A[m * IC + k] : 0.0f;
    }
#pragma unroll
    for (int r = 0; r < B_ELEMS; ++r) {
        int e = tid + r * NT;
        int kb = k0 + e / TN, n = n0 + e % TN;
        rb[r] = (kb < IC && n < OC) ? B[kb * OC + n] : 0.0f;
    }
}

// P[xi] (tiles x OC) = V[xi] (tiles x IC) * U[xi] (IC x OC) for xi = the third group index.
__kernel __attribute__((reqd_work_group_size(TX, TY, 1)))
void winograd_batched_gemm(__global const float* restrict V, __global const float* restrict U,
                           __global float* restrict P, int tiles) {
    __local float As[TK][TM + 1];
    __local float Bs[TK][TN + 1];
    const int tx = get_local_id(0), ty = get_local_id(1), tid = ty * TX + tx;
    const int n0 = get_group_id(0) * TN, m0 = get_group_id(1) * TM, xi = get_group_id(2);
    __global const float* A = V + xi * tiles * IC;
    __global const float* B = U + xi * (IC * OC);
    float ra[A_ELEMS], rb[B_ELEMS];
    float acc[WM][WN];
    tile_zero(acc);
    stage_products(A, B, 0, m0, n0, tid, tiles, ra, rb);
    for (int k0 = 0; k0 < IC; k0 += TK) {
        store_a_rows(As, ra, tid);
        store_b(Bs, rb, tid);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (k0 + TK < IC) stage_products(A, B, k0 + TK, m0, n0, tid, tiles, ra, rb);
        tile_mac(As, Bs, acc, tx, ty);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    tile_write(P + xi * tiles * OC, OC, m0, n0, tiles, OC, acc, tx, ty, false);
}

// y tile = A^T P A (+ bias) (then ReLU) for tile t of the chunk and output channel k.
__kernel void winograd_output_transform(__global const float* P, __global const float* bias, __global float* y,
                                        int t0, int tiles, int useBias, int relu) {
    int gid = get_global_id(0);
    if (gid >= tiles * OC) return;
    int tl = gid / OC, k = gid - tl * OC;
    int t = t0 + tl;
    int n = t / (TH * TW), r = t - n * (TH * TW);
    int th = r / TW, tw = r - th * TW;
    float p[XI], s[WINO_M * ALPHA], o[WINO_M * WINO_M];
    for (int xi = 0; xi < XI; ++xi) p[xi] = P[(xi * tiles + tl) * OC + k];
    for (int b = 0; b < ALPHA; ++b) at1(p + b, ALPHA, s + b, ALPHA);             // columns: s = A^T p
    for (int a = 0; a < WINO_M; ++a) at1(s + a * ALPHA, 1, o + a * WINO_M, 1);   // rows: o = s A
    float bv = useBias ? bias[k] : 0.0f;
    __global float* yn = y + n * (OH * OW * OC) + k;
    for (int i = 0; i < WINO_M; ++i) {
        int oh = th * WINO_M + i;
        if (oh >= OH) break;
        for (int j = 0; j < WINO_M; ++j) {
            int ow = tw * WINO_M + j;
            if (ow >= OW) break;
            float v = o[i * WINO_M + j] + bv;
            yn[(oh * OW + ow) * OC] = relu ? fmax(v, 0.0f) : v;
        }
    }
}

// dM[xi, t, k] = (A dY A^T)[xi] for tile t of the chunk and output channel k, dY the tile's
// m x m output gradients (zero past the image): one work item each.
__kernel void winograd_grad_output_transform(__global const float* dy, __global float* M, int t0, int tiles) {
    int gid = get_global_id(0);
    if (gid >= tiles * OC) return;
    int tl = gid / OC, k = gid - tl * OC;
    int t = t0 + tl;
    int n = t / (TH * TW), r = t - n * (TH * TW);
    int th = r / TW, tw = r - th * TW;
    __global const float* dyn = dy + n * (OH * OW * OC) + k;
    float d[WINO_M * WINO_M], s[ALPHA * WINO_M], m[XI];
    for (int i = 0; i < WINO_M; ++i) {
        int oh = th * WINO_M + i;
        for (int j = 0; j < WINO_M; ++j) {
            int ow = tw * WINO_M + j;
            d[i * WINO_M + j] = (oh < OH && ow < OW) ? dyn[(oh * OW + ow) * OC] : 0.0f;
        }
    }
    for (int j = 0; j < WINO_M; ++j) a1(d + j, WINO_M, s + j, WINO_M);          // columns: s = A d (ALPHA x m)
    for (int a = 0; a < ALPHA; ++a) a1(s + a * WINO_M, 1, m + a * ALPHA, 1);   // rows: m = s A^T
    for (int xi = 0; xi < XI; ++xi) M[(xi * tiles + tl) * OC + k] = m[xi];
}

// Reads step t0's share of item tid: A_ELEMS values of V[xi] (tile t0 + tid / TM + r * (NT / TM),
// channel c0 + tid % TM: neighbouring items, neighbouring channels) and B_ELEMS of dM[xi].
inline void stage_filter_products(__global const float* A, __global const float* B, int t0, int tEnd, int c0, int n0,
                                  int tid, float* ra, float* rb) {
    int c = c0 + tid % TM;
#pragma unroll
    for (int r = 0; r < A_ELEMS; ++r) {
        int t = t0 + tid / TM + r * (NT / TM);
        ra[r] = (c < IC && t < tEnd) ? A[t * IC + c] : 0.0f;
    }
#pragma unroll
    for (int r = 0; r < B_ELEMS; ++r) {
        int e = tid + r * NT;
        int t = t0 + e / TN, n = n0 + e % TN;
        rb[r] = (t < tEnd && n < OC) ? B[t * OC + n] : 0.0f;
    }
}

// partial[s, xi] (IC x OC) (+)= V[xi]^T dM[xi] over the chunk's tiles [s * per, s * per + per),
// for the third group index = xi * splits + s; `accumulate` adds to what earlier chunks left.
__kernel __attribute__((reqd_work_group_size(TX, TY, 1)))
void winograd_filter_gemm(__global const float* restrict V, __global const float* restrict M,
                          __global float* partial, int tiles, int splits, int per, int accumulate) {
    __local float As[TK][TM + 1];
    __local float Bs[TK][TN + 1];
    const int tx = get_local_id(0), ty = get_local_id(1), tid = ty * TX + tx;
    const int n0 = get_group_id(0) * TN, c0 = get_group_id(1) * TM;
    const int xi = get_group_id(2) / splits, s = get_group_id(2) - xi * splits;
    const int tBegin = s * per, tEnd = min(tiles, tBegin + per);
    __global const float* A = V + xi * tiles * IC;
    __global const float* B = M + xi * tiles * OC;
    float ra[A_ELEMS], rb[B_ELEMS];
    float acc[WM][WN];
    tile_zero(acc);
    if (tBegin < tEnd) stage_filter_products(A, B, tBegin, tEnd, c0, n0, tid, ra, rb);
    for (int t0 = tBegin; t0 < tEnd; t0 += TK) {
        store_a_columns(As, ra, tid);
        store_b(Bs, rb, tid);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (t0 + TK < tEnd) stage_filter_products(A, B, t0 + TK, tEnd, c0, n0, tid, ra, rb);
        tile_mac(As, Bs, acc, tx, ty);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    tile_write(partial + (s * XI + xi) * (IC * OC), OC, c0, n0, IC, OC, acc, tx, ty, accumulate);
}

// dw[kh, kw, c, k] = (G^T dU G)[kh, kw], dU[xi] the sum of the splits' partial products, in
// split order: one work item per channel pair.
__kernel void winograd_filter_finish(__global const float* partial, int splits, __global float* dw) {
    int gid = get_global_id(0);
    if (gid >= IC * OC) return;
    float u[XI], t[3 * ALPHA], g[9];
    for (int xi = 0; xi < XI; ++xi) {
        float sum = 0.0f;
        for (int s = 0; s < splits; ++s) sum += partial[(s * XI + xi) * (IC * OC) + gid];
        u[xi] = sum;
    }
    for (int b = 0; b < ALPHA; ++b) gt1(u + b, ALPHA, t + b, ALPHA);   // columns: t = G^T u (3 x ALPHA)
    for (int a = 0; a < 3; ++a) gt1(t + a * ALPHA, 1, g + a * 3, 1);   // rows: g = t G
    for (int i = 0; i < 9; ++i) dw[i * (IC * OC) + gid] = g[i];
}

