"""QAM / TRQAM: the lean adjoint, the path-KL estimator, the dual update, chunks, the BC-pretraining pipeline."""

import numpy as np
import pytest
import torch

from agents import QAM, TRQAM
from agents.core.networks import MLP
from agents.qam import lean_adjoints, memoryless_noise_scale
from hub import CheckpointError


def _make(cls, dataset, **kw):
    args = dict(env=None, observation_space=dataset.observation_space, action_space=dataset.action_space,
                actor_hidden_dims=[32, 32], value_hidden_dims=[32, 32], batch_size=16, num_qs=3, flow_steps=4,
                seed=0)
    return cls(**{**args, **kw})


def test_lean_adjoint_recursion_matches_autograd_through_the_unrolled_rollout():
    torch.manual_seed(0)
    net, critic = MLP(3 + 1, [16, 16], 3), MLP(3, [16], 1)
    steps, h, tau = 5, 1 / 5, 0.7

    def drift(x, t):
        return 2 * net(torch.cat([x, t], -1)) - x / t

    # A trajectory that follows the drift exactly, x_{i+1} = x_i + h drift(x_i, t_i + h), so the chain rule through
    # the unrolled rollout and the VJP recursion must agree.
    x0 = torch.randn(6, 3)
    xs, ts, x = [], [], x0.clone().requires_grad_(True)
    for i in range(steps):
        t = torch.full((6, 1), i * h)
        xs.append(x)
        ts.append(t)
        x = x + h * drift(x, t + h)
    objective = -tau * critic(x).sum()
    expected = torch.autograd.grad(objective, xs)
    x_T = x.detach().requires_grad_(True)
    terminal = torch.autograd.grad(-tau * critic(x_T).sum(), x_T)[0]
    got = lean_adjoints(drift, [v.detach() for v in xs], ts, terminal, h)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_path_kl_is_zero_when_the_finetuned_flow_is_the_base(toy_dataset):
    agent = _make(QAM, toy_dataset)
    agent.load_offline_data(toy_dataset)
    pi = agent.policy
    pi.actor_fast.load_state_dict(pi.target_actor_slow.state_dict())
    _, info = agent.actor_loss(agent.replay_buffer.sample(16))
    assert info["path_kl"].item() == 0.0
    pi.actor_fast.weights[-1].data.add_(0.1)
    _, info = agent.actor_loss(agent.replay_buffer.sample(16))
    assert info["path_kl"].item() > 0.0


def test_adjoint_matching_optimum_is_the_tilted_velocity(toy_dataset):
    # The loss ‖2Δv/σ + σ ã‖² vanishes at Δv = -σ² ã / 2: check the closed form the module docstring states.
    agent = _make(TRQAM, toy_dataset)
    agent.load_offline_data(toy_dataset)
    xs, adjs, ts = agent.adjoint_states(agent.replay_buffer.sample(16)["observations"])
    sigma = memoryless_noise_scale(ts, 1 / agent.flow_steps) * agent.sigma_scale()
    delta_v = -sigma.square() * adjs / 2
    assert (2 * delta_v / sigma + sigma * adjs).abs().max() < 1e-5
    assert xs.shape == adjs.shape == (agent.flow_steps, 16, 2 * agent.action_horizon)


def test_dual_update_moves_lambda_toward_the_budget_and_stays_in_range(toy_dataset):
    agent = _make(TRQAM, toy_dataset, kl_budget=1.0, eta_lambda=0.5, lambda_min=0.1, lambda_max=5.0)
    pi = agent.policy
    for _ in range(200):
        agent.dual_update(torch.tensor(10.0))  # far over budget: clipped at 2ε, λ rises
    assert pi.kl_ema.item() == pytest.approx(2.0, abs=1e-3) and pi.dual_lambda.item() == 5.0
    for _ in range(200):
        agent.dual_update(torch.tensor(0.0))  # under budget: λ falls to its floor
    assert pi.dual_lambda.item() == pytest.approx(0.1)
    one = _make(TRQAM, toy_dataset)
    one.dual_update(torch.tensor(1.5))  # the EMA starts at 0, as in the code: D̄ = 0.15, still under ε = 1
    assert one.policy.kl_ema.item() == pytest.approx(0.15)
    assert one.policy.dual_lambda.item() == pytest.approx(1.0 + 0.01 * (0.15 - 1.0))


def test_chunked_agent_trains_predicts_open_loop_and_reloads(toy_dataset, tmp_path):
    agent = _make(TRQAM, toy_dataset, action_horizon=3)
    agent.learn_offline(toy_dataset, 5, log_interval=0)
    assert agent.policy.dual_lambda.item() != 1.0  # the dual update ran
    obs = toy_dataset.observations[:2]
    a0, state = agent.predict(obs, deterministic=True, episode_start=np.ones(2, bool))
    chunk = agent.policy.sample_actions(torch.as_tensor(obs), deterministic=True).detach().numpy()
    np.testing.assert_allclose(a0, agent.policy.unscale_action(chunk[:, :2]), atol=1e-5)
    a1, _ = agent.predict(obs, state=state, deterministic=True, episode_start=np.zeros(2, bool))
    np.testing.assert_allclose(a1, agent.policy.unscale_action(chunk[:, 2:4]), atol=1e-5)  # next action of the chunk
    agent.save(tmp_path / "m")
    back = TRQAM.load(tmp_path / "m")
    assert back.policy.dual_lambda.item() == agent.policy.dual_lambda.item()
    np.testing.assert_allclose(back.predict(obs, deterministic=True)[0], a0, atol=1e-6)


def test_bc_only_pretraining_then_finetuning_from_it(toy_dataset, tmp_path):
    bc = _make(QAM, toy_dataset, bc_only=True, action_horizon=2)
    critic_before = [p.clone() for p in bc.policy.critic.parameters()]
    bc.learn_offline(toy_dataset, 3, log_interval=0)
    assert all(torch.equal(a, b) for a, b in zip(critic_before, bc.policy.critic.parameters()))
    assert bc.policy.acting_network == "actor_slow"
    bc.save(tmp_path / "bc")
    ft = _make(TRQAM, toy_dataset, action_horizon=2)
    ft.init_from_bc(tmp_path / "bc")
    for name in ("actor_fast", "actor_slow", "target_actor_slow"):
        for a, b in zip(getattr(ft.policy, name).parameters(), bc.policy.actor_slow.parameters()):
            assert torch.equal(a, b)
    assert ft.config["base_model"] == str(tmp_path / "bc")
    ft.save(tmp_path / "ft")
    assert TRQAM.load(tmp_path / "ft").config["training"]["base_model"] == str(tmp_path / "bc")
    with pytest.raises(CheckpointError, match="action_horizon"):
        _make(TRQAM, toy_dataset, action_horizon=3).init_from_bc(tmp_path / "bc")


def test_critic_target_uses_the_chunk_discount(toy_dataset):
    agent = _make(QAM, toy_dataset, action_horizon=3, gamma=0.5, rho=0.0)
    agent.load_offline_data(toy_dataset)
    batch = agent.replay_buffer.sample(16, horizon=3)
    batch["masks"] = torch.ones(16)
    batch["valid"] = torch.ones(16, 3)
    batch["rewards"] = torch.ones(16, 3)
    with torch.no_grad():
        for p in agent.policy.target_critic.parameters():
            p.zero_()
        for p in agent.policy.critic.parameters():
            p.zero_()
        agent.policy.target_critic.net.biases[-1].fill_(8.0)  # Q̄ = 8 everywhere, Q = 0
    loss, _ = agent.critic_loss(batch)
    assert loss.item() == pytest.approx((1 + 0.5 + 0.25 + 0.125 * 8) ** 2)


def test_sparse_reward_and_invalid_arguments(toy_dataset):
    agent = _make(QAM, toy_dataset, sparse_reward=True)
    agent.learn_offline(toy_dataset, 2, log_interval=0)
    with pytest.raises(ValueError, match="adjoint_critic"):
        _make(QAM, toy_dataset, adjoint_critic="q")
    with pytest.raises(ValueError, match="lambda_min"):
        _make(TRQAM, toy_dataset, lambda_min=2.0)


def test_qam_f_distils_a_one_step_actor_that_acts(toy_dataset, tmp_path):
    agent = _make(QAM, toy_dataset, fql_alpha=10.0, action_horizon=2)
    assert agent.policy.acting_network == "one_step_actor"
    agent.load_offline_data(toy_dataset)
    loss, info = agent.actor_loss(agent.replay_buffer.sample(16, horizon=2))
    loss.backward()
    assert {"distill_loss", "q_loss"} <= set(info)
    assert all(p.grad is None for p in agent.policy.critic.parameters())  # the Q term leaves the critic alone
    assert all(p.grad is not None for p in agent.policy.one_step_actor.parameters())
    agent.learn_offline(toy_dataset, 3, log_interval=0)
    obs = toy_dataset.observations[:3]
    chunk = agent.policy.sample_actions(torch.as_tensor(obs), deterministic=True)
    z = torch.zeros(3, agent.policy.chunk_dim)
    expected = agent.policy.one_step_actor(torch.cat([torch.as_tensor(obs), z], -1)).clamp(-1, 1)
    torch.testing.assert_close(chunk, expected)
    agent.save(tmp_path / "f")
    assert QAM.load(tmp_path / "f").sampler_settings() == {"sampler": "one-step actor (QAM-F)"}


def test_qam_e_edits_the_flow_chunk_within_its_scale(toy_dataset, tmp_path):
    agent = _make(QAM, toy_dataset, edit_scale=0.1, action_horizon=2)
    pi = agent.policy
    obs = torch.as_tensor(toy_dataset.observations[:64])
    with torch.no_grad():
        flow = pi.flow_actions(obs, torch.zeros(64, pi.chunk_dim), "actor_fast")
        edited = pi.sample_actions(obs, deterministic=True)
    assert (edited - flow).abs().max() <= 0.1 + 1e-6 and (edited - flow).abs().max() > 0
    # the tanh-Gaussian log-density matches torch's transformed distribution
    delta, log_prob = pi.edit(obs, flow)
    mean, log_std = pi.edit_actor(torch.cat([obs, flow], -1)).chunk(2, -1)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.clamp(-20, 2).exp()), [torch.distributions.TanhTransform()])
    torch.testing.assert_close(log_prob, dist.log_prob(delta.clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1), rtol=1e-3, atol=1e-3)
    alpha_before = pi.edit_log_alpha.item()
    agent.learn_offline(toy_dataset, 3, log_interval=0)
    assert pi.edit_log_alpha.item() != alpha_before  # the temperature is tuned
    agent.save(tmp_path / "e")
    back = QAM.load(tmp_path / "e")
    np.testing.assert_allclose(back.predict(toy_dataset.observations[:2], deterministic=True)[0],
                               agent.predict(toy_dataset.observations[:2], deterministic=True)[0], atol=1e-6)
    with pytest.raises(ValueError, match="exclusive"):
        _make(QAM, toy_dataset, edit_scale=0.1, fql_alpha=1.0)
