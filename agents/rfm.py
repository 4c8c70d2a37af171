"""Reverse Flow Matching (RFM) for online RL: Li, Tang, Azizan, ICML 2026 (arXiv 2601.08136).

**Unofficial reimplementation**: no official code is public. The equations below follow the paper's propositions as
summarised in ../shared/reference/METHODS.md §4; every quantity the paper leaves open is a constructor argument,
listed in :attr:`RFM.choices` and on the model card.

RFM trains a flow policy toward the Boltzmann policy ``π(a|s) ∝ exp(Q(s, a)/λ)`` without samples from it. The flow
lives in an unbounded latent ``u`` with ``a = tanh(u_1)``, so the target density in ``u`` carries the Jacobian:
``log p_1(u) = Q(s, tanh u)/λ + Σ_j log sech²(u_j)``. With the linear interpolant ``u_t = t u_1 + (1 - t) u_0``
(``α_t = t``, ``β_t = 1 - t``, ``u_0 ~ N(0, I)``) the RFM-N loss (Prop. 4.1) regresses the velocity onto

    v̂_t = α̇ ū_1 + β̇ ū_0 = (u_t - μ_{0|t}) / t,     μ_{0|t} = E_{q*}[X_0 | u_t],
    q*(x_0 | u_t) ∝ N(x_0; 0, I) · p_1((u_t - β_t x_0) / α_t),

a posterior mean estimated by self-normalised importance sampling with ``K`` draws of ``x_0`` (the change of
variables to ``x_1^k`` has a constant Jacobian, which cancels). Drawn from the prior ``N(0, I)`` alone, the implied
``x_1`` spreads over ``(1 - t)/t`` and at small ``t`` one draw takes all the weight; by default half the draws come
from a Gaussian around the noise that produced ``u_t`` from the policy's sample (``posterior_proposal``), with the
weights corrected by prior / mixture (same estimand; experiments/RESULTS-rfm-toy.md).
The Langevin–Stein control variate (Thm. 4.14) adds
``Λ ⊙ s*`` with the posterior score ``s*(x_0) = -x_0 - (β_t/α_t) ∇ log p_1(x_1)``, which has zero mean under q*:

    μ̂ = Σ_k w_k (x_0^k + Λ ⊙ s*_k),    w = softmax_k log p_1(x_1^k).

``Λ = η I`` interpolates between the noise expectation (η = 0) and the gradient expectation (η = 1). ``eta="optimal"``
uses ``Λ_j = 1 / E_q[s*_j²]`` (the per-dimension minimiser of ``E_q[(x_0 - μ + Λ s*)_j²]``, since Stein's identity
gives ``E_q[(x_0 - μ)_j s*_j] = -1``; a [DERIVED] stand-in for the paper's Prop. 4.9, whose closed form we could
not recover), estimated with the same weights and clipped to [0, 1].

The points ``u_t`` come from a policy-induced proposal: ``u_1`` from the current flow, noised along the
interpolant. Critics are SAC's: twin Q with ``y = r + γ m min Q̄(s', a')``, ``a'`` from the policy. Acting draws
``M`` candidates from the flow (10 Euler steps) and takes the one with the highest ``min_k Q_k``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from gymnasium import spaces

from agents.core.base import GenerativeAgent, GenerativePolicy
from agents.core.critics import CriticEnsemble, aggregate
from agents.core.networks import MLP
from agents.core.samplers import euler_ode


def log_sech2(u: torch.Tensor) -> torch.Tensor:
    """``log(1 - tanh²(u))``, the log-Jacobian of ``a = tanh(u)``, computed without overflow for large ``|u|``."""
    return 2.0 * (math.log(2.0) - u.abs() - torch.nn.functional.softplus(-2.0 * u.abs()))


def snis_posterior_mean(
    log_target: Callable[[torch.Tensor], torch.Tensor],
    u_t: torch.Tensor,
    t: torch.Tensor,
    num_samples: int,
    eta: float | str = 0.0,
    proposal_center: torch.Tensor | None = None,
    proposal_scale: torch.Tensor | None = None,
    return_ess: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``E[X_0 | X_t = u_t]`` for ``X_t = t X_1 + (1 - t) X_0``, ``X_0 ~ N(0, I)``, ``X_1 ~ exp(log_target)``.

    Self-normalised importance sampling over ``num_samples`` draws of ``X_0`` with the Langevin–Stein control
    variate ``Λ ⊙ s*`` (module docstring): ``eta`` a float is ``Λ = η I``; ``"optimal"`` is ``Λ_j = 1/E_q[s*_j²]``.
    ``log_target`` maps ``(B, K, D)`` points to ``(B, K)`` unnormalised log densities and must be differentiable in
    its input when ``eta != 0``. ``u_t`` is ``(B, D)``, ``t`` is ``(B, 1)`` in ``(0, 1]``. Weights are fp32.

    The draws come from the prior ``N(0, I)``, or with ``proposal_center`` ``(B, D)`` and ``proposal_scale``
    ``(B, 1)`` from the defensive mixture ``½ N(0, I) + ½ N(center, scale² I)`` (half the draws each), the weights
    corrected by ``prior / mixture``: the same estimand, for posteriors much narrower than the prior. With
    ``return_ess`` also returns the effective sample size ``1 / Σ_k w_k²`` per row.
    """
    if eta != "optimal" and not isinstance(eta, int | float):
        raise ValueError(f"eta must be a number or 'optimal', got {eta!r}")
    alpha, beta = t.unsqueeze(1), (1 - t).unsqueeze(1)  # (B, 1, 1)
    x_0 = torch.randn((u_t.shape[0], num_samples, u_t.shape[1]), device=u_t.device)
    log_correction = torch.zeros(x_0.shape[:2], device=u_t.device)
    if proposal_center is not None and num_samples >= 2:  # one draw: the prior's
        if proposal_scale is None:
            raise ValueError("proposal_center needs proposal_scale")
        center, scale = proposal_center.float().unsqueeze(1), proposal_scale.float().unsqueeze(1)  # (B,1,D), (B,1,1)
        local = num_samples // 2
        x_0 = torch.cat([center + scale * x_0[:, :local], x_0[:, local:]], dim=1)
        log_prior = -0.5 * x_0.square().sum(-1)
        log_local = -0.5 * ((x_0 - center) / scale).square().sum(-1) - x_0.shape[-1] * scale.squeeze(-1).log()
        log_mixture = torch.logaddexp(log_prior + math.log(num_samples - local), log_local + math.log(local))
        log_correction = log_prior - log_mixture  # constants common to every draw cancel in the softmax
    x_1 = (u_t.unsqueeze(1) - beta * x_0) / alpha
    if eta == 0:
        with torch.no_grad():
            w = torch.softmax(log_target(x_1).float() + log_correction, dim=1).unsqueeze(-1)
        mean = (w * x_0).sum(1)
    else:
        with torch.enable_grad():
            x_1 = x_1.detach().requires_grad_(True)
            log_p = log_target(x_1).float()
            grad = torch.autograd.grad(log_p.sum(), x_1)[0]
        w = torch.softmax(log_p.detach() + log_correction, dim=1).unsqueeze(-1)  # (B, K, 1)
        score = -x_0 - (beta / alpha) * grad.float()
        if eta == "optimal":
            lam = (1.0 / (w * score.square()).sum(1).clamp_min(1e-6)).clamp(0.0, 1.0)  # (B, D)
        else:
            lam = float(eta)
        mean = (w * x_0).sum(1) + lam * (w * score).sum(1)
    if return_ess:
        return mean, 1.0 / w.squeeze(-1).square().sum(1)
    return mean


class RFMPolicy(GenerativePolicy):
    """The latent flow ``v_θ(s, u_t, t)`` and SAC-style twin critics (+ targets)."""

    target_networks: ClassVar[dict[str, str]] = {"target_critic": "critic"}

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        action_horizon: int = 1,
        actor_hidden_dims: Sequence[int] = (256, 256),
        value_hidden_dims: Sequence[int] = (256, 256),
        flow_steps: int = 10,
        candidates: int = 32,
    ) -> None:
        super().__init__(observation_space, action_space, action_horizon)
        obs_dim, act_dim = self.obs_dim, self.act_dim
        self.flow_steps, self.candidates = flow_steps, candidates
        self.velocity_net = MLP(obs_dim + act_dim + 1, actor_hidden_dims, act_dim)
        self.critic = CriticEnsemble(obs_dim, act_dim, value_hidden_dims, ensemble=2, layer_norm=False)
        self.target_critic = CriticEnsemble(obs_dim, act_dim, value_hidden_dims, ensemble=2, layer_norm=False)

    def velocity(self, obs: torch.Tensor, u: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.velocity_net(torch.cat([obs, u, t], dim=-1))

    def latent_actions(self, obs: torch.Tensor, noise: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """``u_1``: Euler ODE of the latent flow from ``noise`` (not clipped: ``tanh`` bounds the action)."""
        return euler_ode(lambda u, t: self.velocity(obs, u, t), noise, self.flow_steps if steps is None else steps,
                         clip=None)

    def sample_actions(self, obs: torch.Tensor, deterministic: bool = False, sampling_steps: int | None = None,
                       candidates: int | None = None, **sampler: Any) -> torch.Tensor:
        """Best of ``candidates`` flow samples by ``min_k Q_k`` (1: a plain sample); deterministic: the one sample
        from ``z = 0`` (every candidate would be that one)."""
        if sampler:
            raise TypeError(f"RFM's sampler takes sampling_steps and candidates, got {sorted(sampler)}")
        m = 1 if deterministic else self.candidates if candidates is None else candidates
        b = obs.shape[0]
        noise = self.noise((b, m * self.act_dim), obs.device, deterministic).reshape(b * m, self.act_dim)
        obs_m = obs.repeat_interleave(m, dim=0)
        actions = torch.tanh(self.latent_actions(obs_m, noise, sampling_steps))
        if m == 1:
            return actions
        q = aggregate(self.critic(obs_m, actions).float(), "min").reshape(b, m)
        best = q.argmax(dim=1)
        return actions.reshape(b, m, -1)[torch.arange(b, device=obs.device), best]


class RFM(GenerativeAgent):
    """Reverse Flow Matching (Li, Tang, Azizan, ICML 2026): online RL toward ``exp(Q/λ)``. Unofficial.

    Args (method-specific; the rest are :class:`GenerativeAgent`'s):
        temperature: λ of the Boltzmann target.
        num_samples: K, importance samples per posterior mean.
        eta: control-variate weight: 0 (noise expectation), 1 (gradient expectation), any float, or
            ``"optimal"`` (per-dimension variance-optimal Λ, estimated).
        candidates: M, flow samples per action at acting time (best by Q).
        flow_steps: Euler steps of the flow (10, the paper's inference steps).
        t_min: interpolation times are drawn from ``U(t_min, 1)`` (the target divides by ``t``).
        posterior_proposal: where the ``K`` importance draws of ``X_0`` come from: ``"prior"`` (``N(0, I)``, the
            estimator as written) or ``"policy"`` (half of them from ``N(ε, s_t² I)`` around the noise ``ε`` that
            made ``u_t`` from the policy's sample, ``s_t = min(1, proposal_scale · t / (1 - t))``, i.e. a Gaussian of
            width ``proposal_scale`` around the policy's ``u_1``; weights importance-corrected, same estimand).
        proposal_scale: that width, in latent units.
        actor_hidden_dims, value_hidden_dims: MLP widths (SAC's 2×256 by default).
    """

    policy_aliases: ClassVar[dict[str, type]] = {"MlpPolicy": RFMPolicy}
    policy: RFMPolicy
    unofficial: ClassVar[bool] = True
    checkpoint_defaults: ClassVar[dict[str, Any]] = {"posterior_proposal": "prior"}  # the estimator before 2026-11-27
    paper: ClassVar[dict[str, str]] = {
        "short": "Li, Tang & Azizan, ICML 2026",
        "title": "Reverse Flow Matching",
        "arxiv": "2601.08136",
        "setting": "online RL on 8 DeepMind Control tasks, 5 seeds, 10 flow steps",
        "bibtex": "@inproceedings{li2026rfm,\n  title={Reverse Flow Matching},\n  author={Li, Zeyang and Tang, "
                  "Sunbochen and Azizan, Navid},\n  booktitle={International Conference on Machine Learning (ICML)},"
                  "\n  year={2026}\n}",
    }
    choices: ClassVar[list[dict[str, str]]] = [
        {"name": "interpolant", "value": "linear, u_t = t u_1 + (1 - t) u_0", "why": "the flow-matching convention "
         "of the other flow methods here; the paper's (α_t, β_t) were not found"},
        {"name": "temperature λ", "value": "0.1, fixed, the same on every task", "why": "SAC's entropy temperature "
         "plays the same role; the paper's value was not found. Not scaled by the reward: Hopper pays ~3 per step and "
         "DMC at most 1, so the same λ makes exp(Q/λ) several times flatter on DMC"},
        {"name": "importance samples K", "value": "32", "why": "not found; cost grows linearly in K"},
        {"name": "control variate η", "value": "'optimal': Λ_j = 1/E_q[s*_j²] clipped to [0, 1]",
         "why": "our derivation of the variance-optimal weight (the paper's closed form was not recovered)"},
        {"name": "proposal for u_t", "value": "u_1 from the current policy, noised along the interpolant",
         "why": "the paper's 'policy-induced proposal', as we read it"},
        {"name": "time distribution", "value": "U(0.02, 1)", "why": "the target divides by t"},
        {"name": "importance draws of X_0", "value": "posterior_proposal='policy' (default; 'prior' before it existed, "
         "and in checkpoints that lack the key): half from N(ε, s_t²) around the noise that made u_t from the "
         "policy's sample (width 0.5 around its u_1 in the latent), half from the prior; weights corrected",
         "why": "from the prior alone the policy ends 3-4x wider than exp(Q/λ) on a toy with a known answer; this "
         "reaches 0.8x (experiments/RESULTS-rfm-toy.md); the paper's proposal was not found"},
        {"name": "candidates M at acting time", "value": "32, best by min of the twin critics, also when collecting "
         "training data (exploration is the flow's own sampling noise among the M)", "why": "the paper's acting "
         "rule ('highest Q'); whether it also collects the data was not found"},
        {"name": "networks", "value": "2x256 MLPs, GELU, no LayerNorm", "why": "SAC's sizes; not found"},
        {"name": "random warm-up", "value": "learning_starts=5000 env steps from scratch", "why": "common MuJoCo "
         "practice (CleanRL SAC); 0 for a pretrained agent"},
    ]

    def __init__(
        self,
        policy: str | type[RFMPolicy] = "MlpPolicy",
        env: Any = None,
        learning_rate: float = 3e-4,
        batch_size: int = 256,
        gamma: float = 0.99,
        tau: float = 0.005,
        learning_starts: int = 5000,
        temperature: float = 0.1,
        num_samples: int = 32,
        eta: float | str = "optimal",
        candidates: int = 32,
        flow_steps: int = 10,
        t_min: float = 0.02,
        posterior_proposal: str = "policy",
        proposal_scale: float = 0.5,
        actor_hidden_dims: Sequence[int] = (256, 256),
        value_hidden_dims: Sequence[int] = (256, 256),
        **base_kwargs: Any,
    ) -> None:
        if eta != "optimal" and not isinstance(eta, int | float):
            raise ValueError(f"eta must be a number or 'optimal', got {eta!r}")
        if not 0.0 < t_min < 1.0:
            raise ValueError(f"t_min must be in (0, 1), got {t_min}")
        if posterior_proposal not in ("prior", "policy"):
            raise ValueError(f"posterior_proposal must be 'prior' or 'policy', got {posterior_proposal!r}")
        if proposal_scale <= 0:
            raise ValueError(f"proposal_scale must be positive, got {proposal_scale}")
        self.posterior_proposal, self.proposal_scale = posterior_proposal, proposal_scale
        if base_kwargs.get("action_horizon", 1) != 1:
            raise ValueError("RFM acts one step at a time (action_horizon=1)")
        self.temperature, self.num_samples, self.eta, self.candidates = temperature, num_samples, eta, candidates
        self.flow_steps, self.t_min = flow_steps, t_min
        self.actor_hidden_dims, self.value_hidden_dims = list(actor_hidden_dims), list(value_hidden_dims)
        super().__init__(policy, env, learning_rate=learning_rate, batch_size=batch_size, gamma=gamma, tau=tau,
                         learning_starts=learning_starts, **base_kwargs)

    def sampler_settings(self) -> dict[str, Any]:
        return {"sampler": "Euler ODE of the latent flow, best of M by Q", "sampling_steps": self.flow_steps,
                "candidates": self.candidates}

    def make_policy(self) -> RFMPolicy:
        return self.policy_class(
            self.observation_space, self.action_space, self.action_horizon,
            actor_hidden_dims=self.actor_hidden_dims, value_hidden_dims=self.value_hidden_dims,
            flow_steps=self.flow_steps, candidates=self.candidates,
        )

    def log_target(self, obs: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """``u ↦ min_k Q_k(s, tanh u)/λ + Σ_j log sech²(u_j)`` for ``(B, K, A)`` latents (critic weights constant)."""
        critic = self.policy.critic

        def log_p(u: torch.Tensor) -> torch.Tensor:
            b, k, a = u.shape
            # fp32 whatever the training precision: Q/λ enters the importance weights' exponent, where bf16's
            # ~0.4% error on Q ≈ 200 is ~8 nats at λ = 0.1 and would turn the weights into noise.
            with torch.autocast(u.device.type, enabled=False):
                obs_k = obs.float().unsqueeze(1).expand(b, k, obs.shape[-1]).reshape(b * k, -1)
                q = aggregate(critic(obs_k, torch.tanh(u.float().reshape(b * k, a)), detach_params=True), "min")
            return q.reshape(b, k) / self.temperature + log_sech2(u.float()).sum(-1)

        return log_p

    def critic_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """SAC's twin-critic TD loss with ``a' = tanh(u_1)``, ``u_1`` from the flow."""
        pi = self.policy
        with torch.no_grad():
            next_obs = batch["next_observations"]
            noise = torch.randn((next_obs.shape[0], pi.act_dim), device=next_obs.device)
            next_actions = torch.tanh(pi.latent_actions(next_obs, noise))
            next_q = aggregate(pi.target_critic(next_obs, next_actions).float(), "min")
            target_q = batch["rewards"] + self.gamma * batch["masks"] * next_q
        q = pi.critic(batch["observations"], batch["actions"]).float()
        loss = (q - target_q).square().mean()
        return loss, {"critic_loss": loss.detach(), "q_mean": q.mean().detach()}

    def actor_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """RFM-N: ``‖v_θ(s, u_t, t) - (u_t - μ̂_{0|t})/t‖²`` at ``u_t`` from the policy-induced proposal."""
        pi = self.policy
        obs = batch["observations"]
        b = obs.shape[0]
        with torch.no_grad():
            u_1 = pi.latent_actions(obs, torch.randn((b, pi.act_dim), device=obs.device))
            t = self.t_min + (1 - self.t_min) * torch.rand((b, 1), device=obs.device)
            noise = torch.randn_like(u_1)
            u_t = t * u_1 + (1 - t) * noise
        center = scale = None
        if self.posterior_proposal == "policy":  # draws around the x_0 that maps u_t back to the policy's u_1
            center, scale = noise, (self.proposal_scale * t / (1 - t).clamp_min(1e-6)).clamp_max(1.0)
        mu_0, ess = snis_posterior_mean(self.log_target(obs), u_t, t, self.num_samples, self.eta, center, scale,
                                        return_ess=True)
        target_v = (u_t - mu_0.detach()) / t
        loss = (pi.velocity(obs, u_t, t).float() - target_v).square().mean()
        return loss, {"actor_loss": loss.detach(), "target_v_abs": target_v.abs().mean(), "snis_ess": ess.mean()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One Adam step on critic + RFM-N losses (disjoint parameters), then the critics' Polyak update."""
        with self.autocast():
            critic_loss, info = self.critic_loss(batch)
            actor_loss, actor_info = self.actor_loss(batch)
        self.optimize(critic_loss + actor_loss, self.optimizers["all"])
        self.update_targets()
        return info | actor_info
