#!/usr/bin/env bash
# gpu-check.sh - the GPU checks of `usher serve` (docs/gpu-check.md), run on a
# machine with an NVIDIA GPU from an unpacked bundle (scripts/gpu-bundle.sh,
# where this file is check.sh): two models on GPU 0 with compute shares of
# 30 % and 70 %, enforced by MPS and then by CUDA green contexts, each
# model's observed batch latency beside the estimator's prediction for its
# share. Results go to $OUT (default ./gpu-out): gpu.txt, calibration.csv,
# estimate-*.json, metrics-*.txt, load-*.json, server-*.log, summary.txt.
#
# Written on a machine without a GPU: every step short of a GPU ran there
# (the bundle, the plan on CPU), the GPU steps never have.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/gpu-out}
port=${PORT:-8000}
secs=${SECS:-10}
mkdir -p "$out"
usher=$here/bin/usher
# the bundle's own libraries, then CUDA 13's: the toolkit's, and those of pip's
# nvidia-* packages (cuDNN, which the toolkit lacks)
libs=$here/lib:/usr/local/cuda/lib64
for d in $(find / -xdev \( -name 'libcudnn.so.9' -o -name 'libcublas.so.13' \) -printf '%h\n' \
           2>/dev/null | sort -u); do
    libs=$libs:$d
done
export LD_LIBRARY_PATH=$libs:${LD_LIBRARY_PATH:-}
log() { echo "gpu-check: $*" | tee -a "$out/summary.txt"; }

: >"$out/summary.txt"
if ! nvidia-smi -L >"$out/gpu.txt" 2>&1; then
    log "no GPU here (nvidia-smi failed): nothing to check"
    exit 2
fi
log "$(head -1 "$out/gpu.txt")"
gpu_type=${GPU_TYPE:-h100-sxm} # the catalog key (usher estimate --list-gpus)
"$usher" calibrate --gpu "$gpu_type" -o "$out/calibration.csv" >"$out/calibrate.txt" 2>&1 ||
    log "usher calibrate failed: $(tail -1 "$out/calibrate.txt")"
cal=()
[ -s "$out/calibration.csv" ] && cal=(--calibration "$out/calibration.csv")

# the estimator's prediction for each replica of the plan (share, batch)
for spec in wakeword-hello:1:30 ocr-cls:8:70; do
    IFS=: read -r m b s <<<"$spec"
    dims=()
    [ "$m" = ocr-cls ] && dims=(--dim p2o.DynamicDimension.1=48 --dim p2o.DynamicDimension.2=192)
    "$usher" estimate "$here/repo/$m/1/model.onnx" --gpu "$gpu_type" --batch "$b" --share "$s" \
        "${dims[@]}" --json "${cal[@]}" >"$out/estimate-$m.json" 2>&1 ||
        log "usher estimate $m failed: $(tail -1 "$out/estimate-$m.json")"
done

serve_and_load() { # MODE: start the server with the plan's shares as MODE, load both models
    local mode=$1 pid url
    "$usher" serve --repo "$here/repo" --plan "$here/plan-mps.yaml" --ort-lib "$here/ort/libonnxruntime.so" \
        --gpu-share "$mode" --http-port "$port" --log-level info >"$out/server-$mode.log" 2>&1 &
    pid=$!
    url=http://127.0.0.1:$port
    for _ in $(seq 600); do
        curl -sf "$url/v2/health/ready" >/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if ! curl -sf "$url/v2/health/ready" >/dev/null; then
        log "$mode: the server did not become ready: $(tail -3 "$out/server-$mode.log")"
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return
    fi
    # alone, then together: the shares should keep each model's latency apart
    "$usher" load --url "$url" --model wakeword-hello:200 --duration "$secs" --json \
        >"$out/load-$mode-wakeword-alone.json" 2>&1
    "$usher" load --url "$url" --model ocr-cls:100 --duration "$secs" --json \
        >"$out/load-$mode-ocr-alone.json" 2>&1
    "$usher" load --url "$url" --model wakeword-hello:200 --model ocr-cls:100 --duration "$secs" \
        --json >"$out/load-$mode-both.json" 2>&1
    curl -s "$url/metrics" >"$out/metrics-$mode.txt"
    kill -TERM "$pid"
    wait "$pid"
    log "$mode: observed mean batch latency (s): $(grep '^usher_batch_latency_observed_seconds' \
        "$out/metrics-$mode.txt" | tr '\n' ' ')"
}

# MPS: only with its control daemon, which needs root
if command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d 2>>"$out/summary.txt"; then
    serve_and_load mps
    echo quit | nvidia-cuda-mps-control
else
    log "mps: no MPS control daemon could be started: skipped"
fi
serve_and_load sm
for m in wakeword-hello ocr-cls; do
    log "estimate $m: $(tr '\n' ' ' <"$out/estimate-$m.json" | cut -c1-400)"
done
log "results in $out"
