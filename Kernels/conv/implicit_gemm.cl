// Convolution as GEMM with the patch gather (conv_gather.h) fused into the tile loads: no
// im2col buffer.
// NHWC activations, HWIO kernels. Compiled per geometry (Swift: OpenCLConvolutionPlan) with
//   IH IW IC   input height, width, channels       KH KW   kernel
//   SH SW      stride       PH PW   padding top/left (may be negative)
//   OH OW OC   output height, width, channels      DH DW   input dilation (1, or the stride
//              of the convolution whose input gradient this is: a transposed convolution)
//   FLIP       1: the kernel is read flipped with its channel axes swapped (HWIO of the
//              forward convolution whose input gradient this is), 0: as given
// plus the tile shape of gemm_tile.h. The batch is an argument, so one build serves all batches.

// y[m, n] = sum_q patch(x)[m, q] * w[q, n] (+ bias[n]) (then ReLU), m = output pixel,
// n = output channel, q = (kh, kw, c) with channels fastest.
__kernel __attribute__((reqd_work_group_size(TX, TY, 1)))
void conv_implicit_gemm(__global const float* restrict x, __global const float* restrict w,
                        __global const float* bias, __global float* y,
                        int batch, int useBias, int relu) {
    __local float As[TK][TM + 1];
    __local float Bs[TK][TN + 1];
    const int tx = get_local_id(0), ty = get_local_id(1), tid = ty * TX + tx;
    const int n0 = get_group_id(0) * TN, m0 = get_group_id(1) * TM;
    const int M = batch * OPIX;

    // A staging: item tid loads column akk of rows tid / TK + r * (NT / TK): the rows never
    // change, so their decoding is done once.
    const int akk = tid % TK;
#define A_ROWS (TM * TK / NT)
    int rowBase[A_ROWS], ihB[A_ROWS], iwB[A_ROWS];
    bool rowOk[A_ROWS];
#pragma unroll
    for (int r = 0; r < A_ROWS; ++r) {
        int m = m0 + tid / TK + r * (NT / TK);
        rowOk[r] = m < M;
        int n = m / OPIX, p = m - n * OPIX;
        int oh = p / OW, ow = p - oh * OW;
        rowBase[r] = n * (IH * IW * IC);
        ihB[r] = oh * SH - PH;
        iwB[r] = ow * SW - PW;
    }

    float acc[WM][WN];
    tile_zero(acc);
    for (int q0 = 0; q0 < Q; q0 += TK) {
        {
            int q = q0 + akk;
            int c = q % IC, t = q / IC;
            int kw = t % KW, kh = t / KW;
            bool qok = q < Q;
#pragma unroll
            for (int r = 0; r < A_ROWS; ++r)
                As[akk][tid / TK + r * (NT / TK)] = gather(x, rowBase[r], ihB[r], iwB[r], kh, kw, c, qok && rowOk[r]);
        }
#pragma unroll
        for (int r = 0; r < TK * TN / NT; ++r) {
            int e = tid + r * NT;
#if FLIP
            // w is the forward kernel [KH][KW][OC][IC]: element (q, n) = w[flipped tap][n][c].
            // Neighbouring items take neighbouring q, i.e. neighbouring addresses.
            int kk = e % TK, nn = e / TK;
            int q = q0 + kk, n = n0 + nn;
            int c = q % IC, tap = q / IC;
            Bs[kk][nn] = (q < Q && n < OC) ? w[((KH * KW - 1 - tap) * OC + n) * IC + c] : 0.0f;
#else
            int nn = e % TN, kk = e / TN;
            int q = q0 + kk, n = n0 + nn;
            Bs[kk][nn] = (q < Q && n < OC) ? w[q * OC + n] : 0.0f;
#endif
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        tile_mac(As, Bs, acc, tx, ty);
        barrier(CLK_LOCAL_MEM_FENCE);
    }

#pragma unroll
    for (int j = 0; j < WN; ++j) {
        int n = n0 + tx + j * TX;
        if (n >= OC) continue;
        float b = useBias ? bias[n] : 0.0f;
#pragma unroll
        for (int i = 0; i < WM; ++i) {
            int m = m0 + ty + i * TY;
            if (m >= M) continue;
            float v = acc[i][j] + b;
            y[m * OC + n] = relu ? fmax(v, 0.0f) : v;
        }
    }
}

