"""parallel_map with GIL-free work: 2 parallel calls against a plain map
(target: close to 2x on 2 cores)."""
import numpy as np
import pytest

import fastkern

rng = np.random.default_rng(0)
IMAGES = [rng.random((800, 800)) for _ in range(8)]
FILTER = rng.random((9, 9))


def work(image):
    return fastkern.convolve2d(image, FILTER, mode="same", workers=1)


@pytest.mark.benchmark(group="8 convolutions 800x800, 9x9")
def test_reference_plain_map(run):
    run(lambda: list(map(work, IMAGES)), rounds=5)


@pytest.mark.benchmark(group="8 convolutions 800x800, 9x9")
def test_parallel_map_2_calls(run):
    run(lambda: list(fastkern.parallel_map(work, IMAGES, num_parallel_calls=2)), rounds=5)
