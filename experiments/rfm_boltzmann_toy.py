"""Does RFM's actor reach the Boltzmann policy exp(Q/λ) of a known critic? Posterior proposals, K and t_min compared.

    python experiments/rfm_boltzmann_toy.py                       # the grid below, 5000 actor steps each
    python experiments/rfm_boltzmann_toy.py --dims 3 --steps 2000 --configs prior-K32 policy-0.5

Why: RFM regresses its velocity onto (u_t - μ̂)/t, where μ̂ = E[X_0 | u_t] is a self-normalised importance-sampling
estimate over K draws of X_0 (agents/rfm.py). Drawn from the prior N(0, I), the implied X_1 = (u_t - (1-t) X_0)/t has
spread (1-t)/t (49 at t = 0.02) against a Boltzmann target a few tenths wide, so at small t one draw takes all the
weight and μ̂'s error, divided by t, dominates the loss. This script measures what that does to the learned policy,
and what the alternatives do (the paper leaves K, t's distribution and the proposal open: METHODS.md §4).

The toy: a 1-D state s ~ U(-1, 1), D action dims, a fixed critic Q(s, a) = -(c/2) Σ_j (a_j - m_j(s))² with
m_j(s) = 0.3 + 0.2 s (-1)^j, temperature λ = 0.1 (RFM's default): the Boltzmann policy is, per dimension, a normal of
mean m_j(s) and std sqrt(λ/c) truncated to (-1, 1) (c = 2: std 0.22). Only the actor trains (RFM.actor_loss with this
Q as its log-target; 2×256 GELU, batch 256, Adam 3e-4, one thread). Metrics over 21 states × 2000 one-sample actions
(no best-of-M): the sample std over the exact std (1 is right; an untrained flow gives ~3) and the 1-D Wasserstein
distance to the exact marginal, averaged over dims and states; and the mean effective sample size of μ̂ in training.
Results are printed as a Markdown table (and appended to experiments/RESULTS-rfm-toy.md with --write).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from gymnasium import spaces
from results_log import append_section

from agents import RFM
from agents.rfm import log_sech2

CONFIGS = {  # name -> RFM constructor arguments
    "prior-K32": {"posterior_proposal": "prior"},
    "prior-K128": {"posterior_proposal": "prior", "num_samples": 128},
    "prior-K32-tmin0.2": {"posterior_proposal": "prior", "t_min": 0.2},
    "policy-0.5": {"posterior_proposal": "policy", "proposal_scale": 0.5},
    "policy-0.25": {"posterior_proposal": "policy", "proposal_scale": 0.25},
    "policy-0.5-K128": {"posterior_proposal": "policy", "proposal_scale": 0.5, "num_samples": 128},
    "policy-0.5-K16": {"posterior_proposal": "policy", "proposal_scale": 0.5, "num_samples": 16},
    "policy-0.5-K8": {"posterior_proposal": "policy", "proposal_scale": 0.5, "num_samples": 8},
    "policy-0.5-eta0": {"posterior_proposal": "policy", "proposal_scale": 0.5, "eta": 0.0},
    "policy-0.5-eta1": {"posterior_proposal": "policy", "proposal_scale": 0.5, "eta": 1.0},
}


def centers(s: torch.Tensor, dims: int) -> torch.Tensor:
    sign = torch.tensor([(-1.0) ** j for j in range(dims)])
    return 0.3 + 0.2 * s * sign  # (B, D)


def exact_quantiles(mean: np.ndarray, std: float, q: np.ndarray) -> np.ndarray:
    """Quantiles ``q`` of N(mean, std²) truncated to (-1, 1), per entry of ``mean`` (numerical CDF on a grid)."""
    grid = np.linspace(-1, 1, 4001)
    dens = np.exp(-0.5 * ((grid[None, :] - mean[:, None]) / std) ** 2)
    cdf = np.cumsum(dens, axis=1)
    cdf /= cdf[:, -1:]
    return np.stack([np.interp(q, c, grid) for c in cdf])


def evaluate(agent: RFM, dims: int, curvature: float, temperature: float, gen: torch.Generator) -> tuple[float, float]:
    states = torch.linspace(-1, 1, 21).unsqueeze(1)
    n = 2000
    obs = states.repeat_interleave(n, 0)
    with torch.no_grad():
        noise = torch.randn(obs.shape[0], dims, generator=gen)
        actions = torch.tanh(agent.policy.latent_actions(obs, noise)).view(21, n, dims).numpy()
    std = (temperature / curvature) ** 0.5
    means = centers(states, dims).numpy()  # (21, D)
    q = (np.arange(n) + 0.5) / n
    ratios, w1 = [], []
    for j in range(dims):
        exact = exact_quantiles(means[:, j], std, q)  # (21, n)
        exact_std = np.sqrt(((exact - exact.mean(1, keepdims=True)) ** 2).mean(1))
        ratios.append(actions[:, :, j].std(1) / exact_std)
        w1.append(np.abs(np.sort(actions[:, :, j], axis=1) - exact).mean(1))
    return float(np.mean(ratios)), float(np.mean(w1))


def run(config: str, dims: int, steps: int, seed: int, curvature: float) -> dict[str, float]:
    torch.manual_seed(seed)
    agent = RFM(env=None, observation_space=spaces.Box(-1, 1, (1,)), action_space=spaces.Box(-1, 1, (dims,)),
                seed=seed, **CONFIGS[config])

    def log_target(obs: torch.Tensor):  # the toy's exp(Q/λ) in the latent u (tanh Jacobian included), as RFM's own
        m = centers(obs, dims).unsqueeze(1)  # (B, 1, D)

        def log_p(u: torch.Tensor) -> torch.Tensor:
            q = -0.5 * curvature * (torch.tanh(u) - m).square().sum(-1)
            return q / agent.temperature + log_sech2(u.float()).sum(-1)

        return log_p

    agent.log_target = log_target  # type: ignore[method-assign]
    opt = torch.optim.Adam(agent.policy.velocity_net.parameters(), lr=3e-4)
    gen = torch.Generator().manual_seed(10_000 + seed)
    std0, _ = evaluate(agent, dims, curvature, agent.temperature, gen)
    ess, t0 = [], time.time()
    for _ in range(steps):
        obs = torch.rand(256, 1) * 2 - 1
        loss, info = agent.actor_loss({"observations": obs})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ess.append(float(info["snis_ess"]))
    wall = time.time() - t0
    std_ratio, w1 = evaluate(agent, dims, curvature, agent.temperature, gen)
    return {"std0": std0, "std": std_ratio, "w1": w1, "ess": float(np.mean(ess)), "s": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--dims", type=int, nargs="+", default=[3, 6])
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--curvature", type=float, default=2.0)
    p.add_argument("--write", action="store_true", help="append the table to experiments/RESULTS-rfm-toy.md")
    args = p.parse_args()
    torch.set_num_threads(1)
    lines = [f"`python {' '.join(['experiments/rfm_boltzmann_toy.py', *sys.argv[1:]])}` · {args.steps} actor steps · "
             f"seed {args.seed} · c = {args.curvature} (exact std {(0.1 / args.curvature) ** 0.5:.2f})", "",
             "| D | config | std / exact std (untrained) | std / exact std | W1 to exact | mean ESS | s |",
             "|---|---|---|---|---|---|---|"]
    for dims in args.dims:
        for config in args.configs:
            r = run(config, dims, args.steps, args.seed, args.curvature)
            lines.append(f"| {dims} | {config} | {r['std0']:.2f} | {r['std']:.2f} | {r['w1']:.3f} | {r['ess']:.1f} | "
                         f"{r['s']:.0f} |")
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    if args.write:
        append_section("RESULTS-rfm-toy.md", table)


if __name__ == "__main__":
    main()
