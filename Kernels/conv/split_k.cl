// The kernel gradient of a convolution, for the geometry constants of implicit_gemm.cl and the
// tile shape of gemm_tile.h; the patch gather is conv_gather.h's.

// Reads step p0's share of item tid into registers: A_ELEMS patch values (pixels
// p0 + tid / TM + r * (NT / TM), the item's fixed patch column) and B_ELEMS values of dy.
inline void stage_filter(__global const float* x, __global const float* dy, int p0, int pEnd, int n0, int tid,
                         int kh, int kw, int c, bool qok, float* ra, float* rb) {
#pragma unroll
    for (int r = 0; r < A_ELEMS; ++r) {
        int p = p0 + tid / TM + r * (NT / TM);
        int n = p / OPIX, rem = p - n * OPIX;
        int oh = rem / OW, ow = rem - oh * OW;
        ra[r] = gather(x, n * (IH * IW * IC), oh * SH - PH, ow * SW - PW, kh, kw, c, qok && p < pEnd);
    }
#pragma unroll
    for (int r = 0; r < B_ELEMS; ++r) {
        int e = tid + r * NT;
        int p = p0 + e / TN, n = n0 + e % TN;
        rb[r] = (p < pEnd && n < OC) ? dy[p * OC + n] : 0.0f;
    }
}

// Kernel gradient as split-K: dw[q, n] = sum_p patch(x)[p, q] * dy[p, n] over the output pixels
// p of chunk s = the third group index, [s * chunk, s * chunk + chunk) of the N*OH*OW pixels.
// Each split writes its partial sum to out + s * Q * OC (split_k_reduce adds them), or straight
// to dw when there is one split. With wantBias, the work-groups of the first row of tiles also
// sum their staged dy columns: split s's partial bias gradient, at dbOut + s * OC.
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

    // A staging (store_a_columns; TM patch columns x TK pixels): item tid always loads column
    // m0 + tid % TM, so its tap and channel are decoded once; neighbouring items read
    // neighbouring channels.
    const int q = m0 + tid % TM;
    const int c = q % IC, tap = q / IC;
    const int kw = tap % KW, kh = tap / KW;

    float ra[A_ELEMS], rb[B_ELEMS];
    float acc[WM][WN];
    tile_zero(acc);
    float dbAcc = 0.0f;
    stage_filter(x, dy, pBegin, pEnd, n0, tid, kh, kw, c, q < Q, ra, rb);
    for (int p0 = pBegin; p0 < pEnd; p0 += TK) {
        store_a_columns(As, ra, tid);
        store_b(Bs, rb, tid);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (p0 + TK < pEnd) stage_filter(x, dy, p0 + TK, pEnd, n0, tid, kh, kw, c, q < Q, ra, rb);
        if (biasTile && tid < TN) {
            for (int kk = 0; kk < TK; ++kk) dbAcc += Bs[kk][tid];
        }
        tile_mac(As, Bs, acc, tx, ty);
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    tile_write(out + s * (Q * OC), OC, m0, n0, Q, OC, acc, tx, ty, false);
    if (biasTile && tid < TN && n0 + tid < OC) dbOut[s * OC + n0 + tid] = dbAcc;
}

// out[i] = sum over s < splits of partial[s * count + i], the split-K reduction. A work-group
// of get_local_size(0) = cols * lanes items (lanes a power of two) sums cols outputs: lane l
// adds splits l, l + lanes, ..., then the lanes are added pairwise in local memory. The order
// is fixed, so the result is deterministic.
__kernel void split_k_reduce(__global const float* partial, int splits, int count, int lanes,
                             __global float* out) {
    __local float sums[256];
    const int lid = get_local_id(0), size = get_local_size(0);
    const int cols = size / lanes;
    const int col = lid % cols, lane = lid / cols;
    const int i = get_group_id(0) * cols + col;
    float sum = 0.0f;
    if (i < count) {
        for (int s = lane; s < splits; s += lanes) sum += partial[s * count + i];
    }
    sums[lid] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int step = lanes / 2; step > 0; step /= 2) {
        if (lane < step) sums[lid] += sums[lid + step * cols];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lane == 0 && i < count) out[i] = sums[lid];
}
