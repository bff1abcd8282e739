// Convolution as GEMM with the patch gather (conv_gather.h) fused into the tile loads: no
// im2col buffer. NHWC activations, HWIO kernels. Compiled per geometry (OpenCLConvolutionPlan):
//   IH IW IC   input height, width, channels       KH KW   kernel
//   SH SW      stride       PH PW   padding top/left (may be negative)
//   OH OW OC   output height, width, channels      DH DW   input dilation (1, or the stride
//              of the convolution whose input gradient this is: a transposed convolution)
//   FLIP       1: the kernel is read flipped with its channel axes swapped (HWIO of the
//              forward convolution whose input gradient this is), 0: as given
// plus the tile shape of gemm_tile.h. The batch is an argument, so one build serves all batches.

// Element e of the B tile (TK x TN): its step row and column, and its address in w.
#if FLIP
// w is the forward kernel [KH][KW][OC][IC] read at the flipped tap; neighbouring items take
// neighbouring q, i.e. neighbouring addresses.
#define B_KK(e) ((e) % TK)
#define B_NN(e) ((e) / TK)
#define B_ADDR(q, n) (((KH * KW - 1 - (q) / IC) * OC + (n)) * IC + (q) % IC)
#else
#define B_KK(e) ((e) / TN)
#define B_NN(e) ((e) % TN)
#define B_ADDR(q, n) ((q) * OC + (n))
#endif

// Reads step q0's share of item tid into registers: A_ELEMS patch values, B_ELEMS kernel values.
inline void stage(__global const float* x, __global const float* w, int q0, int n0, int tid,
                  const int* nBase, const int* ihB, const int* iwB, float* ra, float* rb) {
    int q = q0 + tid % TK;
    int c = q % IC, t = q / IC;
    int kw = t % KW, kh = t / KW;
#pragma unroll
    for (int r = 0; r < A_ELEMS; ++r) ra[r] = gather(x, nBase[r], ihB[r], iwB[r], kh, kw, c, q < Q);
#pragma unroll
    for (int r = 0; r < B_ELEMS; ++r) {
        int e = tid + r * NT;
        int qb = q0 + B_KK(e), n = n0 + B_NN(e);
        rb[r] = (qb < Q && n < OC) ? w[B_ADDR(qb, n)] : 0.0f;
    }
}

// y[m, n] = sum_q patch(x)[m, q] * w[q, n] (+ bias[n]) (then ReLU), m = output pixel,
// n = output channel, q = (kh, kw, c) with channels fastest. The next step's tiles are read
// into registers while the current step multiplies.
__kernel __attribute__((reqd_work_group_size(TX, TY, 1)))
void conv_implicit_gemm(__global const float* restrict x, __global const float* restrict w,
                        __global const float* bias, __global float* y,
                        int batch, int useBias, int relu) {
    __local float As[TK][TM + 1];
    __local float Bs[TK][TN + 1];
    const int tx = get_local_id(0), ty = get_local_id(1), tid = ty * TX + tx;
    const int n0 = get_group_id(0) * TN, m0 = get_group_id(1) * TM;
    const int M = batch * OPIX;

    // A staging (store_a_rows): item tid loads the same tile rows tid / TK + r * (NT / TK) at
    // every step, so their pixel coordinates are decoded once.
    int nBase[A_ELEMS], ihB[A_ELEMS], iwB[A_ELEMS];
#pragma unroll
    for (int r = 0; r < A_ELEMS; ++r) {
        int m = m0 + tid / TK + r * (NT / TK);
        int n = m / OPIX, p = m - n * OPIX;
        int oh = p / OW, ow = p - oh * OW;
        nBase[r] = n * (IH * IW * IC);
        ihB[r] = m < M ? oh * SH - PH : NO_ROW;
        iwB[r] = ow * SW - PW;
    }
    float ra[A_ELEMS], rb[B_ELEMS];

    float acc[WM][WN];
    tile_zero(acc);
    stage(x, w, 0, n0, tid, nBase, ihB, iwB, ra, rb);
    for (int q0 = 0; q0 < Q; q0 += TK) {
        store_a_rows(As, ra, tid);
#pragma unroll
        for (int r = 0; r < B_ELEMS; ++r) {
            int e = tid + r * NT;
            Bs[B_KK(e)][B_NN(e)] = rb[r];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (q0 + TK < Q) stage(x, w, q0 + TK, n0, tid, nBase, ihB, iwB, ra, rb);
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
