"""A markdown table of finished runs: score ± 95% CI over seeds, wall time and action latency, from run folders.

    python experiments/results_table.py "FQL bf16=/work/runs/fql-cube-single-task1-seed[0-9]" \\
        "FQL fp32=/work/runs/fql-cube-single-task1-seed*-fp32" --title "cube-single task1: bf16 vs fp32"

Each ``LABEL=GLOB`` is one row: the run folders (one per seed) whose ``model/results.json`` exists, or published
checkpoint folders (``zoo/checkpoints/genzoo/<repo>``, which hold ``results.json`` themselves), so a table can be
rebuilt from the committed catalogue alone. The score is
the mean over seeds of each run's score under the task's protocol (success % over 50 episodes, or normalised
return); the CI is a 95% stratified bootstrap over episodes within seeds (``evaluation.metrics``-style percentile
bootstrap, 2000 resamples); "CIs overlap" compares the first row with each other one (issue #3's quality guard
reads it). Wall time is the run's training time (mean over seeds); latency is the harness's batch-1 ``predict``;
precision is the training precision (``fp32`` / ``bf16``; several when the seeds differ).
A run with steps trained on a GPU (a leased burst, ``experiments/gpu_burst.sh``) has its wall time marked † and a
footnote with the steps per device: its wall time is not comparable with the CPU-only rows. A run whose segments ran
on more than one kind of CPU (the device string names the CPU and its bf16 instructions, which set bf16's speed) is
marked ‡ with a footnote likewise.
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np


def load_runs(pattern: str) -> list[dict]:
    runs = []
    for d in sorted(glob.glob(pattern)):
        # A run folder (``<run>/model/``) or a published checkpoint folder (``zoo/checkpoints/genzoo/<repo>/``).
        model = Path(d) / "model" if (Path(d) / "model" / "results.json").is_file() else Path(d)
        path = model / "results.json"
        if path.is_file():
            result = json.loads(path.read_text())
            config = json.loads((model / "config.json").read_text())
            runs.append({"dir": d, "result": result, "training": config.get("training") or {}})
    return runs


def score_matrix(runs: list[dict]) -> list[np.ndarray]:
    out = []
    for run in runs:
        r = run["result"]
        key = r["metric"]
        scale = 100.0 if key == "success" else 1.0
        out.append(np.array([e[key] for e in r["episodes"]], float) * scale)
    return out


def stratified_ci(per_seed: list[np.ndarray], reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    means = np.array([np.mean([x[rng.integers(0, len(x), len(x))].mean() for x in per_seed]) for _ in range(reps)])
    return float(np.mean([x.mean() for x in per_seed])), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rows", nargs="+", metavar="LABEL=GLOB")
    p.add_argument("--title", default="Results")
    args = p.parse_args()
    print(f"### {args.title}\n")
    print("| run | seeds | score (mean over seeds) | 95% CI | per seed | wall time (h, mean) | latency (ms, batch 1) "
          "| precision | CIs overlap row 1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    first, notes = None, []
    for spec in args.rows:
        label, pattern = spec.split("=", 1)
        runs = load_runs(pattern)
        if not runs:
            print(f"| {label} | 0 | - | - | - | - | - | - | - |")
            continue
        per_seed = score_matrix(runs)
        mean, lo, hi = stratified_ci(per_seed)
        first = first or (lo, hi)
        overlap = "-" if first == (lo, hi) else ("yes" if lo <= first[1] and first[0] <= hi else "no")
        seeds = ", ".join(f"{x.mean():.0f}" for x in per_seed)
        wall = np.mean([(r["training"].get("wall_time_s") or np.nan) for r in runs]) / 3600
        lat = np.mean([r["result"].get("latency_ms_per_action", np.nan) for r in runs])
        mixed = [f"{Path(r['dir']).name}: {steps}" for r in runs if (steps := _steps_off_cpu(r["training"]))]
        cpus = [f"{Path(r['dir']).name}: {kinds}" for r in runs if (kinds := _cpu_kinds(r["training"]))]
        mark = (" †" if mixed else "") + (" ‡" if cpus else "")
        notes += [f"† {label}, {m}" for m in mixed] + [f"‡ {label}, {c}" for c in cpus]
        precision = "/".join(sorted({r["training"].get("precision") or "?" for r in runs}))
        print(f"| {label} | {len(runs)} | {mean:.1f} | [{lo:.1f}, {hi:.1f}] | {seeds} | {wall:.2f}{mark} | {lat:.2f} | "
              f"{precision} | {overlap} |")
    if notes:
        print("\n" + "\n".join(f"{n}  " for n in notes))


def _steps_off_cpu(training: dict) -> str:
    """``"31,091 of 200,000 steps on NVIDIA H200"`` for a run with steps on a device other than the CPU, else ``""``."""
    segments = training.get("segments") or []
    total = sum(s["end"] - s["start"] for s in segments)
    per_device: dict[str, int] = {}
    for s in segments:
        if not s.get("device", "cpu").startswith("cpu"):
            name = s["device"].split(":", 1)[-1]
            per_device[name] = per_device.get(name, 0) + s["end"] - s["start"]
    return ", ".join(f"{n:,} of {total:,} steps on {d}" for d, n in per_device.items())


def _cpu_kinds(training: dict) -> str:
    """``"0-31,091 on <cpu A>, 31,091-200,000 on <cpu B>"`` for a run whose segments ran on two or more CPU kinds."""
    segments = [s for s in training.get("segments") or [] if s.get("device", "cpu").startswith("cpu")]
    if len({s.get("device") for s in segments}) < 2:
        return ""
    return ", ".join(f"{s['start']:,}-{s['end']:,} on {s['device'].split(':', 1)[-1]}" for s in segments)


if __name__ == "__main__":
    main()
