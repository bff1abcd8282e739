#ifndef CHALF_H
#define CHALF_H
#include <stddef.h>
#include <stdint.h>

// IEEE half-float conversions for fp16 gradient compression. Round to nearest even, like
// Swift's Float16; F16C instructions where the CPU has them (picked at run time), else a
// portable scalar path. The _scalar variants are exported for tests.
void vggtl_float_to_half(const float *src, uint16_t *dst, size_t n);
void vggtl_half_to_float(const uint16_t *src, float *dst, size_t n);
// acc[i] = half(float(a[i]) + float(acc[i])): MPI's user operation for half sums.
void vggtl_half_sum(const uint16_t *a, uint16_t *acc, size_t n);
void vggtl_float_to_half_scalar(const float *src, uint16_t *dst, size_t n);
void vggtl_half_to_float_scalar(const uint16_t *src, float *dst, size_t n);
// 1 when the F16C path is used on this CPU.
int vggtl_half_uses_f16c(void);

#endif
