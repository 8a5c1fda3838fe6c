"""workers resolution, set_workers, show_config."""
import json
import os

import pytest

import fastkern
from fastkern import _buildinfo
from fastkern._workers import cpu_count, resolve_workers

OPENMP = _buildinfo.openmp_enabled()
needs_openmp = pytest.mark.skipif(not OPENMP, reason="serial build: workers always resolve to 1")


@needs_openmp
def test_default_is_the_usable_cpus():
    if hasattr(os, "sched_getaffinity"):
        assert cpu_count() <= len(os.sched_getaffinity(0))
    assert fastkern.get_workers() == min(cpu_count(), _buildinfo.openmp_max_threads())


@needs_openmp
def test_negative_workers_wrap_around_like_scipy():
    n = cpu_count()
    assert resolve_workers(-1) == n
    if n > 1:
        assert resolve_workers(-2) == n - 1
    assert resolve_workers(3) == 3
    with pytest.raises(ValueError, match="out of range"):
        resolve_workers(-(n + 1))


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (1.0, TypeError), ("2", TypeError),
                                     (True, TypeError)])
def test_bad_workers(bad, exc):
    with pytest.raises(exc, match="workers"):
        resolve_workers(bad)
    with pytest.raises(exc, match="workers"):
        with fastkern.set_workers(bad):
            pass


@needs_openmp
def test_set_workers_nests_and_restores():
    before = fastkern.get_workers()
    with fastkern.set_workers(1):
        assert fastkern.get_workers() == 1
        with fastkern.set_workers(3):
            assert fastkern.get_workers() == 3
        assert fastkern.get_workers() == 1
    assert fastkern.get_workers() == before


@needs_openmp
def test_threadpoolctl_openmp_limit_is_respected():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fastkern.get_workers() == 1
    assert fastkern.get_workers() == min(cpu_count(), _buildinfo.openmp_max_threads())


def test_show_config():
    cfg = fastkern.show_config(mode="dicts")
    assert cfg["version"] == fastkern.__version__
    assert cfg["openmp"]["enabled"] is OPENMP
    assert cfg["openmp"]["max_threads"] >= 1
    assert cfg["simd"]["selected"] in cfg["simd"]["targets"]
    assert isinstance(cfg["cuda"]["built"], bool)
    assert isinstance(cfg["cuda"]["devices"], list)
    json.dumps(cfg)
    with pytest.raises(ValueError, match="mode"):
        fastkern.show_config(mode="yaml")


def test_show_config_prints(capsys):
    assert fastkern.show_config() is None
    assert '"openmp"' in capsys.readouterr().out


def test_main_job_quick_runs_one_topic(capsys):
    from fastkern.__main__ import main

    assert main(["--quick", "--only", "convolve"]) == 0
    out = capsys.readouterr().out
    assert "convolve2d" in out and "FAILED" not in out
