"""Diffusion-BC and Diffusion-QL (``agents/diffusion_ql.py``)."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents import Dataset, DiffusionBC, DiffusionQL


@pytest.fixture
def make():
    """Factory for small agents (2x32 MLPs, batch 32, 4 candidates) on a dataset's spaces."""

    def build(cls, dataset, **kw):
        args = dict(
            observation_space=dataset.observation_space,
            action_space=dataset.action_space,
            actor_hidden_dims=[32, 32],
            batch_size=32,
            seed=0,
        )
        if cls is DiffusionQL:
            args.update(value_hidden_dims=[32, 32], candidates=4)
        args.update(kw)
        return cls(**args)

    return build


def two_mode_dataset(n: int = 2048) -> Dataset:
    """Actions ±0.8 with equal probability whatever the (constant) observation: a Gaussian policy fit by maximum
    likelihood is N(0, 0.8²) and puts 29% of its samples in |a| < 0.3."""
    rng = np.random.default_rng(0)
    obs = np.zeros((n, 2), np.float32)
    act = np.where(rng.random((n, 1)) < 0.5, -0.8, 0.8).astype(np.float32)
    return Dataset.from_arrays(obs, act, np.zeros(n), obs, np.zeros(n), action_space=spaces.Box(-1, 1, (1,)))


def test_losses_are_finite_and_logged(toy_dataset, make):
    agent = make(DiffusionQL, toy_dataset, eta=0.7)
    agent.load_offline_data(toy_dataset)
    batch = agent.replay_buffer.sample(32)
    critic_loss, critic_info = agent.critic_loss(batch)
    actor_loss, info = agent.actor_loss(batch)
    assert critic_loss.ndim == 0 and torch.isfinite(critic_loss)
    assert set(critic_info) == {"critic_loss", "q_mean", "target_q_mean"}
    assert set(info) == {"actor_loss", "bc_loss", "q_loss"}
    assert torch.isclose(info["actor_loss"], info["bc_loss"] + 0.7 * info["q_loss"])
    # The normalised Q term is -Q_i / mean|Q_j|: of magnitude ~1 whatever the scale of Q.
    assert info["q_loss"].abs() < 10


def test_actor_loss_trains_the_actor_only(toy_dataset, make):
    agent = make(DiffusionQL, toy_dataset)
    agent.load_offline_data(toy_dataset)
    agent.actor_loss(agent.replay_buffer.sample(32))[0].backward()
    assert all(p.grad is None for p in agent.policy.critic.parameters())
    assert all(p.grad is not None for p in agent.policy.actor.parameters())
    assert all(p.grad is None for p in agent.policy.ema_actor.parameters())


def test_max_q_backup_and_gradient_clipping_run(toy_dataset, make):
    agent = make(DiffusionQL, toy_dataset, max_q_backup=True, grad_norm=0.5)
    agent.learn_offline(toy_dataset, 5, log_interval=0)
    assert all(torch.isfinite(p).all() for p in agent.policy.parameters())
    assert agent.max_grad_norm == 0.5 and make(DiffusionQL, toy_dataset, grad_norm=0).max_grad_norm is None


def test_ema_actor_schedule(toy_dataset, make):
    # Frozen at the initial weights until ema_start, then updated every ema_every steps.
    agent = make(DiffusionQL, toy_dataset, ema_start=4, ema_every=2, ema_decay=0.5)
    init = [p.clone() for p in agent.policy.ema_actor.parameters()]
    agent.learn_offline(toy_dataset, 4, log_interval=0)  # steps 0..3: before ema_start
    assert all(torch.equal(a, b) for a, b in zip(init, agent.policy.ema_actor.parameters()))
    agent.learn_offline(toy_dataset, 1, log_interval=0, reset_num_timesteps=False)  # step 4: an EMA step
    after = [p.clone() for p in agent.policy.ema_actor.parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(init, after))
    agent.learn_offline(toy_dataset, 1, log_interval=0, reset_num_timesteps=False)  # step 5: none
    assert all(torch.equal(a, b) for a, b in zip(after, agent.policy.ema_actor.parameters()))


def test_bc_learns_a_two_mode_dataset():
    # N = 10: with the paper's N = 5 even the exact denoiser leaves ~12% of the samples between the modes
    # (tests/test_agents/test_samplers.py::test_ddpm_sampler_with_the_exact_denoiser).
    ds = two_mode_dataset()
    agent = DiffusionBC(
        observation_space=ds.observation_space,
        action_space=ds.action_space,
        actor_hidden_dims=[64, 64],
        diffusion_steps=10,
        batch_size=256,
        learning_rate=3e-3,
        seed=1,
    )
    agent.learn_offline(ds, 1500, log_interval=0)
    samples = agent.predict(np.zeros((4000, 2), np.float32))[0].ravel()
    assert (samples < -0.4).mean() > 0.3 and (samples > 0.4).mean() > 0.3
    assert (np.abs(samples) < 0.3).mean() < 0.1


def test_predict_shapes_and_sampler_options(toy_dataset, make):
    for cls in (DiffusionBC, DiffusionQL):
        agent = make(cls, toy_dataset)
        a, state = agent.predict(toy_dataset.observations[0], deterministic=True)
        assert a.shape == (2,) and state is None
        b, _ = agent.predict(toy_dataset.observations[:7], deterministic=True)
        assert b.shape == (7, 2)
        np.testing.assert_allclose(b[0], a, atol=1e-5)
        for k in (1, 2, 5):
            acts = agent.predict(toy_dataset.observations[:3], sampling_steps=k)[0]
            assert acts.shape == (3, 2) and (np.abs(acts) <= 1).all()
        with pytest.raises(ValueError, match="sampling_steps must be in"):
            agent.predict(toy_dataset.observations[0], sampling_steps=6)
        with pytest.raises(TypeError):
            agent.predict(toy_dataset.observations[0], n_steps=2)
    with pytest.raises(ValueError, match="needs a critic"):
        make(DiffusionBC, toy_dataset).predict(toy_dataset.observations[0], candidates=8)
    ql = make(DiffusionQL, toy_dataset)
    assert ql.predict(toy_dataset.observations[:5], candidates=16)[0].shape == (5, 2)
    assert ql.sampler_settings() == {
        "sampler": "ddpm",
        "sampling_steps": 5,
        "candidates": 4,
        "candidate_selection": "softmax of min(Q1, Q2)",
    }


def test_candidate_selection_keeps_the_best_action_when_q_is_sharp(toy_dataset, make):
    agent = make(DiffusionQL, toy_dataset, candidates=32)
    pi = agent.policy
    obs = torch.as_tensor(toy_dataset.observations[:1])
    # A critic that loves a[0] (x100): softmax selection must then return (nearly) the best of the candidates.
    pi.critic.forward = lambda o, a, detach_params=False: 100.0 * a[:, 0].expand(2, -1)
    torch.manual_seed(0)
    chosen = pi.sample_actions(obs)[0, 0]
    torch.manual_seed(0)
    n, k = 1, 32
    cands = pi.denoise(obs.repeat_interleave(k, 0), lambda: torch.randn(n, k, 2).reshape(n * k, 2))
    assert chosen >= cands[:, 0].max() - 0.05


def test_save_load_gives_identical_actions(tmp_path, toy_dataset, make):
    for cls in (DiffusionBC, DiffusionQL):
        agent = make(cls, toy_dataset)
        agent.learn_offline(toy_dataset, 20, log_interval=0)
        agent.save(tmp_path / cls.__name__)
        loaded = cls.load(tmp_path / cls.__name__)
        assert loaded.get_config() == agent.get_config()
        obs = toy_dataset.observations[:16]
        torch.manual_seed(3)
        a = agent.predict(obs)[0]
        torch.manual_seed(3)
        b = loaded.predict(obs)[0]
        np.testing.assert_array_equal(a, b)
        for target, online in loaded.policy.target_networks.items():  # EMA actor and target critic re-initialised
            for p, q in zip(getattr(loaded.policy, online).parameters(), getattr(loaded.policy, target).parameters()):
                assert torch.equal(p, q)


def test_actions_do_not_depend_on_the_rest_of_the_batch(toy_dataset, make):
    agent = make(DiffusionQL, toy_dataset, candidates=8)
    obs = toy_dataset.observations[:6]

    def gens():
        return [torch.Generator().manual_seed(i) for i in range(6)]

    together = agent.predict(obs, generators=gens())[0]
    g = gens()
    alone = np.stack([agent.predict(obs[i], generators=[g[i]])[0] for i in range(6)])
    np.testing.assert_array_equal(together, alone)


def test_bf16_precision_trains(toy_dataset, make):
    agent = make(DiffusionQL, toy_dataset, precision="bf16")
    agent.learn_offline(toy_dataset, 5, log_interval=5)
    assert all(p.dtype == torch.float32 for p in agent.policy.parameters())
    assert np.isfinite(agent.predict(toy_dataset.observations[:4])[0]).all()


def test_end_to_end_on_a_tiny_ogbench_dataset(tmp_path, tiny_dataset, make):
    import zoo
    from evaluation import tasks

    env = tasks.get("ogbench/cube-single-task1").make_env(max_episode_steps=5)
    for cls in (DiffusionBC, DiffusionQL):
        agent = make(cls, tiny_dataset, normalize_observations=True)
        agent.learn_offline(tiny_dataset, 10, log_interval=5)
        assert agent.num_timesteps == 10 and agent._n_updates == 10
        agent.save(tmp_path / cls.__name__, task="ogbench/cube-single-task1")
        loaded = zoo.load(tmp_path / cls.__name__)
        assert type(loaded) is cls
        obs, _ = env.reset(seed=0)
        for _ in range(5):
            action, _ = loaded.predict(obs)
            assert env.action_space.contains(action.astype(env.action_space.dtype))
            obs, *_ = env.step(action)
    env.close()


@pytest.mark.parametrize("cls", [DiffusionBC, DiffusionQL])
def test_every_hyperparameter_override_is_a_constructor_argument(cls, toy_dataset):
    from zoo.train import hyperparams_table

    table = hyperparams_table(cls.__name__)  # the strict loader the training CLI uses
    entries = [*(table.get("families") or {}).values(), *(table.get("tasks") or {}).values(), table["zoo_budget"]]
    for entry in entries:
        cls(observation_space=toy_dataset.observation_space, action_space=toy_dataset.action_space, **(entry or {}))
