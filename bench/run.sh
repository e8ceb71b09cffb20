#!/usr/bin/env bash
# Run the benchmark suite: bench/run.sh [AIRLOCK_BIN]
#
# One invocation per tool over each whole folder of bench/data/ (wall time and peak RSS via
# /usr/bin/time -v, exit codes, verdict counts parsed from each tool's report), then warm-cache
# `cat` vs Airlock on each 1 GB checkpoint, Airlock's single-thread pickle throughput, and the
# conversion comparison (airlock convert vs torch.load + safetensors save_file vs cp), and the
# issue-4 folder of non-pickle formats (cat vs airlock vs ModelAudit, picklescan, modelscan).
# Writes bench/out/results-<date>.md and prints it.
#
# Without AIRLOCK_BIN only the peers are run. Selection through the environment:
#   TOOLS="airlock picklescan modelscan fickling modelaudit"  SETS="small medium large"
#   EXTRAS="warm pickle500 convert formats"  TIMEOUT=3600 (seconds per invocation)
#   FORMATS_RUNS=5 (runs of cat and of airlock on formats/, medians reported)
#   SAMPLE="modelaudit:10" (that tool scans every 10th file; reported with an extrapolation)
#   FOLDER_RUNS=5 QUICK_RUN_S=2 (folder scans shorter than QUICK_RUN_S s are run FOLDER_RUNS times,
#   medians reported)  WARM_RUNS=21 (runs of cat and airlock per warm checkpoint)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ ! -x /usr/bin/time ]]; then
  echo "installing GNU time (apt)..." >&2
  apt-get install -y time >/dev/null
fi
if ! command -v timeout >/dev/null; then
  echo "coreutils 'timeout' is required" >&2
  exit 2
fi
if [[ ! -d "$HERE/data" ]]; then
  echo "no bench/data: run bench/setup.sh && bench/.venv/data/bin/python bench/make_data.py first" >&2
  exit 2
fi
if [[ $# -ge 1 && ! -x "$1" ]]; then
  echo "airlock binary not found or not executable: $1" >&2
  exit 2
fi
exec python3 "$HERE/bench.py" "${1:-}"
