#!/usr/bin/env bash
# overload.sh [SECONDS] [BUILD_DIR] - the long form of the overload and SIGTERM
# test (tests/test_serve_cli.sh, which `make test` runs with 4 s phases):
# each load phase lasts SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${2:-build}
USHER_BIN=$build/usher exec tests/test_serve_cli.sh "${1:-60}"
