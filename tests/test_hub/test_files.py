import json

import numpy as np
import pytest
import torch
from gymnasium import spaces

import hub
from hub import CheckpointError


def test_round_trip_and_space_json(tmp_path):
    box = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    desc = hub.space_to_json(box)
    json.dumps(desc)  # strict JSON: no Infinity literals
    assert hub.space_from_json(desc) == box
    hub.write_checkpoint(tmp_path, {"w": torch.ones(2, 2)}, {"algo": "X", "algo_kwargs": {}, "observation_space": desc,
                                                             "action_space": desc})
    tensors, config = hub.read_checkpoint(tmp_path)
    assert torch.equal(tensors["w"], torch.ones(2, 2))
    assert config["library"] == "genzoo" and config["format_version"] == hub.FORMAT_VERSION


def test_refusals_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint directory"):
        hub.read_config(tmp_path / "missing")
    d = tmp_path / "sb3"
    d.mkdir()
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointError, match="never loads pickled"):
        hub.read_config(d)
    f = tmp_path / "foreign"
    f.mkdir()
    (f / "model.safetensors").write_bytes(b"")
    (f / "config.json").write_text(json.dumps({"library": "other"}))
    with pytest.raises(CheckpointError, match="not describe a genzoo checkpoint"):
        hub.read_config(f)
    (f / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        hub.read_config(f)
    (f / "config.json").write_text(json.dumps({"library": "genzoo", "format_version": 99}))
    with pytest.raises(CheckpointError, match="upgrade genzoo"):
        hub.read_config(f)


def test_repo_ids_and_resolution():
    assert hub.repo_id("FQL", "ogbench/cube-single-task1", 0) == "genzoo/fql-ogbench-cube-single-task1-seed0"
    assert hub.repo_id("QAM", "ogbench/cube-single-task1", 2, variant="bc") == "genzoo/qam-ogbench-cube-single-task1-bc-seed2"
    with pytest.raises(CheckpointError, match="not bundled with genzoo"):
        hub.resolve("someone/unknown-model")


def test_foreign_safetensors_header_and_bad_schema_are_refused(tmp_path):
    from safetensors.torch import save_file

    hub.write_checkpoint(tmp_path, {"w": torch.ones(1)}, {"algo": "X", "algo_kwargs": {},
                                                         "observation_space": hub.space_to_json(spaces.Box(0, 1, (1,))),
                                                         "action_space": hub.space_to_json(spaces.Box(0, 1, (1,)))})
    hub.read_checkpoint(tmp_path)
    save_file({"w": torch.ones(1)}, str(tmp_path / "model.safetensors"), metadata={"format": "pt", "library": "other"})
    with pytest.raises(CheckpointError, match="foreign header"):
        hub.read_checkpoint(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["algo_kwargs"] = "oops"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="'algo_kwargs' must be dict"):
        hub.read_config(tmp_path)
