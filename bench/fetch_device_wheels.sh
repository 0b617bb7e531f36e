#!/usr/bin/env bash
# Wheels for the device machine (Python 3.12, its own torch): what the engine imports and that image lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
plat="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $plat -d .whl \
  sqlite-utils==4.2.1 sqlite-fts4 click-default-group
ls -la .whl
