"""Statistics of the datasets on this machine, for the docs: ``genzoo data stats [--readme README.md]``.

Per dataset: episodes, transitions, build time, and what the behaviour data achieves — for OGBench the share of
episodes that pass through each single-task goal (tasks 1–5, from OGBench's own single-task relabelling), for
Minari the share of episodes that end at a goal, the mean episode return and the reference scores. Published
figures of the official files, where known, are in :data:`PUBLISHED` with their sources.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

START, END = "<!-- dataset-stats:start -->", "<!-- dataset-stats:end -->"

# Published figures of the official files (see the sources in the table's footnote).
PUBLISHED: dict[str, str] = {
    # OGBench commands.sh: 1000 episodes x 1001 steps (1M transitions) for every dataset below.
    "cube-single-play-v0": "1,000 ep. / 1,000,000 tr.",
    "cube-double-play-v0": "1,000 ep. / 1,000,000 tr.",
    "scene-play-v0": "1,000 ep. / 1,000,000 tr.",
    "puzzle-3x3-play-v0": "1,000 ep. / 1,000,000 tr.",
    "pointmaze-medium-navigate-v0": "1,000 ep. / 1,000,000 tr.",
    "pointmaze-large-navigate-v0": "1,000 ep. / 1,000,000 tr.",
    # minari.farama.org/datasets/D4RL/pointmaze/umaze-v2 ("Dataset Specs") and the metadata.json files of the Hub
    # repo farama-minari/D4RL (commits c354012 for umaze-dense-v2, d97cb86 for medium-dense-v2).
    "D4RL/pointmaze/umaze-v2": "13,210 ep. / 1,000,000 steps",
    "D4RL/pointmaze/umaze-dense-v2": "13,210 ep. / 1,000,000 steps",
    "D4RL/pointmaze/medium-dense-v2": "4,752 ep. / 1,000,000 steps",
    # minari-dataset-generation-scripts scripts/mujoco: n_steps 1,000,000 per dataset; behaviour-policy returns are
    # the self-reported figures of the model cards of HF farama-minari/{Env}-v5-{ALGO}-{level}.
    "mujoco/hopper/simple-v0": "1,000,000 steps; policy return 3178 ± 17",
    "mujoco/hopper/medium-v0": "1,000,000 steps; policy return 3484 ± 405",
    "mujoco/walker2d/simple-v0": "1,000,000 steps",
    "mujoco/walker2d/medium-v0": "1,000,000 steps",
    "mujoco/halfcheetah/simple-v0": "1,000,000 steps",
    "mujoco/halfcheetah/medium-v0": "1,000,000 steps",
}


def _episode_ends(terminals: np.ndarray) -> np.ndarray:
    return np.flatnonzero(terminals > 0)


def ogbench_stats(name: str, root: Path) -> dict[str, Any]:
    """Rows of the raw file, transitions as the loader returns them, and per-task goal reach of its episodes."""
    import ogbench

    raw = np.load(root / f"{name}.npz")
    episodes = int(raw["terminals"].sum())
    stem = name.removesuffix("-v0")
    reach = []
    for task in range(1, 6):
        _, train, _ = ogbench.make_env_and_datasets(f"{stem}-singletask-task{task}-v0", dataset_dir=str(root),
                                                     env_only=False)
        ends = _episode_ends(train["terminals"])
        at_goal = train["masks"] == 0
        starts = np.concatenate([[0], ends[:-1] + 1])
        reached = [at_goal[s:e + 1].any() for s, e in zip(starts, ends)]
        reach.append(100.0 * float(np.mean(reached)))
    return {"episodes": episodes, "transitions": int(len(raw["terminals"]) - episodes),
            "behaviour": "goal reached in " + " / ".join(f"{r:.0f}" for r in reach) + " % of episodes (tasks 1-5)"}


def minari_stats(dataset_id: str, root: Path) -> dict[str, Any]:
    from zoo.datasets.minari import open_dataset

    ds = open_dataset(dataset_id, root)
    returns, successes = [], []
    for ep in ds.iterate_episodes():
        returns.append(float(np.sum(ep.rewards)))
        successes.append(bool(ep.infos["success"][-1]) if ep.infos and "success" in ep.infos else False)
    meta = ds.storage.metadata
    refs = (f"reference min / max {meta.get('ref_min_score', float('nan')):.1f} / "
            f"{meta.get('ref_max_score', float('nan')):.1f} (local)")
    if dataset_id.startswith("mujoco/"):
        # Locomotion has no goal: report the return and the locally trained behaviour policy behind it.
        policy = _behaviour_policy(root / dataset_id)
        return {"episodes": int(ds.total_episodes), "transitions": int(ds.total_steps),
                "behaviour": f"mean return {np.mean(returns):.0f} ± {np.std(returns):.0f}; {policy}{refs}"}
    return {"episodes": int(ds.total_episodes), "transitions": int(ds.total_steps),
            "behaviour": f"{100 * np.mean(successes):.0f} % of episodes end at a goal; mean return "
                         f"{np.mean(returns):.1f}; {refs}"}


def _behaviour_policy(dataset_dir: Path) -> str:
    """``"SAC at env step N (eval return R); "`` from a MuJoCo build's manifest, or ``""`` for official files."""
    import json

    manifest = dataset_dir / "genzoo_manifest.json"
    if not manifest.exists():
        return ""
    info = json.loads(manifest.read_text())
    policy = info.get("behaviour_policy") or {}
    if "selected_at_step" not in policy:
        return ""
    trained = f"run trained here in {policy['run_wall_s'] / 3600:.1f} h" if "run_wall_s" in policy else ""
    if policy.get("packaged"):
        trained += ", policy from zoo/datasets/behaviour/ (build time is collection only)"
    return (f"{info['recipe']['algo']} policy at env step {policy['selected_at_step']:,} "
            f"(eval return {policy['eval_mean_return']:.0f}; {trained}); ")


def table(directory: str | os.PathLike | None = None) -> str:
    """The Markdown table of every dataset present on this machine."""
    from zoo import datasets

    lines = ["| dataset | episodes | transitions | behaviour data | build time | official files |",
             "|---|---|---|---|---|---|"]
    for row in datasets.status(directory):
        if not row["present"]:
            continue
        name = row["dataset"]
        if datasets.minari.is_minari_id(name):
            stats = minari_stats(name, Path(row["files_root"]).parents[len(Path(name).parts) - 1])
        else:
            stats = ogbench_stats(name, Path(row["files_root"]))
        built = f"{row['build_seconds']:.0f} s" if row.get("build_seconds") is not None else "official file"
        lines.append(f"| `{name}` | {stats['episodes']:,} | {stats['transitions']:,} | {stats['behaviour']} | {built} | "
                     f"{PUBLISHED.get(name, 'not known here')} |")
    return "\n".join(lines) + "\n"


def _rows_by_dataset(text: str) -> dict[str, str]:
    """The rows of a stats table keyed by dataset name (first column, in backticks)."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| `([^`]+)` \|", line)
        if m:
            rows[m.group(1)] = line
    return rows


def write_readme(readme: str | os.PathLike, text: str) -> None:
    """Replace the block between the dataset-stats markers of ``readme`` with ``text``.

    Rows of the old block whose dataset is absent from ``text`` (built on an earlier machine, not rebuilt here yet)
    are kept, marked in their build-time column, so a new machine does not erase what was measured before it.
    """
    path = Path(readme)
    content = path.read_text()
    if START not in content or END not in content:
        raise ValueError(f"{path} has no {START} ... {END} block to fill")
    old = _rows_by_dataset(content.split(START, 1)[1].split(END, 1)[0])
    new = _rows_by_dataset(text)
    kept = []
    for name, line in old.items():
        if name in new:
            continue
        cells = line.split(" | ")
        if "earlier machine" not in cells[4]:
            cells[4] += " (earlier machine; not on this one)"
        kept.append(" | ".join(cells))
    if kept:
        text += "\n".join(kept) + "\n"
    block = f"{START}\n{text}{END}"
    path.write_text(re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, content, flags=re.S))

