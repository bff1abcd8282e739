#include "CHalf.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static uint16_t f2h(float f) {
    uint32_t x; memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
    int32_t exp = (int32_t)((x >> 23) & 0xff);
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));   // inf, NaN
    int32_t e = exp - 127 + 15;
    if (e >= 0x1f) return (uint16_t)(sign | 0x7c00);                           // overflow: inf
    if (e <= 0) {                                                              // half subnormal or zero
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e), h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;                       // a carry rounds up the exponent (or to inf)
    return (uint16_t)(sign | h);
}

static float h2f(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, x;
    if (exp == 0) {
        float f = (float)mant * 5.9604644775390625e-8f;                        // 2^-24: exact
        memcpy(&x, &f, 4); x |= sign;
    } else if (exp == 0x1f) {
        x = sign | 0x7f800000 | (mant << 13);
    } else {
        x = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f; memcpy(&f, &x, 4);
    return f;
}

void vggtl_float_to_half_scalar(const float *src, uint16_t *dst, size_t n) { for (size_t i = 0; i < n; i++) dst[i] = f2h(src[i]); }
void vggtl_half_to_float_scalar(const uint16_t *src, float *dst, size_t n) { for (size_t i = 0; i < n; i++) dst[i] = h2f(src[i]); }

#if defined(__x86_64__)
__attribute__((target("avx,f16c")))
static void f2h_f16c(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = f2h(src[i]);
}
__attribute__((target("avx,f16c")))
static void h2f_f16c(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = h2f(src[i]);
}
__attribute__((target("avx,f16c")))
static void sum_f16c(const uint16_t *a, uint16_t *acc, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 s = _mm256_add_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i))),
                                 _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(acc + i))));
        _mm_storeu_si128((__m128i *)(acc + i), _mm256_cvtps_ph(s, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) acc[i] = f2h(h2f(a[i]) + h2f(acc[i]));
}
int vggtl_half_uses_f16c(void) { return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c"); }
#else
int vggtl_half_uses_f16c(void) { return 0; }
#endif

void vggtl_float_to_half(const float *src, uint16_t *dst, size_t n) {
#if defined(__x86_64__)
    if (vggtl_half_uses_f16c()) { f2h_f16c(src, dst, n); return; }
#endif
    vggtl_float_to_half_scalar(src, dst, n);
}

void vggtl_half_to_float(const uint16_t *src, float *dst, size_t n) {
#if defined(__x86_64__)
    if (vggtl_half_uses_f16c()) { h2f_f16c(src, dst, n); return; }
#endif
    vggtl_half_to_float_scalar(src, dst, n);
}

void vggtl_half_sum(const uint16_t *a, uint16_t *acc, size_t n) {
#if defined(__x86_64__)
    if (vggtl_half_uses_f16c()) { sum_f16c(a, acc, n); return; }
#endif
    for (size_t i = 0; i < n; i++) acc[i] = f2h(h2f(a[i]) + h2f(acc[i]));
}
