"""How far a constant Q pull moves each BC regulariser off the data: MoMa QL's MMD² against Diffusion-QL's ε-loss
and Consistency-AC's consistency loss.

    python experiments/q_pull_toy.py                          # the default grid, one seed, ~15 min on one thread
    python experiments/q_pull_toy.py --etas 0.3 1 --steps 2000 --methods moma-rbf dql --write

Why: on cube-single MoMa QL's η 0.1 stays at the BC setting's level while η 0.3 climbs and then leaves the data for the
box (experiments/RESULTS-moma-eta.md), where Diffusion-QL at η 0.1 uses the critic by 30k steps. A hypothesis for the
difference: Diffusion-QL's BC term is a per-sample regression whose restoring force grows with the distance the Q term
has moved the policy, so every pull has an equilibrium; an MMD² with a bandwidth that grows with the particles' spread
(the median rule) has a restoring force that *fades* with that distance (∝ 1/D for the RBF, constant for the energy
kernel), and the moment-matching targets are the policy's own EMA jumps except on the grounded draws (r = s). Then a
pull below some threshold barely moves the policy and one above it runs to the box, with no middle ground.

The toy isolates that with the critic replaced by a fixed linear one, so that nothing else moves: a 1-D observation
o ~ U(-1, 1), 5-D dataset actions a ~ N(0, 0.3² I) clipped to ±0.95 (cube-single's action dimension and roughly its
spread), and Q(o, a) = a₀ - 10 (one action component rewarded, |Q| ≈ 10), through each method's own normalised Q term
(-Q / sg(mean |Q|)), so the actor's pull on a₀ is ≈ η / 10 per sample: the "normalised slope" of
experiments/gradient_balance.py is 0.1 here, between MoMa QL's cube critic at 30k (0.02) and Diffusion-QL's (0.17).
The critic is not trained (the TD loss is replaced by zero). Each method runs its own actor loss unchanged, on 2×128
GELU/Mish actors (batch 256, lr 3e-4), and the table gives the mean of a₀ under its sampler (MoMa QL: 4 steps;
Diffusion-QL: the 5-step chain; Consistency-AC: its 2-step sampler; no candidate selection) and the fraction of a₀
on the box (|a₀| > 0.99), at several step counts: a regulariser with an equilibrium shows a₀ settling at a value that
grows with η; one without shows a₀ growing with the steps toward 1.

Methods (``--methods``): ``dql`` (Diffusion-QL), ``cac`` (Consistency-AC) and MoMa QL with the zoo's defaults
(``moma-rbf``) or one choice changed: ``-grounded`` / ``-data`` (half / all of the (s, r, t) draws with r = s, so the long
jump is matched to the data's interpolant), ``-online`` (stop-gradient short jump), ``moma-energy`` (energy kernel),
``-bw1`` (fixed RBF bandwidth 1), ``-1step`` (the Q term through the 1-step sampler only, which is then measured),
``-4step`` (through the 4-step sampler only), ``-jumps`` (half the draws on the jumps the Q term trains, grounded:
``sampler_jump_fraction=0.5``; ``-jumps-all`` every draw).
Results: experiments/RESULTS-q-pull.md.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from gymnasium import spaces
from results_log import append_section

from agents import ConsistencyAC, Dataset, DiffusionQL, MoMaQL

ACT_DIM, DATA_STD, Q_OFFSET = 5, 0.3, 10.0
METHODS = {  # name -> (class, constructor overrides)
    "moma-rbf": (MoMaQL, {}),
    "moma-rbf-grounded": (MoMaQL, {"grounded_fraction": 0.5}),
    "moma-rbf-data": (MoMaQL, {"grounded_fraction": 1.0}),  # every long jump matched to the data's interpolant
    "moma-rbf-online": (MoMaQL, {"short_jump_net": "online"}),
    "moma-rbf-bw1": (MoMaQL, {"kernel_bandwidth": 1.0}),  # a fixed bandwidth, the action box's half-width
    "moma-rbf-bw1-data": (MoMaQL, {"kernel_bandwidth": 1.0, "grounded_fraction": 1.0}),
    "moma-energy-data": (MoMaQL, {"kernel": "energy", "grounded_fraction": 1.0}),
    # the Q term through the 1-step sampler only, which is also the one measured: its input is always the noise of
    # q_{t_max}, where the moment-matching term trains the network too (no jump sees an input only the sampler makes)
    "moma-rbf-1step": (MoMaQL, {"sampling_steps": 1, "q_sampling_steps": [1]}),
    "moma-rbf-1step-data": (MoMaQL, {"sampling_steps": 1, "q_sampling_steps": [1], "grounded_fraction": 1.0}),
    "moma-energy": (MoMaQL, {"kernel": "energy"}),
    # half the draws on the jumps the Q term trains, grounded (r = s): the 1/2/4/8-step samplers, the 4-step one alone
    # (and measured), the 1-step one alone (and measured)
    "moma-rbf-4step": (MoMaQL, {"q_sampling_steps": None}),
    "moma-rbf-jumps": (MoMaQL, {"sampler_jump_fraction": 0.5}),
    "moma-rbf-4step-jumps": (MoMaQL, {"q_sampling_steps": None, "sampler_jump_fraction": 0.5}),
    "moma-rbf-1step-jumps": (MoMaQL, {"sampling_steps": 1, "q_sampling_steps": [1], "sampler_jump_fraction": 0.5}),
    "moma-rbf-1step-jumps-all": (MoMaQL, {"sampling_steps": 1, "q_sampling_steps": [1], "sampler_jump_fraction": 1.0}),
    "dql": (DiffusionQL, {}),
    "cac": (ConsistencyAC, {}),
}


class LinearQ(torch.nn.Module):
    """A fixed twin critic ``Q(o, a) = a₀ - 10`` with :class:`agents.core.critics.CriticEnsemble`'s call signature
    (and one unused parameter, for the agents' Polyak updates of their target critics)."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        q = actions[..., 0].float() - Q_OFFSET
        return torch.stack([q, q])


def toy_dataset(n: int = 20_000, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    act = np.clip(rng.normal(0.0, DATA_STD, (n, ACT_DIM)), -0.95, 0.95).astype(np.float32)
    return Dataset.from_arrays(obs, act, np.zeros(n), obs, np.zeros(n), action_space=spaces.Box(-1, 1, (ACT_DIM,)))


def make_agent(method: str, eta: float, data: Dataset, seed: int, hidden: list[int]) -> MoMaQL | DiffusionQL | ConsistencyAC:
    cls, overrides = METHODS[method]
    agent = cls(env=None, observation_space=data.observation_space, action_space=data.action_space, eta=eta,
                actor_hidden_dims=hidden, value_hidden_dims=[16], batch_size=256, seed=seed, **overrides)
    agent.load_offline_data(data)
    agent.policy.critic, agent.policy.target_critic = LinearQ(), LinearQ()

    def no_td_loss(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return torch.zeros((), requires_grad=True), {}

    agent.critic_loss = no_td_loss  # the critic is fixed: nothing to fit
    return agent


def first_component(agent: MoMaQL | DiffusionQL | ConsistencyAC, n: int, gen: torch.Generator) -> torch.Tensor:
    """a₀ of ``n`` policy samples at observations spread over [-1, 1], from the sampler the Q term trains."""
    obs = torch.linspace(-1, 1, n).unsqueeze(1)
    with torch.no_grad():
        if isinstance(agent, MoMaQL):
            a = agent.policy.sample(obs, torch.randn(n, ACT_DIM, generator=gen), agent.sampling_steps)
        elif isinstance(agent, DiffusionQL):  # the chain draws fresh noise at every step
            a = agent.policy.denoise(obs, lambda: torch.randn(n, ACT_DIM, generator=gen))
        else:
            a = agent.policy.sample(obs, lambda: torch.randn(n, ACT_DIM, generator=gen))
    return a[:, 0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--etas", type=float, nargs="+", default=[0.0, 0.3, 1.0, 3.0])
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--checkpoints", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128], help="actor hidden widths (zoo budget: 256 x4)")
    p.add_argument("--write", action="store_true", help="append the table to experiments/RESULTS-q-pull.md")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = toy_dataset()
    marks = sorted(c for c in set(args.checkpoints) if c <= args.steps)
    rows = []
    for method in args.methods:
        for eta in args.etas:
            t0 = time.time()
            agent = make_agent(method, eta, data, args.seed, args.hidden)
            cells, done = [], 0
            for mark in marks:
                agent.learn_offline(None, mark - done, log_interval=0, reset_num_timesteps=False)
                done = mark
                a0 = first_component(agent, 4096, torch.Generator().manual_seed(1000 + args.seed))
                cells.append(f"{a0.mean():+.2f} / {(a0.abs() > 0.99).float().mean() * 100:.0f}%")
            rows.append(f"| {method} | {eta:g} | " + " | ".join(cells) + f" | {time.time() - t0:.0f} |")
            print(rows[-1], flush=True)
    table = "\n".join([
        f"`python experiments/q_pull_toy.py {' '.join(sys.argv[1:])}` · seed {args.seed} · actor {args.hidden} · "
        "cells: mean a₀ / a₀ on the box",
        "",
        "| method | η | " + " | ".join(f"{m} steps" for m in marks) + " | s |",
        "|---|---|" + "---|" * len(marks) + "---|",
        *rows,
    ])
    print(table)
    if args.write:
        append_section("RESULTS-q-pull.md", table)


if __name__ == "__main__":
    main()
