#!/usr/bin/env bash
# test.sh - what `make test` (and CI) runs, after scripts/deps.sh:
#   1. the normal build (gcc, -Werror) and its ctest suite;
#   2. the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. the libFuzzer targets built with clang, run briefly over their seed corpora
#      (long runs: `make fuzz`).
# Every step runs even when an earlier one failed (a suite is skipped only when
# its own build failed); a summary of each step's result ends the output, and
# the exit status is non-zero if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
step() { printf '\n== %s\n' "$*"; }

results=()
failed=0
# run NAME FUNCTION: the function under `set -e` in a subshell; its result recorded
run() {
    local name=$1 rc
    step "$name"
    (
        set -e
        "$2"
    )
    rc=$?
    if [ "$rc" -eq 0 ]; then
        results+=("ok       $name")
    else
        results+=("FAILED   $name (exit $rc)")
        failed=1
    fi
    return "$rc"
}
skip() {
    step "$1"
    echo "skipped: $2"
    results+=("skipped  $1 ($2)")
    failed=1
}

normal_build() {
    cmake -S . -B build -G Ninja -DUSHER_WERROR=ON >/dev/null
    cmake --build build -j "$jobs"
}
normal_ctest() { (cd build && ctest --output-on-failure -j "$jobs"); }
asan_build() {
    cmake -S . -B build-asan -G Ninja -DUSHER_WERROR=ON -DUSHER_SANITIZE=ON \
          -DCMAKE_BUILD_TYPE=Debug >/dev/null
    cmake --build build-asan -j "$jobs"
}
asan_ctest() { (cd build-asan && ctest --output-on-failure -j "$jobs"); }
fuzz_build() {
    CC=clang cmake -S . -B build-fuzz -G Ninja -DUSHER_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    # every target the short run runs (fuzz.sh would otherwise build the rest itself)
    cmake --build build-fuzz -j "$jobs" --target $(scripts/fuzz.sh --targets)
}
fuzz_run() { scripts/fuzz.sh 30 build-fuzz; }

# (not `if run ...`: set -e would be ignored inside an if condition)
run "normal build" normal_build
if [ $? -eq 0 ]; then
    run "normal ctest" normal_ctest
else
    skip "normal ctest" "the normal build failed"
fi

run "ASan + UBSan build" asan_build
if [ $? -eq 0 ]; then
    run "ASan + UBSan ctest" asan_ctest
else
    skip "ASan + UBSan ctest" "the ASan build failed"
fi

run "libFuzzer build (clang)" fuzz_build
if [ $? -eq 0 ]; then
    run "libFuzzer short run" fuzz_run
else
    skip "libFuzzer short run" "the libFuzzer build failed"
fi

rm -f /tmp/mat-debug-*.log 2>/dev/null || true
step "summary"
printf '  %s\n' "${results[@]}"
if [ "$failed" -ne 0 ]; then
    step "some steps failed"
    exit 1
fi
step "all tests passed"
