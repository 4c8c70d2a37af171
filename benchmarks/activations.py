"""Activation cost on this CPU: why genzoo uses the exact (erf) GELU and keeps Mish cheap.

    python benchmarks/activations.py

Microseconds per call on a 256x256 tensor, fp32 and bf16, one thread: the forward alone (no autograd), and forward +
backward (what a training step pays per activation).
"""

from __future__ import annotations

import sys

import harness
import torch
import torch.nn.functional as F

from agents.core.networks import mish

CANDIDATES = {
    "gelu (erf)": F.gelu,
    "gelu (tanh approx.)": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "mish": F.mish,
    "mish (genzoo: sigmoid form)": mish,
}


def main() -> None:
    p = harness.parser(__doc__)
    args, load, timing = harness.start(
        p, quick=dict(warmup=5, min_calls=20, min_seconds=0.2, repeats=1), full=dict(warmup=50, min_calls=500)
    )
    torch.set_num_threads(1)
    rows = []
    for name, fn in CANDIDATES.items():
        row = [name]
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(256, 256).to(dtype)
            with torch.no_grad():
                row.append(f"{harness.time_per_call(lambda x=x, fn=fn: fn(x), **timing) * 1e6:.0f}")
            xg, g = x.clone().requires_grad_(True), torch.ones_like(x)
            row.append(f"{harness.time_per_call(lambda xg=xg, g=g, fn=fn: fn(xg).backward(g), **timing) * 1e6:.0f}")
        rows.append(row)
        print(" | ".join(row), flush=True)
    text = harness.append_results(
        "Activation cost (us per call, 256x256, 1 thread)",
        "python benchmarks/activations.py " + " ".join(sys.argv[1:]),
        load,
        rows,
        ["activation", "fp32", "fp32 fwd+bwd", "bf16", "bf16 fwd+bwd"],
    )
    harness.write(text, args.no_write or args.quick)


if __name__ == "__main__":
    main()
