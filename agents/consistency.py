"""Consistency-BC and Consistency-AC: Ding & Jin, "Consistency Models as a Rich and Efficient Policy Class for
Reinforcement Learning", ICLR 2024 (arXiv 2309.16984). Official code:
``quantumiracle/Consistency_Model_For_Reinforcement_Learning`` (``agents/{consistency,ql_consistency,model,helpers}.py``,
``offline.py``).

The policy is a consistency model over actions (Song et al. 2023) trained by consistency *training* (no diffusion
teacher), as the paper describes it and its code implements it:

* **Model.** ``f_θ(x, τ, s) = c_skip(τ) x + c_out(τ) F_θ(x, τ, s)`` with ``σ_data = 0.5``, ``ε = 0.002``
  (:func:`agents.core.samplers.consistency_scalings`), so ``f_θ(x, ε, s) = x``. ``F_θ`` is a 3x256 Mish MLP on
  ``[x ‖ emb(τ) ‖ s]`` (:class:`agents.core.networks.DenoiserNet`); the LN-ResNet of the code is an ablation switch
  (``backbone="ln_resnet"``).
* **Consistency loss (BC).** On the Karras grid ``ε = τ_0 < ... < τ_{N(k)-1} = T = 80`` (ρ = 7) with the discretisation
  curriculum ``N(k)`` (s0 = 2, s1 = 150), ``n ~ U{0..N(k)-2}``, ``z ~ N(0, I)``:
  ``L = E[λ(τ_n, τ_{n+1}) ||f_θ(a + τ_{n+1} z, τ_{n+1}, s) - sg(f_θ⁻(a + τ_n z, τ_n, s))||²]`` with the **EMA teacher**
  θ⁻ (decay 0.995, every 5 steps from step 1000) and ``λ = k / (τ_{n+1} - τ_n)``, ``k = 100``.
* **Consistency-AC** adds ``η · (-Q_i(s, a^π) / sg(mean |Q_j(s, a^π)|))`` with ``a^π`` from ``N`` consistency sampling
  steps (gradients through all of them), and twin critics trained like Diffusion-QL's (targets from the EMA actor,
  Polyak τ = 0.005, optional max-Q backup and the code's per-task ``q_norm``). Separate Adams for actor
  (``learning_rate``) and critic (3e-4), both with gradient-norm clipping (``grad_norm``, the code's ``gn``).
* **Sampling** with ``N`` steps (2 by default, 5 on some tasks): levels ``linspace(2, 80, N)`` descending,
  ``x = f(T z, T)``, then ``x = f(x + sqrt(τ² - ε²) z, τ)`` (:func:`agents.core.samplers.consistency_sample`). Acting
  (Consistency-AC): 50 candidates, one drawn by ``softmax(min(Q_1, Q_2))``, as in the code's ``sample_action``.

Where this implementation had to choose (also listed in ``choices`` for the model card):

* **Curriculum period.** In the code ``k`` is the iteration index inside one ``train()`` call of 50K steps, so ``N(k)``
  restarts every 50K steps; ``curriculum_steps=50_000`` replicates that (set it to the run length for one sweep).
* **One sampling step** uses the level ``T = 80``; the code's ``linspace(2, 80, 1)`` would give 2 (a one-step sampler
  started from ``N(0, 80²)`` at the wrong level). ``N >= 2`` matches the code exactly.
* **Consistency-BC** has no official script (``offline.py`` always builds Consistency-AC): it is Consistency-AC
  without critic and Q term, keeping the gradient clipping and acting with one sample.
* ``deterministic=True`` feeds zero noise (``x_T = 0``, nothing added between steps) and skips candidate selection.
* Candidates are scored by the online critic (the code: its target critic, Polyak lag 0.005), so an agent acts the
  same before and after save/load (a checkpoint holds only the online critic).
* The EMA teacher/actor is a target network (not published, re-initialised from the actor on load); as in the code it
  keeps the actor's initial weights until step 1000. The Q1/Q2 swap draws from torch's RNG (numpy's in the code).
* The LN-ResNet's Dropout(0.1) is active in training mode (teacher and student alike); the code never ran it.
* Precision: the code is fp32 and so are the zoo's runs. Under ``precision="bf16"`` the loss weight
  ``λ = 100 / Δτ`` (up to ~2.8e5 at the smallest gap) multiplies the rounding of the student-teacher gap, which at small
  τ is itself of the order of bf16's resolution; bf16 training of these two methods is unmeasured.
* Not implemented: ``--lr_decay`` (steps once per 50K steps with ``T_max = epochs``: 0.1% over a run), offline model
  selection, the ``improved_CT`` branch (off in every script), reward rescaling (a dataset transform).
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
from agents.core.samplers import (
    candidate_actions,
    consistency_curriculum,
    consistency_sample,
    consistency_sampling_levels,
    consistency_scalings,
    gaussian,
    karras_boundaries,
)

EPS, T_MAX, RHO, SIGMA_DATA = 0.002, 80.0, 7.0, 0.5  # boundary ε, largest level T, Karras ρ, σ_data (the code's)
T_MIN_SAMPLING = 2.0  # smallest level of multistep sampling (the code's ``min_T``)
CURRICULUM = (2, 150)  # s0, s1 of the discretisation curriculum
_BIBTEX = (
    "@inproceedings{ding2024consistency,\n  title={Consistency Models as a Rich and Efficient Policy Class for "
    "Reinforcement Learning},\n  author={Ding, Zihan and Jin, Chi},\n  booktitle={International Conference on Learning "
    "Representations (ICLR)},\n  year={2024}\n}"
)



class ConsistencyBCPolicy(GenerativePolicy):
    """The consistency actor ``f_θ``, its EMA teacher and the multistep sampler."""

    target_networks: ClassVar[dict[str, str]] = {"ema_actor": "actor"}

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        action_horizon: int = 1,
        actor_hidden_dims: Sequence[int] = (256, 256, 256),
        backbone: str = "mlp",
        sampling_steps: int = 2,
        candidates: int = 1,
    ) -> None:
        super().__init__(observation_space, action_space, action_horizon)
        self.sampling_steps = sampling_steps
        self.candidates = candidates
        self.actor = DenoiserNet(self.obs_dim, self.act_dim, actor_hidden_dims, backbone=backbone)
        self.ema_actor = copy.deepcopy(self.actor)

    def consistency_fn(
        self, x: torch.Tensor, tau: torch.Tensor | float, obs: torch.Tensor, net: DenoiserNet | None = None
    ) -> torch.Tensor:
        """``f(x, τ, s) = c_skip(τ) x + c_out(τ) F(x, τ, s)`` through ``net`` (default: the actor). ``tau``: a float
        shared by the batch, or ``(B, 1)``."""
        net = self.actor if net is None else net
        c_skip, c_out = consistency_scalings(torch.as_tensor(tau, dtype=torch.float32, device=x.device), EPS, SIGMA_DATA)
        return c_skip * x + c_out * net(x, tau, obs).float()

    def sample(
        self, obs: torch.Tensor, noise: Callable[[], torch.Tensor], steps: int | None = None, net: DenoiserNet | None = None
    ) -> torch.Tensor:
        """Multistep consistency sampling with ``steps`` levels (default ``sampling_steps``), clipped to ``[-1, 1]``."""
        levels = consistency_sampling_levels(self.sampling_steps if steps is None else int(steps), T_MAX, T_MIN_SAMPLING)
        return consistency_sample(lambda x, tau: self.consistency_fn(x, tau, obs, net), noise, levels, EPS)

    def sample_actions(
        self, obs: torch.Tensor, deterministic: bool = False, sampling_steps: int | None = None, candidates: int | None = None
    ) -> torch.Tensor:
        """One consistency sample per observation (Consistency-BC has no critic to choose among candidates)."""
        if candidates not in (None, 1):
            raise ValueError("candidate selection needs a critic: use ConsistencyAC, or candidates=1")
        n, dim = obs.shape[0], self.act_dim
        return self.sample(obs, lambda: self.noise((n, dim), obs.device, deterministic), sampling_steps)


class ConsistencyACPolicy(ConsistencyBCPolicy):
    """Consistency-BC's networks plus twin critics, their Polyak targets and candidate selection."""

    target_networks: ClassVar[dict[str, str]] = {"ema_actor": "actor", "target_critic": "critic"}

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        action_horizon: int = 1,
        actor_hidden_dims: Sequence[int] = (256, 256, 256),
        value_hidden_dims: Sequence[int] = (256, 256, 256),
        backbone: str = "mlp",
        sampling_steps: int = 2,
        candidates: int = 50,
    ) -> None:
        super().__init__(observation_space, action_space, action_horizon, actor_hidden_dims, backbone, sampling_steps, candidates)
        # Diffusion-QL's Critic, which the consistency code imports: two 3x256 Mish MLPs, no LayerNorm.
        self.critic = CriticEnsemble(
            self.obs_dim, self.act_dim, value_hidden_dims, ensemble=2, layer_norm=False, activation="mish", init="torch"
        )
        self.target_critic = copy.deepcopy(self.critic)

    def sample_actions(
        self, obs: torch.Tensor, deterministic: bool = False, sampling_steps: int | None = None, candidates: int | None = None
    ) -> torch.Tensor:
        """``K`` samples per observation, one kept with probability ``softmax(min(Q_1, Q_2))``."""
        k = 1 if deterministic else (self.candidates if candidates is None else int(candidates))
        return candidate_actions(self, obs, k, lambda o, noise: self.sample(o, noise, sampling_steps), deterministic)


class ConsistencyBC(GenerativeAgent):
    """Consistency-BC (Ding & Jin, ICLR 2024): a consistency policy trained by the consistency loss alone.

    Args (method-specific; the rest are :class:`GenerativeAgent`'s):
        sampling_steps: consistency sampling steps ``N`` (2; ``predict(..., sampling_steps=k)`` overrides).
        grad_norm: gradient-norm clip of the actor (the code's ``gn``); None or <= 0: off.
        loss_scale: ``k`` of ``λ = k / Δτ`` (100); None: the unscaled mean.
        curriculum_steps: period ``K`` of the discretisation curriculum (50K: the code restarts it every 50K steps).
        backbone: ``"mlp"`` (the code's) or ``"ln_resnet"`` (the code's unused LN-ResNet).
        actor_hidden_dims: width and depth of ``F_θ`` (paper: 3x256; zoo budget: 4x256).
        ema_decay, ema_start, ema_every: the EMA teacher (0.995, from step 1000, every 5 steps).
    """

    policy_aliases: ClassVar[dict[str, type]] = {"MlpPolicy": ConsistencyBCPolicy}
    policy: ConsistencyBCPolicy
    paper: ClassVar[dict[str, str]] = {
        "short": "Ding & Jin, ICLR 2024",
        "title": "Consistency Models as a Rich and Efficient Policy Class for Reinforcement Learning",
        "arxiv": "2309.16984",
        "setting": "D4RL Gym: 2M gradient steps (1M AntMaze/Adroit, 1.5M Kitchen), 3x256 Mish MLPs, N=2, batch 256, 5 seeds",
        "bibtex": _BIBTEX,
    }
    paper_setting: ClassVar[dict[str, Any]] = {
        "algo_kwargs": {"actor_hidden_dims": [256] * 3, "batch_size": 256, "learning_rate": 3e-4, "sampling_steps": 2},
        "steps": 2_000_000,
        "seeds": 5,
        "checkpoint": "the evaluation (every 50K steps) with the k-th lowest BC loss (offline model selection)",
    }
    implementation_notes: ClassVar[list[str]] = [
        "Mish computed from sigmoid with an analytic backward (agents/core/networks.py), equal to F.mish to fp32 rounding",
    ]
    choices: ClassVar[list[dict[str, str]]] = [
        {
            "name": "curriculum period",
            "value": "50K steps (restarts)",
            "why": "the code's k counts steps within a 50K-step train() call",
        },
        {"name": "1-step sampling level", "value": "T = 80", "why": "the code's linspace(2, 80, 1) gives 2"},
        {"name": "Consistency-BC", "value": "Consistency-AC without critic, same clipping", "why": "the code has no BC script"},
        {"name": "deterministic=True", "value": "zero noise", "why": "the paper always samples"},
    ]

    def __init__(
        self,
        policy: str | type[ConsistencyBCPolicy] = "MlpPolicy",
        env: Any = None,
        learning_rate: float = 3e-4,
        batch_size: int = 256,
        sampling_steps: int = 2,
        grad_norm: float | None = 1.0,
        loss_scale: float | None = 100.0,
        curriculum_steps: int = 50_000,
        backbone: str = "mlp",
        actor_hidden_dims: Sequence[int] = (256, 256, 256),
        ema_decay: float = 0.995,
        ema_start: int = 1000,
        ema_every: int = 5,
        **base_kwargs: Any,
    ) -> None:
        if base_kwargs.get("action_horizon", 1) != 1:
            raise ValueError(f"{type(self).__name__} acts one step at a time (action_horizon=1)")
        if backbone not in ("mlp", "ln_resnet"):
            raise ValueError(f"backbone must be 'mlp' or 'ln_resnet', got {backbone!r}")
        self.sampling_steps = int(sampling_steps)
        self.grad_norm = grad_norm
        self.loss_scale = loss_scale
        self.curriculum_steps = int(curriculum_steps)
        self.backbone = backbone
        self.actor_hidden_dims = list(actor_hidden_dims)
        self.ema_decay, self.ema_start, self.ema_every = float(ema_decay), int(ema_start), int(ema_every)
        self._boundaries: dict[int, torch.Tensor] = {}
        super().__init__(policy, env, learning_rate=learning_rate, batch_size=batch_size, **base_kwargs)

    def make_policy(self) -> ConsistencyBCPolicy:
        return self.policy_class(
            self.observation_space,
            self.action_space,
            self.action_horizon,
            actor_hidden_dims=self.actor_hidden_dims,
            backbone=self.backbone,
            sampling_steps=self.sampling_steps,
        )

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.adam(self.policy.actor.parameters())}

    def sampler_settings(self) -> dict[str, Any]:
        """What ``predict`` does by default (for evaluation records)."""
        return {"sampler": "consistency", "sampling_steps": self.sampling_steps, "candidates": 1}

    @property
    def max_grad_norm(self) -> float | None:
        return self.grad_norm if self.grad_norm is not None and self.grad_norm > 0 else None

    def noise_levels(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(τ_i, τ_{i+1})`` per row, ``i ~ U{0..N(k)-2}`` on the Karras grid of the curriculum's ``N(k)``.

        Drawn outside the (optionally compiled) loss, so the changing ``N(k)`` does not recompile it.
        """
        k = self._n_updates % self.curriculum_steps
        n_levels = consistency_curriculum(k, self.curriculum_steps, *CURRICULUM)
        if n_levels not in self._boundaries:
            self._boundaries[n_levels] = karras_boundaries(n_levels, EPS, T_MAX, RHO).float()
        b = self._boundaries[n_levels].to(device)
        i = torch.randint(0, n_levels - 1, (n, 1), device=device)
        return b[i], b[i + 1]

    def bc_loss(
        self, obs: torch.Tensor, actions: torch.Tensor, tau_lo: torch.Tensor, tau_hi: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The consistency loss: ``(λ-scaled, unscaled)`` mean of ``||f_θ(a + τ_hi z, τ_hi) - sg(f_θ⁻(a + τ_lo z, τ_lo))||²``."""
        pi = self.policy
        z = torch.randn_like(actions)
        student = pi.consistency_fn(actions + tau_hi * z, tau_hi, obs)
        with torch.no_grad():
            teacher = pi.consistency_fn(actions + tau_lo * z, tau_lo, obs, net=pi.ema_actor)
        per_dim = (student - teacher).square()  # (B, A)
        raw = per_dim.mean()
        if self.loss_scale is None:
            return raw, raw
        # λ = k / Δτ (the code's "simple fix for scale issue"): the gaps near ε are tiny, and so are their errors.
        return (self.loss_scale / (tau_hi - tau_lo) * per_dim).mean(), raw

    def actor_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with self.autocast():
            loss, raw = self.bc_loss(batch["observations"], batch["actions"], batch["tau_lo"], batch["tau_hi"])
        return loss, {"bc_loss": loss.detach(), "consistency_loss": raw.detach()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        tau_lo, tau_hi = self.noise_levels(len(batch["actions"]), batch["actions"].device)
        batch = batch | {"tau_lo": tau_lo, "tau_hi": tau_hi}
        loss, info = self.compiled(self.actor_loss)(batch)
        self.optimize(loss, self.optimizers["actor"], self.max_grad_norm)
        self.update_ema("ema_actor", self.ema_decay, self.ema_every, self.ema_start)
        return info


class ConsistencyAC(ConsistencyBC):
    """Consistency-AC (Ding & Jin, ICLR 2024). See the module docstring for the method and its choices.

    Args (method-specific; the rest are :class:`ConsistencyBC`'s and :class:`GenerativeAgent`'s):
        eta: weight η of the normalised Q loss (Gym 1.0 or 0.1; per task in ``zoo/hyperparams/consistencyac.yaml``).
        max_q_backup: the max-Q backup (10 actions per next state).
        q_norm: divide the TD target by its batch std (the code's per-task ``q_norm``).
        candidates: actions sampled per state when acting, one kept by softmax of Q (50, as in the code).
        critic_learning_rate: the critic's Adam step size (3e-4, fixed in the code).
        value_hidden_dims: the critics' MLPs (paper: 3x256; zoo budget: 4x256).
    """

    policy_aliases: ClassVar[dict[str, type]] = {"MlpPolicy": ConsistencyACPolicy}
    policy: ConsistencyACPolicy
    paper_setting: ClassVar[dict[str, Any]] = {
        "algo_kwargs": {
            "actor_hidden_dims": [256] * 3,
            "value_hidden_dims": [256] * 3,
            "batch_size": 256,
            "learning_rate": 3e-4,
            "sampling_steps": 2,
            "candidates": 50,
        },
        "steps": 2_000_000,
        "seeds": 5,
        "checkpoint": "the evaluation (every 50K steps) with the k-th lowest BC loss (offline model selection)",
    }
    choices: ClassVar[list[dict[str, str]]] = [
        *ConsistencyBC.choices,
        {
            "name": "candidate scores",
            "value": "online critic, min of the two heads",
            "why": "the code scores with its target critic (Polyak lag 0.005); a checkpoint holds only the online "
            "critic, so this acts the same before and after save/load",
        },
        {"name": "Q1/Q2 role swap", "value": "torch RNG", "why": "the code draws it from numpy; torch's is restored on resume"},
        {"name": "lr_decay, improved_CT, reward rescaling", "value": "not implemented",
         "why": "the code's cosine schedule steps once per 50K steps with T_max = epochs (0.1% over a run); improved_CT "
                "is off in every script; reward rescaling is a dataset transform none of the zoo's tasks use"},
    ]

    def __init__(
        self,
        policy: str | type[ConsistencyACPolicy] = "MlpPolicy",
        env: Any = None,
        learning_rate: float = 3e-4,
        batch_size: int = 256,
        gamma: float = 0.99,
        tau: float = 0.005,
        eta: float = 1.0,
        max_q_backup: bool = False,
        q_norm: bool = False,
        candidates: int = 50,
        critic_learning_rate: float = 3e-4,
        value_hidden_dims: Sequence[int] = (256, 256, 256),
        **bc_kwargs: Any,
    ) -> None:
        self.eta = float(eta)
        self.max_q_backup = bool(max_q_backup)
        self.q_norm = bool(q_norm)
        self.candidates = int(candidates)
        self.critic_learning_rate = float(critic_learning_rate)
        self.value_hidden_dims = list(value_hidden_dims)
        super().__init__(policy, env, learning_rate=learning_rate, batch_size=batch_size, gamma=gamma, tau=tau, **bc_kwargs)

    def make_policy(self) -> ConsistencyACPolicy:
        return self.policy_class(
            self.observation_space,
            self.action_space,
            self.action_horizon,
            actor_hidden_dims=self.actor_hidden_dims,
            value_hidden_dims=self.value_hidden_dims,
            backbone=self.backbone,
            sampling_steps=self.sampling_steps,
            candidates=self.candidates,
        )

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "actor": self.adam(self.policy.actor.parameters()),
            "critic": self.adam(self.policy.critic.parameters(), lr=self.critic_learning_rate),
        }

    def sampler_settings(self) -> dict[str, Any]:
        return {
            "sampler": "consistency",
            "sampling_steps": self.sampling_steps,
            "candidates": self.candidates,
            "candidate_selection": "softmax of min(Q1, Q2)",
        }

    def critic_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``Σ_k (Q_k(s, a) - y)²``, ``y = r + γ m min_k' Q̄_k'(s', a')``, ``a' ~ π_EMA(s')`` (optionally ``y / std(y)``)."""
        pi = self.policy
        obs, actions, next_obs = batch["observations"], batch["actions"], batch["next_observations"]
        dim = actions.shape[1]
        with torch.no_grad(), self.autocast():
            target_q = clipped_double_q_target(
                pi.target_critic, next_obs, lambda s: pi.sample(s, gaussian(len(s), dim, s.device), net=pi.ema_actor),
                batch["rewards"], batch["masks"], self.gamma, self.max_q_backup,
            )
            if self.q_norm:
                target_q = target_q / (target_q.std() + 1e-6)
        with self.autocast():
            q = pi.critic(obs, actions).float()
        loss = (q - target_q).square().mean(1).sum()  # MSE(Q1, y) + MSE(Q2, y)
        return loss, {"critic_loss": loss.detach(), "q_mean": q.mean().detach(), "target_q_mean": target_q.mean()}

    def q_loss(self, obs: torch.Tensor) -> torch.Tensor:
        """``-Q_i(s, a^π) / sg(mean |Q_j(s, a^π)|)`` through the N sampling steps of ``a^π`` (critic weights held constant)."""
        pi = self.policy
        with self.autocast():
            qs = pi.critic(obs, pi.sample(obs, gaussian(len(obs), pi.act_dim, obs.device)), detach_params=True).float()
        return swapped_normalized_q_loss(qs)

    def actor_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``λ``-scaled consistency loss ``+ η · (-Q_i(s, a^π) / sg(mean |Q_j(s, a^π)|))``, ``a^π`` from ``N`` steps."""
        obs, actions = batch["observations"], batch["actions"]
        with self.autocast():
            bc_loss, raw = self.bc_loss(obs, actions, batch["tau_lo"], batch["tau_hi"])
        q_loss = self.q_loss(obs)
        loss = bc_loss + self.eta * q_loss
        return loss, {
            "actor_loss": loss.detach(),
            "bc_loss": bc_loss.detach(),
            "consistency_loss": raw.detach(),
            "q_loss": q_loss.detach(),
        }

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The code's order: critic step, then actor step against the updated critic, then EMA and Polyak updates."""
        critic_loss, info = self.compiled(self.critic_loss)(batch)
        self.optimize(critic_loss, self.optimizers["critic"], self.max_grad_norm)
        tau_lo, tau_hi = self.noise_levels(len(batch["actions"]), batch["actions"].device)
        actor_loss, actor_info = self.compiled(self.actor_loss)(batch | {"tau_lo": tau_lo, "tau_hi": tau_hi})
        self.optimize(actor_loss, self.optimizers["actor"], self.max_grad_norm)
        self.update_ema("ema_actor", self.ema_decay, self.ema_every, self.ema_start)
        self.update_targets(["target_critic"])
        return info | actor_info
