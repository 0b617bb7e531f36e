#!/usr/bin/env bash
# The GPU check in one call on the device machine (issue 7); see bench/gpu_check.py for what it measures.
#
# Before calling the device tool, in the repository root here:
#   bench/fetch_device_wheels.sh          # wheels of what the engine needs and the device image lacks, into .whl/
# then run (device tool, one call, timeout_s 560):
#   bash bench/gpu_check.sh               with carry [".whl"]
# and copy the table it appended to bench/RESULTS.md there ($OUT/RESULTS-gpu.md comes back) into bench/RESULTS.md.
# `bash bench/gpu_check.sh --dry-run` runs every stage on the CPU with tiny sizes.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/difftui-site .whl/*.whl \
    && export PYTHONPATH="/tmp/difftui-site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! $PY -c "import difftui.engine" 2>/dev/null; then
  # Not installed here: the three folders as one namespace, as pyproject's package-dir maps them.
  shim=/tmp/difftui-shim/difftui
  mkdir -p "$shim"
  for part in engine tui presets; do ln -sfn "$PWD/$part" "$shim/$part"; done
  export PYTHONPATH="/tmp/difftui-shim${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
results=${OUT:-/tmp}/RESULTS-gpu.md
$PY bench/gpu_check.py --results "$results" "$@"
code=$?
cat "$results" >> "${RESULTS_MD:-bench/RESULTS.md}"
exit $code
