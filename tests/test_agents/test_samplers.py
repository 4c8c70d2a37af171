"""Schedules and samplers of the diffusion and consistency policies (``agents/core/samplers.py``)."""

import math

import numpy as np
import pytest
import torch

from agents.core.samplers import (
    consistency_curriculum,
    consistency_sample,
    consistency_sampling_levels,
    consistency_scalings,
    ddpm_reverse_chain,
    ddpm_sample,
    karras_boundaries,
    softmax_select,
    vp_beta_schedule,
)


def test_vp_schedule_matches_the_official_formula():
    # Diffusion-QL's helpers.vp_beta_schedule, written out for N = 5.
    t = np.arange(1, 6)
    expected = 1 - np.exp(-0.1 / 5 - 0.5 * (10.0 - 0.1) * (2 * t - 1) / 25)
    betas = vp_beta_schedule(5)
    np.testing.assert_allclose(betas.numpy(), expected, rtol=1e-12)
    assert (betas > 0).all() and (betas < 1).all() and (betas.diff() > 0).all()
    # The product telescopes to exp(-b_min - (b_max - b_min) / 2) whatever N is.
    for n in (1, 5, 10, 50):
        assert torch.prod(1 - vp_beta_schedule(n)).item() == pytest.approx(math.exp(-0.1 - 4.95), rel=1e-9)


def test_full_reverse_chain_is_the_ddpm_posterior():
    betas = vp_beta_schedule(5)
    ab = torch.cumprod(1 - betas, 0)
    ab_prev = torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
    chain = ddpm_reverse_chain(ab)
    assert [s.t for s in chain] == [4, 3, 2, 1, 0]
    for s in chain:
        t = s.t
        assert s.recip == pytest.approx(math.sqrt(1 / ab[t]))
        assert s.recipm1 == pytest.approx(math.sqrt(1 / ab[t] - 1))
        assert s.coef_x0 == pytest.approx(float(betas[t] * ab_prev[t].sqrt() / (1 - ab[t])))
        assert s.coef_xt == pytest.approx(float((1 - ab_prev[t]) * (1 - betas[t]).sqrt() / (1 - ab[t])))
        assert s.sigma == pytest.approx(float((betas[t] * (1 - ab_prev[t]) / (1 - ab[t])).sqrt()))
    last = chain[-1]  # t = 0: the predicted x_0 itself, no noise
    assert (last.coef_x0, last.coef_xt, last.sigma) == (pytest.approx(1.0), 0.0, 0.0)


def test_respaced_chains():
    ab = torch.cumprod(1 - vp_beta_schedule(10), 0)
    assert [s.t for s in ddpm_reverse_chain(ab, 1)] == [9]  # one step from the pure-noise level
    assert [s.t for s in ddpm_reverse_chain(ab, 2)] == [9, 0]
    assert [s.t for s in ddpm_reverse_chain(ab, 4)] == [9, 6, 3, 0]
    assert ddpm_reverse_chain(ab, 1)[0].coef_x0 == pytest.approx(1.0)  # straight to x̂_0
    with pytest.raises(ValueError, match="sampling_steps must be in"):
        ddpm_reverse_chain(ab, 11)


def _two_point_eps(ab: torch.Tensor, m: float = 0.8):
    """The exact ε-prediction for data ±m with equal probability: E[a | x_t] = m tanh(sqrt(ᾱ) m x / (1 - ᾱ))."""

    def eps(x: torch.Tensor, t: int) -> torch.Tensor:
        a = float(ab[t])
        mean = m * torch.tanh(math.sqrt(a) * m * x / (1 - a))
        return (x - math.sqrt(a) * mean) / math.sqrt(1 - a)

    return eps


def test_ddpm_sampler_with_the_exact_denoiser():
    torch.manual_seed(0)
    n = 50_000

    def modes(steps: int) -> tuple[float, float]:
        ab = torch.cumprod(1 - vp_beta_schedule(steps), 0)
        s = ddpm_sample(_two_point_eps(ab), lambda: torch.randn(n, 1), ddpm_reverse_chain(ab)).ravel()
        assert s.abs().max() <= 1.0
        return float((s > 0.4).float().mean()), float((s.abs() < 0.3).float().mean())

    pos, between = modes(20)
    assert 0.48 < pos < 0.52 and between < 0.01
    # With N = 5 (the paper's) even the exact denoiser leaves ~12% between the modes: the last step returns the
    # posterior mean at noise std ~0.5. Why the two-mode BC test of Diffusion-BC uses N = 10.
    _, between5 = modes(5)
    assert 0.08 < between5 < 0.16


def test_ddpm_sample_is_deterministic_with_zero_noise_and_differentiable():
    ab = torch.cumprod(1 - vp_beta_schedule(5), 0)
    w = torch.tensor(0.3, requires_grad=True)
    out = ddpm_sample(lambda x, t: w * x + 0.1, lambda: torch.zeros(4, 2), ddpm_reverse_chain(ab))
    again = ddpm_sample(lambda x, t: w * x + 0.1, lambda: torch.zeros(4, 2), ddpm_reverse_chain(ab))
    assert torch.equal(out, again)
    out.sum().backward()
    assert w.grad is not None


def test_karras_boundaries():
    b = karras_boundaries(150)
    assert b[0].item() == pytest.approx(0.002, rel=1e-12) and b[-1].item() == pytest.approx(80.0, rel=1e-12)
    assert (b.diff() > 0).all()
    mid = (0.002 ** (1 / 7) + 0.5 * (80 ** (1 / 7) - 0.002 ** (1 / 7))) ** 7
    assert karras_boundaries(3)[1].item() == pytest.approx(mid, rel=1e-12)
    with pytest.raises(ValueError):
        karras_boundaries(1)


def test_curriculum_runs_from_s0_to_s1():
    total = 50_000
    ns = [consistency_curriculum(k, total) for k in range(0, total + 1, 500)]
    assert ns[0] == 2 and ns[-1] == 150
    assert all(a <= b for a, b in zip(ns, ns[1:]))
    # The code's inline form: ceil(sqrt(k (150^2 - 4) / K + 4) - 1) + 1.
    assert consistency_curriculum(12_345, total) == math.ceil(math.sqrt(12_345 * (150**2 - 4) / total + 4) - 1) + 1


def test_boundary_condition_of_the_scalings():
    # f(x, ε) = x exactly: c_skip(ε) = 1 and c_out(ε) = 0, in float32 as used by the policy.
    c_skip, c_out = consistency_scalings(torch.tensor([0.002], dtype=torch.float32))
    assert c_skip.item() == 1.0 and c_out.item() == 0.0
    c_skip, c_out = consistency_scalings(torch.tensor([80.0], dtype=torch.float64))
    assert c_skip.item() == pytest.approx(0.25 / (79.998**2 + 0.25))
    assert c_out.item() == pytest.approx(0.5 * 79.998 / math.sqrt(6400.25))


def test_consistency_sampling_levels():
    assert consistency_sampling_levels(1) == [80.0]
    assert consistency_sampling_levels(2) == [80.0, 2.0]
    np.testing.assert_allclose(consistency_sampling_levels(5), [80.0, 60.5, 41.0, 21.5, 2.0])
    with pytest.raises(ValueError):
        consistency_sampling_levels(0)


def test_consistency_sampler_adds_the_right_noise_between_steps():
    calls = []

    def f(x: torch.Tensor, tau: float) -> torch.Tensor:
        calls.append((tau, x.clone()))
        return torch.zeros_like(x)  # a "perfect" denoiser to 0

    ones = torch.ones(3, 2)
    out = consistency_sample(f, lambda: ones, [80.0, 21.5, 2.0])
    assert [c[0] for c in calls] == [80.0, 21.5, 2.0]
    torch.testing.assert_close(calls[0][1], 80.0 * ones)  # x_T = T z
    torch.testing.assert_close(calls[1][1], math.sqrt(21.5**2 - 0.002**2) * ones)
    torch.testing.assert_close(calls[2][1], math.sqrt(2.0**2 - 0.002**2) * ones)
    assert torch.equal(out, torch.zeros(3, 2))


def test_softmax_select():
    cands = torch.arange(12.0).view(2, 3, 2)
    # Overwhelming scores pick their argmax whatever the uniform draw.
    scores = torch.tensor([[0.0, 100.0, 0.0], [0.0, 0.0, 100.0]])
    for u in (0.01, 0.5, 0.99):
        out = softmax_select(cands, scores, torch.full((2,), u))
        torch.testing.assert_close(out, torch.stack([cands[0, 1], cands[1, 2]]))
    # Inverse-CDF sampling reproduces softmax(scores) frequencies.
    scores = torch.tensor([[0.0, math.log(2.0), math.log(3.0)]])
    u = torch.rand(60_000)
    picks = softmax_select(torch.arange(3.0).view(1, 3, 1).expand(60_000, 3, 1), scores.expand(60_000, 3), u)
    freq = torch.bincount(picks.long().ravel(), minlength=3).float() / 60_000
    torch.testing.assert_close(freq, torch.tensor([1 / 6, 2 / 6, 3 / 6]), atol=0.01, rtol=0)
