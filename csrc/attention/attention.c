/* CSR-sparse attention core, instantiated for float/double values and
 * int32/int64 indices (see fk_attention.h). */
#include <math.h>
#include <string.h>

#include "fk_attention.h"
#include "../common/fk_simd.h"


#if defined(__GNUC__)
#define FK_VECTOR_EXT 1
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define FK_HAVE_SHUFFLEVECTOR 1
#endif
#endif
/* Helpers are inlined into each SIMD clone of their caller, so that they are
 * compiled for its target rather than called as baseline code. */
#define FK_INLINE static inline __attribute__((always_inline))
#else
#define FK_INLINE static inline
#endif

/* exp(x) in plain arithmetic, so that loops over a chunk of scores vectorise
 * (libm's exp is a scalar call).  x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite
 * split of ln2), exp(r) by its Taylor polynomial, whose truncation error is below
 * half an ulp (degree 7: 5e-9 relative for float; degree 13: 4e-18 for double),
 * and 2**n written straight into the exponent bits.  Rounding to n adds a
 * 1.5 * 2**(mantissa bits) constant, which leaves n in the low mantissa bits.
 * Arguments below the smallest normal result give 0, above the largest finite
 * one are clamped there (softmax arguments are <= 0); NaN stays NaN.  The
 * exponent is assembled in unsigned arithmetic: for NaN, n is garbage (and may
 * be negative), and a signed shift of it would be undefined; the product with
 * the NaN polynomial is NaN whatever the bits. */
FK_INLINE float fk_exp_f32(float x)
{
    const float magic = 12582912.0f;               /* 1.5 * 2**23 */
    const float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float kf = xc * 1.44269504088896341f + magic;
    uint32_t kbits;
    memcpy(&kbits, &kf, sizeof kbits);
    kf -= magic;
    const float r = (xc - kf * 0.693359375f) - kf * -2.12194440e-4f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const uint32_t ebits = (kbits - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &ebits, sizeof scale);
    return x < -87.0f ? 0.0f : p * scale;
}

FK_INLINE double fk_exp_f64(double x)
{
    const double magic = 6755399441055744.0;        /* 1.5 * 2**52 */
    const double xc = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
    double kf = xc * 1.4426950408889634074 + magic;
    uint64_t kbits;
    memcpy(&kbits, &kf, sizeof kbits);
    kf -= magic;
    const double r = (xc - kf * 6.93145751953125e-1) - kf * 1.42860682030941723212e-6;
    double p = 1.0 / 6227020800.0;                  /* 1 / 13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    const uint64_t ebits = (kbits - UINT64_C(0x4338000000000000) + 1023u) << 52;
    double scale;
    memcpy(&scale, &ebits, sizeof scale);
    return x < -708.0 ? 0.0 : p * scale;
}

/* Calls BODY with the head sizes (d, dv) as compile-time constants when they
 * are equal and common (fully unrolled dot products, q and the accumulators in
 * registers: 30-40% faster at 32), else as variables.  BODY's arguments name them
 * D_ and DV_.  Only the int32-index kernels are specialised (int64 indices, for
 * masks past 2**31 nonzeros, take the general path), which halves compile time. */
#define FK_DISPATCH_HEAD_DIM_SPECIALISED(BODY, ...)                             \
    do {                                                                        \
        switch (d == dv ? d : 0) {                                              \
        case 16: { enum { D_ = 16, DV_ = 16 }; BODY(__VA_ARGS__); break; }      \
        case 32: { enum { D_ = 32, DV_ = 32 }; BODY(__VA_ARGS__); break; }      \
        case 64: { enum { D_ = 64, DV_ = 64 }; BODY(__VA_ARGS__); break; }      \
        default: { const ptrdiff_t D_ = d, DV_ = dv; BODY(__VA_ARGS__); }       \
        }                                                                       \
    } while (0)
#define FK_DISPATCH_HEAD_DIM_GENERAL(BODY, ...)                                 \
    do {                                                                        \
        const ptrdiff_t D_ = d, DV_ = dv;                                       \
        BODY(__VA_ARGS__);                                                      \
    } while (0)

#define FK_T float
#define FK_LANES 16  /* floats in 64 bytes */
#define FK_I int32_t
#define FK_DISPATCH_HEAD_DIM FK_DISPATCH_HEAD_DIM_SPECIALISED
#define FK_SUFFIX f32_i32
#define FK_EXP fk_exp_f32
#define FK_LOG logf
#include "attention_impl.h"
#undef FK_I
#undef FK_DISPATCH_HEAD_DIM
#undef FK_SUFFIX

#define FK_I int64_t
#define FK_DISPATCH_HEAD_DIM FK_DISPATCH_HEAD_DIM_GENERAL
#define FK_SUFFIX f32_i64
#include "attention_impl.h"
#undef FK_T
#undef FK_LANES
#undef FK_I
#undef FK_DISPATCH_HEAD_DIM
#undef FK_SUFFIX
#undef FK_EXP
#undef FK_LOG

#define FK_T double
#define FK_LANES 8
#define FK_I int32_t
#define FK_DISPATCH_HEAD_DIM FK_DISPATCH_HEAD_DIM_SPECIALISED
#define FK_SUFFIX f64_i32
#define FK_EXP fk_exp_f64
#define FK_LOG log
#include "attention_impl.h"
#undef FK_I
#undef FK_DISPATCH_HEAD_DIM
#undef FK_SUFFIX

#define FK_I int64_t
#define FK_DISPATCH_HEAD_DIM FK_DISPATCH_HEAD_DIM_GENERAL
#define FK_SUFFIX f64_i64
#include "attention_impl.h"
#undef FK_T
#undef FK_LANES
#undef FK_I
#undef FK_DISPATCH_HEAD_DIM
#undef FK_SUFFIX
#undef FK_EXP
#undef FK_LOG
