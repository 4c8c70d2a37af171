"""The wheel carries its package data: a fresh venv with only the wheel loads the bundled checkpoint."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import hub

REPO = Path(__file__).resolve().parent.parent
DEMO = "genzoo/fql-ogbench-cube-single-task1-seed0"


def test_wheel_installs_and_loads_the_bundled_checkpoint(tmp_path):
    assert DEMO in hub.bundled_ids(), "the demo checkpoint must be bundled in zoo/checkpoints"
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(REPO)],
                   check=True, capture_output=True)
    wheel = next(dist.glob("genzoo-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    # Dependencies come from this environment through a plain path line (which does not activate the editable
    # install of genzoo that lives there), so the packages imported below are the wheel's.
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = (
        "import numpy as np, zoo, agents, hub, evaluation\n"
        "assert 'site-packages' in zoo.__file__, zoo.__file__\n"
        f"a = zoo.load({DEMO!r})\n"
        "assert 'site-packages' in str(hub.resolve(" + repr(DEMO) + "))\n"
        "print(type(a).__name__, a.predict(np.zeros(28, np.float32), deterministic=True)[0].shape)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    out = subprocess.run([str(py), "-c", code], cwd=tmp_path, check=True, capture_output=True, text=True, env=env)
    assert "FQL (5,)" in out.stdout
    assert (venv / "bin" / "genzoo").is_file()
