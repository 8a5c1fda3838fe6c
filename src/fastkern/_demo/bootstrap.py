"""``python -m fastkern`` rows for bootstrap: percentile intervals of the mean and the
median of Poisson(4) counts, and a BCa interval of a 10% trimmed mean (on a small
sample: scipy's BCa jackknife is O(n**2) in time and memory)."""
import warnings

import numpy as np

from .._report import Row, best_time
from .._workers import get_workers
from ..bootstrap import bootstrap


def workload(quick=False):
    import scipy.stats

    n, n_resamples = (20_000, 500) if quick else (100_000, 1_000)
    repeat = 2 if quick else 3
    x = np.random.default_rng(0).poisson(4.0, size=n).astype(np.float64)
    rows = []
    cases = [("mean", np.mean, "percentile", x),
             ("median", np.median, "percentile", x),
             ("trimmed_mean", lambda s, axis: scipy.stats.trim_mean(s, 0.1, axis=axis), "BCa",
              x[:2_000])]
    for statistic, reference, method, data in cases:
        options = {"proportiontocut": 0.1} if statistic == "trimmed_mean" else {}

        def run(workers):
            return bootstrap(data, statistic, n_resamples=n_resamples, method=method,
                             seed=0, workers=workers, **options)

        t_ref, _ = best_time(lambda: scipy.stats.bootstrap(
            (data,), reference, n_resamples=n_resamples, method=method, rng=0), 1)
        t_one, _ = best_time(lambda: run(1), repeat)
        t_all, res = best_time(lambda: run(get_workers()), repeat)
        # Agreement: scipy's interval computed on fastkern's resamples.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = scipy.stats.bootstrap((data,), reference, n_resamples=0,
                                        bootstrap_result=res, method=method)
        diff = float(np.max(np.abs(np.subtract(res.confidence_interval,
                                               ref.confidence_interval))))
        rows.append(Row("bootstrap", f"{statistic} {method}: {data.size:,} counts, "
                        f"B={n_resamples}", "scipy.stats.bootstrap", t_ref, t_one, t_all,
                        diff, "abs, scipy's interval on the same resamples"))
    return rows
