"""``python -m fastkern`` rows for permutation_test: the difference of the means of
two samples, and Pearson's r of pairs, against scipy.stats.permutation_test."""
import numpy as np

from .._report import Row, best_time
from .._workers import get_workers
from ..resampling.permutation import permutation_test


def workload(quick=False):
    import scipy.stats

    n, n_resamples = (2_000, 999) if quick else (10_000, 9_999)
    repeat = 2 if quick else 3
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.0, 1.0, n), rng.normal(0.02, 1.0, n)
    partner = x + rng.normal(0.0, 3.0, n)
    cases = [("mean_diff", "independent", (x, y),
              lambda a, b, axis: np.mean(a, axis=axis) - np.mean(b, axis=axis)),
             ("pearsonr", "pairings", (x, partner),
              lambda a, b, axis: scipy.stats.pearsonr(a, b, axis=axis).statistic)]
    rows = []
    for statistic, permutation_type, data, reference in cases:
        def run(workers):
            return permutation_test(data, statistic, permutation_type=permutation_type,
                                    n_resamples=n_resamples, seed=0, workers=workers)

        t_ref, ref = best_time(lambda: scipy.stats.permutation_test(
            data, reference, permutation_type=permutation_type, n_resamples=n_resamples,
            rng=0), 1)
        t_one, _ = best_time(lambda: run(1), repeat)
        t_all, res = best_time(lambda: run(get_workers()), repeat)
        # Agreement: the p-values of two independent randomized tests differ by
        # their Monte Carlo error (about 0.005 at 9,999 permutations)
        rows.append(Row("permutation_test", f"{statistic} {permutation_type}: 2 x {n:,}, "
                        f"{n_resamples:,} perms", "scipy.stats.permutation_test", t_ref,
                        t_one, t_all, abs(float(res.pvalue) - float(ref.pvalue)),
                        "abs, p-value (Monte Carlo error)"))
    return rows
