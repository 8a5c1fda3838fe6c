"""Rounds: how a long kernel call stays responsive to Ctrl-C.

A kernel whose work is ``total`` independent units (tiles, blocks of resamples,
sweeps of every chain) runs them in rounds: a nogil parallel loop over units
``start..stop-1``, then, holding the GIL for a moment, a check for pending
signals on the calling thread, so that Ctrl-C raises ``KeyboardInterrupt`` at
the end of the round in progress.  Rounds last about ``seconds`` (0.05 s by
default): the first is ``minimum`` units, and each next one is sized from the
time the last one took.  Round boundaries never change a result: units are
computed the same way however they are grouped.

    cdef Rounds rounds = Rounds(n_units, n_threads)
    while rounds.next():                  # raises KeyboardInterrupt on Ctrl-C
        lo, hi = rounds.start, rounds.stop
        for u in prange(lo, hi, nogil=True, num_threads=n_threads):
            ...

Python only runs signal handlers on the main thread, so a call from another
thread is stopped by Ctrl-C only where that thread's own code checks for it.
"""
from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport INFINITY
from time import perf_counter

# Target length of one round, in seconds: Ctrl-C is answered within about this.
cdef double _seconds = 0.05


def round_seconds(seconds=None):
    """The target length of a round in seconds; with ``seconds``, set it first
    (``float("inf")``: one round per call, no checks; for benchmarks of the checks'
    cost).  Returns the value in force before the call."""
    global _seconds
    old = _seconds
    if seconds is not None:
        if not seconds > 0:
            raise ValueError(f"seconds must be positive, got {seconds!r}")
        _seconds = seconds
    return old


cdef class Rounds:
    """Units 0..total-1 in rounds of at least ``minimum`` units (see the module
    docstring).  ``start``/``stop`` bound the current round after ``next()``."""

    def __cinit__(self, Py_ssize_t total, Py_ssize_t minimum=1):
        self.total = max(total, 0)
        self.minimum = max(minimum, 1)
        self.size = self.total if _seconds == INFINITY else self.minimum
        self.start = 0
        self.stop = 0
        self.seconds = _seconds
        self.began = 0.0

    cdef bint next(self) except -1:
        """Start the next round; False when every unit is done.  After a round,
        runs pending signal handlers first (KeyboardInterrupt propagates)."""
        cdef double now, elapsed, scale
        if self.stop > 0:
            PyErr_CheckSignals()
        if self.stop >= self.total:
            return False
        now = perf_counter()
        if self.stop > 0:
            elapsed = now - self.began
            # aim the next round at the target length, growing at most 4x a time
            scale = 4.0 if elapsed * 4.0 <= self.seconds else self.seconds / elapsed
            if scale * <double>self.size >= <double>self.total:
                self.size = self.total
            else:
                self.size = max(self.minimum, <Py_ssize_t>(scale * <double>self.size))
        self.start = self.stop
        self.stop = self.start + min(self.size, self.total - self.start)
        self.began = now
        return True
