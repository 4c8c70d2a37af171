"""A checkpoint's score and action latency against its number of sampling steps (MoMa QL's 1/2/4/8-step table).

    python experiments/sampling_steps.py genzoo/momaql-ogbench-cube-single-task1-seed0 --steps 1 2 4 8

Each row re-scores the checkpoint with ``predict(..., sampling_steps=k)`` under its task's protocol (same episode
seeds as its card) through ``evaluation.evaluate``; per-episode records go to ``--out`` as JSON when given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import zoo
from evaluation import evaluate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a model folder or a repo id")
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--episodes", type=int, default=None, help="default: the task's protocol")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    agent = zoo.load(args.checkpoint)
    task = agent.config["task"]
    default = agent.sampler_settings().get("sampling_steps")
    rows, records = [], {}
    for k in args.steps:
        result = evaluate(agent, task, n_episodes=args.episodes, sampling_steps=k)
        agg = result["aggregate"]
        records[k] = result
        mark = " (trained default)" if k == default else ""
        rows.append(f"| {k}{mark} | {agg['mean']:.1f} | [{agg['ci_low']:.1f}, {agg['ci_high']:.1f}] | "
                    f"{result['protocol']['episodes']} | {result['latency_ms_per_action']:.3f} |")
    print(f"### {agent.config['algo']} on `{task}`: score against sampling steps ({args.checkpoint})\n")
    print(f"| sampling steps | {records[args.steps[0]]['metric_label']} | 95% CI | episodes | latency (ms, batch 1) |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    if args.out:
        Path(args.out).write_text(json.dumps({str(k): r for k, r in records.items()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
