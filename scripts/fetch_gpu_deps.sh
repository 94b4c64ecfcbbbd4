#!/usr/bin/env bash
# Run on a Debian 12 (bookworm, amd64) machine with network: downloads into .deps/ (git-ignored) the .debs that the
# offline GPU machine lacks. scripts/gpu.sh unpacks them there with dpkg -x. Files already in .deps/ are kept.
# (libsentencepiece0 in bookworm links protobuf-lite statically: `apt-cache depends libsentencepiece0` lists only
# libc6, libgcc-s1 and libstdc++6, so no libprotobuf .deb is needed.)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(nlohmann-json3-dev libcli11-dev catch2 libsentencepiece-dev libsentencepiece0 sentencepiece
          libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libutf8proc-dev libutf8proc2
          libarchive-dev libarchive13 libssl-dev libssl3 libxxhash-dev)

arch=$(dpkg --print-architecture)
if [[ "$arch" != amd64 ]]; then
  echo "fetch_gpu_deps.sh: this machine is $arch; the GPU machine needs amd64 .debs" >&2
  exit 1
fi

mkdir -p .deps
cd .deps
for p in "${packages[@]}"; do
  if compgen -G "${p}_*.deb" >/dev/null; then continue; fi
  if ! apt-cache show "$p" >/dev/null 2>&1; then
    echo "fetch_gpu_deps.sh: apt does not know $p yet; running apt-get update"
    if [[ $(id -u) -eq 0 ]]; then apt-get update -q; else sudo apt-get update -q; fi
  fi
  echo "fetch_gpu_deps.sh: downloading $p"
  # apt-get download as root warns that the _apt user cannot write here; the download still succeeds.
  apt-get download -q "$p" 2> >(grep -v 'unsandboxed as root' >&2)
done
ls -1 ./*.deb
