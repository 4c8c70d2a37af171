"""Replay memory: bytes the agent's buffer holds for an offline dataset, against the dataset's own arrays.

    python benchmarks/memory.py --dataset cube-single-play-singletask-task1-v0

Counts the bytes of every buffer tensor and of the loaded Dataset's arrays (observations, actions, rewards,
next_observations, terminals, timeouts), and the process's resident-set growth while the buffer is filled.
Needs the dataset on disk (`genzoo data build ...`). Sizes do not depend on machine load, so no idle guard.
"""

from __future__ import annotations

import os
import resource
import sys

import harness

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    from agents import FQL
    from zoo import datasets

    p = harness.parser(__doc__)
    p.add_argument("--dataset", default="cube-single-play-singletask-task1-v0")
    args = p.parse_args()
    data = datasets.load(args.dataset)
    raw = sum(getattr(data, k).nbytes for k in FIELDS)
    agent = FQL(observation_space=data.observation_space, action_space=data.action_space, buffer_size=0,
                actor_hidden_dims=[256] * 4, value_hidden_dims=[256] * 4)
    before = rss_mb()
    agent.load_offline_data(data)
    grown = rss_mb() - before
    held = sum(t.numel() * t.element_size() for t in agent.replay_buffer.state_tensors().values())
    rows = [[args.dataset, f"{len(data):,}", f"{raw / 2**20:.0f}", f"{held / 2**20:.0f}", f"{held / raw:.2f}x",
             f"{grown:.0f}"]]
    text = harness.append_results(
        "Replay memory for an offline dataset", "python benchmarks/memory.py " + " ".join(sys.argv[1:]),
        os.getloadavg()[0], rows,
        ["dataset", "transitions", "dataset arrays (MiB)", "buffer tensors (MiB)", "ratio", "RSS growth (MiB)"],
        ["The buffer stores float32 rows once (observations and next observations as the dataset has them), plus "
         "one bool per row for trajectory ends; no float64 copies."],
    )
    harness.write(text, args.no_write or args.quick)


if __name__ == "__main__":
    main()
