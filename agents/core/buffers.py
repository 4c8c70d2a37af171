"""Replay storage that holds offline data and online transitions side by side, with action chunks.

SB3's ``ReplayBuffer`` stores observations twice in the env's dtype (float64 for OGBench) and cannot mix an
offline dataset with online transitions, so genzoo keeps its own: preallocated contiguous float32 tensors on the
training device, one gather per batch, and an optional fixed fraction of each batch drawn from the online part
(symmetric sampling as in RLPD, Ball et al. 2023, when the fraction is 0.5; plain append when it is None).

Chunks (horizon ``H``) follow the action-chunking recipe of QAM (Li & Levine, arXiv 2601.14234): row ``i`` yields
``actions[i:i+H]``, ``rewards[i:i+H]`` and the state ``H`` rows later; rows past the end of the trajectory are
marked invalid, and the bootstrap uses the last valid row's next observation and mask. Online rows of ``E`` envs
are written interleaved, so an env's next transition is ``E`` rows on (modulo the ring); each online row records
its write number, and a chunk step counts only if it is that env's next write (not a row yet to be written at the
write head, nor an older one the ring has not overwritten yet).
"""

from __future__ import annotations

import numpy as np
import torch

from agents.core.dataset import Dataset

_FIELDS = ("observations", "actions", "rewards", "next_observations", "masks", "episode_ends")


class TransitionBuffer:
    """Offline rows ``[0, n_offline)`` followed by a ring of online rows.

    Args:
        obs_dim, act_dim: flat sizes.
        online_capacity: rows reserved for online transitions (oldest overwritten when full).
        device: where the tensors live (sampling happens there).
        online_fraction: share of each batch drawn from online rows once there are any; ``None`` samples uniformly
            over everything stored (offline data simply extended).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        online_capacity: int = 0,
        device: torch.device | str = "cpu",
        online_fraction: float | None = None,
    ) -> None:
        if online_fraction is not None and not 0.0 <= online_fraction <= 1.0:
            raise ValueError(f"online_fraction must be in [0, 1] or None, got {online_fraction}")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.device = torch.device(device)
        self.online_capacity = int(online_capacity)
        self.online_fraction = online_fraction
        self.n_offline = 0
        self.n_online = 0  # rows currently filled in the online ring
        self.online_pos = 0  # next ring slot to write
        self.online_written = 0  # online rows written so far (the ring slot is this modulo the capacity)
        self.n_envs = 1  # rows per add(): the stride between an env's consecutive online transitions
        self.dataset_id: str | None = None
        self._alloc(0)

    def _alloc(self, n_offline: int) -> None:
        n = n_offline + self.online_capacity
        kw = dict(dtype=torch.float32, device=self.device)
        self.observations = torch.zeros((n, self.obs_dim), **kw)
        self.next_observations = torch.zeros((n, self.obs_dim), **kw)
        self.actions = torch.zeros((n, self.act_dim), **kw)
        self.rewards = torch.zeros(n, **kw)
        self.masks = torch.zeros(n, **kw)
        self.episode_ends = torch.ones(n, dtype=torch.bool, device=self.device)
        self.write_index = torch.full((self.online_capacity,), -1, dtype=torch.int64, device=self.device)
        self.n_offline, self.n_online, self.online_pos, self.online_written = n_offline, 0, 0, 0

    def __len__(self) -> int:
        return self.n_offline + self.n_online

    def load_dataset(self, dataset: Dataset, scaled_actions: np.ndarray | None = None) -> None:
        """Replace the offline part with ``dataset`` (online rows are dropped)."""
        n = len(dataset)
        self._alloc(n)
        acts = dataset.actions if scaled_actions is None else scaled_actions
        for name, array in (
            ("observations", dataset.observations),
            ("next_observations", dataset.next_observations),
            ("actions", acts),
            ("rewards", dataset.rewards),
            ("masks", dataset.masks),
        ):
            getattr(self, name)[:n] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        ends = dataset.episode_ends.copy()
        if n:
            ends[-1] = True  # a chunk never runs off the end of the data
        self.episode_ends[:n] = torch.from_numpy(ends)
        self.dataset_id = dataset.dataset_id

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminal: np.ndarray,
        episode_end: np.ndarray,
    ) -> None:
        """Append a batch of online transitions (one row per env)."""
        if self.online_capacity == 0:
            raise RuntimeError("this buffer has no online capacity; construct the agent with buffer_size > 0")
        self.n_envs = len(obs)
        for i in range(len(obs)):
            row = self.n_offline + self.online_pos
            self.observations[row] = torch.as_tensor(obs[i], dtype=torch.float32)
            self.next_observations[row] = torch.as_tensor(next_obs[i], dtype=torch.float32)
            self.actions[row] = torch.as_tensor(action[i], dtype=torch.float32)
            self.rewards[row] = float(reward[i])
            self.masks[row] = 1.0 - float(terminal[i])
            self.episode_ends[row] = bool(episode_end[i])
            self.write_index[self.online_pos] = self.online_written
            self.online_written += 1
            self.online_pos = (self.online_pos + 1) % self.online_capacity
            self.n_online = min(self.n_online + 1, self.online_capacity)

    def _sample_rows(self, batch_size: int, generator: torch.Generator | None) -> torch.Tensor:
        if len(self) == 0:
            raise RuntimeError("the buffer is empty: load a dataset or collect transitions first")
        n_on = 0
        if self.n_online and self.online_fraction is not None:
            n_on = int(round(batch_size * self.online_fraction)) if self.n_offline else batch_size
        dev = self.device
        parts = []
        if batch_size - n_on:
            if self.online_fraction is None:
                parts.append(torch.randint(0, len(self), (batch_size - n_on,), generator=generator, device=dev))
            else:
                parts.append(torch.randint(0, self.n_offline, (batch_size - n_on,), generator=generator, device=dev))
        if n_on:
            parts.append(self.n_offline + torch.randint(0, self.n_online, (n_on,), generator=generator, device=dev))
        rows = parts[0] if len(parts) == 1 else torch.cat(parts)
        # Online rows sit in a ring after the offline block; unfilled slots are never drawn since the ring
        # is filled from its start and n_online counts the filled slots.
        return rows

    def sample(
        self, batch_size: int, horizon: int = 1, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Draw a batch. With ``horizon == 1`` arrays are ``(B, ...)``; otherwise ``actions`` is ``(B, H, A)``,
        ``rewards`` / ``valid`` are ``(B, H)`` (rewards zeroed after a trajectory end), ``next_observations`` belong
        to the last valid row and ``masks`` is the minimum over the valid rows (a terminal inside the chunk stops
        the bootstrap), as in the ``sample_sequence`` of the Q-chunking / QAM code.
        """
        rows = self._sample_rows(batch_size, generator)
        if horizon == 1:
            return {
                "observations": self.observations[rows],
                "actions": self.actions[rows],
                "rewards": self.rewards[rows],
                "next_observations": self.next_observations[rows],
                "masks": self.masks[rows],
            }
        offsets = torch.arange(horizon, device=self.device)
        idx = (rows[:, None] + offsets).clamp_max(max(self.n_offline - 1, 0))  # offline: the next rows
        in_order = torch.ones_like(idx, dtype=torch.bool)
        if self.n_online:
            slot = (rows - self.n_offline).clamp_min(0)
            step = offsets * self.n_envs
            next_slot = (slot[:, None] + step) % self.online_capacity  # the same env's next transitions
            online = (rows >= self.n_offline)[:, None]
            idx = torch.where(online, self.n_offline + next_slot, idx)
            written_next = self.write_index[next_slot] == self.write_index[slot][:, None] + step
            in_order = torch.where(online, written_next, in_order)
        ends = self.episode_ends[idx]
        # valid[j] = step j is stored and no trajectory end lies strictly before it in the chunk
        ended_before = torch.cumsum(ends.int(), dim=1) - ends.int()
        valid = torch.cumprod(((ended_before == 0) & in_order).int(), dim=1).bool()
        last = idx.gather(1, (valid.sum(dim=1) - 1)[:, None]).squeeze(1)
        idx = torch.where(valid, idx, last[:, None])
        return {
            "observations": self.observations[rows],
            "actions": self.actions[idx],
            "rewards": self.rewards[idx] * valid,
            "next_observations": self.next_observations[last],
            "masks": self.masks[idx].amin(dim=1),  # invalid steps repeat the last valid row
            "valid": valid.float(),
        }

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything needed to restore the buffer exactly (for ``save_replay_buffer``): the filled rows only (the
        online ring fills from its start, so they are the first ``len(self)``)."""
        out = {f"buffer/{k}": getattr(self, k)[: len(self)].contiguous() for k in _FIELDS}
        out["buffer/counters"] = torch.tensor([self.n_offline, self.n_online, self.online_pos, self.online_capacity])
        out["buffer/write_index"] = self.write_index[: self.n_online].contiguous()
        out["buffer/stream"] = torch.tensor([self.online_written, self.n_envs])
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        n_offline, n_online, pos, cap = (int(v) for v in tensors["buffer/counters"])
        self.online_capacity = cap
        self._alloc(n_offline)
        for k in _FIELDS:
            saved = tensors[f"buffer/{k}"]
            getattr(self, k)[: len(saved)].copy_(saved)
        self.n_online, self.online_pos = n_online, pos
        if "buffer/write_index" in tensors:
            self.write_index[:n_online].copy_(tensors["buffer/write_index"])
            self.online_written, self.n_envs = (int(v) for v in tensors["buffer/stream"])
        else:  # saved before write numbers were kept (one env): the oldest row sits at the write position once wrapped
            slots = torch.arange(n_online, device=self.device)
            self.write_index[:n_online] = (slots - pos) % cap if n_online == cap else slots
            self.online_written, self.n_envs = n_online, 1


def chunk_td_terms(batch: dict[str, torch.Tensor], gamma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The terms of an ``H``-step (action-chunk) TD target ``y = R + discount * Q̄(s_{+H}, a')`` for a batch from
    :meth:`TransitionBuffer.sample`: ``R = Σ_i γ^i r_i`` over the valid steps, ``discount = γ^H · mask`` and the
    weight of each row in the critic loss (1 when the whole chunk lies inside one trajectory, the ``valid[..., -1]``
    of the Q-chunking / QAM code). With ``horizon == 1`` this is the one-step target with weight 1.
    """
    rewards, masks = batch["rewards"], batch["masks"]
    if rewards.dim() == 1:
        return rewards, gamma * masks, torch.ones_like(rewards)
    h = rewards.shape[1]
    powers = gamma ** torch.arange(h, device=rewards.device, dtype=rewards.dtype)
    return rewards @ powers, gamma**h * masks, batch["valid"][:, -1]
