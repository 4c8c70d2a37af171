"""Three measurements behind the readings in benchmarks/RESULTS.md (2026-11-27, the Intel Xeon without AMX):

1. GEMM rate of a 256x256x256 matmul on one thread, fp32 vs bf16 (is bf16 worth it on this CPU?);
2. the ``addmm`` calls of one batch-1 Diffusion-QL action (N=5, 50 candidates) and their time (``torch.profiler``):
   the floor under any action latency at these settings;
3. eager vs compiled action sampler (``torch.compile(policy.sample_actions)``) at 1, 8 and 32 observations: where
   compiling stops paying (``GenerativeAgent.COMPILED_SAMPLER_MAX_BATCH``).

    python benchmarks/cpu_kernels.py        # prints; nothing is written
"""

from __future__ import annotations

import time

import numpy as np
import torch
from gymnasium import spaces


def per_call(fn, n: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def main() -> None:
    from agents import DiffusionQL

    torch.set_num_threads(1)
    for dtype in (torch.float32, torch.bfloat16):
        x, w = torch.randn(256, 256, dtype=dtype), torch.randn(256, 256, dtype=dtype)
        dt = per_call(lambda: x @ w, 2000, 50)
        print(f"matmul 256^3 {str(dtype):15s} {dt * 1e6:7.1f} us  {2 * 256 ** 3 / dt / 1e9:6.1f} GFLOP/s")

    agent = DiffusionQL(observation_space=spaces.Box(-np.inf, np.inf, (28,), np.float32),
                        action_space=spaces.Box(-1, 1, (5,), np.float32), actor_hidden_dims=[256] * 4,
                        value_hidden_dims=[256] * 4, seed=0)
    obs = np.zeros(28, np.float32)
    per_call(lambda: agent.predict(obs), 1, 20)
    from torch.profiler import profile

    with profile() as prof:
        for _ in range(20):
            agent.predict(obs)
    addmm = next(e for e in prof.key_averages() if e.key == "aten::addmm")
    print(f"Diffusion-QL action: {addmm.count / 20:.0f} addmm calls, {addmm.self_cpu_time_total / 20 / 1e3:.2f} ms "
          f"of them per action ({addmm.self_cpu_time_total / addmm.count:.0f} us each)")

    policy, compiled = agent.policy, torch.compile(agent.policy.sample_actions)
    with torch.inference_mode():
        for batch in (1, 8, 32):
            o = torch.zeros(batch, 28)
            eager = per_call(lambda: policy.sample_actions(o), 20)
            comp = per_call(lambda: compiled(o), 20)
            print(f"sampler, {batch:2d} observations x 50 candidates: eager {eager * 1e3:6.2f} ms, "
                  f"compiled {comp * 1e3:6.2f} ms")


if __name__ == "__main__":
    main()
