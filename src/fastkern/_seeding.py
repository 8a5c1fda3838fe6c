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
depends on how work is split.
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


def bit_generators(root, first, stop):
    """PCG64 bit generators of units first..stop-1 of a root SeedSequence."""
    return [np.random.PCG64(np.random.SeedSequence(root.entropy,
                                                    spawn_key=root.spawn_key + (i,),
                                                    pool_size=root.pool_size))
            for i in range(first, stop)]
