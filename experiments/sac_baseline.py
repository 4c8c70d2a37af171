"""Stable-Baselines3 SAC on an online task, scored by the zoo's harness: the baseline of RFM's comparison (#10).

    python experiments/sac_baseline.py gymnasium/Hopper-v5 --steps 100000 --seed 0 --out experiments/online/sac-hopper-seed0

SB3's default SAC (2x256 MLPs, lr 3e-4, batch 256, buffer 1M, auto entropy) with ``learning_starts=5000``, the
warm-up RFM's runs use. Every ``--eval-every`` env steps the policy is scored with ``evaluation.evaluate`` on the
same fixed seeds as ``genzoo train --eval-every`` (10000, 10001, ...), written to ``<out>/eval.csv``
(``time/total_timesteps, eval/score, eval/return``): the same columns as a genzoo run's ``training_log.csv``, so
``experiments/plot_online.py`` reads both. At the end the policy is scored with the task's own protocol (its episode
count and seeds, as ``genzoo train`` scores a finished run) into ``<out>/results.json``, so final scores compare like
with like. SAC checkpoints are SB3 pickles and are not published; the three small files of each finished run are
committed under ``experiments/online/<run>/`` (the queue writes them there), so the comparison outlives the machine.

Each method is scored with its own acting rule: SAC with its mean action (``deterministic=True``, how the SAC paper
and SB3 evaluate it), RFM with best-of-M flow samples (its paper's acting rule; the task protocol's
``deterministic=False``). The plots state this in a footnote (``plot_online.py --note "SAC: mean action; RFM: best
of M=32 flow samples by min-Q"``) and RESULTS.md beside the curves.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback

from evaluation import evaluate, get


class _Curve(BaseCallback):
    def __init__(self, task_id: str, every: int, episodes: int, path: Path) -> None:
        super().__init__()
        self.task_id, self.every, self.episodes, self.path = task_id, every, episodes, path
        with open(path, "w", newline="") as f:
            csv.writer(f).writerow(["time/total_timesteps", "eval/score", "eval/return"])

    def _on_training_start(self) -> None:
        self._score()  # step 0, as genzoo's learning curves start

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            self._score()
        return True

    def _score(self) -> None:
        result = evaluate(self.model, self.task_id, seeds=[10_000 + i for i in range(self.episodes)], deterministic=True)
        returns = [e["return"] for e in result["episodes"]]
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([self.model.num_timesteps, result["aggregate"]["mean"], float(np.mean(returns))])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--eval-every", type=int, default=5_000)
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--learning-starts", type=int, default=5_000)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = get(args.task)
    model = SAC("MlpPolicy", task.make_env(), learning_starts=args.learning_starts, seed=args.seed, device="cpu")
    t0 = time.time()
    model.learn(args.steps, callback=_Curve(task.task_id, args.eval_every, args.eval_episodes, out / "eval.csv"))
    wall = round(time.time() - t0, 1)
    result = evaluate(model, task.task_id, deterministic=True)  # the task's protocol, as genzoo train's final score
    result["method"] = "SAC (stable-baselines3)"
    (out / "results.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    import stable_baselines3

    (out / "run.json").write_text(json.dumps({
        "method": "SAC (stable-baselines3)", "task": task.task_id, "seed": args.seed, "steps": args.steps,
        "learning_starts": args.learning_starts, "wall_s": wall, "stable_baselines3": stable_baselines3.__version__,
        "torch": torch.__version__, "final_score": result["aggregate"]["mean"],
        "command": (f"python experiments/sac_baseline.py {task.task_id} --steps {args.steps} --seed {args.seed} "
                    f"--eval-every {args.eval_every} --eval-episodes {args.eval_episodes} "
                    f"--learning-starts {args.learning_starts} --threads {args.threads} --out {args.out}"),
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
