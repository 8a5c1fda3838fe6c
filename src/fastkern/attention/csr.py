"""SparseCSR: an attention mask in compressed sparse row form."""
import operator

import numpy as np

from .. import _attention

__all__ = ["SparseCSR"]

_INT32_MAX = np.iinfo(np.int32).max
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


def _integer_array(x, name):
    x = np.asarray(x)
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

    The object is immutable; build it once and use it for every call.  It also
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

    __slots__ = ("_offsets", "_cols", "_shape", "_order", "_transpose", "__weakref__")

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
        self._init(offsets, cols, (n, m), lengths)

    def _init(self, offsets, cols, shape, lengths):
        offsets.flags.writeable = False
        cols.flags.writeable = False
        self._offsets = offsets
        self._cols = cols
        self._shape = shape
        # stable: rows of equal length keep their order, which keeps neighbours together
        order = np.argsort(-lengths.astype(np.int64), kind="stable").astype(offsets.dtype)
        order.flags.writeable = False
        self._order = order
        self._transpose = None

    @classmethod
    def _trusted(cls, offsets, cols, shape):
        """A SparseCSR from arrays already known to be valid and canonical."""
        self = cls.__new__(cls)
        self._init(offsets, cols, shape, np.diff(offsets))
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
        """
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must be a 2-D boolean array, got shape {mask.shape}")
        if mask.dtype != np.bool_:
            raise TypeError(f"mask must be a boolean array, got dtype {mask.dtype}")
        n, m = mask.shape
        counts = np.count_nonzero(mask, axis=1)
        nnz = int(counts.sum())
        idx = _index_dtype(n, m, nnz)
        offsets = np.zeros(n + 1, dtype=idx)
        np.cumsum(counts, out=offsets[1:])
        cols = np.empty(nnz, dtype=idx)
        step = max(1, _DENSE_BLOCK_ELEMENTS // max(m, 1))
        for a in range(0, n, step):
            b = min(n, a + step)
            cols[offsets[a]:offsets[b]] = np.nonzero(mask[a:b])[1]
        return cls._trusted(offsets, cols, (n, m))

    @classmethod
    def from_scipy(cls, matrix):
        """The CSR form of the nonzero pattern of a ``scipy.sparse`` array or matrix.

        Explicitly stored zeros count as allowed positions, as in the sparse
        array's own structure; call ``eliminate_zeros()`` first to drop them.
        """
        csr = matrix.tocsr()
        csr.sum_duplicates()
        return cls(csr.indptr, csr.indices, csr.shape)

    def to_dense(self):
        """The mask as a dense boolean array of shape (N, M)."""
        n, m = self._shape
        out = np.zeros((n, m), dtype=bool)
        rows = np.repeat(np.arange(n), np.diff(self._offsets))
        out[rows, self._cols] = True
        return out

    @property
    def shape(self):
        """(N, M): queries, keys."""
        return self._shape

    @property
    def nnz(self):
        """The number of allowed (query, key) pairs."""
        return int(self._cols.size)

    @property
    def density(self):
        """nnz / (N * M), or 0 for an empty shape."""
        n, m = self._shape
        return self.nnz / (n * m) if n * m else 0.0

    @property
    def row_offsets(self):
        """Read-only int array, shape (N + 1,)."""
        return self._offsets

    @property
    def column_indices(self):
        """Read-only int array, shape (nnz,), sorted within each row."""
        return self._cols

    @property
    def index_dtype(self):
        """int32 or int64: the dtype of every index array."""
        return self._offsets.dtype

    @property
    def row_lengths(self):
        """Allowed keys per query, shape (N,)."""
        return np.diff(self._offsets)

    @property
    def row_order(self):
        """The rows, longest first (ties in row order), shape (N,).

        The kernels hand out rows to threads in this order, so that long rows
        start early and short ones fill the gaps at the end.
        """
        return self._order

    def transpose(self):
        """The (M, N) mask of the transposed pattern, cached on this object.

        Row j of the transpose lists, in increasing order, the queries that may
        attend to key j: the backward pass walks it to compute ``dk`` and ``dv``.
        """
        if self._transpose is None:
            n, m = self._shape
            t_offsets = np.empty(m + 1, dtype=self._offsets.dtype)
            t_cols = np.empty_like(self._cols)
            _attention.csr_transpose(self._offsets, self._cols, t_offsets, t_cols)
            t = SparseCSR._trusted(t_offsets, t_cols, (m, n))
            t._transpose = self
            self._transpose = t
        return self._transpose

    @property
    def T(self):
        """Same as :meth:`transpose`."""
        return self.transpose()

    def __reduce__(self):
        return (SparseCSR, (np.array(self._offsets), np.array(self._cols), self._shape))

    def __eq__(self, other):
        if not isinstance(other, SparseCSR):
            return NotImplemented
        return (self._shape == other._shape
                and np.array_equal(self._offsets, other._offsets)
                and np.array_equal(self._cols, other._cols))

    __hash__ = None

    def __repr__(self):
        n, m = self._shape
        return (f"SparseCSR(shape=({n}, {m}), nnz={self.nnz}, "
                f"density={self.density:.4g}, index_dtype={self.index_dtype})")
