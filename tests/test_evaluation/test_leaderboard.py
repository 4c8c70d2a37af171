import json

from evaluation import leaderboard


def _row(method, task, seed, score):
    return {"method": method, "task": task, "seed": seed, "score": score, "ci_low": score - 5, "ci_high": score + 5,
            "metric": "success rate (%)", "episodes": 50, "episode_seeds": "0..49", "deterministic": False,
            "sampler": "{}", "latency_ms": 0.2, "paper": 97, "dataset_sha256": "ab" * 32, "rebuilt": True, "device": "cpu",
            "checkpoint": f"genzoo/{method.lower()}-{seed}", "checkpoint_sha256": "cd" * 32}


def test_leaderboard_files_and_aggregates(tmp_path):
    rows = [_row("FQL", f"ogbench/cube-single-task{t}", s, 60 + 10 * t + s) for t in (1, 2) for s in (0, 1, 2)]
    paths = leaderboard.write(rows, tmp_path, {"device": "cpu", "versions": {"torch": "x"}})
    assert all(p.is_file() for p in paths.values())
    data = json.loads(paths["json"].read_text())
    iqm = data["aggregates"]["all"]["FQL"]["iqm"]
    assert iqm["ci_low"] <= iqm["value"] <= iqm["ci_high"] and 0.7 < iqm["value"] < 0.9
    md = paths["md"].read_text()
    assert "not the papers' numbers" in md and "| `ogbench/cube-single-task1` | FQL | 0 |" in md
    assert "| paper |" in md
    assert "cube-single" in data["aggregates"]


def test_aggregates_keep_every_seed_when_tasks_have_different_seed_counts(tmp_path):
    # the committed leaderboard's case: 3 seeds on cube-single, 1 on hopper. The old code kept min(seeds) = 1 run per
    # task (dropping seeds 1 and 2), printed "2 × 2" and a zero-width CI.
    rows = [_row("ConsistencyBC", "ogbench/cube-single-task1", s, v) for s, v in ((0, 8.0), (1, 8.0), (2, 4.0))]
    rows.append(_row("ConsistencyBC", "minari/mujoco/hopper/simple-v0", 0, 89.3))
    paths = leaderboard.write(rows, tmp_path)
    agg = json.loads(paths["json"].read_text())["aggregates"]["all"]["ConsistencyBC"]
    task_means = [89.3 / 100, (0.08 + 0.08 + 0.04) / 3]  # every seed, each task weighing 1/2
    assert abs(agg["mean"]["value"] - sum(task_means) / 2) < 1e-9
    assert abs(agg["optimality_gap"]["value"] - (1 - sum(task_means) / 2)) < 1e-9
    assert agg["seeds_per_task"] == {"minari/mujoco/hopper/simple-v0": [0], "ogbench/cube-single-task1": [0, 1, 2]}
    for name in ("iqm", "mean", "median", "optimality_gap"):
        a = agg[name]
        assert a["ci_low"] <= a["value"] <= a["ci_high"] and a["ci_low"] < a["ci_high"], name
    md = paths["md"].read_text()
    assert "| all | ConsistencyBC | 1+3 runs over 2 tasks |" in md and "2 × 2" not in md
    assert "| cube-single | ConsistencyBC | 3 × 1 |" in md


def test_ragged_aggregate_agrees_with_rliable_on_a_rectangular_matrix():
    import numpy as np

    from evaluation.aggregate import aggregate

    m = np.random.default_rng(1).uniform(size=(4, 3))  # 12 runs: rliable's IQM trims exactly 3 from each end
    ref = aggregate({"m": m})["m"]
    got = leaderboard.ragged_aggregate([m[:, j] for j in range(3)])
    for name in ("iqm", "mean", "median", "optimality_gap"):
        assert abs(got[name]["value"] - ref[name]["value"]) < 1e-12, name
        assert abs(got[name]["ci_low"] - ref[name]["ci_low"]) < 0.05 and abs(got[name]["ci_high"] - ref[name]["ci_high"]) < 0.05


def test_one_run_per_task_prints_no_ci(tmp_path):
    rows = [_row("FQL", "ogbench/cube-single-task1", 0, 90.0), _row("FQL", "minari/D4RL/pointmaze/medium-dense-v2", 0, 46.5)]
    md = leaderboard.write(rows, tmp_path)["md"].read_text()
    assert "| all | FQL | 1 × 2 | 68.2 [–] |" in md and "[68.2, 68.2]" not in md
