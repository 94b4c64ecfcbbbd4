#!/usr/bin/env bash
# Installs the Debian 12 packages granite needs to build and test, only those that are missing.
# Quiet when everything is already there; runs `apt-get update` first otherwise. Root, or a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev          # LibTorch 1.13.1 (CPU)
  libopenblas0-pthread  # LibTorch's BLAS: without it Debian's libblas3 is the reference (netlib) BLAS, ~20x slower
  libgloo-dev           # collectives for distributed training on CPU
  nlohmann-json3-dev
  libcli11-dev          # command-line parsing in apps/
  catch2                # Catch2 v2, the test framework
  libsentencepiece-dev sentencepiece
  libpcre2-dev libutf8proc-dev
  libarchive-dev        # .tar/.tar.gz inputs of granite-data
  libssl-dev            # SHA-256 (exact deduplication)
  libxxhash-dev         # shingle hashing (near deduplication)
  python3               # granite-eval runs the HumanEval / MBPP programs with it
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install_deps.sh: missing packages: ${missing[*]}" >&2
  echo "install_deps.sh: not root and no sudo; install them as root, then rerun." >&2
  exit 1
fi

echo "install_deps.sh: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
