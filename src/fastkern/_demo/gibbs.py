"""``python -m fastkern`` rows for the Gibbs samplers."""
import math

import numpy as np

from .._report import Row, best_time
from .._workers import get_workers
from ..datasets import coal_mining_disasters
from ..gibbs import gibbs, gibbs_switchpoint

SEED = 2024


def _chain_rngs(chains):
    return [np.random.Generator(np.random.PCG64(child))
            for child in np.random.SeedSequence(SEED).spawn(chains)]


def _numpy_gibbs(n, thin, chains):
    """The bivariate chains as a plain Python loop, one NumPy call per draw: the
    same draws as fastkern.gibbs, so the results agree exactly."""
    out = np.empty((chains, n, 2))
    for c, rng in enumerate(_chain_rngs(chains)):
        x = y = 0.0
        for i in range(n):
            for _ in range(thin):
                x = rng.standard_gamma(3.0) / (y * y + 4)
                y = 1 / (1 + x) + rng.standard_normal() / math.sqrt(2 * (1 + x))
            out[c, i] = x, y
    return out


def _numpy_switchpoint(counts, n, chains):
    """The switchpoint chains as a user would write them in NumPy: one sweep per
    Python iteration, vectorised over the years, in fastkern's order of draws."""
    T = counts.size
    k = np.arange(T)
    C = np.concatenate([[0], np.cumsum(counts)])
    out = {"switchpoint": np.empty((chains, n), np.int64),
           "early_rate": np.empty((chains, n)), "late_rate": np.empty((chains, n))}
    for c, rng in enumerate(_chain_rngs(chains)):
        s = T // 2
        for i in range(n):
            early = rng.standard_gamma(1.0 + C[s]) / (1.0 + s)
            late = rng.standard_gamma(1.0 + (C[T] - C[s])) / (1.0 + (T - s))
            log_w = (C[:T] * np.log(early) + (C[T] - C[:T]) * np.log(late)
                     - k * early - (T - k) * late)
            w = np.cumsum(np.exp(log_w - log_w.max()))
            s = min(int(np.searchsorted(w, rng.random() * w[-1], side="right")), T - 1)
            out["switchpoint"][c, i], out["early_rate"][c, i], out["late_rate"][c, i] = \
                s, early, late
    return out


def workload(quick=False):
    workers = get_workers()
    chains = max(2, workers)
    repeat = 2 if quick else 3
    rows = []

    # the same total work however many chains: 10**6 steps (2 * 10**5 quick)
    thin = 10
    n = (20_000 if quick else 100_000) // chains
    t_ref, ref = best_time(lambda: _numpy_gibbs(n, thin, chains), 1)
    t_one, _ = best_time(lambda: gibbs(n, thin, chains=chains, seed=SEED, workers=1), repeat)
    t_all, out = best_time(lambda: gibbs(n, thin, chains=chains, seed=SEED, workers=workers),
                           repeat)
    rows.append(Row("gibbs", f"{chains} chains x {n} draws, thin {thin} (bivariate)",
                    "Python loop, NumPy call per draw", t_ref, t_one, t_all,
                    float(np.max(np.abs(out - ref))), "exact"))

    counts = coal_mining_disasters().counts
    n = (8_000 if quick else 40_000) // chains
    t_ref, ref = best_time(lambda: _numpy_switchpoint(counts, n, chains), 1)
    t_one, _ = best_time(lambda: gibbs_switchpoint(counts, n, chains=chains, seed=SEED,
                                                   workers=1), repeat)
    t_all, out = best_time(lambda: gibbs_switchpoint(counts, n, chains=chains, seed=SEED,
                                                     workers=workers), repeat)
    diff = max(float(np.max(np.abs(out[key] - ref[key]))) for key in ref)
    rows.append(Row("gibbs_switchpoint", f"coal-mining disasters, {chains} x {n} sweeps",
                    "NumPy loop, vectorised per sweep", t_ref, t_one, t_all, diff, "abs"))
    return rows
