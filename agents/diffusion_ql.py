"""Diffusion-BC and Diffusion-QL: Wang, Hunt, Zhou, "Diffusion Policies as an Expressive Policy Class for Offline
Reinforcement Learning", ICLR 2023 (arXiv 2208.06193). Official code: ``Zhendong-Wang/Diffusion-Policies-for-Offline-RL``
(``agents/{diffusion,ql_diffusion,bc_diffusion,model,helpers}.py``, ``main.py``).

The policy is a conditional DDPM over actions: ε-prediction, ``N = 5`` steps, the VP schedule
(:func:`agents.core.samplers.vp_beta_schedule`), ancestral sampling with the predicted ``x_0`` clipped to the action
box (:func:`agents.core.samplers.ddpm_sample`). The network ``ε_θ(x_t, t, s)`` is a 3x256 Mish MLP on
``[x_t ‖ emb(t) ‖ s]`` (:class:`agents.core.networks.DenoiserNet`).

* **Diffusion-BC** trains it with the paper's diffusion (BC) loss alone:
  ``L_d(θ) = E_{t ~ U{0..N-1}, ε ~ N(0, I), (s, a) ~ D} ||ε - ε_θ(sqrt(ᾱ_t) a + sqrt(1 - ᾱ_t) ε, t, s)||²``.
* **Diffusion-QL** adds the paper's policy-improvement term ``-α E[Q(s, a^π)]`` with ``α = η / E|Q|``, in the code's
  form:
  ``L_π = L_d + η · (-Q_i(s, a^π) / sg(mean |Q_j(s, a^π)|))``, ``a^π`` sampled through the whole reverse chain
  (gradients flow through all ``N`` steps), ``(i, j)`` = (1, 2) or (2, 1) at random each step. Twin critics are
  trained on ``y = r + γ m min_k Q̄_k(s', a')`` (clipped double Q) with ``a'`` from an **EMA copy of the actor**
  (decay 0.995, updated every 5 steps from step 1000) and Polyak targets (τ = 0.005); optionally the **max-Q backup** (10 actions
  per ``s'``, max per critic, then min). Separate Adams for the actor (``learning_rate``) and the critic (3e-4 always,
  as in the code), both with gradient-norm clipping (``grad_norm``, the code's per-task ``gn``).
* **Acting** (Diffusion-QL): ``K = 50`` candidate actions per state, one drawn with probability
  ``softmax(min(Q_1, Q_2))`` (the code's ``sample_action``, used for every reported score). Diffusion-BC acts with
  one sample, as its code does.

Where this implementation had to choose (also listed in ``choices`` for the model card):

* ``deterministic=True`` feeds zero noise to every step (``x_N = 0``, no ancestral noise) and skips candidate
  selection (all candidates would coincide); the paper's evaluation samples (``deterministic=False``).
* Candidates are scored by the online critic; the code uses its target critic, which lags by the Polyak rate 0.005.
  A checkpoint holds only the online critic (targets are re-initialised from it on load), so with this choice an agent
  acts the same before and after save/load, and evaluation during training matches the published checkpoint.
* ``sampling_steps=k < N`` in ``predict`` runs a respaced chain (evenly spaced subsequence of the ``N`` training steps,
  Nichol & Dhariwal 2021); the paper always samples with the ``N`` steps it trained with. ``k > N`` is refused.
* The EMA actor is a target network: not published, re-initialised from the actor on load, saved in the training state.
  As in the code, it stays at the actor's initial weights until step 1000.
* The random Q1/Q2 role swap draws from torch's RNG (numpy's in the code) so a resumed run replays it exactly.
* The code's ``--lr_decay`` steps a cosine schedule with ``T_max = num_epochs`` once per 50K-step ``train()`` call, so
  over a full run the learning rate falls by 0.1%: not implemented. Nor are the code's offline model selection /
  early stopping (the zoo scores the final checkpoint) and reward rescaling (a dataset transform: antmaze, pen).
* Schedule coefficients are computed in float64 and rounded once (the code rounds the cumulative product to float32;
  the difference is below 1e-6).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from gymnasium import spaces

from agents.core.base import GenerativeAgent, GenerativePolicy
from agents.core.critics import CriticEnsemble, clipped_double_q_target, swapped_normalized_q_loss
from agents.core.networks import DenoiserNet
from agents.core.samplers import DDPMStep, candidate_actions, ddpm_reverse_chain, ddpm_sample, gaussian, vp_beta_schedule

_BIBTEX = (
    "@inproceedings{wang2023diffusion,\n  title={Diffusion Policies as an Expressive Policy Class for Offline Reinforcement "
    "Learning},\n  author={Wang, Zhendong and Hunt, Jonathan J and Zhou, Mingyuan},\n  booktitle={International Conference "
    "on Learning Representations (ICLR)},\n  year={2023}\n}"
)



class DiffusionBCPolicy(GenerativePolicy):
    """The DDPM actor ``ε_θ`` with its schedule and sampler."""

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        action_horizon: int = 1,
        actor_hidden_dims: Sequence[int] = (256, 256, 256),
        diffusion_steps: int = 5,
        candidates: int = 1,
    ) -> None:
        super().__init__(observation_space, action_space, action_horizon)
        self.diffusion_steps = diffusion_steps
        self.candidates = candidates
        self.actor = DenoiserNet(self.obs_dim, self.act_dim, actor_hidden_dims)
        alphas_cumprod = torch.cumprod(1.0 - vp_beta_schedule(diffusion_steps), dim=0)
        self.alphas_cumprod = alphas_cumprod  # float64, for building reverse chains
        # Forward-process coefficients for the BC loss, gathered per row; recomputed from N, so not saved.
        self.register_buffer("sqrt_ab", alphas_cumprod.sqrt().float(), persistent=False)
        self.register_buffer("sqrt_1mab", (1.0 - alphas_cumprod).sqrt().float(), persistent=False)
        self._chains: dict[int, list[DDPMStep]] = {}

    def chain(self, steps: int | None = None) -> list[DDPMStep]:
        """The reverse chain with ``steps`` steps (default ``N``), cached."""
        k = self.diffusion_steps if steps is None else int(steps)
        if k not in self._chains:
            self._chains[k] = ddpm_reverse_chain(self.alphas_cumprod, k)
        return self._chains[k]

    def denoise(
        self, obs: torch.Tensor, noise: Callable[[], torch.Tensor], steps: int | None = None, net: DenoiserNet | None = None
    ) -> torch.Tensor:
        """Actions for ``obs`` by ancestral sampling through ``net`` (default: the actor), clipped to ``[-1, 1]``."""
        net = self.actor if net is None else net
        return ddpm_sample(lambda x, t: net(x, t, obs), noise, self.chain(steps))

    def sample_actions(
        self, obs: torch.Tensor, deterministic: bool = False, sampling_steps: int | None = None, candidates: int | None = None
    ) -> torch.Tensor:
        """One DDPM sample per observation (Diffusion-BC has no critic to choose among candidates)."""
        if candidates not in (None, 1):
            raise ValueError("candidate selection needs a critic: use DiffusionQL, or candidates=1")
        n, dim = obs.shape[0], self.act_dim
        return self.denoise(obs, lambda: self.noise((n, dim), obs.device, deterministic), sampling_steps)


class DiffusionQLPolicy(DiffusionBCPolicy):
    """Diffusion-BC's actor plus its EMA copy, twin critics and their Polyak targets, and candidate selection."""

    target_networks: ClassVar[dict[str, str]] = {"target_critic": "critic", "ema_actor": "actor"}

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        action_horizon: int = 1,
        actor_hidden_dims: Sequence[int] = (256, 256, 256),
        value_hidden_dims: Sequence[int] = (256, 256, 256),
        diffusion_steps: int = 5,
        candidates: int = 50,
    ) -> None:
        super().__init__(observation_space, action_space, action_horizon, actor_hidden_dims, diffusion_steps, candidates)
        self.ema_actor = copy.deepcopy(self.actor)
        # The code's Critic: two 3x256 Mish MLPs, no LayerNorm, nn.Linear init.
        self.critic = CriticEnsemble(
            self.obs_dim, self.act_dim, value_hidden_dims, ensemble=2, layer_norm=False, activation="mish", init="torch"
        )
        self.target_critic = copy.deepcopy(self.critic)

    def sample_actions(
        self, obs: torch.Tensor, deterministic: bool = False, sampling_steps: int | None = None, candidates: int | None = None
    ) -> torch.Tensor:
        """``K`` samples per observation, one kept with probability ``softmax(min(Q_1, Q_2))``."""
        k = 1 if deterministic else (self.candidates if candidates is None else int(candidates))
        return candidate_actions(self, obs, k, lambda o, noise: self.denoise(o, noise, sampling_steps), deterministic)


class DiffusionBC(GenerativeAgent):
    """Diffusion-BC (Wang, Hunt & Zhou, ICLR 2023): a DDPM policy trained by the diffusion loss ``L_d`` alone.

    Args (method-specific; the rest are :class:`GenerativeAgent`'s):
        diffusion_steps: DDPM steps ``N`` for training and sampling (5; ``predict(..., sampling_steps=k)`` respaces
            to ``k <= N``).
        actor_hidden_dims: the trunk of ``ε_θ`` (paper: 3x256; zoo budget: 4x256).
    """

    policy_aliases: ClassVar[dict[str, type]] = {"MlpPolicy": DiffusionBCPolicy}
    policy: DiffusionBCPolicy
    paper: ClassVar[dict[str, str]] = {
        "short": "Wang, Hunt & Zhou, ICLR 2023",
        "title": "Diffusion Policies as an Expressive Policy Class for Offline Reinforcement Learning",
        "arxiv": "2208.06193",
        "setting": "D4RL Gym: 2M gradient steps (1M AntMaze/Adroit/Kitchen), 3x256 Mish MLPs, N=5, batch 256",
        "bibtex": _BIBTEX,
    }
    paper_setting: ClassVar[dict[str, Any]] = {
        "algo_kwargs": {"actor_hidden_dims": [256] * 3, "batch_size": 256, "learning_rate": 3e-4, "diffusion_steps": 5},
        "steps": 2_000_000,
        "checkpoint": "best of the evaluations every 50K steps (online model selection, the code's README) or the "
        "k-th lowest BC loss (offline selection)",
    }
    implementation_notes: ClassVar[list[str]] = [
        "schedule coefficients computed in float64 and rounded once (official: float32 cumulative product; < 1e-6 apart)",
        "Mish computed from sigmoid with an analytic backward (agents/core/networks.py), equal to F.mish to fp32 rounding",
    ]
    choices: ClassVar[list[dict[str, str]]] = [
        {
            "name": "deterministic=True",
            "value": "zero noise at every step",
            "why": "the paper always samples; the zoo protocol records which was used",
        },
        {
            "name": "sampling_steps < N",
            "value": "respaced reverse chain (Nichol & Dhariwal 2021)",
            "why": "the paper samples with the N steps it trained with; k > N is refused",
        },
    ]

    def __init__(
        self,
        policy: str | type[DiffusionBCPolicy] = "MlpPolicy",
        env: Any = None,
        learning_rate: float = 3e-4,
        batch_size: int = 256,
        diffusion_steps: int = 5,
        actor_hidden_dims: Sequence[int] = (256, 256, 256),
        **base_kwargs: Any,
    ) -> None:
        if base_kwargs.get("action_horizon", 1) != 1:
            raise ValueError(f"{type(self).__name__} acts one step at a time (action_horizon=1)")
        self.diffusion_steps = int(diffusion_steps)
        self.actor_hidden_dims = list(actor_hidden_dims)
        super().__init__(policy, env, learning_rate=learning_rate, batch_size=batch_size, **base_kwargs)

    def make_policy(self) -> DiffusionBCPolicy:
        return self.policy_class(
            self.observation_space,
            self.action_space,
            self.action_horizon,
            actor_hidden_dims=self.actor_hidden_dims,
            diffusion_steps=self.diffusion_steps,
        )

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.adam(self.policy.actor.parameters())}

    def sampler_settings(self) -> dict[str, Any]:
        """What ``predict`` does by default (for evaluation records)."""
        return {"sampler": "ddpm", "sampling_steps": self.diffusion_steps, "candidates": 1}

    def bc_loss(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``L_d``: regress ``ε_θ(sqrt(ᾱ_t) a + sqrt(1 - ᾱ_t) ε, t, s)`` onto ``ε``, ``t ~ U{0..N-1}``."""
        pi = self.policy
        t = torch.randint(0, self.diffusion_steps, (actions.shape[0],), device=actions.device)
        eps = torch.randn_like(actions)
        x_t = pi.sqrt_ab[t, None] * actions + pi.sqrt_1mab[t, None] * eps
        return (pi.actor(x_t, t, obs).float() - eps).square().mean()

    def actor_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with self.autocast():
            loss = self.bc_loss(batch["observations"], batch["actions"])
        return loss, {"bc_loss": loss.detach()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One Adam step on the denoising loss (no gradient clipping, as in the code's ``Diffusion_BC``)."""
        loss, info = self.compiled(self.actor_loss)(batch)
        self.optimize(loss, self.optimizers["actor"])
        return info


class DiffusionQL(DiffusionBC):
    """Diffusion-QL (Wang, Hunt & Zhou, ICLR 2023). See the module docstring for the method and its choices.

    Args (method-specific; the rest are :class:`DiffusionBC`'s and :class:`GenerativeAgent`'s):
        eta: weight η of the normalised Q loss (Gym 1.0; per task in ``zoo/hyperparams/diffusionql.yaml``).
        grad_norm: gradient-norm clip of actor and critic (the code's ``gn``, 1-10 per task); None or <= 0: off.
        max_q_backup: the max-Q backup (10 actions per next state; the code uses it on most AntMaze tasks).
        candidates: actions sampled per state when acting, one kept by softmax of Q (50, as in the code).
        critic_learning_rate: the critic's Adam step size (3e-4, fixed in the code whatever ``learning_rate`` is).
        value_hidden_dims: the critics' MLPs (paper: 3x256; zoo budget: 4x256).
        ema_decay, ema_start, ema_every: the EMA actor (0.995, from step 1000, every 5 steps).
    """

    policy_aliases: ClassVar[dict[str, type]] = {"MlpPolicy": DiffusionQLPolicy}
    policy: DiffusionQLPolicy
    paper_setting: ClassVar[dict[str, Any]] = {
        "algo_kwargs": {
            "actor_hidden_dims": [256] * 3,
            "value_hidden_dims": [256] * 3,
            "batch_size": 256,
            "learning_rate": 3e-4,
            "diffusion_steps": 5,
            "candidates": 50,
        },
        "steps": 2_000_000,
        "checkpoint": "best of the evaluations every 50K steps (online model selection, the code's README) or the "
        "k-th lowest BC loss (offline selection)",
    }
    choices: ClassVar[list[dict[str, str]]] = [
        *DiffusionBC.choices,
        {
            "name": "candidate scores",
            "value": "online critic, min of the two heads",
            "why": "the code scores with its target critic (Polyak lag 0.005); a checkpoint holds only the online "
            "critic, so this acts the same before and after save/load",
        },
        {"name": "Q1/Q2 role swap", "value": "torch RNG", "why": "the code draws it from numpy; torch's is restored on resume"},
        {
            "name": "lr_decay",
            "value": "not implemented",
            "why": "the code's cosine schedule steps once per 50K steps with T_max = epochs, changing the rate by 0.1%",
        },
    ]

    def __init__(
        self,
        policy: str | type[DiffusionQLPolicy] = "MlpPolicy",
        env: Any = None,
        learning_rate: float = 3e-4,
        batch_size: int = 256,
        gamma: float = 0.99,
        tau: float = 0.005,
        eta: float = 1.0,
        grad_norm: float | None = 1.0,
        max_q_backup: bool = False,
        candidates: int = 50,
        critic_learning_rate: float = 3e-4,
        diffusion_steps: int = 5,
        actor_hidden_dims: Sequence[int] = (256, 256, 256),
        value_hidden_dims: Sequence[int] = (256, 256, 256),
        ema_decay: float = 0.995,
        ema_start: int = 1000,
        ema_every: int = 5,
        **base_kwargs: Any,
    ) -> None:
        self.eta = float(eta)
        self.grad_norm = grad_norm
        self.max_q_backup = bool(max_q_backup)
        self.candidates = int(candidates)
        self.critic_learning_rate = float(critic_learning_rate)
        self.value_hidden_dims = list(value_hidden_dims)
        self.ema_decay, self.ema_start, self.ema_every = float(ema_decay), int(ema_start), int(ema_every)
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            batch_size=batch_size,
            gamma=gamma,
            tau=tau,
            diffusion_steps=diffusion_steps,
            actor_hidden_dims=actor_hidden_dims,
            **base_kwargs,
        )

    def make_policy(self) -> DiffusionQLPolicy:
        return self.policy_class(
            self.observation_space,
            self.action_space,
            self.action_horizon,
            actor_hidden_dims=self.actor_hidden_dims,
            value_hidden_dims=self.value_hidden_dims,
            diffusion_steps=self.diffusion_steps,
            candidates=self.candidates,
        )

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "actor": self.adam(self.policy.actor.parameters()),
            "critic": self.adam(self.policy.critic.parameters(), lr=self.critic_learning_rate),
        }

    def sampler_settings(self) -> dict[str, Any]:
        return {
            "sampler": "ddpm",
            "sampling_steps": self.diffusion_steps,
            "candidates": self.candidates,
            "candidate_selection": "softmax of min(Q1, Q2)",
        }

    @property
    def max_grad_norm(self) -> float | None:
        return self.grad_norm if self.grad_norm is not None and self.grad_norm > 0 else None

    def critic_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Clipped double Q: ``Σ_k (Q_k(s, a) - r - γ m min_k' Q̄_k'(s', a'))²``, ``a' ~ π_EMA(s')`` (or the max-Q backup)."""
        pi = self.policy
        obs, actions, next_obs = batch["observations"], batch["actions"], batch["next_observations"]
        dim = actions.shape[1]
        with torch.no_grad(), self.autocast():
            target_q = clipped_double_q_target(
                pi.target_critic, next_obs, lambda s: pi.denoise(s, gaussian(len(s), dim, s.device), net=pi.ema_actor),
                batch["rewards"], batch["masks"], self.gamma, self.max_q_backup,
            )
        with self.autocast():
            q = pi.critic(obs, actions).float()
        loss = (q - target_q).square().mean(1).sum()  # MSE(Q1, y) + MSE(Q2, y)
        return loss, {"critic_loss": loss.detach(), "q_mean": q.mean().detach(), "target_q_mean": target_q.mean()}

    def q_loss(self, obs: torch.Tensor) -> torch.Tensor:
        """``-Q_i(s, a^π) / sg(mean |Q_j(s, a^π)|)`` through all N denoising steps of ``a^π`` (critic weights held constant)."""
        pi = self.policy
        with self.autocast():
            qs = pi.critic(obs, pi.denoise(obs, gaussian(len(obs), pi.act_dim, obs.device)), detach_params=True).float()
        return swapped_normalized_q_loss(qs)

    def actor_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L_d + η · (-Q_i(s, a^π) / sg(mean |Q_j(s, a^π)|))`` with ``a^π`` sampled through the chain."""
        obs, actions = batch["observations"], batch["actions"]
        with self.autocast():
            bc_loss = self.bc_loss(obs, actions)
        q_loss = self.q_loss(obs)
        loss = bc_loss + self.eta * q_loss
        return loss, {"actor_loss": loss.detach(), "bc_loss": bc_loss.detach(), "q_loss": q_loss.detach()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The code's order: critic step, then actor step against the updated critic, then EMA and Polyak updates."""
        critic_loss, info = self.compiled(self.critic_loss)(batch)
        self.optimize(critic_loss, self.optimizers["critic"], self.max_grad_norm)
        actor_loss, actor_info = self.compiled(self.actor_loss)(batch)
        self.optimize(actor_loss, self.optimizers["actor"], self.max_grad_norm)
        self.update_ema("ema_actor", self.ema_decay, self.ema_every, self.ema_start)
        self.update_targets(["target_critic"])
        return info | actor_info
