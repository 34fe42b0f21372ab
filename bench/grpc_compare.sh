#!/usr/bin/env bash
# grpc_compare.sh [BUILD_DIR] - gRPC beside HTTP (bench/README.md, "gRPC beside HTTP"):
# wakeword-hello of the example repository served alone, `bench_serve grpc` (the server
# in-process, C clients for both protocols, latency in alternating blocks and requests/s
# in rotating rounds, ratios to HTTP). Environment: ROUNDS (5), BLOCK (200 calls per
# latency block), ROUND_S (3 s per requests/s round), CONC (8 clients / in flight).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=bench/out/grpc
mkdir -p "$out"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(uname -r)"
scripts/example-repo.sh "$out/example" >/dev/null
rm -rf "$out/only"
mkdir -p "$out/only"
cp -r "$out/example/wakeword-hello" "$out/only/"
"$build/bench/bench_serve" grpc "$out/only" wakeword-hello --rounds "${ROUNDS:-5}" \
    --block "${BLOCK:-200}" --seconds "${ROUND_S:-3}" --conc "${CONC:-8}" \
    --exe "$build/usher" 2> >(grep -v "gRPC status 14" >&2) | tee "$out/summary.txt"
