"""Score any policy with SB3's ``predict`` on a registry task, under the task's protocol.

Each episode ``i`` uses seed ``protocol.seed + i`` for the env reset and for the policy's sampling noise (the
torch RNG is forked and seeded per episode), so an episode is reproducible from its seed alone.
"""

from __future__ import annotations

import time
from typing import Any
from typing import Protocol as TypingProtocol

import numpy as np

from evaluation import metrics
from evaluation.tasks import Task, get


class Predictor(TypingProtocol):
    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = False, **kwargs: Any) -> tuple[np.ndarray, Any]: ...


def run_episode(policy: Predictor, task: Task, env: Any, seed: int, deterministic: bool,
                **sampler: Any) -> dict[str, Any]:
    """One seeded episode; returns its record (seed, return, success, length, action latency)."""
    import torch

    obs, info = env.reset(seed=seed)
    task.check_env(env)
    state, start = None, np.ones(1, dtype=bool)
    total, length, latency = 0.0, 0, 0.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        while True:
            t0 = time.perf_counter()
            action, state = policy.predict(obs, state=state, episode_start=start, deterministic=deterministic, **sampler)
            latency += time.perf_counter() - t0
            start = np.zeros(1, dtype=bool)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            length += 1
            if terminated or truncated:
                break
    return {
        "seed": int(seed),
        "return": total,
        "success": float(info.get("success", 0.0)),
        "length": length,
        "latency_ms": 1e3 * latency / max(length, 1),
    }


def evaluate(
    policy: Predictor,
    task_id: str,
    n_episodes: int | None = None,
    seeds: list[int] | None = None,
    deterministic: bool | None = None,
    progress_bar: bool = False,
    **sampler: Any,
) -> dict[str, Any]:
    """Evaluate ``policy`` on ``task_id``; returns the protocol, per-episode records and the aggregate with a 95% CI.

    ``n_episodes`` / ``seeds`` / ``deterministic`` default to the task's protocol; ``sampler`` goes to ``predict``
    (e.g. ``sampling_steps=4``) and is recorded.
    """
    task = get(task_id)
    proto = task.protocol
    if seeds is None:
        n = proto.episodes if n_episodes is None else int(n_episodes)
        seeds = [proto.seed + i for i in range(n)]
    deterministic = proto.deterministic if deterministic is None else deterministic
    env = task.make_env()
    records = []
    try:
        from tqdm.auto import tqdm

        for seed in tqdm(seeds, desc=f"eval {task_id}", unit="ep", disable=not progress_bar):
            records.append(run_episode(policy, task, env, seed, deterministic, **sampler))
    finally:
        env.close()
    key = "success" if task.metric == "success" else "return"
    scores = np.array([r[key] for r in records])
    return {
        "task": task_id,
        "env_id": task.env_id,
        "metric": task.metric,
        "metric_label": task.metric_label,
        "protocol": {
            "episodes": len(records),
            "seeds": [r["seed"] for r in records],
            "max_episode_steps": proto.max_episode_steps,
            "deterministic": deterministic,
            "sampler": sampler,
            "checkpoint": proto.checkpoint,
        },
        "aggregate": metrics.summarize(scores, scale=100.0 if task.metric == "success" else 1.0),
        "latency_ms_per_action": float(np.mean([r["latency_ms"] for r in records])),
        "paper_scores": dict(task.paper_scores),
        "episodes": records,
    }
