"""Samplers shared by the generative policies.

Each sampler is a plain function of a velocity / denoiser callable so method files read as their papers do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

VelocityField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t of shape (B, 1)) -> velocity
Denoiser = Callable[[torch.Tensor, float], torch.Tensor]  # (x, noise level or step index shared by the batch) -> output
NoiseSource = Callable[[], torch.Tensor]  # a fresh standard-normal draw of the sampler's shape (zeros: deterministic)


def euler_ode(velocity: VelocityField, noise: torch.Tensor, steps: int, clip: float | None = 1.0) -> torch.Tensor:
    """Integrate ``dx/dt = v(x, t)`` from ``t=0`` (noise) to ``t=1`` (action) with ``steps`` Euler steps.

    The flow-matching convention of FQL (Park et al. 2025, Eq. 1): ``x_t = (1 - t) x_0 + t x_1`` with ``x_0`` noise,
    so ``t`` runs forward from 0 and each step adds ``v / steps``. The result is clipped to the action box.
    """
    if steps < 1:
        raise ValueError(f"sampling_steps must be >= 1, got {steps}")
    x = noise
    t = torch.empty((*noise.shape[:-1], 1), dtype=noise.dtype, device=noise.device)
    for i in range(steps):
        x = x + velocity(x, t.fill_(i / steps)) / steps
    return x.clamp(-clip, clip) if clip is not None else x


# ---------------------------------------------------------------------------------------------------------------------
# DDPM with a VP schedule and ε-prediction (Ho et al. 2020; as Diffusion-QL, Wang et al. 2023, and its code use it)


def vp_beta_schedule(n_steps: int, beta_min: float = 0.1, beta_max: float = 10.0) -> torch.Tensor:
    """Diffusion-QL's variance-preserving schedule (float64), ``t = 1..N``:
    ``β_t = 1 - exp(-b_min / N - (b_max - b_min) (2t - 1) / (2 N^2))``  (official ``helpers.vp_beta_schedule``).

    Its product telescopes: ``ᾱ_N = exp(-b_min - (b_max - b_min) / 2)`` for every ``N`` (≈ 0.0064 with the defaults).
    """
    if n_steps < 1:
        raise ValueError(f"the number of diffusion steps must be >= 1, got {n_steps}")
    t = torch.arange(1, n_steps + 1, dtype=torch.float64)
    return 1.0 - torch.exp(-beta_min / n_steps - 0.5 * (beta_max - beta_min) * (2 * t - 1) / n_steps**2)


@dataclass(frozen=True)
class DDPMStep:
    """One reverse step ``x_t -> x_{t_prev}`` of an ancestral DDPM sampler, as scalars (every row shares ``t``)."""

    t: int  # training step index fed to ε_θ
    recip: float  # sqrt(1 / ᾱ_t)
    recipm1: float  # sqrt(1 / ᾱ_t - 1)
    coef_x0: float  # posterior mean coefficient of the predicted x_0
    coef_xt: float  # posterior mean coefficient of x_t
    sigma: float  # posterior standard deviation (0 on the last step)


def ddpm_reverse_chain(alphas_cumprod: torch.Tensor, steps: int | None = None) -> list[DDPMStep]:
    """The reverse chain over ``steps`` of the ``N = len(alphas_cumprod)`` training steps, from ``t = N-1`` down to 0.

    ``steps = N`` (default) is the official sampler: posterior ``q(x_{t-1} | x_t, x_0)`` of every training step.
    ``steps < N`` respaces the chain (Nichol & Dhariwal 2021, Sec. 4): an evenly spaced subsequence ``t_1 < ... < t_k``
    that keeps ``N-1`` (so it starts from the pure-noise level) and, for ``k > 1``, 0, with ``β'_i = 1 - ᾱ_{t_i} /
    ᾱ_{t_{i-1}}``; with all ``N`` steps the coefficients are the original ones.
    """
    ab = alphas_cumprod.double().tolist()
    n = len(ab)
    k = n if steps is None else int(steps)
    if not 1 <= k <= n:
        raise ValueError(f"sampling_steps must be in [1, {n}] for a DDPM trained with {n} steps, got {k}")
    ts = [n - 1] if k == 1 else sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})
    chain = []
    for j, t in enumerate(ts):
        a, a_prev = ab[t], (ab[ts[j - 1]] if j > 0 else 1.0)
        beta = 1.0 - a / a_prev
        chain.append(
            DDPMStep(
                t=t,
                recip=math.sqrt(1.0 / a),
                recipm1=math.sqrt(1.0 / a - 1.0),
                coef_x0=beta * math.sqrt(a_prev) / (1.0 - a),
                coef_xt=(1.0 - a_prev) * math.sqrt(1.0 - beta) / (1.0 - a),
                sigma=math.sqrt(beta * (1.0 - a_prev) / (1.0 - a)),
            )
        )
    return chain[::-1]


def ddpm_sample(eps_model: Denoiser, noise: NoiseSource, chain: Sequence[DDPMStep], clip: float = 1.0) -> torch.Tensor:
    """Ancestral sampling ``x_T ~ N(0, I) -> x_0`` with ε-prediction (Diffusion-QL's ``p_sample_loop``).

    Each step predicts ``x̂_0 = sqrt(1/ᾱ_t) x_t - sqrt(1/ᾱ_t - 1) ε_θ(x_t, t)``, clipped to the action box, and draws
    ``x_{t_prev}`` from the posterior ``N(c_0 x̂_0 + c_t x_t, σ_t^2)``; the result is clipped. Differentiable in the
    network's parameters (Diffusion-QL backpropagates its Q loss through the whole chain).
    """
    x = noise()
    for step in chain:
        x0 = (step.recip * x - step.recipm1 * eps_model(x, step.t)).clamp(-clip, clip)
        x = step.coef_x0 * x0 + step.coef_xt * x
        if step.sigma > 0:
            x = x + step.sigma * noise()
    return x.clamp(-clip, clip)


# ---------------------------------------------------------------------------------------------------------------------
# Consistency models (Song et al. 2023; as a policy: Ding & Jin, ICLR 2024, and their official code)


def karras_boundaries(n: int, eps: float = 0.002, t_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """``N`` ascending noise levels ``τ_i = (ε^{1/ρ} + i/(N-1) (T^{1/ρ} - ε^{1/ρ}))^ρ``, ``τ_0 = ε``, ``τ_{N-1} = T``
    (Karras et al. 2022, Eq. 5; the consistency code's ``kerras_boundaries``). float64."""
    if n < 2:
        raise ValueError(f"a discretisation needs at least 2 boundaries, got {n}")
    i = torch.arange(n, dtype=torch.float64)
    return (eps ** (1 / rho) + i / (n - 1) * (t_max ** (1 / rho) - eps ** (1 / rho))) ** rho


def consistency_curriculum(k: int, total: int, s0: int = 2, s1: int = 150) -> int:
    """Discretisation curriculum ``N(k) = ceil(sqrt(k (s1^2 - s0^2) / K + s0^2) - 1) + 1`` (Song et al. 2023's
    curriculum as the consistency code writes it, ``timesteps_schedule``): ``s0`` boundaries at ``k = 0``, ``s1`` at
    ``k = K``."""
    return math.ceil(math.sqrt(k * (s1**2 - s0**2) / total + s0**2) - 1) + 1


def consistency_scalings(tau: torch.Tensor, eps: float = 0.002, sigma_data: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Boundary-condition parameterisation ``f(x, τ) = c_skip(τ) x + c_out(τ) F(x, τ)`` (Song et al. 2023, as in
    the consistency code): ``c_skip = σ_d^2 / ((τ-ε)^2 + σ_d^2)``, ``c_out = σ_d (τ-ε) / sqrt(τ^2 + σ_d^2)``.
    At ``τ = ε``: ``c_skip = 1``, ``c_out = 0``, so ``f(x, ε) = x`` exactly."""
    d = tau - eps
    return sigma_data**2 / (d.square() + sigma_data**2), sigma_data * d / (tau.square() + sigma_data**2).sqrt()


def consistency_sampling_levels(steps: int, t_max: float = 80.0, t_min: float = 2.0) -> list[float]:
    """Noise levels of ``steps``-step consistency sampling, descending: ``linspace(t_min, T, steps)`` reversed, as in
    the consistency code (``t_seq``; with 2 steps: 80, 2). One step uses ``T`` alone (the code's ``linspace`` would give
    ``t_min``, which starts a one-step sampler from ``N(0, T^2)`` at the wrong level)."""
    if steps < 1:
        raise ValueError(f"sampling_steps must be >= 1, got {steps}")
    if steps == 1:
        return [t_max]
    return [t_max - i * (t_max - t_min) / (steps - 1) for i in range(steps)]


def consistency_sample(
    f: Denoiser, noise: NoiseSource, levels: Sequence[float], eps: float = 0.002, clip: float = 1.0
) -> torch.Tensor:
    """Multistep consistency sampling (Song et al. 2023, Alg. 1): ``x = f(T z, T)``, then for each next level ``τ``
    ``x = f(x + sqrt(τ^2 - ε^2) z, τ)``; the result is clipped to the action box. Differentiable (Consistency-AC's
    Q loss backpropagates through it)."""
    x = f(levels[0] * noise(), levels[0])
    for tau in levels[1:]:
        x = f(x + math.sqrt(tau**2 - eps**2) * noise(), tau)
    return x.clamp(-clip, clip)


def softmax_select(candidates: torch.Tensor, scores: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Pick one of ``K`` candidates per row with probability ``softmax(scores)``: the action selection of the
    Diffusion-QL and Consistency-AC code (50 candidates scored by ``min(Q_1, Q_2)``, then ``torch.multinomial``).

    ``candidates`` ``(B, K, A)``, ``scores`` ``(B, K)``, ``uniform`` ``(B,)`` in ``[0, 1)``: inverse-CDF sampling, so a
    row's choice depends on its own uniform draw only (per-row generators stay meaningful).
    """
    cdf = torch.softmax(scores.float(), dim=-1).cumsum(dim=-1)
    idx = (cdf < uniform[:, None]).sum(dim=-1).clamp_max(scores.shape[-1] - 1)
    return candidates[torch.arange(len(candidates), device=candidates.device), idx]


def candidate_actions(
    policy: Any, obs: torch.Tensor, k: int, draw: Callable[[torch.Tensor, Callable[[], torch.Tensor]], torch.Tensor],
    deterministic: bool = False, dim: int | None = None,
) -> torch.Tensor:
    """The action selection of the Diffusion-QL and Consistency-AC code (``sample_action``): ``k`` samples per
    observation from ``draw(obs_k, noise)``, one kept with probability ``softmax(min(Q_1, Q_2))`` of ``policy.critic``.

    Rows ``i*k .. i*k+k-1`` belong to observation ``i``; noise and the selection's uniform draw come from
    ``policy.noise``, so per-row generators keep an observation's action independent of the rest of the batch.
    ``dim`` is the width of an action sample (default ``policy.act_dim``; an action chunk's is ``H * act_dim``).
    """
    if k < 1:
        raise ValueError(f"candidates must be >= 1, got {k}")
    n, dim = obs.shape[0], policy.act_dim if dim is None else dim
    obs_k = obs.repeat_interleave(k, dim=0)
    actions = draw(obs_k, lambda: policy.noise((n, k, dim), obs.device, deterministic).reshape(n * k, dim))
    if k == 1:
        return actions
    q = policy.critic(obs_k, actions).float().min(0).values.view(n, k)
    uniform = torch.special.ndtr(policy.noise((n,), obs.device))  # Φ(z) ~ U(0, 1), from the row's own generator
    return softmax_select(actions.view(n, k, dim), q, uniform)


def gaussian(n: int, dim: int, device: torch.device) -> Callable[[], torch.Tensor]:
    """A noise source for training-time sampling (the global torch RNG), in the form the samplers take."""
    return lambda: torch.randn(n, dim, device=device)
