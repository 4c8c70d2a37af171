"""Action latency: ``predict()`` and the policy network, against the physical floor of one bare MLP forward.

    python benchmarks/latency.py --widths 256 --threads 1

For a one-step policy the floor is one forward of an MLP of the same size (``nn.Sequential`` of ``nn.Linear`` +
GELU, fp32): the policy network's latency is reported as a multiple of it, and ``predict()``'s overhead on top
(numpy in/out, clipping, scaling) separately. Batch 1 and 256. Results are appended to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import sys

import harness
import numpy as np
import torch
from reference import naive_mlp
from throughput import ACT_DIM, OBS_DIM, make_fql


def fql_policy_net(agent):
    """The deployed network call of FQL: μ_ω(s, z) on given noise."""
    pi = agent.policy
    return lambda obs, z: pi.onestep_actions(obs, z)


AGENTS = {"FQL": (make_fql, fql_policy_net)}


def main() -> None:
    p = harness.parser(__doc__)
    p.add_argument("--methods", nargs="+", default=list(AGENTS))
    args, load, timing = harness.start(
        p, quick=dict(warmup=5, min_calls=20, min_seconds=0.3, repeats=1),
        full=dict(warmup=100, min_calls=500),
    )
    rows = []
    for method in args.methods:
        make, net_of = AGENTS[method]
        for width in args.widths:
            agent = make(width)
            net = net_of(agent)
            floor_mlp = naive_mlp(OBS_DIM + ACT_DIM, width, 4, ACT_DIM)
            for threads in args.threads:
                torch.set_num_threads(threads)
                for batch in (1, 256):
                    obs_np = np.random.default_rng(0).normal(size=(batch, OBS_DIM)).astype(np.float32)
                    obs, z = torch.from_numpy(obs_np), torch.randn(batch, ACT_DIM)
                    with torch.no_grad():
                        floor = harness.time_per_call(lambda: floor_mlp(torch.cat([obs, z], -1)), **timing)
                        t_net = harness.time_per_call(lambda: net(obs, z), **timing)
                    single = obs_np[0] if batch == 1 else obs_np
                    t_pred = harness.time_per_call(lambda: agent.predict(single), **timing)
                    rows.append([method, str(width), str(threads), str(batch), f"{floor * 1e6:.0f}",
                                 f"{t_net * 1e6:.0f} ({t_net / floor:.2f}x)", f"{t_pred * 1e6:.0f}",
                                 f"{(t_pred - t_net) * 1e6:.0f}"])
                    print(" | ".join(rows[-1]), flush=True)
    text = harness.append_results(
        "Action latency (microseconds per call)",
        "python benchmarks/latency.py " + " ".join(sys.argv[1:]),
        load,
        rows,
        ["method", "width", "threads", "batch", "floor: bare MLP fwd", "policy network", "predict()",
         "predict() overhead"],
        ["fp32 throughout; `predict()` includes numpy conversion, noise sampling, clipping and action scaling."],
    )
    harness.write(text, args.no_write or args.quick)


if __name__ == "__main__":
    main()
