#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running model: installs what is missing, builds, runs the main job.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Installing missing Debian packages"
bash scripts/install_deps.sh
echo "== Building (first build takes a while: LibTorch headers are heavy)"
bash scripts/build.sh build

generate=build/apps/granite-generate
model=tests/fixtures/hf/llama_mha_bias_tied
if [[ ! -x "$generate" ]]; then
  echo "quickstart.sh: $generate was not built" >&2
  exit 1
fi

echo
echo "== Greedy generation: 16 new tokens after prompt ids 5,17,42 from $model"
echo "   (a tiny random-weight Llama-style test model, so the ids are arbitrary but deterministic)"
"$generate" --model "$model" --prompt-ids 5,17,42 --max-new-tokens 16 --greedy --format json

echo
echo "== Sampled generation: same prompt, temperature 0.8, top-k 40, seed 1 (same seed, same ids)"
"$generate" --model "$model" --prompt-ids 5,17,42 --max-new-tokens 16 \
  --temperature 0.8 --top-k 40 --seed 1 --format json
