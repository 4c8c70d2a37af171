"""How hard the Q term pulls against the BC term in a trained actor: gradient norms of each on the actor's weights.

    python experiments/gradient_balance.py "DQL η 0.1=/work/runs/diffusionql-cube-single-task1-eta0.1-30k-seed0/model" \\
        "MoMa η 0.1=/work/runs/momaql-cube-single-task1-seed0/checkpoint" --batches 8

MoMa QL, Diffusion-QL and Consistency-AC all train the actor on ``L_BC + η · L_Q``, with ``L_Q`` the Q term normalised
by ``sg(mean |Q|)`` (Diffusion-QL's normalisation), so the same η means the same balance only if their BC terms pull
equally hard. For each checkpoint, over ``--batches`` dataset batches (a fixed draw, ``--seed``), the table gives the
norms of ``∇θ L_BC`` and ``∇θ L_Q`` over the actor's weights (mean over batches), their ratio, the Q term's share of the
pull at the checkpoint's own η (``η ‖∇L_Q‖ / (‖∇L_BC‖ + η ‖∇L_Q‖)``) and the cosine between the two gradients (negative:
the Q term pulls against the data), and the critic's slope ``mean_i ‖∇_a Q(s_i, a_i)‖ / mean |Q|`` (the critics' mean,
normalised as ``L_Q`` is) at the policy's own stochastic actions and at the batch's dataset actions: ``‖∇θ L_Q‖`` is the
first slope carried back through the sampler, so the columns tell a flat critic from an actor whose output barely moves
with its weights, and a critic flat everywhere from one flat only where the policy acts. ``L_BC`` is each method's own
BC term (MoMa QL's MMD², Diffusion-QL's ε-prediction loss, Consistency-AC's scaled consistency loss); ``L_Q`` goes
through the method's training sampler (MoMa QL: its default step count). Another actor-critic (FQL, whose actor loss
is a distillation term plus an unnormalised Q term) gets the two slope columns only.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import zoo
from agents import ConsistencyAC, DiffusionQL, MoMaQL
from zoo import datasets


def losses(agent, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(L_BC, L_Q)`` of one batch, each as the method computes it in training; None for another actor-critic (FQL:
    its actor's loss is not a BC term plus a normalised Q term), which gets the critic's slopes only."""
    if isinstance(agent, MoMaQL):
        with agent.autocast():
            bc, _ = agent.moment_matching_loss(obs, actions)
            q, _ = agent.q_loss(obs, agent.sampling_steps)
        return bc, q
    if isinstance(agent, DiffusionQL):
        with agent.autocast():
            bc = agent.bc_loss(obs, actions)
        return bc, agent.q_loss(obs)
    if isinstance(agent, ConsistencyAC):
        tau_lo, tau_hi = agent.noise_levels(len(actions), actions.device)
        with agent.autocast():
            bc, _ = agent.bc_loss(obs, actions, tau_lo, tau_hi)
        return bc, agent.q_loss(obs)
    return None


def flat_grad(loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten().float() for g, p in zip(grads, params)])


def critic_slope(agent, obs: torch.Tensor, actions: torch.Tensor | None = None) -> float:
    """``mean_i ‖∇_a Q(s_i, a_i)‖ / mean |Q|`` (critic ensemble mean) at ``actions``, by default the policy's own
    stochastic actions."""
    pi = agent.policy
    if actions is None:
        # One sample per state, as L_Q draws it (Diffusion-QL and Consistency-AC act best-of-K; K = 1 is their sampler).
        one_sample = {"candidates": 1} if isinstance(agent, (DiffusionQL, ConsistencyAC)) else {}
        with torch.no_grad():
            actions = pi.sample_actions(obs, **one_sample)
    actions = actions.detach().float().requires_grad_(True)
    q = pi.critic(obs, actions).float().mean(0)
    (grad,) = torch.autograd.grad(q.sum(), actions)
    return (grad.norm(dim=-1).mean() / q.abs().mean().clamp_min(1e-8)).item()


def balance(agent, obs: np.ndarray, actions: np.ndarray, batches: int, batch_size: int) -> dict[str, float]:
    pi = agent.policy
    if getattr(pi, "critic", None) is None:
        raise SystemExit(f"{type(agent).__name__}: not an actor-critic (no critic to measure)")
    bc_norms, q_norms, cosines, data_slopes, observations = [], [], [], [], []
    for i in range(batches):
        sl = slice(i * batch_size, (i + 1) * batch_size)
        # The batch as the replay buffer serves it in training: actions scaled into the box, observations normalised.
        o = torch.as_tensor(obs[sl], dtype=torch.float32, device=agent.device)
        if agent.normalize_observations:
            o = pi.normalize(o)
        a = np.clip(pi.scale_action(actions[sl]), -1 + 1e-5, 1 - 1e-5)
        a = torch.as_tensor(a, dtype=torch.float32, device=agent.device)
        observations.append(o)
        data_slopes.append(critic_slope(agent, o, a))
        pair = losses(agent, o, a)
        if pair is None:
            continue
        bc, q = pair
        params = [p for p in pi.actor.parameters() if p.requires_grad]
        g_bc, g_q = flat_grad(bc, params), flat_grad(q, params)
        bc_norms.append(g_bc.norm().item())
        q_norms.append(g_q.norm().item())
        cosines.append(torch.nn.functional.cosine_similarity(g_bc, g_q, dim=0).item())
    # The slopes after the norms, so the norms' random draws are those of the table's first version.
    slopes = [critic_slope(agent, o) for o in observations]
    slope_cols = {"‖∇a Q‖ / |Q| at a^π": float(np.mean(slopes)), "at data a": float(np.mean(data_slopes))}
    if not bc_norms:
        return slope_cols
    bc_norm, q_norm, eta = float(np.mean(bc_norms)), float(np.mean(q_norms)), float(agent.eta)
    return slope_cols | {"η": eta, "‖∇L_BC‖": bc_norm, "‖∇L_Q‖": q_norm, "‖∇L_Q‖ / ‖∇L_BC‖": q_norm / bc_norm,
            "Q share at η": eta * q_norm / (bc_norm + eta * q_norm), "cosine": float(np.mean(cosines))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", metavar="[LABEL=]CHECKPOINT")
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset-dir", default=None, help="where the datasets are (default: the suites' own folders)")
    args = p.parse_args()
    cols = ["η", "‖∇L_BC‖", "‖∇L_Q‖", "‖∇L_Q‖ / ‖∇L_BC‖", "Q share at η", "cosine", "‖∇a Q‖ / |Q| at a^π", "at data a"]
    print("| checkpoint | " + " | ".join(cols) + " |\n|" + "---|" * (len(cols) + 1))
    for spec in args.checkpoints:
        label, _, path = spec.rpartition("=")
        torch.manual_seed(args.seed)
        agent = zoo.load(path)
        data = datasets.load(agent.config["dataset"]["id"], args.dataset_dir)
        rows = args.batches * args.batch_size
        idx = np.random.default_rng(args.seed).choice(len(data), min(rows, len(data)), replace=False)
        row = balance(agent, data.observations[idx], data.actions[idx], args.batches, args.batch_size)
        print(f"| {label or path} | " + " | ".join(f"{row[c]:.4g}" if c in row else "-" for c in cols) + " |")


if __name__ == "__main__":
    main()
