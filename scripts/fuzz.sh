#!/usr/bin/env bash
# fuzz.sh SECONDS [BUILD_DIR] - run the fuzzers (libFuzzer, ASan, UBSan):
# the ONNX loader for SECONDS over a scratch copy of fuzz/corpus, then the
# table parsers (GPU catalog, calibration), the YAML reader, the planner's
# input readers (cluster, workload, running plan), the OIP inference request
# parser (JSON + binary tensors, fuzz/corpus-oip) and the config.pbtxt reader
# (fuzz/corpus-config, fuzz/config.dict), the gzip / deflate body decoder
# (fuzz/corpus-gzip), the HTTP/1.1 layer over a loopback socket
# (fuzz/corpus-http) and the gRPC front end's message decoding
# (fuzz/corpus-grpc) for a tenth of that each. Crashes are
# written to fuzz/crashes/ and make the script fail; each one becomes a file
# in fuzz/regress/.
# `fuzz.sh --targets` prints the targets it runs (scripts/test.sh builds them).
set -euo pipefail
cd "$(dirname "$0")/.."
targets="fuzz_onnx_load fuzz_tables fuzz_yaml fuzz_plan fuzz_oip fuzz_config fuzz_gzip fuzz_http fuzz_grpc"
if [ "${1:-}" = --targets ]; then
    echo "$targets"
    exit 0
fi
secs=${1:-600}
dir=${2:-build-fuzz}
for t in $targets; do
    if [ ! -x "$dir/fuzz/$t" ]; then
        CC=clang cmake -S . -B "$dir" -G Ninja -DUSHER_FUZZ=ON >/dev/null
        cmake --build "$dir" --target $targets
        break
    fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp fuzz/corpus/*.onnx "$work"/
mkdir -p fuzz/crashes
ASAN_OPTIONS=detect_leaks=1 "$dir/fuzz/fuzz_onnx_load" "$work" -max_total_time="$secs" \
    -max_len=65536 -timeout=10 -rss_limit_mb=2048 -artifact_prefix=fuzz/crashes/ \
    -print_final_stats=1 2>&1 | tail -n 25
tables=$(mktemp -d)
printf '\001' | cat - data/gpus.csv > "$tables/catalog"
printf '\000' | cat - data/calibration.txt > "$tables/calibration"
ASAN_OPTIONS=detect_leaks=1 "$dir/fuzz/fuzz_tables" "$tables" -max_total_time=$((secs / 10 + 1)) \
    -max_len=65536 -timeout=10 -artifact_prefix=fuzz/crashes/ -print_final_stats=1 2>&1 | tail -n 5
rm -rf "$tables"
for t in yaml plan oip config gzip http grpc; do
    scratch=$(mktemp -d)
    cp fuzz/corpus-$t/* "$scratch"/
    len=8192
    extra=()
    if [ "$t" = grpc ]; then
        len=65536 # messages with raw tensors
    elif [ "$t" = oip ]; then
        len=65536 # request bodies with binary tensors
        extra=(-dict=fuzz/oip.dict)
    elif [ "$t" = config ]; then
        extra=(-dict=fuzz/config.dict)
    fi
    ASAN_OPTIONS=detect_leaks=1 "$dir/fuzz/fuzz_$t" "$scratch" -max_total_time=$((secs / 10 + 1)) \
        "${extra[@]}" -max_len=$len -timeout=10 -artifact_prefix=fuzz/crashes/ -print_final_stats=1 2>&1 |
        tail -n 5
    rm -rf "$scratch"
done
rmdir fuzz/crashes 2>/dev/null || true
