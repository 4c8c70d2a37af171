"""Learning curves of online runs with 95% confidence bands across seeds: genzoo runs (``training_log.csv``, from
``genzoo train ... --eval-every N``, offline-to-online ``--finetune-from`` runs included) and SB3 baselines
(``eval.csv`` from ``experiments/sac_baseline.py``).

    python experiments/plot_online.py --task gymnasium/Hopper-v5 \\
        --runs RFM=/work/runs/rfm-hopper-seed* SAC=experiments/online/sac-hopper-seed* --out results/online-hopper.png \\
        --note "SAC: mean action; RFM: best of M=32 flow samples by min-Q"
    python experiments/plot_online.py --task ogbench/cube-single-task1 --x-label "gradient steps" \\
        --runs "MoMa QL=/work/runs/momaql-cube-single-task1-seed[0-9]" --out results/offline-cube-single.png

Each ``LABEL=GLOB`` names one method's run folders (one per seed); a folder without a learning curve yet (a genzoo
run writes ``training_log.csv`` when a segment ends) is skipped with a note. Seeds are matched by evaluation step:
a method's curve covers the steps every one of its seeds evaluated. The band is the 95% Student-t interval of the
mean over seeds at each step (none with one seed): with 3 seeds a percentile bootstrap would only span the seeds'
min and max (each resample of 3 hits all-minimum 1/27 of the time, above the 2.5% tail). The y axis is the task's
metric (success % for OGBench, return for online tasks).

The printed markdown table has the curve's first point (step 0 of an offline-to-online run: the pretrained policy
before any online step) and its last one (the curve's points are the periodic evaluations: few episodes, seeds
10000+), and the final score under the task's own protocol from each run's ``results.json`` (``model/results.json``
of a genzoo run, ``results.json`` of an SB3 baseline; its episode count and seeds), the number to quote.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
from pathlib import Path

import numpy as np


def read_curve(run_dir: Path) -> dict[int, float] | None:
    """``{env step: eval/score}`` of one run, or None when it has no learning curve (yet)."""
    path = run_dir / "eval.csv" if (run_dir / "eval.csv").is_file() else run_dir / "training_log.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("eval/score")]
    # A resumed run repeats no step (genzoo merges its segments' logs); the last row of a step wins regardless.
    return {int(float(r["time/total_timesteps"])): float(r["eval/score"]) for r in rows} or None


def final_score(run_dir: Path) -> tuple[float, int] | None:
    """The protocol score of a finished run and its episode count (None while it runs)."""
    for path in (run_dir / "model" / "results.json", run_dir / "results.json"):
        if path.is_file():
            result = json.loads(path.read_text())
            return float(result["aggregate"]["mean"]), int(result["protocol"]["episodes"])
    return None


def t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """The Student-t confidence interval of the mean of ``x`` (one value per seed); ``None`` for a single seed."""
    from scipy import stats

    if len(x) < 2:
        return None
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def _mean_ci(x: np.ndarray) -> str:
    ci = t_interval(x)
    return f"{x.mean():.1f} " + (f"[{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "(one seed)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True)
    p.add_argument("--runs", nargs="+", required=True, metavar="LABEL=GLOB")
    p.add_argument("--out", required=True)
    p.add_argument("--note", default="", help="a footnote under the plot (e.g. each method's acting rule)")
    p.add_argument("--x-label", default="env steps",
                   help="the x axis's name: offline runs (`genzoo train <offline task> --eval-every N`) log their "
                        "gradient step where online ones log env steps, so pass 'gradient steps' for them")
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evaluation import get

    metric = get(args.task).metric
    fig, ax = plt.subplots(figsize=(6, 4.2))
    print("| method | seeds | curve: first point | curve: last point | final, task protocol (mean [95% t-interval]) |\n"
          "|---|---|---|---|---|")
    for spec in args.runs:
        label, pattern = spec.split("=", 1)
        curves, finals, names = [], [], []
        for d in sorted(glob.glob(pattern)):
            curve = read_curve(Path(d))
            if curve is None:
                print(f"<!-- {d}: no learning curve yet, skipped -->")
                continue
            curves.append(curve)
            names.append(Path(d).name)
            finals.append(final_score(Path(d)))
        if not curves:
            print(f"| {label} | 0 | - | - | - |")
            continue
        steps = sorted(set.intersection(*(set(c) for c in curves)))  # the steps every seed evaluated
        if not steps:
            print(f"<!-- {label}: its seeds share no evaluation step, skipped -->")
            continue
        short = [n for n, c in zip(names, curves, strict=True) if max(c) == steps[-1] and max(c) < max(map(max, curves))]
        if short:
            print(f"<!-- {label}: the curve stops at {steps[-1]}, where {', '.join(short)} stopped -->")
        scores = np.array([[c[s] for s in steps] for c in curves])
        mean = scores.mean(0)
        ax.plot(steps, mean, label=f"{label} ({len(curves)} seed{'s' if len(curves) > 1 else ''})")
        if len(curves) > 1:
            lo, hi = np.array([t_interval(scores[:, i]) for i in range(len(steps))]).T
            if metric == "success":  # the band of a rate stays within [0, 100] %
                lo, hi = lo.clip(0, 100), hi.clip(0, 100)
            ax.fill_between(steps, lo, hi, alpha=0.25)
        done = [f for f in finals if f is not None]
        episodes = sorted({f[1] for f in done})
        final = (f"{_mean_ci(np.array([f[0] for f in done]))}, {'/'.join(map(str, episodes))} episodes"
                 + (f" ({len(done)} of {len(curves)} seeds finished)" if len(done) < len(curves) else "")
                 if done else "not finished")
        print(f"| {label} | {len(curves)} | {_mean_ci(scores[:, 0])} at {steps[0]} | "
              f"{_mean_ci(scores[:, -1])} at {steps[-1]} | {final} |")
    ax.set_xlabel(args.x_label)
    ax.set_ylabel(get(args.task).metric_label)
    ax.set_title(f"{args.task} (band: 95% t-interval over seeds)", fontsize=10)
    ax.legend()
    if args.note:
        fig.text(0.01, 0.01, args.note, fontsize=7, ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.04 if args.note else 0, 1, 1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)


if __name__ == "__main__":
    main()
