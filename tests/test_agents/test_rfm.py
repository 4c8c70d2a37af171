"""RFM: the SNIS posterior mean against closed forms, the control variate, the tanh Jacobian, a tiny online run."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import RFM
from agents.rfm import log_sech2, snis_posterior_mean


def _gaussian_case(m=1.5, s=0.5, t=0.6, u=0.9, rows=256):
    """1-D: X_0 ~ N(0, 1), X_1 ~ N(m, s²), X_t = t X_1 + (1 - t) X_0. Closed form of E[X_0 | X_t = u]."""
    def log_target(x):
        return (-(x - m) ** 2 / (2 * s * s)).sum(-1)

    exact = (1 - t) / (t * t * s * s + (1 - t) ** 2) * (u - t * m)
    return log_target, torch.full((rows, 1), u), torch.full((rows, 1), t), exact


@pytest.mark.parametrize("eta", [0.0, 1.0, 0.5, "optimal"])
def test_snis_posterior_mean_matches_the_gaussian_closed_form(eta):
    torch.manual_seed(0)
    log_target, u_t, t, exact = _gaussian_case()
    est = snis_posterior_mean(log_target, u_t, t, num_samples=2048, eta=eta)
    assert est.shape == (256, 1)
    assert est.mean().item() == pytest.approx(exact, abs=0.01)


def test_noise_and_gradient_expectations_agree_in_expectation_and_the_control_variate_cuts_variance():
    torch.manual_seed(1)
    log_target, u_t, t, exact = _gaussian_case(rows=4000)
    e0 = snis_posterior_mean(log_target, u_t, t, num_samples=16, eta=0.0)
    e1 = snis_posterior_mean(log_target, u_t, t, num_samples=16, eta=1.0)
    eo = snis_posterior_mean(log_target, u_t, t, num_samples=16, eta="optimal")
    se = 3 * max(e0.std().item(), e1.std().item()) / math.sqrt(4000)
    assert abs(e0.mean().item() - e1.mean().item()) < 2 * se + 0.01
    assert abs(e1.mean().item() - exact) < se + 0.01
    # Here the posterior is tighter than the prior (the Gaussian target is narrow), so the optimal Λ must not do
    # worse than either end point.
    assert eo.var().item() <= 1.05 * min(e0.var().item(), e1.var().item())


def test_tanh_jacobian_term():
    u = torch.tensor([-30.0, -2.0, 0.0, 0.7, 25.0])
    expected = torch.log1p(-torch.tanh(u[1:4]) ** 2)
    torch.testing.assert_close(log_sech2(u[1:4]), expected)
    assert torch.isfinite(log_sech2(u)).all() and log_sech2(u)[0].item() == pytest.approx(2 * (math.log(2) - 30))
    # With a constant Q the target in u is the tanh image of the uniform law: its score is -2 tanh(u).
    env = gym.make("Pendulum-v1")
    agent = RFM(env=env, actor_hidden_dims=[16], value_hidden_dims=[16], seed=0)
    with torch.no_grad():
        for p in agent.policy.critic.parameters():
            p.zero_()
    obs = torch.zeros(3, 3)
    x = torch.randn(3, 5, 1, requires_grad=True)
    (grad,) = torch.autograd.grad(agent.log_target(obs)(x).sum(), x)
    torch.testing.assert_close(grad, -2 * torch.tanh(x.detach()))


def test_acting_picks_the_best_candidate_and_a_tiny_online_run(tmp_path):
    env = gym.make("Pendulum-v1")
    agent = RFM(env=env, actor_hidden_dims=[32, 32], value_hidden_dims=[32, 32], batch_size=32, num_samples=8,
                candidates=4, learning_starts=50, seed=0)
    obs = np.zeros((2, 3), np.float32)
    a, _ = agent.predict(obs)
    assert a.shape == (2, 1) and np.all(np.abs(a) <= 2.0)
    agent.learn(total_timesteps=120)
    assert agent.num_timesteps == 120 and agent.replay_buffer.n_online == 120
    assert agent._n_updates == 70  # SB3 trains once num_timesteps > learning_starts
    agent.save(tmp_path / "rfm")
    back = RFM.load(tmp_path / "rfm")
    assert back.eta == "optimal" and back.candidates == 4
    card = (agent.save_pretrained(tmp_path / "card") / "README.md").read_text()
    assert "Unofficial reimplementation" in card and "| interpolant | linear" in card and "120 env steps" in card
    np.testing.assert_allclose(back.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0],
                               atol=1e-6)
    with pytest.raises(ValueError, match="eta"):
        RFM(env=env, eta="best")
    # Best of M: with Q(s, a) = -(a - 0.3)², 64 candidates put the chosen action near 0.3.
    pi = agent.policy
    pi.critic.forward = lambda o, a, detach_params=False: -(a - 0.3).square().sum(-1).expand(2, -1)
    picked = pi.sample_actions(torch.zeros(200, 3), candidates=64)
    single = pi.sample_actions(torch.zeros(200, 3), candidates=1)
    assert (picked - 0.3).abs().mean() < 0.5 * (single - 0.3).abs().mean()


@pytest.mark.parametrize("eta", [0.0, "optimal"])
def test_the_policy_informed_proposal_estimates_the_same_posterior_mean(eta):
    log_target, u_t, t, exact = _gaussian_case(t=0.1, rows=512)
    torch.manual_seed(0)
    center = torch.full_like(u_t, 3.0)  # a poor centre: the prior half of the mixture keeps the estimate consistent
    est, ess = snis_posterior_mean(log_target, u_t, t, num_samples=2048, eta=eta, proposal_center=center,
                                   proposal_scale=torch.full_like(t, 0.3), return_ess=True)
    assert abs(est.mean().item() - exact) < 0.02 and ess.shape == (512,) and (ess >= 1).all()


def test_with_the_policy_proposal_the_actor_approaches_the_boltzmann_policy_of_a_fixed_critic():
    """Q(a) = -(a - 0.3)²  (c = 2) per dim, λ = 0.1: exp(Q/λ) is N(0.3, 0.22²) truncated to (-1, 1); an untrained flow's
    actions are ~3x wider. The prior proposal stays that wide at this budget (experiments/rfm_boltzmann_toy.py)."""
    torch.manual_seed(0)
    agent = RFM(env=None, observation_space=gym.spaces.Box(-1, 1, (1,)), action_space=gym.spaces.Box(-1, 1, (3,)),
                seed=0, actor_hidden_dims=[64, 64], posterior_proposal="policy")

    def log_target(obs):
        return lambda u: -(torch.tanh(u) - 0.3).square().sum(-1) / agent.temperature + log_sech2(u).sum(-1)

    agent.log_target = log_target
    opt = torch.optim.Adam(agent.policy.velocity_net.parameters(), lr=1e-3)
    for _ in range(300):
        loss, _ = agent.actor_loss({"observations": torch.zeros(256, 1)})
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        actions = agent.policy.sample_actions(torch.zeros(4000, 1), candidates=1)
    assert (actions.mean(0) - 0.3).abs().max() < 0.08
    assert ((actions.std(0) / 0.2) - 1).abs().max() < 0.35  # exact std of the truncated normal ≈ 0.21


def test_one_importance_draw_and_checkpoints_from_before_the_policy_proposal(tmp_path):
    log_target, u_t, t, _ = _gaussian_case(rows=4)
    est = snis_posterior_mean(log_target, u_t, t, num_samples=1, proposal_center=u_t, proposal_scale=t)
    assert est.shape == (4, 1)  # one draw: the prior's (the mixture needs two)
    agent = RFM(env=None, observation_space=gym.spaces.Box(-1, 1, (1,)), action_space=gym.spaces.Box(-1, 1, (1,)),
                actor_hidden_dims=[8], value_hidden_dims=[8])
    agent.save(tmp_path / "m")
    config = tmp_path / "m" / "config.json"
    import json

    cfg = json.loads(config.read_text())
    del cfg["algo_kwargs"]["posterior_proposal"]  # as written before the argument existed
    config.write_text(json.dumps(cfg))
    assert RFM.load(tmp_path / "m").posterior_proposal == "prior"


def test_importance_log_weights_are_fp32_under_bf16_training():
    """Q/λ is the weights' exponent: under bf16 autocast it must equal the fp32 value, not bf16's rounding of it."""
    env = gym.make("Pendulum-v1")
    agent = RFM("MlpPolicy", env, precision="bf16", actor_hidden_dims=[32], value_hidden_dims=[32], seed=0)
    obs = torch.randn(4, 3)
    u = torch.randn(4, 8, 1)
    reference = agent.log_target(obs)(u)
    with agent.autocast():
        under_bf16 = agent.log_target(obs)(u)
    assert under_bf16.dtype == torch.float32 and torch.equal(under_bf16, reference)
