"""Training throughput: gradient steps/s of each method, as a multiple of the naive fp32 reference step.

    python benchmarks/throughput.py                       # FQL, widths 256/512, 1 and 2 threads, all variants
    python benchmarks/throughput.py --widths 256 --threads 1 --variants fp32 bf16

Batch 256, 4 hidden layers, OGBench cube-single shapes (obs 28, action 5), synthetic data (speed does not depend
on the values). Results are appended to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import sys

import harness
import numpy as np
import torch
from gymnasium import spaces
from reference import NaiveFQL

OBS_DIM, ACT_DIM, BATCH, ROWS = 28, 5, 256, 100_000
VARIANTS = {  # name -> constructor overrides
    "fp32": {"precision": "fp32"},
    "bf16": {"precision": "bf16"},
    "fp32+compile": {"precision": "fp32", "compile": True},
    "bf16+compile": {"precision": "bf16", "compile": True},
}


def _dataset():
    from agents import Dataset

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(ROWS, OBS_DIM)).astype(np.float32)
    return Dataset.from_arrays(obs, rng.uniform(-1, 1, (ROWS, ACT_DIM)), -np.ones(ROWS), obs, np.zeros(ROWS),
                               action_space=spaces.Box(-1, 1, (ACT_DIM,), np.float32))


def make_fql(width: int, **overrides):
    from agents import FQL

    data = _dataset()
    agent = FQL(observation_space=data.observation_space, action_space=data.action_space, alpha=300.0,
                actor_hidden_dims=[width] * 4, value_hidden_dims=[width] * 4, batch_size=BATCH, seed=0, **overrides)
    agent.load_offline_data(data)
    return agent


AGENTS = {"FQL": (make_fql, NaiveFQL)}


def main() -> None:
    p = harness.parser(__doc__)
    p.add_argument("--methods", nargs="+", default=list(AGENTS))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args, load, timing = harness.start(
        p, quick=dict(warmup=2, min_calls=5, min_seconds=0.5, repeats=1),
        full=dict(warmup=20, min_calls=50),
    )
    rows = []
    for method in args.methods:
        make, reference = AGENTS[method]
        for width in args.widths:
            naive = reference(OBS_DIM, ACT_DIM, width, batch_size=BATCH)
            agents = {v: make(width, **VARIANTS[v]) for v in args.variants}
            for threads in args.threads:
                torch.set_num_threads(threads)
                base = 1.0 / harness.time_per_call(naive.step, **timing)
                row = [method, str(width), str(threads), f"{base:.1f}"]
                for v in args.variants:
                    agent = agents[v]
                    warm = dict(timing, warmup=timing["warmup"] + (3 if agent.compile else 0))
                    sps = 1.0 / harness.time_per_call(lambda a=agent: a.train(1, BATCH), **warm)
                    row.append(f"{sps:.1f} ({sps / base:.2f}x)")
                rows.append(row)
                print(" | ".join(row), flush=True)
    text = harness.append_results(
        "Training throughput (gradient steps/s; multiple of the naive fp32 step)",
        "python benchmarks/throughput.py " + " ".join(sys.argv[1:]),
        load,
        rows,
        ["method", "width", "threads", "naive fp32", *args.variants],
        ["Batch 256, 4 hidden layers, obs 28 / action 5. The naive step is `benchmarks/reference.py` (frozen)."],
    )
    harness.write(text, args.no_write or args.quick)


if __name__ == "__main__":
    main()
