#!/usr/bin/env bash
# From a fresh Debian 12 machine to a model trained here: installs what is missing, builds, then the main job --
#   1. prepare real code bundled with the project (207 CPython standard-library files) into token shards,
#   2. pretrain a tiny Granite (Llama family, 2 layers) on it on the CPU for a few minutes, FIM included,
#   3. generate a completion and a fill-in-the-middle infill from the trained checkpoint.
# Re-running resumes or reuses what is already there (runs/quickstart/).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Installing missing Debian packages"
bash scripts/install_deps.sh
echo "== Building (first build takes a while: LibTorch headers are heavy)"
bash scripts/build.sh build
source scripts/cpu_env.sh

run=runs/quickstart
tokenizer=data/tokenizers/starcoder/tokenizer.json
mkdir -p "$run"

echo
echo "== 1. Data: data/corpus/cpython-3.11-lib.tar.gz -> $run/shards (filters, dedup, PII redaction, tokenization)"
build/apps/granite-data prepare --input data/corpus/cpython-3.11-lib.tar.gz --output "$run/shards" \
  --tokenizer "$tokenizer" --quiet | python3 -c 'import json, sys; r = json.load(sys.stdin);
print("   %d files in, %d documents out, %d tokens, %d near duplicates" % (r["documents_in"], r["documents_out"],
      r["tokens_out"], r["near_duplicates"]))'

echo
echo "== 2. Pretraining the tiny model (configs/train/tiny-pretrain.json): 400 steps, FIM rate 0.5, alpha 0.5"
build/apps/granite-pretrain --config configs/train/tiny-pretrain.json
checkpoint=$(ls -d "$run"/pretrain/checkpoints/step-* | tail -1)
python3 - "$run/pretrain/metrics.jsonl" "$run"/shards/shard-*.bin <<'PY'
import array, collections, json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
mean = lambda part, key: sum(r[key] for r in part) / len(part)  # per-step losses are noisy: average them
first, last = rows[:10], rows[-50:]
print("   mean loss of the first 10 steps %.3f -> of the last 50 steps %.3f (CLM %.3f -> %.3f, FIM %.3f -> %.3f)"
      % (mean(first, "loss"), mean(last, "loss"), mean(first, "loss_clm"), mean(last, "loss_clm"),
         mean(first, "loss_fim"), mean(last, "loss_fim")))
counts = collections.Counter()
for path in sys.argv[2:]:
    tokens = array.array("H")
    tokens.frombytes(open(path, "rb").read())  # uint16 token ids (vocabulary < 65536)
    counts.update(tokens)
total = sum(counts.values())
entropy = -sum(c / total * math.log(c / total) for c in counts.values())
print("   unigram entropy of the data: %.3f nats/token (a model that ignores context can do no better)" % entropy)
PY

echo
echo "== 3a. Completion from $checkpoint"
build/apps/granite-generate --model "$checkpoint" --prompt $'import os\n\ndef ' --max-new-tokens 24 --greedy \
  --format text
echo
echo "== 3b. Infill (PSM prompt: <fim_prefix>prefix<fim_suffix>suffix<fim_middle>, the model writes the middle)"
build/apps/granite-generate --model "$checkpoint" \
  --prompt $'<fim_prefix>def __init__(self, name):\n    <fim_suffix>\n\n    def __repr__(self):\n        return self.name\n<fim_middle>' \
  --max-new-tokens 16 --greedy --format text
echo
