"""Resampling: the bootstrap and the permutation test, on one set of streams
(blocks of ``BLOCK_SIZE``, each from its own child of the seed), sample checks and
statistics.

Modules: ``_checks`` (the samples and arguments), ``_streams`` (blocks and their
streams), ``_statistics`` (the bootstrap's estimators, vectorising a callable),
``intervals`` (confidence intervals from a distribution), ``bootstrap``,
``permutation`` (the permutation test).
"""
from .bootstrap import (BLOCK_SIZE, BootstrapResult, ConfidenceInterval,
                        DegenerateDataWarning, bootstrap)
from .permutation import PermutationTestResult, permutation_test

__all__ = ["BLOCK_SIZE", "BootstrapResult", "ConfidenceInterval", "DegenerateDataWarning",
           "PermutationTestResult", "bootstrap", "permutation_test"]
