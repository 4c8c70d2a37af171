"""TRQAM's realised path KL against its budget over training, beside QAM's (which has no trust region).

    python experiments/plot_trust_region.py --runs TRQAM=/work/runs/trqam-cube-double-task1-seed* \\
        QAM=/work/runs/qam-cube-double-task1-seed* --budget 1.0 --out results/trust-region-cube-double.png

Reads each run's ``training_log.csv``: ``train/path_kl`` (the Euler estimate of the path-space KL to the base
flow per environment action, logged by both methods), and TRQAM's ``train/kl_ema`` and ``train/lambda``
(λ_eff = lam_scale · λ). Curves are means over seeds.
"""

from __future__ import annotations

import argparse
import csv
import glob
from pathlib import Path

import numpy as np


def read(run_dir: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    with open(run_dir / "training_log.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get(key)]
    return (np.array([float(r["time/gradient_steps"]) for r in rows]), np.array([float(r[key]) for r in rows]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True, metavar="LABEL=GLOB")
    p.add_argument("--budget", type=float, required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_kl, ax_lam) = plt.subplots(1, 2, figsize=(10, 3.8))
    for spec in args.runs:
        label, pattern = spec.split("=", 1)
        dirs = [Path(d) for d in sorted(glob.glob(pattern)) if (Path(d) / "training_log.csv").is_file()]
        for key, ax, style in (("train/path_kl", ax_kl, "-"), ("train/kl_ema", ax_kl, "--"),
                               ("train/lambda", ax_lam, "-")):
            curves = [read(d, key) for d in dirs]
            curves = [c for c in curves if len(c[0])]
            if not curves:
                continue
            n = min(len(c[0]) for c in curves)
            ax.plot(curves[0][0][:n], np.mean([c[1][:n] for c in curves], 0), style,
                    label=f"{label} {key.removeprefix('train/')} ({len(curves)} seeds)")
    ax_kl.axhline(args.budget, color="k", lw=0.8, ls=":", label=f"budget ε = {args.budget}")
    ax_kl.set_yscale("log")
    ax_kl.set_xlabel("gradient steps (finetuning)")
    ax_kl.set_ylabel("path KL per action")
    ax_lam.set_xlabel("gradient steps (finetuning)")
    ax_lam.set_ylabel("λ_eff")
    for ax in (ax_kl, ax_lam):
        ax.legend(fontsize=7)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)


if __name__ == "__main__":
    main()
