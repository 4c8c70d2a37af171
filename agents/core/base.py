"""The SB3-compatible base every genzoo method extends.

``GenerativeAgent`` subclasses SB3's ``OffPolicyAlgorithm`` (as sb3-contrib's algorithms do) so callbacks, loggers,
``progress_bar=True``, VecEnvs and ``evaluate_policy`` work unchanged, and adds what offline RL with generative
policies needs:

* ``learn_offline(dataset, n_steps)``: gradient steps on a fixed dataset, firing SB3 callbacks and logging like
  ``learn()`` does (in offline training a "timestep" is a gradient step, as in d3rlpy);
* ``learn()``: SB3's online loop over a :class:`TransitionBuffer` that keeps the offline data beside the online
  transitions (``online_fraction`` sets the mix);
* ``predict`` with SB3's signature for single or batched observations, action chunks executed open loop through
  the ``state`` queue, and the method's sampling knobs (``sampling_steps=...``);
* ``save`` / ``load`` as ``model.safetensors`` + ``config.json`` (the Hub layout), and ``training_state.safetensors``
  (targets, optimisers, RNG, counters) for exact resumption. Nothing here pickles: SB3's zip ``save``, ``load``,
  ``set_parameters`` and replay-buffer pickles are overridden.

A method file defines a :class:`GenerativePolicy` subclass holding its networks and ``sample_actions``, and a
``GenerativeAgent`` subclass with its losses and ``update(batch)``.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
import os
import shutil
import tempfile
import time
import warnings
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback, ProgressBarCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback
from stable_baselines3.common.utils import configure_logger

import hub
from agents.core.buffers import TransitionBuffer
from agents.core.dataset import Dataset, load_dataset_by_id

SelfAgent = TypeVar("SelfAgent", bound="GenerativeAgent")

PRECISIONS = ("fp32", "bf16")
# Constructor arguments that describe the run, not the method: never written to config.json's algo_kwargs.
_NOT_ALGO_KWARGS = {"self", "policy", "env", "device", "verbose", "tensorboard_log", "observation_space",
                    "action_space", "seed", "n_threads", "_init_setup_model"}


class GenerativePolicy(BasePolicy):
    """Holds a method's networks and its observation normaliser; ``sample_actions`` is the method's sampler.

    Subclasses build their networks in ``__init__`` from ``observation_space`` / ``action_space`` and the method's
    keyword arguments, and implement :meth:`sample_actions` on normalised observations in ``[-1, 1]`` action units.
    Networks named in ``target_networks`` (``{"target_critic": "critic"}``) are excluded from published weights and
    re-initialised from their online network on load.
    """

    target_networks: ClassVar[dict[str, str]] = {}

    def __init__(self, observation_space: spaces.Box, action_space: spaces.Box, action_horizon: int = 1) -> None:
        super().__init__(observation_space, action_space, squash_output=False)
        self.obs_dim = int(np.prod(observation_space.shape))
        self.act_dim = int(np.prod(action_space.shape))
        self.action_horizon = action_horizon
        self.register_buffer("obs_mean", torch.zeros(self.obs_dim))
        self.register_buffer("obs_std", torch.ones(self.obs_dim))
        self._row_generators: list[torch.Generator] | None = None

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def noise(self, shape: tuple[int, ...], device: torch.device, deterministic: bool = False) -> torch.Tensor:
        """Standard normal noise for acting; zeros when ``deterministic``.

        When ``predict`` received per-row generators (``generators=[...]``, one per observation), row ``i`` draws
        from generator ``i``, so an evaluation episode's noise depends on its own seed only, not on which other
        episodes share the batch.
        """
        if deterministic:
            return torch.zeros(shape, device=device)
        gens = self._row_generators
        if gens is None:
            return torch.randn(shape, device=device)
        if len(gens) != shape[0]:
            raise ValueError(f"{len(gens)} generators for a batch of {shape[0]} observations")
        return torch.stack([torch.randn(shape[1:], generator=g) for g in gens]).to(device)

    @abstractmethod
    def sample_actions(self, obs: torch.Tensor, deterministic: bool = False, **sampler: Any) -> torch.Tensor:
        """Return ``(B, H * act_dim)`` actions in ``[-1, 1]`` for normalised observations ``(B, obs_dim)``."""

    def _predict(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return self.sample_actions(self.normalize(observation), deterministic)[:, : self.act_dim]

    def published_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights needed to act and to finetune: everything but target networks."""
        skip = tuple(f"{name}." for name in self.target_networks)
        return {k: v for k, v in self.state_dict().items() if not k.startswith(skip)}

    def reset_targets(self) -> None:
        for target, online in self.target_networks.items():
            getattr(self, target).load_state_dict(getattr(self, online).state_dict())

    def target_pairs(self) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
        return [(getattr(self, online), getattr(self, target)) for target, online in self.target_networks.items()]


class _GradientStepProgressBar(ProgressBarCallback):
    """SB3's progress bar counting gradient steps (the offline loop has no env)."""

    def _on_step(self) -> bool:
        self.pbar.update(1)
        return True


class GenerativeAgent(OffPolicyAlgorithm):
    """Base of every genzoo method (see the module docstring).

    Args:
        policy: ``"MlpPolicy"`` or a :class:`GenerativePolicy` subclass.
        env: a Gymnasium env, its id, a VecEnv, or None for offline-only use (then give the spaces).
        learning_rate: Adam learning rate (or SB3 schedule).
        buffer_size: rows reserved for online transitions (the offline dataset is stored on top of it).
        learning_starts: env steps of uniform random actions before online learning; 0 for pretrained agents.
        batch_size: minibatch size.
        tau: Polyak rate of target networks.
        gamma: discount.
        train_freq, gradient_steps: as in SB3 (UTD = gradient_steps / train_freq).
        online_fraction: share of each online-phase batch drawn from online transitions (0.5: RLPD's symmetric
            sampling); None samples uniformly over offline + online rows.
        action_horizon: actions per chunk ``H`` (1: no chunking).
        precision: ``"fp32"`` or ``"bf16"`` (autocast of forward passes; weights, optimiser state and losses stay fp32).
        normalize_observations: standardise observations with dataset statistics (saved with the weights).
        compile: run the method's loss and its action sampler through ``torch.compile`` (fuses the elementwise
            work around the matmuls; the first steps and the first ``predict`` pay a one-off compilation of about a
            minute on a CPU). Recorded in checkpoints; ``load`` turns it off unless resuming or asked again.
        observation_space, action_space: required when ``env`` is None.
        n_threads: ``torch.set_num_threads`` value; None leaves torch's setting alone.
        tensorboard_log, verbose, device, seed: as in SB3.
    """

    policy: GenerativePolicy
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {}
    supports_generators: ClassVar[bool] = True  # predict(..., generators=[...]): see evaluation.rollouts
    # What the model card says about the method (see ``card_info``): the paper (short, title, arxiv, bibtex,
    # setting), whether the code is an unofficial reimplementation, the paper's setting that the card compares
    # a checkpoint against, notes on the implementation, and the choices made where the paper is silent.
    paper: ClassVar[dict[str, str]] = {}
    unofficial: ClassVar[bool] = False
    paper_setting: ClassVar[dict[str, Any]] = {}
    implementation_notes: ClassVar[list[str]] = []
    # Constructor arguments added or re-defaulted after checkpoints were published: the value a config.json that lacks
    # the key was trained with (``load`` applies it, so an old checkpoint keeps its method).
    checkpoint_defaults: ClassVar[dict[str, Any]] = {}
    choices: ClassVar[list[dict[str, str]]] = []

    def __init__(
        self,
        policy: str | type[GenerativePolicy],
        env: GymEnv | str | None,
        learning_rate: float = 3e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 0,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int = 1,
        gradient_steps: int = 1,
        online_fraction: float | None = None,
        action_horizon: int = 1,
        precision: str = "fp32",
        normalize_observations: bool = False,
        compile: bool = False,
        observation_space: spaces.Box | None = None,
        action_space: spaces.Box | None = None,
        n_threads: int | None = None,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        device: torch.device | str = "auto",
        seed: int | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        _init_setup_model: bool = True,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if action_horizon < 1:
            raise ValueError(f"action_horizon must be >= 1, got {action_horizon}")
        if n_threads is not None:
            torch.set_num_threads(int(n_threads))
        super().__init__(
            policy,
            env,
            learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            policy_kwargs=policy_kwargs,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            support_multi_env=True,
            sde_support=False,
            supported_action_spaces=(spaces.Box,),
        )
        if env is None:
            if observation_space is None or action_space is None:
                raise ValueError("without an env, pass observation_space and action_space (e.g. from a Dataset)")
            self.observation_space, self.action_space, self.n_envs = observation_space, action_space, 1
        for name, space in (("observation", self.observation_space), ("action", self.action_space)):
            if not isinstance(space, spaces.Box) or len(space.shape) != 1:
                raise ValueError(f"genzoo agents need a flat Box {name} space, got {space}")
        self.online_fraction = online_fraction
        self.action_horizon = action_horizon
        self.precision = precision
        self.normalize_observations = normalize_observations
        self.compile = compile
        self._compiled: dict[str, Any] = {}
        self.n_threads = n_threads
        self.offline_dataset_info: dict[str, Any] = {}
        self.config: dict[str, Any] = {}  # config.json of the checkpoint this agent was loaded from
        self.source_dir: Path | None = None
        self._trained_online = False  # learn() ran since construction / loading (a finetuned model, variant o2o)
        self._trained_since_load = False
        self._base_config: dict[str, Any] | None = None  # config of the checkpoint loaded to finetune (not resume)
        self._predict_state: tuple[np.ndarray, np.ndarray] | None = None
        self._info_sums: dict[str, torch.Tensor] = {}
        self._info_count = 0
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ construction
    @classmethod
    def check_arguments(cls, kwargs: dict[str, Any]) -> None:
        """Raise a ``ValueError`` naming the problem for constructor arguments this class does not take, or whose value
        is text where the default is a number or a flag (``--set alpha=abc``), before anything is built or loaded."""
        params: dict[str, inspect.Parameter] = {}
        for klass in cls.__mro__:
            if isinstance(klass, type) and issubclass(klass, GenerativeAgent) and "__init__" in vars(klass):
                for name, param in inspect.signature(klass.__init__).parameters.items():
                    if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL) and name not in ("self", "policy"):
                        params.setdefault(name, param)
        for name, value in kwargs.items():
            if name not in params:
                close = difflib.get_close_matches(name, params, n=3)
                hint = f"; did you mean {' or '.join(close)}?" if close else f"; it takes {', '.join(sorted(params))}"
                raise ValueError(f"{cls.__name__} has no argument {name!r}{hint}")
            default = params[name].default
            if isinstance(default, (bool, int, float)) and isinstance(value, str):
                raise ValueError(f"{cls.__name__}'s {name} is a {type(default).__name__} (default {default!r}); "
                                 f"got the text {value!r}")

    def make_policy(self) -> GenerativePolicy:
        """Build the method's policy (networks); subclasses pass their architecture arguments."""
        return self.policy_class(self.observation_space, self.action_space, self.action_horizon, **self.policy_kwargs)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam over all trainable online weights (FQL's single optimiser); methods override as needed."""
        return {"all": self.adam(p for n, p in self.policy.named_parameters() if not self._is_target_param(n))}

    def adam(self, params: Iterator[torch.nn.Parameter], lr: float | None = None) -> torch.optim.Adam:
        """Adam with the fused kernel where this torch build has one for the device (one kernel for all params)."""
        params = list(params)
        lr = self.lr_schedule(1.0) if lr is None else lr
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, ValueError):
            return torch.optim.Adam(params, lr=lr, foreach=True)

    def _is_target_param(self, name: str) -> bool:
        return any(name.startswith(f"{t}.") for t in self.policy.target_networks)

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.replay_buffer = TransitionBuffer(  # type: ignore[assignment]
            int(np.prod(self.observation_space.shape)),
            int(np.prod(self.action_space.shape)),
            online_capacity=self.buffer_size,
            device=self.device,
            online_fraction=self.online_fraction,
        )
        self.policy = self.make_policy().to(self.device)
        for _, target in self.policy.target_pairs():
            target.requires_grad_(False)
        self.policy.reset_targets()
        self.optimizers = self.make_optimizers()
        self._convert_train_freq()

    # ------------------------------------------------------------------ precision
    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast for forward passes when ``precision="bf16"``; a no-op for fp32."""
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ training step
    def compiled(self, fn: Any) -> Any:
        """``fn`` through ``torch.compile`` when ``compile=True`` (compiled once per bound method), else ``fn``."""
        if not self.compile:
            return fn
        key = getattr(fn, "__name__", repr(fn))
        if key not in self._compiled:
            # Dynamo keeps one cache per code object, shared by every agent of the process and, for a method that
            # compiles one graph per setting (MoMa QL's per-step-count Q term), by those graphs: past the default
            # limit (8) it falls back to eager silently.
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
            self._compiled[key] = torch.compile(fn)
        return self._compiled[key]

    # Up to this many observations per sampler call the compiled sampler wins (benchmarks/cpu_kernels.py:
    # Diffusion-QL N=5, 50 candidates, one thread: 2.0 vs 3.8 ms at 1 observation, 15.2 vs 17.3 ms at 8); at 32 it
    # already loses (75.8 vs 66.0 ms) and worse at 256, so large batches stay eager.
    COMPILED_SAMPLER_MAX_BATCH: ClassVar[int] = 8

    def compiled_sampler(self, batch_size: int = 1) -> Any:
        """``policy.sample_actions``, through ``torch.compile`` when ``compile=True`` and the batch is acting-sized.

        The noise draws stay eager (``policy.noise`` is excluded from the graph), so a compiled agent consumes the
        same random streams, per-row generators included, as an eager one; only fused-kernel rounding differs.
        """
        if not self.compile or batch_size > self.COMPILED_SAMPLER_MAX_BATCH:
            return self.policy.sample_actions
        if "sample_actions" not in self._compiled:
            policy = self.policy
            policy.noise = torch.compiler.disable(type(policy).noise.__get__(policy))
            self._compiled["sample_actions"] = torch.compile(policy.sample_actions)
        return self._compiled["sample_actions"]

    @abstractmethod
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One gradient step of the method on ``batch``; returns detached scalar tensors to log."""

    def optimize(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, max_grad_norm: float | None = None,
                 clip_apart: Sequence[torch.nn.Module] | None = None) -> None:
        """Backward and step; with ``max_grad_norm`` clip the global gradient norm of the optimiser's parameters, or
        of each module in ``clip_apart`` on its own (one optimiser holding networks whose gradients differ in scale)."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm is not None:
            groups = ([list(m.parameters()) for m in clip_apart] if clip_apart is not None
                      else [[p for g in optimizer.param_groups for p in g["params"]]])
            for params in groups:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()

    def update_targets(self, names: Sequence[str] | None = None, tau: float | None = None) -> None:
        """Polyak-average target networks toward their online networks (one fused op per module pair).

        ``names`` picks some of ``policy.target_networks`` (default: all) and ``tau`` overrides ``self.tau``, so a
        method can keep a Polyak critic target and an EMA actor on their own schedules (``1 - decay`` is the rate).
        """
        pairs = self.policy.target_networks.items() if names is None else [(n, self.policy.target_networks[n]) for n in names]
        rate = self.tau if tau is None else tau
        with torch.no_grad():
            for target, online in pairs:
                params = list(getattr(self.policy, target).parameters())
                torch._foreach_lerp_(params, list(getattr(self.policy, online).parameters()), rate)

    def update_ema(self, name: str, decay: float, every: int = 1, start: int = 0) -> None:
        """EMA of the target network ``name`` on the schedule of the Diffusion-QL / Consistency-AC code: every
        ``every`` updates from update ``start`` on (before that it keeps its initial weights)."""
        step = self._n_updates  # updates done before this one, the code's ``self.step``
        if step >= start and step % every == 0:
            self.update_targets([name], tau=1.0 - decay)

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        """SB3's hook: ``gradient_steps`` updates on batches from the buffer (offline and online rows)."""
        self.policy.set_training_mode(True)
        for _ in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, horizon=self.action_horizon)  # type: ignore[union-attr]
            if self.normalize_observations:
                batch["observations"] = self.policy.normalize(batch["observations"])
                batch["next_observations"] = self.policy.normalize(batch["next_observations"])
            info = self.update(batch)
            self._n_updates += 1
            # Sum on the device: no host sync in the hot loop, one at the log interval.
            for k, v in info.items():
                self._info_sums[k] = self._info_sums[k] + v if k in self._info_sums else v.clone()
            self._info_count += 1

    def _record_train_info(self) -> None:
        if self._info_count:
            for k, v in self._info_sums.items():
                self.logger.record(f"train/{k}", float(v) / self._info_count)
        self.logger.record("train/n_updates", self._n_updates)
        self._info_sums, self._info_count = {}, 0

    def dump_logs(self) -> None:
        self._record_train_info()
        super().dump_logs()

    # ------------------------------------------------------------------ offline training
    def load_offline_data(self, dataset: Dataset) -> None:
        """Put ``dataset`` into the buffer (checking it matches the agent's spaces)."""
        if not isinstance(dataset, Dataset):
            raise TypeError(
                f"learn_offline expects a genzoo Dataset (zoo.datasets.load(...) or Dataset.from_arrays(...)), "
                f"got {type(dataset).__name__}"
            )
        if dataset.observation_space.shape != self.observation_space.shape:
            raise ValueError(
                f"dataset observations have shape {dataset.observation_space.shape}, the agent expects "
                f"{self.observation_space.shape}"
            )
        if dataset.action_space.shape != self.action_space.shape:
            raise ValueError(
                f"dataset actions have shape {dataset.action_space.shape}, the agent expects {self.action_space.shape}"
            )
        recorded = self.offline_dataset_info.get("sha256")
        # A trained or loaded agent keeps the observation statistics its networks were trained with.
        keep_statistics = bool(recorded or self.offline_dataset_info) and (
            self._base_config is not None or self._n_updates > 0)
        if recorded and dataset.info.get("sha256") and dataset.info["sha256"] != recorded:
            warnings.warn(
                f"{dataset.dataset_id} (sha256 {dataset.info['sha256'][:12]}) is not the data this agent was trained on "
                f"({self.offline_dataset_info.get('id')}, sha256 {recorded[:12]}); the observation normalisation of the "
                "checkpoint is kept", stacklevel=2)
        # Dataset actions are clipped just inside the box, as in FQL's data pipeline (eps 1e-5).
        scaled = np.clip(self.policy.scale_action(dataset.actions), -1 + 1e-5, 1 - 1e-5).astype(np.float32)
        self.replay_buffer.load_dataset(dataset, scaled_actions=scaled)  # type: ignore[union-attr]
        if self.normalize_observations and not keep_statistics:
            mean = dataset.observations.mean(0)
            std = dataset.observations.std(0) + 1e-3
            self.policy.obs_mean.copy_(torch.as_tensor(mean))
            self.policy.obs_std.copy_(torch.as_tensor(std))
        self.offline_dataset_info = {"id": dataset.dataset_id, "rows": len(dataset), **{
            k: dataset.info[k] for k in ("sha256", "rebuilt") if k in dataset.info}}

    def learn_offline(
        self: SelfAgent,
        dataset: Dataset | None,
        n_steps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1000,
        progress_bar: bool = False,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "offline",
    ) -> SelfAgent:
        """Train for ``n_steps`` gradient steps on ``dataset`` (None: keep the data already loaded).

        Callbacks fire once per gradient step; ``self.num_timesteps`` counts gradient steps of this offline run,
        and with ``reset_num_timesteps=False`` continues from where a previous call (or a resumed run) stopped.
        Logs (``train/*``) are written every ``log_interval`` steps through the SB3 logger.
        """
        if dataset is not None:
            self.load_offline_data(dataset)
        elif len(self.replay_buffer) == 0:  # type: ignore[arg-type]
            raise ValueError("no offline data: pass a Dataset (zoo.datasets.load(...) or Dataset.from_arrays(...))")
        self._trained_since_load = True
        if reset_num_timesteps:
            self.num_timesteps = 0
        total = self.num_timesteps + int(n_steps)
        self._total_timesteps = total
        self._num_timesteps_at_start = self.num_timesteps
        self.start_time = time.time_ns()
        if not self._custom_logger:
            self._logger = configure_logger(self.verbose, self.tensorboard_log, tb_log_name, reset_num_timesteps)
        callback = self._offline_callback(callback, progress_bar)
        total_timesteps = total  # noqa: F841  (SB3 callbacks read locals()["total_timesteps"])
        callback.on_training_start(locals(), globals())
        while self.num_timesteps < total:
            self.train(gradient_steps=1, batch_size=self.batch_size)
            self.num_timesteps += 1
            callback.update_locals(locals())
            if not callback.on_step():
                break
            if log_interval and self.num_timesteps % log_interval == 0:
                self._record_train_info()
                elapsed = max((time.time_ns() - self.start_time) / 1e9, 1e-9)
                self.logger.record("time/gradient_steps_per_s", (self.num_timesteps - self._num_timesteps_at_start) / elapsed)
                self.logger.record("time/gradient_steps", self.num_timesteps)
                self.logger.dump(step=self.num_timesteps)
        callback.on_training_end()
        return self

    def _offline_callback(self, callback: MaybeCallback, progress_bar: bool) -> BaseCallback:
        if isinstance(callback, list):
            callback = CallbackList(callback)
        if not isinstance(callback, BaseCallback):
            callback = ConvertCallback(callback)
        if progress_bar:
            callback = CallbackList([callback, _GradientStepProgressBar()])
        callback.init_callback(self)
        return callback

    # ------------------------------------------------------------------ online training
    def learn(  # type: ignore[override]
        self: SelfAgent,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
        keep_offline_data: bool = True,
    ) -> SelfAgent:
        """SB3's online ``learn()``. An agent trained offline (after ``learn_offline``, ``load`` or
        ``from_pretrained``) keeps its dataset in the buffer beside the online transitions, as offline-to-online
        finetuning does (FQL, RLPD): a loaded agent's dataset is read from disk first (``zoo.datasets.load``, once
        ``zoo.datasets`` is imported, as ``zoo.load`` does; a missing file raises with the ``genzoo data build``
        command; user data, which checkpoints do not store, raises with how to pass it). ``keep_offline_data=False``
        trains on online transitions only. A buffer that already holds transitions is used as it is."""
        dataset_id = self.offline_dataset_info.get("id")
        if keep_offline_data and dataset_id and len(self.replay_buffer) == 0:  # type: ignore[arg-type]
            self.load_offline_data(load_dataset_by_id(dataset_id))
        self._trained_online = True
        self._trained_since_load = True
        return super().learn(total_timesteps, callback=callback, log_interval=log_interval, tb_log_name=tb_log_name,
                             reset_num_timesteps=reset_num_timesteps, progress_bar=progress_bar)

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: np.ndarray | None = None) -> None:
        # OGBench reports info["success"]; SB3 logs rollout/success_rate from info["is_success"].
        infos = [{**info, "is_success": info["success"]} if "success" in info and "is_success" not in info else info
                 for info in infos]
        super()._update_info_buffer(infos, dones)

    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        # SB3's version calls predict() without state, which would drop an action-chunk queue.
        if self.num_timesteps < learning_starts:
            action = np.array([self.action_space.sample() for _ in range(n_envs)])
        else:
            starts = self._last_episode_starts if self._last_episode_starts is not None else None
            action, self._predict_state = self.predict(
                self._last_obs, state=self._predict_state, episode_start=starts, deterministic=False
            )
        buffer_action = self.policy.scale_action(action)
        return action, buffer_action

    def _store_transition(self, replay_buffer: Any, buffer_action: np.ndarray, new_obs: Any, reward: np.ndarray,
                          dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        next_obs = np.array(new_obs, dtype=np.float32, copy=True)
        terminal = np.zeros(len(dones), dtype=np.float32)
        for i, done in enumerate(dones):
            if done:
                if infos[i].get("terminal_observation") is not None:
                    next_obs[i] = infos[i]["terminal_observation"]
                terminal[i] = 0.0 if infos[i].get("TimeLimit.truncated", False) else 1.0
        self.replay_buffer.add(self._last_obs, next_obs, buffer_action, reward, terminal, dones)  # type: ignore
        self._last_obs = new_obs
        self._last_episode_starts = np.asarray(dones, dtype=bool)

    # ------------------------------------------------------------------ acting
    def predict(  # type: ignore[override]
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        generators: list[torch.Generator] | None = None,
        **sampler: Any,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict``: one observation ``(obs_dim,)`` or a batch ``(n, obs_dim)``.

        ``deterministic=True`` feeds zero noise to the sampler. With action chunks (``action_horizon > 1``) the
        remaining actions of each env's chunk are carried in ``state`` and executed one per call; ``episode_start``
        (as SB3 loops pass it) drops a stale chunk. ``generators`` (CPU ``torch.Generator``, one per observation)
        make each row's action independent of the rest of the batch (noise from its own generator, networks run
        row by row), as the evaluation harness needs. ``sampler`` holds the method's knobs (e.g.
        ``sampling_steps``).
        """
        obs = np.asarray(observation, dtype=np.float32)
        expected = self.observation_space.shape
        single = obs.shape == expected
        if not single and (obs.ndim != len(expected) + 1 or obs.shape[1:] != expected):
            raise ValueError(
                f"observation has shape {obs.shape}; expected {expected} or a batch (n, {', '.join(map(str, expected))})"
            )
        batch = obs[None] if single else obs
        n, horizon, act_dim = len(batch), self.action_horizon, self.policy.act_dim
        if self.policy.training:
            self.policy.set_training_mode(False)

        if generators is not None and len(generators) != n:
            raise ValueError(f"got {len(generators)} generators for {n} observations")

        def sample(rows: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
            gens = None
            if generators is not None:
                gens = list(generators) if mask is None else [g for g, m in zip(generators, mask) if m]
            x = torch.as_tensor(rows, device=self.device)
            if self.normalize_observations:
                x = self.policy.normalize(x)
            # With per-row generators each row is also computed on its own: GEMM kernels reduce in a
            # batch-size-dependent order, so a row's action would otherwise change (by an ulp, then chaotically
            # over an episode) with what else is in the batch. One row at a time matches SB3's single-env loop.
            block = 1 if gens is not None else len(x)
            sample_actions = self.compiled_sampler(block)
            out = []
            try:
                with torch.inference_mode(), self.autocast():
                    for i in range(0, len(x), block):
                        if gens is not None:
                            self.policy._row_generators = gens[i:i + block]
                        out.append(sample_actions(x[i:i + block], deterministic=deterministic, **sampler))
            finally:
                self.policy._row_generators = None
            chunk = torch.cat(out)[: len(rows)]
            return chunk.float().cpu().numpy().reshape(len(rows), horizon, act_dim)

        if horizon == 1:
            scaled = sample(batch)[:, 0]
            next_state = None
        else:
            if state is None or len(state[0]) != n:
                queue, remaining = np.zeros((n, horizon, act_dim), np.float32), np.zeros(n, np.int64)
            else:
                queue, remaining = state[0].copy(), state[1].copy()
            if episode_start is not None:
                remaining[np.asarray(episode_start, dtype=bool).reshape(n)] = 0
            need = remaining <= 0
            if need.any():
                queue[need] = sample(batch[need], need)
                remaining[need] = horizon
            scaled = queue[np.arange(n), horizon - remaining]
            remaining -= 1
            next_state = (queue, remaining)
        actions = np.clip(self.policy.unscale_action(scaled), self.action_space.low, self.action_space.high)
        return (actions[0] if single else actions), next_state

    # ------------------------------------------------------------------ config and checkpoints
    def get_config(self) -> dict[str, Any]:
        """The JSON config of this agent (what ``config.json`` holds besides task and dataset)."""
        kwargs = {}
        for cls in type(self).__mro__:
            if not issubclass(cls, GenerativeAgent) or cls is GenerativeAgent or "__init__" not in vars(cls):
                continue
            for name, param in inspect.signature(cls.__init__).parameters.items():
                if param.kind is param.VAR_KEYWORD:
                    continue
                if name not in _NOT_ALGO_KWARGS and name not in kwargs and name != "policy_kwargs":
                    kwargs[name] = getattr(self, name)
        for name in ("learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "gradient_steps",
                     "online_fraction", "action_horizon", "precision", "normalize_observations", "compile"):
            kwargs.setdefault(name, getattr(self, name))
        kwargs["train_freq"] = int(self.train_freq.frequency) if hasattr(self.train_freq, "frequency") else self.train_freq
        json.dumps(kwargs)  # fail here, not in save(), if a kwarg is not JSON
        return {
            "algo": type(self).__name__,
            "algo_kwargs": kwargs,
            "observation_space": hub.space_to_json(self.observation_space),
            "action_space": hub.space_to_json(self.action_space),
        }

    def save(self, path: str | os.PathLike, exclude: Any = None, include: Any = None, **config: Any) -> Path:  # type: ignore[override]
        """Write ``model.safetensors`` + ``config.json`` to the directory ``path`` (no pickle).

        Extra keyword arguments (``task=...``, ``dataset=...``, ``training=...``) are merged into config.json; a
        loaded agent keeps the task, dataset and training record it was loaded with.
        """
        cfg = self.get_config()
        cfg["dataset"] = self.offline_dataset_info or None
        # steps: gradient steps offline (learn_offline counts them as timesteps), env steps online
        cfg["training"] = {"steps": int(self.num_timesteps), "seed": self.seed, "torch_version": torch.__version__,
                           "base_model": self.config.get("base_model")}  # set by e.g. QAM.init_from_bc
        base_training = (self._base_config or {}).get("training") or {}
        if self._base_config is not None and self._trained_since_load and self._trained_online:
            # finetuned online after loading (not resuming): a new model whose base is the loaded checkpoint
            cfg["training"].update(base_model=self.default_repo_id(self._base_config), variant="o2o",
                                   precision=self.precision,
                                   seed=self.seed if self.seed is not None else base_training.get("seed"))
            keep: tuple[str, ...] = ("task", "env_id")
        elif self._base_config is not None and self._trained_since_load:
            # trained further offline: the same model with more gradient steps
            cfg["training"] = {**base_training, "steps": int(base_training.get("steps") or 0) + self._n_updates}
            keep = ("task", "env_id", "dataset")
        else:
            keep = ("task", "env_id", "dataset", "training")
        for key in keep:
            if key in self.config:
                cfg[key] = self.config[key]
        cfg.update(config)
        return hub.write_checkpoint(path, self.policy.published_state_dict(), cfg)

    # ------------------------------------------------------------------ the Hub
    def sampler_settings(self) -> dict[str, Any]:
        """What ``predict`` does when called without sampler options (recorded with every evaluation)."""
        return {}

    def card_info(self, config: dict[str, Any], results: dict[str, Any] | None) -> dict[str, Any]:
        """What the model card needs from the method: paper, unofficial flag, choices, and the deviations of this
        checkpoint from the paper's setting (derived by comparing its config with ``paper_setting``)."""
        setting, training = self.paper_setting, config.get("training") or {}
        deviations = []
        for key, value in (setting.get("algo_kwargs") or {}).items():
            ours = config["algo_kwargs"].get(key)
            if ours != value:
                deviations.append(f"`{key}` = `{json.dumps(ours)}` (paper: `{json.dumps(value)}`)")
        if setting.get("steps") and training.get("steps") and training["steps"] != setting["steps"]:
            deviations.append(f"{training['steps']:,} gradient steps (paper: {setting['steps']:,})")
        if training.get("precision", "fp32") != "fp32":
            deviations.append(f"{training['precision']} autocast in forward passes; fp32 weights, optimiser and losses "
                              "(paper: fp32)")
        if (config.get("dataset") or {}).get("rebuilt"):
            deviations.append("dataset rebuilt locally with the original recipe and simulator (statistically, not "
                              "bitwise, the official file)")
        if setting.get("checkpoint"):
            deviations.append(f"score of the final checkpoint (paper: {setting['checkpoint']})")
        if setting.get("seeds"):
            deviations.append(f"one seed per checkpoint (paper: {setting['seeds']} seeds per task)")
        deviations += self.implementation_notes
        paper_score = ((results or {}).get("paper_scores") or {}).get(type(self).__name__)
        return {"paper": self.paper, "unofficial": self.unofficial, "choices": self.choices,
                "deviations": deviations, "paper_score": paper_score}

    def default_repo_id(self, config: dict[str, Any] | None = None) -> str:
        """``{org}/{algo}-{task}-seed{n}`` from a config (default: the one this agent was loaded with)."""
        config = self.config if config is None else config
        task = config.get("task") or "custom"
        training = config.get("training") or {}
        seed = training.get("seed", self.seed)
        return hub.repo_id(type(self).__name__, task, 0 if seed is None else seed, variant=training.get("variant"))

    def save_pretrained(self, save_directory: str | os.PathLike, repo_id: str | None = None,
                        results: dict[str, Any] | None = None, **config: Any) -> Path:
        """Write a Hub repo: weights, config.json, the model card (README.md), results.json and training_log.csv.

        ``results`` is an ``evaluation.evaluate`` record; by default the one this agent was loaded with (if any).
        Files of the source checkpoint (results, training log and its plot, replay video) are carried over unless the
        agent was trained further after loading (it is then a new model with that checkpoint as ``base_model``); the
        card shows ``replay.mp4`` when the directory has one (``zoo.catalog.bundle`` records it).
        """
        out = self.save(save_directory, **config)  # the directory written (``x.zip`` is written as ``x``)
        cfg = hub.read_config(out)
        # a model trained further since loading is not the source checkpoint: its score and log do not carry over
        source = None if self._trained_since_load and self._base_config is not None else self.source_dir
        if results is None and source is not None and (source / "results.json").is_file():
            results = json.loads((source / "results.json").read_text())
        if results is not None:
            (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        if source is not None and source.resolve() != out.resolve():
            for name in ("training_log.csv", "training_log.png", "replay.mp4"):
                if (source / name).is_file():
                    shutil.copyfile(source / name, out / name)
        repo = repo_id or self.default_repo_id(cfg)
        card = hub.render_card(repo, cfg, results, self.card_info(cfg, results), replay=(out / "replay.mp4").is_file())
        (out / "README.md").write_text(card)
        return out

    @classmethod
    def from_pretrained(cls: type[SelfAgent], repo_id_or_dir: str | os.PathLike, revision: str | None = None,
                        device: torch.device | str = "auto", env: GymEnv | None = None,
                        local_files_only: bool = False, **overrides: Any) -> SelfAgent:
        """Load from a directory or a Hub repo id (HF cache; the bundled copy when the Hub is unreachable)."""
        path = hub.resolve(repo_id_or_dir, revision=revision, local_files_only=local_files_only)
        return cls.load(path, env=env, device=device, **overrides)

    def push_to_hub(self, repo_id: str, commit_message: str | None = None, private: bool = False,
                    token: str | None = None, revision: str | None = None,
                    results: dict[str, Any] | None = None) -> str:
        """Upload this agent as a Hub repo (the files of :meth:`save_pretrained`); returns the commit URL."""
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp, repo_id=repo_id, results=results)
            return hub.push_folder(tmp, repo_id, commit_message=commit_message, private=private, token=token,
                                   revision=revision)

    def save_training_state(self, path: str | os.PathLike) -> Path:
        """Write ``training_state.safetensors``: targets, optimisers, RNG and counters, for exact resumption."""
        from safetensors.torch import save_file

        tensors: dict[str, torch.Tensor] = {}
        meta: dict[str, Any] = {"optimizers": {}}
        for target in self.policy.target_networks:
            for k, v in getattr(self.policy, target).state_dict().items():
                tensors[f"targets/{target}.{k}"] = v
        for name, opt in self.optimizers.items():
            sd = opt.state_dict()
            scalars = {}
            for idx, st in sd["state"].items():
                for key, val in st.items():
                    if torch.is_tensor(val):
                        tensors[f"optim/{name}/{idx}/{key}"] = val
                    else:
                        scalars[f"{idx}/{key}"] = val
            meta["optimizers"][name] = {"param_groups": sd["param_groups"], "scalars": scalars}
        tensors["rng/torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and self.device.type == "cuda":
            tensors["rng/cuda"] = torch.cuda.get_rng_state(self.device)
        tensors["counters"] = torch.tensor([self.num_timesteps, self._n_updates, self._episode_num], dtype=torch.int64)
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        target = path / hub.TRAINING_STATE_FILE
        tmp = target.with_name(f".{target.name}.tmp")
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata={"genzoo": json.dumps(meta)})
        os.replace(tmp, target)
        return target

    def load_training_state(self, path: str | os.PathLike) -> None:
        """Restore what :meth:`save_training_state` wrote (the weights come from ``model.safetensors``)."""
        from safetensors import safe_open

        file = Path(path) / hub.TRAINING_STATE_FILE
        tensors = hub.read_tensors(file)
        with safe_open(str(file), framework="pt") as f:
            meta = json.loads(f.metadata()["genzoo"])
        for target in self.policy.target_networks:
            prefix = f"targets/{target}."
            getattr(self.policy, target).load_state_dict(
                {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        for name, opt in self.optimizers.items():
            m = meta["optimizers"][name]
            state: dict[int, dict[str, Any]] = {}
            for k, v in tensors.items():
                if k.startswith(f"optim/{name}/"):
                    _, _, idx, key = k.split("/", 3)
                    state.setdefault(int(idx), {})[key] = v.to(self.device)
            for k, v in m["scalars"].items():
                idx, key = k.split("/", 1)
                state.setdefault(int(idx), {})[key] = v
            opt.load_state_dict({"state": state, "param_groups": m["param_groups"]})
        torch.set_rng_state(tensors["rng/torch"])
        if "rng/cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng/cuda"], self.device)
        self.num_timesteps, self._n_updates, self._episode_num = (int(x) for x in tensors["counters"])

    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfAgent],
        path: str | os.PathLike,
        env: GymEnv | None = None,
        device: torch.device | str = "auto",
        training_state: bool = False,
        **overrides: Any,
    ) -> SelfAgent:
        """Load a checkpoint directory written by :meth:`save` (never unpickles).

        ``overrides`` replace constructor arguments (e.g. ``precision="bf16"``, ``learning_starts=0``).
        ``training_state=True`` also restores ``training_state.safetensors`` when present (resuming a run).
        """
        tensors, config = hub.read_checkpoint(path)
        if config.get("algo") != cls.__name__ and cls is not GenerativeAgent:
            raise hub.CheckpointError(
                f"{path} holds a {config.get('algo')} checkpoint, not {cls.__name__}: use zoo.load(...) or "
                f"{config.get('algo')}.load(...)"
            )
        cls.check_arguments(overrides)
        kwargs = {**cls.checkpoint_defaults, **config["algo_kwargs"], **overrides}
        observation_space = hub.space_from_json(config["observation_space"])
        action_space = hub.space_from_json(config["action_space"])
        if env is not None:
            for name, ours in (("observation", observation_space), ("action", action_space)):
                theirs = getattr(env, f"{name}_space")
                if getattr(theirs, "shape", None) != ours.shape:
                    raise hub.CheckpointError(
                        f"{path} was trained on {config.get('task') or 'a task'} with {name} shape {ours.shape}; the env "
                        f"given has {getattr(theirs, 'shape', theirs)} (load it with that task's env: "
                        f"evaluation.get({config.get('task')!r}).make_env())"
                    )
        if not training_state and "compile" not in overrides:
            # compile records how a run trained; a loaded model acts eagerly (no compile wait on the first
            # predict) unless asked: load(..., compile=True). Resuming a run keeps the run's setting.
            kwargs["compile"] = False
        agent = cls(
            env=env,
            observation_space=observation_space,
            action_space=action_space,
            device=device,
            **kwargs,
        )
        agent.set_parameters(tensors)
        scored = hub.without_zip(path) / "results.json"
        if scored.is_file():  # the card's score belongs to these weights only if their digest matches
            recorded = json.loads(scored.read_text()).get("checkpoint_sha256")
            if recorded and recorded != hub.weights_sha256(hub.without_zip(path) / hub.WEIGHTS_FILE):
                warnings.warn(f"{path}: {hub.WEIGHTS_FILE} is not the file results.json scored (sha256 of its tensors "
                              "differs): the weights changed or were corrupted since; `genzoo eval` re-scores them",
                              stacklevel=2)
        agent.offline_dataset_info = config.get("dataset") or {}
        agent.config = config
        agent.source_dir = hub.without_zip(path)
        if not training_state:
            agent._base_config = config
            # SB3 restores the step count: learn(..., reset_num_timesteps=False) and callbacks count on from it
            agent.num_timesteps = int((config.get("training") or {}).get("steps") or 0)
        if training_state and (Path(path) / hub.TRAINING_STATE_FILE).exists():
            agent.load_training_state(path)
        return agent

    def set_parameters(  # type: ignore[override]
        self, load_path_or_dict: str | os.PathLike | dict[str, torch.Tensor], exact_match: bool = True,
        device: torch.device | str = "auto",
    ) -> None:
        """Load published weights from a checkpoint directory or a tensor dict (SB3's version unpickles a zip).

        The dict is flat (``model.safetensors``' names) or :meth:`get_parameters`' ``{"policy": {...}}``; with
        ``exact_match=False`` names this policy does not have are ignored and missing ones keep their values."""
        tensors = load_path_or_dict
        if not isinstance(tensors, dict):
            tensors, _ = hub.read_checkpoint(tensors)
        if isinstance(tensors.get("policy"), dict):  # SB3's get_parameters(): the whole policy, targets included
            full = self.policy.state_dict()
            policy = {k: v for k, v in tensors["policy"].items() if k in full or exact_match}
            for k, v in policy.items():
                if k in full and full[k].shape != v.shape:
                    raise hub.CheckpointError(f"tensor {k} has shape {tuple(v.shape)}, expected {tuple(full[k].shape)}")
            try:
                self.policy.load_state_dict(policy, strict=exact_match)
            except RuntimeError as err:
                raise hub.CheckpointError(f"weights do not match this {type(self).__name__}: {err}") from None
            return
        expected = self.policy.published_state_dict()
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        if exact_match and (missing or unexpected):
            raise hub.CheckpointError(
                f"weights do not match this {type(self).__name__}: missing {missing[:5]}, unexpected {unexpected[:5]} "
                "(was it saved with other network sizes?)"
            )
        tensors = {k: v for k, v in tensors.items() if k in expected}
        for k, v in tensors.items():
            if expected[k].shape != v.shape:
                raise hub.CheckpointError(f"tensor {k} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}")
        self.policy.load_state_dict({**self.policy.state_dict(), **tensors}, strict=True)
        self.policy.reset_targets()

    def save_replay_buffer(self, path: str | os.PathLike) -> None:  # type: ignore[override]
        """Save the replay buffer as safetensors (SB3's version pickles)."""
        from safetensors.torch import save_file

        path = Path(path)
        if path.suffix != ".safetensors":
            path = path.with_suffix(".safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.cpu() for k, v in self.replay_buffer.state_tensors().items()}, str(path))  # type: ignore

    def load_replay_buffer(self, path: str | os.PathLike, truncate_last_traj: bool = True) -> None:  # type: ignore[override]
        path = Path(path)
        if path.suffix != ".safetensors":
            if path.suffix in (".pkl", ".pickle"):
                raise hub.CheckpointError(f"{path} is a pickle: genzoo loads replay buffers from .safetensors only")
            path = path.with_suffix(".safetensors")
        self.replay_buffer.load_state_tensors(hub.read_tensors(path, device=str(self.device)))  # type: ignore
