"""Q-function ensembles and the target aggregations the methods use."""

from __future__ import annotations

from collections.abc import Sequence

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
