"""How far bf16 moves a trained policy's actions: the same checkpoint, states and noise, fp32 against bf16 autocast.

    python experiments/precision_check.py zoo/checkpoints/genzoo/momaql-ogbench-cube-single-task1-eta0-seed0 \\
        --rows 4096 --sampling-steps 1 2 4 8 --write

For ``--rows`` dataset states (a fixed random draw, ``--seed``) and one fixed standard-normal noise per state, the
policy's sampler runs three times: in fp32; in fp32 with only its time inputs rounded to bf16 (the resolution a bf16
run's first layer sees, isolating that effect); and under bf16 autocast (every matmul in bf16, as
``precision="bf16"`` trains and acts). The table gives, in the policy's [-1, 1] action scale, the mean L2 distance
of each to the fp32 action, against the policy's own spread: the mean L2 distance between two fp32 actions of the
same state from two independent noises. A precision whose distance is a small fraction of that spread moves the
actions less than the policy's own sampling does.

This is a check on inference with fp32 weights; a bf16 *training* run also rounds its gradients, which this does not
measure. ``--write`` appends the table to experiments/RESULTS-precision.md.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import torch

import zoo
from zoo import datasets

RESULTS = Path(__file__).with_name("RESULTS-precision.md")


@contextlib.contextmanager
def bf16_time_inputs(policy: torch.nn.Module) -> Iterator[None]:
    """Round the two time inputs of MoMa QL's ``jump`` to bf16 (and back), leaving every other op in fp32."""
    jump = policy.jump

    def rounded(obs, x_t, s, t, target=False):  # noqa: ANN001, ANN202 - mirrors MoMaQLPolicy.jump
        return jump(obs, x_t, s.bfloat16().float(), t.bfloat16().float(), target)

    with mock.patch.object(policy, "jump", rounded):
        yield


def actions(agent, obs: torch.Tensor, noise: torch.Tensor, steps: int, mode: str) -> torch.Tensor:
    pi = agent.policy
    ctx = {"fp32": contextlib.nullcontext(), "bf16 time inputs": bf16_time_inputs(pi),
           "bf16 autocast": torch.autocast(obs.device.type, dtype=torch.bfloat16)}[mode]
    with torch.no_grad(), ctx:
        return pi.sample(obs, noise, steps).float()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampling-steps", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--dataset-dir", default=None)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    agent = zoo.load(args.checkpoint)
    if not hasattr(agent.policy, "jump"):
        raise SystemExit("precision_check.py reads MoMa QL checkpoints (a policy with jump(obs, x_t, s, t))")
    data = datasets.load(agent.config["dataset"]["id"], args.dataset_dir)
    idx = np.random.default_rng(args.seed).choice(len(data), min(args.rows, len(data)), replace=False)
    pi = agent.policy
    obs = pi.normalize(torch.as_tensor(data.observations[idx], dtype=torch.float32, device=agent.device))
    gen = torch.Generator().manual_seed(args.seed)
    noise, other = (torch.randn((len(idx), pi.chunk_dim), generator=gen) for _ in range(2))
    modes = ["bf16 time inputs", "bf16 autocast"]
    lines = ["| sampling steps | spread: two fp32 noises | " + " | ".join(modes) + " | bf16 autocast / spread |",
             "|" + "---|" * (len(modes) + 3)]
    for steps in args.sampling_steps:
        ref = actions(agent, obs, noise, steps, "fp32")
        spread = (ref - actions(agent, obs, other, steps, "fp32")).norm(dim=1).mean().item()
        dist = {m: (actions(agent, obs, noise, steps, m) - ref).norm(dim=1).mean().item() for m in modes}
        lines.append(f"| {steps} | {spread:.4f} | " + " | ".join(f"{dist[m]:.4f}" for m in modes)
                     + f" | {dist['bf16 autocast'] / spread:.3f} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        cmd = f"python experiments/precision_check.py {args.checkpoint} --rows {args.rows} --seed {args.seed} " \
              f"--sampling-steps {' '.join(map(str, args.sampling_steps))}"
        head = "" if RESULTS.exists() else (
            "# bf16 against fp32 on trained policies\n\nProduced by `experiments/precision_check.py` (its docstring "
            "defines the columns). Newest last.\n")
        with open(RESULTS, "a") as f:
            f.write(f"{head}\n## {stamp}\n\n`{cmd}` · {len(idx)} states of `{data.dataset_id}`\n\n{table}\n")


if __name__ == "__main__":
    main()
