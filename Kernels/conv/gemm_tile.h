// The register-blocked GEMM tile shared by the geometry-specialised convolution kernels
// (Kernels/conv/*.cl). The host compiles each program with the tile shape as -D constants
// (CLBlast's MWG/NWG/KWG/MWI/NWI under other names):
//   TM x TN  output tile of one work-group (rows x columns of C)
//   TK       reduction step: A is staged TM x TK, B TK x TN in local memory per step
//   WM x WN  outputs per work item, strided by TY = TM/WM rows and TX = TN/WN columns, so
//            neighbouring work items read neighbouring local-memory words and write
//            neighbouring output columns
// Work-groups are TX x TY work items (dimension 0 along the columns of C). Programs without a
// tile shape (layout.cl) skip this header.
#ifdef TM
#define TX (TN / WN)
#define TY (TM / WM)
#define NT (TX * TY)

// Local tiles are stored k-major; one word of padding keeps the staging stores, which walk
// down a column, on distinct banks.
typedef __local float (*tile_a_t)[TM + 1];
typedef __local float (*tile_b_t)[TN + 1];

// acc[i][j] += sum over the staged step of As[k][ty + i*TY] * Bs[k][tx + j*TX].
inline void tile_mac(tile_a_t As, tile_b_t Bs, float (*acc)[WN], int tx, int ty) {
    for (int kk = 0; kk < TK; ++kk) {
        float a[WM], b[WN];
#pragma unroll
        for (int i = 0; i < WM; ++i) a[i] = As[kk][ty + i * TY];
#pragma unroll
        for (int j = 0; j < WN; ++j) b[j] = Bs[kk][tx + j * TX];
#pragma unroll
        for (int i = 0; i < WM; ++i) {
#pragma unroll
            for (int j = 0; j < WN; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
    }
}

// Values each work item stages per step: of the A tile (TM x TK) and of the B tile (TK x TN).
#define A_ELEMS (TM * TK / NT)
#define B_ELEMS (TK * TN / NT)

// Stores A values staged by rows: item tid holds step column tid % TK of tile rows
// tid / TK + r * (NT / TK) (neighbouring items read neighbouring reduction indices).
inline void store_a_rows(tile_a_t As, const float* ra, int tid) {
#pragma unroll
    for (int r = 0; r < A_ELEMS; ++r) As[tid % TK][tid / TK + r * (NT / TK)] = ra[r];
}

// Stores A values staged by columns: item tid holds tile column tid % TM at steps
// tid / TM + r * (NT / TM) (neighbouring items read neighbouring columns).
inline void store_a_columns(tile_a_t As, const float* ra, int tid) {
#pragma unroll
    for (int r = 0; r < A_ELEMS; ++r) As[tid / TM + r * (NT / TM)][tid % TM] = ra[r];
}

// Stores B values: element e = tid + r * NT at step e / TN, column e % TN.
inline void store_b(tile_b_t Bs, const float* rb, int tid) {
#pragma unroll
    for (int r = 0; r < B_ELEMS; ++r) {
        int e = tid + r * NT;
        Bs[e / TN][e % TN] = rb[r];
    }
}

// C[m, n] = acc (or += with accumulate) for the tile's outputs inside the M x N matrix C
// (row stride ldc), the tile's top-left at (m0, n0).
inline void tile_write(__global float* C, int ldc, int m0, int n0, int M, int N, float (*acc)[WN], int tx, int ty,
                       bool accumulate) {
#pragma unroll
    for (int j = 0; j < WN; ++j) {
        int n = n0 + tx + j * TX;
        if (n >= N) continue;
#pragma unroll
        for (int i = 0; i < WM; ++i) {
            int m = m0 + ty + i * TY;
            if (m < M) C[m * ldc + n] = accumulate ? C[m * ldc + n] + acc[i][j] : acc[i][j];
        }
    }
}

inline void tile_zero(float (*acc)[WN]) {
#pragma unroll
    for (int i = 0; i < WM; ++i) {
#pragma unroll
        for (int j = 0; j < WN; ++j) acc[i][j] = 0.0f;
    }
}
#endif
