"""OGBench datasets as genzoo :class:`Dataset` objects, read through ``ogbench.make_env_and_datasets`` unchanged.

Files live where OGBench looks (``~/.ogbench/data``, or ``$GENZOO_OGBENCH_DIR``). When they are missing the error
names the ``genzoo data build`` command that rebuilds them (``zoo.datasets.ogbench_build``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from agents.core.dataset import Dataset
from zoo.datasets import ogbench_build


class DatasetMissingError(FileNotFoundError):
    """A dataset file is not on disk; the message says how to build it."""


def dataset_dir(directory: str | os.PathLike | None = None) -> Path:
    """Where OGBench files are read and written: the argument, ``$GENZOO_OGBENCH_DIR``, or ``~/.ogbench/data``."""
    if directory is not None:
        return Path(directory).expanduser()
    return Path(os.environ.get("GENZOO_OGBENCH_DIR", "~/.ogbench/data")).expanduser()


def file_name(dataset_id: str) -> str:
    """The file an OGBench dataset id reads: ``cube-single-play-singletask-task1-v0`` → ``cube-single-play-v0``."""
    name = dataset_id.removeprefix("ogbench/")
    parts = name.split("-")
    if "singletask" in parts:
        pos = parts.index("singletask")
        return "-".join(parts[:pos] + parts[-1:])
    return name


def status(directory: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One row per buildable dataset: present or not, its manifest, and the command that builds it."""
    root = dataset_dir(directory)
    rows = []
    for name in sorted(ogbench_build.RECIPES):
        present = (root / f"{name}.npz").is_file() and (root / f"{name}-val.npz").is_file()
        manifest = ogbench_build.manifest_path(root, name)
        rows.append({
            "dataset": name,
            "present": present,
            "rebuilt": manifest.is_file(),
            "path": str(root / f"{name}.npz"),
            "build": f"genzoo data build {name}",
            "manifest": str(manifest) if manifest.is_file() else None,
            "files_root": str(root),
            "build_seconds": json.loads(manifest.read_text())["build_seconds"] if manifest.is_file() else None,
        })
    return rows


def build(name: str, directory: str | os.PathLike | None = None, **kwargs: Any) -> Path:
    """Rebuild an OGBench dataset locally (see :func:`zoo.datasets.ogbench_build.build`)."""
    return ogbench_build.build(file_name(name), dataset_dir(directory), **kwargs)


def _provenance(root: Path, name: str) -> dict[str, Any]:
    manifest = ogbench_build.manifest_path(root, name)
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        return {"sha256": m["files"][f"{name}.npz"]["sha256"], "rebuilt": True, "manifest": m}
    return {"sha256": ogbench_build._sha256(root / f"{name}.npz"), "rebuilt": False}


def load(dataset_id: str, directory: str | os.PathLike | None = None) -> Dataset:
    """Load an OGBench single-task dataset (``cube-single-play-singletask-task1-v0``) with its rewards and masks.

    ``terminals`` of the result are OGBench's single-task ``1 - masks`` (the goal is reached: no bootstrap);
    ``timeouts`` are OGBench's ``terminals`` (trajectory ends, not true terminals).
    """
    import ogbench

    name = dataset_id.removeprefix("ogbench/")
    if "singletask" not in name.split("-"):
        raise ValueError(
            f"{dataset_id!r} is a goal-conditioned OGBench dataset; genzoo v1 trains on single-task datasets "
            "(e.g. cube-single-play-singletask-task1-v0)"
        )
    root = dataset_dir(directory)
    stem = file_name(name)
    missing = [f for f in (f"{stem}.npz", f"{stem}-val.npz") if not (root / f).is_file()]
    if missing:
        hint = f"run `genzoo data build {stem}`" if stem in ogbench_build.RECIPES else "no local recipe exists yet"
        raise DatasetMissingError(
            f"OGBench dataset {stem} is not in {root} (missing {', '.join(missing)}) and cannot be downloaded here: "
            f"{hint} (or set GENZOO_OGBENCH_DIR to where the files are)"
        )
    env, train, _ = ogbench.make_env_and_datasets(name, dataset_dir=str(root))
    obs_space = spaces.Box(-np.inf, np.inf, shape=train["observations"].shape[1:], dtype=np.float32)
    act_space = spaces.Box(env.action_space.low.astype(np.float32), env.action_space.high.astype(np.float32),
                           dtype=np.float32)
    env_id = env.spec.id if env.spec is not None else None
    env.close()
    return Dataset(
        observations=train["observations"],
        actions=train["actions"],
        rewards=train["rewards"],
        next_observations=train["next_observations"],
        terminals=(1.0 - train["masks"]).astype(np.float32),
        timeouts=train["terminals"].astype(np.float32),
        observation_space=obs_space,
        action_space=act_space,
        env_id=env_id,
        dataset_id=name,
        info={"source": "ogbench", "file": stem, **_provenance(root, stem)},
    )
