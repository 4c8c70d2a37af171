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


# ---------------------------------------------------------------------------------------------------------------------
# Diffusion-QL / Consistency-AC as their official PyTorch code is written (Zhendong-Wang/Diffusion-Policies-for-Offline-RL,
# quantumiracle/Consistency_Model_For_Reinforcement_Learning): nn.Sequential + nn.Mish, one module per critic, per-row
# coefficient gathers, an unfused Adam per network, Python loops for the EMA and Polyak updates.


def naive_mish_mlp(in_dim: int, width: int, depth: int, out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.Mish()]
        d = width
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


class NaiveNoiseNet(nn.Module):
    """The official ``agents/model.py::MLP``: sinusoidal time embedding, time MLP, [x, t, s] -> Mish MLP."""

    def __init__(self, obs_dim: int, act_dim: int, width: int, depth: int, t_dim: int = 16) -> None:
        super().__init__()
        self.t_dim = t_dim
        self.time_mlp = nn.Sequential(nn.Linear(t_dim, 2 * t_dim), nn.Mish(), nn.Linear(2 * t_dim, t_dim))
        self.mid = naive_mish_mlp(obs_dim + act_dim + t_dim, width, depth, act_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        half = self.t_dim // 2
        freqs = torch.exp(torch.arange(half) * -(np.log(10000) / (half - 1)))
        emb = t.reshape(-1).float()[:, None] * freqs[None]
        temb = self.time_mlp(torch.cat([emb.sin(), emb.cos()], -1))
        return self.mid(torch.cat([x, temb, s], -1))


class _NaiveActorCritic:
    """Shared data, critics and update plumbing of the two naive references."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        width: int,
        depth: int,
        batch_size: int,
        n_rows: int,
        seed: int,
        bc_only: bool,
        grad_norm: float,
    ) -> None:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        self.data = {
            "observations": rng.normal(size=(n_rows, obs_dim)).astype(np.float32),
            "actions": rng.uniform(-1, 1, size=(n_rows, act_dim)).astype(np.float32),
            "rewards": -np.ones((n_rows, 1), np.float32),
            "next_observations": rng.normal(size=(n_rows, obs_dim)).astype(np.float32),
            "masks": np.ones((n_rows, 1), np.float32),
        }
        self.rng, self.batch_size, self.bc_only, self.grad_norm, self.n_step = rng, batch_size, bc_only, grad_norm, 0
        self.actor = NaiveNoiseNet(obs_dim, act_dim, width, depth)
        self.ema = copy.deepcopy(self.actor)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=3e-4, foreach=False)
        if not bc_only:
            self.critics = nn.ModuleList([naive_mish_mlp(obs_dim + act_dim, width, depth, 1) for _ in range(2)])
            self.target_critics = copy.deepcopy(self.critics)
            self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=3e-4, foreach=False)

    def batch(self) -> dict[str, torch.Tensor]:
        idx = self.rng.integers(0, len(self.data["rewards"]), self.batch_size)
        return {k: torch.from_numpy(v[idx]) for k, v in self.data.items()}

    def critic_step(self, b: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            next_a = self.sample(self.ema, b["next_observations"])
            sa = torch.cat([b["next_observations"], next_a], -1)
            target = b["rewards"] + 0.99 * b["masks"] * torch.min(self.target_critics[0](sa), self.target_critics[1](sa))
        sa = torch.cat([b["observations"], b["actions"]], -1)
        loss = ((self.critics[0](sa) - target) ** 2).mean() + ((self.critics[1](sa) - target) ** 2).mean()
        self.critic_opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.critics.parameters(), self.grad_norm)
        self.critic_opt.step()

    def q_loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        sa = torch.cat([b["observations"], self.sample(self.actor, b["observations"])], -1)
        q1, q2 = self.critics[0](sa), self.critics[1](sa)
        return -q1.mean() / q2.abs().mean().detach()

    def finish(self, actor_loss: torch.Tensor) -> None:
        self.actor_opt.zero_grad()
        actor_loss.backward()
        if not self.bc_only:
            nn.utils.clip_grad_norm_(self.actor.parameters(), self.grad_norm)
        self.actor_opt.step()
        with torch.no_grad():
            if self.n_step % 5 == 0:
                for p, ep in zip(self.actor.parameters(), self.ema.parameters()):
                    ep.copy_(ep * 0.995 + 0.005 * p)
            if not self.bc_only:
                for p, tp in zip(self.critics.parameters(), self.target_critics.parameters()):
                    tp.copy_(0.005 * p + 0.995 * tp)
        self.n_step += 1


class NaiveDiffusionQL(_NaiveActorCritic):
    """Diffusion-QL's (``bc_only``: Diffusion-BC's) update in plain fp32 PyTorch, VP schedule, ``n_steps`` steps."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        width: int,
        depth: int = 4,
        n_steps: int = 5,
        batch_size: int = 256,
        n_rows: int = 100_000,
        seed: int = 0,
        bc_only: bool = False,
        grad_norm: float = 1.0,
    ) -> None:
        super().__init__(obs_dim, act_dim, width, depth, batch_size, n_rows, seed, bc_only, grad_norm)
        self.n_steps = n_steps
        t = np.arange(1, n_steps + 1)
        betas = torch.tensor(1 - np.exp(-0.1 / n_steps - 0.5 * 9.9 * (2 * t - 1) / n_steps**2), dtype=torch.float32)
        ab = torch.cumprod(1 - betas, 0)
        ab_prev = torch.cat([torch.ones(1), ab[:-1]])
        self.sqrt_ab, self.sqrt_1mab = ab.sqrt(), (1 - ab).sqrt()
        self.recip, self.recipm1 = (1 / ab).sqrt(), (1 / ab - 1).sqrt()
        self.c1, self.c2 = betas * ab_prev.sqrt() / (1 - ab), (1 - ab_prev) * (1 - betas).sqrt() / (1 - ab)
        self.log_var = torch.log((betas * (1 - ab_prev) / (1 - ab)).clamp(min=1e-20))

    def sample(self, net: nn.Module, s: torch.Tensor) -> torch.Tensor:
        x = torch.randn(len(s), self.data["actions"].shape[1])
        for i in reversed(range(self.n_steps)):
            t = torch.full((len(s),), i, dtype=torch.long)
            x0 = (self.recip[t, None] * x - self.recipm1[t, None] * net(x, t, s)).clamp(-1, 1)
            mean = self.c1[t, None] * x0 + self.c2[t, None] * x
            x = mean + (i > 0) * (0.5 * self.log_var[t, None]).exp() * torch.randn_like(x)
        return x.clamp(-1, 1)

    def step(self) -> None:
        b = self.batch()
        if not self.bc_only:
            self.critic_step(b)
        a, s = b["actions"], b["observations"]
        t = torch.randint(0, self.n_steps, (len(a),))
        eps = torch.randn_like(a)
        x_t = self.sqrt_ab[t, None] * a + self.sqrt_1mab[t, None] * eps
        loss = ((self.actor(x_t, t, s) - eps) ** 2).mean()
        self.finish(loss if self.bc_only else loss + self.q_loss(b))


class NaiveConsistencyAC(_NaiveActorCritic):
    """Consistency-AC's (``bc_only``: Consistency-BC's) update in plain fp32 PyTorch, ``n_steps`` sampling steps."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        width: int,
        depth: int = 4,
        n_steps: int = 2,
        batch_size: int = 256,
        n_rows: int = 100_000,
        seed: int = 0,
        bc_only: bool = False,
        grad_norm: float = 1.0,
    ) -> None:
        super().__init__(obs_dim, act_dim, width, depth, batch_size, n_rows, seed, bc_only, grad_norm)
        self.levels = [80.0] if n_steps == 1 else list(reversed(np.linspace(2.0, 80.0, n_steps).tolist()))

    def f(self, net: nn.Module, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        d = t - 0.002
        return 0.25 / (d**2 + 0.25) * x + 0.5 * d / (t**2 + 0.25) ** 0.5 * net(x, t, s)

    def sample(self, net: nn.Module, s: torch.Tensor) -> torch.Tensor:
        x = torch.randn(len(s), self.data["actions"].shape[1]) * self.levels[0]
        x = self.f(net, x, torch.full((len(s), 1), self.levels[0]), s)
        for tau in self.levels[1:]:
            x = x + (tau**2 - 0.002**2) ** 0.5 * torch.randn_like(x)
            x = self.f(net, x, torch.full((len(s), 1), tau), s)
        return x.clamp(-1, 1)

    def step(self) -> None:
        b = self.batch()
        if not self.bc_only:
            self.critic_step(b)
        a, s = b["actions"], b["observations"]
        n = int(np.ceil(np.sqrt(self.n_step % 50_000 * (150**2 - 4) / 50_000 + 4) - 1) + 1)
        bounds = torch.tensor([(0.002 ** (1 / 7) + i / (n - 1) * (80 ** (1 / 7) - 0.002 ** (1 / 7))) ** 7 for i in range(n)])
        i = torch.randint(0, n - 1, (len(a), 1))
        t1, t2 = bounds[i], bounds[i + 1]
        z = torch.randn_like(a)
        student = self.f(self.actor, a + t2 * z, t2, s)
        with torch.no_grad():
            teacher = self.f(self.ema, a + t1 * z, t1, s)
        loss = (100.0 / (t2 - t1) * (student - teacher) ** 2).mean()
        self.finish(loss if self.bc_only else loss + self.q_loss(b))


def naive_select_action(naive: _NaiveActorCritic, state: np.ndarray, candidates: int = 50) -> np.ndarray:
    """The official ``sample_action`` of Diffusion-QL / Consistency-AC at batch 1: repeat the state ``candidates``
    times, sample one action each, score them with the target critics' min, pick one by a softmax draw."""
    s = torch.as_tensor(state, dtype=torch.float32).reshape(1, -1).repeat_interleave(candidates, 0)
    with torch.no_grad():
        a = naive.sample(naive.actor, s)
        sa = torch.cat([s, a], -1)
        q = torch.min(naive.target_critics[0](sa), naive.target_critics[1](sa)).flatten()
        idx = torch.multinomial(torch.softmax(q, 0), 1)
    return a[idx].cpu().numpy().flatten()
