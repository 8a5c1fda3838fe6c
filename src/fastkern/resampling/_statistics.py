"""The statistics of a bootstrap: built-in ones computed by the kernels of
fastkern._bootstrap without materialising resamples (moments, order statistics),
and callables given index batches drawn in compiled code.  Each estimator gives the
distribution of its resamples, the observed statistic and the jackknife."""
import inspect
import math

import numpy as np

from .. import _bootstrap
from .._bootstrap import Statistic
from ._checks import _check_batch, _check_flag, _check_real, _index_array

_ONE_SAMPLE = {"mean": Statistic.MEAN, "median": Statistic.MEDIAN,
               "quantile": Statistic.QUANTILE, "var": Statistic.VAR, "std": Statistic.STD,
               "trimmed_mean": Statistic.TRIMMED_MEAN}
_TWO_SAMPLE = {"mean_diff": Statistic.MEAN_DIFF, "pearsonr": Statistic.PEARSONR}
# Index elements (int64) per batch of resamples of a callable statistic: 32 MiB.
_CALLABLE_BATCH_ELEMENTS = 1 << 22


def _make_estimator(statistic, samples, names, paired, q, ddof, proportiontocut, batch,
                    vectorized=None):
    paired = _check_flag(paired, "paired")
    vectorized = _check_flag(vectorized, "vectorized", none=True)
    if paired and len({s.size for s in samples}) > 1:
        sizes = ", ".join(f"{name} has {s.size}" for name, s in zip(names, samples))
        raise ValueError(f"paired samples must have the same length; {sizes}")
    if callable(statistic):
        for value, name in ((q, "q"), (proportiontocut, "proportiontocut")):
            if value is not None:
                raise ValueError(f"{name} is only used by the built-in statistics")
        return _CallableStatistic(statistic, samples, paired, batch, vectorized)
    if vectorized is not None:
        raise ValueError("vectorized is only used by a callable statistic")
    if not isinstance(statistic, str):
        raise TypeError(f"statistic must be a string or a callable, got {statistic!r}")
    if statistic in _ONE_SAMPLE:
        kind, wanted = _ONE_SAMPLE[statistic], 1
    elif statistic in _TWO_SAMPLE:
        kind, wanted = _TWO_SAMPLE[statistic], 2
    else:
        known = ", ".join(repr(s) for s in [*_ONE_SAMPLE, *_TWO_SAMPLE])
        raise ValueError(f"statistic must be a callable or one of {known}; "
                         f"got {statistic!r}")
    if len(samples) != wanted:
        raise ValueError(f"statistic={statistic!r} takes {wanted} sample(s) "
                         f"({'data=(x, y)' if wanted == 2 else 'data=x'}), "
                         f"got {len(samples)}")
    if kind == Statistic.PEARSONR and not paired:
        raise ValueError("statistic='pearsonr' resamples (x, y) pairs: pass paired=True")
    if batch is not None:
        _check_batch(batch)
    if q is not None and kind != Statistic.QUANTILE:
        raise ValueError(f"q is only used with statistic='quantile', not {statistic!r}")
    if proportiontocut is not None and kind != Statistic.TRIMMED_MEAN:
        raise ValueError("proportiontocut is only used with statistic='trimmed_mean', "
                         f"not {statistic!r}")

    n = samples[0].size
    if kind == Statistic.QUANTILE:
        if q is None:
            raise ValueError("statistic='quantile' needs q, a probability in [0, 1]")
        q = _check_real(q, "q")
        if not 0 <= q <= 1:
            raise ValueError(f"q must be in [0, 1], got {q!r}")
        return _OrderStatistic(kind, samples[0], q)
    if kind == Statistic.TRIMMED_MEAN:
        if proportiontocut is None:
            raise ValueError("statistic='trimmed_mean' needs proportiontocut, a fraction "
                             "in [0, 0.5)")
        p = _check_real(proportiontocut, "proportiontocut")
        if not 0 <= p < 0.5:
            raise ValueError(f"proportiontocut must be in [0, 0.5), got {p!r}")
        return _OrderStatistic(kind, samples[0], p)
    if kind == Statistic.MEDIAN:
        return _OrderStatistic(kind, samples[0], None)
    if kind in (Statistic.VAR, Statistic.STD):
        ddof = _check_real(ddof, "ddof")
        if not 0 <= ddof < n:
            raise ValueError(f"ddof must be in [0, n) for a sample of n = {n}, got "
                             f"{ddof!r}")
    return _MomentStatistic(kind, samples, paired, float(ddof) if kind in
                            (Statistic.VAR, Statistic.STD) else 0.0)



class _KernelArrays:
    """Base of the estimators whose arrays the kernels read.  Unpickled, as a Dask
    worker does, an array may lie unaligned in the message it came in; the kernels
    load whole values, so such arrays are copied (once each: x stays y's object)."""

    def __setstate__(self, state):
        copies = {}
        for key, value in state.items():
            if isinstance(value, np.ndarray) and not value.flags.aligned:
                state[key] = copies.setdefault(id(value), value.copy())
        self.__dict__.update(state)


class _MomentStatistic(_KernelArrays):
    """mean, var, std, mean_diff, pearsonr: from sums of prepared values (_summands)."""

    def __init__(self, kind, samples, paired, ddof):
        self.kind, self.paired, self.ddof = kind, paired, ddof
        centre = kind in (Statistic.VAR, Statistic.STD, Statistic.PEARSONR)
        prepared = [_summands(s, centre) for s in samples]
        (x, self.ex), (y, self.ey) = prepared[0], prepared[-1]   # y is x for one sample
        dtype = np.result_type(x, y)     # the kernels take x and y of one type
        self.x = x.astype(dtype, copy=False)
        self.y = self.x if y is x else y.astype(dtype, copy=False)

    def _args(self):
        return (self.kind, self.x, self.y, self.ex, self.ey, self.ddof, self.paired)

    def resample(self, streams, out, n_threads):
        _bootstrap.resample_moments(streams, *self._args(), out, n_threads)

    def observed(self):
        return _bootstrap.sample_moments(*self._args())

    def jackknife(self):
        two = self.kind == Statistic.MEAN_DIFF and not self.paired
        out_x = np.empty(self.x.size)
        out_y = np.empty(self.y.size if two else 0)
        _bootstrap.jackknife_moments(*self._args(), out_x, out_y)
        return [out_x, out_y] if two else [out_x]


def _summands(a, centre):
    """(values, e): the values whose sums give a moment statistic of sample a, and
    the power of two they are scaled by, values = (a - mean(a) if centre else a)
    * 2**-e.

    Scaling by a power of two is exact, so the statistic scaled back by 2**e is
    the one of a itself, only no sum overflows or underflows: data near 1e155
    have squares beyond float64's range, and data near 1e-170 squares below it.
    Centred values (var, std, pearsonr: sums of squares) are brought to a
    largest magnitude in [0.5, 1), after centring in that scale too (so that
    a - mean(a) cannot overflow); plain values (means) are scaled only where
    their sum could overflow, and are otherwise a itself, float32 included.
    """
    top = float(np.max(np.abs(a)))
    if not centre and top <= np.finfo(np.float64).max / a.size:
        return a, 0
    e = math.frexp(top)[1]                        # top * 2**-e in [0.5, 1)
    values = np.ldexp(a, -e, dtype=np.float64)
    if centre:
        values -= np.mean(values)
        spread = math.frexp(float(np.max(np.abs(values))))[1]
        np.ldexp(values, -spread, out=values)
        e += spread
    return values, e


class _OrderStatistic(_KernelArrays):
    """median, quantile, trimmed_mean: from the sorted distinct values."""

    def __init__(self, kind, x, param):
        self.kind, self.param = kind, param
        values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
        self.values = values.astype(np.float64)
        self.inverse = inverse.astype(np.int64, copy=False)
        self.counts = counts.astype(np.int64, copy=False)

    def _ranks(self, n):
        """(lo, hi, gamma) of _bootstrap._order_statistic for a sample of n."""
        if self.kind == Statistic.MEDIAN:
            return (n - 1) // 2, n // 2, 0.0
        if self.kind == Statistic.TRIMMED_MEAN:
            cut = int(self.param * n)             # as scipy.stats.trim_mean
            return cut, n - cut, 0.0
        virtual = (n - 1) * self.param             # NumPy's "linear" method
        if virtual >= n - 1:
            return n - 1, n - 1, 0.0
        lo = math.floor(virtual)
        return lo, lo + 1, virtual - lo

    def resample(self, streams, out, n_threads):
        lo, hi, gamma = self._ranks(self.inverse.size)
        _bootstrap.resample_order(streams, self.kind, self.inverse, self.values, lo, hi,
                                  gamma, out, n_threads)

    def observed(self):
        lo, hi, gamma = self._ranks(self.inverse.size)
        return _bootstrap.sample_order(self.kind, self.counts, self.values, lo, hi, gamma)

    def jackknife(self):
        sorted_x = np.repeat(self.values, self.counts)
        starts = np.cumsum(self.counts) - self.counts
        lo, hi, gamma = self._ranks(sorted_x.size - 1)
        per_value = np.empty(self.values.size)
        _bootstrap.jackknife_order(self.kind, sorted_x, starts, lo, hi, gamma, per_value)
        return [per_value[self.inverse]]



def takes_axis(statistic, vectorized):
    """(vectorized, whether statistic takes axis) for a callable statistic, deciding
    as scipy does for vectorized=None: vectorised if its signature has an axis
    parameter; TypeError for vectorized=True and a statistic without one."""
    try:
        params = inspect.signature(statistic).parameters
    except (TypeError, ValueError):  # some builtins have no signature: try axis
        params = {"axis": None}
    has_axis = "axis" in params or any(
        p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())
    if vectorized is None:
        vectorized = has_axis
    if vectorized and not has_axis:
        raise TypeError("statistic must take axis when vectorized=True: a callable "
                        "statistic(*samples, axis=-1); this one takes no axis")
    return vectorized


def as_vectorized(statistic, vectorized):
    """statistic as a callable statistic(*arrays, axis=-1) vectorised over the
    trailing axis (see takes_axis)."""
    return statistic if takes_axis(statistic, vectorized) else _OnePerResample(statistic)


class _OnePerResample:
    """A statistic of one resample as a vectorised one: ``f(*arrays, axis=-1)`` on
    arrays of shape (m, n_k) calls it on each row; on 1-D arrays, once."""

    def __init__(self, statistic):
        self.statistic = statistic

    def __call__(self, *arrays, axis=-1):
        if arrays[0].ndim == 1:
            return self.statistic(*arrays)
        return np.array([self.statistic(*(a[i] for a in arrays))
                         for i in range(arrays[0].shape[0])])


class _CallableStatistic:
    """A callable statistic, given index batches drawn in compiled code."""

    def __init__(self, statistic, samples, paired, batch, vectorized):
        statistic = as_vectorized(statistic, vectorized)
        self.statistic, self.samples, self.paired = statistic, samples, paired
        self.sizes = [samples[0].size] if paired else [s.size for s in samples]
        self.batch = None if batch is None else _check_batch(batch)

    def _call(self, arrays, expected):
        value = np.asarray(self.statistic(*arrays, axis=-1))
        if value.dtype.kind not in "biuf":
            raise TypeError(f"statistic must return real numbers, got dtype {value.dtype}")
        if value.shape != expected:
            raise ValueError(f"statistic must return one value per resample (shape "
                             f"{expected}), got shape {value.shape}")
        return value.astype(np.float64, copy=False)

    def resample(self, streams, out, n_threads):
        total = sum(self.sizes)
        batch = self.batch or max(1, _CALLABLE_BATCH_ELEMENTS // total)
        batch = min(batch, out.size)
        index = _index_array((batch, total))
        sizes = np.asarray(self.sizes, dtype=np.int64)
        bounds = np.cumsum([0, *self.sizes])
        for r0 in range(0, out.size, batch):
            m = min(batch, out.size - r0)
            rows = index[:m]
            _bootstrap.fill_indices(streams, r0, sizes, rows, n_threads)
            if self.paired:
                arrays = [s[rows] for s in self.samples]
            else:
                arrays = [s[rows[:, a:b]] for s, a, b in
                          zip(self.samples, bounds[:-1], bounds[1:])]
            out[r0:r0 + m] = self._call(arrays, (m,))

    def observed(self):
        return float(self._call(self.samples, ()))

    def jackknife(self):
        """Leave-one-out values for each sample (the pairs when paired), as scipy."""
        groups = [list(range(len(self.samples)))] if self.paired else \
            [[k] for k in range(len(self.samples))]
        result = []
        for group in groups:
            n = self.samples[group[0]].size
            keep = np.arange(n - 1)
            batch = self.batch or max(1, _CALLABLE_BATCH_ELEMENTS // n)
            values = np.empty(n)
            for i0 in range(0, n, batch):
                left_out = np.arange(i0, min(n, i0 + batch))[:, None]
                rows = _index_array((left_out.size, n - 1))
                np.add(keep, keep >= left_out, out=rows)  # row j skips observation i0 + j
                arrays = [s[rows] if k in group else
                          np.broadcast_to(s, (rows.shape[0], s.size))
                          for k, s in enumerate(self.samples)]
                values[i0:i0 + rows.shape[0]] = self._call(arrays, (rows.shape[0],))
            result.append(values)
        return result


