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
