"""Q-learning with Adjoint Matching (QAM) and its trust-region variant TRQAM.

* QAM: Li & Levine, "Q-learning with Adjoint Matching", ICLR 2026 (arXiv 2601.14234); official code
  ``ColinQiyangLi/qam`` (``agents/qam.py``).
* TRQAM: Dong et al., "Trust Region Q-Adjoint Matching" (arXiv 2605.27079); official code ``yonghdong/trqam``
  (``agents/trqam.py``).

QAM tilts a behaviour flow policy toward ``π*(a|s) ∝ π_β(a|s) exp(τ Q(s, a))`` (Sec. 3) with four networks:

* ``v_β`` (``actor_slow``): a BC flow trained by flow matching on the data, all the time (Eq. L_FM);
* ``v̄_β`` (``target_actor_slow``): its EMA, the *base* velocity field of the adjoint-matching loss;
* ``v_θ`` (``actor_fast``): the fine-tuned flow, the deployed policy (Euler ODE from ``z ~ N(0, I)``);
* a ``K = 10`` critic ensemble with targets ``mean - ρ·std`` over the target ensemble at ``a' ~ v_θ``.

One step of the actor (Sec. 4, and the discretisation of the code's ``adj_matching``, ``h = 1/T``):

1. roll out the memoryless SDE ``x_{i+1} = x_i + h(2 v_θ(x_i, t_i) - x_i/(t_i+h)) + √h g_i ε`` with
   ``g_i = √(2(1 - t_i + h)/(t_i + h))``, the last step a deterministic Euler step of the base;
2. the lean adjoint ``ã_T = -τ ∇_a mean_k Q̄_k(s, clip(x_T))`` propagated back by vector-Jacobian products through
   the base only: ``ã_i = ã_{i+1} + h · VJP[2 v̄_β(s, ·, t_i + h) - x/(t_i + h)](x_i)ᵀ ã_{i+1}``;
3. the adjoint-matching loss ``Σ_i ‖2(v_θ - v̄_β)(x_i, t_i)/σ_i + σ_i ã_i‖²`` (trajectories and adjoints
   constants), with ``σ_i = g_i`` for QAM.

Everything (critic, BC flow, adjoint matching) is one loss under one Adam with global-norm clipping at 1.

TRQAM keeps the rollout and the adjoint (started at ``-∇Q̄`` with no temperature) and puts a trust-region scalar
in the loss: ``σ_i = g_i / √λ_eff`` with ``λ_eff = lam_scale · λ``; the path-space KL to the base (Theorem 1, its
Euler estimator ``Σ_i 2h/g_i² ‖v_θ - v̄_β‖²`` per environment action) is clipped at ``2ε``, smoothed by an EMA,
and drives the projected dual update ``λ ← clip(λ + η_λ(D̄ - ε), λ_min, λ_max)`` after every step. Minimising the
loss gives ``v_θ - v̄_β = -g² ã / (2 λ_eff)``: ``λ_eff`` acts as a temperature that the dual update raises when the
policy strays beyond the KL budget ``ε``.

Where the code and the papers differ, this follows the code (../shared/reference/METHODS.md §2-3): global-norm (not
element-wise) gradient clipping; a population std in the pessimistic target; the time shift ``t + h`` in the
adjoint's VJP; λ does not scale TRQAM's sampling noise.

QAM-F (``fql_alpha > 0``, the code's flag) adds a one-step policy distilled from ``v_θ``'s ODE with an FQL-style
``-Q`` term; it becomes the deployed policy and the critic's target sampler. QAM-E (``edit_scale > 0``) adds a
tanh-Gaussian edit of the flow's chunk, bounded by ``edit_scale``, trained to raise Q with an automatically tuned
entropy bonus; acting and critic targets use the edited chunk.

Both support action chunks (``action_horizon`` H: 5 on manipulation, 1 on navigation), with chunked ``H``-step TD
targets (``agents.core.buffers.chunk_td_terms``), and the two-stage pipeline of TRQAM's code: flow-matching
pretraining with ``bc_only=True``, then :meth:`QAM.init_from_bc` loads that BC flow into base, fine-tuned and
target actors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from gymnasium import spaces

import hub
from agents.core.base import GenerativeAgent, GenerativePolicy
from agents.core.buffers import chunk_td_terms
from agents.core.critics import CriticEnsemble, aggregate
from agents.core.networks import MLP
from agents.core.samplers import euler_ode


def memoryless_noise_scale(t: torch.Tensor, h: float) -> torch.Tensor:
    """``g(t) = √(2(1 - t)/t)``, the memoryless schedule of flow matching, evaluated at ``t + h`` as the code does
    (the shift keeps it finite at ``t = 0``)."""
    return torch.sqrt(2 * (1 - t + h) / (t + h))


def lean_adjoints(drift: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], xs: Sequence[torch.Tensor],
                  ts: Sequence[torch.Tensor], terminal: torch.Tensor, h: float) -> list[torch.Tensor]:
    """The lean adjoint ODE (QAM Sec. 4) integrated backward by Euler steps, as the code's ``adj_matching`` does:
    ``ã_i = ã_{i+1} + h · (∂ drift(x, t_i + h) / ∂x |_{x_i})ᵀ ã_{i+1}`` from ``ã_T = terminal``, one vector-Jacobian
    product per step (``drift`` should treat its network weights as constants). Returns ``[ã_0, ..., ã_{T-1}]``."""
    adj, out = terminal, list(xs)
    with torch.enable_grad():
        for i in reversed(range(len(xs))):
            x_i = xs[i].detach().requires_grad_(True)
            adj = adj + h * torch.autograd.grad(drift(x_i, ts[i] + h), x_i, grad_outputs=adj)[0]
            out[i] = adj
    return out


class QAMPolicy(GenerativePolicy):
    """The networks of QAM / TRQAM: BC flow ``actor_slow`` (+ EMA target), fine-tuned flow ``actor_fast``, and a
    ``num_qs``-member critic ensemble (+ target). ``acting_network`` is the flow ``predict`` integrates."""

    target_networks: ClassVar[dict[str, str]] = {"target_critic": "critic", "target_actor_slow": "actor_slow"}

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        action_horizon: int = 1,
        actor_hidden_dims: Sequence[int] = (512, 512, 512, 512),
        value_hidden_dims: Sequence[int] = (512, 512, 512, 512),
        value_layer_norm: bool = True,
        actor_layer_norm: bool = False,
        num_qs: int = 10,
        flow_steps: int = 10,
        acting_network: str = "actor_fast",
        one_step_actor: bool = False,
        edit_scale: float = 0.0,
    ) -> None:
        super().__init__(observation_space, action_space, action_horizon)
        obs_dim, chunk_dim = self.obs_dim, self.act_dim * action_horizon
        self.chunk_dim, self.flow_steps, self.acting_network = chunk_dim, flow_steps, acting_network
        # Velocity fields v(s, x_t, t) over the whole chunk; time enters as a raw scalar, as in the code.
        for name in ("actor_slow", "target_actor_slow", "actor_fast"):
            setattr(self, name, MLP(obs_dim + chunk_dim + 1, actor_hidden_dims, chunk_dim, layer_norm=actor_layer_norm))
        if one_step_actor:  # QAM-F: μ_ω(s, z), distilled from the fine-tuned flow, is the deployed policy
            self.one_step_actor = MLP(obs_dim + chunk_dim, actor_hidden_dims, chunk_dim, layer_norm=actor_layer_norm)
            self.acting_network = "one_step_actor"
        self.edit_scale = edit_scale
        if edit_scale > 0:  # QAM-E: a tanh-Gaussian edit Δa(s, a) of the flow's chunk, |Δa| <= edit_scale
            self.edit_actor = MLP(obs_dim + chunk_dim, [*actor_hidden_dims], 2 * chunk_dim, layer_norm=actor_layer_norm)
            self.edit_log_alpha = torch.nn.Parameter(torch.zeros(()))  # SAC-style temperature, starts at 1
        self.critic = CriticEnsemble(obs_dim, chunk_dim, value_hidden_dims, ensemble=num_qs, layer_norm=value_layer_norm)
        self.target_critic = CriticEnsemble(obs_dim, chunk_dim, value_hidden_dims, ensemble=num_qs,
                                            layer_norm=value_layer_norm)

    @staticmethod
    def velocity(net: MLP, obs: torch.Tensor, x: torch.Tensor, t: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        return net(torch.cat([obs, x, t], dim=-1), detach_params=detach_params)

    def flow_actions(self, obs: torch.Tensor, noise: torch.Tensor, network: str, steps: int | None = None) -> torch.Tensor:
        """Euler ODE of the flow ``network`` from ``noise`` (``flow_steps`` steps), clipped to the action box."""
        net = getattr(self, network)
        return euler_ode(lambda x, t: self.velocity(net, obs, x, t), noise, self.flow_steps if steps is None else steps)

    def edit(self, obs: torch.Tensor, actions: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """QAM-E's edit ``Δa = tanh(u)``, ``u ~ N(μ, σ²)`` given the flow's chunk (the mode when ``deterministic``),
        and its log-density (fp32, with the tanh correction)."""
        mean, log_std = self.edit_actor(torch.cat([obs, actions], dim=-1)).float().chunk(2, dim=-1)
        std = log_std.clamp(-20.0, 2.0).exp()
        u = mean if deterministic else mean + std * torch.randn_like(mean)
        log_prob = (torch.distributions.Normal(mean, std).log_prob(u) - (2 * (math.log(2.0) - u - F.softplus(-2 * u)))).sum(-1)
        return torch.tanh(u), log_prob

    def act(self, obs: torch.Tensor, noise: torch.Tensor, steps: int | None = None, deterministic: bool = False) -> torch.Tensor:
        """The deployed policy on given noise: the acting flow's ODE (plus QAM-E's edit), or QAM-F's one-step actor;
        clipped to the action box."""
        if self.acting_network == "one_step_actor":
            return self.one_step_actor(torch.cat([obs, noise], dim=-1)).clamp(-1.0, 1.0)
        actions = self.flow_actions(obs, noise, self.acting_network, steps)
        if self.edit_scale > 0 and self.acting_network == "actor_fast":
            actions = (actions + self.edit_scale * self.edit(obs, actions, deterministic)[0]).clamp(-1.0, 1.0)
        return actions

    def sample_actions(self, obs: torch.Tensor, deterministic: bool = False, sampling_steps: int | None = None,
                       **sampler: Any) -> torch.Tensor:
        """A chunk from the deployed policy (``z = 0`` when ``deterministic``); ``sampling_steps`` overrides the
        number of Euler steps of a flow (10 by default, as trained)."""
        if sampler:
            raise TypeError(f"QAM's sampler takes only sampling_steps, got {sorted(sampler)}")
        noise = self.noise((obs.shape[0], self.chunk_dim), obs.device, deterministic)
        return self.act(obs, noise, sampling_steps, deterministic)


class QAM(GenerativeAgent):
    """Q-learning with Adjoint Matching (Li & Levine, ICLR 2026). See the module docstring for the method.

    Args (method-specific; the rest are :class:`GenerativeAgent`'s, e.g. ``action_horizon``):
        inv_temp: inverse temperature τ of the tilt ``exp(τ Q)`` (per domain in ``zoo/hyperparams/qam.yaml``).
        rho: pessimism ρ of the critic target ``mean - ρ·std``.
        num_qs: critic ensemble size K.
        flow_steps: Euler / SDE steps T of the flows.
        max_grad_norm: global-norm clip of the joint gradient (None: off).
        fql_alpha: QAM-F when > 0: a one-step policy ``μ_ω(s, z)`` trained with ``-Q + α‖μ_ω(s, z) - ODE_θ(z)‖²``
            (the code's ``fql_alpha``; 300 on scene in its sweep) becomes the deployed policy and the critic's
            target sampler.
        edit_scale: QAM-E when > 0: a tanh-Gaussian edit policy ``Δa(s, a)`` added to the flow's chunk (scaled by
            ``edit_scale``), trained with ``-Q(s, a + Δa) + α log π(Δa)`` and α tuned toward the entropy
            ``-edit_target_entropy_multiplier · dim`` (the code's defaults: 0.5 x the chunk dimension).
        bc_only: flow-matching pretraining only (stage 1 of TRQAM's pipeline): no critic, no adjoint, no target
            updates, and ``predict`` integrates the BC flow.
        sparse_reward: train on ``-1[r != 0]`` (QAM's setting for scene and puzzle).
        clip_adjoint: clip the action to the box before taking the critic's gradient (the code's ``clip_adj``).
        adjoint_critic: ``"target_critic"`` (code default) or ``"critic"`` for the terminal adjoint.
        base_network: ``"target_actor_slow"`` (code default: the EMA of the BC flow) or ``"actor_slow"``.
        actor_hidden_dims, value_hidden_dims: MLP widths (paper 4×512; zoo budget 4×256).
        value_layer_norm, actor_layer_norm: LayerNorm in critics (on) and actors (off).
    """

    policy_aliases: ClassVar[dict[str, type]] = {"MlpPolicy": QAMPolicy}
    policy: QAMPolicy
    paper: ClassVar[dict[str, str]] = {
        "short": "Li & Levine, ICLR 2026",
        "title": "Q-learning with Adjoint Matching",
        "arxiv": "2601.14234",
        "setting": "1M gradient steps, 4x512 MLPs, K=10 critics, action chunks of 5 on manipulation, 12 seeds",
        "bibtex": "@inproceedings{li2026qam,\n  title={Q-learning with Adjoint Matching},\n  author={Li, Qiyang and "
                  "Levine, Sergey},\n  booktitle={International Conference on Learning Representations (ICLR)},\n"
                  "  year={2026}\n}",
    }
    paper_setting: ClassVar[dict[str, Any]] = {
        "algo_kwargs": {"actor_hidden_dims": [512] * 4, "value_hidden_dims": [512] * 4, "batch_size": 256,
                        "learning_rate": 3e-4, "flow_steps": 10, "num_qs": 10},
        "steps": 1_000_000,
        "seeds": 12,
        "checkpoint": "the evaluation at 1M steps",
    }
    implementation_notes: ClassVar[list[str]] = [
        "follows the official code where it differs from the paper: global-norm gradient clipping at 1, population "
        "std in the pessimistic target, adjoint VJPs at t + h",
        "exact (erf) GELU instead of the tanh approximation of the JAX code (they differ by < 1e-3)",
        "predict(deterministic=True) integrates the flow from z = 0; the paper's evaluation samples z ~ N(0, I)",
    ]

    def __init__(
        self,
        policy: str | type[QAMPolicy] = "MlpPolicy",
        env: Any = None,
        learning_rate: float = 3e-4,
        batch_size: int = 256,
        gamma: float = 0.99,
        tau: float = 0.005,
        inv_temp: float = 0.3,
        rho: float = 0.5,
        num_qs: int = 10,
        flow_steps: int = 10,
        max_grad_norm: float | None = 1.0,
        fql_alpha: float = 0.0,
        edit_scale: float = 0.0,
        edit_target_entropy_multiplier: float = 0.5,
        bc_only: bool = False,
        sparse_reward: bool = False,
        clip_adjoint: bool = True,
        adjoint_critic: str = "target_critic",
        base_network: str = "target_actor_slow",
        actor_hidden_dims: Sequence[int] = (512, 512, 512, 512),
        value_hidden_dims: Sequence[int] = (512, 512, 512, 512),
        value_layer_norm: bool = True,
        actor_layer_norm: bool = False,
        **base_kwargs: Any,
    ) -> None:
        if adjoint_critic not in ("target_critic", "critic"):
            raise ValueError(f"adjoint_critic must be 'target_critic' or 'critic', got {adjoint_critic!r}")
        if base_network not in ("target_actor_slow", "actor_slow"):
            raise ValueError(f"base_network must be 'target_actor_slow' or 'actor_slow', got {base_network!r}")
        if flow_steps < 2:
            raise ValueError(f"flow_steps must be >= 2 (the last SDE step is the base's ODE step), got {flow_steps}")
        self.inv_temp, self.rho, self.num_qs, self.flow_steps = inv_temp, rho, num_qs, flow_steps
        self.max_grad_norm, self.bc_only, self.sparse_reward = max_grad_norm, bc_only, sparse_reward
        if fql_alpha > 0 and edit_scale > 0:
            raise ValueError("QAM-F (fql_alpha > 0) and QAM-E (edit_scale > 0) are exclusive, as in the code")
        self.fql_alpha, self.edit_scale = fql_alpha, edit_scale
        self.edit_target_entropy_multiplier = edit_target_entropy_multiplier
        self.clip_adjoint, self.adjoint_critic, self.base_network = clip_adjoint, adjoint_critic, base_network
        self.actor_hidden_dims, self.value_hidden_dims = list(actor_hidden_dims), list(value_hidden_dims)
        self.value_layer_norm, self.actor_layer_norm = value_layer_norm, actor_layer_norm
        super().__init__(policy, env, learning_rate=learning_rate, batch_size=batch_size, gamma=gamma, tau=tau,
                         **base_kwargs)

    def sampler_settings(self) -> dict[str, Any]:
        if self.policy.acting_network == "one_step_actor":
            return {"sampler": "one-step actor (QAM-F)"}
        if self.policy.edit_scale > 0:
            return {"sampler": f"Euler ODE of actor_fast + edit (QAM-E, scale {self.edit_scale})",
                    "sampling_steps": self.flow_steps}
        return {"sampler": f"Euler ODE of {self.policy.acting_network}", "sampling_steps": self.flow_steps}

    def make_policy(self) -> QAMPolicy:
        return self.policy_class(
            self.observation_space, self.action_space, self.action_horizon,
            actor_hidden_dims=self.actor_hidden_dims, value_hidden_dims=self.value_hidden_dims,
            value_layer_norm=self.value_layer_norm, actor_layer_norm=self.actor_layer_norm, num_qs=self.num_qs,
            flow_steps=self.flow_steps, acting_network="actor_slow" if self.bc_only else "actor_fast",
            one_step_actor=self.fql_alpha > 0 and not self.bc_only, edit_scale=0.0 if self.bc_only else self.edit_scale,
        )

    # ------------------------------------------------------------------ stage 2 of the pipeline
    def init_from_bc(self, path: str | Path) -> None:
        """Load the BC flow (``actor_slow``) of a ``bc_only`` checkpoint into base, fine-tuned and target actors,
        as TRQAM's ``main.py --pretrained_actor_path`` does. The critic starts fresh."""
        tensors, config = hub.read_checkpoint(path)
        prefix = "actor_slow."
        bc = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not bc:
            raise hub.CheckpointError(
                f"{path} holds no BC flow (actor_slow.*): pretrain one with `genzoo train qam TASK --bc-only`")
        horizon = (config.get("algo_kwargs") or {}).get("action_horizon", 1)
        if horizon != self.action_horizon:
            raise hub.CheckpointError(
                f"{path} was pretrained with action_horizon={horizon}, this agent uses {self.action_horizon}")
        for name in ("actor_slow", "target_actor_slow", "actor_fast"):
            net = getattr(self.policy, name)
            expected = net.state_dict()
            bad = [k for k in expected if k not in bc or bc[k].shape != expected[k].shape]
            if bad:
                raise hub.CheckpointError(
                    f"the BC flow in {path} does not fit this agent's actor ({bad[:3]}...): pretrain with the same "
                    "actor_hidden_dims, actor_layer_norm and action_horizon")
            net.load_state_dict({k: v.to(self.device) for k, v in bc.items()})
        for name in ("obs_mean", "obs_std"):
            if name in tensors:
                getattr(self.policy, name).copy_(tensors[name])
        self.config["base_model"] = str(path)

    # ------------------------------------------------------------------ losses
    def critic_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(Q_k(s, a_{0:H}) - y)²`` with ``y = Σ γ^i r_i + γ^H m (mean_k - ρ std_k) Q̄_k(s_{+H}, a')``,
        ``a' ~ v_θ``, rows whose chunk crosses a trajectory end weighted 0 (the code's ``valid``)."""
        pi = self.policy
        obs, next_obs = batch["observations"], batch["next_observations"]
        actions = batch["actions"].reshape(obs.shape[0], -1)
        returns, discount, weight = chunk_td_terms(batch, self.gamma)
        with torch.no_grad():
            next_actions = pi.act(next_obs, torch.randn_like(actions))  # v_θ's ODE (QAM-F: the one-step actor)
            next_q = aggregate(pi.target_critic(next_obs, next_actions).float(), "pessimistic", self.rho)
            target_q = returns + discount * next_q
        q = pi.critic(obs, actions).float()
        loss = ((q - target_q).square() * weight).mean()
        return loss, {"critic_loss": loss.detach(), "q_mean": q.mean().detach()}

    def flow_bc_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Flow matching of ``v_β`` on the data's chunks: ``‖v_β(s, (1-t)z + t a, t) - (a - z)‖²``."""
        obs = batch["observations"]
        actions = batch["actions"].reshape(obs.shape[0], -1)
        weight = batch["valid"][:, -1] if "valid" in batch else 1.0
        z = torch.randn_like(actions)
        t = torch.rand((actions.shape[0], 1), device=actions.device)
        pred = self.policy.velocity(self.policy.actor_slow, obs, (1 - t) * z + t * actions, t).float()
        return ((pred - (actions - z)).square().mean(-1) * weight).mean()

    def terminal_adjoint_scale(self) -> float | torch.Tensor:
        """``ã_T = -scale · ∇Q̄``: QAM's inverse temperature τ."""
        return self.inv_temp

    def sigma_scale(self) -> float | torch.Tensor:
        """``σ_i = scale · g_i`` in the adjoint-matching loss: 1 for QAM."""
        return 1.0

    def adjoint_states(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The memoryless-SDE trajectory ``x_0..x_{T-1}`` of ``v_θ``, its times, and the lean adjoints ``ã_i``
        (each ``(T, B, D)``; times ``(T, B, 1)``), all constants for the loss. The adjoint's VJPs differentiate the
        base network with respect to its input only (its weights are treated as constants)."""
        pi = self.policy
        steps, h = self.flow_steps, 1.0 / self.flow_steps
        base = getattr(pi, self.base_network)
        x = torch.randn((obs.shape[0], pi.chunk_dim), device=obs.device)
        xs, ts = [], []
        with torch.no_grad():
            for i in range(steps):
                t = torch.full((obs.shape[0], 1), i / steps, device=obs.device)
                xs.append(x)
                ts.append(t)
                if i < steps - 1:
                    v = pi.velocity(pi.actor_fast, obs, x, t).float()
                    x = x + h * (2 * v - x / (t + h)) + math.sqrt(h) * memoryless_noise_scale(t, h) * torch.randn_like(x)
                else:  # the last step is the base's deterministic Euler step, as in the adjoint-matching paper
                    x = x + h * pi.velocity(base, obs, x, t).float()
        critic = getattr(pi, self.adjoint_critic)
        with torch.enable_grad():
            a_1 = x.detach().requires_grad_(True)
            q = critic(obs, a_1.clamp(-1.0, 1.0) if self.clip_adjoint else a_1, detach_params=True).float()
            terminal = -self.terminal_adjoint_scale() * torch.autograd.grad(q.mean(0).sum(), a_1)[0]

        def base_drift(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # the memoryless SDE's drift under v̄_β
            return 2 * pi.velocity(base, obs, x, t, detach_params=True).float() - x / t

        adjs = lean_adjoints(base_drift, xs, ts, terminal, h)
        return torch.stack(xs), torch.stack(adjs).detach(), torch.stack(ts)

    def actor_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Flow matching of ``v_β`` + the adjoint-matching loss of ``v_θ`` (summed over steps, mean over the batch)."""
        flow_loss = self.flow_bc_loss(batch)
        if self.bc_only:
            return flow_loss, {"flow_loss": flow_loss.detach()}
        pi = self.policy
        obs = batch["observations"]
        xs, adjs, ts = self.adjoint_states(obs)
        obs_rep = obs.unsqueeze(0).expand(self.flow_steps, -1, -1)
        v_fine = pi.velocity(pi.actor_fast, obs_rep, xs, ts).float()
        with torch.no_grad():
            v_base = pi.velocity(getattr(pi, self.base_network), obs_rep, xs, ts).float()
        g = memoryless_noise_scale(ts, 1.0 / self.flow_steps)
        sigma = g * self.sigma_scale()
        diff = v_fine - v_base
        adj_loss = (2 * diff / sigma + sigma * adjs).square().sum(-1).sum(0).mean()
        # Euler estimate of the path-space KL to the base (TRQAM's Eq. 8), per environment action.
        path_kl = ((2.0 / self.flow_steps) / g.squeeze(-1).square() * diff.detach().square().sum(-1)).sum(0).mean()
        path_kl = path_kl / self.action_horizon
        info = {"flow_loss": flow_loss.detach(), "adj_loss": adj_loss.detach(), "adj_abs_mean": adjs[-1].abs().mean(),
                "path_kl": path_kl}
        loss = flow_loss + adj_loss
        if self.fql_alpha > 0:  # QAM-F: distil v_θ's ODE into the one-step actor, and push it up the critic
            z = torch.randn((obs.shape[0], pi.chunk_dim), device=obs.device)
            with torch.no_grad():
                target = pi.flow_actions(obs, z, "actor_fast").float()
            one_step = pi.one_step_actor(torch.cat([obs, z], dim=-1)).float()
            distill = (one_step - target).square().mean()
            q_loss = -pi.critic(obs, one_step.clamp(-1.0, 1.0), detach_params=True).float().mean()
            loss = loss + q_loss + self.fql_alpha * distill
            info |= {"distill_loss": distill.detach(), "q_loss": q_loss.detach()}
        if self.edit_scale > 0:  # QAM-E: edit the flow's chunk toward higher Q, SAC-style entropy on the edit
            with torch.no_grad():
                flow = pi.flow_actions(obs, torch.randn((obs.shape[0], pi.chunk_dim), device=obs.device), "actor_fast")
            delta, log_prob = pi.edit(obs, flow)
            edited = (flow + self.edit_scale * delta).clamp(-1.0, 1.0)
            q_loss = -pi.critic(obs, edited, detach_params=True).float().mean()
            alpha = pi.edit_log_alpha.exp()
            entropy = -log_prob.detach().mean()
            target_entropy = -self.edit_target_entropy_multiplier * pi.chunk_dim
            loss = loss + q_loss + (alpha.detach() * log_prob).mean() + alpha * (entropy - target_entropy)
            info |= {"edit_q_loss": q_loss.detach(), "edit_entropy": entropy, "edit_alpha": alpha.detach()}
        return loss, info

    def total_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.sparse_reward:
            batch = {**batch, "rewards": -(batch["rewards"] != 0).float() * batch.get("valid", 1.0)}
        with self.autocast():
            actor_loss, info = self.actor_loss(batch)
            if self.bc_only:  # stage 1: flow matching only, as TRQAM's code does with bc_only
                return actor_loss, info
            critic_loss, critic_info = self.critic_loss(batch)
        return critic_loss + actor_loss, info | critic_info

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One Adam step on critic + flow-matching + adjoint-matching losses, then the Polyak / EMA targets."""
        loss, info = self.compiled(self.total_loss)(batch)
        self.optimize(loss, self.optimizers["all"], self.max_grad_norm)
        if not self.bc_only:
            self.update_targets()
        return info


class TRQAM(QAM):
    """Trust Region Q-Adjoint Matching (Dong et al., arXiv 2605.27079): QAM with a path-KL trust region whose
    multiplier λ follows projected dual descent toward the budget ``kl_budget`` (module docstring).

    Args (beyond :class:`QAM`'s; ``inv_temp`` is fixed to 1: the adjoint starts at ``-∇Q̄``, λ is the temperature):
        kl_budget: ε_KL, the target path-space KL per environment action (code default 1.0).
        lam_scale: fixed factor of λ in ``σ = g / √(lam_scale · λ)`` (3.0).
        eta_lambda: dual step size (0.01).
        kl_ema_coef: weight of the new estimate in the KL's EMA (0.1).
        lambda_min, lambda_max: projection range of λ (0.01, 100).
        kl_clip_coef: the KL estimate is clipped at ``kl_clip_coef · kl_budget`` before the EMA (2.0).

    λ and the KL's EMA live on the policy as buffers (``dual_lambda``, ``kl_ema``): saved with the weights, updated
    on the device every step, logged as ``train/lambda`` and ``train/kl_ema`` at the log interval.
    """

    paper: ClassVar[dict[str, str]] = {
        "short": "Dong et al., 2026",
        "title": "Trust Region Q-Adjoint Matching",
        "arxiv": "2605.27079",
        "setting": "300K BC pretraining + 1M offline steps, 4x512 MLPs, K=10 critics, chunks of 5, 8 seeds",
        "bibtex": "@article{dong2026trqam,\n  title={Trust Region Q-Adjoint Matching},\n  author={Dong, Yonghoon "
                  "and others},\n  journal={arXiv preprint arXiv:2605.27079},\n  year={2026}\n}",
    }
    # "steps" is the finetuning stage's (a checkpoint records its own stage's steps); the 300K BC steps come before it
    paper_setting: ClassVar[dict[str, Any]] = {**QAM.paper_setting, "steps": 1_000_000, "seeds": 8,
                                               "checkpoint": "the evaluation at 1M steps after 300K BC steps"}
    implementation_notes: ClassVar[list[str]] = QAM.implementation_notes + [
        "follows the official code: λ enters the loss only (σ = g/√λ_eff), not the sampling noise; the adjoint "
        "starts at -∇Q̄ without an inverse temperature; the dual update runs every gradient step",
    ]

    def __init__(
        self,
        policy: str | type[QAMPolicy] = "MlpPolicy",
        env: Any = None,
        gamma: float = 0.995,
        kl_budget: float = 1.0,
        lam_scale: float = 3.0,
        eta_lambda: float = 0.01,
        kl_ema_coef: float = 0.1,
        lambda_min: float = 0.01,
        lambda_max: float = 100.0,
        kl_clip_coef: float = 2.0,
        **qam_kwargs: Any,
    ) -> None:
        if not lambda_min <= 1.0 <= lambda_max:
            raise ValueError(f"λ starts at 1: need lambda_min <= 1 <= lambda_max, got [{lambda_min}, {lambda_max}]")
        self.kl_budget, self.lam_scale, self.eta_lambda = kl_budget, lam_scale, eta_lambda
        self.kl_ema_coef, self.lambda_min, self.lambda_max, self.kl_clip_coef = (
            kl_ema_coef, lambda_min, lambda_max, kl_clip_coef)
        qam_kwargs["inv_temp"] = 1.0
        super().__init__(policy, env, gamma=gamma, **qam_kwargs)

    def make_policy(self) -> QAMPolicy:
        policy = super().make_policy()
        policy.register_buffer("dual_lambda", torch.tensor(1.0))
        policy.register_buffer("kl_ema", torch.tensor(0.0))
        return policy

    def terminal_adjoint_scale(self) -> float:
        return 1.0

    def sigma_scale(self) -> torch.Tensor:
        return (self.lam_scale * self.policy.dual_lambda).clamp_min(1e-8).rsqrt()

    def dual_update(self, path_kl: torch.Tensor) -> None:
        """Projected dual descent on λ (TRQAM's Eq. 9) with the code's clipped EMA of the KL estimate."""
        pi = self.policy
        with torch.no_grad():
            clipped = path_kl.clamp(max=self.kl_clip_coef * self.kl_budget)
            pi.kl_ema.lerp_(clipped, self.kl_ema_coef)
            pi.dual_lambda.add_(self.eta_lambda * (pi.kl_ema - self.kl_budget)).clamp_(self.lambda_min, self.lambda_max)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        info = super().update(batch)
        if not self.bc_only:
            self.dual_update(info["path_kl"])
            info = {**info, "lambda": (self.lam_scale * self.policy.dual_lambda).detach().clone(),
                    "kl_ema": self.policy.kl_ema.detach().clone()}
        return info
