"""Model cards: rendered from the Jinja template shipped in ``hub/templates`` through ``huggingface_hub.ModelCard``.

The YAML metadata carries ``library_name: genzoo``, the license, ``pipeline_tag: reinforcement-learning``, tags, the
dataset, ``base_model`` for finetuned checkpoints and a ``model-index`` whose metric is named and scaled explicitly
(success rate in %, or normalised score ×100), so ``ModelCard.load`` reads the eval results back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATE = Path(__file__).resolve().parent / "templates" / "model_card.md.j2"
LICENSE = "mit"
SUITE_NAMES = {"ogbench": "OGBench", "minari": "Minari (D4RL)", "gymnasium": "Gymnasium"}


def card_data(repo_id: str, config: dict[str, Any], results: dict[str, Any] | None) -> ModelCardData:
    """The card's YAML metadata."""
    task = config.get("task") or "unknown"
    algo = config["algo"]
    suite = task.split("/", 1)[0]
    family = task.split("/", 1)[-1].rsplit("-task", 1)[0]
    tags = ["genzoo", "reinforcement-learning", algo.lower(), suite, family]
    if config.get("env_id"):
        tags.append(config["env_id"])
    dataset = config.get("dataset") or {}
    if dataset:
        tags.append("offline-rl")
    evals = []
    if results is not None:
        agg = results["aggregate"]
        evals.append(EvalResult(
            task_type="reinforcement-learning",
            task_name="Reinforcement Learning",
            dataset_type=task,
            dataset_name=config.get("env_id") or task,
            metric_type="success_rate" if results["metric"] == "success" else "normalized_score",
            metric_name=results["metric_label"],
            metric_value=round(float(agg["mean"]), 2),
            metric_args={"ci95": [round(agg["ci_low"], 2), round(agg["ci_high"], 2)], "episodes": agg["n"]},
        ))
    base_model = (config.get("training") or {}).get("base_model")
    return ModelCardData(
        model_name=repo_id,
        library_name="genzoo",
        license=LICENSE,
        pipeline_tag="reinforcement-learning",
        tags=tags,
        datasets=[f"{suite}/{dataset['file']}"] if dataset.get("file") else None,
        base_model=base_model,
        eval_results=evals or None,
    )


def _wall(seconds: float | None) -> str:
    if not seconds:
        return "unknown"
    h, rem = divmod(int(seconds), 3600)
    return f"{h} h {rem // 60:02d} min" if h else f"{rem // 60} min {rem % 60:02d} s"


def _other_data_segments(config: dict[str, Any]) -> list[str]:
    """Training segments that read a dataset file other than the one the checkpoint records (a rebuild made on a
    leased GPU machine): the same recipe and seed, but a file whose sha256 differs, so the card says which steps."""
    final = (config.get("dataset") or {}).get("sha256")
    return [f"steps {seg['start']:,}-{seg['end']:,} on {seg['device'].split(':', 1)[-1]} read a rebuild of the dataset "
            f"made there (same recipe and seed; file sha256 {seg['dataset_sha256'][:12]}, this checkpoint's "
            f"{final[:12]}; the arrays were not compared)"
            for seg in (config.get("training") or {}).get("segments") or []
            if final and seg.get("dataset_sha256") and seg["dataset_sha256"] != final and seg["end"] > seg["start"]]


def render_card(repo_id: str, config: dict[str, Any], results: dict[str, Any] | None, method: dict[str, Any],
                replay: bool = False) -> str:
    """The full README.md of a checkpoint repo (metadata + body), as a string.

    ``method`` is what the agent class knows of its paper: ``paper`` (short, bibtex, setting), ``unofficial``,
    ``choices`` (list of {name, value, why}), ``deviations`` (list of strings), ``paper_score``. ``replay``: the
    repo has a ``replay.mp4`` of the protocol's first evaluation episode.
    """
    training = config.get("training") or {}
    task = config.get("task") or "unknown"
    proto = (results or {}).get("protocol", {})
    agg = (results or {}).get("aggregate", {})
    sampler = proto.get("sampler") or {}
    kwargs = {
        "algo": config["algo"],
        "task": task,
        "env_id": config.get("env_id", ""),
        "suite_name": SUITE_NAMES.get(task.split("/", 1)[0], task.split("/", 1)[0]),
        "repo_id": repo_id,
        "replay": replay,
        "evaluated": results is not None,
        "seed": training.get("seed"),
        "dataset": config.get("dataset"),
        "unofficial": method.get("unofficial", False),
        "paper": method["paper"],
        "paper_score": method.get("paper_score"),
        "metric_label": (results or {}).get("metric_label", "n/a"),
        "score": agg.get("mean", float("nan")),
        "ci_low": agg.get("ci_low", float("nan")),
        "ci_high": agg.get("ci_high", float("nan")),
        "episodes": proto.get("episodes", 0),
        "seed_first": (proto.get("seeds") or [0])[0],
        "max_episode_steps": proto.get("max_episode_steps"),
        "sampler": ", ".join(f"{k}={v}" for k, v in sampler.items()) or "the checkpoint's default",
        "deterministic": proto.get("deterministic"),
        "checkpoint_rule": {"final": "the final checkpoint of the run"}.get(proto.get("checkpoint", "final"),
                                                                           proto.get("checkpoint")),
        "latency_ms": (results or {}).get("latency_ms_per_action", float("nan")),
        # cards evaluated before 2026-12-08 did not name the evaluating processor
        "eval_device": (results or {}).get("device_name", "").split(":", 1)[-1],
        "command": training.get("command", "n/a"),
        "steps": training.get("steps"),
        # online runs (no dataset) and offline-to-online finetuning count env steps (one update each), not updates
        "steps_unit": "env steps" if not config.get("dataset") or training.get("variant") == "o2o" else "gradient steps",
        "precision": training.get("precision", "fp32"),
        "threads": training.get("threads", "?"),
        "wall_time": _wall(training.get("wall_time_s")),
        # runs before 2026-11-27 did not record their device; a run may span several (a GPU lease, then the CPU)
        "devices": ", ".join(d.split(":", 1)[-1] for d in training.get("devices") or []),
        "other_data_segments": _other_data_segments(config),
        "genzoo_version": training.get("genzoo_version", "?"),
        "torch_version": training.get("torch_version", "?"),
        "base_model": training.get("base_model"),
        "hyperparameters": [(k, json.dumps(v)) for k, v in sorted(config.get("algo_kwargs", {}).items())],
        "deviations": method.get("deviations", []),
        "choices": method.get("choices", []),
    }
    card = ModelCard.from_template(card_data(repo_id, config, results), template_path=str(TEMPLATE), **kwargs)
    return re.sub(r"\n{3,}", "\n\n", card.content).rstrip() + "\n"
