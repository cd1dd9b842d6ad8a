#!/usr/bin/env bash
# Installs Debian's CUDA toolkit (nvcc, ptxas, cuda.h, libcuda stub) when nvcc or cuda.h is missing.
# Used by `make cuda-toolkit` and CI. Needs root (apt-get). Idempotent.
set -euo pipefail
if command -v nvcc >/dev/null 2>&1 && [ -f /usr/include/cuda.h ]; then
  echo "cuda-toolkit: nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p') and cuda.h present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "cuda-toolkit: nvcc or cuda.h missing and not root; install nvidia-cuda-toolkit and nvidia-cuda-dev" >&2
  exit 1
fi
src=/etc/apt/sources.list.d/debian-contrib-non-free.sources
if [ ! -f "$src" ]; then
  cat >"$src" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends nvidia-cuda-toolkit nvidia-cuda-dev >/dev/null
echo "cuda-toolkit: installed nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
