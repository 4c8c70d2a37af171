import numpy as np
import torch

from agents.core.buffers import TransitionBuffer


def test_chunks_stop_at_trajectory_ends(toy_dataset):
    buf = TransitionBuffer(4, 2)
    buf.load_dataset(toy_dataset)
    g = torch.Generator().manual_seed(0)
    batch = buf.sample(512, horizon=5, generator=g)
    assert batch["actions"].shape == (512, 5, 2) and batch["valid"].shape == (512, 5)
    ends = toy_dataset.episode_ends
    # row r is valid at offset j iff no trajectory end in rows r .. r+j-1
    obs = toy_dataset.observations
    rows = [int(np.where((obs == o.numpy()).all(1))[0][0]) for o in batch["observations"][:64]]
    for b, r in enumerate(rows):
        for j in range(5):
            expected = not ends[r:r + j].any() and r + j < len(obs)
            assert bool(batch["valid"][b, j]) == expected
        last = r + int(batch["valid"][b].sum()) - 1
        assert torch.equal(batch["next_observations"][b], torch.from_numpy(toy_dataset.next_observations[last]))


def test_online_fraction_mixes_batches(toy_dataset):
    buf = TransitionBuffer(4, 2, online_capacity=100, online_fraction=0.5)
    buf.load_dataset(toy_dataset)
    n = 10
    marker = np.full((n, 4), 1234.0, np.float32)
    buf.add(marker, marker, np.zeros((n, 2)), np.zeros(n), np.zeros(n), np.zeros(n))
    batch = buf.sample(200, generator=torch.Generator().manual_seed(0))
    online = (batch["observations"] == 1234.0).all(1).sum()
    assert online == 100
    plain = TransitionBuffer(4, 2, online_capacity=100, online_fraction=None)
    plain.load_dataset(toy_dataset)
    plain.add(marker, marker, np.zeros((n, 2)), np.zeros(n), np.zeros(n), np.zeros(n))
    assert len(plain) == len(toy_dataset) + n


def test_online_ring_overwrites_oldest():
    buf = TransitionBuffer(1, 1, online_capacity=3)
    for i in range(5):
        o = np.array([[float(i)]], np.float32)
        buf.add(o, o, np.zeros((1, 1)), np.zeros(1), np.zeros(1), np.zeros(1))
    assert len(buf) == 3
    assert sorted(buf.observations[:, 0].tolist()) == [2.0, 3.0, 4.0]


def test_chunk_mask_is_the_minimum_over_the_chunk_and_td_terms_discount_it():
    from agents.core.buffers import chunk_td_terms

    n = 8
    obs = np.arange(n, dtype=np.float32)[:, None].repeat(4, 1)
    buf = TransitionBuffer(4, 2)
    ends = np.zeros(n, bool)
    ends[5] = True  # trajectory 0..5, then 6..7
    masks = np.ones(n, np.float32)
    masks[2] = 0.0  # a terminal (success) at row 2 inside the first trajectory
    buf.observations = torch.as_tensor(obs)
    buf.next_observations = torch.as_tensor(obs + 1)
    buf.actions = torch.zeros(n, 2)
    buf.rewards = torch.arange(n, dtype=torch.float32)
    buf.masks = torch.as_tensor(masks)
    buf.episode_ends = torch.as_tensor(ends)
    buf.n_offline, buf.n_online = n, 0
    rows = torch.tensor([0, 3, 4])
    buf._sample_rows = lambda batch_size, generator: rows  # noqa: SLF001 (fix the rows drawn)
    batch = buf.sample(3, horizon=3)
    assert batch["masks"].tolist() == [0.0, 1.0, 1.0]  # row 0's chunk 0..2 holds the terminal at row 2
    assert batch["valid"].tolist() == [[1, 1, 1], [1, 1, 1], [1, 1, 0]]  # chunk 4..6 crosses the end at row 5
    ret, discount, weight = chunk_td_terms(batch, gamma=0.5)
    assert ret.tolist() == [0 + 0.5 * 1 + 0.25 * 2, 3 + 0.5 * 4 + 0.25 * 5, 4 + 0.5 * 5]
    assert discount.tolist() == [0.0, 0.125, 0.125] and weight.tolist() == [1.0, 1.0, 0.0]
    assert torch.equal(batch["next_observations"][2], torch.full((4,), 6.0))  # last valid row is 5


def test_state_round_trip_saves_filled_rows_only(toy_dataset):
    buf = TransitionBuffer(4, 2, online_capacity=5)
    buf.load_dataset(toy_dataset)
    n = 7  # wraps the 5-slot ring
    rng = np.random.default_rng(0)
    buf.add(rng.normal(size=(n, 4)), rng.normal(size=(n, 4)), rng.uniform(-1, 1, (n, 2)), np.arange(n), np.zeros(n),
            np.zeros(n))
    state = buf.state_tensors()
    assert state["buffer/observations"].shape[0] == len(toy_dataset) + 5
    other = TransitionBuffer(4, 2, online_capacity=1)
    other.load_state_tensors(state)
    assert (other.n_offline, other.n_online, other.online_pos) == (buf.n_offline, buf.n_online, buf.online_pos)
    a = buf.sample(64, generator=torch.Generator().manual_seed(1))
    b = other.sample(64, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(a[k], b[k]) for k in a)


def _add_steps(buf: TransitionBuffer, n_steps: int, n_envs: int, start: int = 0) -> None:
    """Online steps of ``n_envs`` envs; env e's action at step t is ``100 * e + t`` (never an episode end)."""
    for t in range(start, start + n_steps):
        a = np.array([[100.0 * e + t] for e in range(n_envs)], np.float32)
        z = np.zeros((n_envs, 2), np.float32)
        buf.add(z, z, a, np.ones(n_envs), np.zeros(n_envs), np.zeros(n_envs, bool))


def _chunks(buf: TransitionBuffer, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    batch = buf.sample(256, horizon=horizon, generator=torch.Generator().manual_seed(0))
    return batch["actions"][..., 0].numpy(), batch["valid"].numpy().astype(bool)


def test_online_chunks_follow_their_own_env_and_stop_at_the_write_head():
    buf = TransitionBuffer(obs_dim=2, act_dim=1, online_capacity=64)
    _add_steps(buf, 10, n_envs=2)
    actions, valid = _chunks(buf, horizon=3)
    for row, ok in zip(actions, valid):
        env, t = divmod(int(row[0]), 100)
        # the same env's next actions, as far as they are stored (the last steps are still to be written)
        assert ok.tolist() == [j == 0 or t + j <= 9 for j in range(3)]
        np.testing.assert_array_equal(row[ok], [100 * env + t + j for j in range(int(ok.sum()))])


def test_online_chunks_do_not_run_into_rows_the_ring_has_not_overwritten_yet():
    buf = TransitionBuffer(obs_dim=2, act_dim=1, online_capacity=6)
    _add_steps(buf, 4, n_envs=1)
    _add_steps(buf, 4, n_envs=1, start=4)  # steps 6, 7 overwrite 0, 1: the ring holds 2..7, head at slot 2
    actions, valid = _chunks(buf, horizon=2)
    assert set(actions[:, 0].astype(int)) == {2, 3, 4, 5, 6, 7}
    for row, ok in zip(actions, valid):
        assert ok[1] == (row[0] < 7) and (not ok[1] or row[1] == row[0] + 1)


def test_state_round_trip_keeps_the_write_order():
    buf = TransitionBuffer(obs_dim=2, act_dim=1, online_capacity=16)
    _add_steps(buf, 5, n_envs=2)
    restored = TransitionBuffer(obs_dim=2, act_dim=1, online_capacity=16)
    restored.load_state_tensors(buf.state_tensors())
    assert (restored.online_written, restored.n_envs) == (10, 2)
    for a, b in zip(_chunks(buf, 3), _chunks(restored, 3)):
        np.testing.assert_array_equal(a, b)


def test_buffers_saved_before_write_numbers_restore_the_ring_order():
    buf = TransitionBuffer(obs_dim=2, act_dim=1, online_capacity=6)
    _add_steps(buf, 8, n_envs=1)  # wrapped: slots hold steps 6, 7, 2, 3, 4, 5; head at slot 2
    state = {k: v for k, v in buf.state_tensors().items() if k not in ("buffer/write_index", "buffer/stream")}
    old = TransitionBuffer(obs_dim=2, act_dim=1, online_capacity=6)
    old.load_state_tensors(state)
    actions, valid = _chunks(old, horizon=2)
    for row, ok in zip(actions, valid):
        assert ok[1] == (row[0] < 7) and (not ok[1] or row[1] == row[0] + 1)


def test_a_chunk_runs_on_past_a_success_inside_its_trajectory_with_the_bootstrap_stopped():
    """OGBench single-task data: success is terminal (mask 0) but the trajectory goes on; only its end cuts chunks."""
    from gymnasium import spaces

    from agents import Dataset

    n = 10
    obs = np.arange(n + 1, dtype=np.float32)[:, None].repeat(2, 1)
    rewards = -np.ones(n, np.float32)
    terminals = np.zeros(n, np.float32)
    rewards[2] = 0.0
    terminals[2] = 1.0  # success at row 2, inside the one trajectory of rows 0..9
    data = Dataset.from_arrays(obs[:-1], np.zeros((n, 1), np.float32), rewards, obs[1:], terminals,
                               action_space=spaces.Box(-1, 1, (1,), np.float32))
    assert data.episode_ends.tolist() == [False] * 9 + [True]
    buf = TransitionBuffer(obs_dim=2, act_dim=1)
    buf.load_dataset(data)
    batch = buf.sample(512, horizon=5, generator=torch.Generator().manual_seed(0))
    from_row_0 = batch["observations"][:, 0] == 0
    assert from_row_0.any()
    assert batch["valid"][from_row_0].all() and (batch["masks"][from_row_0] == 0).all()
    np.testing.assert_array_equal(batch["rewards"][from_row_0][0].numpy(), [-1, -1, 0, -1, -1])
    # a trajectory that really ends at a terminal (the next row starts elsewhere) still cuts the chunk
    cut = Dataset.from_arrays(obs[:-1], np.zeros((n, 1), np.float32), rewards, obs[1:] + 100 * (np.arange(n) == 2)[:, None],
                              terminals, action_space=spaces.Box(-1, 1, (1,), np.float32))
    assert cut.episode_ends[2]
