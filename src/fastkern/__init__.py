"""fastkern: compiled kernels that release the GIL.

Kernels
-------
convolve2d, correlate2d
    Drop-ins for ``scipy.signal.convolve2d`` / ``correlate2d``, with a fused stride
    and an FFT route for large filters.
sepconvolve2d, sepcorrelate2d
    The same with a separable filter ``np.outer(column, row)``, at P + Q
    multiply-adds per output.
bootstrap
    ``scipy.stats.bootstrap``'s intervals (percentile, basic, BCa), resampled in
    parallel without storing resamples.
permutation_test
    ``scipy.stats.permutation_test``'s exact and randomized tests, the null
    distribution of the built-in statistics computed without forming permutations.
gibbs, gibbs_switchpoint
    Gibbs samplers (the bivariate benchmark model, the coal-mining switchpoint
    model), chains in parallel, reproducible from the seed alone.
attention
    CSR-sparse masked attention (pattern builders, ``SparseCSR``, forward and
    backward), usable from NumPy and PyTorch.
locate_events
    Grid-search amplitude source location of seismic events (volcano
    seismology's ASL method), exact to the reference loop.
parallel_map
    A prefetching parallel map over threads, for pipelines of GIL-free steps.

Threads
-------
Every kernel takes ``workers=None`` (scipy's convention); ``set_workers`` changes
the default in a block and ``get_workers`` reports it.  ``show_config`` says what
was built.
"""
from ._version import __version__
from ._workers import get_workers, set_workers
from ._config import show_config
from .bootstrap import bootstrap
from .resampling.permutation import permutation_test
from . import attention, datasets
from .convolve import convolve2d, correlate2d, sepconvolve2d, sepcorrelate2d
from .gibbs import gibbs, gibbs_switchpoint
from .locate import LocateResult, locate_events
from .pipeline import parallel_map

__all__ = [
    "__version__",
    "attention",
    "bootstrap",
    "convolve2d",
    "correlate2d",
    "datasets",
    "gibbs",
    "gibbs_switchpoint",
    "get_workers",
    "LocateResult",
    "locate_events",
    "parallel_map",
    "permutation_test",
    "sepconvolve2d",
    "sepcorrelate2d",
    "set_workers",
    "show_config",
]
