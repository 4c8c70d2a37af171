"""OGBench datasets as genzoo :class:`Dataset` objects, read through ``ogbench.make_env_and_datasets`` unchanged.

Files live where OGBench looks (``~/.ogbench/data``, or ``$GENZOO_OGBENCH_DIR``). When they are missing the error
names the ``genzoo data build`` command that rebuilds them (``zoo.datasets.ogbench_build``).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from agents.core.dataset import Dataset
from zoo.datasets import ogbench_build


class DatasetMissingError(FileNotFoundError):
    """A dataset file is not on disk; the message says how to build it."""


class UnknownDatasetError(ValueError):
    """A dataset id that names no dataset genzoo knows; the message lists the closest known ids."""


_LIST_HINT = "`genzoo data list` shows every dataset and its build command"


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


def _registered(env_id: str) -> bool:
    import gymnasium
    import ogbench  # noqa: F401  (registers OGBench's environments)

    return env_id in gymnasium.registry


def _env_tasks(env_base: str, version: str) -> list[str]:
    """The single-task variants OGBench registers for ``env_base`` (``cube-single``): ``["task1", ..., "task5"]``."""
    import gymnasium
    import ogbench  # noqa: F401

    pattern = re.compile(rf"{re.escape(env_base)}-singletask-(task\d+)-{re.escape(version)}")
    tasks = [m.group(1) for m in map(pattern.fullmatch, gymnasium.registry) if m]
    return sorted(tasks, key=lambda t: int(t[4:]))


def singletask_ids() -> list[str]:
    """Every single-task dataset id of the OGBench datasets genzoo can build (``cube-single-play-singletask-task1-v0``)."""
    ids = []
    for stem in sorted(ogbench_build.RECIPES):
        parts = stem.split("-")
        for task in _env_tasks("-".join(parts[:-2]), parts[-1]):
            ids.append("-".join(parts[:-1] + ["singletask", task, parts[-1]]))
    return ids


def _task_range(tasks: list[str]) -> str:
    return f"{tasks[0]}..{tasks[-1]}" if len(tasks) > 1 else tasks[0]


def _unknown(dataset_id: str, name: str) -> UnknownDatasetError:
    from zoo.datasets import minari_build, mujoco_build

    minari_ids = sorted(minari_build.RECIPES) + sorted(mujoco_build.RECIPES)
    close = difflib.get_close_matches(name, singletask_ids() + minari_ids, n=3, cutoff=0.6)
    if close:
        known = f"did you mean {', '.join(close)}?"
    else:
        forms = []
        for stem in sorted(ogbench_build.RECIPES):
            parts = stem.split("-")
            tasks = _env_tasks("-".join(parts[:-2]), parts[-1])
            if tasks:
                forms.append("-".join(parts[:-1] + ["singletask", "{" + _task_range(tasks) + "}", parts[-1]]))
        known = (f"the OGBench single-task datasets genzoo builds are {', '.join(forms)}; Minari ids start with D4RL/ "
                 f"or mujoco/ (e.g. {minari_ids[0] if minari_ids else 'mujoco/hopper/simple-v0'})")
    return UnknownDatasetError(f"unknown dataset {dataset_id!r}; {known}; {_LIST_HINT}")


def check_id(dataset_id: str) -> None:
    """Refuse an id that is not an OGBench single-task dataset, before any file or environment is touched.

    An id whose single-task environment OGBench does not register (``foo``, a typo, ``...-task9-v0``) raises
    :class:`UnknownDatasetError` naming the closest known ids; a real goal-conditioned dataset
    (``cube-single-play-v0``) raises a ``ValueError`` saying genzoo trains on single-task datasets.
    """
    name = dataset_id.removeprefix("ogbench/")
    parts = name.split("-")
    if "singletask" in parts:
        pos = parts.index("singletask")
        # OGBench's own mapping (make_env_and_datasets): drop the dataset type before "singletask"
        if pos >= 2 and _registered("-".join(parts[: pos - 1] + parts[pos:])):
            return
        tail = parts[pos + 1:-1]
        tasks = _env_tasks("-".join(parts[: pos - 1]), parts[-1]) if pos >= 2 else []
        if len(tail) == 1 and tasks:
            env_base = "-".join(parts[: pos - 1])
            example = "-".join(parts[:pos + 1] + [tasks[0], parts[-1]])
            raise UnknownDatasetError(
                f"unknown dataset {dataset_id!r}: OGBench's {env_base} has no {tail[0]}, its tasks are "
                f"{_task_range(tasks)} (e.g. {example}); {_LIST_HINT}"
            )
        raise _unknown(dataset_id, name)
    if len(parts) >= 3 and _registered("-".join(parts[:-2] + parts[-1:])):
        raise ValueError(
            f"{dataset_id!r} is a goal-conditioned OGBench dataset; genzoo v1 trains on single-task datasets "
            f"(e.g. {'-'.join(parts[:-1] + ['singletask', 'task1', parts[-1]])})"
        )
    raise _unknown(dataset_id, name)


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
    check_id(dataset_id)
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
