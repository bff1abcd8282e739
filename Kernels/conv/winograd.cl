// Winograd minimal filtering F(m x m, 3 x 3) for 3x3 stride-1 convolutions (Lavin & Gray):
// input transform -> ALPHA^2 batched GEMMs (tiles x IC) * (IC x OC) -> output transform with
// bias and ReLU. Compiled per geometry with WINO_M (2 or 4), IH IW IC OH OW OC PH PW (padding
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

#define A_ROWS (TM * TK / NT)
#define B_ELEMS (TK * TN / NT)

// Reads step k0's share of item tid into registers: A_ROWS values of V[xi], B_ELEMS of U[xi].
inline void stage_products(__global const float* A, __global const float* B, int k0, int m0, int n0, int tid,
                           int tiles, float* ra, float* rb) {
    int k = k0 + tid % TK;
#pragma unroll
    for (int r = 0; r < A_ROWS; ++r) {
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
    float ra[A_ROWS], rb[B_ELEMS];
    float acc[WM][WN];
    tile_zero(acc);
    stage_products(A, B, 0, m0, n0, tid, tiles, ra, rb);
    for (int k0 = 0; k0 < IC; k0 += TK) {
#pragma unroll
        for (int r = 0; r < A_ROWS; ++r) As[tid % TK][tid / TK + r * (NT / TK)] = ra[r];
#pragma unroll
        for (int r = 0; r < B_ELEMS; ++r) {
            int e = tid + r * NT;
            Bs[e / TN][e % TN] = rb[r];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (k0 + TK < IC) stage_products(A, B, k0 + TK, m0, n0, tid, tiles, ra, rb);
        tile_mac(As, Bs, acc, tx, ty);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    __global float* C = P + xi * tiles * OC;
#pragma unroll
    for (int j = 0; j < WN; ++j) {
        int n = n0 + tx + j * TX;
        if (n >= OC) continue;
#pragma unroll
        for (int i = 0; i < WM; ++i) {
            int m = m0 + ty + i * TY;
            if (m < tiles) C[m * OC + n] = acc[i][j];
        }
    }
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
