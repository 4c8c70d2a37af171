"""MoMa QL (agents/moma_ql.py): the MMD² estimator, the kernel bandwidth, the time ordering of both samplers, the
gradient path of the Q term, two-mode BC with the 1-step sampler, fp32 MMD under bf16, checkpoints, and tiny runs."""

import itertools
import math
import statistics

import numpy as np
import pytest
import torch
from gymnasium import spaces

import agents.moma_ql as moma
from agents import ALGOS, Dataset, MoMaQL


@pytest.fixture
def make_moma():
    """Factory for a small MoMa QL (2x32 MLPs, batch 32) on a dataset's spaces."""

    def make(dataset, **kw):
        args = dict(env=None, observation_space=dataset.observation_space, action_space=dataset.action_space,
                    actor_hidden_dims=[32, 32], value_hidden_dims=[32, 32], batch_size=32, seed=0)
        args.update(kw)
        return MoMaQL(**args)

    return make


# ------------------------------------------------------------------------------------------------ the MMD² estimator


def _brute_force_mmd2(x: np.ndarray, y: np.ndarray, sigma: float | None) -> tuple[float, float]:
    """Gretton et al. 2012, Lemma 6, by double loops; sigma None: median heuristic over the pooled particles."""
    m = len(x)
    pooled = list(x) + list(y)
    if sigma is None:
        sq = [float(np.sum((a - b) ** 2)) for a, b in itertools.combinations(pooled, 2)]
        sigma = math.sqrt(statistics.median(sq))

    def k(a, b):
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * sigma**2))

    total = 0.0
    for i in range(m):
        for j in range(m):
            if i != j:
                total += k(x[i], x[j]) + k(y[i], y[j]) - k(x[i], y[j]) - k(x[j], y[i])
    return total / (m * (m - 1)), sigma


@pytest.mark.parametrize("bandwidth", ["median", 0.7])
def test_mmd2_matches_a_brute_force_double_loop(bandwidth):
    gen = torch.Generator().manual_seed(0)
    # 5 particles per group: 45 pooled pairs, so the median is a single pair distance, as statistics.median gives it
    x = torch.randn(3, 5, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(3, 5, 3, generator=gen, dtype=torch.float64) * 1.5 + 0.3
    mmd2, sigma = moma.mmd2_unbiased(x, y, bandwidth)
    assert mmd2.shape == sigma.shape == (3,) and mmd2.dtype == torch.float32
    for g in range(3):
        ref, ref_sigma = _brute_force_mmd2(x[g].numpy(), y[g].numpy(), None if bandwidth == "median" else bandwidth)
        assert mmd2[g].item() == pytest.approx(ref, abs=1e-5)
        assert sigma[g].item() == pytest.approx(ref_sigma, rel=1e-5)


@pytest.mark.parametrize("bandwidth", ["median", 0.5])
def test_mmd2_has_zero_mean_under_equal_distributions(bandwidth):
    gen = torch.Generator().manual_seed(1)
    n, m = 40_000, 4

    def mixture(shape):  # two modes, so the test is not only about Gaussians
        sign = torch.where(torch.rand(shape[:-1] + (1,), generator=gen) < 0.5, -1.0, 1.0)
        return sign * 0.8 + 0.2 * torch.randn(shape, generator=gen)

    x, y = mixture((n, m, 2)), mixture((n, m, 2))
    est, _ = moma.mmd2_unbiased(x, y, bandwidth)
    assert abs(est.mean().item()) < 4 * est.std().item() / math.sqrt(n)
    # Paired particles (y_i = -x_i: same marginal, fully dependent pairs, as the long and short jumps sharing ε_i):
    # the i ≠ j U-statistic keeps zero mean, the version that also uses the pairs k(x_i, y_i) does not.
    paired, _ = moma.mmd2_unbiased(x, -x, bandwidth)
    assert abs(paired.mean().item()) < 4 * paired.std().item() / math.sqrt(n)
    sigma2 = moma.median_bandwidth2(x, -x) if bandwidth == "median" else torch.tensor(bandwidth**2)
    kxy = torch.exp(-moma.pairwise_sq_dists(x, -x) / (2 * sigma2))
    total, diagonal = kxy.sum((-1, -2)), kxy.diagonal(dim1=-2, dim2=-1).sum(-1)
    # Gretton et al. 2012 Eq. 3 (cross term over all i, j) = the i ≠ j form + the difference of their cross terms
    all_cross = paired + 2 * (total - diagonal) / (m * (m - 1)) - 2 * total / m**2
    assert all_cross.mean().item() > 10 * all_cross.std().item() / math.sqrt(n)
    # and it does see a difference between distributions
    shifted, _ = moma.mmd2_unbiased(x, y + 0.3, bandwidth)
    assert shifted.mean().item() > 10 * shifted.std().item() / math.sqrt(n)


def test_median_bandwidth_is_scale_equivariant_and_floored():
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(8, 4, 3, generator=gen), torch.randn(8, 4, 3, generator=gen) + 0.5
    mmd2, sigma = moma.mmd2_unbiased(x, y)
    for c in (0.1, 3.0, 40.0):
        mmd2_c, sigma_c = moma.mmd2_unbiased(c * x, c * y)
        torch.testing.assert_close(sigma_c, c * sigma, rtol=1e-5, atol=0)
        torch.testing.assert_close(mmd2_c, mmd2, rtol=1e-4, atol=1e-6)  # MMD² is then scale-free
    # a fixed bandwidth is not: shrinking the particles drives its MMD² to zero
    assert moma.mmd2_unbiased(0.01 * x, 0.01 * y, 1.0)[0].abs().max() < 1e-3 * moma.mmd2_unbiased(x, y, 1.0)[0].abs().max()
    # collapsed groups get the floor sqrt(d) * min_bandwidth instead of a zero-width kernel
    point = torch.zeros(2, 4, 3)
    _, floor = moma.mmd2_unbiased(point, point + 1e-6, min_bandwidth=0.1)
    torch.testing.assert_close(floor, torch.full((2,), math.sqrt(3) * 0.1))
    # the bandwidth carries no gradient (the generator cannot widen its own kernel)
    xg = x.clone().requires_grad_(True)
    assert not moma.median_bandwidth2(xg, y).requires_grad


# ------------------------------------------------------------------------------------------------ time ordering


def test_training_times_satisfy_s_le_r_lt_t():
    torch.manual_seed(0)
    t_max = 0.994
    for k in (2.0, 6.0, 12.0):
        s, r, t = moma.sample_training_times(20_000, t_max, k)
        assert ((0 <= s) & (s <= r) & (r < t) & (t <= t_max)).all()
        decrement = t_max / (1 - t_max) / 2**k
        # r = s exactly when t is within one η-decrement of s, strictly between otherwise
        close = moma.eta(t) - moma.eta(s) <= decrement
        assert torch.equal(r[close], s[close]) and (r[~close] > s[~close]).all()
        torch.testing.assert_close(moma.eta(r[~close]), moma.eta(t[~close]) - decrement, rtol=1e-4, atol=1e-5)
    # larger k: shorter gaps t - r
    torch.manual_seed(1)
    s6, r6, t6 = moma.sample_training_times(5000, t_max, 6.0)
    torch.manual_seed(1)
    s12, r12, t12 = moma.sample_training_times(5000, t_max, 12.0)
    assert torch.equal(t6, t12) and ((t12 - r12) <= (t6 - r6) + 1e-7).all()


def test_grounded_draws_take_r_equal_s_at_every_time():
    torch.manual_seed(0)
    s, r, t = moma.sample_training_times(40_000, 0.994, 6.0, grounded_fraction=0.5)
    assert ((0 <= s) & (s <= r) & (r < t)).all()
    late = t.squeeze(1) > 0.95  # where k = 6 alone grounds only draws with s within one decrement of t
    torch.manual_seed(0)
    _, r0, _ = moma.sample_training_times(40_000, 0.994, 6.0)  # the same (s, t) without grounding
    alone = (r0[late] == s[late]).float().mean().item()
    assert alone < 0.1
    assert (r[late] == s[late]).float().mean().item() == pytest.approx(alone + 0.5 * (1 - alone), abs=0.03)


def test_sampler_jump_draws_sit_on_the_trained_samplers_jumps_grounded():
    torch.manual_seed(0)
    n, t_max = 40_000, 0.994
    s, r, t = moma.sample_training_times(n, t_max, 6.0, sampler_jump_fraction=0.5, sampler_steps=[1, 4])
    assert ((0 <= s) & (s <= r) & (r < t) & (t <= t_max + 1e-6)).all()
    jumps, weights = moma.sampler_jumps([1, 4], t_max)
    assert weights.sum().item() == pytest.approx(1.0) and len(jumps) == 5
    on = ((t - jumps[:, 0]).abs() < 1e-6) & ((s - jumps[:, 1]).abs() < 1e-6)  # (n, 5): which jump a draw is
    drawn = on.any(1)
    assert drawn.float().mean().item() == pytest.approx(0.5, abs=0.02)  # continuous draws land on a jump w.p. 0
    assert (r[drawn] == s[drawn]).all()  # grounded
    share = on[drawn].float().mean(0)  # the 1-step jump gets half, each of the 4-step jumps an eighth
    assert share.tolist() == pytest.approx([0.5, 0.125, 0.125, 0.125, 0.125], abs=0.02)


def test_sampler_jump_fraction_is_validated_trains_and_old_checkpoints_load_without_it(toy_dataset, make_moma):
    with pytest.raises(ValueError, match="sampler_jump_fraction"):
        make_moma(toy_dataset, sampler_jump_fraction=1.5)
    assert moma.MoMaQL.checkpoint_defaults["sampler_jump_fraction"] == 0.0
    agent = make_moma(toy_dataset, eta=0.3, sampler_jump_fraction=0.5)
    agent.learn_offline(toy_dataset, 3, log_interval=0)
    assert agent.num_timesteps == 3


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_few_step_sampler_times_are_monotone(toy_dataset, make_moma, steps, monkeypatch):
    times = moma.sampling_times(steps, 0.994)
    assert times[0].item() == pytest.approx(0.994) and times[-1].item() == 0.0 and len(times) == steps + 1
    assert (times[1:] < times[:-1]).all()
    pi = make_moma(toy_dataset).policy
    seen = []
    jump = pi.jump

    def spy(obs, x_t, s, t, target=False):
        seen.append((s[0, 0].item(), t[0, 0].item()))
        return jump(obs, x_t, s, t, target)

    monkeypatch.setattr(pi, "jump", spy)
    pi.sample(torch.zeros(5, 4), torch.randn(5, 2), steps)
    assert len(seen) == steps
    assert all(s < t for s, t in seen)
    assert all(seen[i + 1][1] == seen[i][0] for i in range(steps - 1))  # each jump starts where the last one landed
    assert seen[0][1] == pytest.approx(0.994) and seen[-1][0] == 0.0


def test_zero_length_jump_is_the_identity(toy_dataset, make_moma):
    pi = make_moma(toy_dataset).policy
    x = torch.randn(6, 2)
    for value in (0.0, 0.3, 0.9):
        t = torch.full((6, 1), value)
        torch.testing.assert_close(pi.jump(torch.randn(6, 4), x, t, t), x)


# ------------------------------------------------------------------------------------------------ losses and gradients


def test_losses_are_finite_and_compose(toy_dataset, make_moma):
    agent = make_moma(toy_dataset, eta=2.0)
    agent.load_offline_data(toy_dataset)
    batch = agent.replay_buffer.sample(32)
    critic_loss, critic_info = agent.critic_loss(batch)
    actor_loss, actor_info = agent.actor_loss(batch, 4)
    assert critic_loss.ndim == 0 and torch.isfinite(critic_loss) and torch.isfinite(actor_loss)
    assert set(actor_info) == {"actor_loss", "mmd_loss", "kernel_bandwidth", "q_loss"}
    torch.testing.assert_close(actor_info["actor_loss"], actor_info["mmd_loss"] + 2.0 * actor_info["q_loss"])
    # BC setting: the moment-matching term only, and no critic loss
    bc = make_moma(toy_dataset, eta=0.0)
    bc.load_offline_data(toy_dataset)
    _, info = bc.total_loss(batch, 4)
    assert set(info) == {"actor_loss", "mmd_loss", "kernel_bandwidth"}


def test_q_term_gradient_reaches_the_actor_through_the_sampler(toy_dataset, make_moma):
    agent = make_moma(toy_dataset, sampling_steps=4)
    obs = torch.as_tensor(toy_dataset.observations[:16])
    loss, _ = agent.q_loss(obs, 4)
    loss.backward()
    grads = [p.grad for p in agent.policy.actor.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None for p in agent.policy.critic.parameters())  # critic weights held fixed
    assert all(p.grad is None for p in agent.policy.target_actor.parameters())
    # ... and it flows through every jump: back to the sampler's starting noise
    noise = torch.randn(16, 2, requires_grad=True)
    actions = agent.policy.sample(obs, noise, 4)
    agent.policy.critic(obs, actions, detach_params=True).mean().backward()
    assert noise.grad is not None and noise.grad.abs().sum() > 0


def test_q_term_trains_every_step_count_it_will_be_sampled_with(toy_dataset, make_moma, monkeypatch):
    """The Q gradient reaches only the jumps it flows through: each count of ``q_sampling_steps`` gets its turn,
    the TD targets keep ``sampling_steps``, and the BC setting draws nothing."""
    agent = make_moma(toy_dataset, eta=1.0, sampling_steps=4, q_sampling_steps=(1, 2, 4, 8))
    agent.load_offline_data(toy_dataset)
    online, ema = [], []
    real_sample = type(agent.policy).sample

    def spy(pi, obs, noise, steps, target=False):
        (ema if target else online).append(steps)
        return real_sample(pi, obs, noise, steps, target)

    monkeypatch.setattr(type(agent.policy), "sample", spy)
    for _ in range(40):
        agent.update(agent.replay_buffer.sample(16))
    assert set(online) == {1, 2, 4, 8} and set(ema) == {4}
    only_default = make_moma(toy_dataset, eta=1.0, sampling_steps=2, q_sampling_steps=None)
    only_default.load_offline_data(toy_dataset)
    online.clear()
    only_default.update(only_default.replay_buffer.sample(16))
    assert online == [2]
    # checkpoints written before the option existed load with the Q term through sampling_steps alone
    assert moma.MoMaQL.checkpoint_defaults["q_sampling_steps"] is None
    with pytest.raises(ValueError, match="min_bandwidth"):
        make_moma(toy_dataset, min_bandwidth=0.0)
    for bad in ([], [0], "1,2", [1.5]):
        with pytest.raises(ValueError, match="q_sampling_steps"):
            make_moma(toy_dataset, q_sampling_steps=bad)
    assert make_moma(toy_dataset, q_sampling_steps=2).q_sampling_steps == [2]


def test_moment_matching_gradient_skips_the_short_jump_network(toy_dataset, make_moma):
    agent = make_moma(toy_dataset)
    loss, _ = agent.moment_matching_loss(torch.as_tensor(toy_dataset.observations[:16]),
                                         torch.as_tensor(toy_dataset.actions[:16]))
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.policy.actor.parameters())
    assert all(p.grad is None for p in agent.policy.target_actor.parameters())


def test_mmd_is_computed_in_fp32_under_bf16(toy_dataset, make_moma, monkeypatch):
    agent = make_moma(toy_dataset, precision="bf16")
    agent.load_offline_data(toy_dataset)
    outer, inner = [], []
    real_mmd2, real_dists = moma.mmd2_unbiased, moma.pairwise_sq_dists

    def spy_mmd2(x, y, *args, **kwargs):
        outer.append(torch.is_autocast_enabled("cpu"))
        return real_mmd2(x, y, *args, **kwargs)

    def spy_dists(x, y):
        inner.append((torch.is_autocast_enabled("cpu"), x.dtype, y.dtype))
        out = real_dists(x, y)
        inner.append((None, out.dtype, out.dtype))
        return out

    monkeypatch.setattr(moma, "mmd2_unbiased", spy_mmd2)
    monkeypatch.setattr(moma, "pairwise_sq_dists", spy_dists)
    _, info = agent.total_loss(agent.replay_buffer.sample(32), 4)
    assert outer == [True]  # the networks ran under bf16 autocast ...
    assert inner and all(enabled in (False, None) and dx == dy == torch.float32 for enabled, dx, dy in inner)  # ... the MMD not
    assert info["mmd_loss"].dtype == torch.float32
    agent.learn_offline(toy_dataset, 5, log_interval=0)
    assert all(p.dtype == torch.float32 for p in agent.policy.parameters())


# ------------------------------------------------------------------------------------------------ behaviour


def test_one_step_sampler_keeps_both_modes_of_a_two_mode_dataset():
    # Actions are +-0.8 with equal probability, independent of the (constant) state; BC setting (η = 0).
    rng = np.random.default_rng(0)
    n = 2048
    obs = np.zeros((n, 2), np.float32)
    act = np.where(rng.random((n, 1)) < 0.5, -0.8, 0.8).astype(np.float32)
    ds = Dataset.from_arrays(obs, act, np.zeros(n), obs, np.zeros(n), action_space=spaces.Box(-1, 1, (1,)))
    agent = MoMaQL(env=None, observation_space=ds.observation_space, action_space=ds.action_space, eta=0.0,
                   actor_hidden_dims=[64, 64], value_hidden_dims=[16], batch_size=128, learning_rate=3e-3, seed=1)
    critic_before = [p.clone() for p in agent.policy.critic.parameters()]
    agent.learn_offline(ds, 1500, log_interval=0)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        one_step = agent.policy.sample(torch.zeros(4000, 2), torch.randn(4000, 1, generator=gen), 1).numpy().ravel()
        four_step = agent.policy.sample(torch.zeros(4000, 2), torch.randn(4000, 1, generator=gen), 4).numpy().ravel()
    assert (one_step < -0.4).mean() >= 0.3 and (one_step > 0.4).mean() >= 0.3
    assert (np.abs(four_step) < 0.3).mean() < 0.1  # more steps: less mass between the modes
    # the BC setting never trains the critic
    assert all(torch.equal(a, b) for a, b in zip(critic_before, agent.policy.critic.parameters()))


def test_predict_takes_1_2_4_8_sampling_steps(toy_dataset, make_moma):
    agent = make_moma(toy_dataset)
    assert agent.get_config()["algo_kwargs"]["sampling_steps"] == 4
    obs = toy_dataset.observations[:7]
    outs = {}
    for k in (1, 2, 4, 8):
        a, state = agent.predict(obs, deterministic=True, sampling_steps=k)
        assert a.shape == (7, 2) and state is None and np.all(np.abs(a) <= 1)
        np.testing.assert_array_equal(a, agent.predict(obs, deterministic=True, sampling_steps=k)[0])
        outs[k] = a
    np.testing.assert_array_equal(outs[4], agent.predict(obs, deterministic=True)[0])  # the default is 4
    assert not np.allclose(outs[1], outs[8])
    single, _ = agent.predict(obs[0], deterministic=True, sampling_steps=2)
    np.testing.assert_allclose(single, outs[2][0], atol=1e-6)
    with pytest.raises(TypeError, match="sampling_steps"):
        agent.predict(obs, n_steps=4)
    with pytest.raises(ValueError, match="sampling_steps"):
        agent.predict(obs, sampling_steps=0)
    with pytest.raises(ValueError, match="sampling_steps"):
        make_moma(toy_dataset, sampling_steps=0)


def test_save_load_gives_identical_actions(tmp_path, toy_dataset, make_moma):
    agent = make_moma(toy_dataset, sampling_steps=2, precision="bf16")
    agent.learn_offline(toy_dataset, 20, log_interval=0)
    agent.save(tmp_path / "ckpt")
    loaded = MoMaQL.load(tmp_path / "ckpt")
    assert loaded.sampling_steps == 2 and loaded.policy.sampling_steps == 2  # the default travels with the checkpoint
    obs = toy_dataset.observations[:16]
    for kwargs in ({}, {"sampling_steps": 1}, {"sampling_steps": 8}):
        torch.manual_seed(3)
        a = agent.predict(obs, **kwargs)[0]
        torch.manual_seed(3)
        b = loaded.predict(obs, **kwargs)[0]
        np.testing.assert_array_equal(a, b)
    # targets (EMA actor and critics) are re-initialised from the online networks
    for online, target in loaded.policy.target_pairs():
        for p, q in zip(online.parameters(), target.parameters()):
            assert torch.equal(p, q)


def test_card_says_unofficial_and_lists_the_choices(tmp_path, toy_dataset, make_moma):
    agent = make_moma(toy_dataset)
    card = (agent.save_pretrained(tmp_path / "repo") / "README.md").read_text()
    assert "Unofficial reimplementation" in card
    assert "Choices made where the paper is silent" in card
    for choice in MoMaQL.choices:
        assert choice["name"] in card
    assert ALGOS["MoMaQL"] is MoMaQL


def test_tiny_offline_then_online_run(tiny_dataset, make_moma):
    from evaluation import tasks

    env = tasks.get("ogbench/cube-single-task1").make_env(max_episode_steps=30)
    agent = make_moma(tiny_dataset, env=env, eta=1.0, sampling_steps=2, buffer_size=1000, online_fraction=0.5)
    agent.learn_offline(tiny_dataset, 30, log_interval=10)
    assert agent._n_updates == 30
    for online, target in agent.policy.target_pairs():  # EMA targets moved toward, not onto, the online nets
        assert not all(torch.equal(p, q) for p, q in zip(online.parameters(), target.parameters()))
    agent.learn(total_timesteps=40)
    assert agent.replay_buffer.n_offline == len(tiny_dataset) and agent.replay_buffer.n_online == 40


def test_zoo_train_reads_the_hyperparameter_file(tmp_path, tiny_ogbench_dir):
    import json

    from zoo.train import hyperparams, train

    one_step_jumps = {"sampling_steps": 1, "q_sampling_steps": [1], "sampler_jump_fraction": 0.5}
    for task, eta in (("ogbench/puzzle-3x3-task1", 0.5), ("minari/mujoco/hopper/medium-v0", 0.3)):
        assert hyperparams("MoMaQL", task).items() >= (one_step_jumps | {"eta": eta}).items()
    assert hyperparams("MoMaQL", "ogbench/cube-single-task1")["actor_hidden_dims"] == [256] * 4
    train("momaql", "ogbench/cube-single-task1", steps=20, seed=0, out=tmp_path / "run", checkpoint_every=10,
          eval_episodes=0, dataset_dir=tiny_ogbench_dir, progress_bar=False, log_interval=10,
          overrides={"actor_hidden_dims": [32, 32], "value_hidden_dims": [32, 32], "batch_size": 32})
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert config["algo"] == "MoMaQL" and config["algo_kwargs"]["eta"] == 0.5  # the cube family's chosen setting
    assert config["algo_kwargs"]["sampler_jump_fraction"] == 0.5 and config["algo_kwargs"]["q_sampling_steps"] == [1]
    assert config["algo_kwargs"]["sampling_steps"] == 1 and config["training"]["steps"] == 20


def test_max_grad_norm_clips_the_actor_and_the_critics_apart(toy_dataset, make_moma):
    agent = make_moma(toy_dataset, max_grad_norm=1e-3)
    agent.load_offline_data(toy_dataset)
    seen = {}
    step = agent.optimizers["all"].step

    def spy(*args, **kwargs):
        for name in ("actor", "critic"):
            grads = [p.grad for p in getattr(agent.policy, name).parameters() if p.grad is not None]
            seen[name] = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item()
        return step(*args, **kwargs)

    agent.optimizers["all"].step = spy
    agent.update(agent.replay_buffer.sample(32))
    # each network's norm is clipped to the bound on its own (a joint clip would leave each below it)
    assert seen["actor"] == pytest.approx(1e-3, rel=1e-3) and seen["critic"] == pytest.approx(1e-3, rel=1e-3)
    assert agent.get_config()["algo_kwargs"]["max_grad_norm"] == 1e-3
    assert make_moma(toy_dataset).max_grad_norm is None  # the default: no clipping


def test_energy_kernel_trains(toy_dataset, make_moma):
    agent = make_moma(toy_dataset, kernel="energy", eta=1.0)
    agent.learn_offline(toy_dataset, 3, log_interval=0)
    loss, info = agent.total_loss(agent.replay_buffer.sample(16), 2)
    assert torch.isfinite(loss) and "mmd_loss" in info
    with pytest.raises(ValueError, match="kernel"):
        make_moma(toy_dataset, kernel="laplace")


def test_energy_kernel_is_unbiased_and_its_pull_does_not_fade_with_distance():
    torch.manual_seed(0)
    x, y = torch.randn(20_000, 4, 3), torch.randn(20_000, 4, 3)
    mmd2, sigma = moma.mmd2_unbiased(x, y, kernel="energy")
    assert abs(mmd2.mean().item()) < 4 * mmd2.std().item() / 20_000**0.5 and (sigma == 0).all()
    # brute force on one group: 1/(M(M-1)) Σ_{i≠j} ‖x_i - y_j‖ + ‖x_j - y_i‖ - ‖x_i - x_j‖ - ‖y_i - y_j‖
    a, b = x[0], y[0]
    ref = sum((a[i] - b[j]).norm() + (a[j] - b[i]).norm() - (a[i] - a[j]).norm() - (b[i] - b[j]).norm()
              for i in range(4) for j in range(4) if i != j) / 12
    torch.testing.assert_close(mmd2[0], ref, atol=1e-4, rtol=1e-4)
    # the gradient on a group shifted by D keeps its size as D grows (RBF with the median bandwidth: ~1/D)
    base = torch.randn(512, 4, 3) * 0.1
    grads = {}
    for kernel in ("energy", "rbf"):
        for shift in (1.0, 4.0):
            moved = (base + shift).requires_grad_(True)
            moma.mmd2_unbiased(moved, torch.randn(512, 4, 3) * 0.1, "median", 0.1, kernel)[0].mean().backward()
            grads[kernel, shift] = moved.grad.norm().item()
    assert grads["energy", 4.0] / grads["energy", 1.0] > 0.8
    assert grads["rbf", 4.0] / grads["rbf", 1.0] < 0.5
    with pytest.raises(ValueError, match="kernel"):
        moma.mmd2_unbiased(x, y, kernel="laplace")


def test_candidate_selection_keeps_the_critics_favourite(toy_dataset, make_moma):
    import torch

    agent = make_moma(toy_dataset, eta=1.0)
    obs = toy_dataset.observations[:6]
    # one candidate draws exactly the sampler's action (same noise stream), so the paper's acting is unchanged
    torch.manual_seed(3)
    plain, _ = agent.predict(obs, sampling_steps=1)
    torch.manual_seed(3)
    np.testing.assert_array_equal(plain, agent.predict(obs, sampling_steps=1, candidates=1)[0])
    # a critic that rates only the first action component: with many candidates the kept actions score higher
    pi = agent.policy
    with torch.no_grad():
        for p in pi.critic.parameters():
            p.zero_()
    pi.critic.forward = lambda o, a, **kw: 1e4 * a[..., :1].unsqueeze(0).expand(2, -1, -1)
    torch.manual_seed(0)
    one = agent.predict(np.repeat(obs, 50, axis=0), sampling_steps=1)[0][:, 0]
    torch.manual_seed(0)
    best = agent.predict(np.repeat(obs, 50, axis=0), sampling_steps=1, candidates=32)[0][:, 0]
    assert best.mean() > one.mean() + 1.5 * one.std()  # near-argmax of 32 draws: ~2 standard deviations up
    with pytest.raises(ValueError, match="candidates"):
        agent.predict(obs, candidates=0)
