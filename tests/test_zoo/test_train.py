import csv
import json
import os
import signal

import numpy as np
import pytest
import torch
import yaml
from stable_baselines3.common.callbacks import BaseCallback

import zoo
from hub import read_tensors
from zoo.train import HYPERPARAMS_DIR, STOPPED_EXIT_CODE, TrainingStopped, hyperparams, hyperparams_table, train

FAST = dict(overrides={"actor_hidden_dims": [64, 64], "value_hidden_dims": [64, 64], "batch_size": 64},
            progress_bar=False, log_interval=50)


def test_end_to_end_tiny_run(tmp_path, tiny_ogbench_dir):
    """tiny built dataset -> a few hundred steps -> save -> load -> eval, well under two minutes."""
    out = tmp_path / "run"
    agent = train("fql", "ogbench/cube-single-task1", steps=300, seed=0, out=out, checkpoint_every=100,
                  eval_episodes=3, dataset_dir=tiny_ogbench_dir, **FAST)
    model = out / "model"
    results = json.loads((model / "results.json").read_text())
    assert results["protocol"]["seeds"] == [0, 1, 2] and len(results["episodes"]) == 3
    assert {"seed", "return", "success", "length"} <= set(results["episodes"][0])
    assert 0.0 <= results["aggregate"]["mean"] <= 100.0
    config = json.loads((model / "config.json").read_text())
    assert config["algo"] == "FQL" and config["task"] == "ogbench/cube-single-task1"
    assert config["dataset"]["rebuilt"] is True and config["training"]["steps"] == 300
    assert config["algo_kwargs"]["alpha"] == 300.0  # the cube-single override from zoo/hyperparams/fql.yaml
    loaded = zoo.load(model)
    obs = np.zeros((4, 28), np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0])
    log = (out / "training_log.csv").read_text().splitlines()
    assert len(log) == 1 + 300 // 50


class _AtStep(BaseCallback):
    """Calls ``action`` once the run reaches step ``at``."""

    def __init__(self, at: int, action) -> None:
        super().__init__()
        self.at, self.action = at, action

    def _on_step(self) -> bool:
        if self.num_timesteps == self.at:
            self.action()
        return True


def _kill() -> None:  # as a crash or SIGKILL would: no checkpoint
    raise KeyboardInterrupt("killed")


def _sigterm() -> None:  # as a queue's kill or a lease's deadline would
    os.kill(os.getpid(), signal.SIGTERM)


def test_killed_run_resumes_to_identical_weights(tmp_path, tiny_ogbench_dir):
    common = dict(steps=200, seed=0, checkpoint_every=100, eval_episodes=0, dataset_dir=tiny_ogbench_dir, **FAST)
    train("fql", "ogbench/cube-single-task1", out=tmp_path / "straight", **common)
    with pytest.raises(KeyboardInterrupt):
        train("fql", "ogbench/cube-single-task1", out=tmp_path / "killed", callback=_AtStep(150, _kill), **common)
    torch.manual_seed(123)  # the resumed run must not depend on the RNG state of the process
    train("fql", "ogbench/cube-single-task1", out=tmp_path / "killed", **common)
    for name in ("model.safetensors", "training_state.safetensors"):
        folder = "model" if name == "model.safetensors" else "checkpoint"
        a = read_tensors(tmp_path / "straight" / folder / name)
        b = read_tensors(tmp_path / "killed" / folder / name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    meta = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert [s["start"] for s in meta["segments"]] == [0, 100]
    log = (tmp_path / "killed" / "training_log.csv").read_text().splitlines()
    steps = [int(float(r.split(",")[list(log[0].split(",")).index("time/gradient_steps")])) for r in log[1:]]
    assert steps == [50, 100, 150, 200]


def test_sigterm_checkpoints_the_step_reached_and_resumes_to_identical_weights(tmp_path, tiny_ogbench_dir):
    common = dict(steps=200, seed=0, checkpoint_every=100, eval_episodes=0, dataset_dir=tiny_ogbench_dir, **FAST)
    train("fql", "ogbench/cube-single-task1", out=tmp_path / "straight", **common)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingStopped) as stopped:
        train("fql", "ogbench/cube-single-task1", out=tmp_path / "stopped", callback=_AtStep(130, _sigterm), **common)
    assert stopped.value.code == STOPPED_EXIT_CODE == 143 and stopped.value.step == 130
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the run's only
    meta = json.loads((tmp_path / "stopped" / "run.json").read_text())
    assert meta["segments"][-1]["end"] == 130 and meta["segments"][-1]["device"].startswith("cpu:")
    assert not (tmp_path / "stopped" / "model").exists()  # stopped, not finished
    train("fql", "ogbench/cube-single-task1", out=tmp_path / "stopped", **common)
    for folder, name in (("model", "model.safetensors"), ("checkpoint", "training_state.safetensors")):
        a = read_tensors(tmp_path / "straight" / folder / name)
        b = read_tensors(tmp_path / "stopped" / folder / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), folder
    config = json.loads((tmp_path / "stopped" / "model" / "config.json").read_text())
    assert len(config["training"]["devices"]) == 1 and config["training"]["devices"][0].startswith("cpu:")
    # each segment names the dataset file it read (a resume on another machine's rebuild shows on the card)
    assert [(s["start"], s["end"]) for s in config["training"]["segments"]] == [(0, 130), (130, 200)]
    assert {s["dataset_sha256"] for s in config["training"]["segments"]} == {config["dataset"]["sha256"]}


def test_sigterm_stops_an_online_run_at_a_rollout_end_with_its_buffer(tmp_path):
    small = {"actor_hidden_dims": [32], "value_hidden_dims": [32], "batch_size": 16, "num_samples": 4,
             "candidates": 2, "learning_starts": 10}
    common = dict(seed=0, checkpoint_every=100, log_interval=20, eval_episodes=0, progress_bar=False, overrides=small)
    with pytest.raises(TrainingStopped) as stopped:
        train("rfm", "gymnasium/Hopper-v5", steps=100, out=tmp_path / "rfm", callback=_AtStep(25, _sigterm), **common)
    assert stopped.value.step == 25
    agent = train("rfm", "gymnasium/Hopper-v5", steps=40, out=tmp_path / "rfm", **common)
    assert agent.num_timesteps == 40 and agent.replay_buffer.n_online == 40


def test_resume_refuses_other_settings(tmp_path, tiny_ogbench_dir):
    common = dict(steps=50, checkpoint_every=50, eval_episodes=0, dataset_dir=tiny_ogbench_dir, **FAST)
    train("fql", "ogbench/cube-single-task1", seed=0, out=tmp_path / "r", **common)
    with pytest.raises(ValueError, match="other settings"):
        train("fql", "ogbench/cube-single-task1", seed=1, out=tmp_path / "r", **common)


def test_unknown_method_and_task(tmp_path):
    with pytest.raises(KeyError, match="unknown method"):
        train("nope", "ogbench/cube-single-task1", steps=1, seed=0, out=tmp_path)
    with pytest.raises(KeyError, match="known tasks"):
        train("fql", "ogbench/cube-single-task9", steps=1, seed=0, out=tmp_path)


def test_trqam_two_stage_pipeline_through_train(tmp_path, tiny_ogbench_dir):
    """Stage 1 (--bc-only) then stage 2 (--init-from the BC model): chunks of 5 from zoo/hyperparams/trqam.yaml."""
    small = {"actor_hidden_dims": [32, 32], "value_hidden_dims": [32, 32], "batch_size": 16, "num_qs": 2,
             "flow_steps": 3}
    common = dict(seed=0, checkpoint_every=20, eval_episodes=0, dataset_dir=tiny_ogbench_dir, progress_bar=False,
                  log_interval=10)
    train("trqam", "ogbench/cube-single-task1", steps=20, out=tmp_path / "bc",
          overrides={**small, "bc_only": True}, **common)
    agent = train("trqam", "ogbench/cube-single-task1", steps=20, out=tmp_path / "ft", overrides=small,
                  init_from=tmp_path / "bc" / "model", **common)
    config = json.loads((tmp_path / "ft" / "model" / "config.json").read_text())
    assert config["algo_kwargs"]["action_horizon"] == 5 and config["algo_kwargs"]["bc_only"] is False
    assert config["training"]["base_model"] == "genzoo/trqam-ogbench-cube-single-task1-bc-seed0"
    assert "--init-from" in config["training"]["command"]
    log = (tmp_path / "ft" / "training_log.csv").read_text().splitlines()
    assert "train/lambda" in log[0] and "train/kl_ema" in log[0]
    assert agent.predict(np.zeros((1, 28), np.float32))[0].shape == (1, 5)


def test_online_run_on_an_env_task_checkpoints_its_buffer_and_resumes(tmp_path):
    small = {"actor_hidden_dims": [32], "value_hidden_dims": [32], "batch_size": 16, "num_samples": 4,
             "candidates": 2, "learning_starts": 30}
    common = dict(seed=0, checkpoint_every=40, log_interval=20, eval_episodes=0, progress_bar=False, overrides=small)
    train("rfm", "gymnasium/Hopper-v5", steps=40, out=tmp_path / "rfm", eval_every=20, eval_every_episodes=1,
          **common)
    assert (tmp_path / "rfm" / "checkpoint" / "replay_buffer.safetensors").is_file()
    agent = train("rfm", "gymnasium/Hopper-v5", steps=80, out=tmp_path / "rfm", **common)  # resume
    assert agent.num_timesteps == 80 and agent.replay_buffer.n_online == 80
    config = json.loads((tmp_path / "rfm" / "model" / "config.json").read_text())
    assert config["algo"] == "RFM" and config["task"] == "gymnasium/Hopper-v5" and config["dataset"] is None
    run = json.loads((tmp_path / "rfm" / "run.json").read_text())
    assert [s["end"] for s in run["segments"]] == [40, 80]
    with open(tmp_path / "rfm" / "training_log.csv") as f:
        curve = [r for r in csv.DictReader(f) if r.get("eval/score")]
    assert [int(float(r["time/total_timesteps"])) for r in curve] == [0, 20, 40]  # from the untrained policy on


def test_a_learning_curve_leaves_the_runs_random_sequence_alone(tmp_path):
    """RFM's evaluation episodes and latency timing sample actions: the weights after a run with ``--eval-every``
    equal those of the same run without it."""
    small = {"actor_hidden_dims": [32], "value_hidden_dims": [32], "batch_size": 16, "num_samples": 4,
             "candidates": 2, "learning_starts": 20}
    common = dict(seed=0, steps=40, checkpoint_every=40, log_interval=20, eval_episodes=0, progress_bar=False,
                  overrides=small)
    with_curve = train("rfm", "gymnasium/Hopper-v5", out=tmp_path / "a", eval_every=20, eval_every_episodes=1, **common)
    without = train("rfm", "gymnasium/Hopper-v5", out=tmp_path / "b", **common)
    for (name, x), (_, y) in zip(with_curve.policy.state_dict().items(), without.policy.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_offline_to_online_finetuning_keeps_the_dataset_and_records_its_base(tmp_path, tiny_ogbench_dir):
    common = dict(seed=0, eval_episodes=0, dataset_dir=tiny_ogbench_dir, progress_bar=False)
    train("fql", "ogbench/cube-single-task1", steps=20, out=tmp_path / "off", checkpoint_every=20, seed=0,
          eval_episodes=0, dataset_dir=tiny_ogbench_dir, **FAST | {"log_interval": 10})
    base = tmp_path / "off" / "model"
    agent = train("fql", "ogbench/cube-single-task1", steps=30, out=tmp_path / "o2o", finetune_from=base,
                  checkpoint_every=30, log_interval=10, overrides={"online_fraction": 0.5}, **common)
    assert agent.replay_buffer.n_online == 30 and agent.replay_buffer.n_offline > 0 and agent.learning_starts == 0
    config = json.loads((tmp_path / "o2o" / "model" / "config.json").read_text())
    assert config["training"]["base_model"] == "genzoo/fql-ogbench-cube-single-task1-seed0"
    assert config["training"]["variant"] == "o2o"
    assert json.loads((tmp_path / "o2o" / "run.json").read_text())["init_from"] == str(base.resolve())
    assert agent.default_repo_id(config) == "genzoo/fql-ogbench-cube-single-task1-o2o-seed0"
    card = (tmp_path / "o2o" / "model" / "README.md").read_text()
    assert "base_model" in card
    # the published log is the finetuning run's (no episode ended in 30 steps), not the base model's
    assert "time/gradient_steps" not in (tmp_path / "o2o" / "model" / "training_log.csv").read_text()
    with pytest.raises(ValueError, match="not DiffusionBC"):
        train("diffusionbc", "ogbench/cube-single-task1", steps=10, out=tmp_path / "bad", finetune_from=base,
              checkpoint_every=10, log_interval=10, **common)
    # from the run's checkpoint folder the optimiser continues (Adam's step count goes on from the offline 20 steps)
    for source, out, adam_steps in ((base, "fresh", 10), (tmp_path / "off" / "checkpoint", "continued", 30)):
        train("fql", "ogbench/cube-single-task1", steps=10, out=tmp_path / out, finetune_from=source,
              checkpoint_every=10, log_interval=10, **common)
        state = read_tensors(tmp_path / out / "checkpoint" / "training_state.safetensors")
        steps = {int(v) for k, v in state.items() if k.startswith("optim/") and k.endswith("/step")}
        assert steps == {adam_steps}, (out, steps)


def test_online_checkpoints_hold_the_update_of_their_last_step_and_resume_without_skipping(tmp_path):
    small = {"actor_hidden_dims": [16], "value_hidden_dims": [16], "batch_size": 8, "num_samples": 2,
             "candidates": 2, "learning_starts": 0}
    common = dict(seed=0, checkpoint_every=10, log_interval=5, eval_episodes=0, progress_bar=False, overrides=small)
    with pytest.raises(KeyboardInterrupt):
        train("rfm", "gymnasium/Hopper-v5", steps=20, out=tmp_path / "r", callback=_AtStep(15, _kill), **common)
    counters = read_tensors(tmp_path / "r" / "checkpoint" / "training_state.safetensors")["counters"].tolist()
    assert counters[:2] == [10, 10]  # env steps, updates: the 10th step's update is in the checkpoint
    agent = train("rfm", "gymnasium/Hopper-v5", steps=20, out=tmp_path / "r", **common)
    assert agent.num_timesteps == 20 and agent._n_updates == 20 and agent.replay_buffer.n_online == 20


def test_python_api_finetuning_of_a_loaded_agent_keeps_its_data_and_records_its_base(tmp_path, tiny_ogbench_dir,
                                                                                      monkeypatch):
    from evaluation import tasks

    train("fql", "ogbench/cube-single-task1", steps=20, out=tmp_path / "off", checkpoint_every=20, seed=0,
          eval_episodes=0, dataset_dir=tiny_ogbench_dir, **FAST | {"log_interval": 10})
    monkeypatch.setenv("GENZOO_OGBENCH_DIR", str(tiny_ogbench_dir))
    env = tasks.get("ogbench/cube-single-task1").make_env()
    agent = zoo.load(tmp_path / "off" / "model", env=env, learning_starts=0)
    mean = agent.policy.obs_mean.clone()
    agent.learn(12)  # reads the checkpoint's dataset into the buffer first
    assert agent.replay_buffer.n_offline == json.loads((tmp_path / "off" / "model" / "config.json").read_text())[
        "dataset"]["rows"] and agent.replay_buffer.n_online == 12
    assert torch.equal(agent.policy.obs_mean, mean)  # the checkpoint's normalisation is kept
    out = agent.save_pretrained(tmp_path / "ft")
    training = json.loads((out / "config.json").read_text())["training"]
    assert training["steps"] == 12 and training["variant"] == "o2o"
    assert training["base_model"] == "genzoo/fql-ogbench-cube-single-task1-seed0"
    assert not (out / "training_log.csv").exists()  # the base model's log is not this model's
    resaved = zoo.load(tmp_path / "off" / "model").save_pretrained(tmp_path / "same")  # no training: unchanged
    assert json.loads((resaved / "config.json").read_text())["training"]["base_model"] is None
    assert (resaved / "training_log.csv").exists()


def test_online_run_with_two_envs_checkpoints_on_crossing(tmp_path):
    small = {"actor_hidden_dims": [16], "value_hidden_dims": [16], "batch_size": 8, "num_samples": 2,
             "candidates": 2, "learning_starts": 10}
    agent = train("rfm", "gymnasium/Hopper-v5", steps=30, seed=0, out=tmp_path / "r2", checkpoint_every=15,
                  log_interval=5, eval_episodes=0, progress_bar=False, overrides=small, n_envs=2)
    assert agent.n_envs == 2 and agent.num_timesteps == 30 and agent.replay_buffer.n_online == 30
    assert agent._n_updates == 30 - 10  # one update per env step after the warm-up (gradient_steps=-1)
    run = json.loads((tmp_path / "r2" / "run.json").read_text())
    assert run["segments"][-1]["end"] == 30


def test_minari_simple_datasets_take_the_d4rl_medium_rows():
    """simple-v0 has no published row; Diffusion-QL and Consistency-AC take their <env>-medium one (the yamls say so)."""
    for env in ("hopper", "walker2d", "halfcheetah"):
        for method in ("diffusionql", "consistencyac"):
            simple = hyperparams(method, f"minari/mujoco/{env}/simple-v0", budget="paper")
            assert simple == hyperparams(method, f"minari/mujoco/{env}/medium-v0", budget="paper") and simple
    assert hyperparams("consistencyac", "minari/mujoco/hopper/simple-v0")["eta"] == 0.1


def test_every_hyperparameter_file_names_known_families_tasks_and_arguments():
    """Each zoo/hyperparams/*.yaml loads under the strict reader and every entry is a constructor argument of its method,
    so a typo'd family, task id or argument fails here rather than applying to nothing."""
    from agents import ALGOS

    names = {k.lower(): k for k in ALGOS}
    files = sorted(HYPERPARAMS_DIR.glob("*.yaml"))
    assert {f.stem for f in files} == set(names)
    for f in files:
        table = hyperparams_table(f.stem)
        entries = [*(table.get("families") or {}).values(), *(table.get("tasks") or {}).values(), table.get("zoo_budget")]
        for entry in entries:
            ALGOS[names[f.stem]].check_arguments(entry or {})


@pytest.mark.parametrize("text, error", [
    ("families:\n  cube-single: {alpha: 1}\nfamilies:\n  scene: {alpha: 2}\n", "given twice"),
    ("families:\n  cube-singel: {alpha: 1}\n", "unknown task family 'cube-singel'"),
    ("tasks:\n  ogbench/cube-single-task9: {alpha: 1}\n", "unknown task id"),
    ("family:\n  cube-single: {alpha: 1}\n", "unknown top-level keys"),
])
def test_a_malformed_hyperparameter_file_is_refused(tmp_path, monkeypatch, text, error):
    import zoo.train

    (tmp_path / "fql.yaml").write_text(text)
    monkeypatch.setattr(zoo.train, "HYPERPARAMS_DIR", tmp_path)
    with pytest.raises((ValueError, KeyError, yaml.YAMLError), match=error):
        hyperparams("fql", "ogbench/cube-single-task1")


def test_a_signal_while_publishing_stops_cleanly_and_a_rerun_publishes(tmp_path, tiny_ogbench_dir, monkeypatch):
    import zoo.train

    evaluate = zoo.train.evaluate_checkpoint
    monkeypatch.setattr(zoo.train, "evaluate_checkpoint", lambda *a, **k: _sigterm())
    common = dict(steps=100, seed=0, checkpoint_every=50, eval_episodes=1, dataset_dir=tiny_ogbench_dir, **FAST)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingStopped) as stopped:
        train("fql", "ogbench/cube-single-task1", out=tmp_path / "r", **common)
    assert stopped.value.step == 100 and signal.getsignal(signal.SIGTERM) is before
    monkeypatch.setattr(zoo.train, "evaluate_checkpoint", evaluate)
    train("fql", "ogbench/cube-single-task1", out=tmp_path / "r", **common)
    assert (tmp_path / "r" / "model" / "results.json").is_file()
    assert len(json.loads((tmp_path / "r" / "run.json").read_text())["segments"]) == 1  # the rerun trained nothing
