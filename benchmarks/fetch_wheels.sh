#!/usr/bin/env bash
# Fill .whl/ (git-ignored) with the wheels the compute stage needs beyond torch, torchvision,
# numpy and pillow, for the GPU machine: python 3.12, manylinux x86_64. Run it here, where pip
# reaches a package index; the GPU machine reaches none, and benchmarks/gpu_chunk.sh installs
# from .whl/ with `pip install --no-index` only what it finds missing there.
#
#   bash benchmarks/fetch_wheels.sh            # scikit-learn, joblib, threadpoolctl, narwhals, tqdm (~10 MB)
#   bash benchmarks/fetch_wheels.sh --scipy    # and scipy (~35 MB: with the 18 MB data copy this passes
#                                              # the device tool's 64 MiB limit; only if scipy is missing)
#
# The versions are the ones the test suite runs with (pyproject's venv); the GPU image's
# numpy 2.x works with them. Never commit .whl/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
WANT=(scikit-learn==1.9.1 joblib==1.6.0 threadpoolctl==3.8.0 narwhals==2.29.0 tqdm==4.70.1)
if [ "${1:-}" = "--scipy" ]; then
  WANT+=(scipy==1.17.1)
fi
mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WANT[@]}"
# one version of each package: two stop the whole install on the GPU machine
dupes=$(ls .whl/*.whl | xargs -n1 basename | cut -d- -f1 | tr 'A-Z-' 'a-z_' | sort | uniq -d)
if [ -n "$dupes" ]; then
  echo "error: several versions in .whl/ of: $dupes; delete the old ones" >&2
  exit 1
fi
ls -la .whl
du -sh .whl
