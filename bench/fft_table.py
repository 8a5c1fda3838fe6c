"""The table of bench/bench_convolve_fft.py with the candidates alternated.

The project's machine is shared and its speed drifts (up to 2x from one minute
to the next), so rows timed one after another can favour any of them.  Here each
round calls every candidate once, in an order rotated from round to round, and
each cell is the median over the rounds:

    python bench/fft_table.py            # 5 rounds, every kernel, dtype and thread count
    python bench/fft_table.py --quick    # 3 rounds, 7x7, 63x63 and 1x63 only

It prints a markdown table (3000x3000 image, mode "same", zero fill):
fastkern auto with the route it takes, cv2.filter2D, scipy.signal.fftconvolve,
oaconvolve, auto's time over the best peer's, and fastkern's other route where
it takes under a second (direct up to 31x31 in area, the FFT always).  Then the
4096x4096 full autocorrelation ``correlate2d(a, a, "full", boundary="wrap")`` on
one thread, and auto's speed-up from 1 to 2 workers at 63x63 float64.
"""
import argparse
import os
import sys

import cv2
import numpy as np
import scipy
import scipy.fft

import fastkern
from fastkern.convolve import choose_method

from alternate import alternated

from bench_convolve_fft import (DIRECT_MAX_AREA, DTYPES, KERNELS, N, PEERS, THREADS,
                                check_peer, threads)

QUICK_KERNELS = [(7, 7), (63, 63), (1, 63)]


def ms(seconds):
    return f"{seconds * 1e3:.1f}" if seconds < 0.1 else f"{seconds * 1e3:.0f}"


def row(image, shape, dtype, n_threads, rounds):
    x = image.astype(dtype)
    k = np.random.default_rng(1).random(shape).astype(dtype)
    route = choose_method(x, k, "same")
    other = "fft" if route == "direct" else "direct"
    calls = {"auto": lambda: fastkern.convolve2d(x, k, "same", workers=n_threads)}
    for name, peer in PEERS.items():
        check_peer(name, shape, dtype)
        calls[name] = lambda peer=peer: peer(x, k)
    if other == "fft" or shape[0] * shape[1] <= DIRECT_MAX_AREA:
        calls[other] = lambda: fastkern.convolve2d(x, k, "same", method=other,
                                                   workers=n_threads)
    with threads(n_threads):
        t = alternated(calls, rounds)
    best = min(PEERS, key=t.get)
    cells = [f"{shape[0]}x{shape[1]}", np.dtype(dtype).name, str(n_threads),
             f"{ms(t['auto'])} ({route})", *(ms(t[name]) for name in PEERS),
             f"{t['auto'] / t[best]:.2f} ({best})",
             f"{ms(t[other])} ({other})" if other in t else "-"]
    return "| " + " | ".join(cells) + " |"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 rounds, kernels 7x7, 63x63 and 1x63 only")
    parser.add_argument("--rounds", type=int, help="rounds per cell (default 5; 3 with --quick)")
    parser.add_argument("--kernels", help="square kernel sizes only, comma-separated: 31,63")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 5)
    kernels = QUICK_KERNELS if args.quick else KERNELS
    if args.kernels:
        kernels = [(int(k), int(k)) for k in args.kernels.split(",")]

    print(f"fastkern {fastkern.__version__}, scipy {scipy.__version__}, "
          f"opencv {cv2.__version__}, numpy {np.__version__}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; {rounds} rounds, medians "
          f"(python bench/fft_table.py {' '.join(sys.argv[1:])})".rstrip() + "\n")
    print(f"{N}x{N} image, mode \"same\", zero fill; times in ms\n")
    print("| kernel | dtype | threads | fastkern auto (route) | cv2.filter2D | fftconvolve "
          "| oaconvolve | auto / best peer | fastkern other route |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    image = np.random.default_rng(0).random((N, N))
    for shape in kernels:
        for dtype in DTYPES:
            for n_threads in THREADS:
                print(row(image, shape, dtype, n_threads, rounds), flush=True)

    a = np.random.default_rng(2).random((4096, 4096))
    t = alternated({"auto": lambda: fastkern.correlate2d(a, a, "full", boundary="wrap",
                                                         workers=1)}, min(rounds, 3))
    print(f"\n4096x4096 float64 full autocorrelation, boundary=\"wrap\", 1 thread "
          f"({choose_method(a, a, 'full', 'wrap', convolve=False)}): {t['auto']:.2f} s")
    del a

    k = np.random.default_rng(1).random((63, 63))
    t = alternated({w: lambda w=w: fastkern.convolve2d(image, k, "same", workers=w)
                    for w in (1, 2)}, 2 * rounds)
    print(f"63x63 float64, auto: {ms(t[1])} ms with 1 worker, {ms(t[2])} ms with 2: "
          f"{t[1] / t[2]:.2f}x")


if __name__ == "__main__":
    main()
