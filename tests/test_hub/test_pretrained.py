"""save_pretrained / from_pretrained / cards, fully offline (local directory and HF cache layout)."""

import json
import re

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard

from agents import FQL
from evaluation import evaluate

REPO = "genzoo/fql-ogbench-cube-single-task1-seed0"


@pytest.fixture
def trained(tiny_dataset, make_fql):
    agent = make_fql(tiny_dataset)
    agent.learn_offline(tiny_dataset, 20, log_interval=0)
    results = evaluate(agent, "ogbench/cube-single-task1", n_episodes=2)
    return agent, results


def test_save_pretrained_writes_the_repo_and_a_card_that_parses_back(tmp_path, trained):
    agent, results = trained
    out = agent.save_pretrained(tmp_path / "repo", repo_id="me/fql-test", results=results,
                                task="ogbench/cube-single-task1", env_id="cube-single-singletask-task1-v0")
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "README.md", "results.json"}
    card = ModelCard.load(out / "README.md")
    data = card.data
    assert data.library_name == "genzoo" and data.pipeline_tag == "reinforcement-learning" and data.license
    assert {"fql", "ogbench", "cube-single"} <= set(data.tags)
    (ev,) = data.eval_results
    assert ev.metric_value == round(results["aggregate"]["mean"], 2) and ev.metric_name == "success rate (%)"
    assert ev.dataset_type == "ogbench/cube-single-task1"
    text = (out / "README.md").read_text()
    assert "Rebuilt dataset" in text and "Deviations from the paper" in text and "@inproceedings{park2025flow" in text
    assert "`actor_hidden_dims` = `[32, 32]` (paper: `[512, 512, 512, 512]`)" in text


def test_card_usage_snippet_runs_as_written(tmp_path, trained, monkeypatch):
    agent, results = trained
    out = agent.save_pretrained(tmp_path / "me" / "fql-test", repo_id="me/fql-test", results=results,
                                task="ogbench/cube-single-task1")
    snippet = re.search(r"```python\n(.*?)```", (out / "README.md").read_text(), re.S).group(1)
    # the snippet loads by repo id: serve that id from a directory of the same name, as the Hub cache would
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet.replace("n_episodes=5", "n_episodes=1"), "card", "exec"), {})


def test_from_pretrained_round_trip_through_the_hf_cache(tmp_path, trained, monkeypatch):
    agent, results = trained
    cache = tmp_path / "hf-cache"
    commit = "0" * 40
    snap = cache / "models--me--fql-cached" / "snapshots" / commit
    agent.save_pretrained(snap, repo_id="me/fql-cached", results=results, task="ogbench/cube-single-task1")
    (cache / "models--me--fql-cached" / "refs").mkdir(parents=True)
    (cache / "models--me--fql-cached" / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    loaded = FQL.from_pretrained("me/fql-cached", local_files_only=True)
    assert loaded.source_dir == snap
    obs = np.zeros((3, 28), np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0])
    # a re-save keeps the training record and results of the source
    again = loaded.save_pretrained(tmp_path / "again")
    assert json.loads((again / "results.json").read_text())["aggregate"] == results["aggregate"]


def test_unknown_repo_without_network_or_bundle_is_a_clear_error():
    from hub import CheckpointError

    with pytest.raises(CheckpointError, match="could not be downloaded"):
        FQL.from_pretrained("nobody/nothing-here")
    with pytest.raises(CheckpointError, match="not a repo id"):
        FQL.from_pretrained("./no/such/dir/here")


def test_bf16_agent_saves_fp32_weights(tmp_path, tiny_dataset, make_fql):
    agent = make_fql(tiny_dataset, precision="bf16")
    agent.save_pretrained(tmp_path / "r", task="ogbench/cube-single-task1")
    from hub import read_tensors

    assert all(t.dtype == torch.float32 for t in read_tensors(tmp_path / "r" / "model.safetensors").values())


def test_finetuning_a_bundled_checkpoint_without_its_dataset_names_the_build_command():
    import zoo
    from evaluation import tasks
    from zoo.datasets import DatasetMissingError

    env = tasks.get("ogbench/cube-single-task1").make_env()
    agent = zoo.load("genzoo/fql-ogbench-cube-single-task1-seed0", env=env, learning_starts=0)
    with pytest.raises(DatasetMissingError, match="genzoo data build cube-single-play-v0"):
        agent.learn(1)  # the test HOME has no datasets
