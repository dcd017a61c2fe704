#!/usr/bin/env bash
# One GPU session's work in one command (run by the device tool from the repository root):
#   1. the compute stage's dependencies: installed from .whl/ (benchmarks/fetch_wheels.sh) with
#      `pip install --no-index` only if missing on the machine;
#   2. benchmarks/gpu_chunk.py: a self-check of under a minute, then paper-profile chunks in the
#      issues' priority order until MINUTES are up; results and a log come back under $OUT.
#
#   bash benchmarks/gpu_chunk.sh MINUTES [gpu_chunk.py options]
#
# MINUTES bounds the whole command, self-check included (give the device tool a timeout_s a
# little above it). Without $OUT (e.g. a CPU rehearsal), a temporary folder is used.
# CPU rehearsal with the smoke profile (minutes on a laptop):
#   OUT=$(mktemp -d) bash benchmarks/gpu_chunk.sh 6 --device cpu --profile smoke \
#     --chunks resnet_tiny:class:0 resnet_tiny:class:0:replicates --selfcheck-archs resnet_tiny \
#     --selfcheck-methods ft ga --throughput-archs resnet_tiny --throughput-batch 32 --throughput-steps 2
set -uo pipefail
STARTED=$(date +%s)
cd "$(dirname "$0")/.."
MINUTES=${1:?usage: bash benchmarks/gpu_chunk.sh MINUTES [gpu_chunk.py options]}
shift
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1 FAIRGAP_PROGRESS=0
PY=${PY:-python3}
NEEDED='import importlib.util as u; print(" ".join(m for m in ("sklearn", "scipy", "joblib", "threadpoolctl", "narwhals", "tqdm") if u.find_spec(m) is None))'
{
  echo "== gpu_chunk.sh $MINUTES $* (started $(date -u +%FT%TZ), output in $OUT)"
  export PYTHONPATH="$PWD"
  missing=$("$PY" -c "$NEEDED")
  if [ -n "$missing" ] || [ -n "${FAIRGAP_FORCE_WHEELS:-}" ]; then
    echo "missing here: ${missing:-none (install forced)}; installing the wheels of .whl/"
    if ! ls .whl/*.whl >/dev/null 2>&1; then
      echo "error: no .whl/ folder; run benchmarks/fetch_wheels.sh where pip works and carry .whl"
      exit 3
    fi
    SITE=${FAIRGAP_SITE:-/tmp/site}
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
      || exit 3
    export PYTHONPATH="$PWD:$SITE"
    missing=$("$PY" -c "$NEEDED")
    if [ -n "$missing" ]; then
      echo "error: still missing after installing .whl/: $missing (scipy: bash benchmarks/fetch_wheels.sh --scipy)"
      exit 3
    fi
  else
    echo "dependencies: all present"
  fi
  "$PY" benchmarks/gpu_chunk.py --minutes "$MINUTES" --started "$STARTED" --out "$OUT" "$@"
} 2>&1 | tee "$OUT/gpu_chunk.log"
exit "${PIPESTATUS[0]}"
