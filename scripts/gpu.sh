#!/usr/bin/env bash
# Build and test on the GPU machine (Ubuntu 24.04, CUDA, PyTorch 2.x wheel, no internet):
#   bash scripts/gpu.sh [steps...]        steps: test (default), interop, tokenizer-fixtures, bench-tokenizer,
#                                         bench-data, bench-loader, bench-train, hf-baseline, bench-multi-gpu,
#                                         cuda-tests (only the [cuda] executable), bench-decode, profile-decode
#                                         (ncu's per-kernel times of one decode step), build (only)
# GRANITE_BUILD_TARGETS="granite_cuda_tests bench_decode" builds only those targets (a short device session);
# GRANITE_CMAKE_ARGS adds configure options (e.g. -DGRANITE_CUDA_KERNELS=OFF).
# Needs .deps/ from scripts/fetch_gpu_deps.sh (run on a Debian 12 machine with network, then carried along).
# The .debs are unpacked into $GRANITE_DEPS_PREFIX (default /opt/deps); LibTorch is the one inside the python3 wheel.
# Logs go to $OUT when it is set (else build-gpu/).
set -euo pipefail
cd "$(dirname "$0")/.."

steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(test)
for s in "${steps[@]}"; do
  case "$s" in
    build | test | interop | tokenizer-fixtures | bench-tokenizer | bench-data | bench-loader | bench-train | hf-baseline | bench-multi-gpu | cuda-tests | bench-decode | profile-decode) ;;
    *) echo "gpu.sh: unknown step '$s' (known: build, test, cuda-tests, interop, tokenizer-fixtures, bench-tokenizer, bench-data, bench-loader, bench-train, hf-baseline, bench-multi-gpu, bench-decode, profile-decode)" >&2; exit 2 ;;
  esac
done

section() { printf '\n==================== %s ====================\n' "$*"; }
build="build-gpu"
deps=${GRANITE_DEPS_PREFIX:-/opt/deps}
logs=${OUT:-$build}
mkdir -p "$build" "$logs"

section "Machine"
nvidia-smi -L || echo "gpu.sh: warning: nvidia-smi -L failed" >&2
if [[ -z "${CUDACXX:-}" ]]; then
  if command -v nvcc >/dev/null 2>&1; then
    CUDACXX=$(command -v nvcc)
  elif [[ -x /usr/local/cuda/bin/nvcc ]]; then
    CUDACXX=/usr/local/cuda/bin/nvcc
  fi
fi
if [[ -n "${CUDACXX:-}" ]]; then
  export CUDACXX
  echo "nvcc: $CUDACXX ($("$CUDACXX" --version | grep -o 'release [0-9.]*'))"
else
  echo "gpu.sh: warning: no nvcc on PATH or at /usr/local/cuda/bin" >&2
fi
python3 -c 'import torch; print("torch", torch.__version__, "| CUDA", torch.version.cuda,
                                "| cuda available:", torch.cuda.is_available())'
cmake --version | sed -n 1p
g++ --version | sed -n 1p

section "Dependencies from .deps/ into $deps"
shopt -s nullglob
debs=(.deps/*.deb)
if [[ ${#debs[@]} -eq 0 ]]; then
  echo "gpu.sh: no .deps/*.deb; run scripts/fetch_gpu_deps.sh on a Debian 12 machine and carry .deps/ here" >&2
  exit 1
fi
mkdir -p "$deps"
for deb in "${debs[@]}"; do
  echo "  $deb"
  dpkg -x "$deb" "$deps"
done
export PKG_CONFIG_PATH="$deps/usr/lib/x86_64-linux-gnu/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$deps"  # the .pc files say prefix=/usr
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

section "Configure + build $build"
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
# CMAKE_PREFIX_PATH given with -D is a CMake list: ';'-separated (a ':' would make it one nonexistent path).
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$deps/usr" \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DTORCH_CUDA_ARCH_LIST=9.0 -DGRANITE_BUILD_BENCHMARKS=ON \
  ${CUDACXX:+-DCMAKE_CUDA_COMPILER="$CUDACXX"} ${GRANITE_CMAKE_ARGS:-} 2>&1 | tee "$logs/configure.log"
targets=()
for t in ${GRANITE_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j16 "${targets[@]}" 2>&1 | tee "$logs/build.log"

# Real code for the benchmarks: this machine's Python standard library through granite-data prepare, once.
prepare_stdlib_code() {
  local data="$build/bench_loader_data"
  if [[ ! -f "$data/report.json" ]]; then
    "$build/apps/granite-data" prepare --quiet --output "$data" --tokenizer data/tokenizers/starcoder/tokenizer.json \
      --input "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')" >&2
  fi
  echo "$data"
}

failed=()
for s in "${steps[@]}"; do
  case "$s" in
    build) ;;  # done above
    test)
      section "Tests (ctest, [cuda] tests included on this CUDA build)"
      if ctest --test-dir "$build" --output-on-failure -j4 --timeout 600 2>&1 | tee "$logs/ctest.log"; then :; else
        failed+=(test)
      fi
      if [[ -n "${OUT:-}" && -f "$build/Testing/Temporary/LastTest.log" ]]; then
        cp "$build/Testing/Temporary/LastTest.log" "$OUT/LastTest.log"
      fi
      ;;
    cuda-tests)
      section "GPU tests only (granite_cuda_tests: [cuda])"
      "$build/tests/granite_cuda_tests" 2>&1 | tee "$logs/cuda_tests.log" || failed+=(cuda-tests)
      ;;
    bench-decode)
      section "Decode + prefill benchmark: granite (dynamic, CUDA graph) vs HF generate, Granite-3B-Code shape, bf16"
      nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$logs/bench_decode_gpu.txt"
      "$build/benchmarks/bench_decode" configs/models/granite-3b-code-base-2k.json 128 256 1,8 \
        | tee "$logs/bench_decode.jsonl" || failed+=(bench-decode)
      python3 benchmarks/hf_decode_baseline.py 128 256 1,8 | tee -a "$logs/bench_decode.jsonl" || failed+=(bench-decode)
      ;;
    profile-decode)
      section "Kernels of one decode step by Nsight Compute (3B shape, bf16, batch 1, eager static shapes, fused + packed)"
      ncu_bin=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1 || true)
      if [[ -z "$ncu_bin" ]]; then
        echo "gpu.sh: no ncu on PATH or under /opt/nvidia/nsight-compute" >&2
        failed+=(profile-decode)
      elif "$ncu_bin" --clock-control none --cache-control all --nvtx --nvtx-include "decode_step/" \
          --metrics gpu__time_duration.sum --csv --page raw \
          "$build/benchmarks/bench_decode" configs/models/granite-3b-code-base-2k.json 128 256 1 profile \
          >"$logs/ncu_decode_step.csv" 2>"$logs/ncu_decode_step.err"; then
        python3 benchmarks/summarize_ncu.py "$logs/ncu_decode_step.csv" | tee "$logs/ncu_decode_step.txt" \
          || failed+=(profile-decode)
      else
        tail -20 "$logs/ncu_decode_step.err" >&2
        failed+=(profile-decode)
      fi
      ;;
    tokenizer-fixtures)
      section "HF tokenizers reference ids (tests/fixtures/tokenizer/make_expected.py)"
      python3 tests/fixtures/tokenizer/make_expected.py || failed+=(tokenizer-fixtures)
      ;;
    bench-tokenizer)
      section "Tokenizer benchmark: granite vs HF tokenizers on the same real code, same machine"
      lscpu | grep -E "Model name|^CPU\(s\)" | tee "$logs/bench_tokenizer_cpu.txt"
      corpus="$build/code_corpus.jsonl"
      python3 benchmarks/make_code_corpus.py "$corpus" 20 \
        "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')" \
        "$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
      tok=data/tokenizers/starcoder/tokenizer.json
      python3 benchmarks/tokenizer_hf_baseline.py "$tok" "$corpus" "$build/hf_ids.jsonl" \
        | tee "$logs/bench_tokenizer_hf.jsonl" || failed+=(bench-tokenizer)
      "$build/benchmarks/bench_tokenizer" "$tok" "$corpus" "$build/hf_ids.jsonl" 1,2,4,8,16 \
        | tee "$logs/bench_tokenizer_granite.jsonl" || failed+=(bench-tokenizer)
      ;;
    bench-data)
      section "Data preparation benchmark: granite-data prepare on real code, 1..16 threads"
      lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core" | tee "$logs/bench_data_cpu.txt"
      python3 benchmarks/bench_data_prepare.py "$build/apps/granite-data" data/tokenizers/starcoder/tokenizer.json \
        "$build/bench_data" 1,2,4,8,16 \
        "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')" \
        "$(python3 -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')" \
        | tee "$logs/bench_data.jsonl" || failed+=(bench-data)
      ;;
    bench-loader)
      section "Loader benchmark: packed loader + FIM collator on one worker vs the Megatron-style Python equivalent"
      data=$(prepare_stdlib_code)
      tok=data/tokenizers/starcoder/tokenizer.json
      "$build/benchmarks/bench_loader" "$tok" "$data" 2048 8 50000000 | tee "$logs/bench_loader.jsonl" \
        || failed+=(bench-loader)
      python3 benchmarks/loader_python_baseline.py "$tok" "$data" 2048 8 1000000 | tee -a "$logs/bench_loader.jsonl" \
        || failed+=(bench-loader)
      ;;
    bench-train)
      section "Training benchmark: granite-pretrain, Granite-3B-Code config, random init, real code, one GPU"
      data=$(prepare_stdlib_code)
      nvidia-smi --query-gpu=name,memory.total,power.limit --format=csv | tee "$logs/bench_train_gpu.txt"
      python3 benchmarks/bench_train.py "$build" "$data" "$logs/bench_train" "${BENCH_TRAIN_STEPS:-300}" \
        | tee "$logs/bench_train.jsonl" || failed+=(bench-train)
      ;;
    bench-multi-gpu)
      section "Multi-GPU training: data parallel and fully sharded, ours vs PyTorch DDP / FSDP2, kill and resume"
      data=$(prepare_stdlib_code)
      gpus=$(nvidia-smi -L | wc -l)
      nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$logs/bench_multi_gpu_gpus.txt"
      python3 benchmarks/bench_multi_gpu.py "$build" "$data" "$build/bench_multi_gpu" "$gpus" \
        | tee "$logs/bench_multi_gpu.jsonl" || failed+=(bench-multi-gpu)
      ;;
    hf-baseline)
      section "HF transformers baseline (benchmarks/hf_baseline_train_decode.py): train step, decode, prefill"
      (cd "$logs" && OUT="$PWD" python3 "$OLDPWD/benchmarks/hf_baseline_train_decode.py") 2>&1 \
        | tee "$logs/hf_baseline.log" || failed+=(hf-baseline)
      ;;
    interop)
      section "HF interop (tests/fixtures/check_hf_interop.py)"
      if python3 tests/fixtures/check_hf_interop.py "$build" 2>&1 | tee "$logs/interop.log"; then :; else
        failed+=(interop)
      fi
      ;;
  esac
done

if [[ ${#failed[@]} -gt 0 ]]; then
  section "FAILED: ${failed[*]}"
  exit 1
fi
section "OK: ${steps[*]}"
