"""Appending a script's table to its ``experiments/RESULTS-*.md`` under a UTC time-stamped heading (``--write``)."""

from __future__ import annotations

import time
from pathlib import Path


def append_section(results_name: str, table: str, folder: Path | None = None) -> Path:
    """Append ``table`` to ``<folder>/<results_name>`` (default: ``experiments/``) as a new ``## <UTC time>`` section;
    returns the file."""
    out = (Path(__file__).parent if folder is None else Path(folder)) / results_name
    with out.open("a") as f:
        f.write(f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n{table}\n")
    return out
