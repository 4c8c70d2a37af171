"""Minari MuJoCo locomotion rebuilds: behaviour-run state round trip, resumption, and a tiny end-to-end build."""

from __future__ import annotations

import json

import numpy as np
import torch

from zoo.datasets import mujoco_build

TINY = {"simple": 300, "medium": 600}


def test_state_round_trip_restores_networks_optimisers_and_replay(tmp_path):
    model = mujoco_build._make_model("hopper", seed=0, n_envs=2)
    model.learning_starts = 50
    model.learn(120)
    mujoco_build.save_state(model, tmp_path / "state", {"note": 1})
    fresh = mujoco_build._make_model("hopper", seed=1, n_envs=2)
    meta = mujoco_build.load_state(fresh, tmp_path / "state")
    assert meta["note"] == 1 and fresh.num_timesteps == model.num_timesteps
    for (k, a), (_, b) in zip(model.policy.state_dict().items(), fresh.policy.state_dict().items()):
        assert torch.equal(a, b), k
    a, b = model.actor.optimizer.state_dict()["state"], fresh.actor.optimizer.state_dict()["state"]
    assert a.keys() == b.keys() and all(torch.equal(a[i]["exp_avg"], b[i]["exp_avg"]) for i in a)
    assert torch.equal(model.log_ent_coef, fresh.log_ent_coef)
    assert np.array_equal(model.replay_buffer.observations, fresh.replay_buffer.observations)
    assert fresh.replay_buffer.pos == model.replay_buffer.pos


def test_behaviour_run_resumes_and_keeps_the_best_policy_per_budget(tmp_path):
    run = mujoco_build.train_behaviour("hopper", tmp_path, until="simple", budgets=TINY, eval_every=100, eval_episodes=1,
                                       checkpoint_every=200, n_envs=5, progress=False)
    first = json.loads((run / "state" / "state.json").read_text())
    assert first["num_timesteps"] == 300 and (run / "best-simple.safetensors").is_file()
    assert "medium" not in first["best"]  # medium selects only past the simple budget
    # a run recorded before the windows (medium = the whole-run best, here the simple policy) selects medium again
    state = run / "state" / "state.json"
    state.write_text(json.dumps(first | {"best": first["best"] | {"medium": dict(first["best"]["simple"],
                                                                                 mean_return=1e9)}}))
    mujoco_build.train_behaviour("hopper", tmp_path, until="medium", budgets=TINY, eval_every=100, eval_episodes=1,
                                 checkpoint_every=200, n_envs=5, progress=False)
    second = json.loads((run / "state" / "state.json").read_text())
    assert second["num_timesteps"] == 600 and second["best"]["simple"] == first["best"]["simple"]
    # medium is chosen in (simple budget, medium budget]: never the simple policy itself
    assert 300 < second["best"]["medium"]["step"] <= 600 and (run / "best-medium.safetensors").is_file()
    steps = [int(line.split(",")[0]) for line in (run / "evaluations.csv").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 600  # the resumed run continued, it did not restart


def test_resume_discards_what_a_killed_segment_wrote_after_its_checkpoint(tmp_path):
    kw = dict(budgets=TINY, eval_every=100, eval_episodes=1, checkpoint_every=200, n_envs=5, progress=False)
    run = mujoco_build.train_behaviour("hopper", tmp_path, until="simple", **kw)
    kept = (run / "best-simple.safetensors").read_bytes()
    # a segment killed after the checkpoint at 300: it logged evaluations and wrote best policies of its own
    with open(run / "evaluations.csv", "a") as f:
        f.write("400,9999.000,0.000\n")
    (run / "best-simple.safetensors").write_bytes(b"lost")
    (run / "best-medium.json").write_text('{"mean_return": 9999.0, "std_return": 0.0, "step": 400}\n')
    mujoco_build.rewind_to_checkpoint(run, 300)
    assert (run / "best-simple.safetensors").read_bytes() == kept and not (run / "best-medium.json").exists()
    assert int((run / "evaluations.csv").read_text().splitlines()[-1].split(",")[0]) == 300
    (run / "best-medium.json").write_text('{"mean_return": 9999.0, "std_return": 0.0, "step": 400}\n')
    mujoco_build.train_behaviour("hopper", tmp_path, until="medium", **kw)
    state = json.loads((run / "state" / "state.json").read_text())
    assert json.loads((run / "best-medium.json").read_text()) == state["best"]["medium"]
    steps = [int(line.split(",")[0]) for line in (run / "evaluations.csv").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 600


def test_tiny_build_writes_a_loadable_minari_dataset(tmp_path):
    from zoo import datasets

    path = mujoco_build.build("mujoco/hopper/simple-v0", tmp_path, total_steps=2000, budgets=TINY, ref_episodes=2,
                              eval_episodes=1, eval_every=100, progress=False)
    m = json.loads(path.read_text())
    assert m["rebuilt"] and m["reference_scores"].startswith("local") and 1000 < m["stats"]["steps"] <= 2000
    data = datasets.load("mujoco/hopper/simple-v0", tmp_path)
    assert data.observations.shape == (m["stats"]["steps"], 11) and data.actions.shape[1] == 3
    assert data.terminals.sum() + data.timeouts.sum() == m["stats"]["episodes"]
    assert data.info["ref_min_score"] == m["ref_min_score"]
    # The docs' statistics row: return and the behaviour policy instead of goal reaching (locomotion has no goal).
    from zoo.datasets import stats

    row = stats.minari_stats("mujoco/hopper/simple-v0", tmp_path)
    assert row["episodes"] == m["stats"]["episodes"] and row["transitions"] == m["stats"]["steps"]
    assert "goal" not in row["behaviour"] and "SAC policy at env step" in row["behaviour"]
    assert f"{m['stats']['mean_return']:.0f} ±" in row["behaviour"]
    # `genzoo data list` shows the behaviour run's wall time in all, not only the last build command's share.
    listed = {r["dataset"]: r for r in datasets.status(tmp_path)}["mujoco/hopper/simple-v0"]
    assert listed["behaviour_algo"] == "SAC" and listed["behaviour_run_seconds"] == m["behaviour_policy"]["run_wall_s"]


def test_a_packaged_run_rebuilds_the_dataset_without_training(tmp_path):
    """A finished run is shipped (policies, counters, no optimiser state); a machine without the run folder collects
    the same dataset from it, and a later budget retrains rather than resuming from the copy."""
    from zoo import datasets

    kw = dict(total_steps=1200, budgets=TINY, ref_episodes=2, eval_episodes=1, eval_every=100, progress=False,
              packaged_root=tmp_path / "package")
    first = json.loads(mujoco_build.build("mujoco/hopper/simple-v0", tmp_path / "a", package=True, **kw).read_text())
    shipped = tmp_path / "package" / "hopper-seed0"
    assert (shipped / "best-simple.safetensors").is_file() and not (shipped / "state").exists()
    assert json.loads((shipped / "run.json").read_text())["num_timesteps"] == TINY["simple"]

    second = json.loads(mujoco_build.build("mujoco/hopper/simple-v0", tmp_path / "b", package=True, **kw).read_text())
    assert second["behaviour_policy"]["packaged"] and not first["behaviour_policy"]["packaged"]
    for key in ("ref_min_score", "ref_max_score", "stats"):
        assert second[key] == first[key], key
    assert second["files"] == first["files"]  # same policy, same seeds: the same bytes
    assert not (tmp_path / "b" / ".behaviour" / "hopper-seed0" / "state" / "state.safetensors").exists()
    from zoo.datasets import stats

    assert "policy from zoo/datasets/behaviour/" in stats.minari_stats("mujoco/hopper/simple-v0", tmp_path / "b")["behaviour"]
    data = datasets.load("mujoco/hopper/simple-v0", tmp_path / "b")
    assert data.observations.shape[0] == second["stats"]["steps"]

    run = mujoco_build.train_behaviour("hopper", tmp_path / "b", until="medium", budgets=TINY, eval_every=100,
                                       eval_episodes=1, n_envs=5, progress=False, packaged_root=tmp_path / "package")
    state = json.loads((run / "state" / "state.json").read_text())
    assert state["num_timesteps"] == TINY["medium"] and not state.get("packaged")
