"""Resumable training runs: ``genzoo train <method> <task> --steps N --seed S --out DIR``.

A run folder holds:

* ``run.json``: what was asked (method, task, seed, hyperparameters) and the wall time of every segment;
* ``checkpoint/``: the latest ``model.safetensors`` + ``config.json`` + ``training_state.safetensors`` (and, for
  online tasks, ``replay_buffer.safetensors``), written every ``checkpoint_every`` gradient steps (env steps
  online; a new folder is written beside the old one, then swapped in);
* ``logs/progress-<step>.csv``: the SB3 logger's CSV of each segment, merged into ``training_log.csv``;
* ``model/``: the final published checkpoint (no training state) and its ``results.json``.

Rerunning the same command after a kill resumes from the last checkpoint, and an fp32 run resumed this way ends
with the same weights as an uninterrupted one (targets, optimiser moments, RNG state and counters are restored).
SIGTERM / SIGINT stop a run gracefully: it checkpoints at the step it reached and exits with :data:`STOPPED_EXIT_CODE`
(143), so nothing since the last periodic checkpoint is lost. Each segment records the device it ran on, so a run
started on a GPU and finished on a CPU says so.
"""

from __future__ import annotations

import csv
import json
import shutil
import signal
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import CSVOutputFormat, HumanOutputFormat, Logger

import hub
from evaluation.rollouts import device_name

HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"
CHECKPOINT, MODEL = "checkpoint", "model"
REPLAY_BUFFER = "replay_buffer.safetensors"
STOPPED_EXIT_CODE = 143  # 128 + SIGTERM, as a shell reports a terminated process


class TrainingStopped(SystemExit):
    """Raised by :func:`train` after a SIGTERM / SIGINT once the run is checkpointed (exit code 143)."""

    def __init__(self, out: Path, step: int) -> None:
        super().__init__(STOPPED_EXIT_CODE)
        self.out, self.step = out, step

    def __str__(self) -> str:
        return f"stopped by a signal at step {self.step}; checkpointed in {self.out} (rerun the command to resume)"


def genzoo_version() -> str:
    try:
        return version("genzoo")
    except PackageNotFoundError:
        return "0+unknown"


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML would keep the last one silently)."""


def _construct_unique_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def hyperparams_table(method: str) -> dict[str, Any]:
    """``zoo/hyperparams/<method>.yaml``, checked: no key twice, only ``families`` / ``tasks`` / ``zoo_budget`` at the top,
    family names and task ids the registry knows (a typo would otherwise apply to no task, silently)."""
    from evaluation import tasks

    path = HYPERPARAMS_DIR / f"{method.lower()}.yaml"
    if not path.is_file():
        raise KeyError(f"no hyperparameter file for method {method!r} ({path})")
    table = yaml.load(path.read_text(), Loader=_StrictLoader) or {}
    unknown = set(table) - {"families", "tasks", "zoo_budget"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {sorted(unknown)}; expected families, tasks, zoo_budget")
    families = {t.family for t in tasks.TASKS.values()}
    for name in table.get("families") or {}:
        if name not in families:
            raise ValueError(f"{path}: unknown task family {name!r}; known: {', '.join(sorted(families))}")
    for task_id in table.get("tasks") or {}:
        tasks.get(task_id)  # KeyError naming the known ids
    return table


def hyperparams(method: str, task_id: str, budget: str = "zoo") -> dict[str, Any]:
    """Constructor overrides for ``method`` on ``task_id``: the task family's entries, then the budget's widths.

    ``budget="zoo"`` applies the zoo's standard budget (4×256 MLPs, ../DESIGN.md); ``"paper"`` keeps the paper's sizes.
    """
    from evaluation import tasks

    table = hyperparams_table(method)
    task = tasks.get(task_id)
    out: dict[str, Any] = dict(table.get("families", {}).get(task.family) or {})
    out.update(table.get("tasks", {}).get(task_id) or {})
    if budget == "zoo":
        out.update(table.get("zoo_budget") or {})
    elif budget != "paper":
        raise ValueError(f"budget must be 'zoo' or 'paper', got {budget!r}")
    return out


def _command(method: str, task: str, steps: int, seed: int, precision: str, budget: str,
             overrides: dict[str, Any] | None) -> str:
    """The ``genzoo train`` command line equivalent to a call of :func:`train`."""
    cmd = f"genzoo train {method.lower()} {task} --steps {steps} --seed {seed} --precision {precision} --budget {budget}"
    for k, v in (overrides or {}).items():
        cmd += f" --set {k}={json.dumps(v, separators=(',', ':'))}"
    return cmd


class _Checkpointer(BaseCallback):
    """Writes the run's checkpoint every ``every`` gradient steps (after that step's update); online, every
    ``every`` env steps, once the step's transition is stored and its update done (when the next rollout starts:
    SB3 stores a transition after ``on_step`` and trains after ``on_rollout_end``)."""

    def __init__(self, run: Run, every: int) -> None:
        super().__init__()
        self.run, self.every = run, every
        self._pending = False

    def _on_step(self) -> bool:
        if _crossed(self.num_timesteps, self.every, self.model.n_envs):
            if self.model.env is None:
                self.run.checkpoint()
            else:
                self._pending = True
        return True

    def _on_rollout_start(self) -> None:
        if self._pending:
            self.run.checkpoint()
            self._pending = False


class _StopOnSignal(BaseCallback):
    """Turns SIGTERM / SIGINT into a clean stop: offline, checkpoint after the current gradient step and end
    ``learn_offline``; online, when the next rollout starts (after the last step's transition is stored and its
    update done, as :class:`_Checkpointer`), so a resumed run repeats and skips nothing."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run, self.requested = run, False
        self._previous: dict[int, Any] = {}

    def _request(self, signum: int, frame: Any) -> None:
        self.requested = True

    def _on_training_start(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._request)

    def _on_training_end(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _on_step(self) -> bool:
        if self.requested and self.model.env is None:
            self.run.checkpoint()
            return False
        return True

    def _on_rollout_start(self) -> None:
        if self.requested:
            if self.run.checkpointed_at != self.model.num_timesteps:
                self.run.checkpoint()
            raise _SignalStop


class _SignalStop(Exception):
    """Unwinds an online ``learn()`` after :class:`_StopOnSignal` checkpointed it."""


def _crossed(num_timesteps: int, every: int, n_envs: int) -> bool:
    """Whether the last step (``n_envs`` timesteps at once online) crossed a multiple of ``every``."""
    return num_timesteps // every > (num_timesteps - n_envs) // every


class _PeriodicEval(BaseCallback):
    """Scores the agent on its task every ``every`` steps with the evaluation harness (``episodes`` fixed seeds
    from 10000, apart from the final evaluation's) and logs ``eval/score`` (the task's metric) and ``eval/return``:
    the learning curve of online runs."""

    def __init__(self, task_id: str, every: int, episodes: int) -> None:
        super().__init__()
        self.task_id, self.every, self.episodes = task_id, every, episodes

    def _on_training_start(self) -> None:
        if self.model.num_timesteps == 0:  # a fresh run's curve starts at step 0: for a finetuned one, its "before"
            self._score()

    def _on_step(self) -> bool:
        if _crossed(self.num_timesteps, self.every, self.model.n_envs):
            self._score()
        return True

    def _score(self) -> None:
        import torch

        from evaluation import evaluate

        # On forks of the random streams: a stochastic policy's evaluation episodes draw noise, and the run must
        # follow the same random sequence with or without its learning curve.
        numpy_state = np.random.get_state()
        device = torch.device(self.model.device)
        try:
            with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
                result = evaluate(self.model, self.task_id, seeds=[10_000 + i for i in range(self.episodes)])
        finally:
            np.random.set_state(numpy_state)
        self.logger.record("eval/score", result["aggregate"]["mean"])
        self.logger.record("eval/return", float(np.mean([e["return"] for e in result["episodes"]])))
        self.logger.record("time/total_timesteps", self.model.num_timesteps)
        self.logger.dump(step=self.model.num_timesteps)


class Run:
    """One training run folder (see the module docstring)."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.meta_path = self.out / "run.json"
        self.meta: dict[str, Any] = json.loads(self.meta_path.read_text()) if self.meta_path.is_file() else {}
        self.agent: Any = None
        self._segment_start = 0.0
        self._segment: dict[str, Any] | None = None  # this process's entry in meta["segments"], if it trains
        self.checkpointed_at: int | None = None  # the step of this process's last checkpoint

    # -------------------------------------------------------------- checkpoint files
    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint folder (tolerates a kill in the middle of a swap)."""
        for name in (CHECKPOINT, f"{CHECKPOINT}-new", f"{CHECKPOINT}-old"):
            d = self.out / name
            if all((d / f).is_file() for f in ("model.safetensors", "config.json", "training_state.safetensors")):
                return d
        return None

    def checkpoint(self) -> None:
        new, cur, old = (self.out / f"{CHECKPOINT}{s}" for s in ("-new", "", "-old"))
        shutil.rmtree(new, ignore_errors=True)
        self.agent.save(new, **self.config_extras())
        self.agent.save_training_state(new)
        if self.agent.env is not None:  # online runs resume with their replay buffer
            self.agent.save_replay_buffer(new / REPLAY_BUFFER)
        self._record_segment()
        if cur.exists():
            shutil.rmtree(old, ignore_errors=True)
            cur.rename(old)
        new.rename(cur)
        shutil.rmtree(old, ignore_errors=True)
        self.checkpointed_at = int(self.agent.num_timesteps)

    def _record_segment(self) -> None:
        if self._segment is not None:
            self._segment["end"] = int(self.agent.num_timesteps)
            self._segment["wall_s"] = round(time.time() - self._segment_start, 1)
        self.meta_path.write_text(json.dumps(self.meta, indent=2) + "\n")

    def wall_time(self) -> float:
        return float(sum(s.get("wall_s", 0.0) for s in self.meta.get("segments", [])))

    def config_extras(self) -> dict[str, Any]:
        from evaluation import tasks

        task = tasks.get(self.meta["task"])
        return {
            "task": task.task_id,
            "env_id": task.env_id,
            "dataset": self.agent.offline_dataset_info or None,
            "training": {
                "command": self.meta.get("command") or _command(
                    self.meta["method"], self.meta["task"], int(self.agent.num_timesteps), self.meta["seed"],
                    self.meta["precision"], self.meta["budget"], None),  # runs started before commands were recorded
                "steps": int(self.agent.num_timesteps),
                "seed": self.meta["seed"],
                "wall_time_s": round(self.wall_time(), 1),
                "genzoo_version": genzoo_version(),
                "torch_version": torch.__version__,
                "precision": self.agent.precision,
                "threads": torch.get_num_threads(),
                "devices": sorted({seg["device"] for seg in self.meta.get("segments", []) if seg.get("device")}),
                "segments": [{k: seg[k] for k in ("start", "end", "device", "dataset_sha256") if k in seg}
                             for seg in self.meta.get("segments", [])],
                "budget": self.meta["budget"],
                "base_model": self.meta.get("base_model"),
                "variant": self.meta.get("variant"),
            },
        }

    # -------------------------------------------------------------- logs
    def merge_logs(self) -> Path:
        """Concatenate the segments' CSVs into ``training_log.csv``, dropping rows a resumed segment redid."""
        segments = sorted((self.out / "logs").glob("progress-*.csv"), key=lambda p: int(p.stem.split("-")[1]))
        rows: list[dict[str, str]] = []
        fields: list[str] = []
        for i, path in enumerate(segments):
            stop = int(segments[i + 1].stem.split("-")[1]) if i + 1 < len(segments) else None
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    step = _step_of(row)
                    if stop is not None and step and int(float(step)) > stop:
                        continue
                    rows.append(row)
                    fields += [k for k in row if k not in fields]
        # the step first, whatever column order each segment's logger happened to write
        fields.sort(key=lambda k: k not in ("time/gradient_steps", "time/total_timesteps"))
        out = self.out / "training_log.csv"
        with open(out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        if rows:
            plot_training_log(rows, self.out / "training_log.png", title=f"{self.meta['method']} on {self.meta['task']}")
        return out


def _step_of(row: dict[str, str]) -> str:
    """The x of a log row: gradient steps offline, env steps online (SB3's ``time/total_timesteps``)."""
    return row.get("time/gradient_steps") or row.get("time/total_timesteps") or ""


def _repo_id_of(checkpoint: str) -> str:
    """The Hub id of a checkpoint directory (from its config.json) or the repo id itself."""
    path = Path(checkpoint)
    if not (path / "config.json").is_file():
        return checkpoint
    config = hub.read_config(path)
    training = config.get("training") or {}
    return hub.repo_id(config["algo"], config.get("task") or "custom", training.get("seed", 0),
                       variant=training.get("variant"))


def plot_training_log(rows: list[dict[str, str]], path: Path, title: str = "") -> Path:
    """One panel per logged ``train/*`` (and online ``rollout/*``) quantity against steps (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if _step_of(r)]
    if not rows:
        return path
    online = "time/gradient_steps" not in rows[0]
    steps = [float(_step_of(r)) for r in rows]
    keys = sorted({k for r in rows for k in r if (k.startswith("train/") and k != "train/n_updates")
                   or k in ("rollout/ep_rew_mean", "rollout/success_rate", "eval/score")})
    cols = 3
    nrows = max(1, -(-len(keys) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 2.6 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        ax.plot(steps, [float(r[key]) if r.get(key) else float("nan") for r in rows], lw=1)
        ax.set_title(key.removeprefix("train/"), fontsize=9)
        ax.set_xlabel("env steps" if online else "gradient steps", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def train(
    method: str,
    task_id: str,
    steps: int,
    seed: int,
    out: str | Path,
    precision: str | None = None,
    budget: str = "zoo",
    overrides: dict[str, Any] | None = None,
    checkpoint_every: int = 10_000,
    init_from: str | Path | None = None,
    finetune_from: str | Path | None = None,
    variant: str | None = None,
    log_interval: int = 1_000,
    eval_every: int = 0,
    eval_every_episodes: int = 5,
    n_envs: int = 1,
    eval_episodes: int | None = 0,
    n_threads: int | None = 1,
    dataset_dir: str | Path | None = None,
    device: str = "auto",
    progress_bar: bool = True,
    verbose: int = 0,
    callback: BaseCallback | None = None,
    command: str | None = None,
) -> Any:
    """Train (or resume) ``method`` on ``task_id`` for ``steps`` gradient steps in the run folder ``out``.

    Returns the trained agent. ``eval_episodes``: 0 skips evaluation, None uses the task's protocol.
    ``precision``: ``fp32`` / ``bf16``; None: fp32, or the checkpoint's for ``finetune_from``.
    ``finetune_from``: offline-to-online finetuning of a published checkpoint (directory or repo id) of
    ``method`` on ``task_id``, or of a run's ``checkpoint`` folder (then its targets and optimiser state continue):
    ``learn()`` in the task's env for ``steps`` env steps with the task's dataset kept in the buffer (``overrides``
    may set ``online_fraction``, e.g. 0.5 for RLPD's symmetric sampling), no random warm-up, published as the
    ``o2o`` variant with ``base_model`` set. ``variant``: the repo-id variant of the published checkpoint (``bc``,
    ``eta0``, ...).
    ``n_envs``: online, step that many envs at once (SB3's ``DummyVecEnv``; ``steps`` counts env steps of all; one
    gradient step per env step, i.e. ``gradient_steps=-1``, unless ``overrides`` set it).
    ``eval_every``: also score the agent every that many steps (``eval_every_episodes`` episodes) into the log.
    ``init_from``: a ``bc_only`` run's model folder whose BC flow starts a QAM / TRQAM run (stage 2 of TRQAM's
    pipeline); recorded as the checkpoint's ``base_model``.
    """
    from agents import ALGOS
    from evaluation import tasks
    from zoo import datasets

    algo_name = {k.lower(): k for k in ALGOS}.get(method.lower())
    if algo_name is None:
        raise KeyError(f"unknown method {method!r}; known: {', '.join(sorted(ALGOS))}")
    task = tasks.get(task_id)
    if log_interval and checkpoint_every % log_interval and not (task.online or finetune_from is not None):
        # offline, the log and the checkpoints must meet (online runs log once per episode)
        raise ValueError(f"--checkpoint-every ({checkpoint_every}) must be a multiple of --log-interval ({log_interval}; "
                         "default 1000)")
    if n_threads is not None:
        torch.set_num_threads(n_threads)
    # A finetuning run keeps its checkpoint's settings: only explicit overrides apply.
    kwargs = dict(overrides or {}) if finetune_from is not None else {**hyperparams(algo_name, task_id, budget),
                                                                       **(overrides or {})}
    ALGOS[algo_name].check_arguments(kwargs)  # a typo'd --set fails here, before the dataset is read
    # a repo id is resolved once (one download or one "Hub not reachable" notice), then read from its folder
    source = None if finetune_from is None else hub.resolve(finetune_from)
    if precision is None:
        precision = "fp32" if source is None else str(hub.read_config(source)["algo_kwargs"].get("precision", "fp32"))
    run = Run(out)
    asked = {"method": algo_name, "task": task.task_id, "seed": seed, "precision": precision, "budget": budget,
             "hyperparams": kwargs}
    if init_from is not None:
        asked["init_from"] = str(Path(init_from).resolve())
    if finetune_from is not None and task.online:
        raise ValueError(f"--finetune-from continues an offline checkpoint online with its dataset in the buffer; "
                         f"{task.task_id} has no dataset (train on it directly: genzoo train {method} {task.task_id})")
    if finetune_from is not None:
        asked["init_from"] = str(Path(finetune_from).resolve()) if Path(finetune_from).exists() else str(finetune_from)
        variant = variant or "o2o"
    if variant is None and kwargs.get("bc_only"):
        variant = "bc"  # stage 1 of QAM / TRQAM: the BC flow is published as the -bc variant
    if variant:
        asked["variant"] = variant
    if n_envs > 1:
        asked["n_envs"] = n_envs  # online chunks and the update count depend on it: a resume must keep it
    if "init_from" in asked:  # the card's base_model: the repo id the starting checkpoint is published under
        asked["base_model"] = _repo_id_of(asked["init_from"])

    if run.meta:
        differs = {k: (run.meta.get(k), v) for k, v in asked.items() if run.meta.get(k) != v}
        if differs:
            raise ValueError(f"{out} holds a run with other settings {differs}; use another --out")
    else:
        run.meta = {**asked, "segments": []}
    # The command that (re)produces the run as it now stands: a rerun with more --steps extends it.
    run.meta["command"] = command or (
        _command(algo_name, task.task_id, steps, seed, precision, budget, overrides)
        + (f" --init-from {init_from}" if init_from is not None else "")
        + (f" --finetune-from {finetune_from}" if finetune_from is not None else "")
        + (f" --variant {variant}" if variant and finetune_from is None else "")
        + (f" --n-envs {n_envs}" if n_envs > 1 else "")
        + (f" --eval-every {eval_every} --eval-every-episodes {eval_every_episodes}" if eval_every else "")
        + f" --out {out}")
    if n_envs > 1 and (task.online or finetune_from is not None):
        kwargs.setdefault("gradient_steps", -1)  # SB3: as many updates as env steps collected (one per env step)

    # Offline tasks train on their dataset; online tasks (no dataset) and finetuning runs in their env with learn().
    online = task.online or finetune_from is not None
    dataset = None if task.online else datasets.load(task.dataset_id, dataset_dir)
    run.out.mkdir(parents=True, exist_ok=True)  # after the dataset: a failed start leaves no empty run folder
    env = None
    if online:
        from stable_baselines3.common.env_util import make_vec_env

        env = task.make_env() if n_envs == 1 else make_vec_env(task.make_env, n_envs=n_envs, seed=seed)
    ckpt = run.latest_checkpoint()
    cls = ALGOS[algo_name]
    if ckpt is not None:
        agent = cls.load(ckpt, env=env, device=device, training_state=True, n_threads=n_threads)
        if online:
            agent.load_replay_buffer(ckpt / REPLAY_BUFFER)
    elif finetune_from is not None:
        import zoo

        # A run's checkpoint folder (with training_state.safetensors) continues its target networks and optimiser
        # moments, as FQL's online phase continues the offline agent; a published model starts them afresh.
        with_state = (Path(finetune_from) / hub.TRAINING_STATE_FILE).is_file()
        agent = zoo.load(source, env=env, device=device, seed=seed, precision=precision, n_threads=n_threads,
                         learning_starts=0, training_state=with_state, **kwargs)
        if type(agent).__name__ != algo_name or agent.config.get("task") != task.task_id:
            raise ValueError(f"{finetune_from} is {type(agent).__name__} on {agent.config.get('task')}, "
                             f"not {algo_name} on {task.task_id}")
        if with_state:
            agent._base_config = agent.config
            agent.set_random_seed(seed)  # this run's seed, not the RNG state the offline run stopped with
        agent.load_offline_data(dataset)  # the offline data stays in the buffer beside the online transitions
        agent.num_timesteps = 0
    elif task.online:
        agent = cls(env=env, seed=seed, precision=precision, device=device, n_threads=n_threads, **kwargs)
    else:
        agent = cls(env=None, observation_space=dataset.observation_space, action_space=dataset.action_space,
                    seed=seed, precision=precision, device=device, n_threads=n_threads, **kwargs)
        if init_from is not None:
            if not hasattr(agent, "init_from_bc"):
                raise ValueError(f"--init-from starts QAM / TRQAM from a BC flow; {algo_name} has no such stage")
            agent.init_from_bc(init_from)
    run.agent = agent
    start = int(agent.num_timesteps)
    (run.out / "logs").mkdir(exist_ok=True)
    # One CSV per segment (SB3's CSV writer truncates its file), merged at the end.
    outputs = [CSVOutputFormat(str(run.out / "logs" / f"progress-{start}.csv"))]
    if verbose:
        outputs.append(HumanOutputFormat(sys.stdout))
    agent.set_logger(Logger(str(run.out / "logs"), outputs))

    segment = {"start": start, "end": start, "wall_s": 0.0, "device": device_name(agent.device)}
    if dataset is not None and dataset.info.get("sha256"):
        # A run may resume on another machine's rebuild of the dataset (a GPU lease): each segment names its data.
        segment["dataset_sha256"] = dataset.info["sha256"]
    if start < steps:  # a rerun of a finished run trains nothing and adds no segment
        run.meta["segments"].append(segment)
        run._segment = segment
    run._segment_start = time.time()
    stop = _StopOnSignal(run)
    if start < steps:
        callbacks = [_Checkpointer(run, checkpoint_every)] + ([callback] if callback is not None else [])
        if eval_every:
            callbacks.append(_PeriodicEval(task.task_id, eval_every, eval_every_episodes))
        callbacks.append(stop)  # last: at a rollout's start it follows (and reuses) the periodic checkpoint
        try:
            if online:  # SB3's log_interval counts episodes
                agent.learn(steps - start, callback=callbacks, log_interval=1, progress_bar=progress_bar,
                            reset_num_timesteps=False)
            else:
                agent.learn_offline(dataset, steps - start, callback=callbacks, log_interval=log_interval,
                                    progress_bar=progress_bar, reset_num_timesteps=False)
        except _SignalStop:
            pass
        finally:
            stop._on_training_end()
        if run.checkpointed_at != agent.num_timesteps:
            run.checkpoint()
    run._record_segment()
    agent.logger.close()
    run.merge_logs()
    if stop.requested:  # even at the last step: a stopped job is given no time to evaluate (a rerun publishes)
        raise TrainingStopped(run.out, int(agent.num_timesteps))

    def stop_publishing(signum: int, frame: Any) -> None:  # the last checkpoint holds every step: a rerun publishes
        raise TrainingStopped(run.out, int(agent.num_timesteps))

    previous = {sig: signal.signal(sig, stop_publishing) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _publish(run, agent, eval_episodes, progress_bar)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _publish(run: Run, agent: Any, eval_episodes: int | None, progress_bar: bool) -> Any:
    """Write the run's final model folder: weights, config, training log, evaluation and card."""
    final = run.out / MODEL
    shutil.rmtree(final, ignore_errors=True)
    extras = run.config_extras()
    agent.save(final, **extras)
    for name in ("training_log.csv", "training_log.png"):
        if (run.out / name).is_file():
            shutil.copy(run.out / name, final / name)
    results = evaluate_checkpoint(final, episodes=eval_episodes, progress_bar=progress_bar) if eval_episodes != 0 else None
    agent.source_dir = final  # not the checkpoint it started from: its log and results are not this run's
    agent.save_pretrained(final, results=results, **extras)
    return agent


def evaluate_checkpoint(checkpoint: str | Path, episodes: int | None = None, device: str = "auto",
                        progress_bar: bool = True, **sampler: Any) -> dict[str, Any]:
    """Evaluate a checkpoint (directory or repo id) on its task with the task's protocol (``sampler``: predict
    options such as ``sampling_steps=4``, recorded in the protocol)."""
    import zoo
    from evaluation import evaluate, tasks

    agent = zoo.load(checkpoint, device=device)
    config = agent.config
    if not config.get("task"):
        raise ValueError(f"{checkpoint} names no task in config.json; use evaluation.evaluate(agent, task_id)")
    task = tasks.get(config["task"])
    t0 = time.time()
    result = evaluate(agent, task.task_id, n_episodes=episodes, progress_bar=progress_bar, **sampler)
    result["eval_wall_time_s"] = round(time.time() - t0, 1)
    result["checkpoint"] = {"algo": config["algo"], "training": config.get("training"), "dataset": config.get("dataset")}
    result["checkpoint_sha256"] = hub.weights_sha256(Path(agent.source_dir) / hub.WEIGHTS_FILE)
    return result


def evaluate_run(model_dir: str | Path, episodes: int | None = None, device: str = "auto",
                 progress_bar: bool = True, force: bool = False) -> tuple[dict[str, Any], bool]:
    """Evaluate a checkpoint directory and write ``results.json`` and the updated card beside it.

    An existing ``results.json`` of more episodes is kept (a quick look must not replace the protocol's score) unless
    ``force``. Returns the evaluation and whether it was written."""
    import zoo

    result = evaluate_checkpoint(model_dir, episodes, device, progress_bar)
    existing = Path(model_dir) / "results.json"
    if existing.is_file() and not force:
        before = json.loads(existing.read_text())["protocol"]["episodes"]
        if result["protocol"]["episodes"] < before:
            return result, False
    zoo.load(model_dir, device=device).save_pretrained(model_dir, results=result)
    return result, True
