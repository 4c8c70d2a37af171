#!/usr/bin/env bash
# One leased GPU machine, one command: push several runs of the plan (experiments/jobs.txt) as far as a deadline
# allows, then stop them gracefully and hand their run folders back, so the CPU queue resumes them where they stopped.
#
#   bash experiments/gpu_burst.sh DEADLINE_S DATASET RUN_NAME...   (at most 6 runs: a run folder packs to ~10 MB
#                                                                   and a lease hands back 64 MiB in all)
#
# 1. unpacks the carried Python packages (.gpu/site.tgz: py3.12 builds of mujoco, dm_control, ogbench, gymnasium,
#    stable-baselines3 that the GPU image lacks) into /tmp/site;
# 2. rebuilds DATASET there with every core (`genzoo data build`: deterministic whatever --workers is) and compares
#    its sha256 with .gpu/<DATASET>.manifest.json, the manifest of the copy on the CPU machine; a mismatch is
#    reported (the runs still train, and their config records the hash they saw);
# 3. starts, on the GPU and all at once, the jobs.txt line whose --out is $RUNS/RUN_NAME for each RUN_NAME, unchanged
#    but for `--device cuda` (so a CPU resume finds the same settings);
# 4. at DEADLINE_S seconds after its start sends them SIGTERM: each checkpoints the step it reached (zoo/train.py)
#    and exits 143; the run folders come back in $OUT/runs-K.tgz (at most 6: a lease returns 8 files), the log as
#    $OUT/burst.log. Unpack them into the CPU machine's run folder: `for f in runs-*.tgz; do tar xzf $f -C /work/runs; done`.
# Each segment of run.json records its device, so a card says which steps ran on the GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
deadline=$1 dataset=$2; shift 2
t0=$(date +%s)
OUT="${OUT:-/tmp/burst-out}" RUNS="${RUNS:-/tmp/runs}"
mkdir -p "$OUT" "$RUNS" /tmp/site
log="$OUT/burst.log"
say() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a "$log"; }

tar xzf .gpu/site.tgz -C /tmp/site || { say "cannot unpack .gpu/site.tgz"; exit 1; }
PY="${PY:-python3}"
# Cores from the affinity mask, read before OMP_NUM_THREADS=1 is exported: `nproc` honours OMP_NUM_THREADS and
# printed 1 on a 16-core lease (2026-11-27), which built the dataset on one core and spent the whole lease on it.
cores=$($PY -c 'import os; print(len(os.sched_getaffinity(0)))')
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 RUNS DEVICE="${DEVICE:-cuda}"  # DEVICE=cpu and BUILD_ARGS="--episodes 4": a dry run
say "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader) · $cores cores · $($PY -c 'import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())')"

# --- 2. the dataset, built with every core, checked against the CPU machine's copy
b0=$(date +%s)
# The build may use at most 60% of the deadline; past that it is stopped (its shards stay on a warm machine, so a
# second call at once finishes it in seconds). On a 16-core H200 cube-single took 227 s of episodes + ~20 s to write
# (2026-11-27; experiments/gpu_bursts/), which a cap of half a 475 s deadline cut off while writing.
timeout $(( deadline * 3 / 5 )) $PY -m zoo data build "$dataset" --workers "$cores" --seed 0 ${BUILD_ARGS:-} > "$OUT/build.out" 2>&1 \
  || { say "build failed or ran past 60% of the deadline"; tail -c 2000 "$OUT/build.out" | tee -a "$log"; exit 1; }
say "built $dataset in $(( $(date +%s) - b0 )) s"
$PY - "$dataset" <<'EOF' 2>&1 | tee -a "$log"
import json, sys
from pathlib import Path
name = sys.argv[1]
here = json.loads((Path.home() / ".ogbench/data" / f"{name}.manifest.json").read_text())["files"]
there = json.loads(Path(f".gpu/{name}.manifest.json").read_text())["files"]
for f in sorted(there):
    same = here.get(f, {}).get("sha256") == there[f]["sha256"]
    print(f"{f}: file sha256 {'matches the CPU machine copy' if same else 'differs from the CPU machine copy'}")
    # The file hash also covers zlib's output (it differed on the 2026-11-27 lease); the arrays' hash decides.
    if here.get(f, {}).get("arrays_sha256") and there[f].get("arrays_sha256"):
        same = here[f]["arrays_sha256"] == there[f]["arrays_sha256"]
        print(f"{f}: arrays {'EQUAL to' if same else 'DIFFER from'} the CPU machine copy's")
EOF

# --- 3. the runs, all at once on the GPU; a compile failure there falls back to eager instead of ending the run
cat > /tmp/site/gpu_launch.py <<'EOF'
import sys

import torch._dynamo

torch._dynamo.config.suppress_errors = True
from zoo.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
EOF
export TORCHINDUCTOR_COMPILE_THREADS=4  # six runs compile at once on 16 cores
declare -A pids
for name in "$@"; do
  line=$(grep -F -- "--out \$RUNS/$name" experiments/jobs.txt | grep -v '^#' | head -1)
  [[ -z "$line" ]] && { say "no jobs.txt line has --out \$RUNS/$name"; continue; }
  cmd="${line/genzoo /$PY /tmp/site/gpu_launch.py } --device $DEVICE"
  say "start $name: $cmd"
  bash -c "$cmd" > "$OUT/$name.out" 2>&1 &
  pids[$name]=$!
done

# --- 4. stop at the deadline, checkpointed; pack the run folders
while (( $(date +%s) - t0 < deadline )); do
  alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  (( alive )) || break
  sleep 5
done
say "deadline: SIGTERM to the runs still going"
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
for _ in $(seq 60); do
  alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  (( alive )) || break
  sleep 1
done
# The lease hands back at most 8 files (16 MiB each): the run folders travel in at most 6 tarballs, round robin.
i=0; declare -A packs
for name in "${!pids[@]}"; do
  wait "${pids[$name]}"; rc=$?
  steps=$($PY -c "import json; print(json.load(open('$RUNS/$name/run.json'))['segments'][-1])" 2>/dev/null)
  say "$name: exit $rc, last segment $steps"
  tail -3 "$OUT/$name.out" >> "$log"
  rm -f "$OUT/$name.out" "$RUNS/$name/model/replay.mp4"
  [[ -d "$RUNS/$name" ]] && packs[$(( i % 6 ))]+=" $name"; i=$(( i + 1 ))
done
for k in "${!packs[@]}"; do
  # shellcheck disable=SC2086  # the names are plain run folder names
  tar czf "$OUT/runs-$k.tgz" -C "$RUNS" ${packs[$k]}
  say "runs-$k.tgz:${packs[$k]} ($(du -k "$OUT/runs-$k.tgz" | cut -f1) KiB)"
done
rm -f "$OUT/build.out"
say "done"
