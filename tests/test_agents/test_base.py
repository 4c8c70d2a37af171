"""The agent core on its own: action-chunk queues in predict, and the SB3 loop with chunks."""

import numpy as np
import torch
from gymnasium import spaces

from agents.core.base import GenerativeAgent, GenerativePolicy


class _ChunkPolicy(GenerativePolicy):
    """Chunk j of an observation o is (o[0] + j / 10) for every action dimension."""

    def __init__(self, observation_space, action_space, action_horizon=1):
        super().__init__(observation_space, action_space, action_horizon)
        self.dummy = torch.nn.Linear(1, 1)

    def sample_actions(self, obs, deterministic=False, **sampler):
        steps = torch.arange(self.action_horizon, dtype=obs.dtype) / 10
        chunk = obs[:, :1, None] + steps[None, None, :].expand(len(obs), self.act_dim, -1)
        return chunk.transpose(1, 2).reshape(len(obs), -1)


class _ChunkAgent(GenerativeAgent):
    policy_aliases = {"MlpPolicy": _ChunkPolicy}

    def update(self, batch):
        return {"n": torch.tensor(float(batch["actions"].shape[1]))}


def _agent(horizon=3, env=None):
    box = spaces.Box(-1, 1, (2,), np.float32)
    return _ChunkAgent("MlpPolicy", env, observation_space=box, action_space=spaces.Box(-1, 1, (2,), np.float32),
                       action_horizon=horizon, buffer_size=100)


def test_predict_executes_chunks_open_loop_per_env():
    agent = _agent(horizon=3)
    obs = np.array([[0.1, 0.0], [0.5, 0.0]], np.float32)
    a, state = agent.predict(obs, episode_start=np.array([True, True]))
    np.testing.assert_allclose(a[:, 0], [0.1, 0.5], atol=1e-6)
    a, state = agent.predict(obs * 0, state=state)  # still executing the first chunk: new obs ignored
    np.testing.assert_allclose(a[:, 0], [0.2, 0.6], atol=1e-6)
    a, state = agent.predict(obs * 0, state=state, episode_start=np.array([False, True]))  # env 1 restarted
    np.testing.assert_allclose(a[:, 0], [0.3, 0.0], atol=1e-6)
    a, state = agent.predict(obs * 0, state=state)  # env 0's chunk is spent: replan from the new obs
    np.testing.assert_allclose(a[:, 0], [0.0, 0.1], atol=1e-6)


def test_single_observation_with_chunks():
    agent = _agent(horizon=2)
    a, state = agent.predict(np.array([0.3, 0.0], np.float32))
    assert a.shape == (2,)
    b, _ = agent.predict(np.array([0.9, 0.0], np.float32), state=state)
    np.testing.assert_allclose([a[0], b[0]], [0.3, 0.4], atol=1e-6)


def test_sb3_learn_keeps_the_chunk_queue():
    import gymnasium

    class Echo(gymnasium.Env):
        observation_space = spaces.Box(-1, 1, (2,), np.float32)
        action_space = spaces.Box(-1, 1, (2,), np.float32)

        def reset(self, seed=None, options=None):
            self.t = 0
            return np.array([0.0, 0.0], np.float32), {}

        def step(self, action):
            self.t += 1
            self.actions.append(float(action[0]))
            return np.array([0.5, 0.0], np.float32), 0.0, False, self.t >= 6, {}

    env = Echo()
    env.actions = []
    agent = _agent(horizon=3, env=env)
    agent.learn(total_timesteps=6)
    # reset obs 0.0 -> chunk 0.0, 0.1, 0.2; then obs 0.5 -> 0.5, 0.6, 0.7
    np.testing.assert_allclose(env.actions, [0.0, 0.1, 0.2, 0.5, 0.6, 0.7], atol=1e-6)
    assert agent.replay_buffer.n_online == 6


def test_learn_with_a_vec_env_keeps_one_chunk_queue_per_env():
    """SB3's online loop over 2 envs: transitions from both, and each env executes its own chunk open loop."""
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env

    from agents import QAM

    venv = make_vec_env(lambda: gym.make("Pendulum-v1"), n_envs=2, seed=0)
    agent = QAM(env=venv, action_horizon=3, actor_hidden_dims=[16], value_hidden_dims=[16], num_qs=2, flow_steps=2,
                batch_size=8, learning_starts=10, seed=0)
    calls = []
    sample = agent.policy.sample_actions
    agent.policy.sample_actions = lambda obs, *a, **k: calls.append(len(obs)) or sample(obs, *a, **k)
    agent.learn(total_timesteps=24)
    assert agent.num_timesteps == 24 and agent.replay_buffer.n_online == 24
    # 12 vector steps; learning starts after 10 env steps (5 vector steps of random actions), then a new chunk for
    # both envs every 3 steps: 7 policy steps need ceil(7 / 3) = 3 chunk draws of 2 rows each.
    assert calls == [2, 2, 2]


def test_compiled_sampler_keeps_the_random_streams_and_load_acts_eagerly(tmp_path, toy_dataset):
    """compile=True runs predict's sampler through torch.compile with the noise drawn eagerly: the same per-row
    generators give the same actions (to fused-kernel rounding). A loaded model acts eagerly unless asked."""
    from agents import MoMaQL

    kw = dict(observation_space=toy_dataset.observation_space, action_space=toy_dataset.action_space,
              actor_hidden_dims=[32, 32], value_hidden_dims=[32, 32], batch_size=32, seed=0)
    eager, compiled = MoMaQL(**kw), MoMaQL(compile=True, **kw)
    compiled.policy.load_state_dict(eager.policy.state_dict())
    obs = toy_dataset.observations[:3]

    def gens():
        return [torch.Generator().manual_seed(i) for i in range(3)]

    np.testing.assert_allclose(compiled.predict(obs, generators=gens())[0], eager.predict(obs, generators=gens())[0],
                               atol=1e-5)
    assert "sample_actions" in compiled._compiled
    compiled.save(tmp_path / "m")
    assert MoMaQL.load(tmp_path / "m").compile is False
    assert MoMaQL.load(tmp_path / "m", compile=True).compile is True
    assert MoMaQL.load(tmp_path / "m", training_state=True).compile is True  # resuming keeps the run's setting


def _echo_env():
    import gymnasium

    class Echo(gymnasium.Env):
        observation_space = spaces.Box(-1, 1, (2,), np.float32)
        action_space = spaces.Box(-1, 1, (2,), np.float32)

        def reset(self, seed=None, options=None):
            return np.zeros(2, np.float32), {}

        def step(self, action):
            return np.zeros(2, np.float32), 0.0, False, False, {}

    return Echo()


def _user_data(n=64):
    from agents import Dataset

    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    return Dataset.from_arrays(obs, rng.uniform(-1, 1, (n, 2)).astype(np.float32), np.zeros(n), obs, np.zeros(n),
                               action_space=spaces.Box(-1, 1, (2,), np.float32))


def _fql():
    from agents import FQL

    box = spaces.Box(-1, 1, (2,), np.float32)
    return FQL(env=None, observation_space=box, action_space=box, actor_hidden_dims=[16], value_hidden_dims=[16],
               batch_size=8, buffer_size=100, seed=0)


def test_learn_after_loading_an_agent_trained_on_user_data_says_how_to_keep_that_data(tmp_path):
    import pytest

    from agents import FQL

    agent = _fql()
    agent.learn_offline(_user_data(), 3, log_interval=0)
    agent.save(tmp_path / "m")
    loaded = FQL.load(tmp_path / "m", env=_echo_env(), learning_starts=0)
    with pytest.raises(ValueError, match="load_offline_data"):
        loaded.learn(4)
    loaded.learn(4, keep_offline_data=False)
    assert loaded.replay_buffer.n_offline == 0 and loaded.replay_buffer.n_online == 4
    loaded.learn(4, reset_num_timesteps=False)  # a buffer that holds transitions is used as it is
    assert loaded.replay_buffer.n_online == 8


def test_training_a_loaded_agent_further_offline_adds_steps_to_its_record(tmp_path):
    import json

    from agents import FQL

    data = _user_data()
    agent = _fql()
    agent.learn_offline(data, 3, log_interval=0)
    agent.save(tmp_path / "m", training={"steps": 3, "seed": 7, "variant": None, "base_model": None})
    loaded = FQL.load(tmp_path / "m")
    loaded.learn_offline(data, 5, log_interval=0)
    training = json.loads(loaded.save(tmp_path / "more").joinpath("config.json").read_text())["training"]
    assert training["steps"] == 8 and training["seed"] == 7 and training["base_model"] is None


def test_learn_without_the_zoo_dataset_loader_says_how_to_supply_the_data(tmp_path, monkeypatch):
    import pytest

    from agents import FQL
    from agents.core import dataset

    agent = _fql()
    agent.learn_offline(_user_data(), 2, log_interval=0)
    agent.offline_dataset_info["id"] = "cube-single-play-singletask-task1-v0"  # as a catalogue checkpoint records it
    agent.save(tmp_path / "m")
    monkeypatch.setattr(dataset, "_dataset_loader", None)  # only the agents layer imported
    loaded = FQL.load(tmp_path / "m", env=_echo_env(), learning_starts=0)
    with pytest.raises(ValueError, match="import zoo.datasets"):
        loaded.learn(2)


def test_parameters_round_trip_as_in_sb3_and_load_restores_the_step_count(tmp_path):
    import gymnasium
    import pytest

    from agents import FQL
    from hub import CheckpointError

    agent = _fql()
    agent.learn_offline(_user_data(), 3, log_interval=0)
    other = _fql()
    other.set_parameters(agent.get_parameters())  # SB3's nested {"policy": ...} layout, targets included
    for (name, a), b in zip(agent.policy.state_dict().items(), other.policy.state_dict().values()):
        assert torch.equal(a, b), name
    extra = {"policy": {**agent.get_parameters()["policy"], "not_ours": torch.zeros(1)}}
    with pytest.raises(CheckpointError, match="not_ours"):
        other.set_parameters(extra)
    other.set_parameters(extra, exact_match=False)  # unknown names ignored
    agent.save(tmp_path / "m")
    loaded = FQL.load(tmp_path / "m")
    assert loaded.num_timesteps == 3  # as SB3: learn(..., reset_num_timesteps=False) counts on from here
    with pytest.raises(CheckpointError, match=r"observation shape \(2,\).*\(3,\)"):
        FQL.load(tmp_path / "m", env=gymnasium.make("Pendulum-v1"))
    with pytest.raises(ValueError, match="did you mean learning_starts"):
        FQL.load(tmp_path / "m", learning_strats=0)
    with pytest.raises(ValueError, match="got the text 'abc'"):
        FQL.load(tmp_path / "m", alpha="abc")


def test_sb3_style_zip_names_save_and_load_as_directories(tmp_path):
    from stable_baselines3.common.callbacks import CheckpointCallback

    from agents import FQL

    agent = _fql()
    agent.learn_offline(_user_data(), 4, log_interval=0,
                        callback=CheckpointCallback(save_freq=2, save_path=str(tmp_path), name_prefix="fql"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fql_2_steps", "fql_4_steps"]  # SB3 asks for fql_2_steps.zip
    loaded = FQL.load(tmp_path / "fql_4_steps.zip")  # the name SB3 users load by
    assert loaded.num_timesteps == 4 and loaded.source_dir == tmp_path / "fql_4_steps"


def test_load_warns_when_the_weights_are_not_the_ones_their_results_scored(tmp_path):
    import json
    import warnings

    import pytest

    import hub
    from agents import FQL

    path = _fql().save(tmp_path / "m")
    (path / "results.json").write_text(json.dumps({"checkpoint_sha256": "0" * 64}))
    with pytest.warns(UserWarning, match="not the file results.json scored"):
        FQL.load(path)
    (path / "results.json").write_text(json.dumps({"checkpoint_sha256": hub.weights_sha256(path / "model.safetensors")}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        FQL.load(path)
