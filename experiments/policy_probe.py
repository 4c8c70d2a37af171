"""Where a trained policy's actions sit relative to its dataset's: saturation, distance and the critic's view.

    python experiments/policy_probe.py /work/runs/momaql-cube-single-task1-seed0/checkpoint \\
        "eta0=/work/runs/momaql-cube-single-task1-eta0-seed0/checkpoint" --rows 4096

For ``--rows`` dataset states (a fixed random draw, ``--seed``) each checkpoint acts once (``predict``,
``deterministic=False``, its own sampler defaults) and the table gives, in the policy's [-1, 1] action scale: the mean
|action|, the share of action components within 1% of the box (saturated), the mean L2 distance to the dataset's
action in the same state, the per-dimension std of the actions, and, for agents with a critic, the critic's Q (minimum
over its ensemble) of the policy's action and of the dataset's action. A Q-weighted policy that drifts off the data
shows as saturation and distance growing while Q(policy) rises above Q(data): the critic is being exploited where it
has no data. The dataset row gives the same statistics for the dataset's own actions. ``--sampling-steps 1 2 4 8``
gives one row per step count (``predict(..., sampling_steps=k)``) of each checkpoint instead of its default.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import zoo
from zoo import datasets


def _dims(x: np.ndarray) -> str:
    return " / ".join(f"{v:.2f}" for v in x)


def probe(agent, obs: np.ndarray, data_actions: np.ndarray, **sampler: int) -> dict[str, object]:
    pi = agent.policy
    actions, _ = agent.predict(obs, deterministic=False, **sampler)
    a = pi.scale_action(actions).astype(np.float32)
    d = pi.scale_action(data_actions).astype(np.float32)
    row: dict[str, object] = {
        "mean |a|": float(np.abs(a).mean()),
        "saturated": float((np.abs(a) > 0.99).mean()),
        "distance to data action": float(np.linalg.norm(a - d, axis=1).mean()),
        "std per dim": _dims(a.std(0)),
    }
    critic = getattr(pi, "critic", None)
    if critic is not None and getattr(agent, "action_horizon", 1) == 1:
        with torch.no_grad():
            o = pi.normalize(torch.as_tensor(obs, dtype=torch.float32, device=agent.device))
            q = [critic(o, torch.as_tensor(x, device=agent.device)).float().min(0).values.mean().item() for x in (a, d)]
        row["Q(policy)"], row["Q(data)"] = q
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", metavar="[LABEL=]CHECKPOINT")
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset-dir", default=None, help="where the datasets are (default: the suites' own folders)")
    p.add_argument("--sampling-steps", type=int, nargs="+", default=None, help="one row per step count")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    cols = ["mean |a|", "saturated", "distance to data action", "std per dim", "Q(policy)", "Q(data)"]
    print("| policy | " + " | ".join(cols) + " |\n|" + "---|" * (len(cols) + 1))
    dataset_shown = None
    for spec in args.checkpoints:
        label, _, path = spec.rpartition("=")
        agent = zoo.load(path)
        data = datasets.load(agent.config["dataset"]["id"], args.dataset_dir)
        idx = np.random.default_rng(args.seed).choice(len(data), min(args.rows, len(data)), replace=False)
        obs, data_actions = data.observations[idx], data.actions[idx]
        if dataset_shown != data.dataset_id:
            d = agent.policy.scale_action(data_actions)
            print(f"| dataset `{data.dataset_id}` | {np.abs(d).mean():.3f} | {(np.abs(d) > 0.99).mean():.3f} | 0 | "
                  f"{_dims(d.std(0))} | - | - |")
            dataset_shown = data.dataset_id
        for steps in args.sampling_steps or [None]:
            row = probe(agent, obs, data_actions, **({} if steps is None else {"sampling_steps": steps}))
            cells = [f"{row[c]:.3f}" if isinstance(row.get(c), float) else str(row.get(c, "-")) for c in cols]
            name = (label or path) + ("" if steps is None else f", {steps} step{'s' if steps > 1 else ''}")
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
