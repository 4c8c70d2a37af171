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
