#!/usr/bin/env bash
# Keeps a copy of a running job's checkpoint (model + config, no optimiser state) each time its step count reaches a
# multiple of EVERY, as $RUNS/probes/<run>-<k>k-checkpoint, so a run's trajectory can be measured afterwards
# (experiments/gradient_balance.py, experiments/policy_probe.py) though the run keeps one checkpoint only.
#   RUNS=/work/runs nohup bash experiments/keep_checkpoints.sh momaql-cube-single-task1-seed0 > /work/runs/probes/keep.out 2>&1 &
# The step count is the end of the last segment in the run's run.json, which the trainer writes just before it swaps
# the new checkpoint folder in (zoo/train.py, Run.checkpoint);
# the watcher stops when the run's model/ (written at the end) appears.
set -uo pipefail
RUNS="${RUNS:-/work/runs}" EVERY="${EVERY:-10000}" POLL_S="${POLL_S:-60}"
run="$1" dir="$RUNS/$1"
mkdir -p "$RUNS/probes"
step() { python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['segments']; print(s[-1]['end'] if s else 0)" \
  "$dir/run.json" 2>/dev/null || echo 0; }
while [[ ! -d "$dir/model" ]]; do
  n=$(step)
  if (( n > 0 && n % EVERY == 0 )); then
    dest="$RUNS/probes/$run-$(( n / 1000 ))k-checkpoint"
    if [[ ! -d "$dest" ]]; then
      sleep 5  # run.json is written just before checkpoint-new is renamed into place: let the rename land
      mkdir -p "$dest.tmp" && cp "$dir/checkpoint/model.safetensors" "$dir/checkpoint/config.json" "$dest.tmp/" \
        && mv "$dest.tmp" "$dest" && echo "$(date -Is) kept $dest"
    fi
  fi
  sleep "$POLL_S"
done
echo "$(date -Is) $run finished; stopped"
