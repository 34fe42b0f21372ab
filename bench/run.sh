#!/usr/bin/env bash
# run.sh BUILD_DIR - the benchmarks of bench/README.md. Makes >= 100 MB
# real-weight models from the graph-only zoo (random weights; loading does
# not depend on the values) under bench/out/, then times them.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=bench/out
mkdir -p "$out"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
for m in resnet50 vgg16; do
    [ -f "$out/$m.onnx" ] || "$build/usher" convert "models/zoo/$m.onnx" "$out/$m.onnx" --fill-random 1
    "$build/bench/bench_load" "$out/$m.onnx" "${RUNS:-15}"
done
"$build/bench/bench_estimate" models/zoo
"$build/bench/bench_plan" models/zoo
"$build/bench/bench_plan" models/zoo --elastic
"$build/bench/bench_sim"
bench/serve.sh "$build"
bench/grpc_compare.sh "$build"
