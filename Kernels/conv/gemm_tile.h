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

inline void tile_zero(float (*acc)[WN]) {
#pragma unroll
    for (int i = 0; i < WM; ++i) {
#pragma unroll
        for (int j = 0; j < WN; ++j) acc[i][j] = 0.0f;
    }
}
#endif
