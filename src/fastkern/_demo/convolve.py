"""``python -m fastkern`` rows for convolve2d."""
import numpy as np

from .._report import Row, best_time
from .._workers import get_workers
from ..convolve import convolve2d, sepconvolve2d


def workload(quick=False):
    import scipy.signal

    n = 1000 if quick else 3000
    rng = np.random.default_rng(0)
    image = rng.random((n, n))
    filters = [rng.random((4, 4)), rng.random((4, 4))]
    repeat = 2 if quick else 3
    rows = []
    convolve2d(image, filters[0], workers=1)  # warm-up: first-touch of fresh memory, thread start

    t_ref, ref = best_time(lambda: scipy.signal.convolve2d(image, filters[0]), 1)
    t_one, _ = best_time(lambda: convolve2d(image, filters[0], workers=1), repeat)
    t_all, out = best_time(lambda: convolve2d(image, filters[0], workers=get_workers()), repeat)
    rows.append(Row("convolve2d", f"{n}x{n} float64, 4x4 filter, full", "scipy.signal.convolve2d",
                    t_ref, t_one, t_all, float(np.max(np.abs(out - ref))), "abs"))

    def scipy_strided():
        return [scipy.signal.convolve2d(image, f)[::5, ::5] for f in filters]

    def fk_strided(workers):
        return [convolve2d(image, f, stride=5, workers=workers) for f in filters]

    t_ref, ref = best_time(scipy_strided, 1)
    t_one, _ = best_time(lambda: fk_strided(1), repeat)
    t_all, out = best_time(lambda: fk_strided(get_workers()), repeat)
    diff = max(float(np.max(np.abs(o - r))) for o, r in zip(out, ref))
    rows.append(Row("convolve2d", f"{n}x{n}, two 4x4 filters, every 5th pixel",
                    "scipy convolve2d then [::5, ::5]", t_ref, t_one, t_all, diff, "abs"))

    # a large filter: auto takes the FFT route; the reference is scipy's FFT
    # convolution (its direct one would take minutes)
    big = rng.random((63, 63))
    t_ref, ref = best_time(lambda: scipy.signal.fftconvolve(image, big, "same"), 1)
    t_one, _ = best_time(lambda: convolve2d(image, big, "same", workers=1), repeat)
    t_all, out = best_time(lambda: convolve2d(image, big, "same", workers=get_workers()), repeat)
    rows.append(Row("convolve2d", f"{n}x{n} float64, 63x63 filter, same (FFT)",
                    "scipy.signal.fftconvolve", t_ref, t_one, t_all,
                    float(np.max(np.abs(out - ref)) / np.max(np.abs(ref))), "rel"))

    # a separable 31-tap Gaussian: two 1-D passes of scipy.ndimage as the reference
    import scipy.ndimage

    t = np.arange(31) - 15.0
    g = np.exp(-t * t / (2 * 5.0 ** 2))
    g /= g.sum()

    def ndimage_passes():
        rows_done = scipy.ndimage.convolve1d(image, g, axis=0, mode="constant")
        return scipy.ndimage.convolve1d(rows_done, g, axis=1, mode="constant")

    t_ref, ref = best_time(ndimage_passes, 1)
    t_one, _ = best_time(lambda: sepconvolve2d(image, g, g, "same", workers=1), repeat)
    t_all, out = best_time(lambda: sepconvolve2d(image, g, g, "same", workers=get_workers()),
                           repeat)
    rows.append(Row("sepconvolve2d", f"{n}x{n} float64, 31-tap Gaussian, same",
                    "scipy.ndimage.convolve1d x 2", t_ref, t_one, t_all,
                    float(np.max(np.abs(out - ref))), "abs"))
    return rows
