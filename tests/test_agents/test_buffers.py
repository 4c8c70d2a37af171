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
