"""Leaderboard rendering: one row per evaluated checkpoint, aggregates per method, written as MD, CSV, JSON, PNG."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.aggregate import AGGREGATES, aggregate

COLUMNS = ["method", "task", "seed", "score", "ci_low", "ci_high", "metric", "episodes", "deterministic", "sampler",
           "latency_ms", "paper", "dataset_sha256", "rebuilt", "device", "checkpoint", "checkpoint_sha256"]


def row_from_result(repo: str, config: dict[str, Any], result: dict[str, Any], checkpoint_sha256: str) -> dict[str, Any]:
    agg, proto, dataset = result["aggregate"], result["protocol"], config.get("dataset") or {}
    variant = (config.get("training") or {}).get("variant")  # fp32, eta0, o2o, bc: a method of its own here
    return {
        "method": config["algo"] + (f" ({variant})" if variant else ""),
        "task": result["task"],
        "seed": (config.get("training") or {}).get("seed"),
        "score": round(agg["mean"], 2),
        "ci_low": round(agg["ci_low"], 2),
        "ci_high": round(agg["ci_high"], 2),
        "metric": result["metric_label"],
        "episodes": proto["episodes"],
        "episode_seeds": f"{proto['seeds'][0]}..{proto['seeds'][-1]}",
        "deterministic": proto["deterministic"],
        "sampler": json.dumps(proto.get("sampler") or {}),
        "latency_ms": round(result["latency_ms_per_action"], 3),
        "paper": (result.get("paper_scores") or {}).get(config["algo"]),
        "dataset_sha256": dataset.get("sha256", ""),
        "rebuilt": bool(dataset.get("rebuilt", False)),
        "device": result.get("device", "cpu"),
        "checkpoint": repo,
        "checkpoint_sha256": checkpoint_sha256,
    }


def method_aggregates(rows: list[dict[str, Any]], reps: int = 2000, seed: int = 0) -> dict[str, Any]:
    """rliable aggregates per method over all of its runs (seeds) on each task, overall and per task family.

    Every run counts. When each task has the same number of runs the (runs × tasks) matrix goes to rliable unchanged
    (:func:`evaluation.aggregate.aggregate`). When the counts differ (3 seeds on one task, 1 on another) no seed is
    dropped: :func:`ragged_aggregate` weighs each task equally and bootstraps runs within each task. Each method is
    bootstrapped on its own (same seed), so adding a method to the catalogue does not move another's CI.
    ``seeds_per_task`` records what went in.
    """
    out: dict[str, Any] = {}
    groups: dict[str, list[dict[str, Any]]] = {"all": rows}
    for r in rows:
        groups.setdefault(_family(r["task"]), []).append(r)
    for group, members in groups.items():
        per_method: dict[str, dict[str, list[tuple[Any, float]]]] = defaultdict(lambda: defaultdict(list))
        for r in members:
            per_method[r["method"]][r["task"]].append((r["seed"], r["score"] / 100.0))
        out[group] = {}
        for method, by_task in per_method.items():
            tasks = sorted(by_task)
            runs = [sorted(by_task[t], key=lambda sr: (sr[0] is None, sr[0] or 0)) for t in tasks]
            per_task = [np.array([score for _, score in r]) for r in runs]
            if len({len(x) for x in per_task}) == 1:
                agg = aggregate({method: np.stack(per_task, axis=1)}, reps=reps, seed=seed)[method]
            else:
                agg = ragged_aggregate(per_task, reps=reps, seed=seed)
            out[group][method] = {**agg, "seeds_per_task": {t: [s for s, _ in r] for t, r in zip(tasks, runs)}}
    return out


def _family(task: str) -> str:
    return task.split("/", 1)[-1].rsplit("-task", 1)[0]


def _weighted_aggregates(x: np.ndarray, w: np.ndarray, task_of: np.ndarray, n_tasks: int) -> np.ndarray:
    """IQM, mean, median, optimality gap (γ = 1) of each row of ``x`` (reps, runs), run ``i`` weighing ``w[i]``."""
    order = np.argsort(x, axis=1, kind="stable")
    xs, ws = np.take_along_axis(x, order, axis=1), w[order]
    hi = np.cumsum(ws, axis=1)
    mid = np.clip(np.minimum(hi, 0.75) - np.maximum(hi - ws, 0.25), 0.0, None)  # mass of each run in [q25, q75]
    iqm = (mid * xs).sum(axis=1) / mid.sum(axis=1)
    task_means = np.stack([x[:, task_of == t].mean(axis=1) for t in range(n_tasks)], axis=1)
    return np.stack([iqm, task_means.mean(axis=1), np.median(task_means, axis=1),
                     1.0 - (np.minimum(x, 1.0) * w).sum(axis=1)], axis=1)


def ragged_aggregate(per_task: list[np.ndarray], reps: int = 2000, confidence: float = 0.95,
                     seed: int = 0) -> dict[str, dict[str, float]]:
    """rliable's four aggregates for tasks with different numbers of runs, with stratified-bootstrap CIs.

    ``per_task[t]`` holds task ``t``'s run scores (fractions). Each task weighs ``1 / n_tasks`` and its runs share
    that weight, so a task with 3 seeds counts as much as one with 1 (as in rliable's rectangular case): the mean and
    optimality gap are those of the per-task means, the median is the median of the per-task means, the IQM is the
    mean of the middle 50% of that task-balanced distribution of runs. The bootstrap resamples each task's runs with
    replacement, ``n_t`` of ``n_t`` (stratified), and takes percentile CIs; a task with a single run adds no spread.
    """
    x = np.concatenate([np.asarray(v, dtype=float) for v in per_task])
    task_of = np.concatenate([np.full(len(v), t) for t, v in enumerate(per_task)])
    w = np.concatenate([np.full(len(v), 1.0 / (len(per_task) * len(v))) for v in per_task])
    point = _weighted_aggregates(x[None], w, task_of, len(per_task))[0]
    rng = np.random.RandomState(seed)
    starts = np.cumsum([0] + [len(v) for v in per_task[:-1]])
    idx = np.concatenate([s + rng.randint(len(v), size=(reps, len(v))) for s, v in zip(starts, per_task)], axis=1)
    boot = _weighted_aggregates(x[idx], w, task_of, len(per_task))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(boot, tail, axis=0), np.percentile(boot, 100 - tail, axis=0)
    return {name: {"value": float(point[i]), "ci_low": float(low[i]), "ci_high": float(high[i])}
            for i, name in enumerate(AGGREGATES)}


def _fmt(a: dict[str, float], ci: bool = True) -> str:
    if not ci:
        return f"{100 * a['value']:.1f} [–]"
    return f"{100 * a['value']:.1f} [{100 * a['ci_low']:.1f}, {100 * a['ci_high']:.1f}]"


def _runs_label(seeds_per_task: dict[str, list[Any]]) -> str:
    counts = [len(v) for v in seeds_per_task.values()]
    if len(set(counts)) == 1:
        return f"{counts[0]} × {len(counts)}"
    return f"{'+'.join(map(str, counts))} runs over {len(counts)} tasks"


def write(rows: list[dict[str, Any]], out_dir: str | Path, meta: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write leaderboard.{md,csv,json,png} into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: (r["task"], r["method"], r["seed"] if r["seed"] is not None else -1))
    aggregates = method_aggregates(rows) if rows else {}
    paths = {k: out / f"leaderboard.{k}" for k in ("md", "csv", "json", "png")}
    paths["json"].write_text(json.dumps({"meta": meta or {}, "rows": rows, "aggregates": aggregates}, indent=2) + "\n")
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "# genzoo leaderboard",
        "",
        "Generated by `genzoo leaderboard` from the bundled catalogue (`zoo/checkpoints`). Scores are success rates in %",
        "(OGBench) or normalised scores ×100 (Minari), each with a 95% bootstrap CI over its episodes.",
        "",
    ]
    if any(r["rebuilt"] for r in rows):
        lines += ["**Rows marked *rebuilt* were trained on datasets regenerated locally with the original recipes: they",
                  "are not the papers' numbers.** The paper column gives the published score for reference.", ""]
    if meta:
        lines += [f"Evaluated on: {meta.get('device', '?')}; " + ", ".join(f"{k} {v}" for k, v in
                                                                        (meta.get("versions") or {}).items()), ""]
    header = ["task", "method", "seed", "score", "95% CI", "paper", "episodes (seeds)", "deterministic",
              "latency (ms/action)", "dataset"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        kind = "rebuilt" if r["rebuilt"] else "official"
        data = f"{kind} `{r['dataset_sha256'][:12]}`" if r["dataset_sha256"] else "-"
        ci = f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
        paper = "-" if r.get("paper") is None else f"{r['paper']}"
        lines.append(f"| `{r['task']}` | {r['method']} | {r['seed']} | {r['score']:.1f} | {ci} | {paper} "
                     f"| {r['episodes']} ({r['episode_seeds']}) | {r['deterministic']} | {r['latency_ms']:.2f} | {data} |")
    if aggregates:
        lines += ["", "## Aggregates per method (rliable: IQM, mean, median, optimality gap; stratified bootstrap 95% CIs)",
                  "", "| group | method | runs × tasks | IQM | mean | median | optimality gap |", "|---|---|---|---|---|---|---|"]
        for group, by_method in aggregates.items():
            for method, agg in by_method.items():
                seeds = agg["seeds_per_task"]
                ci = any(len(v) > 1 for v in seeds.values())  # one run per task: nothing for the bootstrap to resample
                lines.append(f"| {group} | {method} | {_runs_label(seeds)} | "
                             + " | ".join(_fmt(agg[k], ci) for k in AGGREGATES) + " |")
        lines += ["", "Every run (seed) counts. Where tasks have different numbers of runs (*1+3 runs over 2 tasks*: runs per",
                  "task, tasks in the order of the table above), each task weighs equally, its runs share its weight, and the",
                  "bootstrap resamples runs within each task; a task with one run adds no spread to the CI. `[–]`: one run",
                  "per task, so there is no CI across runs (see each row's CI over episodes)."]
    lines.append("")
    paths["md"].write_text("\n".join(lines))
    _plot(rows, paths["png"])
    return paths


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in sorted({r["method"] for r in rows}):
        pts = [r for r in rows if r["method"] == method]
        ax.errorbar([r["latency_ms"] for r in pts], [r["score"] for r in pts],
                    yerr=[[r["score"] - r["ci_low"] for r in pts], [r["ci_high"] - r["score"] for r in pts]],
                    fmt="o", capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("action latency (ms per predict call, batch 1)")
    ax.set_ylabel("score (success % or normalised ×100)")
    ax.set_title("genzoo leaderboard: score vs. action latency")
    if rows:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
