"""SparseCSR: an attention mask in compressed sparse row form."""
import operator
import os
import threading

import numpy as np

from .. import _attention
from .._validation import as_array

__all__ = ["SparseCSR"]

_INT32_MAX = np.iinfo(np.int32).max
# Guards the step that wraps a Pattern's transpose into the SparseCSR that every
# caller of transpose() must get (O(1); the transposition itself is done before,
# under the Pattern's own lock).
_WRAP_TRANSPOSE = threading.Lock()
# Mask rows converted at once by from_dense: bounds its int64 temporaries.
_DENSE_BLOCK_ELEMENTS = 1 << 22


def _index_dtype(*extents):
    """int32 when every index and offset fits in it, else int64."""
    return np.dtype(np.int32 if max(extents, default=0) <= _INT32_MAX else np.int64)


def _shape(shape):
    try:
        n, m = shape
        n, m = operator.index(n), operator.index(m)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be a pair of integers, got {shape!r}") from None
    if isinstance(shape[0], (bool, np.bool_)) or isinstance(shape[1], (bool, np.bool_)):
        raise TypeError(f"shape must be a pair of integers, got {shape!r}")
    if n < 0 or m < 0:
        raise ValueError(f"shape must be non-negative, got {shape!r}")
    return n, m


def _physical_memory():
    """Bytes of RAM on this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _check_dense_size(mask):
    """Refuse a dense mask with more elements than this machine has bytes of memory.

    Such a mask can only be a broadcast view or a memory map: converting it would
    scan it for minutes, and its CSR form could need more memory still.
    """
    memory = _physical_memory()
    if memory is not None and mask.size > memory:
        raise ValueError(f"mask of shape {mask.shape} has {mask.size} elements, more than "
                         f"this machine's {memory} bytes of memory: build the SparseCSR "
                         f"from its nonzeros (SparseCSR(row_offsets, column_indices, shape) "
                         f"or SparseCSR.from_scipy)")


def _integer_array(x, name):
    x = as_array(x, name)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {x.shape}")
    if x.size and x.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {x.dtype}")
    return x


class SparseCSR:
    """A boolean (N, M) attention mask in compressed sparse row (CSR) form.

    Row ``i`` allows the key columns ``column_indices[row_offsets[i]:row_offsets[i+1]]``.
    Columns are kept sorted within each row, and every nonzero of the input is
    kept: nothing is dropped or padded.  Indices are int32 when the shape and the
    number of nonzeros fit in it, int64 beyond.

    The object is immutable, its arrays read-only for good (NumPy refuses to make
    them writeable); build it once and use it for every call.  It also
    carries what the kernels need besides the pattern: :attr:`row_order`, the rows
    longest first, by which threads share out the work, and :meth:`transpose`,
    cached, over which the backward pass computes ``dk`` and ``dv``.

    Parameters
    ----------
    row_offsets : array_like of int, shape (N + 1,)
        Starts of the rows in ``column_indices``: ``row_offsets[0] == 0``,
        non-decreasing, ``row_offsets[-1] == len(column_indices)``.
    column_indices : array_like of int, shape (nnz,)
        Allowed key columns, each in ``[0, M)``, no column twice in a row.  They
        need not be sorted within a row (they are sorted here).
    shape : (int, int)
        ``(N, M)``: queries and keys.

    Raises
    ------
    ValueError, TypeError
        For arrays that do not form a valid CSR structure of that shape.

    See Also
    --------
    sparse_attention, SparseCSR.from_dense

    Examples
    --------
    >>> import numpy as np
    >>> from fastkern.attention import SparseCSR
    >>> mask = SparseCSR.from_dense(np.tri(3, dtype=bool))   # causal, 3 tokens
    >>> mask.row_offsets, mask.column_indices, mask.nnz
    (array([0, 1, 3, 6], dtype=int32), array([0, 0, 1, 0, 1, 2], dtype=int32), 6)
    >>> mask.row_order                       # longest rows first
    array([2, 1, 0], dtype=int32)
    >>> mask.transpose().to_dense().astype(int)
    array([[1, 1, 1],
           [0, 1, 1],
           [0, 0, 1]])
    """

    # The whole state is one _attention.Pattern, which checks the structure when it
    # is built and cannot be changed after: it is what the kernels read, whatever a
    # subclass or a caller does to the attributes of this object.
    __slots__ = ("_pattern", "_transpose", "__weakref__")

    def __init__(self, row_offsets, column_indices, shape):
        n, m = _shape(shape)
        # validated as int64: differences of unsigned offsets would wrap around
        offsets = _integer_array(row_offsets, "row_offsets").astype(np.int64)
        cols = _integer_array(column_indices, "column_indices")
        if offsets.size != n + 1:
            raise ValueError(f"row_offsets must have N + 1 = {n + 1} elements for shape "
                             f"{(n, m)}, got {offsets.size}")
        if offsets[0] != 0:
            raise ValueError(f"row_offsets must start at 0, got {offsets[0]}")
        if offsets[-1] != cols.size:
            raise ValueError(f"row_offsets must end at len(column_indices) = {cols.size}, "
                             f"got {offsets[-1]}")
        lengths = np.diff(offsets)
        if np.any(lengths < 0):
            raise ValueError("row_offsets must be non-decreasing")
        if cols.size and (cols.min() < 0 or cols.max() >= m):
            raise ValueError(f"column_indices must lie in [0, {m}) for shape {(n, m)}, "
                             f"got values in [{cols.min()}, {cols.max()}]")
        idx = _index_dtype(n, m, cols.size)
        offsets = offsets.astype(idx)
        cols = cols.astype(idx)
        rows = np.repeat(np.arange(n, dtype=idx), lengths)
        if cols.size > 1:
            step = np.diff(cols)
            same_row = rows[1:] == rows[:-1]
            if np.any(same_row & (step <= 0)):
                order = np.lexsort((cols, rows))  # canonical: sorted within rows
                cols = cols[order]
                step = np.diff(cols)
                dup = same_row & (step == 0)
                if np.any(dup):
                    r = int(rows[1:][dup][0])
                    raise ValueError(f"column_indices repeats column {int(cols[1:][dup][0])} "
                                     f"in row {r}")
        del rows
        self._init(_attention.Pattern(offsets, cols, m))

    def _init(self, pattern):
        self._pattern = pattern
        self._transpose = None

    @classmethod
    def _trusted(cls, offsets, cols, shape):
        """A SparseCSR from arrays already known to be valid and canonical (the
        Pattern checks them all the same)."""
        self = cls.__new__(cls)
        self._init(_attention.Pattern(offsets, cols, shape[1]))
        return self

    @classmethod
    def from_dense(cls, mask):
        """The CSR form of a dense boolean mask.

        Parameters
        ----------
        mask : array_like of bool, shape (N, M)
            True where a query may attend to a key.

        Returns
        -------
        SparseCSR

        Raises
        ------
        ValueError
            For a mask that is not 2-D, or whose N * M elements outnumber this
            machine's bytes of memory (a broadcast view or a memory map: it is
            refused before a scan that would take minutes).
        TypeError
            For a mask that is not boolean.
        """
        mask = as_array(mask, "mask")
        if mask.ndim != 2:
            raise ValueError(f"mask must be a 2-D boolean array, got shape {mask.shape}")
        if mask.dtype != np.bool_:
            raise TypeError(f"mask must be a boolean array, got dtype {mask.dtype}")
        _check_dense_size(mask)
        n, m = mask.shape
        counts = np.empty(n, dtype=np.int64)
        step = max(1, _DENSE_BLOCK_ELEMENTS // max(m, 1))
        for a in range(0, n, step):  # in blocks: Ctrl-C stops a long scan between them
            counts[a:a + step] = np.count_nonzero(mask[a:a + step], axis=1)
        nnz = int(counts.sum())
        idx = _index_dtype(n, m, nnz)
        offsets = np.zeros(n + 1, dtype=idx)
        np.cumsum(counts, out=offsets[1:])
        cols = np.empty(nnz, dtype=idx)
        for a in range(0, n, step):
            b = min(n, a + step)
            cols[offsets[a]:offsets[b]] = np.nonzero(mask[a:b])[1]
        return cls._trusted(offsets, cols, (n, m))

    @classmethod
    def from_scipy(cls, matrix):
        """The CSR form of the nonzero pattern of a ``scipy.sparse`` array or matrix.

        Explicitly stored zeros count as allowed positions, as in the sparse
        array's own structure; call ``eliminate_zeros()`` first to drop them.
        Anything but a ``scipy.sparse`` object is a TypeError.
        """
        import scipy.sparse

        if not scipy.sparse.issparse(matrix):
            raise TypeError(f"matrix must be a scipy.sparse array or matrix, got "
                            f"{type(matrix).__name__} (use SparseCSR.from_dense for a dense "
                            f"boolean array)")
        csr = matrix.tocsr()
        csr.sum_duplicates()
        return cls(csr.indptr, csr.indices, csr.shape)

    def to_dense(self):
        """The mask as a dense boolean array of shape (N, M)."""
        p = self._pattern
        out = np.zeros((p.n_rows, p.n_cols), dtype=bool)
        rows = np.repeat(np.arange(p.n_rows), np.diff(p.offsets))
        out[rows, p.cols] = True
        return out

    @property
    def shape(self):
        """(N, M): queries, keys."""
        return (self._pattern.n_rows, self._pattern.n_cols)

    @property
    def nnz(self):
        """The number of allowed (query, key) pairs."""
        return int(self._pattern.nnz)

    @property
    def density(self):
        """nnz / (N * M), or 0 for an empty shape."""
        n, m = self.shape
        return self.nnz / (n * m) if n * m else 0.0

    @property
    def row_offsets(self):
        """Read-only int array, shape (N + 1,)."""
        return self._pattern.offsets

    @property
    def column_indices(self):
        """Read-only int array, shape (nnz,), sorted within each row."""
        return self._pattern.cols

    @property
    def index_dtype(self):
        """int32 or int64: the dtype of every index array."""
        return self._pattern.offsets.dtype

    @property
    def row_lengths(self):
        """Allowed keys per query, shape (N,)."""
        return np.diff(self._pattern.offsets)

    @property
    def row_order(self):
        """The rows, longest first (ties in row order), shape (N,).

        The kernels hand out rows to threads in this order, so that long rows
        start early and short ones fill the gaps at the end.
        """
        return self._pattern.order

    def transpose(self):
        """The (M, N) mask of the transposed pattern, cached on this object.

        Row j of the transpose lists, in increasing order, the queries that may
        attend to key j: the backward pass walks it to compute ``dk`` and ``dv``.
        It is built once, and every thread gets the same object, also where
        threads run without a GIL.
        """
        t = self._transpose
        if t is not None:
            return t
        pattern = self._pattern.transpose()
        with _WRAP_TRANSPOSE:
            if self._transpose is None:
                t = SparseCSR.__new__(SparseCSR)
                t._init(pattern)
                t._transpose = self
                self._transpose = t
            return self._transpose

    @property
    def T(self):
        """Same as :meth:`transpose`."""
        return self.transpose()

    def __reduce__(self):
        # rebuilt through __init__, which checks whatever the pickle holds
        p = self._pattern
        return (SparseCSR, (np.array(p.offsets), np.array(p.cols), (p.n_rows, p.n_cols)))

    def __eq__(self, other):
        if not isinstance(other, SparseCSR):
            return NotImplemented
        a, b = self._pattern, other._pattern
        return ((a.n_rows, a.n_cols) == (b.n_rows, b.n_cols)
                and np.array_equal(a.offsets, b.offsets) and np.array_equal(a.cols, b.cols))

    __hash__ = None

    def __repr__(self):
        n, m = self.shape
        return (f"SparseCSR(shape=({n}, {m}), nnz={self.nnz}, "
                f"density={self.density:.4g}, index_dtype={self.index_dtype})")


_PATTERN = SparseCSR.__dict__["_pattern"]  # the slot itself, past any subclass's attribute


def pattern_of(mask):
    """The _attention.Pattern a SparseCSR holds: what the kernels read.  Read from
    SparseCSR's own slot, so that a subclass's attributes cannot stand in for it."""
    try:
        pattern = _PATTERN.__get__(mask)
    except AttributeError:
        pattern = None
    if type(pattern) is not _attention.Pattern:
        raise TypeError("mask is a SparseCSR without its pattern (a subclass that does not "
                        "call SparseCSR.__init__?)")
    return pattern
