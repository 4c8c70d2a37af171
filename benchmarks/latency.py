"""Action latency: ``predict()`` and the policy network, against the physical floor of one bare MLP forward.

    python benchmarks/latency.py --widths 256 --threads 1

For a one-step policy the floor is one forward of an MLP of the same size (``nn.Sequential`` of ``nn.Linear`` +
GELU, fp32): the policy network's latency is reported as a multiple of it, and ``predict()``'s overhead on top
(numpy in/out, clipping, scaling) separately. Batch 1 and 256. Results are appended to benchmarks/RESULTS.md.

Diffusion-BC/QL and Consistency-BC/AC are measured at each ``--steps`` N (``python benchmarks/latency.py --methods
DiffusionQL ConsistencyAC --steps 1 2 5 10``): "policy network" is their N-step sampler for one candidate (about N
floors), and ``predict()`` is the deployed action, which for Diffusion-QL / Consistency-AC scores 50 candidates with the
critic and draws one (the official code's ``sample_action``), so its "overhead" column holds that work.
"""

from __future__ import annotations

import sys

import harness
import numpy as np
import torch
from reference import naive_mlp, naive_select_action
from throughput import ACT_DIM, BATCH, OBS_DIM, STEPS_KNOB, make_fql
from throughput import AGENTS as TRAIN_AGENTS


def fql_policy_net(agent):
    """The deployed network call of FQL: μ_ω(s, z) on given noise."""
    pi = agent.policy
    return lambda obs, z: pi.onestep_actions(obs, z)


def diffusion_policy_net(agent):
    """The DDPM reverse chain (N network calls) for one candidate, fed the noise ``z`` at every step."""
    pi = agent.policy
    return lambda obs, z: pi.denoise(obs, lambda: z)


def consistency_policy_net(agent):
    """Multistep consistency sampling (N network calls) for one candidate, fed the noise ``z`` at every step."""
    pi = agent.policy
    return lambda obs, z: pi.sample(obs, lambda: z)


def moma_policy_net(agent):
    """MoMa QL's few-step sampler (``sampling_steps`` network calls) from the noise ``z``."""
    pi = agent.policy
    return lambda obs, z: pi.sample(obs, z, agent.sampling_steps)


def qam_policy_net(agent):
    """QAM / TRQAM: the Euler ODE of the fine-tuned flow over a whole chunk (``flow_steps`` network calls)."""
    pi = agent.policy
    return lambda obs, z: pi.flow_actions(obs, z, pi.acting_network)


def rfm_policy_net(agent):
    """RFM: M candidates through the latent flow's ODE, then one twin-critic call to pick the best (own noise)."""
    pi = agent.policy
    return lambda obs, z: pi.sample_actions(obs)


AGENTS = {
    "FQL": (make_fql, fql_policy_net),
    "MoMaQL": (TRAIN_AGENTS["MoMaQL"][0], moma_policy_net),
    **{name: (TRAIN_AGENTS[name][0], diffusion_policy_net) for name in ("DiffusionBC", "DiffusionQL")},
    **{name: (TRAIN_AGENTS[name][0], consistency_policy_net) for name in ("ConsistencyBC", "ConsistencyAC")},
    **{name: (TRAIN_AGENTS[name][0], qam_policy_net) for name in ("QAM", "TRQAM")},
    "RFM": (TRAIN_AGENTS["RFM"][0], rfm_policy_net),
}


def main() -> None:
    p = harness.parser(__doc__)
    p.add_argument("--methods", nargs="+", default=list(AGENTS))
    p.add_argument(
        "--steps",
        type=int,
        nargs="+",
        default=[None],
        help="denoising steps N of the methods that have them (default: each method's own)",
    )
    args, load, timing = harness.start(
        p, quick=dict(warmup=5, min_calls=20, min_seconds=0.3, repeats=1),
        full=dict(warmup=100, min_calls=500),
    )
    rows = []
    for method in args.methods:
        make, net_of = AGENTS[method]
        knob = STEPS_KNOB.get(method)
        for width, steps in [(w, n) for w in args.widths for n in (args.steps if knob else [None])]:
            agent = make(width, **({} if steps is None else {knob: steps}))
            compiled = make(width, compile=True, **({} if steps is None else {knob: steps}))
            compiled.policy.load_state_dict(agent.policy.state_dict())
            n_label = str(agent.get_config()["algo_kwargs"][knob]) if knob else "-"
            net = net_of(agent)
            noise_dim = getattr(agent.policy, "chunk_dim", ACT_DIM)  # QAM's chunks: H x action dim
            floor_mlp = naive_mlp(OBS_DIM + noise_dim, width, 4, noise_dim)
            for threads in args.threads:
                torch.set_num_threads(threads)
                for batch in (1, 256):
                    obs_np = np.random.default_rng(0).normal(size=(batch, OBS_DIM)).astype(np.float32)
                    obs, z = torch.from_numpy(obs_np), torch.randn(batch, noise_dim)
                    with torch.no_grad():
                        floor = harness.time_per_call(lambda: floor_mlp(torch.cat([obs, z], -1)), **timing)
                        t_net = harness.time_per_call(lambda: net(obs, z), **timing)
                    single = obs_np[0] if batch == 1 else obs_np
                    t_pred = harness.time_per_call(lambda: agent.predict(single), **timing)
                    compiled.predict(single)  # compile outside the timing (once per shape)
                    t_comp = harness.time_per_call(lambda: compiled.predict(single), **timing)
                    official = "-"
                    reference = TRAIN_AGENTS[method][1]
                    if batch == 1 and method in ("DiffusionQL", "ConsistencyAC"):
                        naive = reference(OBS_DIM, ACT_DIM, width, batch_size=BATCH,
                                          **({} if steps is None else {"n_steps": steps}))
                        t_off = harness.time_per_call(lambda: naive_select_action(naive, obs_np[0]), **timing)
                        official = (f"{t_off * 1e6:.0f} (ours {t_pred / t_off:.2f}x; "
                                    f"compiled {t_comp / t_off:.2f}x)")
                    rows.append(
                        [
                            method,
                            str(width),
                            n_label,
                            str(threads),
                            str(batch),
                            f"{floor * 1e6:.0f}",
                            f"{t_net * 1e6:.0f} ({t_net / floor:.2f}x)",
                            f"{t_pred * 1e6:.0f}",
                            f"{(t_pred - t_net) * 1e6:.0f}",
                            f"{t_comp * 1e6:.0f}",
                            official,
                        ]
                    )
                    print(" | ".join(rows[-1]), flush=True)
    text = harness.append_results(
        "Action latency (microseconds per call)",
        "python benchmarks/latency.py " + " ".join(sys.argv[1:]),
        load,
        rows,
        ["method", "width", "N", "threads", "batch", "floor: bare MLP fwd", "policy network", "predict()", "predict() overhead",
         "predict(), compile=True", "official-code action (50 candidates)"],
        [
            "fp32 throughout; `predict()` includes numpy conversion, noise sampling, clipping and action scaling; for "
            "Diffusion-QL / Consistency-AC also the 50 candidates and their critic scores. N: denoising steps. The last "
            "column is the official code's `sample_action` (a plain port, `reference.naive_select_action`) at batch 1. "
            "`compile=True`: the same weights with the action sampler through torch.compile (noise draws eager)."
        ],
    )
    harness.write(text, args.no_write or args.quick)


if __name__ == "__main__":
    main()
