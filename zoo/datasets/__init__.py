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


def existing_build(name: str, directory: str | os.PathLike | None = None, num_episodes: int | None = None,
                   total_steps: int | None = None, seed: int = 0) -> Path | None:
    """The manifest of a finished local build that :func:`build` with these arguments would redo, else ``None``.

    It counts when its manifest records the same seed and size (the recipe's when none is given) and every file it
    lists is present at its recorded byte size (``genzoo data verify`` re-checks the sha256). A build takes 15-60
    minutes and rewrites the files, so the CLI returns this one instead unless asked to ``--force``.
    """
    import json

    if minari.is_minari_id(name):
        from zoo.datasets import minari_build, mujoco_build

        key = name.removeprefix("minari/")
        recipe = mujoco_build.RECIPES.get(key) or minari_build.RECIPES.get(key)
        size_key, size = "total_steps", (None if recipe is None else recipe.total_steps) if total_steps is None else total_steps
    else:
        from zoo.datasets import ogbench_build

        key = ogbench.file_name(name)
        recipe = ogbench_build.RECIPES.get(key)
        size_key, size = "episodes", (None if recipe is None else recipe.num_episodes) if num_episodes is None else num_episodes
    row = next((r for r in status(directory) if r["dataset"] == key and r["present"] and r["manifest"]), None)
    if recipe is None or row is None:
        return None
    manifest = json.loads(Path(row["manifest"]).read_text())
    built_size = manifest.get(size_key, (manifest.get("recipe") or {}).get(size_key))
    if manifest.get("seed") != seed or built_size != size:
        return None
    for fname, meta in (manifest.get("files") or {}).items():
        path = Path(row["files_root"]) / fname
        if not path.is_file() or path.stat().st_size != meta.get("bytes"):
            return None
    return Path(row["manifest"])


def status(directory: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every buildable dataset of both suites: present or missing, rebuilt or official, and its build command."""
    return ogbench.status(directory) + minari.status(directory)


set_dataset_loader(load)  # learn() on a loaded agent reads its dataset through this (agents sit below zoo)

__all__ = ["Dataset", "DatasetMissingError", "UnknownDatasetError", "build", "dataset_dir", "existing_build", "load",
           "status"]
