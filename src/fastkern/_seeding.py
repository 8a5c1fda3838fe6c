"""The ``seed`` argument of the random kernels: one root SeedSequence per call, and
one child of it per unit of parallel work (a chain, a block of resamples).

Unit ``i`` draws from ``PCG64(root.spawn(n)[i])``, where ``root`` is

- ``SeedSequence(seed)`` for None (fresh entropy), an int or a sequence of ints;
- a copy of ``seed`` for a SeedSequence: the caller's object is not advanced, so
  the same SeedSequence gives the same result every time, like an int;
- ``SeedSequence(g.integers(0, 2**64, size=4, dtype=np.uint64).tolist())`` for a
  Generator ``g``: 256 bits drawn from it, so the result is a function of its
  state, and it advances as after any draw.

Children are built from their spawn keys (``root.spawn_key + (i,)``), which is
what ``root.spawn(n)[i]`` gives for a fresh root: any range of units can be
seeded alone, in another process or on another machine, and the result never
depends on how work is split.  The kernels derive each unit's PCG64 state in C
from ``root_words(root)`` when the unit starts (csrc/common/fk_seedseq.h).
"""
import numpy as np

_SEED_TYPES = "None, an int, a sequence of ints, a SeedSequence or a Generator"


def root_seed(seed):
    """The root SeedSequence of a call (see the module docstring)."""
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key,
                                      pool_size=seed.pool_size)
    if isinstance(seed, np.random.Generator):
        words = seed.integers(0, 2**64, size=4, dtype=np.uint64)
        return np.random.SeedSequence(words.tolist())
    if isinstance(seed, (bool, np.bool_, float, np.floating, np.random.RandomState,
                         np.random.BitGenerator)):
        raise TypeError(f"seed must be {_SEED_TYPES}, got {type(seed).__name__}")
    try:
        return np.random.SeedSequence(seed)
    except TypeError:
        raise TypeError(f"seed must be {_SEED_TYPES}, got {seed!r}") from None
    except ValueError as exc:
        raise ValueError(f"seed must be non-negative, got {seed!r} ({exc})") from None


def _words(value):
    """An int (least significant 32-bit word first; 0 is one word) or a sequence of
    them as SeedSequence reads its entropy and spawn key: a list of uint32 words."""
    if isinstance(value, (int, np.integer)):
        value = int(value)
        words = [value & 0xFFFFFFFF]
        while value >> 32:
            value >>= 32
            words.append(value & 0xFFFFFFFF)
        return words
    return [word for item in value for word in _words(item)]


def root_words(root):
    """The words of the root that begin every unit's assembled entropy, as uint32.

    Unit ``i``'s SeedSequence reads the root's entropy (zero-padded to
    ``root.pool_size`` words, as NumPy does for any spawned sequence), the root's
    spawn key, then ``i``: the C kernels (csrc/common/fk_seedseq.h) take these
    words and ``root.pool_size``, and derive the PCG64 state of each unit.
    """
    words = _words(root.entropy)
    words += [0] * (root.pool_size - len(words))
    return np.array(words + _words(root.spawn_key), dtype=np.uint32)
