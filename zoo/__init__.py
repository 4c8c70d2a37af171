"""genzoo's zoo: datasets, training runs, the bundled checkpoints and the ``genzoo`` CLI.

Kept light: submodules are imported when used.
"""

from __future__ import annotations

import os
from typing import Any


def load(repo_or_dir: str | os.PathLike, env: Any = None, device: str = "auto", **overrides: Any) -> Any:
    """Load any genzoo checkpoint (a directory or a repo id) as an agent of the right class.

    The class comes from ``config.json``'s ``algo``; nothing is unpickled.
    """
    import hub
    import zoo.datasets  # noqa: F401  (registers the dataset loader learn() uses to keep a loaded agent's data)
    from agents import ALGOS

    path = hub.resolve(repo_or_dir)
    config = hub.read_config(path)
    algo = config.get("algo")
    if algo not in ALGOS:
        raise hub.CheckpointError(f"{path} holds an unknown algo {algo!r}; this genzoo knows {sorted(ALGOS)}")
    return ALGOS[algo].load(path, env=env, device=device, **overrides)


__all__ = ["load"]
