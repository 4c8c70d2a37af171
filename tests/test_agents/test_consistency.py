"""Consistency-BC and Consistency-AC (``agents/consistency.py``)."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents import ConsistencyAC, ConsistencyBC, Dataset
from agents.core.samplers import consistency_curriculum, karras_boundaries


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
        if cls is ConsistencyAC:
            args.update(value_hidden_dims=[32, 32], candidates=4)
        args.update(kw)
        return cls(**args)

    return build


def test_boundary_condition_f_of_x_at_eps_is_x(toy_dataset, make):
    for backbone in ("mlp", "ln_resnet"):
        pi = make(ConsistencyAC, toy_dataset, backbone=backbone).policy
        x, obs = 3 * torch.randn(64, 2), torch.randn(64, 4)
        assert torch.equal(pi.consistency_fn(x, 0.002, obs), x)
        assert torch.equal(pi.consistency_fn(x, torch.full((64, 1), 0.002), obs), x)
        assert not torch.allclose(pi.consistency_fn(x, 1.0, obs), x)


def test_losses_are_finite_and_logged(toy_dataset, make):
    agent = make(ConsistencyAC, toy_dataset, eta=0.3)
    agent.load_offline_data(toy_dataset)
    batch = agent.replay_buffer.sample(32)
    critic_loss, critic_info = agent.critic_loss(batch)
    tau_lo, tau_hi = agent.noise_levels(32, torch.device("cpu"))
    loss, info = agent.actor_loss(batch | {"tau_lo": tau_lo, "tau_hi": tau_hi})
    assert torch.isfinite(critic_loss) and set(critic_info) == {"critic_loss", "q_mean", "target_q_mean"}
    assert set(info) == {"actor_loss", "bc_loss", "consistency_loss", "q_loss"}
    assert torch.isclose(info["actor_loss"], info["bc_loss"] + 0.3 * info["q_loss"])


def test_loss_scaling_is_k_over_the_gap(toy_dataset, make):
    agent = make(ConsistencyBC, toy_dataset)
    obs, act = torch.randn(8, 4), torch.rand(8, 2) * 2 - 1
    lo, hi = torch.full((8, 1), 1.0), torch.full((8, 1), 1.5)
    torch.manual_seed(0)
    scaled, raw = agent.bc_loss(obs, act, lo, hi)
    assert torch.isclose(scaled, 100.0 / 0.5 * raw)
    unscaled = make(ConsistencyBC, toy_dataset, loss_scale=None)
    unscaled.policy.load_state_dict(agent.policy.state_dict())
    torch.manual_seed(0)
    a, b = unscaled.bc_loss(obs, act, lo, hi)
    assert torch.equal(a, b) and torch.isclose(b, raw)


def test_noise_levels_follow_the_curriculum(toy_dataset, make):
    agent = make(ConsistencyBC, toy_dataset, curriculum_steps=100)
    lo, hi = agent.noise_levels(4096, torch.device("cpu"))
    grid = karras_boundaries(2).float()  # k = 0: N = 2, the whole range in one gap
    assert torch.equal(lo, grid[0].expand(4096, 1)) and torch.equal(hi, grid[1].expand(4096, 1))
    agent._n_updates = 99  # near the end of a period: N(99) levels, adjacent pairs
    n = consistency_curriculum(99, 100)
    grid = karras_boundaries(n).float()
    lo, hi = agent.noise_levels(4096, torch.device("cpu"))
    idx = torch.searchsorted(grid, lo.ravel())
    assert torch.equal(grid[idx], lo.ravel()) and torch.equal(grid[idx + 1], hi.ravel())
    assert len(torch.unique(lo)) == n - 1  # every gap is drawn
    agent._n_updates = 100  # the code restarts the curriculum every period
    assert torch.equal(agent.noise_levels(8, torch.device("cpu"))[0], karras_boundaries(2).float()[0].expand(8, 1))


def test_actor_loss_trains_the_actor_only(toy_dataset, make):
    agent = make(ConsistencyAC, toy_dataset)
    agent.load_offline_data(toy_dataset)
    batch = agent.replay_buffer.sample(32)
    lo, hi = agent.noise_levels(32, torch.device("cpu"))
    agent.actor_loss(batch | {"tau_lo": lo, "tau_hi": hi})[0].backward()
    assert all(p.grad is None for p in agent.policy.critic.parameters())
    assert all(p.grad is None for p in agent.policy.ema_actor.parameters())  # the teacher is a stop-gradient
    assert all(p.grad is not None for p in agent.policy.actor.parameters())


def test_q_norm_and_max_q_backup_run(toy_dataset, make):
    agent = make(ConsistencyAC, toy_dataset, q_norm=True, max_q_backup=True, grad_norm=None)
    agent.learn_offline(toy_dataset, 5, log_interval=0)
    assert all(torch.isfinite(p).all() for p in agent.policy.parameters())


def test_bc_learns_a_two_mode_dataset():
    # Actions ±0.8 with equal probability whatever the (constant) observation: a maximum-likelihood Gaussian policy
    # puts 29% of its samples in |a| < 0.3. The EMA teacher follows from the first step and the curriculum spans the
    # run, to fit in a few seconds (the paper's 0.995 from step 1000 and 50K-step periods are for runs of 1M+ steps).
    rng = np.random.default_rng(0)
    n = 2048
    obs = np.zeros((n, 2), np.float32)
    act = np.where(rng.random((n, 1)) < 0.5, -0.8, 0.8).astype(np.float32)
    ds = Dataset.from_arrays(obs, act, np.zeros(n), obs, np.zeros(n), action_space=spaces.Box(-1, 1, (1,)))
    agent = ConsistencyBC(
        observation_space=ds.observation_space,
        action_space=ds.action_space,
        actor_hidden_dims=[64, 64],
        batch_size=256,
        learning_rate=3e-3,
        grad_norm=10.0,
        ema_start=0,
        ema_every=1,
        ema_decay=0.95,
        curriculum_steps=2500,
        seed=1,
    )
    agent.learn_offline(ds, 2500, log_interval=0)
    samples = agent.predict(np.zeros((4000, 2), np.float32))[0].ravel()  # 2 sampling steps, the default
    assert (samples < -0.4).mean() > 0.3 and (samples > 0.4).mean() > 0.3
    assert (np.abs(samples) < 0.3).mean() < 0.1


def test_predict_shapes_and_sampler_options(toy_dataset, make):
    for cls in (ConsistencyBC, ConsistencyAC):
        agent = make(cls, toy_dataset)
        a, state = agent.predict(toy_dataset.observations[0], deterministic=True)
        assert a.shape == (2,) and state is None
        b, _ = agent.predict(toy_dataset.observations[:7], deterministic=True)
        np.testing.assert_allclose(b[0], a, atol=1e-5)
        for k in (1, 2, 5, 10):
            acts = agent.predict(toy_dataset.observations[:3], sampling_steps=k)[0]
            assert acts.shape == (3, 2) and (np.abs(acts) <= 1).all()
        with pytest.raises(ValueError, match="sampling_steps"):
            agent.predict(toy_dataset.observations[0], sampling_steps=0)
    with pytest.raises(ValueError, match="needs a critic"):
        make(ConsistencyBC, toy_dataset).predict(toy_dataset.observations[0], candidates=8)
    ac = make(ConsistencyAC, toy_dataset, sampling_steps=5)
    assert ac.predict(toy_dataset.observations[:5], candidates=16)[0].shape == (5, 2)
    assert ac.sampler_settings()["sampling_steps"] == 5 and ac.sampler_settings()["candidates"] == 4
    with pytest.raises(ValueError, match="backbone"):
        make(ConsistencyBC, toy_dataset, backbone="unet")


def test_save_load_gives_identical_actions(tmp_path, toy_dataset, make):
    for cls, kw in ((ConsistencyBC, {}), (ConsistencyAC, {}), (ConsistencyAC, {"backbone": "ln_resnet"})):
        agent = make(cls, toy_dataset, **kw)
        agent.learn_offline(toy_dataset, 20, log_interval=0)
        path = tmp_path / f"{cls.__name__}-{kw.get('backbone', 'mlp')}"
        agent.save(path)
        loaded = cls.load(path)
        assert loaded.get_config() == agent.get_config()
        obs = toy_dataset.observations[:16]
        torch.manual_seed(3)
        a = agent.predict(obs)[0]
        torch.manual_seed(3)
        b = loaded.predict(obs)[0]
        np.testing.assert_array_equal(a, b)
        for target, online in loaded.policy.target_networks.items():  # EMA teacher (and target critic) re-initialised
            for p, q in zip(getattr(loaded.policy, online).parameters(), getattr(loaded.policy, target).parameters()):
                assert torch.equal(p, q)


def test_resumed_training_matches_an_uninterrupted_run(tmp_path, toy_dataset, make):
    # Targets, EMA teacher, both optimisers, RNG and step counter (hence the curriculum) come back from the state.
    full = make(ConsistencyAC, toy_dataset, ema_start=2, ema_every=1, curriculum_steps=8)
    full.learn_offline(toy_dataset, 10, log_interval=0)
    half = make(ConsistencyAC, toy_dataset, ema_start=2, ema_every=1, curriculum_steps=8)
    half.learn_offline(toy_dataset, 5, log_interval=0)
    half.save(tmp_path / "ckpt")
    half.save_training_state(tmp_path / "ckpt")
    resumed = ConsistencyAC.load(tmp_path / "ckpt", training_state=True)
    resumed.learn_offline(toy_dataset, 5, log_interval=0, reset_num_timesteps=False)
    for p, q in zip(full.policy.state_dict().values(), resumed.policy.state_dict().values()):
        assert torch.equal(p, q)


def test_actions_do_not_depend_on_the_rest_of_the_batch(toy_dataset, make):
    agent = make(ConsistencyAC, toy_dataset, candidates=8)
    obs = toy_dataset.observations[:6]

    def gens():
        return [torch.Generator().manual_seed(i) for i in range(6)]

    together = agent.predict(obs, generators=gens())[0]
    g = gens()
    alone = np.stack([agent.predict(obs[i], generators=[g[i]])[0] for i in range(6)])
    np.testing.assert_array_equal(together, alone)


def test_bf16_precision_trains(toy_dataset, make):
    agent = make(ConsistencyAC, toy_dataset, precision="bf16")
    agent.learn_offline(toy_dataset, 5, log_interval=5)
    assert all(p.dtype == torch.float32 for p in agent.policy.parameters())
    assert np.isfinite(agent.predict(toy_dataset.observations[:4])[0]).all()


def test_end_to_end_on_a_tiny_ogbench_dataset(tmp_path, tiny_dataset, make):
    import zoo
    from evaluation import tasks

    env = tasks.get("ogbench/cube-single-task1").make_env(max_episode_steps=5)
    for cls in (ConsistencyBC, ConsistencyAC):
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


@pytest.mark.parametrize("cls", [ConsistencyBC, ConsistencyAC])
def test_every_hyperparameter_override_is_a_constructor_argument(cls, toy_dataset):
    from zoo.train import hyperparams_table

    table = hyperparams_table(cls.__name__)  # the strict loader the training CLI uses
    entries = [*(table.get("families") or {}).values(), *(table.get("tasks") or {}).values(), table["zoo_budget"]]
    for entry in entries:
        cls(observation_space=toy_dataset.observation_space, action_space=toy_dataset.action_space, **(entry or {}))
