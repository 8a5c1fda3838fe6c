"""``fastkern.bootstrap``: the public names of the bootstrap, whose code lives in
fastkern.resampling (``fastkern.bootstrap`` itself is the function)."""
from .resampling.bootstrap import (BLOCK_SIZE, BootstrapResult, ConfidenceInterval,
                                   DegenerateDataWarning, bootstrap)

__all__ = ["BLOCK_SIZE", "BootstrapResult", "ConfidenceInterval", "DegenerateDataWarning",
           "bootstrap"]
