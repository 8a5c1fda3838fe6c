"""Interrupt: how a long kernel call stops on Ctrl-C.

A kernel cuts its work into short units (tiles, blocks of resamples, stretches
of a chain) and, in its nogil parallel loop, asks ``stopped()`` before each unit
and within long ones.  The calling thread (OpenMP's thread 0) takes the GIL
every ``interval()`` seconds (0.05 s by default) in ``stopped()`` to run
Python's signal handlers; if one raises (Ctrl-C raises KeyboardInterrupt), the
exception is kept, every thread sees ``stopped()`` at its next check and skips
the rest, and ``check()``, called with the GIL after the loop, raises it.  Nothing
waits at a barrier between units, so a thread that the OS holds back on a busy
machine delays only its own unit::

    cdef Interrupt interrupt = Interrupt()
    for u in prange(n_units, nogil=True, schedule="dynamic", num_threads=n_threads):
        if not interrupt.stopped():
            ...                             # unit u
    interrupt.check()                       # raises KeyboardInterrupt on Ctrl-C

Which units ran never matters for a result that is returned: a stopped call
raises.  Python runs signal handlers on the main thread only, so a call made
from another thread runs to its end, as Python code there does.
"""
import threading

from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport INFINITY

cdef extern from "common/fk_interrupt.h" nogil:
    void fk_interrupt_init(fk_interrupt *it, double every)
    int fk_interrupt_stopped(const fk_interrupt *it)
    void fk_interrupt_set(fk_interrupt *it)
    int fk_interrupt_due(fk_interrupt *it)

# Seconds between two looks at the signals: Ctrl-C is answered within about this
# (plus the unit in progress).
cdef double _interval = 0.05


def interval(seconds=None):
    """The seconds between two looks at the signals; with ``seconds``, set it first
    (``float("inf")``: never look; for benchmarks of what looking costs).  Returns
    the value in force before the call."""
    global _interval
    old = _interval
    if seconds is not None:
        seconds = float(seconds)
        if not seconds > 0:
            raise ValueError(f"seconds must be positive, got {seconds!r}")
        _interval = seconds
    return old


cdef class Interrupt:
    """The stop state of one kernel call (see the module docstring)."""

    def __cinit__(self):
        # Only the main thread runs signal handlers: a call from another thread
        # never looks, so it never waits for the GIL either.
        main = threading.get_ident() == threading.main_thread().ident
        fk_interrupt_init(&self.state, _interval if main else INFINITY)
        self.exception = None

    cdef bint stopped(self) noexcept nogil:
        """True once the call should stop; any thread, without the GIL.  (No
        Python object may live here: Cython would take the GIL at every return to
        release it.)"""
        if fk_interrupt_stopped(&self.state):
            return True
        if fk_interrupt_due(&self.state):
            self._look()
        return fk_interrupt_stopped(&self.state)

    cdef void _look(self) noexcept with gil:
        """Run the pending signal handlers; if one raises, keep its exception and
        stop the call."""
        try:
            PyErr_CheckSignals()
        except BaseException as exc:
            self.exception = exc
            fk_interrupt_set(&self.state)

    cdef int check(self) except -1:
        """With the GIL, after the parallel loop: raise what stopped the call."""
        if self.exception is not None:
            exc, self.exception = self.exception, None
            raise exc
        return 0
