"""Argument checks of the resampling functions (bootstrap, permutation_test): the
samples, the flags and choices; errors name the argument."""
import math

import numpy as np

from .._validation import check_int, check_real

def _split_samples(data):
    """(the samples in data, their names for messages): a sequence of array-likes
    is several samples, anything else one."""
    if isinstance(data, (tuple, list)) and data and all(_is_array_like(s) for s in data):
        return list(data), [f"data[{k}]" for k in range(len(data))]
    return [data], ["data"]


def _as_samples(data):
    """data as a list of 1-D, finite, contiguous float32/float64 arrays, with names."""
    raw, names = _split_samples(data)
    samples = []
    for s, name in zip(raw, names):
        try:
            a = np.asarray(s)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a 1-D array of numbers ({exc})") from None
        if a.dtype.kind == "c":
            raise TypeError(f"{name} must be real, got dtype {a.dtype}")
        if a.dtype.kind in "USVMm":  # text, bytes, records, dates: not numbers
            raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
        if a.dtype.kind not in "biuf":
            try:
                a = a.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}") from None
            except OverflowError:  # Python ints beyond float64
                raise ValueError(f"{name} holds a number beyond float64's range") from None
        if a.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array (or data a sequence of 1-D "
                             f"samples), got an array of shape {a.shape}")
        if a.size == 0:
            raise ValueError(f"{name} must not be empty")
        if a.size < 2:
            raise ValueError(f"{name} must hold at least two observations, got {a.size}")
        if a.dtype not in (np.float32, np.float64):
            a = a.astype(np.float64)
        finite = np.isfinite(a)
        if not finite.all():
            i = int(np.argmin(finite))
            what = "NaN" if np.isnan(a[i]) else "an infinite value"
            raise ValueError(f"{name} contains {what} (at index {i}); remove or impute "
                             f"it first")
        # the kernels load whole values: an unaligned buffer (bytes from a pickle,
        # a network frame) is copied
        a = np.ascontiguousarray(a)
        samples.append(a if a.flags.aligned else a.copy())
    return samples, names


def _is_array_like(s):
    try:
        return np.ndim(s) >= 1
    except (TypeError, ValueError):  # ragged nesting
        return True


def _check_real(value, name):
    value = check_real(value, name)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def _check_flag(value, name, none=False):
    """value as a bool: True, False (or 1, 0), or None where none is allowed."""
    if value is None and none:
        return None
    if isinstance(value, (bool, np.bool_, int, np.integer)) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be True{', False or None' if none else ' or False'}, "
                    f"got {value!r}")


def _check_choice(value, name, choices, spelled):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {spelled}; got {value!r}")
    if value.lower() not in choices:
        raise ValueError(f"{name} must be one of {spelled}; got {value!r}")
    return value.lower()


def _batched_samples(data, axis):
    """None for samples of one dimension (checked against axis); else the samples
    with their observations moved last and the other axes broadcast together,
    their common shape, and whether data was a sequence of samples."""
    raw, names = _split_samples(data)
    is_sequence = names != ["data"]
    try:
        arrays = [np.asarray(s) for s in raw]
    except (TypeError, ValueError):
        return None  # ragged: _as_samples says what is wrong
    axis = check_int(axis, "axis")
    for a, name in zip(arrays, names):
        if a.ndim >= 1 and not -a.ndim <= axis < a.ndim:
            raise ValueError(f"axis {axis} is out of range for {name} of shape {a.shape}")
    if all(a.ndim <= 1 for a in arrays):
        return None
    if any(a.ndim == 0 for a in arrays):
        return None  # _as_samples says what is wrong
    moved = [np.moveaxis(a, axis, -1) for a in arrays]
    for a, name in zip(arrays, names):
        if a.size == 0:
            raise ValueError(f"{name} must not be empty, got shape {a.shape}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            i = np.unravel_index(int(np.argmin(np.isfinite(a))), a.shape)
            what = "NaN" if np.isnan(a[i]) else "an infinite value"
            raise ValueError(f"{name} contains {what} (at index {tuple(map(int, i))}); "
                             f"remove or impute it first")
    try:
        shape = np.broadcast_shapes(*(a.shape[:-1] for a in moved))
    except ValueError:
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise ValueError(f"the samples' axes other than axis={axis} must broadcast "
                         f"together; got shapes {shapes}") from None
    samples = [np.broadcast_to(a, (*shape, a.shape[-1])) for a in moved]
    return samples, shape, is_sequence


def _check_batch(batch):
    return check_int(batch, "batch", 1)


def _empty_distribution(shape, what="bootstrap_distribution"):
    """An uninitialised float64 distribution (`what`, for the message), allocated
    before any work, so that too many resamples fail at once and say so."""
    try:
        return np.empty(shape, dtype=np.float64)
    except (MemoryError, ValueError):  # ValueError: beyond what an array can index
        shape = tuple(int(d) for d in np.atleast_1d(shape))
        raise MemoryError(f"n_resamples is too large: {what} of shape "
                          f"{shape} would take {8 * math.prod(shape) / 2**30:.3g} GiB"
                          ) from None


def _index_array(shape):
    """An uninitialised int64 array for the indices of a batch of resamples of a
    callable statistic; MemoryError naming batch if it cannot be allocated."""
    try:
        return np.empty(shape, dtype=np.int64)
    except (MemoryError, ValueError):
        raise MemoryError(f"batch is too large: the indices of {shape[0]} resamples of "
                          f"{shape[1]} observations would take "
                          f"{8 * shape[0] * shape[1] / 2**30:.3g} GiB; pass a smaller batch"
                          ) from None

