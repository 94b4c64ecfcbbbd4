#!/usr/bin/env bash
# Builds granite (scripts/build.sh) and runs the whole test suite. Extra arguments go to ctest, e.g.
#   bash scripts/test.sh -R safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh build
source scripts/cpu_env.sh
ctest --test-dir build --output-on-failure -j2 --timeout 600 "$@"
