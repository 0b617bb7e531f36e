#!/usr/bin/env bash
# Wheels of what the engine imports and the device machine's image lacks, for bench/gpu_check.sh.
#
# The image (Python 3.12, its own torch; bench/device_image_packages.txt lists its packages) has numpy,
# pillow, pyyaml, typer, rich, click, tabulate, python-dateutil, pluggy, nvidia-ml-py, scikit-learn, ... but not the
# config model's pydantic (with pydantic-core, annotated-types, typing-inspection; typing-extensions is carried in the
# version pydantic needs) nor the store's sqlite-utils (with sqlite-fts4, click-default-group). The versions are the
# ones pyproject's environment resolves today; tests/bench/test_gpu_check.py proves the set by running the dry run in
# an environment that has only the image's packages and these wheels (for its own CPython).
#
#   bench/fetch_device_wheels.sh                                  into .whl/, for CPython 3.12 on manylinux x86_64
#   WHEEL_DIR=DIR WHEEL_PYTHON=3.11 bench/fetch_device_wheels.sh  the same set for another CPython, into DIR
set -euo pipefail
cd "$(dirname "$0")/.."
WHEEL_DIR=${WHEEL_DIR:-.whl}
WHEEL_PYTHON=${WHEEL_PYTHON:-3.12}
WHEELS=(
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0
  sqlite-utils==4.2.1 sqlite-fts4==1.0.3 click-default-group==1.2.4
)
plat=()
for p in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 any; do plat+=(--platform "$p"); done
mkdir -p "$WHEEL_DIR"
rm -f "$WHEEL_DIR"/*.whl                            # one version of each: two would stop the whole install there
${PIP_PYTHON:-python3} -m pip download -q --no-deps --only-binary=:all: --python-version "$WHEEL_PYTHON" \
  --implementation cp "${plat[@]}" -d "$WHEEL_DIR" "${WHEELS[@]}"
ls "$WHEEL_DIR"
