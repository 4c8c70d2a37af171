"""Minari D4RL PointMaze: the recipe's controller, a tiny real build, loading, and normalised evaluation."""

from __future__ import annotations

import json
from collections import deque

import numpy as np
import pytest

from zoo.datasets import minari_build

DATASET = "D4RL/pointmaze/umaze-v2"


def _bfs_distance(maze_map, start, goal):
    seen, queue = {start: 0}, deque([start])
    while queue:
        r, c = queue.popleft()
        for dr, dc in minari_build._MOVES:
            n = (r + dr, c + dc)
            if maze_map[n[0]][n[1]] != 1 and n not in seen:
                seen[n] = seen[(r, c)] + 1
                queue.append(n)
    return seen[goal]


def _walk(path, start, goal, maze):
    cell, steps = start, 0
    while cell != goal:
        nxt = path[cell]
        assert abs(nxt[0] - cell[0]) + abs(nxt[1] - cell[1]) == 1 and maze[nxt[0]][nxt[1]] != 1
        cell, steps = nxt, steps + 1
    return steps


def test_q_iteration_path_is_shortest_and_dfs_path_is_valid():
    maze = minari_build.EVAL_ENV_MAPS["large"]
    goal = (7, 9)
    longer = 0
    for start in [(1, 1), (5, 4), (3, 6), (1, 10)]:
        shortest = _bfs_distance(maze, start, goal)
        assert _walk(minari_build.qiteration_path(maze, start, goal), start, goal, maze) == shortest
        dfs = _walk(minari_build.dfs_path(maze, start, goal), start, goal, maze)
        assert dfs >= shortest
        longer += dfs > shortest
    assert longer > 0  # the recipe's DFS detours: this is why its episodes are longer than a shortest-path oracle's


def test_waypoint_controller_reaches_the_eval_goal_without_noise():
    recipe = minari_build.RECIPES["D4RL/pointmaze/medium-v2"]
    env = minari_build._make_env(recipe, maze_map=minari_build.EVAL_ENV_MAPS["medium"], continuing_task=True,
                                 reset_target=False)
    controller = minari_build.WaypointController(env.unwrapped.maze, np.random.default_rng(0))
    obs, _ = env.reset(seed=1)
    reached = False
    for _ in range(600):
        obs, _, _, _, info = env.step(np.clip(controller(obs), -1, 1))
        reached |= bool(info["success"])
    env.close()
    assert reached


@pytest.fixture(scope="module")
def tiny_minari_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("minari")
    manifest = minari_build.build(DATASET, root, total_steps=3000, ref_episodes=2, progress=False)
    return root, json.loads(manifest.read_text())


def test_build_writes_a_minari_dataset_split_at_every_goal(tiny_minari_root, monkeypatch):
    import minari

    root, manifest = tiny_minari_root
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    ds = minari.load_dataset(DATASET)
    assert ds.total_steps == 3000 and ds.total_episodes == manifest["stats"]["episodes"]
    episodes = list(ds.iterate_episodes())
    assert sum(int(ep.infos["success"][-1]) for ep in episodes) >= len(episodes) - manifest["recipe"]["shards"]
    for ep in episodes[:-1]:
        assert ep.truncations[-1] and not ep.truncations[:-1].any() and not ep.terminations.any()
        assert np.abs(ep.actions).max() <= 1.0
    env = ds.recover_environment(eval_env=True)
    assert env.spec.kwargs["reset_target"] is False and "g" in str(env.spec.kwargs["maze_map"])
    assert manifest["rebuilt"] and manifest["ref_max_score"] > manifest["ref_min_score"]
    data = root / DATASET / "data" / "main_data.hdf5"
    assert minari_build._sha256(data) == manifest["files"]["data/main_data.hdf5"]["sha256"]


def test_build_is_deterministic_given_the_seed(tiny_minari_root):
    recipe = minari_build.RECIPES[DATASET]
    a = minari_build.collect_shard(recipe, seed=0, shard=0, steps=300)
    b = minari_build.collect_shard(recipe, seed=0, shard=0, steps=300)
    c = minari_build.collect_shard(recipe, seed=1, shard=0, steps=300)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["actions"], c["actions"])


def test_load_flattens_observations_like_the_eval_env(tiny_minari_root, monkeypatch):
    from zoo import datasets

    root, manifest = tiny_minari_root
    data = datasets.load(DATASET, root)
    assert data.observations.shape == (3000, 8) and data.actions.shape == (3000, 2)
    assert data.info["rebuilt"] and data.info["ref_min_score"] == manifest["ref_min_score"]
    assert data.timeouts.sum() == manifest["stats"]["episodes"] and data.terminals.sum() == 0
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    from evaluation import tasks

    tasks._minari_metadata.cache_clear()
    env = tasks.get(f"minari/{DATASET}").make_env()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (8,)
    # Dict order achieved_goal, desired_goal, observation: the position is both the first 2 and the 5th-6th entries
    assert np.allclose(obs[:2], obs[4:6])
    env.close()


def test_evaluation_reports_the_normalised_score(tiny_minari_root, monkeypatch):
    from evaluation import evaluate, tasks

    root, manifest = tiny_minari_root
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    tasks._minari_metadata.cache_clear()

    class Still:
        def predict(self, observation, state=None, episode_start=None, deterministic=False):
            return np.zeros((len(observation), 2), np.float32), state

    result = evaluate(Still(), f"minari/{DATASET}", n_episodes=2)
    lo, hi = manifest["ref_min_score"], manifest["ref_max_score"]
    assert result["reference_scores"] == pytest.approx([lo, hi])
    for ep in result["episodes"]:
        assert ep["normalized_score"] == pytest.approx(100 * (ep["return"] - lo) / (hi - lo))
    assert result["aggregate"]["mean"] == pytest.approx(np.mean([ep["normalized_score"] for ep in result["episodes"]]))


def test_missing_dataset_names_the_build_command(tmp_path):
    from zoo import datasets

    with pytest.raises(datasets.DatasetMissingError, match="genzoo data build D4RL/pointmaze/large-dense-v2"):
        datasets.load("minari/D4RL/pointmaze/large-dense-v2", tmp_path)


def test_stats_report_episodes_and_goal_reaching(tiny_minari_root):
    from zoo.datasets import stats

    root, manifest = tiny_minari_root
    s = stats.minari_stats(DATASET, root)
    assert s["episodes"] == manifest["stats"]["episodes"] and s["transitions"] == 3000
    assert "% of episodes end at a goal" in s["behaviour"]
