// The patch gather of the implicit-GEMM kernels (implicit_gemm.cl, split_k.cl), for the
// geometry constants those files describe (other programs of this folder lack DH).
#if defined(KH) && defined(DH)
#define Q (KH * KW * IC)
#define OPIX (OH * OW)
// A row offset that no tap brings back into the image: marks rows past the end of the GEMM.
#define NO_ROW (-(1 << 24))

// The input value that output pixel (image base `nBase`, top-left tap `ihB`, `iwB`) sees
// through tap (kh, kw) and channel c; zero outside the (dilated) input or when !ok.
inline float gather(__global const float* x, int nBase, int ihB, int iwB, int kh, int kw, int c, bool ok) {
    int th = ihB + kh, tw = iwB + kw;
#if DH > 1 || DW > 1
    ok = ok && th >= 0 && tw >= 0 && th % DH == 0 && tw % DW == 0;
    th /= DH; tw /= DW;
#endif
    ok = ok && th >= 0 && th < IH && tw >= 0 && tw < IW;
    return ok ? x[nBase + (th * IW + tw) * IC + c] : 0.0f;
}
#endif
