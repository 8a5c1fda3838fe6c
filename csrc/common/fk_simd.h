/* Run-time SIMD dispatch.
 *
 * Wheels are built for the baseline ISA (no -march=native).  Hot loops are marked
 * FK_SIMD_CLONES: GCC and clang then compile one copy per target below and pick
 * the best one for the running CPU when the library is loaded (an ifunc).  Where
 * that is unavailable (MSVC, macOS, non-x86), the baseline copy is the only one.
 */
#ifndef FK_SIMD_H
#define FK_SIMD_H

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(FK_NO_SIMD_CLONES)
#define FK_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
/* the same targets are available to hand-dispatched code (names *_avx2, *_avx512) */
#define FK_SIMD_DISPATCH 1
#define FK_SIMD_TARGETS "x86-64-v4 (AVX-512),x86-64-v3 (AVX2+FMA),baseline"
static inline const char *fk_simd_selected(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 (AVX-512)";
    if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2+FMA)";
    return "baseline";
}
#else
#define FK_SIMD_CLONES
#define FK_SIMD_TARGETS "baseline"
static inline const char *fk_simd_selected(void) { return "baseline"; }
#endif

#if defined(_MSC_VER)
#define FK_RESTRICT __restrict
#else
#define FK_RESTRICT restrict
#endif

#endif
