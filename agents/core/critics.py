"""Q-function ensembles and the target aggregations the methods use."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from agents.core.networks import MLP


class CriticEnsemble(nn.Module):
    """``K`` independent Q(s, a) networks evaluated as one batched MLP; returns ``(K, B)``.

    LayerNorm on hidden layers follows FQL/QAM's ``Value`` networks (``layer_norm=True``); Diffusion-QL's and
    Consistency-AC's twin critics are ``layer_norm=False, activation="mish", init="torch"``.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_dims: Sequence[int],
        ensemble: int = 2,
        layer_norm: bool = True,
        activation: str = "gelu",
        init: str = "glorot",
    ) -> None:
        super().__init__()
        self.ensemble = ensemble
        self.net = MLP(obs_dim + act_dim, hidden_dims, 1, activation, layer_norm, ensemble, init)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        q = self.net(torch.cat([obs, actions], dim=-1), detach_params=detach_params).squeeze(-1)
        return q if self.ensemble > 1 else q.unsqueeze(0)


def aggregate(qs: torch.Tensor, how: str = "mean", rho: float = 0.0) -> torch.Tensor:
    """Reduce an ensemble ``(K, B)`` to ``(B,)``.

    ``mean`` and ``min`` are FQL's ``q_agg`` options; ``pessimistic`` is ``mean - rho * std`` (population std) as in
    QAM's code.
    """
    if how == "mean":
        return qs.mean(0)
    if how == "min":
        return qs.min(0).values
    if how == "pessimistic":
        return qs.mean(0) - rho * qs.std(0, correction=0)
    raise ValueError(f"unknown Q aggregation {how!r}; use 'mean', 'min' or 'pessimistic'")


def clipped_double_q_target(
    target_critic: CriticEnsemble,
    next_obs: torch.Tensor,
    sample_next_actions: Callable[[torch.Tensor], torch.Tensor],
    rewards: torch.Tensor,
    masks: torch.Tensor,
    gamma: float,
    max_q_backup: bool = False,
    backup_samples: int = 10,
) -> torch.Tensor:
    """The TD target of Diffusion-QL's code (Consistency-AC's code imports the same critic):
    ``y = r + γ m min_k Q̄_k(s', a')`` with ``a' = sample_next_actions(s')`` (the EMA actor's sampler); with
    ``max_q_backup``, each target critic first takes the max over ``backup_samples`` actions per ``s'``."""
    n = len(next_obs)
    if max_q_backup:
        rep = next_obs.repeat_interleave(backup_samples, dim=0)
        next_qs = target_critic(rep, sample_next_actions(rep)).float().view(-1, n, backup_samples).max(-1).values
    else:
        next_qs = target_critic(next_obs, sample_next_actions(next_obs)).float()
    return rewards + gamma * masks * next_qs.min(0).values


def swapped_normalized_q_loss(qs: torch.Tensor) -> torch.Tensor:
    """The actor's Q term of Diffusion-QL's code: ``-mean(Q_i) / sg(mean |Q_j|)`` for twin critics ``qs`` ``(2, B)``,
    with ``(i, j)`` a random order each step (the code flips a coin for which head is maximised)."""
    swap = torch.rand((), device=qs.device) < 0.5
    q_max, q_norm = torch.where(swap, qs[1], qs[0]), torch.where(swap, qs[0], qs[1])
    return -q_max.mean() / q_norm.abs().mean().detach()
