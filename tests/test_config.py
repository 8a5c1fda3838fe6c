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


# -- a busy machine ----------------------------------------------------------------

def _fresh_busy_cpus():
    from fastkern import _workers
    _workers._busy[0] = float("-inf")   # read now, not the cached value
    return _workers.busy_cpus()


@needs_openmp
def test_default_workers_leave_out_busy_cpus(monkeypatch):
    from fastkern import _workers
    n = min(cpu_count(), _buildinfo.openmp_max_threads())
    monkeypatch.setattr(_workers, "busy_cpus", lambda: 1)
    assert resolve_workers(None) == max(1, min(n, cpu_count() - 1))
    monkeypatch.setattr(_workers, "busy_cpus", lambda: 10**6)
    assert resolve_workers(None) == 1
    # an explicit value, or a default set by set_workers, is taken as given
    assert resolve_workers(2) == 2
    with fastkern.set_workers(2):
        assert resolve_workers(None) == 2
    assert fastkern.get_workers() == n


def test_the_openmp_wait_policy_is_not_left_in_the_environment():
    # fastkern sets OMP_WAIT_POLICY only while its OpenMP runtime loads
    from fastkern import _workers
    if not _workers._user_wait_policy:
        assert "OMP_WAIT_POLICY" not in os.environ


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="Linux only: /proc/loadavg")
def test_busy_cpus_sees_a_busy_process():
    import subprocess
    import sys
    import time
    from fastkern import _workers
    if _workers._user_wait_policy or cpu_count() != os.cpu_count():
        pytest.skip("busy_cpus is 0 here by design: a user wait policy or part of the machine")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        # a busy loop is runnable whenever it is alive; wait until it is
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if _workers.runnable(f"/proc/{spinner.pid}/stat"):
                break
            time.sleep(0.01)
        assert _fresh_busy_cpus() >= 1
    finally:
        spinner.kill()
        spinner.wait()
