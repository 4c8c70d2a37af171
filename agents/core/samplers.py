"""Samplers shared by the generative policies.

Each sampler is a plain function of a velocity / denoiser callable so method files read as their papers do.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

VelocityField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t of shape (B, 1)) -> velocity


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
