# The rounds a long kernel call is cut into, so that Ctrl-C stops it (see _rounds.pyx).

cdef class Rounds:
    cdef readonly Py_ssize_t start, stop, total
    cdef Py_ssize_t size, minimum
    cdef double began, seconds
    cdef bint next(self) except -1
