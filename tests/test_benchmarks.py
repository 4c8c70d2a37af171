"""The benchmark scripts run (short timings, nothing written): they are scripts, not timed tests."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_throughput_script_measures_every_method():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from throughput import AGENTS
    finally:
        sys.path.pop(0)
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--widths", "32", "--threads", "1",
                        "--variants", "fp32", "--quick", "--force", "--no-write"], capture_output=True, text=True,
                       cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = {line.split("|")[1].strip() for line in r.stdout.splitlines() if line.startswith("| ")}
    assert set(AGENTS) <= rows


def test_time_per_call_settles_lazy_compiles_out_of_the_timed_window():
    import time

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import harness
    finally:
        sys.path.pop(0)

    def lazily_compiled(slow_calls: set[int]):
        calls = []

        def fn() -> None:  # calls in slow_calls stand for a graph compiled on first use, after the warm-up
            calls.append(1)
            time.sleep(0.2 if len(calls) in slow_calls else 0.001)
        return fn

    timing = dict(warmup=3, min_calls=5, min_seconds=0.01, repeats=1, max_seconds=0.05)
    assert harness.time_per_call(lazily_compiled({4, 7}), **timing) > 0.05  # without settling the compiles are timed
    assert harness.time_per_call(lazily_compiled({4, 7}), **timing, settle=5) < 0.02
