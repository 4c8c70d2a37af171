"""Rebuild Minari's MuJoCo locomotion datasets (``mujoco/<env>/<simple|medium>-v0``) locally.

The official recipe (``scripts/mujoco`` of ``Farama-Foundation/minari-dataset-generation-scripts``: ``train.py``,
``config.py``, ``create_dataset.py``) is

* behaviour policies trained with Stable-Baselines3 on ``<Env>-v5``: SAC for Hopper and Walker2d, TQC (sb3-contrib)
  for HalfCheetah, ``make_vec_env(n_envs=5)``, ``learning_starts=10_000`` for SAC, γ = 0.99, SB3 defaults otherwise,
  for ``config.TIMESTEPS`` env steps (Hopper simple 1M / medium 4M, Walker2d simple 1.5M / medium 6M, HalfCheetah
  simple 1M / medium 6M); an ``EvalCallback`` (deterministic episodes every 1000 calls) keeps the best model, and the
  best model is what was uploaded and collected with;
* collection: 1,000,000 steps of ``policy.predict(obs)`` (stochastic actions: SB3's default), episode ``i`` reset
  with seed ``123 + i``, the trailing episode that could not finish dropped, ``record_infos=False``;
* reference scores from an expert trained for 25M steps (not reproducible here).

What differs here, each recorded in the manifest and the README:

* **One run per env.** The simple and medium policies come from one training run: ``simple`` is the best
  evaluated policy within the simple budget, ``medium`` the best between the simple and the medium budget. The
  same algorithm and budgets as two separate runs at the cost of one; the windows do not overlap because a best
  found early in the shared run would otherwise be both policies, and medium-v0 a recollection of simple-v0 (a
  separate medium run gives a different policy).
* **Evaluation during training** uses ``eval_episodes`` (10, not 50) deterministic episodes every 5000 env steps (the
  recipe's 1000 calls × 5 envs), which halves the run's cost; selection noise is larger.
* **Reference scores are local**: ``ref_min`` is a uniform random policy's and ``ref_max`` the stochastic mean return
  of the best policy of the latest budget the run had reached when the dataset was built (the simple policy for a
  simple-v0 built first, the medium policy for medium-v0), 100 episodes each (Minari's
  ``get_average_reference_score``). So 100 means "as good as that local behaviour policy", not the official expert,
  and a simple-v0 and a medium-v0 of one env can carry different ``ref_max`` (each manifest names its policy's step).
* Training is resumable: every ``checkpoint_every`` env steps the run folder gets the networks, optimisers and entropy
  coefficient as safetensors and the replay buffer as ``.npz`` (no pickle); a resumed run restarts the envs' episodes.
* **Trained policies ship with genzoo.** Once a run reaches a budget, its best actors, evaluation log and counters
  are copied to ``zoo/datasets/behaviour/<env>-seed<seed>/`` (a few hundred KB, committed). A machine without the
  run folder rebuilds the dataset from that copy, collecting only; the manifest says so and keeps the training run's
  wall time. Reaching a later budget from a packaged copy alone retrains from scratch (the copy has no optimiser
  state or replay buffer).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.datasets import minari_build

ENVS = {"hopper": ("Hopper-v5", "SAC"), "walker2d": ("Walker2d-v5", "SAC"), "halfcheetah": ("HalfCheetah-v5", "TQC")}
# config.TIMESTEPS of the official scripts.
BUDGETS = {"hopper": {"simple": 1_000_000, "medium": 4_000_000}, "walker2d": {"simple": 1_500_000, "medium": 6_000_000},
           "halfcheetah": {"simple": 1_000_000, "medium": 6_000_000}}


@dataclass(frozen=True)
class LocomotionRecipe:
    dataset_id: str
    env: str  # hopper, walker2d, halfcheetah
    proficiency: str  # simple or medium
    total_steps: int = 1_000_000
    n_envs: int = 5
    eval_every: int = 5_000  # env steps between evaluations (the recipe's eval_freq=1000 calls x 5 envs)
    eval_episodes: int = 10
    reset_seed: int = 123
    ref_episodes: int = 100

    @property
    def env_id(self) -> str:
        return ENVS[self.env][0]

    @property
    def algo(self) -> str:
        return ENVS[self.env][1]


RECIPES = {f"mujoco/{e}/{p}-v0": LocomotionRecipe(f"mujoco/{e}/{p}-v0", e, p) for e in ENVS for p in ("simple", "medium")}


# ----------------------------------------------------------------------------------------------- behaviour policies
def _make_model(env_name: str, seed: int, n_envs: int):
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env

    env_id, algo = ENVS[env_name]
    venv = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    if algo == "SAC":
        return SAC("MlpPolicy", venv, learning_starts=10_000, gamma=0.99, use_sde=False, seed=seed, device="cpu")
    from sb3_contrib import TQC

    return TQC("MlpPolicy", venv, gamma=0.99, seed=seed, device="cpu")


def _optimizers(model: Any) -> dict[str, torch.optim.Optimizer]:
    opts = {"actor": model.actor.optimizer, "critic": model.critic.optimizer}
    if getattr(model, "ent_coef_optimizer", None) is not None:
        opts["ent_coef"] = model.ent_coef_optimizer
    return opts


def save_state(model: Any, directory: Path, extra: dict[str, Any], keep: Sequence[Path] = ()) -> None:
    """Networks, optimisers, entropy coefficient (safetensors), replay buffer (npz), counters (json); atomically.

    ``keep``: files of the run copied into the checkpoint as they are now (the best policies), so that a resume can
    put back the ones a lost segment overwrote."""
    from safetensors.torch import save_file

    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for path in keep:
        if path.is_file():
            shutil.copy2(path, tmp / path.name)
    tensors = {f"policy.{k}": v.detach().clone() for k, v in model.policy.state_dict().items()}
    if getattr(model, "log_ent_coef", None) is not None:
        tensors["log_ent_coef"] = model.log_ent_coef.detach().clone()
    groups = {}
    for name, opt in _optimizers(model).items():
        sd = opt.state_dict()
        groups[name] = sd["param_groups"]
        for idx, state in sd["state"].items():
            for key, value in state.items():
                tensors[f"opt.{name}.{idx}.{key}"] = torch.as_tensor(value).clone()
    save_file(tensors, tmp / "state.safetensors")
    rb = model.replay_buffer
    np.savez(tmp / "replay.npz", observations=rb.observations, next_observations=rb.next_observations, actions=rb.actions,
             rewards=rb.rewards, dones=rb.dones, timeouts=rb.timeouts)
    meta = {"num_timesteps": model.num_timesteps, "n_updates": model._n_updates, "rb_pos": rb.pos, "rb_full": rb.full,
            "param_groups": groups, **extra}
    (tmp / "state.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


def load_state(model: Any, directory: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    tensors = load_file(directory / "state.safetensors")
    meta = json.loads((directory / "state.json").read_text())
    model.policy.load_state_dict({k.removeprefix("policy."): v for k, v in tensors.items() if k.startswith("policy.")})
    if "log_ent_coef" in tensors:
        with torch.no_grad():
            model.log_ent_coef.copy_(tensors["log_ent_coef"])
    for name, opt in _optimizers(model).items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(f"opt.{name}."):
                idx, field = key.removeprefix(f"opt.{name}.").split(".", 1)
                state.setdefault(int(idx), {})[field] = value
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"][name]})
    rb = model.replay_buffer
    with np.load(directory / "replay.npz") as data:
        for key in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
            getattr(rb, key)[...] = data[key]
    rb.pos, rb.full = meta["rb_pos"], meta["rb_full"]
    model.num_timesteps, model._n_updates = meta["num_timesteps"], meta["n_updates"]
    return meta


def rewind_to_checkpoint(run: Path, step: int) -> None:
    """Undo what a killed segment wrote after the checkpoint it resumes from (the resumed run retrains those steps).

    Drops ``evaluations.csv`` rows after ``step`` and puts back the best-policy files the checkpoint holds; a best file
    the checkpoint does not hold was written after it and is removed. Checkpoints written before 2026-11-27 hold no
    best files: those runs keep theirs as they are."""
    state = run / "state"
    kept = sorted(state.glob("best-*"))
    if kept:
        for path in run.glob("best-*"):
            if not (state / path.name).is_file():
                path.unlink()
        for path in kept:
            shutil.copy2(path, run / path.name)
    log = run / "evaluations.csv"
    if log.is_file():
        rows = [row for row in log.read_text().splitlines() if row and int(row.split(",", 1)[0]) <= step]
        log.write_text("".join(f"{row}\n" for row in rows))


def _actor_tensors(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in model.actor.state_dict().items()}


PACKAGED_ROOT = Path(__file__).with_name("behaviour")
# What a finished run ships (no optimiser state, no replay buffer): enough to collect and to score against.
_PACKAGED_FILES = ("best-simple.safetensors", "best-simple.json", "best-medium.safetensors", "best-medium.json",
                   "evaluations.csv")


def behaviour_run_dir(root: Path, env: str, seed: int) -> Path:
    return root / ".behaviour" / f"{env}-seed{seed}"


def packaged_run_dir(env: str, seed: int, packaged_root: Path | None = None) -> Path:
    return (packaged_root or PACKAGED_ROOT) / f"{env}-seed{seed}"


def package_behaviour(run: Path, env: str, seed: int, packaged_root: Path | None = None,
                      budgets: dict[str, int] | None = None) -> Path:
    """Copy a run's best policies, evaluation log, counters and reference scores into the package (see module doc).

    The budgets the run was trained under are recorded: only a run asking for the same budgets reuses the copy."""
    meta = json.loads((run / "state" / "state.json").read_text())
    target = packaged_run_dir(env, seed, packaged_root)
    target.mkdir(parents=True, exist_ok=True)
    for name in _PACKAGED_FILES:
        if (run / name).is_file():
            shutil.copy2(run / name, target / name)
    for ref in run.glob("reference_scores-*.json"):
        shutil.copy2(ref, target / ref.name)
    counters = {k: meta[k] for k in ("num_timesteps", "n_updates", "best", "wall_s")}
    counters["budgets"] = budgets or BUDGETS[env]
    (target / "run.json").write_text(json.dumps(counters, indent=1) + "\n")
    return target


def _unpack_behaviour(run: Path, env: str, seed: int, target: int, budgets: dict[str, int],
                      packaged_root: Path | None) -> bool:
    """Materialise the packaged run into an empty ``run`` folder if it was trained under ``budgets`` and reached
    ``target`` env steps."""
    packaged = packaged_run_dir(env, seed, packaged_root)
    if not (packaged / "run.json").is_file():
        return False
    counters = json.loads((packaged / "run.json").read_text())
    if counters.get("budgets") != budgets or counters["num_timesteps"] < target:
        return False
    (run / "state").mkdir(parents=True, exist_ok=True)
    for f in packaged.iterdir():
        if f.name != "run.json":
            shutil.copy2(f, run / f.name)
    (run / "state" / "state.json").write_text(json.dumps(counters | {"packaged": True}, indent=1) + "\n")
    return True


def train_behaviour(env: str, root: Path, seed: int = 0, until: str = "medium", eval_episodes: int = 10,
                    eval_every: int = 5_000, checkpoint_every: int = 100_000, n_envs: int = 5,
                    budgets: dict[str, int] | None = None, progress: bool = True,
                    packaged_root: Path | None = None) -> Path:
    """Train (or resume) ``env``'s behaviour run up to the ``until`` budget; keep the best policy of each budget.

    Writes ``{run}/best-<proficiency>.safetensors`` (actor weights) with ``best-<proficiency>.json`` (its evaluation
    and step), ``state/`` for resumption and ``evaluations.csv``. Returns the run folder. With no run folder, a
    packaged run (``zoo/datasets/behaviour/``) that reached the budget is used instead of training.
    """
    from safetensors.torch import save_file
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    budgets = budgets or BUDGETS[env]
    target = budgets[until]
    run = behaviour_run_dir(root, env, seed)
    state = run / "state" / "state.json"
    if not state.is_file():
        _unpack_behaviour(run, env, seed, target, budgets, packaged_root)
    if state.is_file():
        counters = json.loads(state.read_text())
        if counters["num_timesteps"] >= target:
            return run
        if counters.get("packaged"):
            # A packaged copy cannot be resumed (no optimiser state, no replay buffer): train this budget afresh.
            shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)
    model = _make_model(env, seed, n_envs)
    meta: dict[str, Any] = {"best": {}, "wall_s": 0.0}
    if state.is_file():
        meta = load_state(model, run / "state")
        rewind_to_checkpoint(run, model.num_timesteps)
    # Each budget selects within its own window (previous budget, budget]: one shared run stands in for the recipe's
    # separate runs, and a whole-run best found early would make medium-v0 a recollection of simple-v0's policy.
    floors = {prof: max([b for b in budgets.values() if b < budget], default=0) for prof, budget in budgets.items()}
    for prof, best in list(meta["best"].items()):
        if prof in floors and best["step"] <= floors[prof]:  # recorded before this rule (2026-11-27): select again
            del meta["best"][prof]
    eval_env = make_vec_env(ENVS[env][0], n_envs=1, seed=seed + 10_000)

    def best_files() -> list[Path]:
        return [run / f"best-{prof}.{ext}" for prof in meta["best"] for ext in ("safetensors", "json")]

    started, wall0 = time.time(), meta.get("wall_s", 0.0)

    class Track(BaseCallback):
        """Best-model selection per budget (the recipe's EvalCallback) and periodic resumable checkpoints."""

        def _on_step(self) -> bool:
            t = self.model.num_timesteps
            if t % eval_every < n_envs:
                mean, std = evaluate_policy(self.model, eval_env, n_eval_episodes=eval_episodes, deterministic=True)
                with open(run / "evaluations.csv", "a") as f:
                    f.write(f"{t},{mean:.3f},{std:.3f}\n")
                for prof, budget in budgets.items():
                    best = meta["best"].get(prof)
                    if floors[prof] < t <= budget and (best is None or mean > best["mean_return"]):
                        save_file(_actor_tensors(self.model), run / f"best-{prof}.safetensors")
                        meta["best"][prof] = {"mean_return": mean, "std_return": std, "step": t}
                        (run / f"best-{prof}.json").write_text(json.dumps(meta["best"][prof]) + "\n")
            if t % checkpoint_every < n_envs:
                meta["wall_s"] = wall0 + time.time() - started
                save_state(self.model, run / "state", {"best": meta["best"], "wall_s": meta["wall_s"]}, best_files())
            return t < target

    model.learn(total_timesteps=target - model.num_timesteps, callback=Track(), reset_num_timesteps=False,
                progress_bar=progress)
    meta["wall_s"] = wall0 + time.time() - started
    save_state(model, run / "state", {"best": meta["best"], "wall_s": meta["wall_s"]}, best_files())
    return run


def load_behaviour_policy(env: str, run: Path, proficiency: str, seed: int = 0) -> Any:
    """The SB3 model whose actor is the best ``proficiency`` policy of the run (critics are not needed to act)."""
    from safetensors.torch import load_file

    model = _make_model(env, seed, 1)
    model.actor.load_state_dict(load_file(run / f"best-{proficiency}.safetensors"))
    return model


# ----------------------------------------------------------------------------------------------- collection
def collect(env_id: str, policy: Any, total_steps: int, reset_seed: int = 123, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """The recipe's ``collect_data_from_policy``: whole episodes (seeds 123, 124, ...), stochastic actions, stopping
    when the remaining steps could not hold another full episode."""
    import gymnasium as gym

    env = gym.make(env_id)
    limit = env.spec.max_episode_steps
    torch.manual_seed(seed)  # SB3's stochastic predict draws from torch's global generator
    episodes, steps, ep_seed = [], 0, reset_seed
    while total_steps - steps >= limit:
        obs, _ = env.reset(seed=ep_seed)
        ep_seed += 1
        rows: dict[str, list] = {"observations": [obs], "actions": [], "rewards": [], "terminations": [], "truncations": []}
        done = False
        while not done:
            action = policy.predict(obs, deterministic=False)[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            rows["observations"].append(obs)
            rows["actions"].append(action)
            rows["rewards"].append(reward)
            rows["terminations"].append(terminated)
            rows["truncations"].append(truncated)
            done = terminated or truncated
        steps += len(rows["actions"])
        episodes.append({k: np.asarray(v) for k, v in rows.items()})
    env.close()
    return episodes


def reference_scores(env: str, run: Path, episodes: int = 100, seed: int = 0,
                     proficiency: str = "medium") -> tuple[float, float]:
    """Local reference scores: (uniform random policy, the run's best ``proficiency`` policy), Minari's procedure."""
    import gymnasium as gym
    from minari.utils import get_average_reference_score

    env_id = ENVS[env][0]
    random_env = gym.make(env_id)
    random_env.action_space.seed(seed)
    ref_min = get_average_reference_score(random_env, lambda obs, s=random_env.action_space: s.sample(), episodes)
    behaviour = load_behaviour_policy(env, run, proficiency, seed)
    torch.manual_seed(seed)
    ref_max = get_average_reference_score(gym.make(env_id), lambda obs: behaviour.predict(obs, deterministic=False)[0],
                                          episodes)
    return ref_min, ref_max


def build(dataset_id: str, directory: str | os.PathLike | None = None, total_steps: int | None = None, seed: int = 0,
          progress: bool = True, budgets: dict[str, int] | None = None, ref_episodes: int | None = None,
          eval_episodes: int | None = None, eval_every: int | None = None,
          packaged_root: Path | None = None, package: bool | None = None) -> Path:
    """Train (or resume) the env's behaviour run to the dataset's budget, collect ``dataset_id``, write it with Minari.

    ``total_steps``, ``budgets``, ``ref_episodes``, ``eval_episodes`` and ``eval_every`` override the recipe (tests use
    tiny ones). A trained run is packaged into ``packaged_root`` (default ``zoo/datasets/behaviour/``) for machines
    that come later when ``package`` is true; ``None`` packages only runs of the recipe's own budgets.
    """
    import minari
    from minari.data_collector import EpisodeBuffer

    if dataset_id not in RECIPES:
        raise KeyError(f"no local recipe for Minari dataset {dataset_id!r}; buildable: {sorted(RECIPES)}")
    recipe = RECIPES[dataset_id]
    steps = recipe.total_steps if total_steps is None else int(total_steps)
    root = minari_build.datasets_root(directory)
    started = time.time()
    # Train only as far as this dataset's budget: simple-v0 needs the first (simple) budget of the run; building
    # medium-v0 later resumes the same run to the medium budget (the best policy of each budget is kept).
    run = train_behaviour(recipe.env, root, seed, until=recipe.proficiency, budgets=budgets, n_envs=recipe.n_envs,
                          eval_episodes=recipe.eval_episodes if eval_episodes is None else eval_episodes,
                          eval_every=recipe.eval_every if eval_every is None else eval_every, progress=progress,
                          packaged_root=packaged_root)
    train_meta = json.loads((run / "state" / "state.json").read_text())
    # ref_max comes from the best policy of the latest budget the run has reached: a simple-v0 built before medium-v0
    # is scored against the simple policy; the file is keyed by that policy's step so medium-v0 recomputes.
    ref_prof = "medium" if "medium" in train_meta["best"] else "simple"
    ref_step = train_meta["best"][ref_prof]["step"]
    n_ref = recipe.ref_episodes if ref_episodes is None else ref_episodes
    ref_file = run / f"reference_scores-{n_ref}-medium{ref_step}.json"  # the name of files written before 2026-11-27
    if ref_file.is_file():
        ref_min, ref_max = json.loads(ref_file.read_text())
    else:
        ref_min, ref_max = reference_scores(recipe.env, run, n_ref, seed, proficiency=ref_prof)
        ref_file.write_text(json.dumps([ref_min, ref_max]))
    if not train_meta.get("packaged") and (budgets is None if package is None else package):
        package_behaviour(run, recipe.env, seed, packaged_root, budgets)
    policy = load_behaviour_policy(recipe.env, run, recipe.proficiency, seed)
    episodes = collect(recipe.env_id, policy, steps, recipe.reset_seed, seed)
    buffers = [EpisodeBuffer(id=i, observations=e["observations"], actions=e["actions"], rewards=list(e["rewards"]),
                             terminations=list(e["terminations"]), truncations=list(e["truncations"]))
               for i, e in enumerate(episodes)]
    target = root / dataset_id
    shutil.rmtree(target, ignore_errors=True)
    import gymnasium as gym

    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        env = gym.make(recipe.env_id)
        minari.create_dataset_from_buffers(
            dataset_id, buffers, env=env, algorithm_name=f"sb3/{recipe.algo}", author=minari_build.AUTHOR,
            code_permalink="https://github.com/Farama-Foundation/minari-dataset-generation-scripts/tree/main/scripts/mujoco",
            ref_min_score=ref_min, ref_max_score=ref_max,
            description=f"Local rebuild by genzoo of {dataset_id} (see genzoo_manifest.json); reference scores are local.",
        )
        env.close()
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous
    data_file = target / "data" / "main_data.hdf5"
    returns = [float(e["rewards"].sum()) for e in episodes]
    best = train_meta["best"][recipe.proficiency]
    manifest = {
        "dataset": dataset_id,
        "source": "genzoo local rebuild (recipe of minari-dataset-generation-scripts/scripts/mujoco)",
        "rebuilt": True,
        "recipe": asdict(recipe) | {"total_steps": steps, "algo": recipe.algo, "env_id": recipe.env_id,
                                    "budgets": budgets or BUDGETS[recipe.env]},
        "seed": seed,
        "behaviour_policy": {"selected_at_step": best["step"], "eval_mean_return": best["mean_return"],
                             "run_wall_s": round(train_meta["wall_s"], 1), "run_steps": train_meta["num_timesteps"],
                             "packaged": bool(train_meta.get("packaged"))},
        "ref_min_score": ref_min,
        "ref_max_score": ref_max,
        "reference_scores": f"local: uniform random policy / the run's best {ref_prof} policy at build time "
                            f"(step {ref_step}), {n_ref} episodes each",
        "build_seconds": round(time.time() - started, 1),
        "stats": {"episodes": len(episodes), "steps": int(sum(len(e["actions"]) for e in episodes)),
                  "mean_return": float(np.mean(returns))},
        "versions": minari_build._versions() | {"stable-baselines3": _version("stable-baselines3"),
                                               "sb3-contrib": _version("sb3-contrib")},
        "files": {"data/main_data.hdf5": {"sha256": minari_build._sha256(data_file), "bytes": data_file.stat().st_size}},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = minari_build.manifest_path(root, dataset_id)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def _version(pkg: str) -> str:
    from importlib.metadata import version

    return version(pkg)
