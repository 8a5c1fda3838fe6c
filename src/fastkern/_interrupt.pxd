# How a long kernel call stops on Ctrl-C (see _interrupt.pyx).

cdef extern from "common/fk_interrupt.h" nogil:
    ctypedef struct fk_interrupt:
        pass


cdef class Interrupt:
    cdef fk_interrupt state
    cdef object exception
    cdef bint stopped(self) noexcept nogil
    cdef void _look(self) noexcept with gil
    cdef int check(self) except -1
