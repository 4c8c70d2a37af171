"""The task registry: every task the zoo trains and scores on, and the evaluation protocol it owns.

A task id is short and stable (``ogbench/cube-single-task1``). It fixes the env (one single-task env per task: in
OGBench's single-task envs the env id fixes the goal and ``reset(options={"task_id": ...})`` is ignored, so the
harness asserts ``env.unwrapped.cur_task_id``), the dataset, the metric and its scale, and the protocol (episodes,
episode length, deterministic or sampled actions, checkpoint-selection rule).
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium


@dataclass(frozen=True)
class Protocol:
    """How a task is scored. ``deterministic=False`` samples the policy's noise, as the papers' evaluations do."""

    episodes: int = 50
    max_episode_steps: int = 200
    deterministic: bool = False
    seed: int = 0  # episode i runs with seed ``seed + i``
    checkpoint: str = "final"  # which checkpoint of a run is scored


@dataclass(frozen=True)
class Task:
    task_id: str
    suite: str
    family: str
    env_id: str
    dataset_id: str
    build_id: str  # the dataset file `genzoo data build` makes
    metric: str  # "success" (success rate, %) or "normalized_score" (×100)
    protocol: Protocol = field(default_factory=Protocol)
    task_index: int | None = None
    paper_scores: dict[str, float] = field(default_factory=dict)  # method -> published score on this task

    @property
    def metric_label(self) -> str:
        return {"success": "success rate (%)", "normalized_score": "normalised score (x100)"}.get(
            self.metric, "undiscounted return")

    @property
    def online(self) -> bool:
        """An online-RL task: no dataset, trained by ``agent.learn()`` in its env."""
        return not self.dataset_id

    def make_env(self, **kwargs: Any) -> gymnasium.Env:
        """A fresh evaluation env for this task (TimeLimit from the protocol).

        Minari tasks use their dataset's ``eval_env`` spec, with Dict observations flattened as the dataset loader
        flattens them (``FlattenObservation``: the Dict space's key order).
        """
        kwargs.setdefault("max_episode_steps", self.protocol.max_episode_steps)
        if self.suite == "minari":
            env = gymnasium.make(_minari_metadata(self.dataset_id)[0], **kwargs)
            if isinstance(env.observation_space, gymnasium.spaces.Dict):
                env = gymnasium.wrappers.FlattenObservation(env)
            return env
        if self.suite == "ogbench":
            import ogbench  # noqa: F401  (registers the OGBench envs)
        if self.suite == "dm_control":
            _register_dm_control()
            return gymnasium.wrappers.FlattenObservation(gymnasium.make(self.env_id, **kwargs))
        return gymnasium.make(self.env_id, **kwargs)

    def reference_scores(self) -> tuple[float, float]:
        """``(ref_min, ref_max)`` returns that normalise this task's score to ``100 * (R - min) / (max - min)``."""
        if self.metric != "normalized_score":
            raise ValueError(f"{self.task_id} is scored by {self.metric}, not a normalised return")
        _, ref_min, ref_max = _minari_metadata(self.dataset_id)
        return ref_min, ref_max

    def check_env(self, env: gymnasium.Env) -> None:
        """Assert the env runs this task (call after ``reset``)."""
        if self.task_index is not None:
            cur = getattr(env.unwrapped, "cur_task_id", None)
            if cur != self.task_index:
                raise RuntimeError(f"{self.env_id} is running task {cur}, expected task {self.task_index}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# FQL, Table 3 (Park et al. 2025): per-task success %, 1M steps, width 512, 8 seeds.
_FQL_TABLE3 = {
    "cube-single": [97, 97, 98, 94, 93],
    "cube-double": [61, 36, 22, 5, 19],
    "scene": [100, 76, 98, 5, 0],
    "puzzle-3x3": [90, 16, 10, 16, 16],
}
# OGBench evaluation episode lengths (``max_episode_steps`` of the registered envs) and dataset kinds.
_OGBENCH = {"cube-single": (200, "play"), "cube-double": (500, "play"), "scene": (750, "play"),
            "puzzle-3x3": (500, "play"), "pointmaze-medium": (1000, "navigate"), "pointmaze-large": (1000, "navigate")}

TASKS: dict[str, Task] = {}


@functools.cache
def _minari_metadata(dataset_id: str) -> tuple[Any, float, float]:
    """The eval env spec and reference scores stored in a local Minari dataset (``$MINARI_DATASETS_PATH``)."""
    import minari

    try:
        ds = minari.load_dataset(dataset_id)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Minari dataset {dataset_id} is not on this machine; its eval env and reference scores live in it: "
            f"run `genzoo data build {dataset_id}`"
        ) from None
    meta = ds.storage.metadata
    env = ds.recover_environment(eval_env=True)  # the dataset's eval_env spec (its env spec when it has none)
    spec = env.spec
    env.close()
    if meta.get("ref_min_score") is None or meta.get("ref_max_score") is None:
        raise ValueError(f"Minari dataset {dataset_id} has no reference scores; it cannot be scored normalised")
    return spec, float(meta["ref_min_score"]), float(meta["ref_max_score"])


def register(task: Task) -> Task:
    if task.task_id in TASKS:
        raise ValueError(f"task {task.task_id} is already registered")
    TASKS[task.task_id] = task
    return task


for _family, (_steps, _kind) in _OGBENCH.items():
    for _i in range(1, 6):
        register(Task(
            task_id=f"ogbench/{_family}-task{_i}",
            suite="ogbench",
            family=_family,
            env_id=f"{_family}-singletask-task{_i}-v0",
            dataset_id=f"{_family}-{_kind}-singletask-task{_i}-v0",
            build_id=f"{_family}-{_kind}-v0",
            metric="success",
            protocol=Protocol(episodes=50, max_episode_steps=_steps),
            task_index=_i,
            paper_scores={"FQL": _FQL_TABLE3[_family][_i - 1]} if _family in _FQL_TABLE3 else {},
        ))


# Minari's D4RL PointMaze (Fu et al. 2020, ported by Farama): normalised return ×100 on the dataset's single-goal
# eval env (continuing task, time limit of the registered env); reference scores from the dataset's metadata.
for _maze, _steps in (("umaze", 300), ("medium", 600), ("large", 800)):
    for _suffix in ("", "-dense"):
        _dataset = f"D4RL/pointmaze/{_maze}{_suffix}-v2"
        register(Task(
            task_id=f"minari/{_dataset}",
            suite="minari",
            family=f"pointmaze-{_maze}{_suffix}",
            env_id=f"PointMaze_{ {'umaze': 'UMaze'}.get(_maze, _maze.title()) }{'Dense' if _suffix else ''}-v3",
            dataset_id=_dataset,
            build_id=_dataset,
            metric="normalized_score",
            protocol=Protocol(episodes=50, max_episode_steps=_steps),
        ))


# Minari's MuJoCo locomotion datasets (Gymnasium v5 envs, 1000-step episodes): normalised return ×100 with the
# dataset's reference scores (local ones when the dataset is a local rebuild: see its manifest).
for _env, _gym_id in (("hopper", "Hopper-v5"), ("walker2d", "Walker2d-v5"), ("halfcheetah", "HalfCheetah-v5")):
    for _level in ("simple", "medium"):
        _dataset = f"mujoco/{_env}/{_level}-v0"
        register(Task(
            task_id=f"minari/{_dataset}",
            suite="minari",
            family=f"mujoco-{_env}",
            env_id=_gym_id,
            dataset_id=_dataset,
            build_id=_dataset,
            metric="normalized_score",
            protocol=Protocol(episodes=50, max_episode_steps=1000),
        ))


# Online RL (RFM, SAC, offline-to-online finetuning): Gymnasium MuJoCo v5 and DeepMind Control through Shimmy,
# scored by undiscounted return over 10 episodes of 1000 steps. The RFM paper's 8 DMC tasks were not named in any
# source we found; these are the usual ones of the diffusion-policy online-RL papers.
for _gym_id in ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5"):
    register(Task(task_id=f"gymnasium/{_gym_id}", suite="gymnasium", family=f"mujoco-{_gym_id.split('-')[0].lower()}",
                  env_id=_gym_id, dataset_id="", build_id="", metric="return",
                  protocol=Protocol(episodes=10, max_episode_steps=1000)))
for _dmc in ("cheetah-run", "walker-walk", "walker-run", "quadruped-run", "humanoid-walk", "hopper-hop",
             "finger-spin", "reacher-hard"):
    register(Task(task_id=f"dm_control/{_dmc}", suite="dm_control", family=f"dmc-{_dmc.split('-')[0]}",
                  env_id=f"dm_control/{_dmc}-v0", dataset_id="", build_id="", metric="return",
                  protocol=Protocol(episodes=10, max_episode_steps=1000)))


@functools.cache
def _register_dm_control() -> None:
    """Register Shimmy's ``dm_control/*`` envs, after dropping from dm_control's struct tables the MjModel / MjData
    fields this MuJoCo no longer has: dm_control 1.0.50 indexes every field of its tables (a few flex fields were
    removed in MuJoCo 4, which pip resolves for ``mujoco>=3.17``), so without this the suite fails to load."""
    import mujoco
    import shimmy
    from dm_control.mujoco.wrapper.mjbindings import sizes

    model = mujoco.MjModel.from_xml_string("<mujoco/>")
    for struct, obj in (("mjmodel", model), ("mjdata", mujoco.MjData(model))):
        for name in [f for f in sizes.array_sizes[struct] if not hasattr(obj, f)]:
            del sizes.array_sizes[struct][name]
    gymnasium.register_envs(shimmy)


def get(task_id: str) -> Task:
    """Look up a task; unknown ids get the list of known ones."""
    try:
        return TASKS[task_id]
    except KeyError:
        close = difflib.get_close_matches(task_id, TASKS, n=3, cutoff=0.7)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise KeyError(f"unknown task id {task_id!r}; {hint}known tasks: {', '.join(sorted(TASKS))}") from None
