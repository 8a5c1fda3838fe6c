# The blocks of resamples and their streams, shared by the resampling kernels
# (_bootstrap.pyx defines them; _permutation.pyx cimports them).
from libc.stdint cimport uint32_t, uint64_t

from fastkern._interrupt cimport Interrupt

cdef extern from "bootstrap/fk_integers.h" nogil:
    ctypedef struct fk_pcg64:
        uint64_t state_hi, state_lo, inc_hi, inc_lo
        uint32_t uinteger
        int has_uint32
    void fk_pcg64_integers(fk_pcg64 *g, uint64_t n, Py_ssize_t cnt, uint64_t *out)
    void fk_pcg64_raw(fk_pcg64 *g, int portable, Py_ssize_t cnt, uint64_t *out)
    int fk_pcg64_use_avx512(int use)

cdef extern from "common/fk_seedseq.h" nogil:
    ctypedef struct fk_seedseq_root:
        pass

cdef enum:
    # Resamples per block, each block with its own stream.  Part of the seeding
    # contract (results depend on it): never change it.
    _BLOCK_SIZE = 64


cdef class BlockStreams:
    cdef fk_seedseq_root root
    cdef fk_pcg64 *states
    cdef uint64_t first
    cdef readonly Py_ssize_t n_blocks
    cdef fk_pcg64 start(self, Py_ssize_t b) noexcept nogil


# The resamples of one block, first..stop-1, drawn from stream (the block's, on
# the calling thread's stack), on thread `thread` of the call (0 to n_threads - 1:
# the index of its scratch space); job is the kernel's.
ctypedef void (*resamples_fn)(void *job, fk_pcg64 *stream, int thread,
                              Py_ssize_t first, Py_ssize_t stop) noexcept nogil

cdef int _n_threads(Py_ssize_t r0, Py_ssize_t r1, int n_threads) noexcept
cdef int _run_blocks(BlockStreams streams, Py_ssize_t r0, Py_ssize_t r1, int n_threads,
                     Py_ssize_t draws, resamples_fn fn, void *job) except -1
