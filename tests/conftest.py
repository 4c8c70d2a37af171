"""Shared fixtures. Tests never touch the user's dataset folders: HOME and GENZOO_OGBENCH_DIR point at temp dirs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from evaluation.video import prefer_headless_gl

prefer_headless_gl()  # as the CLI does, before any test imports mujoco

warnings.filterwarnings("ignore", message=".*precision lowered by casting.*")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.getbasetemp() / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GENZOO_OGBENCH_DIR", str(home / "ogbench-data"))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(home / "minari-data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_ogbench_dir(tmp_path_factory):
    """A 2-episode cube-single-play-v0 (plus 1 val episode), built with the real recipe."""
    from zoo.datasets import ogbench_build

    root = tmp_path_factory.mktemp("ogbench")
    ogbench_build.build("cube-single-play-v0", root, num_episodes=2, workers=1, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tiny_ogbench_dir):
    from zoo import datasets

    return datasets.load("cube-single-play-singletask-task1-v0", tiny_ogbench_dir)


def _toy_dataset(n: int = 512, obs_dim: int = 4, act_dim: int = 2, seed: int = 0):
    from gymnasium import spaces

    from agents import Dataset

    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    act = rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32)
    nxt = obs + 0.1 * rng.normal(size=obs.shape).astype(np.float32)
    timeouts = np.zeros(n, np.float32)
    timeouts[49::50] = 1
    return Dataset.from_arrays(obs, act, rng.normal(size=n), nxt, np.zeros(n), timeouts,
                               action_space=spaces.Box(-1, 1, (act_dim,), np.float32))


@pytest.fixture
def toy_dataset():
    """512 random transitions (obs 4-D, actions 2-D in [-1, 1]), trajectories of 50 steps."""
    return _toy_dataset()


@pytest.fixture
def make_fql():
    """Factory for a small FQL (2x32 MLPs, batch 32) on a dataset's spaces."""
    from agents import FQL

    def make(dataset, **kw):
        args = dict(env=None, observation_space=dataset.observation_space, action_space=dataset.action_space,
                    actor_hidden_dims=[32, 32], value_hidden_dims=[32, 32], batch_size=32, alpha=10.0, seed=0)
        args.update(kw)
        return FQL(**args)

    return make

