#!/usr/bin/env bash
# Runs the cuda-tagged test binaries built by `make gpu-tests` on a machine with an NVIDIA GPU
# (no Go toolchain needed there) and prints a summary. Copied to build/gpu/run.sh.
#
#   build/gpu/run.sh                 all test binaries
#   BENCH=1 build/gpu/run.sh         also the benchmark binary (bench.test), full sweep
#   BENCH_FILTER=Normal BENCH=1 …    only benchmarks matching the pattern
#   LOG_DIR=/some/dir                where logs go (default: build/gpu/logs)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
logs=${LOG_DIR:-$here/logs}
mkdir -p "$logs"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "run-gpu-tests: no NVIDIA GPU answers (nvidia-smi): the cuda test binaries exit at start without one" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader | sed 's/^/gpu: /'
# make gpu-tests ships the binaries gzip-compressed; unpack them next to this script (or, when this
# folder is read-only, into the log folder) once.
bin_dir=$here
[ -w "$here" ] || bin_dir=$logs/bin
mkdir -p "$bin_dir"
for gz in "$here"/*.gz; do
  [ -e "$gz" ] || continue
  out=$bin_dir/$(basename "$gz" .gz)
  [ -x "$out" ] || { gzip -dc "$gz" >"$out" && chmod +x "$out"; }
done
pass=0 fail=0
summary=()
for bin in "$bin_dir"/*.test; do
  name=$(basename "$bin" .test)
  [ "$name" = bench ] && continue
  start=$(date +%s)
  if "$bin" -test.v -test.count=1 -test.timeout 20m >"$logs/$name.log" 2>&1; then
    status=PASS; pass=$((pass+1))
  else
    status=FAIL; fail=$((fail+1))
  fi
  secs=$(( $(date +%s) - start ))
  counts=$(grep -c '^--- PASS' "$logs/$name.log")/$(grep -c '^--- FAIL' "$logs/$name.log")/$(grep -c '^--- SKIP' "$logs/$name.log")
  summary+=("$(printf '%-22s %s  %4ss  top-level pass/fail/skip %s' "$name" "$status" "$secs" "$counts")")
  grep -E '^\s+\S+_test.go:[0-9]+: .*(max abs|GB/s|sm_)' "$logs/$name.log" | head -20 | sed "s/^/  [$name] /"
  if [ $status = FAIL ]; then
    if grep -q '^--- FAIL' "$logs/$name.log"; then
      grep -E -B2 -A12 '^--- FAIL' "$logs/$name.log" | head -60
    else
      tail -5 "$logs/$name.log" | sed "s/^/  [$name] /"   # died before or outside a test
    fi
  fi
done
if [ "${BENCH:-0}" = 1 ] && [ -x "$bin_dir/bench.test" ]; then
  echo "benchmarks → $logs/bench.txt"
  "$bin_dir/bench.test" -test.run '^$' -test.bench "${BENCH_FILTER:-.}" -test.benchtime "${BENCH_TIME:-1s}" | tee "$logs/bench.txt"
fi
echo
echo "== GPU test summary =="
printf '%s\n' "${summary[@]}"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
