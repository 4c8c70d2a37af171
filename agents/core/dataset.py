"""The offline dataset every agent trains on: flat transition arrays plus where they came from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces


@dataclass
class Dataset:
    """Offline transitions, one row per ``(s, a, r, s')``, in the layout OGBench and D4RL loaders return.

    Attributes:
        observations: ``(N, obs_dim)`` float32.
        actions: ``(N, act_dim)`` float32, in the env's action space.
        rewards: ``(N,)`` float32.
        next_observations: ``(N, obs_dim)`` float32.
        terminals: ``(N,)`` float32, 1 where the MDP really terminates (no bootstrapping: ``mask = 1 - terminal``).
        timeouts: ``(N,)`` float32, 1 where a trajectory was cut without terminating (time limit, end of file).
            A row with ``terminals or timeouts`` ends its trajectory; action chunks never cross it.
        observation_space, action_space: the spaces of the env the data belongs to.
        env_id: the Gymnasium id of the evaluation env, if any.
        dataset_id: a stable name (``cube-single-play-singletask-task1-v0``, ``user``...).
        info: provenance (manifest sha256, ``rebuilt`` flag, reference scores for normalisation, ...).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    observation_space: spaces.Box
    action_space: spaces.Box
    env_id: str | None = None
    dataset_id: str = "user"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.observations)
        for name in ("actions", "rewards", "next_observations", "terminals", "timeouts"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Dataset.{name} has {len(getattr(self, name))} rows, observations has {n}")
        obs_shape, act_shape = self.observation_space.shape, self.action_space.shape
        if self.observations.shape[1:] != obs_shape or self.next_observations.shape[1:] != obs_shape:
            raise ValueError(
                f"observations have shape {self.observations.shape[1:]} per row but the observation space is {obs_shape}"
            )
        if self.actions.shape[1:] != act_shape:
            raise ValueError(f"actions have shape {self.actions.shape[1:]} per row but the action space is {act_shape}")
        for name in ("rewards", "terminals", "timeouts"):
            if getattr(self, name).ndim != 1:
                raise ValueError(f"Dataset.{name} must be 1-D, got shape {getattr(self, name).shape}")

    def __len__(self) -> int:
        return len(self.observations)

    def __repr__(self) -> str:  # the dataclass default prints every array and the whole manifest
        return (f"Dataset({self.dataset_id!r}, {len(self):,} transitions, {int(self.terminals.sum()):,} terminals, "
                f"{int(self.timeouts.sum()):,} timeouts, obs {self.observation_space.shape}, "
                f"actions {self.action_space.shape}, env {self.env_id!r})")

    @property
    def masks(self) -> np.ndarray:
        """Bootstrap masks ``1 - terminals``."""
        return 1.0 - self.terminals

    @property
    def episode_ends(self) -> np.ndarray:
        """Boolean, True on the last row of each stored trajectory: a timeout, or a terminal after which the data does
        not continue. OGBench's single-task data runs on past a success (terminal for bootstrapping only), and an
        action chunk runs on with it, as the ``sample_sequence`` of the Q-chunking / QAM code does (its ``valid``
        follows trajectory ends; the success enters through the chunk's minimum mask)."""
        ends = self.timeouts > 0
        terminal = self.terminals > 0
        continues = np.zeros(len(self), dtype=bool)
        if len(self) > 1:
            continues[:-1] = (self.next_observations[:-1] == self.observations[1:]).all(axis=1)
        return ends | (terminal & ~continues)

    @classmethod
    def from_arrays(
        cls,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: np.ndarray,
        terminals: np.ndarray,
        timeouts: np.ndarray | None = None,
        observation_space: spaces.Box | None = None,
        action_space: spaces.Box | None = None,
        env_id: str | None = None,
        dataset_id: str = "user",
        info: dict[str, Any] | None = None,
    ) -> Dataset:
        """Build a dataset from a user's own arrays (cast to float32; spaces inferred when not given).

        ``timeouts`` defaults to marking only the last row, so the data is one trajectory unless terminals cut it.
        An inferred action space is the bounding box of the actions; an inferred observation space is unbounded.
        """
        obs = np.ascontiguousarray(observations, dtype=np.float32)
        act = np.ascontiguousarray(actions, dtype=np.float32)
        if obs.ndim != 2 or act.ndim != 2:
            raise ValueError(f"observations and actions must be 2-D (N, dim); got {obs.shape} and {act.shape}")
        n = len(obs)
        if timeouts is None:
            timeouts = np.zeros(n, dtype=np.float32)
            if n:
                timeouts[-1] = 1.0
        if observation_space is None:
            observation_space = spaces.Box(-np.inf, np.inf, shape=obs.shape[1:], dtype=np.float32)
        if action_space is None:
            low, high = act.min(axis=0), act.max(axis=0)
            action_space = spaces.Box(low, np.maximum(high, low + 1e-6), dtype=np.float32)
        return cls(
            observations=obs,
            actions=act,
            rewards=np.ascontiguousarray(rewards, dtype=np.float32).reshape(-1),
            next_observations=np.ascontiguousarray(next_observations, dtype=np.float32),
            terminals=np.ascontiguousarray(terminals, dtype=np.float32).reshape(-1),
            timeouts=np.ascontiguousarray(timeouts, dtype=np.float32).reshape(-1),
            observation_space=observation_space,
            action_space=action_space,
            env_id=env_id,
            dataset_id=dataset_id,
            info=dict(info or {}),
        )


# How ``learn()`` reads a loaded agent's dataset by its id. The loaders (OGBench / Minari files, rebuild hints) live in
# ``zoo.datasets``, a layer above the agents, which registers its ``load`` here when it is imported (``zoo.load`` does).
_dataset_loader: Callable[[str], Dataset] | None = None


def set_dataset_loader(loader: Callable[[str], Dataset] | None) -> None:
    """Register the function that loads a dataset by id (``zoo.datasets.load``)."""
    global _dataset_loader
    _dataset_loader = loader


def load_dataset_by_id(dataset_id: str) -> Dataset:
    """The dataset ``dataset_id`` through the registered loader, or a ValueError saying how to supply it."""
    if dataset_id == "user" or _dataset_loader is None:
        where = ("user data (Dataset.from_arrays), which a checkpoint does not store" if dataset_id == "user" else
                 f"{dataset_id!r}; import zoo.datasets (zoo.load does) so learn() can read it, or")
        raise ValueError(
            f"this agent was trained offline on {where}: call agent.load_offline_data(<that Dataset>) before learn() "
            "to keep it in the buffer, or learn(..., keep_offline_data=False) to train on online transitions only")
    return _dataset_loader(dataset_id)
