"""replay.mp4: a real offscreen render of a protocol episode, encoded as browser-playable H.264."""

from __future__ import annotations

import ctypes.util
import os

import numpy as np
import pytest

from evaluation.video import record_replay

HAS_RENDERER = os.environ.get("MUJOCO_GL") in ("egl", "osmesa") and ctypes.util.find_library(
    "EGL" if os.environ.get("MUJOCO_GL") == "egl" else "OSMesa") is not None


class ZeroPolicy:
    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.zeros(5, dtype=np.float32), state


@pytest.mark.skipif(not HAS_RENDERER, reason="no EGL/OSMesa library on this machine")
def test_replay_is_a_playable_video_of_the_episode(tmp_path):
    import imageio.v2 as imageio

    path = record_replay(ZeroPolicy(), "ogbench/cube-single-task1", tmp_path / "replay.mp4", width=64, height=64,
                         max_frames=6)
    assert path is not None and path.stat().st_size > 0
    reader = imageio.get_reader(path)
    meta = reader.get_meta_data()
    frames = [f for f in reader]
    assert meta["codec"] == "h264" and meta["fps"] == 20.0  # OGBench manipulation: 20 Hz control, real time
    assert len(frames) == 6 and frames[0].shape == (64, 64, 3)
    assert frames[0].std() > 0  # a scene, not a blank buffer


def test_no_renderer_means_no_video_and_a_reason(tmp_path, monkeypatch):
    from evaluation.tasks import Task

    def broken_env(self, **kwargs):
        raise RuntimeError("no OpenGL context")

    monkeypatch.setattr(Task, "make_env", broken_env)
    with pytest.warns(UserWarning, match="no replay video"):
        assert record_replay(ZeroPolicy(), "ogbench/cube-single-task1", tmp_path / "r.mp4") is None
    assert not (tmp_path / "r.mp4").exists()
