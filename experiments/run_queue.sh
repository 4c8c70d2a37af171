#!/usr/bin/env bash
# Runs the experiment plan (experiments/jobs.txt by default) one job at a time, pinned to one core with one torch
# thread, so the machine's other core stays free. Every job resumes from its own checkpoint, so the queue can be
# killed and restarted at any point: a line already finished (recorded in $RUNS/queue/done.txt) is skipped.
#   RUNS=/work/runs CORE=1 nohup bash experiments/run_queue.sh > /work/runs/queue/runner.out 2>&1 &
# Lines are shell commands run from the repository root; $RUNS in them is the run folder; '#' starts a comment.
set -uo pipefail
cd "$(dirname "$0")/.."
export RUNS="${RUNS:-/work/runs}" CORE="${CORE:-1}" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
JOBS="${1:-experiments/jobs.txt}"
mkdir -p "$RUNS/queue"
touch "$RUNS/queue/done.txt" "$RUNS/queue/failed.txt"
export PATH="$PWD/.venv/bin:$PATH"
while true; do
  job=""
  while IFS= read -r line; do
    line="${line%%#*}"; line="$(echo "$line" | sed 's/[[:space:]]*$//')"
    [[ -z "$line" ]] && continue
    grep -qxF -- "$line" "$RUNS/queue/done.txt" && continue
    grep -qxF -- "$line" "$RUNS/queue/failed.txt" && continue
    job="$line"; break
  done < "$JOBS"
  [[ -z "$job" ]] && { echo "$(date -Is) queue empty"; exit 0; }
  echo "$(date -Is) START $job" >> "$RUNS/queue/queue.log"
  start=$(date +%s)
  if taskset -c "$CORE" bash -c "$job" > "$RUNS/queue/current.out" 2>&1; then
    echo "$job" >> "$RUNS/queue/done.txt"
    echo "$(date -Is) DONE ($(( $(date +%s) - start )) s) $job" >> "$RUNS/queue/queue.log"
  else
    rc=$?
    if [[ $rc -eq 143 ]]; then  # the job was stopped by a signal and checkpointed: resume it on the next start
      echo "$(date -Is) STOPPED ($(( $(date +%s) - start )) s) $job" >> "$RUNS/queue/queue.log"
      exit 143
    fi
    echo "$(date -Is) FAIL rc=$rc ($(( $(date +%s) - start )) s) $job" >> "$RUNS/queue/queue.log"
    cp "$RUNS/queue/current.out" "$RUNS/queue/failed-$(date +%s).out"
    echo "$job" >> "$RUNS/queue/failed.txt"   # not retried until its line is deleted from failed.txt
  fi
done
