"""Golden checkpoints must keep loading and acting identically in every later release."""

import json
from pathlib import Path

import numpy as np
import torch

import zoo

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def test_format1_fql_acts_as_when_written():
    path = GOLDEN / "fql-format1"
    expected = json.loads((path / "expected.json").read_text())
    agent = zoo.load(path)
    obs = np.array(expected["observations"], np.float32)
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True)[0], np.array(expected["deterministic"], np.float32))
    torch.manual_seed(7)
    np.testing.assert_array_equal(agent.predict(obs)[0], np.array(expected["stochastic_seed7"], np.float32))
