#!/usr/bin/env bash
# Installs Debian's CUDA toolkit (nvcc, ptxas, cuda.h, libcuda stub) when nvcc or cuda.h is missing,
# and Boost.Context (the fibers of the host execution of kernels, tag cudaemu) with g++ when they
# are missing, and NumPy for the Python peers' checks (bench: the NumPy peer against the reference).
# Used by `make cuda-toolkit` and CI. Needs root (apt-get). Idempotent.
set -euo pipefail
have_cuda=no have_emu=no have_numpy=no
if command -v nvcc >/dev/null 2>&1 && [ -f /usr/include/cuda.h ]; then have_cuda=yes; fi
if command -v g++ >/dev/null 2>&1 && [ -f /usr/include/boost/context/fiber.hpp ]; then have_emu=yes; fi
if /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1; then have_numpy=yes; fi
if [ $have_cuda = yes ] && [ $have_emu = yes ] && [ $have_numpy = yes ]; then
  echo "cuda-toolkit: nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), cuda.h, g++, Boost.Context and NumPy present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "cuda-toolkit: missing and not root; install nvidia-cuda-toolkit, nvidia-cuda-dev, g++, libboost-context-dev and python3-numpy" >&2
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
apt-get install -y -qq --no-install-recommends nvidia-cuda-toolkit nvidia-cuda-dev g++ libboost-context-dev python3-numpy >/dev/null
echo "cuda-toolkit: installed nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), g++, Boost.Context and NumPy"
