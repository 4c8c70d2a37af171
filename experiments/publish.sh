#!/usr/bin/env bash
# Publish finished runs into the catalogue: bundle each model folder (Hub layout + card + replay), regenerate the
# committed leaderboard, and rewrite RESULTS.md's catalogue table (the lines from "| checkpoint |") from
# `genzoo list --markdown`. The issue sections of RESULTS.md are rebuilt with experiments/results_table.py.
#   bash experiments/publish.sh /work/runs/<run>/model [...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
for model in "$@"; do genzoo bundle "$model"; done
genzoo leaderboard
genzoo list --markdown > /tmp/genzoo-list.md
python - <<'PY'
from pathlib import Path

results = Path("RESULTS.md")
lines = results.read_text().split("\n")
start = next(i for i, line in enumerate(lines) if line.startswith("| checkpoint |"))
end = start
while end < len(lines) and lines[end].startswith("|"):
    end += 1
lines[start:end] = Path("/tmp/genzoo-list.md").read_text().strip().split("\n")
results.write_text("\n".join(lines))
PY
