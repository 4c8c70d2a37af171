"""Learning curves of online runs with 95% confidence bands across seeds: genzoo runs (``training_log.csv``, from
``genzoo train ... --eval-every N``) and SB3 baselines (``eval.csv`` from ``experiments/sac_baseline.py``).

    python experiments/plot_online.py --task gymnasium/Hopper-v5 \\
        --runs RFM=/work/runs/rfm-hopper-seed* SAC=/work/runs/sac-hopper-seed* --out results/online-hopper.png

Each ``LABEL=GLOB`` names one method's run folders (one per seed). The band is the 95% Student-t interval of the mean
over seeds at each evaluation step (none with one seed): with 3 seeds a percentile bootstrap would only span the
seeds' min and max (each resample of 3 hits all-minimum 1/27 of the time, above the 2.5% tail). A markdown table of
the final scores is printed ("n/a" for a single seed).
"""

from __future__ import annotations

import argparse
import csv
import glob
from pathlib import Path

import numpy as np


def read_curve(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    path = run_dir / "eval.csv" if (run_dir / "eval.csv").is_file() else run_dir / "training_log.csv"
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("eval/score")]
    steps = np.array([float(r["time/total_timesteps"]) for r in rows])
    order = np.argsort(steps, kind="stable")
    return steps[order], np.array([float(r["eval/score"]) for r in rows])[order]


def t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """The Student-t confidence interval of the mean of ``x`` (one value per seed); ``None`` for a single seed."""
    from scipy import stats

    if len(x) < 2:
        return None
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True)
    p.add_argument("--runs", nargs="+", required=True, metavar="LABEL=GLOB")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    print("| method | seeds | final score (mean) | 95% t-interval over seeds |\n|---|---|---|---|")
    for spec in args.runs:
        label, pattern = spec.split("=", 1)
        curves = [read_curve(Path(d)) for d in sorted(glob.glob(pattern))]
        curves = [c for c in curves if len(c[0])]
        if not curves:
            print(f"| {label} | 0 | - | - |")
            continue
        n = min(len(c[0]) for c in curves)  # steps every seed reached
        steps, scores = curves[0][0][:n], np.stack([c[1][:n] for c in curves])
        mean = scores.mean(0)
        ax.plot(steps, mean, label=f"{label} ({len(curves)} seed{'s' if len(curves) > 1 else ''})")
        if len(curves) > 1:
            lo, hi = np.array([t_interval(scores[:, i]) for i in range(n)]).T
            ax.fill_between(steps, lo, hi, alpha=0.25)
        final = t_interval(scores[:, -1])
        ci = f"[{final[0]:.1f}, {final[1]:.1f}]" if final else "n/a (one seed)"
        print(f"| {label} | {len(curves)} | {mean[-1]:.1f} at {int(steps[-1])} steps | {ci} |")
    ax.set_xlabel("env steps")
    ax.set_ylabel("return (harness evaluation; band: 95% t-interval over seeds)")
    ax.set_title(args.task)
    ax.legend()
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)


if __name__ == "__main__":
    main()
