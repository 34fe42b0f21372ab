#!/usr/bin/env bash
# accuracy-report.sh [BUILD_DIR] - regenerate docs/accuracy.md and the fitted
# rows of data/calibration.txt from data/measurements.csv (tools/accuracy).
# Then rebuild: the calibration table is embedded in usher.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cmake --build "$build" --target usher-accuracy >/dev/null
"$build/usher-accuracy" --measurements data/measurements.csv --zoo models/zoo \
    --report docs/accuracy.md --calibration-out data/calibration.txt
cmake --build "$build" >/dev/null
