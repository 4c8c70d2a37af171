"""Flow Q-Learning (FQL): Park, Li, Levine, "Flow Q-Learning", ICML 2025 (arXiv 2502.02538).

FQL trains three networks with one Adam optimiser (official code: ``seohongpark/fql``, ``agents/fql.py``):

* a BC flow policy ``v_θ(s, x_t, t)`` by flow matching (Eq. 1), never touched by the RL objective;
* a one-step policy ``μ_ω(s, z)`` that maps noise to an action in one network call, trained to maximise Q while
  staying close to the BC flow's ODE solution from the same noise (distillation, Eq. 7–9);
* twin critics ``Q_φ`` with targets from the one-step policy (Eq. 5), aggregated by mean (min on some tasks).

The deployed policy is ``μ_ω``: acting costs one MLP forward.

Where this implementation had to choose:

* ``deterministic=True`` in ``predict`` feeds ``z = 0`` to ``μ_ω``; the paper's evaluation samples ``z ~ N(0, I)``
  (``deterministic=False``), and the zoo's task protocol records which was used.
* The zoo's standard budget uses 4×256 MLPs instead of the paper's 4×512 (the constructor default is the paper's).
* Gradients of the actor's Q term do not update the critic (the official code evaluates the critic with its
  current parameters as constants); here that is ``critic(..., detach_params=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from gymnasium import spaces

from agents.core.base import GenerativeAgent, GenerativePolicy
from agents.core.critics import CriticEnsemble, aggregate
from agents.core.networks import MLP
from agents.core.samplers import euler_ode


class FQLPolicy(GenerativePolicy):
    """The networks of FQL and its samplers."""

    target_networks: ClassVar[dict[str, str]] = {"target_critic": "critic"}

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        action_horizon: int = 1,
        actor_hidden_dims: Sequence[int] = (512, 512, 512, 512),
        value_hidden_dims: Sequence[int] = (512, 512, 512, 512),
        layer_norm: bool = True,
        actor_layer_norm: bool = False,
        flow_steps: int = 10,
    ) -> None:
        super().__init__(observation_space, action_space, action_horizon)
        obs_dim, act_dim = self.obs_dim, self.act_dim * action_horizon
        self.flow_steps = flow_steps
        self.chunk_dim = act_dim
        # v_θ(s, x_t, t): the BC flow's velocity field; time enters as a raw scalar (no embedding), as in FQL.
        self.actor_bc_flow = MLP(obs_dim + act_dim + 1, actor_hidden_dims, act_dim, layer_norm=actor_layer_norm)
        # μ_ω(s, z): the one-step policy.
        self.actor_onestep_flow = MLP(obs_dim + act_dim, actor_hidden_dims, act_dim, layer_norm=actor_layer_norm)
        self.critic = CriticEnsemble(obs_dim, act_dim, value_hidden_dims, ensemble=2, layer_norm=layer_norm)
        self.target_critic = CriticEnsemble(obs_dim, act_dim, value_hidden_dims, ensemble=2, layer_norm=layer_norm)

    def onestep_actions(self, obs: torch.Tensor, noises: torch.Tensor) -> torch.Tensor:
        """``μ_ω(s, z)`` before clipping."""
        return self.actor_onestep_flow(torch.cat([obs, noises], dim=-1))

    def compute_flow_actions(self, obs: torch.Tensor, noises: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """The BC flow's action: Euler integration of ``v_θ`` from ``noises`` (``flow_steps`` steps), clipped."""

        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.actor_bc_flow(torch.cat([obs, x, t], dim=-1))

        return euler_ode(velocity, noises, self.flow_steps if steps is None else steps)

    def sample_actions(self, obs: torch.Tensor, deterministic: bool = False, **sampler: Any) -> torch.Tensor:
        """The deployed one-step policy ``clip(μ_ω(s, z))``; FQL has no sampling-step knob."""
        if sampler:
            raise TypeError(f"FQL's one-step policy takes no sampler options, got {sorted(sampler)}")
        noises = self.noise((obs.shape[0], self.chunk_dim), obs.device, deterministic)
        return self.onestep_actions(obs, noises).clamp(-1.0, 1.0)


class FQL(GenerativeAgent):
    """Flow Q-Learning (Park, Li, Levine, ICML 2025). See the module docstring for the method and its choices.

    Args (method-specific; the rest are :class:`GenerativeAgent`'s):
        alpha: distillation weight α (Eq. 9); per task in ``zoo/hyperparams/fql.yaml`` (cube-single 300).
        flow_steps: Euler steps of the BC flow (10).
        q_agg: aggregation of the two target Q values, ``"mean"`` (default) or ``"min"``.
        normalize_q_loss: scale the Q term by ``1 / sg(mean |Q|)`` (off in the paper).
        actor_hidden_dims, value_hidden_dims: MLP widths (paper: 4×512; zoo budget: 4×256).
        layer_norm, actor_layer_norm: LayerNorm in critics (True) / actors (False).
    """

    policy_aliases: ClassVar[dict[str, type]] = {"MlpPolicy": FQLPolicy}
    policy: FQLPolicy
    paper: ClassVar[dict[str, str]] = {
        "short": "Park, Li & Levine, ICML 2025",
        "title": "Flow Q-Learning",
        "arxiv": "2502.02538",
        "setting": "1M gradient steps, 4x512 MLPs, 8 seeds, mean of the evaluations at 800K/900K/1M steps",
        "bibtex": "@inproceedings{park2025flow,\n  title={Flow Q-Learning},\n  author={Park, Seohong and Li, Qiyang and "
                  "Levine, Sergey},\n  booktitle={International Conference on Machine Learning (ICML)},\n  year={2025}\n}",
    }
    paper_setting: ClassVar[dict[str, Any]] = {
        "algo_kwargs": {"actor_hidden_dims": [512] * 4, "value_hidden_dims": [512] * 4, "batch_size": 256,
                        "learning_rate": 3e-4, "flow_steps": 10},
        "steps": 1_000_000,
        "seeds": 8,
        "checkpoint": "mean of the evaluations at 800K, 900K and 1M steps",
    }
    implementation_notes: ClassVar[list[str]] = [
        "exact (erf) GELU instead of the tanh approximation of the JAX code (they differ by < 1e-3)",
    ]

    def __init__(
        self,
        policy: str | type[FQLPolicy] = "MlpPolicy",
        env: Any = None,
        learning_rate: float = 3e-4,
        batch_size: int = 256,
        gamma: float = 0.99,
        tau: float = 0.005,
        alpha: float = 10.0,
        flow_steps: int = 10,
        q_agg: str = "mean",
        normalize_q_loss: bool = False,
        actor_hidden_dims: Sequence[int] = (512, 512, 512, 512),
        value_hidden_dims: Sequence[int] = (512, 512, 512, 512),
        layer_norm: bool = True,
        actor_layer_norm: bool = False,
        **base_kwargs: Any,
    ) -> None:
        if q_agg not in ("mean", "min"):
            raise ValueError(f"q_agg must be 'mean' or 'min', got {q_agg!r}")
        if base_kwargs.get("action_horizon", 1) != 1:
            raise ValueError("FQL acts one step at a time (action_horizon=1); chunked flow policies are QAM's")
        self.alpha = alpha
        self.flow_steps = flow_steps
        self.q_agg = q_agg
        self.normalize_q_loss = normalize_q_loss
        self.actor_hidden_dims = list(actor_hidden_dims)
        self.value_hidden_dims = list(value_hidden_dims)
        self.layer_norm = layer_norm
        self.actor_layer_norm = actor_layer_norm
        super().__init__(policy, env, learning_rate=learning_rate, batch_size=batch_size, gamma=gamma, tau=tau,
                         **base_kwargs)

    def sampler_settings(self) -> dict[str, Any]:
        return {"sampler": "one-step policy"}

    def make_policy(self) -> FQLPolicy:
        return self.policy_class(
            self.observation_space,
            self.action_space,
            self.action_horizon,
            actor_hidden_dims=self.actor_hidden_dims,
            value_hidden_dims=self.value_hidden_dims,
            layer_norm=self.layer_norm,
            actor_layer_norm=self.actor_layer_norm,
            flow_steps=self.flow_steps,
        )

    def critic_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. 5: ``(Q_φ(s, a) - r - γ m Q̄(s', clip(μ_ω(s', z))))²`` with twin critics."""
        pi = self.policy
        with torch.no_grad():
            next_noise = torch.randn_like(batch["actions"])
            next_actions = pi.onestep_actions(batch["next_observations"], next_noise).clamp(-1.0, 1.0)
            next_q = aggregate(pi.target_critic(batch["next_observations"], next_actions).float(), self.q_agg)
            target_q = batch["rewards"] + self.gamma * batch["masks"] * next_q
        q = pi.critic(batch["observations"], batch["actions"]).float()
        loss = (q - target_q).square().mean()
        return loss, {"critic_loss": loss.detach(), "q_mean": q.mean().detach()}

    def actor_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """BC flow loss (Eq. 1) + α · distillation loss (Eq. 7) + Q loss (Eq. 9)."""
        pi = self.policy
        obs, actions = batch["observations"], batch["actions"]

        # BC flow loss: regress v_θ(s, x_t, t) onto a - x_0 along x_t = (1 - t) x_0 + t a.
        x_0 = torch.randn_like(actions)
        t = torch.rand((actions.shape[0], 1), device=actions.device)
        x_t = (1 - t) * x_0 + t * actions
        pred = pi.actor_bc_flow(torch.cat([obs, x_t, t], dim=-1)).float()
        bc_flow_loss = (pred - (actions - x_0)).square().mean()

        # Distillation loss: μ_ω(s, z) toward the BC flow's ODE solution from the same z (no gradient to θ).
        noises = torch.randn_like(actions)
        with torch.no_grad():
            target_flow_actions = pi.compute_flow_actions(obs, noises)
        actor_actions = pi.onestep_actions(obs, noises).float()
        distill_loss = (actor_actions - target_flow_actions.float()).square().mean()

        # Q loss: maximise the mean of the two critics at the clipped one-step action (critic weights held fixed).
        qs = pi.critic(obs, actor_actions.clamp(-1.0, 1.0), detach_params=True).float()
        q = qs.mean(0)
        q_loss = -q.mean()
        if self.normalize_q_loss:
            q_loss = q_loss / q.abs().mean().detach()

        loss = bc_flow_loss + self.alpha * distill_loss + q_loss
        return loss, {
            "actor_loss": loss.detach(),
            "bc_flow_loss": bc_flow_loss.detach(),
            "distill_loss": distill_loss.detach(),
            "q_loss": q_loss.detach(),
        }

    def total_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``critic_loss + actor_loss``: the networks' parameter sets are disjoint, so one Adam serves both."""
        with self.autocast():
            critic_loss, critic_info = self.critic_loss(batch)
            actor_loss, actor_info = self.actor_loss(batch)
        return critic_loss + actor_loss, critic_info | actor_info

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One step of FQL's single Adam on the total loss, then the critic's Polyak update."""
        loss, info = self.compiled(self.total_loss)(batch)
        self.optimize(loss, self.optimizers["all"])
        self.update_targets()
        return info
