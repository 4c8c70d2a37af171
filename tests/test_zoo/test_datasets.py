import json
import urllib.request

import numpy as np
import pytest

from zoo import datasets
from zoo.datasets import ogbench_build


def test_built_files_load_through_ogbench_unchanged(tiny_ogbench_dir, monkeypatch):
    import ogbench

    def no_network(*args, **kwargs):
        raise AssertionError("ogbench tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    env, train, val = ogbench.make_env_and_datasets("cube-single-play-singletask-task1-v0",
                                                    dataset_dir=str(tiny_ogbench_dir))
    assert train["observations"].shape == (2000, 28) and train["observations"].dtype == np.float32
    assert train["actions"].shape == (2000, 5) and np.abs(train["actions"]).max() <= 1.0
    assert val["observations"].shape == (1000, 28)
    assert set(np.unique(train["rewards"])) <= {-1.0, 0.0}
    raw = np.load(tiny_ogbench_dir / "cube-single-play-v0.npz")
    assert raw["terminals"].sum() == 2 and raw["terminals"][1000] and raw["qpos"].shape == (2002, 21)


def test_manifest_records_recipe_versions_and_hashes(tiny_ogbench_dir):
    m = json.loads(ogbench_build.manifest_path(tiny_ogbench_dir, "cube-single-play-v0").read_text())
    assert m["rebuilt"] and m["seed"] == 0 and m["episodes"] == 2
    assert m["recipe"]["noise"] == 0.1 and m["recipe"]["noise_smoothing"] == 0.5
    assert m["recipe"]["max_episode_steps"] == 1001
    assert {"ogbench", "mujoco", "numpy"} <= set(m["versions"])
    path = tiny_ogbench_dir / "cube-single-play-v0.npz"
    assert m["files"]["cube-single-play-v0.npz"]["sha256"] == ogbench_build._sha256(path)


def test_build_is_deterministic_whatever_the_workers(tmp_path, tiny_ogbench_dir):
    ogbench_build.build("cube-single-play-v0", tmp_path, num_episodes=2, workers=2, seed=0, progress=False)
    a = np.load(tiny_ogbench_dir / "cube-single-play-v0.npz")
    b = np.load(tmp_path / "cube-single-play-v0.npz")
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])


def test_build_resumes_from_finished_shards(tmp_path, monkeypatch):
    calls = []
    real = ogbench_build._build_shard
    monkeypatch.setattr(ogbench_build, "SHARD_EPISODES", 1)

    def counting(job):
        calls.append(job[3])
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after the first shard
        return real(job)

    monkeypatch.setattr(ogbench_build, "_build_shard", counting)
    with pytest.raises(KeyboardInterrupt):
        ogbench_build.build("cube-single-play-v0", tmp_path, num_episodes=2, workers=1, progress=False)
    resumed = []
    monkeypatch.setattr(ogbench_build, "_build_shard", lambda job: resumed.append(job[3]) or real(job))
    ogbench_build.build("cube-single-play-v0", tmp_path, num_episodes=2, workers=1, progress=False)
    assert resumed == [1, 2]  # episode 0's shard was kept
    assert (tmp_path / "cube-single-play-v0.npz").is_file()


def test_load_returns_the_design_dataset(tiny_dataset):
    ds = tiny_dataset
    assert len(ds) == 2000 and ds.observation_space.shape == (28,) and ds.action_space.shape == (5,)
    assert ds.env_id == "cube-single-singletask-task1-v0"
    assert ds.info["rebuilt"] is True and len(ds.info["sha256"]) == 64
    assert ds.timeouts.sum() == 2  # trajectory ends, not terminals
    np.testing.assert_array_equal(ds.masks, 1.0 - ds.terminals)


def test_missing_dataset_names_the_build_command(tmp_path):
    with pytest.raises(datasets.DatasetMissingError, match="genzoo data build cube-single-play-v0"):
        datasets.load("cube-single-play-singletask-task1-v0", tmp_path)


def test_unknown_dataset_names_the_known_ones(tmp_path):
    # not "a goal-conditioned OGBench dataset": no such dataset at all
    with pytest.raises(datasets.UnknownDatasetError, match="unknown dataset 'foo'") as info:
        datasets.load("foo", tmp_path)
    msg = str(info.value)
    assert "goal-conditioned" not in msg and "genzoo data list" in msg
    assert "cube-single-play-singletask-{task1..task5}-v0" in msg and "mujoco/" in msg
    # a typo gets the closest ids
    with pytest.raises(datasets.UnknownDatasetError, match="did you mean cube-single-play-singletask-task1-v0"):
        datasets.load("cube-singel-play-singletask-task1-v0", tmp_path)
    with pytest.raises(datasets.UnknownDatasetError, match="did you mean mujoco/hopper/simple-v0"):
        datasets.load("hopper/simple-v0", tmp_path)


def test_unknown_task_number_is_refused_before_gymnasium(tiny_ogbench_dir):
    # the files exist, so the old code went on to gymnasium.make and leaked its NameNotFound
    with pytest.raises(datasets.UnknownDatasetError, match="cube-single has no task9, its tasks are task1..task5") as info:
        datasets.load("cube-single-play-singletask-task9-v0", tiny_ogbench_dir)
    assert "genzoo data list" in str(info.value)


def test_goal_conditioned_dataset_is_still_named_as_such(tmp_path):
    with pytest.raises(ValueError, match="'cube-single-play-v0' is a goal-conditioned OGBench dataset"):
        datasets.load("cube-single-play-v0", tmp_path)


def test_from_arrays_validates_shapes():
    with pytest.raises(ValueError, match="rows"):
        datasets.Dataset.from_arrays(np.zeros((5, 3)), np.zeros((4, 2)), np.zeros(5), np.zeros((5, 3)), np.zeros(5))
    ds = datasets.Dataset.from_arrays(np.zeros((5, 3)), np.zeros((5, 2)), np.zeros(5), np.zeros((5, 3)), np.zeros(5))
    assert ds.timeouts[-1] == 1 and ds.observations.dtype == np.float32


@pytest.mark.parametrize("name,task,obs_dim", [("cube-double-play-v0", "cube-double-play-singletask-task2-v0", 37),
                                               ("scene-play-v0", "scene-play-singletask-task2-v0", 40),
                                               ("puzzle-3x3-play-v0", "puzzle-3x3-play-singletask-task4-v0", 55)])
def test_other_manipulation_recipes_build_and_load(tmp_path, name, task, obs_dim):
    import ogbench

    ogbench_build.build(name, tmp_path, num_episodes=1, workers=1, seed=0, progress=False)
    _, train, val = ogbench.make_env_and_datasets(task, dataset_dir=str(tmp_path))
    assert train["observations"].shape == (1000, obs_dim) and val["observations"].shape == (1000, obs_dim)
    raw = np.load(tmp_path / f"{name}.npz")
    assert ("button_states" in raw.files) == (name != "cube-double-play-v0")


def test_pointmaze_navigate_builds_and_loads(tmp_path):
    import ogbench

    ogbench_build.build("pointmaze-medium-navigate-v0", tmp_path, num_episodes=2, seed=0, progress=False)
    _, train, _ = ogbench.make_env_and_datasets("pointmaze-medium-navigate-singletask-task1-v0", dataset_dir=str(tmp_path))
    assert train["observations"].shape == (2000, 2) and train["actions"].shape == (2000, 2)
    assert np.abs(train["actions"]).max() <= 1.0


def test_stats_table_counts_episodes_and_task_goals(tiny_ogbench_dir, tmp_path):
    from zoo.datasets import stats

    s = stats.ogbench_stats("cube-single-play-v0", tiny_ogbench_dir)
    assert s["episodes"] == 2 and s["transitions"] == 2 * 1000  # the train file: 2 episodes of 1001 rows
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{stats.START}\nold\n{stats.END}\nrest\n")
    stats.write_readme(readme, "| new |\n")
    assert readme.read_text() == f"intro\n{stats.START}\n| new |\n{stats.END}\nrest\n"


def test_stats_readme_keeps_rows_of_datasets_built_on_an_earlier_machine(tmp_path):
    from zoo.datasets import stats

    head = "| dataset | episodes | transitions | behaviour data | build time | official files |\n|---|---|---|---|---|---|\n"
    readme = tmp_path / "README.md"
    readme.write_text(f"{stats.START}\n{head}| `a` | 1 | 2 | x | 10 s | - |\n| `b` | 3 | 4 | y | 20 s | - |\n{stats.END}\n")
    stats.write_readme(readme, f"{head}| `a` | 5 | 6 | z | 30 s | - |\n")
    text = readme.read_text()
    assert "| `a` | 5 | 6 | z | 30 s | - |" in text and "| `a` | 1 |" not in text
    assert "| `b` | 3 | 4 | y | 20 s (earlier machine; not on this one) | - |" in text
    stats.write_readme(readme, f"{head}| `a` | 5 | 6 | z | 30 s | - |\n")  # marked once, not twice
    assert readme.read_text().count("earlier machine") == 1
