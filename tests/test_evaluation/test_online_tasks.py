"""Online-RL tasks: Gymnasium MuJoCo v5 and DeepMind Control (through Shimmy) in the registry, scored by return."""

import numpy as np
import pytest

from evaluation import evaluate, get


@pytest.mark.parametrize("task_id", ["gymnasium/Hopper-v5", "dm_control/cheetah-run"])
def test_online_task_envs_are_flat_boxes_with_their_time_limit(task_id):
    task = get(task_id)
    assert task.online and task.metric == "return" and task.metric_label == "undiscounted return"
    env = task.make_env(max_episode_steps=5)
    obs, _ = env.reset(seed=0)
    assert obs.ndim == 1 and env.observation_space.shape == obs.shape
    for _ in range(5):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated:
            break
    assert terminated or truncated
    env.close()


def test_a_policy_is_scored_by_return_on_an_online_task():
    class Zero:
        def predict(self, obs, state=None, episode_start=None, deterministic=False):
            return np.zeros((len(obs), 6), np.float32), None

    result = evaluate(Zero(), "dm_control/cheetah-run", seeds=[0, 1])
    assert result["metric"] == "return" and len(result["episodes"]) == 2
    assert result["aggregate"]["mean"] == pytest.approx(np.mean([e["return"] for e in result["episodes"]]))
