"""Datasets: load OGBench / Minari data as a :class:`Dataset`, and rebuild them locally when they are missing.

``load(dataset_id)`` returns the design's dataset object; ``Dataset.from_arrays(...)`` wraps a user's own data.
Minari ids start with ``D4RL/`` or ``mujoco/`` (optionally prefixed ``minari/``); everything else is OGBench.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agents.core.dataset import Dataset, set_dataset_loader
from zoo.datasets import minari, ogbench
from zoo.datasets.ogbench import DatasetMissingError, UnknownDatasetError, dataset_dir


def load(dataset_id: str, directory: str | os.PathLike | None = None) -> Dataset:
    """Load an OGBench single-task or Minari dataset by id (``directory``: the suite's data root)."""
    if minari.is_minari_id(dataset_id):
        return minari.load(dataset_id, directory)
    return ogbench.load(dataset_id, directory)


def build(name: str, directory: str | os.PathLike | None = None, num_episodes: int | None = None,
          total_steps: int | None = None, workers: int = 1, seed: int = 0, progress: bool = True) -> Path:
    """Rebuild a dataset locally with its original recipe; returns its manifest. OGBench sizes are in episodes,
    Minari sizes in steps."""
    if minari.is_minari_id(name):
        from zoo.datasets import minari_build, mujoco_build

        if name.removeprefix("minari/") in mujoco_build.RECIPES:
            return mujoco_build.build(name.removeprefix("minari/"), directory, total_steps=total_steps, seed=seed,
                                      progress=progress)
        return minari_build.build(name.removeprefix("minari/"), directory, total_steps=total_steps, workers=workers,
                                  seed=seed, progress=progress)
    return ogbench.build(name, directory, num_episodes=num_episodes, workers=workers, seed=seed, progress=progress)


def status(directory: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every buildable dataset of both suites: present or missing, rebuilt or official, and its build command."""
    return ogbench.status(directory) + minari.status(directory)


set_dataset_loader(load)  # learn() on a loaded agent reads its dataset through this (agents sit below zoo)

__all__ = ["Dataset", "DatasetMissingError", "UnknownDatasetError", "build", "dataset_dir", "load", "status"]
