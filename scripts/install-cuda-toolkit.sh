#!/usr/bin/env bash
# Installs Debian's CUDA toolkit (nvcc, ptxas, cuda.h, libcuda stub) when nvcc or cuda.h is missing,
# and Boost.Context (the fibers of the host execution of kernels, tag cudaemu) with g++ when they
# are missing. Used by `make cuda-toolkit` and CI. Needs root (apt-get). Idempotent.
set -euo pipefail
have_cuda=no have_emu=no
if command -v nvcc >/dev/null 2>&1 && [ -f /usr/include/cuda.h ]; then have_cuda=yes; fi
if command -v g++ >/dev/null 2>&1 && [ -f /usr/include/boost/context/fiber.hpp ]; then have_emu=yes; fi
if [ $have_cuda = yes ] && [ $have_emu = yes ]; then
  echo "cuda-toolkit: nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), cuda.h, g++ and Boost.Context present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "cuda-toolkit: missing and not root; install nvidia-cuda-toolkit, nvidia-cuda-dev, g++ and libboost-context-dev" >&2
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
apt-get install -y -qq --no-install-recommends nvidia-cuda-toolkit nvidia-cuda-dev g++ libboost-context-dev >/dev/null
echo "cuda-toolkit: installed nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), g++ and Boost.Context"
