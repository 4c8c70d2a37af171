"""Rebuild Minari's D4RL PointMaze datasets locally with the original recipe, in Minari's own format.

The recipe is ``scripts/pointmaze/create_pointmaze_dataset.py`` of ``Farama-Foundation/minari-dataset-generation-scripts``
(the D4RL maze2d recipe of Fu et al. 2020, ported to Gymnasium-Robotics):

* collection env ``gymnasium.make("PointMaze_<Maze>[Dense]-v3", continuing_task=True, reset_target=True,
  max_episode_steps=1e6)`` reset once with ``seed=123``: on reaching a goal the env draws a new one and goes on;
* a PD waypoint controller (``p=10, d=-1``) following a path through the maze cells, every waypoint after the first
  jittered by ``-U(0, 0.2)`` per axis; action noise ``N(0, 0.5²)``, clipped to [-1, 1]. The path comes from the
  controller's default solver, a depth-first search (``controller.py``: ``maze_solver="DFS"``; the script never
  passes another, though it records ``algorithm_name="QIteration"``). DFS paths are not shortest: in the medium and
  large mazes they detour, which is what the published episode counts show (medium-dense-v2: 4,752 episodes in 1M
  steps; a shortest-path controller reaches ~6,800 goals). ``maze_solver="qiteration"`` gives the shortest path;
* an episode ends (``truncation``) at every step whose ``info["success"]`` is true, and the next episode starts
  from that step's observation; ``infos`` carry ``success``, ``qpos``, ``qvel`` and ``goal``; 1,000,000 steps;
* ``eval_env``: the same env with the single-goal map of ``EVAL_ENV_MAPS`` and ``reset_target=False``; reference
  scores are Minari's: mean return of the (noise-free) waypoint controller and of a uniform random policy over
  100 episodes of the eval env, the first reset seeded with 123.

Deliberate differences, each recorded in the manifest: the official script draws noise from the unseeded global
``np.random``; here every random draw comes from ``SeedSequence([seed, shard])``, so a build is reproducible. The
1M steps are collected as ``shards`` independent continuing runs of equal length (shard ``k`` resets with seed
``123 + k``, offset by ``1000 * seed``), which makes builds resumable and parallel; each shard's last, unfinished
episode ends as truncated, as the official file's last episode does. Minari's ``DataCollector`` needs ``jax``;
this builder writes the same episodes through ``minari.create_dataset_from_buffers`` instead.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

AUTHOR = "genzoo (local rebuild)"
CODE_PERMALINK = "https://github.com/Farama-Foundation/minari-dataset-generation-scripts/blob/main/scripts/pointmaze"
G = "g"
# Single-goal evaluation maps of the official script (the "g" cell is the fixed goal).
EVAL_ENV_MAPS: dict[str, list[list[Any]]] = {
    "umaze": [[1, 1, 1, 1, 1],
              [1, G, 0, 0, 1],
              [1, 1, 1, 0, 1],
              [1, 0, 0, 0, 1],
              [1, 1, 1, 1, 1]],
    "medium": [[1, 1, 1, 1, 1, 1, 1, 1],
               [1, 0, 0, 1, 1, 0, 0, 1],
               [1, 0, 0, 1, 0, 0, 0, 1],
               [1, 1, 0, 0, 0, 1, 1, 1],
               [1, 0, 0, 1, 0, 0, 0, 1],
               [1, 0, 1, 0, 0, 1, 0, 1],
               [1, 0, 0, 0, 1, 0, G, 1],
               [1, 1, 1, 1, 1, 1, 1, 1]],
    "large": [[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
              [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1],
              [1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1],
              [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1],
              [1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1],
              [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1],
              [1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1],
              [1, 0, 0, 1, 0, 0, 0, 1, 0, G, 0, 1],
              [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]],
}


@dataclass(frozen=True)
class PointMazeRecipe:
    """One D4RL PointMaze dataset of Minari (``D4RL/pointmaze/<maze>[-dense]-v2``)."""

    dataset_id: str
    env_id: str
    maze: str  # key of EVAL_ENV_MAPS
    total_steps: int = 1_000_000
    action_noise: float = 0.5
    p_gain: float = 10.0
    d_gain: float = -1.0
    waypoint_threshold: float = 0.1
    waypoint_jitter: float = 0.2
    reset_seed: int = 123
    maze_solver: str = "dfs"  # what the official script ran (see the module docstring); or "qiteration"
    ref_episodes: int = 100
    shards: int = 10


RECIPES: dict[str, PointMazeRecipe] = {}
for _maze, _env in (("umaze", "UMaze"), ("medium", "Medium"), ("large", "Large")):
    for _dense in (False, True):
        _id = f"D4RL/pointmaze/{_maze}{'-dense' if _dense else ''}-v2"
        RECIPES[_id] = PointMazeRecipe(_id, f"PointMaze_{_env}{'Dense' if _dense else ''}-v3", _maze)


# ----------------------------------------------------------------------------------------------- the controller
Cell = tuple[int, int]
_MOVES = ((0, 1), (0, -1), (-1, 0), (1, 0))  # (row, col) steps, in the recipe's order (it names them up/down/left/right)


def _free(maze_map: list[list[Any]], cell: Cell) -> bool:
    r, c = cell
    return 0 <= r < len(maze_map) and 0 <= c < len(maze_map[0]) and maze_map[r][c] != 1


def dfs_path(maze_map: list[list[Any]], start: Cell, goal: Cell) -> dict[Cell, Cell]:
    """The recipe's ``DFS.generate_path``: depth-first search from ``start`` (a stack, neighbours pushed in
    ``_MOVES`` order, each cell discovered once), then the discovery tree walked back from ``goal``; returns
    ``{cell: next cell}`` along the found path (not necessarily a shortest one)."""
    frontier, parent = [start], {start: start}
    while frontier:
        cell = frontier.pop()
        if cell == goal:
            break
        for dr, dc in _MOVES:
            nxt = (cell[0] + dr, cell[1] + dc)
            if _free(maze_map, nxt) and nxt not in parent:
                parent[nxt] = cell
                frontier.append(nxt)
    path, cell = {}, goal
    while cell != start:
        path[parent[cell]] = cell
        cell = parent[cell]
    return path


def shortest_path_moves(maze_map: list[list[Any]], goal: Cell, iterations: int = 50, discount: float = 0.99) -> np.ndarray:
    """The recipe's ``QIteration``: Q-iteration on the grid of cells toward ``goal`` (reward 1 for stepping into it);
    returns, per cell, the index into ``_MOVES`` of the greedy move (the first best on ties)."""
    rows, cols = len(maze_map), len(maze_map[0])
    q = np.zeros((rows, cols, len(_MOVES)))
    for _ in range(iterations):
        v = q.max(axis=2)
        new_q = np.zeros_like(q)
        for a, (dr, dc) in enumerate(_MOVES):
            for r in range(rows):
                for c in range(cols):
                    if _free(maze_map, (r + dr, c + dc)):
                        new_q[r, c, a] = float((r + dr, c + dc) == goal) + discount * v[r + dr, c + dc]
        q = new_q
    return q.argmax(axis=2)


def qiteration_path(maze_map: list[list[Any]], start: Cell, goal: Cell) -> dict[Cell, Cell]:
    """``{cell: next cell}`` following the greedy Q-iteration moves from ``start`` to ``goal`` (a shortest path)."""
    moves, path, cell = shortest_path_moves(maze_map, goal), {}, start
    while cell != goal:
        dr, dc = _MOVES[moves[cell]]
        path[cell] = (cell[0] + dr, cell[1] + dc)
        cell = path[cell]
    return path


SOLVERS = {"dfs": dfs_path, "qiteration": qiteration_path}


class WaypointController:
    """PD control toward the next waypoint of a path through the maze cells (the recipe's ``WaypointController``).

    The path is recomputed from the current cell whenever the desired goal changes; the first waypoint is its cell
    centre, later ones are shifted by ``-U(0, jitter)`` per axis, and the last one is the goal position itself.
    """

    def __init__(self, maze: Any, rng: np.random.Generator, p_gain: float = 10.0, d_gain: float = -1.0,
                 threshold: float = 0.1, jitter: float = 0.2, solver: str = "dfs") -> None:
        if solver not in SOLVERS:
            raise ValueError(f"maze_solver must be one of {sorted(SOLVERS)}, got {solver!r}")
        self.maze, self.rng, self.solve = maze, rng, SOLVERS[solver]
        self.p_gain, self.d_gain, self.threshold, self.jitter = p_gain, d_gain, threshold, jitter
        self.goal_xy: np.ndarray | None = None

    def _cell(self, xy: np.ndarray) -> Cell:
        r, c = self.maze.cell_xy_to_rowcol(xy)
        return int(r), int(c)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        pos, goal = obs["achieved_goal"], obs["desired_goal"]
        if self.goal_xy is None or np.linalg.norm(self.goal_xy - goal) > 1e-3:
            self.goal_xy, self.goal_cell = goal.copy(), self._cell(goal)
            here = self._cell(pos)
            self.path = self.solve(self.maze.maze_map, here, self.goal_cell)
            self.target_cell = self.path.get(here, self.goal_cell)
            self.target_xy = self._centre(self.target_cell, jitter=False)
        if np.linalg.norm(self.target_xy - pos) <= self.threshold and self.target_cell != self.goal_cell:
            self.target_cell = self.path[self.target_cell]
            self.target_xy = self._centre(self.target_cell, jitter=True)
        return self.p_gain * (self.target_xy - pos) + self.d_gain * obs["observation"][2:]

    def _centre(self, cell: Cell, jitter: bool) -> np.ndarray:
        if cell == self.goal_cell:
            return self.goal_xy
        xy = np.asarray(self.maze.cell_rowcol_to_xy(np.array(cell)), dtype=np.float64)
        return xy - self.rng.uniform(size=2) * self.jitter if jitter else xy


# ----------------------------------------------------------------------------------------------- collection
def _make_env(recipe: PointMazeRecipe, **kwargs: Any):
    import gymnasium as gym
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    return gym.make(recipe.env_id, **kwargs)


def collect_shard(recipe: PointMazeRecipe, seed: int, shard: int, steps: int) -> dict[str, np.ndarray]:
    """One continuing run of ``steps`` steps; row ``i`` holds the observation before action ``i`` and the outcome.

    ``observations_*`` have ``steps + 1`` rows (the last is the final observation); ``truncations`` mark the
    episode ends (every success, and the shard's last step).
    """
    rng = np.random.default_rng([seed, shard])
    env = _make_env(recipe, continuing_task=True, reset_target=True, max_episode_steps=int(1e6))
    controller = WaypointController(env.unwrapped.maze, rng, recipe.p_gain, recipe.d_gain, recipe.waypoint_threshold,
                                    recipe.waypoint_jitter, recipe.maze_solver)
    obs, _ = env.reset(seed=recipe.reset_seed + 1000 * seed + shard)
    keys = ("observation", "achieved_goal", "desired_goal")
    out: dict[str, list] = {f"observations_{k}": [obs[k]] for k in keys}
    out |= {"actions": [], "rewards": [], "terminations": [], "truncations": [], "success": []}
    for _ in range(steps):
        action = controller(obs) + rng.standard_normal(2) * recipe.action_noise
        action = np.clip(action, -1.0, 1.0)
        obs, reward, terminated, truncated, info = env.step(action)
        for k in keys:
            out[f"observations_{k}"].append(obs[k])
        out["actions"].append(action)
        out["rewards"].append(reward)
        out["terminations"].append(terminated)
        out["truncations"].append(truncated or bool(info["success"]))
        out["success"].append(bool(info["success"]))
    env.close()
    out["truncations"][-1] = True
    dtypes = {"actions": np.float32, "rewards": np.float64, "terminations": bool, "truncations": bool, "success": bool}
    return {k: np.asarray(v, dtype=dtypes.get(k, np.float64)) for k, v in out.items()}


def _episode_buffers(shards: list[dict[str, np.ndarray]]) -> list[Any]:
    from minari.data_collector import EpisodeBuffer

    buffers = []
    for data in shards:
        ends = np.flatnonzero(data["truncations"] | data["terminations"])
        start = 0
        for end in ends:
            sl, obs_sl = slice(start, end + 1), slice(start, end + 2)
            obs = {k: data[f"observations_{k}"][obs_sl] for k in ("achieved_goal", "desired_goal", "observation")}
            # Like DataCollector's, infos have one row per observation (the first is the reset's or the previous
            # episode's last step's).
            infos = {
                "success": np.concatenate([[False], data["success"]])[obs_sl],
                "qpos": data["observations_observation"][obs_sl, :2],
                "qvel": data["observations_observation"][obs_sl, 2:],
                "goal": data["observations_desired_goal"][obs_sl],
            }
            buffers.append(EpisodeBuffer(id=len(buffers), observations=obs, actions=data["actions"][sl],
                                         rewards=list(data["rewards"][sl]), terminations=list(data["terminations"][sl]),
                                         truncations=list(data["truncations"][sl]), infos=infos))
            start = end + 1
    return buffers


def reference_scores(recipe: PointMazeRecipe, seed: int) -> tuple[float, float]:
    """Minari's reference scores on the eval env: (random policy, noise-free waypoint controller), 100 episodes each.

    Same procedure as ``minari.utils.get_average_reference_score`` (first reset seeded with 123), with the random
    actions and waypoint jitter drawn from seeded generators so the numbers are reproducible.
    """
    from minari.utils import get_average_reference_score

    scores = []
    for which in ("random", "expert"):
        env = _make_env(recipe, maze_map=EVAL_ENV_MAPS[recipe.maze], continuing_task=True, reset_target=False)
        if which == "random":
            env.action_space.seed(seed)
            policy = lambda obs, space=env.action_space: space.sample()  # noqa: E731
        else:
            policy = WaypointController(env.unwrapped.maze, np.random.default_rng([seed, 10_000]), recipe.p_gain,
                                        recipe.d_gain, recipe.waypoint_threshold, recipe.waypoint_jitter,
                                        recipe.maze_solver)
        scores.append(get_average_reference_score(env, policy, recipe.ref_episodes))
        env.close()
    return scores[0], scores[1]


def _collect_job(job: tuple[PointMazeRecipe, int, int, int, str]) -> int:
    recipe, seed, shard, steps, path = job
    data = collect_shard(recipe, seed, shard, steps)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **data)
    os.replace(tmp, path)
    return steps


def datasets_root(directory: str | os.PathLike | None = None) -> Path:
    """Minari's dataset root: the argument, ``$MINARI_DATASETS_PATH``, or ``~/.minari/datasets``."""
    if directory is not None:
        return Path(directory).expanduser()
    return Path(os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")).expanduser()


def manifest_path(root: str | os.PathLike, dataset_id: str) -> Path:
    return Path(root) / dataset_id / "genzoo_manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for pkg in ("minari", "gymnasium", "gymnasium-robotics", "mujoco", "numpy", "h5py"):
        out[pkg] = version(pkg)
    return out


def build(dataset_id: str, directory: str | os.PathLike | None = None, total_steps: int | None = None,
          workers: int = 1, seed: int = 0, progress: bool = True, ref_episodes: int | None = None) -> Path:
    """Build ``dataset_id`` into Minari's dataset root; return the manifest path.

    ``total_steps`` and ``ref_episodes`` override the recipe's (1M steps, 100 reference episodes), for tests.
    Resumable: finished shards stay in ``{root}/.build-...`` until the dataset is written.
    """
    import minari
    from tqdm.auto import tqdm

    if dataset_id not in RECIPES:
        raise KeyError(f"no local recipe for Minari dataset {dataset_id!r}; buildable: {sorted(RECIPES)}")
    recipe = RECIPES[dataset_id]
    if ref_episodes is not None:
        recipe = replace(recipe, ref_episodes=int(ref_episodes))
    steps = recipe.total_steps if total_steps is None else int(total_steps)
    n_shards = max(1, min(recipe.shards, steps // 1000))
    root = datasets_root(directory)
    work = root / f".build-{dataset_id.replace('/', '_')}-seed{seed}-n{steps}"
    work.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, steps, n_shards + 1).astype(int)
    jobs = [(recipe, seed, k, int(bounds[k + 1] - bounds[k]), str(work / f"shard-{k:03d}.npz")) for k in range(n_shards)]
    todo = [j for j in jobs if not Path(j[-1]).exists()]

    elapsed_file = work / "elapsed_seconds"
    elapsed = float(elapsed_file.read_text()) if elapsed_file.exists() else 0.0
    started = time.time()
    with tqdm(total=steps, initial=steps - sum(j[3] for j in todo), unit="step", unit_scale=True,
              disable=not progress, desc=f"building {dataset_id}") as bar:
        def record(done: int) -> None:
            bar.update(done)
            elapsed_file.write_text(f"{elapsed + time.time() - started:.1f}")

        if workers > 1 and len(todo) > 1:
            with mp.get_context("spawn").Pool(workers) as pool:
                for done in pool.imap_unordered(_collect_job, todo):
                    record(done)
        else:
            for job in todo:
                record(_collect_job(job))

    ref_min, ref_max = reference_scores(recipe, seed)
    shards = [dict(np.load(j[-1])) for j in jobs]
    buffers = _episode_buffers(shards)
    target = root / dataset_id
    shutil.rmtree(target, ignore_errors=True)  # Minari refuses to overwrite an id
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        env = _make_env(recipe, continuing_task=True, reset_target=True, max_episode_steps=int(1e6))
        eval_env = _make_env(recipe, maze_map=EVAL_ENV_MAPS[recipe.maze], continuing_task=True, reset_target=False)
        minari.create_dataset_from_buffers(
            dataset_id, buffers, env=env, eval_env=eval_env, algorithm_name="QIteration",  # as the official metadata says
            author=AUTHOR, code_permalink=CODE_PERMALINK, ref_min_score=ref_min, ref_max_score=ref_max,
            description=f"Local rebuild by genzoo of {dataset_id} with the original recipe (see genzoo_manifest.json).",
        )
        env.close()
        eval_env.close()
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous
    build_seconds = elapsed + time.time() - started

    data_file = target / "data" / "main_data.hdf5"
    success = np.concatenate([s["success"] for s in shards])
    manifest = {
        "dataset": dataset_id,
        "source": "genzoo local rebuild (recipe of minari-dataset-generation-scripts/scripts/pointmaze)",
        "rebuilt": True,
        "recipe": asdict(recipe) | {"total_steps": steps, "shards": n_shards},
        "seed": seed,
        "workers": workers,
        "build_seconds": round(build_seconds, 1),
        "ref_min_score": ref_min,
        "ref_max_score": ref_max,
        "stats": {"episodes": len(buffers), "steps": steps, "goals_reached": int(success.sum())},
        "versions": _versions(),
        "files": {"data/main_data.hdf5": {"sha256": _sha256(data_file), "bytes": data_file.stat().st_size}},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = manifest_path(root, dataset_id)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(work)
    return path
