"""The evaluation harness against SB3's ``evaluate_policy`` on the same checkpoint, episodes and seeds.

    python benchmarks/eval_harness.py --episodes 20

Both run the bundled FQL checkpoint on ``ogbench/cube-single-task1`` with ``deterministic=True`` (SB3's default).
SB3's loop gets one ``evaluate_policy(n_eval_episodes=1)`` call per episode on one env seeded with that episode's
seed before the call, so both see the same episodes. Reported: whether per-episode returns and successes are identical (harness
at ``n_envs=1``), and wall times (SB3 loop, harness at n_envs=1, harness at n_envs=2 on 2 cores).
"""

from __future__ import annotations

import sys
import time

import harness
import numpy as np
import torch

DEMO = "genzoo/fql-ogbench-cube-single-task1-seed0"
TASK = "ogbench/cube-single-task1"


def sb3_loop(agent, seeds: list[int]) -> tuple[list[tuple[float, float]], float]:
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from evaluation import get

    out = []
    t0 = time.perf_counter()
    env = DummyVecEnv([lambda: Monitor(get(TASK).make_env())])
    for seed in seeds:
        env.seed(seed)  # applied by the reset evaluate_policy starts with
        successes = []

        def track(local, _globals, successes=successes):
            if local["dones"][0]:
                successes.append(float(local["infos"][0].get("success", 0.0)))

        rewards, _ = evaluate_policy(agent, env, n_eval_episodes=1, deterministic=True, return_episode_rewards=True,
                                     callback=track)
        out.append((float(rewards[0]), successes[0]))
    env.close()
    return out, time.perf_counter() - t0


def main() -> None:
    import zoo
    from evaluation import evaluate

    p = harness.parser(__doc__)
    p.add_argument("--episodes", type=int, default=20)
    args = p.parse_args()
    load = harness.guard_idle(args.max_load, args.force)
    torch.set_num_threads(1)
    agent = zoo.load(DEMO)
    seeds = list(range(args.episodes))
    ref, t_sb3 = sb3_loop(agent, seeds)
    t0 = time.perf_counter()
    one = evaluate(agent, TASK, seeds=seeds, deterministic=True, n_envs=1)
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    two = evaluate(agent, TASK, seeds=seeds, deterministic=True, n_envs=2)
    t_two = time.perf_counter() - t0
    from evaluation import get
    from evaluation.rollouts import _make_envs

    t0 = time.perf_counter()
    _make_envs(get(TASK), 2).close()
    t_start = time.perf_counter() - t0
    ours = [(e["return"], e["success"]) for e in one["episodes"]]
    identical = ours == ref and one["episodes"] == two["episodes"]
    rows = [[str(args.episodes), str(identical), f"{np.mean([s for _, s in ref]) * 100:.1f}", f"{t_sb3:.1f}",
             f"{t_one:.1f} ({t_one / t_sb3:.2f}x)", f"{t_two:.1f} ({t_two / t_sb3:.2f}x)", f"{t_start:.1f}"]]
    text = harness.append_results(
        "Evaluation harness vs SB3 evaluate_policy (bundled FQL, cube-single task1, deterministic)",
        "python benchmarks/eval_harness.py " + " ".join(sys.argv[1:]), load, rows,
        ["episodes", "identical per-episode returns & successes", "success %", "SB3 loop (s)",
         "harness n_envs=1 (s)", "harness n_envs=2 (s)", "of which: starting 2 env workers (s)"],
        ["Wall times include env start-up; n_envs=2 runs the envs in two processes (AsyncVectorEnv)."],
    )
    harness.write(text, args.no_write or args.quick)


if __name__ == "__main__":
    main()
