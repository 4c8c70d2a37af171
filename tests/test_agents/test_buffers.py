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
