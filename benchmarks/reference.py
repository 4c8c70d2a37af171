"""Naive fp32 reference implementations, written plainly and frozen once written.

They are what a first PyTorch port of the papers' code looks like: ``nn.Sequential`` MLPs, one module per ensemble
member, numpy indexing for batches, an unfused Adam, a Python loop for Polyak averaging. The benchmarks report
genzoo's speed as a multiple of these, measured in the same process with the same thread count.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn


def naive_mlp(in_dim: int, width: int, depth: int, out_dim: int, layer_norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.GELU()]
        if layer_norm:
            layers.append(nn.LayerNorm(width))
        d = width
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


class NaiveFQL:
    """FQL's update (Park et al. 2025) in plain fp32 PyTorch."""

    def __init__(self, obs_dim: int, act_dim: int, width: int, depth: int = 4, alpha: float = 300.0,
                 flow_steps: int = 10, batch_size: int = 256, n_rows: int = 100_000, seed: int = 0) -> None:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        self.data = {
            "observations": rng.normal(size=(n_rows, obs_dim)).astype(np.float32),
            "actions": rng.uniform(-1, 1, size=(n_rows, act_dim)).astype(np.float32),
            "rewards": -np.ones(n_rows, np.float32),
            "next_observations": rng.normal(size=(n_rows, obs_dim)).astype(np.float32),
            "masks": np.ones(n_rows, np.float32),
        }
        self.rng = rng
        self.act_dim, self.alpha, self.flow_steps, self.batch_size = act_dim, alpha, flow_steps, batch_size
        self.bc_flow = naive_mlp(obs_dim + act_dim + 1, width, depth, act_dim)
        self.onestep = naive_mlp(obs_dim + act_dim, width, depth, act_dim)
        self.critics = nn.ModuleList([naive_mlp(obs_dim + act_dim, width, depth, 1, layer_norm=True) for _ in range(2)])
        self.target_critics = copy.deepcopy(self.critics)
        params = [*self.bc_flow.parameters(), *self.onestep.parameters(), *self.critics.parameters()]
        self.opt = torch.optim.Adam(params, lr=3e-4, foreach=False)

    def q(self, critics: nn.ModuleList, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return torch.stack([c(torch.cat([obs, act], -1)).squeeze(-1) for c in critics])

    def flow_actions(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        x = noise
        for i in range(self.flow_steps):
            t = torch.full((len(obs), 1), i / self.flow_steps)
            x = x + self.bc_flow(torch.cat([obs, x, t], -1)) / self.flow_steps
        return x.clamp(-1, 1)

    def step(self) -> None:
        idx = self.rng.integers(0, len(self.data["rewards"]), self.batch_size)
        b = {k: torch.from_numpy(v[idx]) for k, v in self.data.items()}
        obs, act = b["observations"], b["actions"]
        with torch.no_grad():
            next_a = self.onestep(torch.cat([b["next_observations"], torch.randn_like(act)], -1)).clamp(-1, 1)
            target = b["rewards"] + 0.99 * b["masks"] * self.q(self.target_critics, b["next_observations"], next_a).mean(0)
        critic_loss = ((self.q(self.critics, obs, act) - target) ** 2).mean()
        x0, t = torch.randn_like(act), torch.rand(len(act), 1)
        bc_loss = ((self.bc_flow(torch.cat([obs, (1 - t) * x0 + t * act, t], -1)) - (act - x0)) ** 2).mean()
        z = torch.randn_like(act)
        with torch.no_grad():
            target_a = self.flow_actions(obs, z)
        pi = self.onestep(torch.cat([obs, z], -1))
        distill = ((pi - target_a) ** 2).mean()
        for p in self.critics.parameters():
            p.requires_grad_(False)
        q_loss = -self.q(self.critics, obs, pi.clamp(-1, 1)).mean()
        for p in self.critics.parameters():
            p.requires_grad_(True)
        loss = critic_loss + bc_loss + self.alpha * distill + q_loss
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            for p, tp in zip(self.critics.parameters(), self.target_critics.parameters()):
                tp.mul_(0.995).add_(0.005 * p)
