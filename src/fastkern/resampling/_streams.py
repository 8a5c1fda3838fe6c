"""The random streams of the resampling functions: blocks of ``BLOCK_SIZE`` resamples
(or permutations), block ``b`` drawing from ``PCG64(SeedSequence(seed).spawn(n)[b])``
(see fastkern._seeding); the kernels derive each block's stream in C."""
from .. import _bootstrap, _seeding

#: Resamples per block; block ``b`` holds resamples ``b * BLOCK_SIZE`` to
#: ``(b + 1) * BLOCK_SIZE - 1``.  Part of the seeding contract: it never changes.
BLOCK_SIZE = _bootstrap.BLOCK_SIZE


def n_blocks(n_resamples):
    """Blocks that hold n_resamples."""
    return -(-n_resamples // BLOCK_SIZE)


def block_streams(root, first, stop):
    """The streams of blocks first..stop-1 of a call whose root SeedSequence is root."""
    return _bootstrap.BlockStreams(_seeding.root_words(root), root.pool_size, first,
                                   stop - first)
