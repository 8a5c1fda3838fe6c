"""Tests of the seeding contract: unit i of a call draws from
``PCG64(SeedSequence(root.entropy, spawn_key=root.spawn_key + (i,), pool_size=root.pool_size))``,
whose state the kernels derive in C (csrc/common/fk_seedseq.h) from
``_seeding.root_words(root)``.  Oracle: NumPy's own SeedSequence and PCG64.
"""
import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from fastkern import _gibbs, _seeding


def numpy_unit(root, i):
    return np.random.PCG64(np.random.SeedSequence(root.entropy, spawn_key=root.spawn_key + (i,),
                                                  pool_size=root.pool_size))


def c_raw(root, i, count):
    return _gibbs._chain_raw(_seeding.root_words(root), root.pool_size, i, count)


entropies = st.one_of(
    st.integers(0, 2**64),
    st.integers(0, 2**300),                                   # more words than the pool
    st.lists(st.integers(0, 2**70), min_size=1, max_size=12),
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=6).map(
        lambda words: np.array(words, dtype=np.uint32)),
)
roots = st.builds(
    lambda entropy, key, pool_size: np.random.SeedSequence(entropy, spawn_key=tuple(key),
                                                           pool_size=pool_size),
    entropies, st.lists(st.integers(0, 2**70), max_size=3), st.integers(4, 20))
units = st.one_of(st.integers(0, 100), st.integers(2**32 - 2, 2**32 + 2),
                  st.integers(0, 2**63 - 1))


@settings(max_examples=300, deadline=None)
@given(root=roots, unit=units)
def test_unit_stream_is_numpys(root, unit):
    assert_array_equal(c_raw(root, unit, 8), numpy_unit(root, unit).random_raw(8))


@pytest.mark.parametrize("seed", [0, 1, 2**32, 2**128 + 5, 2**512 - 1, [1, 2, 3], [],
                                  None])
@pytest.mark.parametrize("unit", [0, 1, 63, 2**32 - 1, 2**32, 2**40 + 7, 2**63 - 1])
def test_unit_stream_is_numpys_for_the_roots_a_call_makes(seed, unit):
    root = _seeding.root_seed(seed)
    assert_array_equal(c_raw(root, unit, 50), numpy_unit(root, unit).random_raw(50))


def test_unit_stream_is_what_spawn_gives():
    root = _seeding.root_seed(7)
    children = np.random.SeedSequence(7).spawn(5)
    for i, child in enumerate(children):
        assert_array_equal(c_raw(root, i, 10), np.random.PCG64(child).random_raw(10))


def test_spawned_root_and_large_pool():
    parent = np.random.SeedSequence(123, pool_size=64)
    root = _seeding.root_seed(parent.spawn(3)[2])          # a spawned SeedSequence as seed
    for unit in (0, 5, 2**33):
        assert_array_equal(c_raw(root, unit, 20), numpy_unit(root, unit).random_raw(20))


@pytest.mark.parametrize("seed, unit", [(0, 0), (1, 3), (2**100, 2**32 + 1),
                                        (np.random.SeedSequence(5, spawn_key=(1, 2),
                                                                pool_size=7), 2**62)])
def test_chain_bitgen_draws_are_numpys(seed, unit):
    """A chain's bitgen_t: next_double, next_uint64 and next_uint32 with the spare
    half kept across other draws, through NumPy's C distributions."""
    root = _seeding.root_seed(seed)
    count = 2000
    got = _gibbs._chain_draws(_seeding.root_words(root), root.pool_size, unit, count)
    rng = np.random.Generator(numpy_unit(root, unit))
    expected = np.empty((count, 6))
    for i in range(count):
        expected[i] = (rng.random(), rng.standard_normal(), rng.standard_gamma(2.5),
                       rng.poisson(3.5), rng.integers(0, 2**32, dtype=np.uint32),
                       rng.integers(0, 2**64, dtype=np.uint64) >> np.uint64(11))
    assert_array_equal(got, expected)


def test_bootstrap_block_beyond_2_32_is_numpys():
    """A block's stream in the bootstrap's kernel, for a block index that takes two
    words of the spawn key, and a root with a spawn key and a larger pool."""
    bootstrap_module = importlib.import_module("fastkern.resampling.bootstrap")
    x = np.arange(11.0) ** 2                # integers: the means are exact
    seed = np.random.SeedSequence(9, spawn_key=(4,), pool_size=5)
    plan = bootstrap_module._plan(x, "mean", n_resamples=2**40, confidence_level=0.95,
                                  method="percentile", alternative="two-sided", paired=False,
                                  q=None, ddof=1, proportiontocut=None, batch=None,
                                  bootstrap_result=None, seed=seed)
    block = 2**32 + 3
    got = bootstrap_module.resample_blocks(plan, block, block + 2, 2)
    expected = []
    for b in (block, block + 1):
        rng = np.random.Generator(numpy_unit(plan.root, b))
        expected += [x[rng.integers(0, x.size, size=x.size)].mean() for _ in range(64)]
    assert_array_equal(got, expected)
