"""Every public function driven with wrong types, dtypes, shapes, sizes, counts and
`workers`, each call in a child process so that a crash or a hang fails the test
instead of the suite.  A call may only

- raise ValueError or TypeError whose message names the argument that was
  replaced, or MemoryError (an impossible size), or
- return a correct result: equal to the oracle's (scipy, a dense NumPy
  reference, the call with ``workers=1``), or of the documented shape and range
  where the result is random.

Cases are one argument of a valid call replaced by one bad value.  The table is
run in full; hypothesis adds integers of every magnitude and arrays of random
dtype and shape.
"""
import math
import multiprocessing
import traceback

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

# ------------------------------------------------------------ the bad values

BIG = 2**20  # a broadcast of BIG x BIG holds 2**40 elements: 8 TiB as float64

VALUES = {
    "None": lambda: None,
    "str": lambda: "x",
    "bytes": lambda: b"ab",
    "float": lambda: 1.5,
    "nan": lambda: math.nan,
    "inf": lambda: math.inf,
    "-1": lambda: -1,
    "0": lambda: 0,
    "2**31": lambda: 2**31,
    "2**63": lambda: 2**63,
    "2**64": lambda: 2**64,
    "-2**63": lambda: -2**63,
    "10**30": lambda: 10**30,
    "-10**30": lambda: -10**30,
    "2**2000": lambda: 2**2000,
    "True": lambda: True,
    "np.int64": lambda: np.int64(3),
    "np.float32": lambda: np.float32(2.0),
    "complex": lambda: 1 + 1j,
    "[]": lambda: [],
    "ragged": lambda: [[1, 2], [3]],
    "{}": lambda: {},
    "object": lambda: object(),
    "empty": lambda: np.array([]),
    "empty 2-D": lambda: np.zeros((0, 3)),
    "3-D": lambda: np.zeros((2, 3, 4)),
    "0-D": lambda: np.array(3.0),
    "strings": lambda: np.array(["a", "b"]),
    "objects": lambda: np.array([1.0, None], dtype=object),
    "bools": lambda: np.ones((5, 5), bool),
    "timedelta": lambda: np.ones((5, 5), "m8[s]"),
    "float16": lambda: np.ones((5, 5), np.float16),
    "NaNs": lambda: np.full((5, 5), np.nan),
    "broadcast 2**40": lambda: np.broadcast_to(np.float64(1.0), (BIG, BIG)),
}


# -------------------------------------------------- the calls and their oracles

def _against_scipy(res, want, step):
    """What is wrong with `res` next to scipy's unstrided `want` (stacked along
    the leading axes, if any), or None."""
    if isinstance(step, (int, np.integer)) and not isinstance(step, bool):
        step = (step, step)
    want = want[..., ::step[0], ::step[1]]
    if res.shape != want.shape or res.dtype != want.dtype:
        return f"got {res.shape} {res.dtype}, scipy {want.shape} {want.dtype}"
    if not np.allclose(res, want, rtol=1e-5, atol=1e-5, equal_nan=True):
        return "values differ from scipy's"
    return None


def _convolve_case(name):
    import scipy.signal

    import fastkern

    rng = np.random.default_rng(0)
    base = {"in1": rng.standard_normal((12, 10)), "in2": rng.standard_normal((3, 4)),
            "mode": "same", "boundary": "fill", "fillvalue": 0.5, "stride": 1,
            "method": "auto", "workers": 2}
    fk = getattr(fastkern, name)
    ref = getattr(scipy.signal, name)

    def check(kw, res):
        rest = [kw[k] for k in ("mode", "boundary", "fillvalue")]
        try:
            a1, a2 = np.asarray(kw["in1"]), np.asarray(kw["in2"])
            if a1.ndim == 3 or a2.ndim == 3:
                # a stack of images or a bank of filters: scipy slice by slice
                images = a1 if a1.ndim == 3 else a1[None]
                bank = a2 if a2.ndim == 3 else a2[None]
                want = np.array([[ref(a, k, *rest) for k in bank] for a in images])
                want = want.reshape(a1.shape[:a1.ndim - 2] + a2.shape[:a2.ndim - 2]
                                    + want.shape[-2:])
            else:
                want = ref(kw["in1"], kw["in2"], *rest)
        except Exception as exc:  # noqa: BLE001 - any refusal of scipy's
            return f"scipy refuses ({exc!r}) what was accepted"
        return _against_scipy(res, want, kw["stride"])

    return fk, base, check


def _separable_case(name):
    import scipy.signal

    import fastkern

    rng = np.random.default_rng(0)
    base = {"in1": rng.standard_normal((12, 10)), "column": rng.standard_normal(3),
            "row": rng.standard_normal(4), "mode": "same", "boundary": "fill",
            "fillvalue": 0.5, "stride": 1, "workers": 2}
    ref = getattr(scipy.signal, name.replace("sep", ""))

    def check(kw, res):
        try:
            kernel = np.outer(kw["column"], kw["row"])
            rest = (kw["mode"], kw["boundary"], kw["fillvalue"])
            a1 = np.asarray(kw["in1"])
            if a1.ndim == 3:   # a stack of images: scipy image by image
                want = np.array([ref(a, kernel, *rest) for a in a1])
            else:
                want = ref(kw["in1"], kernel, *rest)
        except Exception as exc:  # noqa: BLE001 - any refusal of scipy's
            return f"scipy refuses ({exc!r}) what was accepted"
        return _against_scipy(res, want, kw["stride"])

    return getattr(fastkern, name), base, check


def _bootstrap_case():
    import fastkern

    x = np.random.default_rng(1).normal(size=50)
    base = {"data": x, "statistic": "mean", "n_resamples": 200, "confidence_level": 0.9,
            "method": "percentile", "alternative": "two-sided", "batch": None,
            "seed": 1, "workers": 2}

    def check(kw, res):
        low, high = res.confidence_interval
        dist = res.bootstrap_distribution
        if np.ndim(low) == 0 and not (np.isfinite(low) and np.isfinite(high) and low <= high):
            return f"interval {low, high}"
        if kw["seed"] is not None:  # the same seed: the same result on one thread
            want = fastkern.bootstrap(**{**kw, "workers": 1}).bootstrap_distribution
            if not np.array_equal(dist, want):
                return "depends on workers"
        return None

    return fastkern.bootstrap, base, check


def _permutation_case():
    import fastkern

    rng = np.random.default_rng(2)
    base = {"data": (rng.normal(size=30), rng.normal(size=25)), "statistic": "mean_diff",
            "permutation_type": "independent", "n_resamples": 200, "alternative": "two-sided",
            "axis": 0, "seed": 1, "workers": 2}

    def check(kw, res):
        p = np.asarray(res.pvalue)
        if not (np.all(p >= 0) and np.all(p <= 1)):
            return f"p-value {p}"
        if kw["seed"] is not None:  # the same seed: the same result on one thread
            want = fastkern.permutation_test(**{**kw, "workers": 1})
            if not np.array_equal(res.null_distribution, want.null_distribution,
                                  equal_nan=True):
                return "depends on workers"
        return None

    return fastkern.permutation_test, base, check


def _gibbs_case():
    import fastkern

    base = {"n": 20, "thin": 2, "chains": 2, "burn": 3, "seed": 1, "workers": 2}

    def check(kw, res):
        n, chains = kw["n"], kw["chains"]
        if res.shape != (chains, n, 2) or not np.isfinite(res).all():
            return f"shape {res.shape}"
        if kw["seed"] is not None and not np.array_equal(
                res, fastkern.gibbs(**{**kw, "workers": 1})):
            return "depends on workers"
        return None

    return fastkern.gibbs, base, check


def _switchpoint_case():
    import fastkern

    base = {"counts": [4, 5, 4, 1, 0, 2], "n": 20, "thin": 2, "chains": 2, "burn": 3,
            "alpha": 1.0, "beta": 1.0, "seed": 1, "workers": 2}

    def check(kw, res):
        s = res["switchpoint"]
        if s.shape != (kw["chains"], kw["n"]) or (s < 0).any() or (s >= len(kw["counts"])).any():
            return f"switchpoints {s}"
        if kw["seed"] is not None and not np.array_equal(
                s, fastkern.gibbs_switchpoint(**{**kw, "workers": 1})["switchpoint"]):
            return "depends on workers"
        return None

    return fastkern.gibbs_switchpoint, base, check


def _attention_case(backward):
    from fastkern._demo.attention import _dense_backward, _dense_forward
    from fastkern.attention import (SparseCSR, local_1d_pattern, sparse_attention,
                                    sparse_attention_backward)

    rng = np.random.default_rng(2)
    dense = local_1d_pattern(16, 5)
    q, k, v, g = (rng.standard_normal((2, 16, 4)) for _ in range(4))
    base = {"q": q, "k": k, "v": v, "mask": SparseCSR.from_dense(dense), "scale": 0.5,
            "workers": 2}
    if backward:
        base["grad_out"] = g

    def check(kw, res):
        mask = kw["mask"]
        dense_mask = mask.to_dense() if isinstance(mask, SparseCSR) else np.asarray(mask)
        args = [np.asarray(kw[a], dtype=np.float64) for a in ("q", "k", "v")]
        scale = float(kw["scale"]) if kw["scale"] is not None else args[0].shape[-1] ** -0.5
        if backward:
            want = _dense_backward(*args, dense_mask, np.asarray(kw["grad_out"], np.float64),
                                   scale)
            got = res
        else:
            want, got = [_dense_forward(*args, dense_mask, scale)[1]], [res]
        for a, b in zip(got, want):
            if np.shape(a) != np.shape(b) or not np.allclose(a, b, rtol=1e-4, atol=1e-5):
                return "values differ from the dense reference"
        return None

    return (sparse_attention_backward if backward else sparse_attention), base, check


def _pattern_case(name):
    from fastkern.attention import patterns

    bases = {
        "local_2d_pattern": {"H": 4, "W": 5, "distance": 1.5, "p": 2.0},
        "axial_2d_pattern": {"H": 4, "W": 5},
        "dilated_2d_pattern": {"H": 4, "W": 6, "k": 2},
        "swin_attention_pattern": {"H": 4, "W": 4, "window_size": 2, "shift_size": 1},
        "local_2d_gaussian_distribution": {"H": 3, "W": 4, "sigma": 1.0},
        "local_1d_pattern": {"n": 8, "window_size": 3},
        "causal_1d_pattern": {"n": 8},
        "random_pattern": {"n": 8, "sparsity": 0.5, "seed": 1},
    }
    base = bases[name]

    def check(kw, res):
        res = np.asarray(res)
        side = kw["n"] if "n" in kw else kw["H"] * kw["W"]
        if res.shape != (side, side):
            return f"shape {res.shape}, expected {(side, side)}"
        if res.dtype != bool and not (np.isfinite(res).all() and (res >= 0).all()):
            return "non-finite or negative weights"
        return None

    return getattr(patterns, name), base, check


def _locate_case():
    import fastkern

    rng = np.random.default_rng(3)
    amplitudes = rng.uniform(0.1, 2.0, (3, 4))
    amplitudes[1, 2] = np.nan
    base = {"amplitudes": amplitudes, "stations": rng.uniform(-2, 2, (4, 3)),
            "x": np.linspace(-2, 2, 4), "y": np.linspace(-1, 1, 3), "z": np.array([-1.0, -0.5]),
            "a": np.array([0.5, 1.0, 2.0, 4.0]), "attenuation": 0.2, "workers": 2}

    def check(kw, res):
        # the oracle: every candidate's error the loop's way, in NumPy
        amp = np.asarray(kw["amplitudes"], np.float64)
        st = np.asarray(kw["stations"], np.float64)
        x, y, z = (np.asarray(kw[k], np.float64) for k in "xyz")
        a = kw["a"]
        X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
        pos = np.column_stack([X.ravel(), Y.ravel(), Z.ravel()])
        r = np.sqrt(((pos[:, None] - st[None]) ** 2).sum(-1))
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.exp(-float(kw["attenuation"]) * r) / r
        for e, d in enumerate(amp):
            rec = ~np.isnan(d)
            if a is None:
                gd, gg = (g[:, rec] * d[rec]).sum(1), (g[:, rec] ** 2).sum(1)
                cands = np.where((gd > 0) & (gg > 0), gd / gg, 0.0)[:, None]
            else:
                cands = np.broadcast_to(np.asarray(a, np.float64), (len(pos), len(a)))
            with np.errstate(invalid="ignore", over="ignore"):
                err = ((cands[..., None] * g[:, None, rec] - d[rec]) ** 2).sum(-1)
            err[~np.isfinite(err)] = np.inf
            if not np.isclose(res.error[e], err.min(), rtol=1e-9):
                return f"event {e}: error {res.error[e]}, the oracle's {err.min()}"
        if not np.array_equal(res.error, fastkern.locate_events(
                **{**kw, "workers": 1}).error):
            return "depends on workers"
        return None

    return fastkern.locate_events, base, check


def _case(fn_name):
    if fn_name in ("convolve2d", "correlate2d"):
        return _convolve_case(fn_name)
    if fn_name in ("sepconvolve2d", "sepcorrelate2d"):
        return _separable_case(fn_name)
    if fn_name == "bootstrap":
        return _bootstrap_case()
    if fn_name == "permutation_test":
        return _permutation_case()
    if fn_name == "gibbs":
        return _gibbs_case()
    if fn_name == "gibbs_switchpoint":
        return _switchpoint_case()
    if fn_name == "locate_events":
        return _locate_case()
    if fn_name in ("sparse_attention", "sparse_attention_backward"):
        return _attention_case(fn_name.endswith("backward"))
    return _pattern_case(fn_name)


FUNCTIONS = ["convolve2d", "correlate2d", "sepconvolve2d", "sepcorrelate2d", "bootstrap",
             "permutation_test", "gibbs", "gibbs_switchpoint", "locate_events",
             "sparse_attention", "sparse_attention_backward", "local_2d_pattern",
             "axial_2d_pattern", "dilated_2d_pattern", "swin_attention_pattern",
             "local_2d_gaussian_distribution", "local_1d_pattern", "causal_1d_pattern",
             "random_pattern"]

# Values that are valid for an argument and would make a call run for hours (not a
# bug): never tried there.
SLOW_BUT_VALID = {("gibbs", "thin"), ("gibbs", "burn"), ("gibbs_switchpoint", "thin"),
                  ("gibbs_switchpoint", "burn"), ("bootstrap", "n_resamples"),
                  ("permutation_test", "n_resamples")}


def _verdict(fn_name, arg, value):
    """Run one case; None if the behaviour is allowed, else what was wrong."""
    fn, base, check = _case(fn_name)
    kw = {**base, arg: value}
    try:
        res = fn(**kw)
    except MemoryError:
        return None
    except (ValueError, TypeError) as exc:
        if arg not in str(exc):
            return f"{type(exc).__name__} does not name {arg}: {exc}"
        return None
    except Exception as exc:  # noqa: BLE001
        return f"raised {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
    try:
        return check(kw, res)
    except Exception as exc:  # noqa: BLE001 - a result the oracle cannot read
        return f"returned a result the oracle rejects: {exc!r}"


def _serve(conn):
    """The child: run cases until the parent closes the pipe."""
    while True:
        try:
            fn_name, arg, spec = conn.recv()
        except EOFError:
            return
        kind, payload = spec
        value = VALUES[payload]() if kind == "named" else payload
        conn.send(_verdict(fn_name, arg, value))


class _Child:
    """A spawned process that runs cases; restarted after a crash or hang."""

    def __init__(self):
        self.proc = None

    def run(self, fn_name, arg, spec, timeout=120):
        if self.proc is None or not self.proc.is_alive():
            ctx = multiprocessing.get_context("spawn")
            self.conn, child_conn = ctx.Pipe()
            self.proc = ctx.Process(target=_serve, args=(child_conn,), daemon=True)
            self.proc.start()
            child_conn.close()
        self.conn.send((fn_name, arg, spec))
        if not self.conn.poll(timeout):
            self.close()
            return f"no answer in {timeout} s (hang)"
        try:
            return self.conn.recv()
        except EOFError:
            code = self.proc.exitcode
            self.close()
            return f"the child process died (exit code {code})"

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()
            self.proc = None


@pytest.fixture(scope="module")
def child():
    c = _Child()
    yield c
    c.close()


def _arguments(fn_name):
    _, base, _ = _case(fn_name)
    return list(base)


@pytest.mark.parametrize("fn_name", FUNCTIONS)
def test_every_bad_value(child, fn_name):
    failures = []
    for arg in _arguments(fn_name):
        for name in VALUES:
            if (fn_name, arg) in SLOW_BUT_VALID and name in ("2**31",):
                continue
            problem = child.run(fn_name, arg, ("named", name))
            if problem is not None:
                failures.append(f"{fn_name}({arg}={name}): {problem}")
    assert not failures, "\n".join(failures)


# Integers that are bad, or small: a count in between (a million resamples, a
# 65536 x 65536 pattern) is valid and may run for minutes, which proves nothing.
_ints = st.one_of(st.integers(-2**70, 64), st.integers(2**40, 2**70), st.integers(-3, 3),
                  st.sampled_from([2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1, 2**63, 2**64]))
_dtypes = st.sampled_from(["f2", "f4", "f8", "c8", "c16", "i1", "u1", "i8", "u8", "?",
                           ">f8", "<i4", "m8[s]", "M8[s]", "U1", "O", "V8"])
_shapes = st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple)


@settings(max_examples=60, deadline=None)
@given(fn_name=st.sampled_from(FUNCTIONS), data=st.data())
def test_random_integers_and_arrays(child, fn_name, data):
    arg = data.draw(st.sampled_from(_arguments(fn_name)), label="argument")
    if data.draw(st.booleans(), label="integer"):
        value = data.draw(_ints, label="value")
        # a valid count of these arguments runs for as long as it asks (hours at
        # 2**40), so only the refused ones are drawn: negative, or 2**63 and up
        if (fn_name, arg) in SLOW_BUT_VALID and 0 < value < 2**63:
            value = -value
    else:
        dtype = data.draw(_dtypes, label="dtype")
        shape = data.draw(_shapes, label="shape")
        value = np.zeros(shape, dtype=dtype) if dtype not in ("O", "V8") else \
            np.empty(shape, dtype=dtype)
        if value.dtype.kind in "fciu" and value.size:
            value = (np.arange(value.size) % 3).reshape(shape).astype(dtype)
    problem = child.run(fn_name, arg, ("value", value))
    assert problem is None, f"{fn_name}({arg}={value!r}): {problem}"
