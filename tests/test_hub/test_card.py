"""Model cards rendered from a checkpoint's config (hub/card.py)."""

import copy
import json
from pathlib import Path

import zoo
from hub.card import render_card

BUNDLED = Path(zoo.__file__).parent / "checkpoints" / "genzoo" / "diffusionbc-ogbench-cube-single-task1-seed0"


def _render(config: dict) -> str:
    results = json.loads((BUNDLED / "results.json").read_text())
    agent = zoo.load(BUNDLED)
    return render_card("genzoo/x", config, results, agent.card_info(config, results))


def test_card_names_the_steps_trained_on_another_rebuild_of_the_dataset():
    config = json.loads((BUNDLED / "config.json").read_text())
    final = config["dataset"]["sha256"]
    plain = _render(config)
    assert "read a rebuild of the dataset" not in plain

    leased = copy.deepcopy(config)
    leased["training"]["segments"] = [
        {"start": 0, "end": 31091, "device": "cuda:NVIDIA H200", "dataset_sha256": "14b3aad978b7" + "0" * 52},
        {"start": 31091, "end": 200000, "device": "cpu:Intel(R) Xeon(R) Processor", "dataset_sha256": final},
    ]
    card = _render(leased)
    line = next(x for x in card.splitlines() if "read a rebuild of the dataset" in x)
    assert "steps 0-31,091 on NVIDIA H200" in line and "14b3aad978b7" in line and final[:12] in line
    # the steps trained on this checkpoint's own file are not listed
    assert card.count("read a rebuild of the dataset") == 1


def test_card_names_the_processor_that_measured_the_latency():
    config = json.loads((BUNDLED / "config.json").read_text())
    results = json.loads((BUNDLED / "results.json").read_text())
    agent = zoo.load(BUNDLED)
    older = render_card("genzoo/x", config, results, agent.card_info(config, results))
    assert "on the evaluation machine (batch 1, CPU)" in older  # a card evaluated before results named its CPU
    results["device_name"] = "cpu:Intel(R) Xeon(R) Processor (avx512_bf16, amx_bf16)"
    named = render_card("genzoo/x", config, results, agent.card_info(config, results))
    assert "call on Intel(R) Xeon(R) Processor (avx512_bf16, amx_bf16) (batch 1)." in named
