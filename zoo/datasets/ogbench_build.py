"""Rebuild OGBench manipulation "play" datasets locally with OGBench's own oracles.

The official files (rail.eecs.berkeley.edu) cannot be downloaded on every machine, so genzoo regenerates them with
the original recipe of ``data_gen_scripts/generate_manipspace.py`` (OGBench, Park et al. 2024, arXiv 2410.20092):

* env ``gymnasium.make(env, terminate_at_goal=False, mode="data_collection", max_episode_steps=1001)``;
* the non-Markovian plan oracles (cube / button / drawer / window) with ``noise=0.1, noise_smoothing=0.5``;
* when the oracle finishes a sub-task, ``env.unwrapped.set_new_target(p_stack)`` picks the next one;
* actions clipped to [-1, 1]; rows store the observation *before* the action, the action, ``terminals`` (the
  trajectory end at row 1001) and ``qpos``/``qvel`` before the action (``info["prev_qpos"]``), which OGBench's
  single-task relabelling needs;
* ``num_episodes`` training episodes go to ``{name}.npz`` and ``num_episodes // 10`` more to ``{name}-val.npz``.

One deliberate difference: the official script never seeds its generators, so its files are not reproducible.
Here episode ``i`` draws everything (env reset and oracle noise) from ``SeedSequence([seed, i])``, so a build is
deterministic given ``--seed`` whatever ``--workers`` is, and an interrupted build resumes shard by shard.
The result is statistically, not bitwise, the official dataset; every consumer records ``rebuilt: true``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SHARD_EPISODES = 10  # resume granularity: ~10k env steps, ~15 s on one core


@dataclass(frozen=True)
class ManipRecipe:
    """The generation recipe of one OGBench manipulation play dataset (``commands.sh``)."""

    env_name: str
    oracles: tuple[str, ...]  # sub-task kinds the env can ask for: cube, button, drawer, window
    num_episodes: int = 1000
    max_episode_steps: int = 1001
    noise: float = 0.1
    noise_smoothing: float = 0.5
    p_stack: tuple[float, float] = (0.0, 0.0)  # per-episode stacking probability ~ U(low, high)
    gripper_always_closed: bool = False  # puzzle's button oracle
    health_check: bool = False  # scene: redo episodes where the cube leaves the visible region
    dataset_type: str = "play"

    def make_env(self):
        import gymnasium
        import ogbench  # noqa: F401  (registers the envs)

        return gymnasium.make(self.env_name, terminate_at_goal=False, mode="data_collection",
                              max_episode_steps=self.max_episode_steps)

    def generate(self, env, seed: int, index: int) -> dict[str, np.ndarray]:
        return generate_episode(env, self, seed, index)


@dataclass(frozen=True)
class MazeRecipe:
    """``generate_locomaze.py`` for PointMaze: the BFS-subgoal direction as the action, plus Gaussian noise.

    ``navigate``: start in a random cell, go to a random vertex cell, draw a new goal on every success.
    ``stitch``: the goal is a cell 4 BFS steps from the start.
    """

    env_name: str
    dataset_type: str = "navigate"
    num_episodes: int = 1000
    max_episode_steps: int = 1001
    noise: float = 0.5

    def make_env(self):
        import gymnasium
        import ogbench  # noqa: F401

        return gymnasium.make(self.env_name, terminate_at_goal=False, max_episode_steps=self.max_episode_steps)

    def generate(self, env, seed: int, index: int) -> dict[str, np.ndarray]:
        return generate_maze_episode(env, self, seed, index)


def _maze_cells(maze_map: np.ndarray) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """All free cells, and the "vertex" cells (free cells that are not straight hallway segments)."""
    free, vertices = [], []
    for i in range(maze_map.shape[0]):
        for j in range(maze_map.shape[1]):
            if maze_map[i, j] != 0:
                continue
            free.append((i, j))
            up, down, left, right = maze_map[i - 1, j], maze_map[i + 1, j], maze_map[i, j - 1], maze_map[i, j + 1]
            vertical_hallway = up == 0 and down == 0 and left == 1 and right == 1
            horizontal_hallway = left == 0 and right == 0 and up == 1 and down == 1
            if not (vertical_hallway or horizontal_hallway):
                vertices.append((i, j))
    return free, vertices


def _cells_at_distance(maze_map: np.ndarray, start: tuple[int, int], steps: int) -> list[tuple[int, int]]:
    dist = np.full(maze_map.shape, -1)
    dist[start] = 0
    queue, found = [start], []
    while queue:
        i, j = queue.pop(0)
        for di, dj in ((-1, 0), (0, -1), (1, 0), (0, 1)):
            ni, nj = i + di, j + dj
            if 0 <= ni < maze_map.shape[0] and 0 <= nj < maze_map.shape[1] and maze_map[ni, nj] == 0 and dist[ni, nj] == -1:
                dist[ni, nj] = dist[i, j] + 1
                queue.append((ni, nj))
                if dist[ni, nj] == steps:
                    found.append((ni, nj))
    return found


def generate_maze_episode(env, recipe: MazeRecipe, seed: int, index: int) -> dict[str, np.ndarray]:
    """One PointMaze episode of ``generate_locomaze.py``; randomness from ``SeedSequence([seed, index])``."""
    env_seed, rng_seed = np.random.SeedSequence([seed, index]).generate_state(2)
    np.random.seed(int(rng_seed))
    maze_map = env.unwrapped.maze_map
    free, vertices = _maze_cells(maze_map)
    init_ij = free[np.random.randint(len(free))]
    if recipe.dataset_type == "navigate":
        goal_ij = vertices[np.random.randint(len(vertices))]
    else:
        near = _cells_at_distance(maze_map, init_ij, 4)
        goal_ij = near[np.random.randint(len(near))] if near else init_ij
    ob, _ = env.reset(seed=int(env_seed), options=dict(task_info=dict(init_ij=init_ij, goal_ij=goal_ij)))
    rows: dict[str, list] = {"observations": [], "actions": [], "terminals": [], "qpos": [], "qvel": []}
    u = env.unwrapped
    for step in range(recipe.max_episode_steps):
        subgoal_xy, _ = u.get_oracle_subgoal(u.get_xy(), u.cur_goal_xy)
        direction = subgoal_xy - u.get_xy()
        action = direction / (np.linalg.norm(direction) + 1e-6)  # the point oracle's action is the direction
        action = np.clip(action + np.random.normal(0, recipe.noise, action.shape), -1.0, 1.0)
        next_ob, _, terminated, truncated, info = env.step(action)
        if info["success"] and recipe.dataset_type == "navigate":
            u.set_goal(vertices[np.random.randint(len(vertices))])
        rows["observations"].append(ob)
        rows["actions"].append(action)
        rows["terminals"].append(terminated or truncated or step == recipe.max_episode_steps - 1)
        rows["qpos"].append(info["prev_qpos"])
        rows["qvel"].append(info["prev_qvel"])
        ob = next_ob
    return {k: np.asarray(v, dtype=bool if k == "terminals" else np.float32) for k, v in rows.items()}


RECIPES: dict[str, ManipRecipe | MazeRecipe] = {
    "cube-single-play-v0": ManipRecipe(env_name="cube-single-v0", oracles=("cube",)),
    "cube-double-play-v0": ManipRecipe(env_name="cube-double-v0", oracles=("cube",), p_stack=(0.0, 0.25)),
    "scene-play-v0": ManipRecipe(env_name="scene-v0", oracles=("cube", "button", "drawer", "window"),
                                 p_stack=(0.5, 0.5), health_check=True),
    "puzzle-3x3-play-v0": ManipRecipe(env_name="puzzle-3x3-v0", oracles=("button",), p_stack=(0.5, 0.5),
                                      gripper_always_closed=True),
    "pointmaze-medium-navigate-v0": MazeRecipe(env_name="pointmaze-medium-v0"),
    "pointmaze-large-navigate-v0": MazeRecipe(env_name="pointmaze-large-v0"),
}


def _make_oracles(recipe: ManipRecipe, env) -> dict:
    from ogbench.manipspace.oracles.plan.button_plan import ButtonPlanOracle
    from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle
    from ogbench.manipspace.oracles.plan.drawer_plan import DrawerPlanOracle
    from ogbench.manipspace.oracles.plan.window_plan import WindowPlanOracle

    kw = dict(env=env, noise=recipe.noise, noise_smoothing=recipe.noise_smoothing)
    make = {
        "cube": lambda: CubePlanOracle(**kw),
        "button": lambda: ButtonPlanOracle(gripper_always_closed=recipe.gripper_always_closed, **kw),
        "drawer": lambda: DrawerPlanOracle(**kw),
        "window": lambda: WindowPlanOracle(**kw),
    }
    return {name: make[name]() for name in recipe.oracles}


def _healthy(qpos: np.ndarray) -> bool:
    """Scene's health check: the cube stays visible (not too far right; too far left only inside the drawer)."""
    xyz = qpos[:, 14:17]
    too_right = (xyz[:, 1] >= 0.29).any()
    lost_left = ((xyz[:, 1] <= -0.3) & ((xyz[:, 2] < 0.06) | (xyz[:, 2] > 0.08))).any()
    return not (too_right or lost_left)


def generate_episode(env, recipe: ManipRecipe, seed: int, index: int) -> dict[str, np.ndarray]:
    """Roll the plan oracles for one episode; all randomness comes from ``SeedSequence([seed, index, attempt])``.

    The loop follows ``generate_manipspace.py``: act, step, and when the oracle has finished its plan ask the env
    for a new sub-task (``set_new_target``) and reset the oracle of that sub-task's kind on it.
    """
    oracles = _make_oracles(recipe, env)
    for attempt in range(100):
        key = [seed, index] if attempt == 0 else [seed, index, attempt]
        env_seed, oracle_seed = np.random.SeedSequence(key).generate_state(2)
        # OGBench's oracles (and the recipe's p_stack draw) use the global NumPy generator.
        np.random.seed(int(oracle_seed))
        ob, info = env.reset(seed=int(env_seed))
        low, high = recipe.p_stack
        p_stack = float(np.random.uniform(low, high)) if high > low else low
        oracle = oracles[info["privileged/target_task"]]
        oracle.reset(ob, info)

        rows: dict[str, list] = {"observations": [], "actions": [], "terminals": [], "qpos": [], "qvel": []}
        has_buttons = "prev_button_states" in info or hasattr(env.unwrapped, "_cur_button_states")
        if has_buttons:
            rows["button_states"] = []
        for step in range(recipe.max_episode_steps):
            action = np.clip(np.asarray(oracle.select_action(ob, info)), -1.0, 1.0)
            next_ob, _, terminated, truncated, info = env.step(action)
            if oracle.done:
                oracle_ob, oracle_info = env.unwrapped.set_new_target(p_stack=p_stack)
                oracle = oracles[oracle_info["privileged/target_task"]]
                oracle.reset(oracle_ob, oracle_info)
            rows["observations"].append(ob)
            rows["actions"].append(action)
            rows["terminals"].append(terminated or truncated or step == recipe.max_episode_steps - 1)
            rows["qpos"].append(info["prev_qpos"])
            rows["qvel"].append(info["prev_qvel"])
            if has_buttons:
                rows["button_states"].append(info["prev_button_states"])
            ob = next_ob
        # the health check reads float64 qpos, as generate_manipspace.py does, before the float32 cast
        if not recipe.health_check or _healthy(np.asarray(rows["qpos"])):
            dtypes = {"terminals": bool, "button_states": np.int64}
            return {k: np.asarray(v, dtype=dtypes.get(k, np.float32)) for k, v in rows.items()}
    raise RuntimeError(f"episode {index} failed the health check 100 times")


def _build_shard(job: tuple[str, ManipRecipe | MazeRecipe, int, int, int, str]) -> int:
    name, recipe, seed, first, last, shard_path = job
    env = recipe.make_env()
    episodes = [recipe.generate(env, seed, i) for i in range(first, last)]
    env.close()
    shard = {k: np.concatenate([e[k] for e in episodes]) for k in episodes[0]}
    tmp = shard_path + ".tmp.npz"
    np.savez(tmp, **shard)
    os.replace(tmp, shard_path)
    return last - first


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 of the arrays themselves (names, dtypes, shapes, bytes in name order): the file's own sha256 also
    covers zlib's output, which can differ between machines whose arrays are equal."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for pkg in ("ogbench", "mujoco", "gymnasium", "numpy", "scipy"):
        out[pkg] = version(pkg)
    return out


def build(
    name: str,
    dataset_dir: str | os.PathLike,
    num_episodes: int | None = None,
    workers: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Build ``{name}.npz`` and ``{name}-val.npz`` in ``dataset_dir``; return the manifest path.

    Resumable: finished shards are kept in ``{dataset_dir}/.build-{name}-seed{seed}-n{episodes}-{recipe hash}/`` and
    skipped.
    """
    if name not in RECIPES:
        raise KeyError(f"no local recipe for OGBench dataset {name!r}; buildable: {sorted(RECIPES)}")
    recipe = RECIPES[name]
    n_train = recipe.num_episodes if num_episodes is None else int(num_episodes)
    if n_train < 1:
        raise ValueError("num_episodes must be >= 1")
    n_val = max(1, n_train // 10)  # ogbench's loader crashes on an empty val file
    total = n_train + n_val
    dataset_dir = Path(dataset_dir).expanduser()
    # shards of another recipe or simulator version are never mixed in: both are part of the folder's name
    from importlib.metadata import version

    fingerprint = hashlib.sha256(json.dumps({"recipe": asdict(recipe), "ogbench": version("ogbench"),
                                             "mujoco": version("mujoco")}, sort_keys=True, default=str).encode()).hexdigest()[:10]
    work = dataset_dir / f".build-{name}-seed{seed}-n{n_train}-{fingerprint}"
    work.mkdir(parents=True, exist_ok=True)

    jobs = []
    for first in range(0, total, SHARD_EPISODES):
        last = min(first + SHARD_EPISODES, total)
        path = work / f"episodes-{first:06d}-{last:06d}.npz"
        jobs.append((name, recipe, seed, first, last, str(path)))
    todo = [j for j in jobs if not Path(j[-1]).exists()]

    # Wall time accumulates over resumed runs (written after every shard, so a kill loses at most one shard's).
    elapsed_file = work / "elapsed_seconds"
    elapsed = float(elapsed_file.read_text()) if elapsed_file.exists() else 0.0
    started = time.time()

    def record(done: int) -> None:
        bar.update(done)
        elapsed_file.write_text(f"{elapsed + time.time() - started:.1f}")

    from tqdm.auto import tqdm

    with tqdm(total=total, initial=total - sum(j[4] - j[3] for j in todo), unit="ep", disable=not progress,
              desc=f"building {name}") as bar:
        if workers > 1 and len(todo) > 1:
            with mp.get_context("spawn").Pool(workers) as pool:
                for done in pool.imap_unordered(_build_shard, todo):
                    record(done)
        else:
            for job in todo:
                record(_build_shard(job))
    build_seconds = elapsed + time.time() - started

    shards = [dict(np.load(j[-1])) for j in jobs]
    full = {k: np.concatenate([s[k] for s in shards]) for k in shards[0]}
    split = n_train * recipe.max_episode_steps
    files = {}
    for suffix, rows in (("", slice(0, split)), ("-val", slice(split, None))):
        out = dataset_dir / f"{name}{suffix}.npz"
        tmp = dataset_dir / f".{name}{suffix}.tmp.npz"
        part = {k: v[rows] for k, v in full.items()}
        np.savez_compressed(tmp, **part)
        os.replace(tmp, out)
        files[out.name] = {"sha256": _sha256(out), "arrays_sha256": arrays_sha256(part), "bytes": out.stat().st_size,
                           "rows": int(full["actions"][rows].shape[0])}

    manifest = {
        "dataset": name,
        "source": "genzoo local rebuild (recipe of ogbench's data_gen_scripts)",
        "rebuilt": True,
        "recipe": asdict(recipe) | {"val_episodes": n_val},
        "episodes": n_train,
        "seed": seed,
        "workers": workers,
        "build_seconds": round(build_seconds, 1),
        "versions": _versions(),
        "files": files,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = manifest_path(dataset_dir, name)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(work)
    return path


def manifest_path(dataset_dir: str | os.PathLike, name: str) -> Path:
    return Path(dataset_dir).expanduser() / f"{name}.manifest.json"
