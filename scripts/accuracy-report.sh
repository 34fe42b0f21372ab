#!/usr/bin/env bash
# accuracy-report.sh [BUILD_DIR] - regenerate docs/accuracy.md, docs/accuracy-residuals.csv
# and the fitted rows of data/calibration.txt from data/measurements.csv (tools/accuracy):
# in-sample, leave-one-source-out, leave-one-GPU-architecture-out and
# leave-one-model-family-out, each held-out group predicted through the borrow path.
# The report names the commit of the kernel model (src/estimate) it was run with, and
# says so when that code had uncommitted changes. Then rebuild: the calibration table
# is embedded in usher. Takes minutes (several hundred fits of the timing model).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
kmodel="src/estimate/kmap.c src/estimate/ktime.c src/estimate/estimate.c src/estimate/kernels.h"
# shellcheck disable=SC2086
commit=$(git log -1 --format='%h (%cs)' -- $kmodel 2>/dev/null || echo unknown)
# shellcheck disable=SC2086
if ! git diff --quiet HEAD -- $kmodel 2>/dev/null; then
    commit="$commit plus uncommitted changes"
fi
cmake --build "$build" --target usher-accuracy >/dev/null
"$build/usher-accuracy" --measurements data/measurements.csv --zoo models/zoo \
    --report docs/accuracy.md --calibration-out data/calibration.txt \
    --residuals docs/accuracy-residuals.csv --kernel-commit "$commit"
cmake --build "$build" >/dev/null
