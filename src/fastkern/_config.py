"""``fastkern.show_config``: what this build of fastkern contains."""
import json
import platform
import sys

import numpy as np

from . import _buildinfo
from ._version import __version__
from ._workers import cpu_count, get_workers


def _cuda_info():
    """CUDA extension status: whether it was built, and the devices it sees now."""
    try:
        from . import _cuda  # built only where nvcc was found
    except ImportError:
        return {"built": False, "devices": []}
    try:
        devices = _cuda.devices()
    except Exception as exc:  # no driver, no device: importing still works
        return {"built": True, "devices": [], "error": str(exc)}
    return {"built": True, "devices": devices}


def show_config(mode="stdout"):
    """Show what this fastkern build was compiled with and what it sees at run time.

    Parameters
    ----------
    mode : {"stdout", "dicts"}, optional
        Print a readable summary (default), or return it as a dict.

    Returns
    -------
    config : dict or None
        With ``mode="dicts"``: ``version``, ``python``, ``numpy``, ``openmp``
        (``enabled``, ``max_threads``), ``workers`` (``cpus``, ``default``),
        ``simd`` (``targets`` compiled, ``selected`` on this CPU) and ``cuda``
        (``built``, ``devices``).

    Examples
    --------
    >>> import fastkern
    >>> cfg = fastkern.show_config(mode="dicts")
    >>> sorted(cfg)
    ['cuda', 'numpy', 'openmp', 'platform', 'python', 'simd', 'version', 'workers']
    """
    config = {
        "version": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "openmp": {
            "enabled": _buildinfo.openmp_enabled(),
            "max_threads": _buildinfo.openmp_max_threads(),
        },
        "workers": {"cpus": cpu_count(), "default": get_workers()},
        "simd": {
            "targets": _buildinfo.simd_targets(),
            "selected": _buildinfo.simd_selected(),
        },
        "cuda": _cuda_info(),
    }
    if mode == "dicts":
        return config
    if mode != "stdout":
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    print(json.dumps(config, indent=2))
    return None
