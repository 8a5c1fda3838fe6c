"""What the compiled part of fastkern was built with (OpenMP, SIMD dispatch)."""

cdef extern from "common/fk_openmp.h" nogil:
    int fk_openmp_enabled()
    int omp_get_max_threads()

cdef extern from "common/fk_simd.h" nogil:
    const char *FK_SIMD_TARGETS
    const char *fk_simd_selected()


def openmp_enabled():
    """True if the kernels were compiled with OpenMP."""
    return bool(fk_openmp_enabled())


def openmp_max_threads():
    """OpenMP's current thread limit for this thread (OMP_NUM_THREADS, threadpoolctl),
    or 1 in a serial build."""
    return omp_get_max_threads()


def simd_targets():
    """The SIMD targets the hot loops were compiled for, best first."""
    return FK_SIMD_TARGETS.decode().split(",")


def simd_selected():
    """The SIMD target this CPU runs."""
    return fk_simd_selected().decode()
