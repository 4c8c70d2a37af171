"""Shared harness of genzoo's benchmarks: machine info, a busy-machine guard, timing, and RESULTS.md output.

Every figure is a ratio against a reference measured in the same process with the same thread count, so machine
noise cancels to first order. Methods extend the benchmarks by adding an entry to ``AGENTS`` in throughput.py /
latency.py; the naive references in ``reference.py`` are frozen once written.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python benchmarks/throughput.py` from a checkout
    sys.path.insert(0, str(REPO))

from evaluation.rollouts import cpu_info  # noqa: E402  (after the path insert above)


def machine_info() -> dict[str, str]:
    cpu, bf16_flags = cpu_info()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "bf16_isa": ", ".join(bf16_flags) or "none",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }


def guard_idle(max_load: float, force: bool) -> float:
    """Refuse to measure when the 1-minute load average says another process holds the CPU."""
    load = os.getloadavg()[0]
    if load > max_load and not force:
        sys.exit(f"refusing to measure: load average {load:.2f} > {max_load} (another job is running; --force to override)")
    return load


def time_per_call(fn: Callable[[], object], warmup: int, min_calls: int, min_seconds: float = 3.0,
                  repeats: int = 3, max_seconds: float = 10.0, settle: int = 0, max_settle_seconds: float = 900.0) -> float:
    """Median over ``repeats`` of the mean seconds per call (each repeat runs >= min_seconds, and >= min_calls unless
    that would take over ``max_seconds``: slow calls such as 50-candidate batches get >= 5 calls per repeat instead).

    ``settle``: after the warm-up, keep calling until ``settle`` consecutive calls each take under 3x the fastest call
    so far (at most ``max_settle_seconds``). A compiled step that builds its graphs lazily, one per setting drawn at
    random (MoMa QL compiles one per Q-term step count, ~12 s each on one core), would otherwise compile inside the
    timed window: the warm-up's time limit stops it after three calls.
    """
    start = time.perf_counter()
    for i in range(warmup):
        fn()
        if i >= 2 and time.perf_counter() - start > max_seconds:
            break
    fastest, steady, start = float("inf"), 0, time.perf_counter()
    while steady < settle and time.perf_counter() - start < max_settle_seconds:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        fastest = min(fastest, dt)
        steady = steady + 1 if dt < 3 * fastest else 0
    if settle and steady < settle:
        raise RuntimeError(f"the calls did not settle within {max_settle_seconds:.0f} s (still compiling?)")
    out = []
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds and (n >= min_calls or (n >= 5 and elapsed >= max_seconds)):
                break
            fn()
            n += 1
        out.append((time.perf_counter() - start) / n)
    return statistics.median(out)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--widths", type=int, nargs="+", default=[256, 512])
    p.add_argument("--max-load", type=float, default=0.7, help="refuse when the 1-min load average is above this")
    p.add_argument("--force", action="store_true", help="measure even on a busy machine (recorded)")
    p.add_argument("--no-write", action="store_true", help="print only; do not append to benchmarks/RESULTS.md")
    p.add_argument("--quick", action="store_true", help="short timings (smoke test of the script)")
    return p


def start(p: argparse.ArgumentParser, quick: dict, full: dict) -> tuple[argparse.Namespace, float, dict]:
    """Parse the arguments, refuse a busy machine, and pick the timing preset (``--quick`` or full)."""
    args = p.parse_args()
    load = guard_idle(args.max_load, args.force)
    return args, load, (quick if args.quick else full)


def append_results(title: str, command: str, load: float, table: list[list[str]], header: list[str],
                   notes: list[str] = ()) -> str:
    info = machine_info()
    lines = [
        f"## {title} — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"`{command}` · {info['cpu']} · {info['cores']} cores · bf16 ISA {info['bf16_isa']} · torch {info['torch']} · "
        f"CUDA {info['cuda']} · load average at start {load:.2f}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in table),
        "",
        *notes,
        "",
    ]
    return "\n".join(lines)


def write(text: str, no_write: bool) -> None:
    print(text)
    if not no_write:
        if not RESULTS.exists():
            RESULTS.write_text("# Benchmark results\n\nAppended by the scripts in this folder; newest last.\n\n")
        with open(RESULTS, "a") as f:
            f.write(text + "\n")
