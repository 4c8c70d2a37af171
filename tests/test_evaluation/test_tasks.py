import numpy as np
import pytest

from evaluation import evaluate, metrics, tasks


def test_registry_has_cube_single_tasks_with_protocols():
    for i in range(1, 6):
        t = tasks.get(f"ogbench/cube-single-task{i}")
        assert t.env_id == f"cube-single-singletask-task{i}-v0"
        assert t.dataset_id == f"cube-single-play-singletask-task{i}-v0"
        assert t.metric == "success" and t.protocol.episodes == 50 and t.protocol.max_episode_steps == 200
    with pytest.raises(KeyError, match="known tasks"):
        tasks.get("ogbench/cube-single-task7")


def test_env_runs_its_task():
    t = tasks.get("ogbench/cube-single-task3")
    env = t.make_env()
    env.reset(seed=0)
    t.check_env(env)
    assert env.unwrapped.cur_task_id == 3
    wrong = tasks.get("ogbench/cube-single-task2")
    with pytest.raises(RuntimeError, match="expected task 2"):
        wrong.check_env(env)


class _Random:
    """Anything with SB3's predict can be scored."""

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        return np.random.default_rng(0).uniform(-1, 1, (len(obs), 5)), state


def test_evaluate_records_seeds_and_aggregates():
    r = evaluate(_Random(), "ogbench/cube-single-task1", n_episodes=2)
    assert r["protocol"]["seeds"] == [0, 1] and len(r["episodes"]) == 2
    assert r["episodes"][0]["length"] == 200 and r["episodes"][0]["return"] == -200.0
    assert r["aggregate"]["mean"] == 0.0 and r["metric_label"] == "success rate (%)"
    again = evaluate(_Random(), "ogbench/cube-single-task1", seeds=[1])
    assert again["episodes"][0] == r["episodes"][1]


def test_bootstrap_ci_brackets_the_mean():
    s = metrics.summarize(np.array([1, 0, 1, 1, 0, 1, 1, 1]), scale=100)
    assert s["ci_low"] <= s["mean"] <= s["ci_high"] and s["mean"] == 75.0


@pytest.mark.parametrize("task_id", sorted(t for t, task in tasks.TASKS.items() if task.suite == "ogbench"))
def test_each_ogbench_task_runs_the_task_it_names(task_id):
    t = tasks.get(task_id)
    env = t.make_env()
    env.reset(seed=0)
    t.check_env(env)
    assert env.unwrapped.cur_task_id == t.task_index
    assert env.spec.max_episode_steps == t.protocol.max_episode_steps
    env.close()
