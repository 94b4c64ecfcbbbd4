#!/usr/bin/env bash
# Configures (first time only, or again when GRANITE_CMAKE_ARGS is set) and builds granite.
#   bash scripts/build.sh [BUILD_DIR]      BUILD_DIR defaults to build/ in the repository root
#   GRANITE_CMAKE_ARGS="-DGRANITE_BUILD_BENCHMARKS=ON" bash scripts/build.sh
set -euo pipefail
# A BUILD_DIR given on the command line is relative to the caller's directory.
build_dir=${1:-}
if [[ -n "$build_dir" && "$build_dir" != /* ]]; then build_dir="$PWD/$build_dir"; fi
cd "$(dirname "$0")/.."
build_dir=${build_dir:-build}

extra_args=()
if [[ -n "${GRANITE_CMAKE_ARGS:-}" ]]; then read -r -a extra_args <<<"$GRANITE_CMAKE_ARGS"; fi

if [[ ! -f "$build_dir/build.ninja" || ${#extra_args[@]} -gt 0 ]]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${extra_args[@]}"
fi
cmake --build "$build_dir" -j"$(nproc)"
