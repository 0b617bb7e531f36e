#!/usr/bin/env bash
# The GPU check in one call on the device machine (issues 7 and 19); bench/gpu_check.py says what it measures.
#
# Before calling the device tool, in the repository root here:
#   bench/fetch_device_wheels.sh          # wheels of what the engine imports and the device image lacks, into .whl/
# then one call of the device tool (about 5 minutes; timeout_s 360 leaves room for a second call after a fix):
#   bash bench/gpu_check.sh               with carry [".whl"]
# The rows come back in $OUT/RESULTS-gpu.md, written as each is measured (a call stopped at its limit keeps what
# finished); append that file to bench/RESULTS.md here. The script appends it to the device's own copy as well.
# `bash bench/gpu_check.sh --dry-run` runs every stage on the CPU with tiny sizes (appended only where RESULTS_MD says).
# PYTHON (default python3) and WHEELS (default .whl) name the interpreter and the wheels (tests/bench does).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}
work=$(mktemp -d "${TMPDIR:-/tmp}/difftui-gpu-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" \
    "$WHEELS"/*.whl || { echo "gpu_check: the wheels in $WHEELS do not install" >&2; exit 2; }
  export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! $PY -c "import difftui.engine" 2>/dev/null; then
  # Not installed here: the three folders as one namespace, as pyproject's package-dir maps them.
  mkdir -p "$work/shim/difftui"
  for part in engine tui presets; do ln -s "$PWD/$part" "$work/shim/difftui/$part"; done
  export PYTHONPATH="$work/shim${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
results=${OUT:-$work}/RESULTS-gpu.md
$PY bench/gpu_check.py --results "$results" "$@"
code=$?
dry=0
for arg in "$@"; do [ "$arg" = "--dry-run" ] && dry=1; done
if [ -f "$results" ] && { [ $dry = 0 ] || [ -n "${RESULTS_MD:-}" ]; }; then
  cat "$results" >> "${RESULTS_MD:-bench/RESULTS.md}"
fi
exit $code
