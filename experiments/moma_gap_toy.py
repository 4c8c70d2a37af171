"""MoMa QL's r(s, t) gap and short-jump network on a state-conditional two-mode BC toy, at a longer budget than the tests.

    python experiments/moma_gap_toy.py                     # k in 6 8 10 12, EMA and online short jump, 20k steps
    python experiments/moma_gap_toy.py --k 6 12 --steps 5000 --seeds 0

Why: ``r_gap_k`` (IMM's constant decrement of η, agents/moma_ql.py) decides how often the short jump is the identity
(r = s: 78% of draws at k = 6, 12% at k = 12) and so how much of training is inductive (s < r < t, as the paper
writes it) rather than matched directly to the interpolant. k = 6 was chosen on the 1500-step toy of the tests, which
favours fast propagation; this script asks which settings train the few-step samplers best when given time.

The toy: observation o ~ U(-1, 1) (1-D), action a = +m(o) with probability p(o) = 0.25 + 0.5 (o + 1) / 2 and
-m(o) otherwise, m(o) = 0.4 + 0.3 o; BC setting (η = 0), 2×128 GELU actor, batch 256, lr 3e-4 (the zoo's).
Metrics on 41 states × 2000 samples each, for 1, 2, 4 and 8 sampling steps:
  * ``between``: fraction of samples farther than 0.15 from both modes (0 is perfect; a Gaussian fit puts ~45% there);
  * ``weight err``: mean over states of |fraction on the + mode - p(o)|, among samples near a mode.
Results are printed as a Markdown table (and appended to experiments/RESULTS-moma-gap.md with --write).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from gymnasium import spaces
from results_log import append_section

from agents import Dataset, MoMaQL


def toy_dataset(n: int = 20_000, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    p_plus = 0.25 + 0.5 * (obs + 1) / 2
    sign = np.where(rng.random((n, 1)) < p_plus, 1.0, -1.0)
    act = (sign * (0.4 + 0.3 * obs)).astype(np.float32)
    return Dataset.from_arrays(obs, act, np.zeros(n), obs, np.zeros(n), action_space=spaces.Box(-1, 1, (1,)))


def score(agent: MoMaQL, steps: int, gen: torch.Generator) -> tuple[float, float]:
    states = torch.linspace(-1, 1, 41).unsqueeze(1)
    n = 2000
    obs = states.repeat_interleave(n, 0)
    with torch.no_grad():
        a = agent.policy.sample(obs, torch.randn(obs.shape[0], 1, generator=gen), steps).view(41, n)
    m = (0.4 + 0.3 * states)  # (41, 1)
    near_plus = (a - m).abs() < 0.15
    near_minus = (a + m).abs() < 0.15
    between = 1.0 - (near_plus | near_minus).float().mean().item()
    p = (0.25 + 0.5 * (states + 1) / 2).squeeze(1)
    frac_plus = near_plus.float().sum(1) / (near_plus | near_minus).float().sum(1).clamp_min(1)
    return between, (frac_plus - p).abs().mean().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--k", type=float, nargs="+", default=[6, 8, 10, 12])
    p.add_argument("--short-jump", nargs="+", default=["ema", "online"], choices=["ema", "online"])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    ds = toy_dataset()
    rows = []
    for k in args.k:
        for net in args.short_jump:
            res = {n: [] for n in (1, 2, 4, 8)}
            t0 = time.time()
            for seed in args.seeds:
                agent = MoMaQL(env=None, observation_space=ds.observation_space, action_space=ds.action_space, eta=0.0,
                               actor_hidden_dims=[128, 128], value_hidden_dims=[16], batch_size=256,
                               r_gap_k=k, short_jump_net=net, seed=seed)
                agent.learn_offline(ds, args.steps, log_interval=0)
                gen = torch.Generator().manual_seed(1000 + seed)
                for n in res:
                    res[n].append(score(agent, n, gen))
            cells = [f"{np.mean([b for b, _ in res[n]]) * 100:.1f} / {np.mean([w for _, w in res[n]]) * 100:.1f}"
                     for n in res]
            rows.append(f"| {k:g} | {net} | " + " | ".join(cells) + f" | {time.time() - t0:.0f} |")
            print(rows[-1], flush=True)
    table = "\n".join([
        f"`python experiments/moma_gap_toy.py {' '.join(sys.argv[1:])}` · {args.steps} steps · seeds {args.seeds}",
        "",
        "| r_gap_k | short jump | 1 step: between % / weight err % | 2 steps | 4 steps | 8 steps | s |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ])
    print(table)
    if args.write:
        append_section("RESULTS-moma-gap.md", table)


if __name__ == "__main__":
    main()
