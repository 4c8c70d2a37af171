"""Score any policy with SB3's ``predict`` on a registry task, under the task's protocol.

Episodes run in parallel in a Gymnasium vector env (``AsyncVectorEnv`` across processes when ``n_envs > 1``) with
one batched ``predict`` per step. Episode ``i`` uses seed ``protocol.seed + i`` for its env reset and for the
policy's noise: genzoo agents draw each row's noise from a generator seeded with that row's episode seed
(``predict(..., generators=...)``), so a seed gives the same episode whatever ``n_envs`` is. Policies without
that hook (SB3's own models) get the global torch RNG seeded per episode, which is exact at ``n_envs=1`` and for
deterministic policies.
"""

from __future__ import annotations

import functools
import platform
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any
from typing import Protocol as TypingProtocol

import numpy as np

from evaluation import metrics
from evaluation.tasks import Task, get

if TYPE_CHECKING:
    import torch


class Predictor(TypingProtocol):
    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = False, **kwargs: Any) -> tuple[np.ndarray, Any]: ...


def _device_of(policy: Any) -> str:
    dev = getattr(policy, "device", None)
    return str(dev) if dev is not None else "cpu"


def move_to_device(policy: Any, device: str | None) -> str:
    """Put ``policy`` (a genzoo agent or an SB3 model) on ``device`` (``"auto"``: CUDA when present)."""
    if device is None:
        return _device_of(policy)
    import torch

    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    net = getattr(policy, "policy", None)
    if isinstance(net, torch.nn.Module):
        net.to(dev)
        if hasattr(policy, "device"):
            policy.device = dev
    return str(dev)


def _success_only_env(task: Task) -> Any:
    """``task``'s env reporting only ``info["success"]``, for ``AsyncVectorEnv`` workers: the harness reads no other
    info key, and OGBench's step infos (~17 arrays) would otherwise be pickled through the worker pipes and merged
    by the vector env every step."""
    import gymnasium

    class SuccessOnly(gymnasium.Wrapper):
        def step(self, action: Any) -> tuple[Any, ...]:
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, reward, terminated, truncated, {"success": info["success"]} if "success" in info else {}

        def reset(self, **kwargs: Any) -> tuple[Any, dict]:
            obs, _ = self.env.reset(**kwargs)
            return obs, {}

    return SuccessOnly(task.make_env())


def _make_envs(task: Task, n_envs: int):
    from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

    if n_envs == 1:
        return SyncVectorEnv([task.make_env], autoreset_mode=AutoresetMode.DISABLED)
    fns = [functools.partial(_success_only_env, task)] * n_envs
    return AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED)


def _check_tasks(task: Task, envs: Any, mask: np.ndarray) -> None:
    if task.task_index is None:
        return
    ids = envs.call("get_wrapper_attr", "cur_task_id")
    for i in np.flatnonzero(mask):
        if ids[i] != task.task_index:
            raise RuntimeError(f"{task.env_id} is running task {ids[i]}, expected task {task.task_index}")


def _rollouts(policy: Any, task: Task, envs: Any, seeds: list[int], deterministic: bool, sampler: dict[str, Any],
              bar: Any) -> tuple[list[dict[str, Any]], list[float]]:
    import torch

    n = envs.num_envs
    per_row = bool(getattr(policy, "supports_generators", False))
    queue = deque(seeds)
    slot_seed: list[int | None] = [None] * n
    gens: list[Any] = [None] * n
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    records: dict[int, dict[str, Any]] = {}
    latencies: list[float] = []

    def assign(mask: np.ndarray) -> list[int | None]:
        out: list[int | None] = [None] * n
        for i in np.flatnonzero(mask):
            slot_seed[i] = queue.popleft() if queue else None
            # an idle slot still resets (with an arbitrary seed) but its episodes are not recorded
            out[i] = slot_seed[i] if slot_seed[i] is not None else 0
            gens[i] = torch.Generator().manual_seed(int(out[i]))
            returns[i], lengths[i] = 0.0, 0
        return out

    mask = np.ones(n, dtype=bool)
    obs, _ = envs.reset(seed=assign(mask), options={"reset_mask": mask})
    _check_tasks(task, envs, mask)
    state, start = None, np.ones(n, dtype=bool)
    global_rng = torch.random.fork_rng(devices=[]) if not per_row else None
    if global_rng is not None:
        global_rng.__enter__()
        torch.manual_seed(int(slot_seed[0] or 0))
    try:
        while any(s is not None for s in slot_seed):
            kwargs = dict(sampler, generators=list(gens)) if per_row else dict(sampler)
            t0 = time.perf_counter()
            action, state = policy.predict(obs, state=state, episode_start=start, deterministic=deterministic, **kwargs)
            latencies.append(time.perf_counter() - t0)
            obs, reward, terminated, truncated, info = envs.step(np.asarray(action).reshape(n, -1))
            active = np.array([s is not None for s in slot_seed])
            returns += np.where(active, reward, 0.0)
            lengths += active
            done = np.asarray(terminated) | np.asarray(truncated)
            for i in np.flatnonzero(done & active):
                success = info.get("success")
                records[slot_seed[i]] = {
                    "seed": int(slot_seed[i]),
                    "return": float(returns[i]),
                    "success": float(success[i]) if success is not None and info.get("_success", [True] * n)[i] else 0.0,
                    "length": int(lengths[i]),
                }
                bar.update(1)
            start = done.copy()
            if done.any():
                new_seeds = assign(done)
                if global_rng is not None and slot_seed[0] is not None:
                    torch.manual_seed(int(slot_seed[0]))
                obs, _ = envs.reset(seed=new_seeds, options={"reset_mask": done})
                _check_tasks(task, envs, done)
    finally:
        if global_rng is not None:
            global_rng.__exit__(None, None, None)
    return [records[s] for s in seeds], latencies


def cpu_info() -> tuple[str, list[str]]:
    """The processor's model name and which bf16 instructions it has (``avx512_bf16``, ``amx_bf16``), from the first
    processor of ``/proc/cpuinfo`` (every core reports the same); ``platform`` names it where that file is absent."""
    name, flags = platform.processor() or platform.machine() or "unknown", []
    try:
        info: dict[str, str] = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
        name = info.get("model name", name)
        flags = [f for f in ("avx512_bf16", "amx_bf16") if f in info.get("flags", "").split()]
    except OSError:
        pass
    return name, flags


def device_name(device: torch.device | str) -> str:
    """What ran a training segment or an evaluation: ``cuda:<GPU name>`` or ``cpu:<processor>``, the CPU's bf16
    instructions appended when it has any (``cpu:Intel(R) Xeon(R) Processor (avx512_bf16, amx_bf16)``): two CPUs of one
    model name can differ there, in speed (bf16 ran ~1.5x slower than fp32 without AMX and 1.4-1.7x faster with it) and
    in the last bits of a bf16 policy's actions, which a contact-rich episode can turn into another outcome."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    name, flags = cpu_info()
    return f"cpu:{name}" + (f" ({', '.join(flags)})" if flags else "")


def measure_latency(policy: Any, observation: np.ndarray, calls: int = 100, warmup: int = 10,
                    deterministic: bool = False, **sampler: Any) -> float:
    """Median seconds of one ``predict`` call on ``observation`` (single or batch), excluding warm-up calls.

    Runs on a fork of torch's random streams: timing a stochastic policy during training (``--eval-every``) leaves
    the run's random sequence as it would be without the measurement."""
    import torch

    device = torch.device(getattr(policy, "device", "cpu"))
    times = []
    # Only the policy's own CUDA device is forked: forking every visible device would create a context on each.
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        for i in range(warmup + calls):
            t0 = time.perf_counter()
            policy.predict(observation, deterministic=deterministic, **sampler)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return float(np.median(times))


def evaluate(
    policy: Predictor,
    task_id: str,
    n_episodes: int | None = None,
    seeds: list[int] | None = None,
    n_envs: int = 1,
    deterministic: bool | None = None,
    device: str | None = None,
    progress_bar: bool = False,
    **sampler: Any,
) -> dict[str, Any]:
    """Evaluate ``policy`` on ``task_id``: protocol, per-episode records, aggregate with a 95% CI, latency.

    ``n_episodes`` / ``seeds`` / ``deterministic`` default to the task's protocol; ``n_envs`` sets how many
    episodes run at once; ``device`` moves the policy (``"auto"``: CUDA when present; None: leave it);
    ``sampler`` goes to ``predict`` (e.g. ``sampling_steps=4``) and is recorded.
    """
    import torch
    from tqdm.auto import tqdm

    task = get(task_id)
    proto = task.protocol
    if seeds is None:
        count = proto.episodes if n_episodes is None else int(n_episodes)
        seeds = [proto.seed + i for i in range(count)]
    if len(set(seeds)) != len(seeds):
        raise ValueError("episode seeds must be distinct")
    deterministic = proto.deterministic if deterministic is None else deterministic
    used_device = move_to_device(policy, device)
    n_envs = max(1, min(int(n_envs), len(seeds)))
    envs = _make_envs(task, n_envs)
    t0 = time.time()
    try:
        with tqdm(total=len(seeds), desc=f"eval {task_id}", unit="ep", disable=not progress_bar) as bar:
            records, latencies = _rollouts(policy, task, envs, list(seeds), deterministic, sampler, bar)
        first_obs = envs.observation_space.sample()[:1].astype(np.float32) * 0
    finally:
        envs.close()
    wall = time.time() - t0
    if task.metric == "normalized_score":
        ref_min, ref_max = task.reference_scores()
        for r in records:
            r["normalized_score"] = 100.0 * (r["return"] - ref_min) / (ref_max - ref_min)
    scores = np.array([r[task.metric] for r in records])  # "success" (0/1), "normalized_score" or "return"
    single = measure_latency(policy, first_obs[0], deterministic=deterministic, **sampler)
    from importlib.metadata import version

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
            # the policy's own defaults (steps, candidate selection, ...) overridden by what was passed
            "sampler": {**(policy.sampler_settings() if hasattr(policy, "sampler_settings") else {}), **sampler},
            "predict_kwargs": dict(sampler),  # what was passed to predict (re-scoring passes exactly this)
            "checkpoint": proto.checkpoint,
        },
        "aggregate": metrics.summarize(scores, scale=100.0 if task.metric == "success" else 1.0),
        "reference_scores": list(task.reference_scores()) if task.metric == "normalized_score" else None,
        "latency_ms_per_action": 1e3 * single,
        "latency_ms_batched": {"n_envs": n_envs, "ms_per_call": 1e3 * float(np.median(latencies[1:] or latencies))},
        "paper_scores": dict(task.paper_scores),
        "n_envs": n_envs,
        "device": used_device,
        "device_name": device_name(used_device),  # the processor whose kernels played the episodes
        "wall_time_s": round(wall, 2),
        "versions": {p: version(p) for p in ("gymnasium", "numpy")} | {"torch": torch.__version__},
        "episodes": records,
    }
