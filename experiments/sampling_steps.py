"""Checkpoints' score and action latency against their number of sampling steps (MoMa QL's 1/2/4/8-step table).

    python experiments/sampling_steps.py genzoo/momaql-ogbench-cube-single-task1-seed0 --steps 1 2 4 8
    python experiments/sampling_steps.py zoo/checkpoints/genzoo/momaql-ogbench-cube-single-task1-seed[0-9] --steps 1 2 4 8

Each row re-scores the checkpoints with ``predict(..., sampling_steps=k)`` under their task's protocol (same episode
seeds as their cards) through ``evaluation.evaluate``. Several checkpoints (the seeds of one setting, one task) give the
mean over seeds with a 95% stratified bootstrap CI over episodes within seeds (as ``results_table.py``) and each
seed's score; per-episode records go to ``--out`` as JSON when given. ``--candidates K`` acts with ``K`` samples per
state, one kept by ``softmax(min Q)`` (Diffusion-QL's selection; MoMa QL's paper acts with one):

    python experiments/sampling_steps.py genzoo/momaql-ogbench-cube-single-task1-seed0 --steps 1 --candidates 50
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from results_table import stratified_ci

import zoo
from evaluation import evaluate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", help="model folders or repo ids: the seeds of one setting on one task")
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--episodes", type=int, default=None, help="default: the task's protocol")
    p.add_argument("--candidates", type=int, default=None, help="samples per state, one kept by the critic "
                   "(default: the checkpoint's own acting)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    agents = [zoo.load(c) for c in args.checkpoints]
    tasks = {a.config["task"] for a in agents}
    if len(tasks) != 1:
        p.error(f"the checkpoints must share one task, got {sorted(tasks)}")
    task = tasks.pop()
    default = agents[0].sampler_settings().get("sampling_steps")
    rows, records = [], {}
    load = os.getloadavg()[0]  # latency is read on a shared CPU: say how busy it was
    selection = {} if args.candidates is None else {"candidates": args.candidates}
    for k in args.steps:
        results = [evaluate(agent, task, n_episodes=args.episodes, sampling_steps=k, **selection) for agent in agents]
        records[k] = results
        metric = results[0]["metric"]
        scale = 100.0 if metric == "success" else 1.0
        per_seed = [np.array([e[metric] for e in r["episodes"]], float) * scale for r in results]
        mean, lo, hi = stratified_ci(per_seed)
        latency = np.mean([r["latency_ms_per_action"] for r in results])
        mark = " (trained default)" if k == default else ""
        seeds = ", ".join(f"{x.mean():.0f}" for x in per_seed)
        rows.append(f"| {k}{mark} | {mean:.1f} | [{lo:.1f}, {hi:.1f}] | {seeds} | "
                    f"{results[0]['protocol']['episodes']} | {latency:.3f} |")
    label = args.checkpoints[0] if len(agents) == 1 else f"{len(agents)} seeds: {', '.join(args.checkpoints)}"
    label += "" if args.candidates is None else f"; {args.candidates} candidates, one kept by softmax(min Q)"
    print(f"### {agents[0].config['algo']} on `{task}`: score against sampling steps ({label})\n")
    print(f"| sampling steps | {records[args.steps[0]][0]['metric_label']} | 95% CI | per seed | episodes per seed "
          "| latency (ms, batch 1) |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    where = records[args.steps[0]][0].get("device_name", "this machine").split(":", 1)[-1]
    print(f"\nLatency measured while re-scoring, on {where}, load average {load:.2f} at start "
          "(a training job on the other core slows it; the cards' latencies are their own machines').")
    if args.out:
        Path(args.out).write_text(json.dumps({str(k): r for k, r in records.items()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
