"""Resolve a repo id or a directory to a local checkpoint directory.

Order: an existing directory is used as is; a repo id ``{org}/{name}`` resolves to the bundled copy shipped in
``zoo/checkpoints/{org}/{name}`` (found by path, so ``hub`` knows no agent class).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hub.files import CheckpointError

DEFAULT_ORG = "genzoo"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "zoo" / "checkpoints"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def repo_id(algo: str, task: str, seed: int, variant: str | None = None, org: str = DEFAULT_ORG) -> str:
    """The Hub id scheme ``{org}/{algo}-{task}[-{variant}]-seed{n}``; slashes in task ids become ``-``."""
    name = f"{algo.lower()}-{task.replace('/', '-')}"
    if variant:
        name += f"-{variant}"
    return f"{org}/{name}-seed{seed}"


def bundled_path(repo: str) -> Path:
    return BUNDLED_DIR / repo


def bundled_ids() -> list[str]:
    """Repo ids of every bundled checkpoint."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in BUNDLED_DIR.glob("*/*/config.json"))


def resolve(repo_or_dir: str | os.PathLike) -> Path:
    """Return a local directory holding the checkpoint ``repo_or_dir``."""
    path = Path(repo_or_dir).expanduser()
    if path.exists():
        return path
    text = str(repo_or_dir)
    if _REPO_ID.match(text):
        local = bundled_path(text)
        if (local / "config.json").is_file():
            return local
        raise CheckpointError(
            f"{text!r} is not a bundled checkpoint and the Hub cannot be reached from here; "
            f"bundled ids: {', '.join(bundled_ids()) or 'none'}"
        )
    raise CheckpointError(f"no checkpoint directory at {path} and {text!r} is not a repo id of the form org/name")
