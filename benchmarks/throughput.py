"""Training throughput: gradient steps/s of each method, as a multiple of the naive fp32 reference step.

    python benchmarks/throughput.py                       # every method, widths 256/512, 1 and 2 threads, all variants
    python benchmarks/throughput.py --widths 256 --threads 1 --variants fp32 bf16
    python benchmarks/throughput.py --methods DiffusionBC ConsistencyBC --steps 1 2 5 10 --widths 256 --threads 1

Methods with a number of denoising steps (Diffusion-BC/QL: DDPM steps N; Consistency-BC/AC: sampling steps N, used by
the Q term and the critic targets of Consistency-AC) are measured at each ``--steps`` value, against the naive port of
their official code (``reference.py``) at the same N.

Batch 256, 4 hidden layers, OGBench cube-single shapes (obs 28, action 5), synthetic data (speed does not depend
on the values). Results are appended to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import sys
from functools import partial

import harness
import numpy as np
import torch
from gymnasium import spaces
from reference import NaiveConsistencyAC, NaiveDiffusionQL, NaiveFQL

OBS_DIM, ACT_DIM, BATCH, ROWS = 28, 5, 256, 100_000
VARIANTS = {  # name -> constructor overrides
    "fp32": {"precision": "fp32"},
    "bf16": {"precision": "bf16"},
    "fp32+compile": {"precision": "fp32", "compile": True},
    "bf16+compile": {"precision": "bf16", "compile": True},
}


def _dataset():
    from agents import Dataset

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(ROWS, OBS_DIM)).astype(np.float32)
    return Dataset.from_arrays(obs, rng.uniform(-1, 1, (ROWS, ACT_DIM)), -np.ones(ROWS), obs, np.zeros(ROWS),
                               action_space=spaces.Box(-1, 1, (ACT_DIM,), np.float32))


def make_fql(width: int, **overrides):
    from agents import FQL

    data = _dataset()
    agent = FQL(observation_space=data.observation_space, action_space=data.action_space, alpha=300.0,
                actor_hidden_dims=[width] * 4, value_hidden_dims=[width] * 4, batch_size=BATCH, seed=0, **overrides)
    agent.load_offline_data(data)
    return agent


def make_generative(name: str, width: int, **overrides):
    """A Diffusion-BC/QL or Consistency-BC/AC agent with ``width``x4 networks on the synthetic data.

    ``ema_start=0``: the EMA actor / teacher is updated from the first step, as it is for all but the first 1000 steps
    of a run (the measured steps are a window of the steady state), and as the naive reference does."""
    import agents

    cls = agents.ALGOS[name]
    data = _dataset()
    kw = dict(actor_hidden_dims=[width] * 4, batch_size=BATCH, seed=0)
    if name not in ("DiffusionBC", "MoMaQL"):  # the others have an EMA actor / teacher that starts late
        kw["ema_start"] = 0
    if name in ("DiffusionQL", "ConsistencyAC", "MoMaQL"):
        kw["value_hidden_dims"] = [width] * 4
    agent = cls(observation_space=data.observation_space, action_space=data.action_space, **kw, **overrides)
    agent.load_offline_data(data)
    return agent


def make_qam(name: str, width: int, **overrides):
    """QAM / TRQAM as on manipulation: action chunks of 5, K=10 critics, ``width``x4 networks."""
    import agents

    data = _dataset()
    agent = agents.ALGOS[name](observation_space=data.observation_space, action_space=data.action_space,
                               actor_hidden_dims=[width] * 4, value_hidden_dims=[width] * 4, batch_size=BATCH,
                               action_horizon=5, seed=0, **overrides)
    agent.load_offline_data(data)
    return agent


def make_rfm(width: int, **overrides):
    """RFM with its own 2-layer networks of ``width`` (an online method, timed here on the synthetic rows)."""
    from agents import RFM

    data = _dataset()
    agent = RFM(observation_space=data.observation_space, action_space=data.action_space,
                actor_hidden_dims=[width] * 2, value_hidden_dims=[width] * 2, batch_size=BATCH, seed=0, **overrides)
    agent.load_offline_data(data)
    return agent


def _naive(cls, **fixed):
    return lambda obs_dim, act_dim, width, **kw: cls(obs_dim, act_dim, width, **fixed, **kw)


AGENTS = {
    "FQL": (make_fql, NaiveFQL),
    "DiffusionBC": (partial(make_generative, "DiffusionBC"), _naive(NaiveDiffusionQL, bc_only=True)),
    "DiffusionQL": (partial(make_generative, "DiffusionQL"), _naive(NaiveDiffusionQL)),
    "ConsistencyBC": (partial(make_generative, "ConsistencyBC"), _naive(NaiveConsistencyAC, bc_only=True)),
    "ConsistencyAC": (partial(make_generative, "ConsistencyAC"), _naive(NaiveConsistencyAC)),
    # No official MoMa QL code exists: its rows have no naive reference (the FQL rows are the natural comparison).
    "MoMaQL": (partial(make_generative, "MoMaQL"), None),
    "MoMaQL-BC": (partial(make_generative, "MoMaQL", eta=0.0), None),  # the paper's BC setting (no critic)
    # The zoo's task setting since 2026-12-07 (zoo/hyperparams/momaql.yaml): acting, TD targets and the Q term through
    # one step, half the moment-matching draws on that step's jump (--steps changes the acting / TD-target steps only).
    # (η sets no cost: the 2026-12-07 03:53 UTC entry was taken at η 1.)
    "MoMaQL-zoo": (partial(make_generative, "MoMaQL", eta=0.3, sampling_steps=1, q_sampling_steps=[1],
                           sampler_jump_fraction=0.5), None),
    "MoMaQL-zoo-BC": (partial(make_generative, "MoMaQL", eta=0.0, sampling_steps=1, sampler_jump_fraction=0.5), None),
    # QAM / TRQAM / RFM: official JAX code only (QAM, TRQAM) or none (RFM); no naive PyTorch port.
    "QAM": (partial(make_qam, "QAM"), None),
    "TRQAM": (partial(make_qam, "TRQAM"), None),
    "RFM": (make_rfm, None),
}
# The constructor argument holding each method's number of denoising steps (methods without one: measured once).
STEPS_KNOB = {
    "DiffusionBC": "diffusion_steps",
    "DiffusionQL": "diffusion_steps",
    "ConsistencyBC": "sampling_steps",
    "ConsistencyAC": "sampling_steps",
    "MoMaQL": "sampling_steps",
    "MoMaQL-BC": "sampling_steps",
    "MoMaQL-zoo": "sampling_steps",
    "MoMaQL-zoo-BC": "sampling_steps",
    "QAM": "flow_steps",
    "TRQAM": "flow_steps",
    "RFM": "flow_steps",
}


def main() -> None:
    p = harness.parser(__doc__)
    p.add_argument("--methods", nargs="+", default=list(AGENTS))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument(
        "--steps",
        type=int,
        nargs="+",
        default=[None],
        help="denoising steps N of the methods that have them (default: each method's own)",
    )
    args, load, timing = harness.start(
        p, quick=dict(warmup=2, min_calls=5, min_seconds=0.5, repeats=1),
        full=dict(warmup=20, min_calls=50),
    )
    rows = []
    for method in args.methods:
        make, reference = AGENTS[method]
        knob = STEPS_KNOB.get(method)
        for width, steps in [(w, n) for w in args.widths for n in (args.steps if knob else [None])]:
            naive = (reference(OBS_DIM, ACT_DIM, width, batch_size=BATCH, **({} if steps is None else {"n_steps": steps}))
                     if reference is not None else None)
            step_kw = {} if steps is None else {knob: steps}
            agents = {v: make(width, **step_kw, **VARIANTS[v]) for v in args.variants}
            n_label = str(agents[args.variants[0]].get_config()["algo_kwargs"].get(knob, "-")) if knob else "-"
            for threads in args.threads:
                torch.set_num_threads(threads)
                base = 1.0 / harness.time_per_call(naive.step, **timing) if naive is not None else None
                row = [method, str(width), n_label, str(threads), f"{base:.1f}" if base else "n/a"]
                for v in args.variants:
                    agent = agents[v]
                    warm = dict(timing, warmup=timing["warmup"] + (3 if agent.compile else 0),
                                settle=30 if agent.compile else 0)
                    sps = 1.0 / harness.time_per_call(lambda a=agent: a.train(1, BATCH), **warm)
                    row.append(f"{sps:.1f} ({sps / base:.2f}x)" if base else f"{sps:.1f}")
                rows.append(row)
                print(" | ".join(row), flush=True)
    text = harness.append_results(
        "Training throughput (gradient steps/s; multiple of the naive fp32 step)",
        "python benchmarks/throughput.py " + " ".join(sys.argv[1:]),
        load,
        rows,
        ["method", "width", "N", "threads", "naive fp32", *args.variants],
        [
            "Batch 256, 4 hidden layers, obs 28 / action 5. The naive step is `benchmarks/reference.py` (frozen); for "
            "Diffusion-*/Consistency-* it is a plain port of the official code (nn.Mish, one module per critic). N: "
            "denoising steps."
        ],
    )
    harness.write(text, args.no_write or args.quick)


if __name__ == "__main__":
    main()
