"""Minari datasets as genzoo :class:`Dataset` objects, read with ``minari.load_dataset`` unchanged.

Files live in Minari's root (``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``); nothing is downloaded. Dict
observations (PointMaze: ``achieved_goal``, ``desired_goal``, ``observation``) are flattened in the order of the
Dict space, as ``gymnasium.wrappers.FlattenObservation`` flattens the evaluation env's observations.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from gymnasium import spaces

from agents.core.dataset import Dataset
from zoo.datasets import minari_build, mujoco_build
from zoo.datasets.ogbench import DatasetMissingError


def is_minari_id(dataset_id: str) -> bool:
    return dataset_id.removeprefix("minari/").split("/", 1)[0] in ("D4RL", "mujoco")


def status(directory: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One row per buildable Minari dataset: present or not, rebuilt or not, and the command that builds it."""
    root = minari_build.datasets_root(directory)
    rows = []
    for name in sorted(minari_build.RECIPES) + sorted(mujoco_build.RECIPES):
        data = root / name / "data" / "main_data.hdf5"
        manifest = minari_build.manifest_path(root, name)
        info = json.loads(manifest.read_text()) if manifest.is_file() else None
        rows.append({
            "dataset": name,
            "present": data.is_file(),
            "rebuilt": manifest.is_file(),
            "path": str(data.parent.parent),
            "build": f"genzoo data build {name}",
            "manifest": str(manifest) if manifest.is_file() else None,
            "files_root": str(root / name),
            "build_seconds": info["build_seconds"] if info else None,
            # MuJoCo datasets: the SB3 behaviour run's wall time in all (its resumed segments summed; one run serves
            # simple-v0 and medium-v0 of an environment); build_seconds holds only the last build command's share.
            "behaviour_run_seconds": (info.get("behaviour_policy") or {}).get("run_wall_s") if info else None,
            "behaviour_algo": info["recipe"].get("algo") if info else None,
        })
    return rows


def flatten(space: spaces.Space, obs: Any) -> np.ndarray:
    """Flatten a batch of (possibly Dict) observations to ``(N, dim)`` float32, in the Dict space's key order."""
    if isinstance(space, spaces.Dict):
        return np.concatenate([flatten(sub, obs[key]) for key, sub in space.spaces.items()], axis=-1)
    arr = np.asarray(obs, dtype=np.float32)
    return arr.reshape(arr.shape[0], -1)


def open_dataset(dataset_id: str, directory: str | os.PathLike | None = None) -> Any:
    """``minari.load_dataset`` on the local root, or a :class:`DatasetMissingError` naming the build command."""
    import minari

    name = dataset_id.removeprefix("minari/")
    root = minari_build.datasets_root(directory)
    if not (root / name / "data").is_dir():
        buildable = name in minari_build.RECIPES or name in mujoco_build.RECIPES
        hint = f"run `genzoo data build {name}`" if buildable else "no local recipe exists yet"
        raise DatasetMissingError(
            f"Minari dataset {name} is not in {root} and cannot be downloaded here: {hint} "
            "(or set MINARI_DATASETS_PATH to where it is)"
        )
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        return minari.load_dataset(name)
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def load(dataset_id: str, directory: str | os.PathLike | None = None) -> Dataset:
    """Load a Minari dataset as flat transitions.

    ``terminals`` are Minari's ``terminations``, ``timeouts`` its ``truncations`` (in PointMaze every goal reach
    ends an episode by truncation: the task continues, so those rows bootstrap).
    """
    ds = open_dataset(dataset_id, directory)
    name = dataset_id.removeprefix("minari/")
    obs_space = ds.observation_space
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "next", "act", "rew", "term", "trunc")}
    for ep in ds.iterate_episodes():
        flat = flatten(obs_space, ep.observations)
        parts["obs"].append(flat[:-1])
        parts["next"].append(flat[1:])
        parts["act"].append(np.asarray(ep.actions, dtype=np.float32))
        parts["rew"].append(np.asarray(ep.rewards, dtype=np.float32))
        parts["term"].append(np.asarray(ep.terminations, dtype=np.float32))
        trunc = np.asarray(ep.truncations, dtype=np.float32)
        trunc[-1] = max(trunc[-1], 1.0 - parts["term"][-1][-1])  # the episode's last row ends its trajectory
        parts["trunc"].append(trunc)
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    dim = cat["obs"].shape[1]
    act = ds.action_space
    root = minari_build.datasets_root(directory)
    manifest = minari_build.manifest_path(root, name)
    meta = ds.storage.metadata
    info = {
        "source": "minari",
        "rebuilt": manifest.is_file(),
        "sha256": (json.loads(manifest.read_text())["files"]["data/main_data.hdf5"]["sha256"] if manifest.is_file()
                   else minari_build._sha256(root / name / "data" / "main_data.hdf5")),
        "ref_min_score": meta.get("ref_min_score"),
        "ref_max_score": meta.get("ref_max_score"),
    }
    eval_env = ds.recover_environment(eval_env=True)
    eval_spec = eval_env.spec
    eval_env.close()
    return Dataset(
        observations=cat["obs"],
        actions=cat["act"],
        rewards=cat["rew"],
        next_observations=cat["next"],
        terminals=cat["term"],
        timeouts=cat["trunc"],
        observation_space=spaces.Box(-np.inf, np.inf, shape=(dim,), dtype=np.float32),
        action_space=spaces.Box(act.low.astype(np.float32), act.high.astype(np.float32), dtype=np.float32),
        env_id=eval_spec.id if eval_spec is not None else None,
        dataset_id=name,
        info=info,
    )
