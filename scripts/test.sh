#!/usr/bin/env bash
# test.sh - what `make test` (and CI) runs, after scripts/deps.sh:
#   1. the normal build (gcc, -Werror) and its ctest suite;
#   2. the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. the libFuzzer targets built with clang, run briefly over their seed corpora
#      (long runs: `make fuzz`).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
step() { printf '\n== %s\n' "$*"; }

step "normal build"
cmake -S . -B build -G Ninja -DUSHER_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs")

step "ASan + UBSan build"
cmake -S . -B build-asan -G Ninja -DUSHER_WERROR=ON -DUSHER_SANITIZE=ON \
      -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && ctest --output-on-failure -j "$jobs")

step "libFuzzer build (clang) and a short run"
CC=clang cmake -S . -B build-fuzz -G Ninja -DUSHER_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzz_onnx_load fuzz_tables fuzz_yaml fuzz_plan fuzz_oip
scripts/fuzz.sh 30 build-fuzz

rm -f /tmp/mat-debug-*.log 2>/dev/null || true
step "all tests passed"
