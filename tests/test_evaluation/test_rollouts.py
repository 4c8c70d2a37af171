import time
from pathlib import Path

import numpy as np
import pytest

import hub
import zoo
from evaluation import evaluate, metrics, rollouts
from evaluation.rollouts import measure_latency

DEMO = "genzoo/fql-ogbench-cube-single-task1-seed0"


def test_bootstrap_ci_of_a_known_bernoulli_sample():
    x = np.array([1] * 40 + [0] * 10)
    s = metrics.summarize(x, scale=100)
    half = 196 * np.sqrt(0.8 * 0.2 / 50)  # normal approximation, in %
    assert s["mean"] == 80.0
    assert abs(s["ci_low"] - (80 - half)) < 2.5 and abs(s["ci_high"] - (80 + half)) < 2.5


def test_latency_excludes_warm_up():
    class Slow:
        calls = 0

        def predict(self, obs, deterministic=False, **kw):
            Slow.calls += 1
            if Slow.calls <= 3:
                time.sleep(0.05)
            return obs, None

    assert measure_latency(Slow(), np.zeros(3), calls=20, warmup=3) < 0.005


@pytest.mark.skipif(DEMO not in hub.bundled_ids(), reason="needs the bundled demo checkpoint")
def test_episode_records_do_not_depend_on_n_envs():
    agent = zoo.load(DEMO)
    one = evaluate(agent, "ogbench/cube-single-task1", seeds=[0, 1, 2, 3], n_envs=1)
    two = evaluate(agent, "ogbench/cube-single-task1", seeds=[0, 1, 2, 3], n_envs=4)
    assert one["episodes"] == two["episodes"]
    assert one["n_envs"] == 1 and two["n_envs"] == 4 and one["device"] == "cpu"
    assert one["device_name"].startswith("cpu:")  # the evaluating processor, for re-scoring bf16 cards


def test_cpu_info_reads_the_first_processor(tmp_path, monkeypatch):
    """The model name and bf16 flags come from /proc/cpuinfo's first processor; without the file, platform names it."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: sse avx512_bf16 amx_bf16\n\n"
                       "processor\t: 1\nmodel name\t: Other CPU\nflags\t\t: sse\n")
    real_path = Path
    monkeypatch.setattr(rollouts, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real_path(p))
    assert rollouts.cpu_info() == ("Test CPU", ["avx512_bf16", "amx_bf16"])
    assert rollouts.device_name("cpu") == "cpu:Test CPU (avx512_bf16, amx_bf16)"
    monkeypatch.setattr(rollouts, "Path", lambda p: tmp_path / "absent")
    name, flags = rollouts.cpu_info()
    assert name and flags == []
