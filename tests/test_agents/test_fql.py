import pickle

import numpy as np
import pytest
import torch

from agents import FQL
from hub import CheckpointError


def test_losses_are_finite_and_logged(toy_dataset, make_fql):
    agent = make_fql(toy_dataset)
    agent.load_offline_data(toy_dataset)
    batch = agent.replay_buffer.sample(32)
    critic_loss, critic_info = agent.critic_loss(batch)
    actor_loss, actor_info = agent.actor_loss(batch)
    assert critic_loss.ndim == 0 and torch.isfinite(critic_loss)
    assert set(actor_info) == {"actor_loss", "bc_flow_loss", "distill_loss", "q_loss"}
    assert torch.isclose(actor_info["actor_loss"],
                         actor_info["bc_flow_loss"] + agent.alpha * actor_info["distill_loss"] + actor_info["q_loss"])


def test_actor_q_term_does_not_update_the_critic(toy_dataset, make_fql):
    agent = make_fql(toy_dataset)
    agent.load_offline_data(toy_dataset)
    _, _ = agent.critic_loss(agent.replay_buffer.sample(32))
    actor_loss, _ = agent.actor_loss(agent.replay_buffer.sample(32))
    actor_loss.backward()
    assert all(p.grad is None for p in agent.policy.critic.parameters())
    assert any(p.grad is not None for p in agent.policy.actor_onestep_flow.parameters())


def test_bc_flow_learns_a_two_mode_dataset(make_fql):
    # Actions are +-0.8 with equal probability, independent of the state; the BC flow must keep both modes.
    from agents import Dataset

    rng = np.random.default_rng(0)
    n = 2048
    obs = np.zeros((n, 2), np.float32)
    act = np.where(rng.random((n, 1)) < 0.5, -0.8, 0.8).astype(np.float32)
    from gymnasium import spaces

    ds = Dataset.from_arrays(obs, act, np.zeros(n), obs, np.zeros(n), action_space=spaces.Box(-1, 1, (1,)))
    agent = make_fql(ds, actor_hidden_dims=[64, 64], batch_size=256, learning_rate=3e-3, seed=1)
    agent.learn_offline(ds, 600, log_interval=0)
    with torch.no_grad():
        samples = agent.policy.compute_flow_actions(torch.zeros(2000, 2), torch.randn(2000, 1)).numpy().ravel()
    assert (samples < -0.4).mean() > 0.3 and (samples > 0.4).mean() > 0.3
    assert (np.abs(samples) < 0.3).mean() < 0.1


def test_predict_single_and_batched(toy_dataset, make_fql):
    agent = make_fql(toy_dataset)
    a, state = agent.predict(toy_dataset.observations[0], deterministic=True)
    assert a.shape == (2,) and state is None
    b, _ = agent.predict(toy_dataset.observations[:7], deterministic=True)
    assert b.shape == (7, 2)
    np.testing.assert_allclose(b[0], a, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected \(4,\)"):
        agent.predict(np.zeros(3))
    with pytest.raises(TypeError, match="no sampler options"):
        agent.predict(toy_dataset.observations[0], sampling_steps=4)


def test_action_space_scaling(toy_dataset, make_fql):
    from gymnasium import spaces

    agent = make_fql(toy_dataset, action_space=spaces.Box(np.array([0.0, -2.0]), np.array([1.0, 2.0]), dtype=np.float32))
    acts, _ = agent.predict(toy_dataset.observations[:50])
    assert (acts[:, 0] >= 0).all() and (acts[:, 0] <= 1).all() and (np.abs(acts[:, 1]) <= 2).all()


def test_save_load_gives_identical_actions(tmp_path, toy_dataset, make_fql):
    agent = make_fql(toy_dataset)
    agent.learn_offline(toy_dataset, 20, log_interval=0)
    agent.save(tmp_path / "ckpt")
    loaded = FQL.load(tmp_path / "ckpt")
    obs = toy_dataset.observations[:16]
    torch.manual_seed(3)
    a = agent.predict(obs)[0]
    torch.manual_seed(3)
    b = loaded.predict(obs)[0]
    np.testing.assert_array_equal(a, b)
    # targets are re-initialised from the online critic
    for p, q in zip(loaded.policy.critic.parameters(), loaded.policy.target_critic.parameters()):
        assert torch.equal(p, q)


def test_no_load_path_unpickles(tmp_path, toy_dataset, make_fql, monkeypatch):
    import zoo

    agent = make_fql(toy_dataset)
    agent.learn_offline(toy_dataset, 5, log_interval=0)
    agent.save(tmp_path / "ckpt")
    agent.save_training_state(tmp_path / "ckpt")
    agent.save_replay_buffer(tmp_path / "buffer")

    def refuse(*args, **kwargs):
        raise AssertionError("a load path tried to unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = FQL.load(tmp_path / "ckpt", training_state=True)
    zoo.load(tmp_path / "ckpt")
    loaded.set_parameters(tmp_path / "ckpt")
    loaded.load_replay_buffer(tmp_path / "buffer")
    assert len(loaded.replay_buffer) == len(toy_dataset)


def test_foreign_and_corrupt_checkpoints_are_refused(tmp_path, toy_dataset, make_fql):
    agent = make_fql(toy_dataset)
    agent.save(tmp_path / "ok")
    (tmp_path / "model.zip").write_bytes(b"PK\x03\x04")
    with pytest.raises(CheckpointError, match="never loads pickled"):
        FQL.load(tmp_path / "model.zip")
    bad = tmp_path / "corrupt"
    bad.mkdir()
    (bad / "config.json").write_text((tmp_path / "ok" / "config.json").read_text())
    (bad / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="corrupt"):
        FQL.load(bad)
    small = make_fql(toy_dataset, actor_hidden_dims=[16])
    with pytest.raises(CheckpointError, match="do not match"):
        small.set_parameters(tmp_path / "ok")


def test_sb3_evaluate_policy_and_eval_callback_accept_the_agent(tmp_path, tiny_dataset, make_fql):
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    from evaluation import tasks

    env = tasks.get("ogbench/cube-single-task1").make_env(max_episode_steps=20)
    agent = make_fql(tiny_dataset, env=env)  # SB3 callbacks that read `training_env` need the agent's env
    mean, std = evaluate_policy(agent, env, n_eval_episodes=2)
    assert np.isfinite(mean)
    callback = EvalCallback(env, n_eval_episodes=1, eval_freq=5, log_path=str(tmp_path), verbose=0)
    agent.learn_offline(tiny_dataset, 10, callback=callback, log_interval=0, progress_bar=True)
    assert callback.n_calls == 10 and callback.evaluations_timesteps == [5, 10]


def test_online_learn_keeps_offline_data(tiny_dataset, make_fql):
    from evaluation import tasks

    env = tasks.get("ogbench/cube-single-task1").make_env(max_episode_steps=30)
    agent = make_fql(tiny_dataset, env=env, buffer_size=1000, online_fraction=0.5)
    agent.learn_offline(tiny_dataset, 10, log_interval=0)
    agent.learn(total_timesteps=40, progress_bar=True)
    assert agent.replay_buffer.n_offline == len(tiny_dataset)
    assert agent.replay_buffer.n_online == 40
    assert agent.num_timesteps == 40


def test_bf16_precision_trains(toy_dataset, make_fql):
    agent = make_fql(toy_dataset, precision="bf16")
    agent.learn_offline(toy_dataset, 10, log_interval=5)
    assert all(p.dtype == torch.float32 for p in agent.policy.parameters())
    with pytest.raises(ValueError, match="precision"):
        make_fql(toy_dataset, precision="fp16")


def test_actions_do_not_depend_on_the_rest_of_the_batch(toy_dataset, make_fql):
    agent = make_fql(toy_dataset, actor_hidden_dims=[64, 64, 64], precision="bf16")
    obs = toy_dataset.observations[:20]

    def gens():
        return [torch.Generator().manual_seed(i) for i in range(20)]

    together = agent.predict(obs, generators=gens())[0]
    g = gens()
    alone = np.stack([agent.predict(obs[i], generators=[g[i]])[0] for i in range(20)])
    np.testing.assert_array_equal(together, alone)
