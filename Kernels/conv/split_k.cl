// The kernel gradient of a convolution, for the geometry constants of implicit_gemm.cl and the
// tile shape of gemm_tile.h; the patch gather is conv_gather.h's.

// Kernel gradient as split-K: dw[q, n] = sum_p patch(x)[p, q] * dy[p, n] over output pixels p
// in this work-group's chunk [s * chunk, s * chunk + chunk) of the N*OH*OW pixels, s the third
// group index. Each split writes its partial sum to out + s * Q * OC (splitk_reduce adds them),
// or straight to dw when there is one split. With wantBias, the work-groups of the first row of
// tiles also sum their staged dy columns: the bias gradient's partial for split s, at
// dbOut + s * OC.
__kernel __attribute__((reqd_work_group_size(TX, TY, 1)))
void conv_filter_split_k(__global const float* restrict x, __global const float* restrict dy,
                         __global float* out, __global float* dbOut,
                         int batch, int chunk, int wantBias) {
    __local float As[TK][TM + 1];
    __local float Bs[TK][TN + 1];
    const int tx = get_local_id(0), ty = get_local_id(1), tid = ty * TX + tx;
    const int n0 = get_group_id(0) * TN, m0 = get_group_id(1) * TM, s = get_group_id(2);
    const int P = batch * OPIX;
    const int pBegin = s * chunk, pEnd = min(P, pBegin + chunk);
    const bool biasTile = wantBias && get_group_id(1) == 0;

    // A staging (TM patch columns q x TK pixels): item tid always loads column q = m0 + tid % TM,
    // so its tap and channel are decoded once.
    const int amm = tid % TM;
    const int q = m0 + amm;
    const bool qok = q < Q;
    const int c = q % IC, tap = q / IC;
    const int kw = tap % KW, kh = tap / KW;

    float acc[WM][WN];
    tile_zero(acc);
    float dbAcc = 0.0f;
    for (int p0 = pBegin; p0 < pEnd; p0 += TK) {
#pragma unroll
        for (int r = 0; r < TM * TK / NT; ++r) {
            int kk = tid / TM + r * (NT / TM);
            int p = p0 + kk;
            int n = p / OPIX, rem = p - n * OPIX;
            int oh = rem / OW, ow = rem - oh * OW;
            As[kk][amm] = gather(x, n * (IH * IW * IC), oh * SH - PH, ow * SW - PW, kh, kw, c, qok && p < pEnd);
        }
#pragma unroll
        for (int r = 0; r < TK * TN / NT; ++r) {
            int e = tid + r * NT;
            int nn = e % TN, kk = e / TN;
            int p = p0 + kk, n = n0 + nn;
            Bs[kk][nn] = (p < pEnd && n < OC) ? dy[p * OC + n] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (biasTile && tid < TN) {
            for (int kk = 0; kk < TK; ++kk) dbAcc += Bs[kk][tid];
        }
        tile_mac(As, Bs, acc, tx, ty);
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    __global float* o = out + s * (Q * OC);
#pragma unroll
    for (int j = 0; j < WN; ++j) {
        int n = n0 + tx + j * TX;
        if (n >= OC) continue;
#pragma unroll
        for (int i = 0; i < WM; ++i) {
            int qq = m0 + ty + i * TY;
            if (qq < Q) o[qq * OC + n] = acc[i][j];
        }
    }
    if (biasTile && tid < TN && n0 + tid < OC) dbOut[s * OC + n0 + tid] = dbAcc;
}

// out[i] = sum over s < splits of partial[s * count + i]: the split-K reduction, in split order
// (deterministic).
__kernel void split_k_reduce(__global const float* partial, int splits, int count, __global float* out) {
    int i = get_global_id(0);
    if (i >= count) return;
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) sum += partial[s * count + i];
    out[i] = sum;
}
