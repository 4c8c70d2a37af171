"""``replay.mp4``: one evaluation episode of a policy, rendered offscreen, for its Hub repo.

MuJoCo renders headless through EGL or OSMesa (Debian packages ``libegl1`` / ``libosmesa6``). MuJoCo picks its
OpenGL backend from ``MUJOCO_GL`` when ``mujoco`` is first imported, so :func:`prefer_headless_gl` must run before
any env is built (the ``genzoo`` CLI calls it at start-up). Without a working renderer, :func:`record_replay`
returns ``None`` and says why, and the repo simply has no video (as rl-zoo3's ``package_to_hub`` does).

The episode is the task protocol's first evaluation episode (its seed, its ``deterministic`` setting), so the
video shows an episode that is part of the reported score. Frames are written at the env's control rate
(real time) with ``imageio``'s ffmpeg writer (H.264, ``yuv420p`` so browsers play it).
"""

from __future__ import annotations

import ctypes.util
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.tasks import get

VIDEO_FILE = "replay.mp4"


def prefer_headless_gl() -> None:
    """Select EGL for MuJoCo when nothing was chosen, there is no display and libEGL exists (call before importing
    ``mujoco``). Without libEGL (bare GPU or CPU servers) nothing is chosen: selecting EGL there would make every
    environment construction fail, whereas leaving it unset only disables rendering."""
    if ("MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY") and sys.platform.startswith("linux")
            and ctypes.util.find_library("EGL")):
        os.environ["MUJOCO_GL"] = "egl"
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def record_replay(
    policy: Any,
    task_id: str,
    path: str | os.PathLike,
    width: int = 256,
    height: int = 256,
    max_frames: int | None = None,
    seed: int | None = None,
    **sampler: Any,
) -> Path | None:
    """Render one episode of ``policy`` (anything with SB3's ``predict``) on ``task_id`` into ``path``.

    Returns the path, or ``None`` (with a warning naming the cause) when no offscreen renderer or video encoder
    is available. ``seed`` defaults to the protocol's first episode seed; ``max_frames`` caps the length.
    """
    task = get(task_id)
    seed = task.protocol.seed if seed is None else seed
    try:
        import imageio.v2 as imageio

        env = task.make_env(render_mode="rgb_array", width=width, height=height)
    except Exception as exc:  # noqa: BLE001  (a missing renderer surfaces as many exception types)
        warnings.warn(f"no replay video: cannot build a rendering env ({exc})", stacklevel=2)
        return None
    frames: list[np.ndarray] = []
    try:
        obs, _ = env.reset(seed=seed)
        task.check_env(env)
        state, start = None, np.ones((1,), dtype=bool)
        try:
            frames.append(np.asarray(env.render()))
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"no replay video: offscreen rendering failed ({type(exc).__name__}: {exc}); install "
                          "libegl1 or libosmesa6 and set MUJOCO_GL=egl or osmesa before importing mujoco", stacklevel=2)
            return None
        done = False
        while not done and (max_frames is None or len(frames) < max_frames):
            action, state = policy.predict(obs, state=state, episode_start=start,
                                           deterministic=task.protocol.deterministic, **sampler)
            start = np.zeros((1,), dtype=bool)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
            frames.append(np.asarray(env.render()))
        fps = env.metadata.get("render_fps") or round(1.0 / getattr(env.unwrapped, "dt", 0.05))
    finally:
        env.close()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        imageio.mimwrite(out, frames, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=16)
    except Exception as exc:  # noqa: BLE001  (no ffmpeg: imageio-ffmpeg missing)
        warnings.warn(f"no replay video: cannot encode mp4 ({exc}); pip install imageio-ffmpeg", stacklevel=2)
        out.unlink(missing_ok=True)
        return None
    return out
