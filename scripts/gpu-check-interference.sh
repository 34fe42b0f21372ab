#!/usr/bin/env bash
# gpu-check-interference.sh - two models together on one GPU under MPS shares:
# each one's batch latency measured alone and beside the other, against the
# predictions of `usher interfere` (docs/gpu-check.md, "Two models under MPS").
#
#   scripts/gpu-check-interference.sh [BUNDLE]       on a machine with a GPU
#   scripts/gpu-check-interference.sh --cpu-dry-run  anywhere: every step but the
#                                                    GPU and MPS (the replicas run
#                                                    on the CPU; nothing measured
#                                                    on a GPU)
#
# Run from a checkout (it reads models/zoo). BUNDLE is an unpacked
# scripts/gpu-bundle.sh archive (bin/usher, lib/, ort/); without one, USHER
# (default build/usher) and ORT_LIB (a libonnxruntime.so with
# libonnxruntime_providers_cuda.so beside it) say what to run.
#
# For each pair of shares (SHARES, A's:B's), a plan places one replica of
# each model on GPU 0 at those MPS shares, with the predictions of `usher
# interfere` in it (latency_ms, latency_colocated_ms), and `usher serve`
# runs it with the CUDA provider. Every request carries BATCH rows, so every
# run has the planned batch size. Three phases of SECS seconds each: A
# loaded alone, B alone, both together, each offered OVERLOAD times what a
# replica sustains alone (measured first with sequential requests), so that
# the loaded replicas run back to back as the co-located prediction assumes.
# The observed latency of a phase is the difference of two scrapes of
# /metrics (usher_replica_batch_duration_seconds_sum / _count), and loaded
# the share of the phase the replica spent running batches (near 1: back to
# back).
#
# Environment: OUT (default ./gpu-out-interference), MODEL_A, MODEL_B (zoo
# names; resnet152 and vit-b16), BATCH (8), SHARES ("50:50 80:20"), SECS
# (10), OVERLOAD (1.5), GPU_TYPE (the catalog key, else taken from the
# card's name), CALIBRATION (a calibration CSV for usher interfere),
# PRECISION (usher interfere's --precision; fp32).
#
# Writes OUT/results.csv, OUT/results.md (the card named), and per share
# pair the plan, the server's log, the scrapes and the load reports.
# Exit status: 0 measured (or dry run done); 1 usage; 2 no GPU; 3 no MPS;
# 4 no CUDA-enabled ONNX Runtime, or the workers could not use it; 5 any
# other failure (the message says which). On 2 to 5 nothing was measured,
# and results.md says so.
#
# Written on a machine without a GPU: the no-GPU exit and the CPU dry run
# have run there; the GPU path never has.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dry=0
bundle=
case "${1:-}" in
--cpu-dry-run) dry=1 ;;
-h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
    ;;
-*)
    echo "usage: scripts/gpu-check-interference.sh [BUNDLE | --cpu-dry-run]" >&2
    exit 1
    ;;
*) bundle=${1:-} ;;
esac
out=${OUT:-$PWD/gpu-out-interference}
if [ $dry = 1 ]; then # small defaults: a CPU carries little
    model_a=${MODEL_A:-resnet18} model_b=${MODEL_B:-squeezenet} batch=${BATCH:-2} secs=${SECS:-3}
else
    model_a=${MODEL_A:-resnet152} model_b=${MODEL_B:-vit-b16} batch=${BATCH:-8} secs=${SECS:-10}
fi
shares=${SHARES:-50:50 80:20}
overload=${OVERLOAD:-1.5}
mkdir -p "$out" || exit 5
work=$(mktemp -d) || exit 5
srv=
mps=0
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    if [ -n "$srv" ]; then
        kill -TERM "$srv" 2>/dev/null
        wait "$srv" 2>/dev/null
    fi
    [ "$mps" = 1 ] && echo quit | nvidia-cuda-mps-control >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
: >"$out/log.txt"
log() { echo "gpu-check-interference: $*" | tee -a "$out/log.txt" >&2; }
# die CODE MESSAGE: stop, saying plainly that nothing was measured
die() {
    local code=$1
    shift
    log "$*"
    log "nothing was measured"
    {
        echo "# Two models under MPS: NOT MEASURED"
        echo
        echo "$*"
        echo
        echo "Nothing was measured (exit status $code; log.txt)."
    } >"$out/results.md"
    exit "$code"
}

# ---- what the check needs: a GPU, a CUDA-enabled ONNX Runtime, MPS ----------------------
if [ -n "$bundle" ]; then
    usher=${USHER:-$bundle/bin/usher}
    ort=${ORT_LIB:-$bundle/ort/libonnxruntime.so}
    # the bundle's own libraries, then CUDA's: the toolkit's and those of pip's nvidia-*
    # packages (cuDNN, cuBLAS), as scripts/gpu-check.sh does
    libs=$bundle/lib:/usr/local/cuda/lib64
    for d in $(find / -xdev \( -name 'libcudnn.so.9' -o -name 'libcublas.so.13' \) -printf '%h\n' \
        2>/dev/null | sort -u); do
        libs=$libs:$d
    done
    export LD_LIBRARY_PATH=$libs:${LD_LIBRARY_PATH:-}
else
    usher=${USHER:-$root/build/usher}
    ort=${ORT_LIB:-}
fi
if [ $dry = 1 ]; then
    gpu_name="none: CPU dry run"
    gpu_type=${GPU_TYPE:-h100-sxm}
    log "CPU dry run: the replicas run on this machine's CPU; nothing is measured on a GPU"
else
    command -v nvidia-smi >/dev/null || die 2 "no GPU here: nvidia-smi is not installed"
    gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>"$work/smi.err" | head -1)
    [ -n "$gpu_name" ] || die 2 "no GPU here: nvidia-smi found none ($(head -1 "$work/smi.err"))"
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_mode --format=csv -i 0 \
        >"$out/gpu.txt" 2>&1
    log "GPU 0: $gpu_name"
    case "${GPU_TYPE:-$gpu_name}" in # the catalog key (usher estimate --list-gpus)
    *H200*) gpu_type=h200 ;;
    *H100*PCIe*) gpu_type=h100-pcie ;;
    *H100*NVL*) gpu_type= ;;
    *H100*) gpu_type=h100-sxm ;;
    *A100*80GB*) gpu_type=a100-80gb ;;
    *A100*) gpu_type=a100-40gb ;;
    *L40S*) gpu_type=l40s ;;
    *A10G*) gpu_type=a10g ;;
    *" L4"*) gpu_type=l4 ;;
    *T4*) gpu_type=t4 ;;
    *) gpu_type=${GPU_TYPE:-} ;;
    esac
    [ -n "$gpu_type" ] || die 5 "'$gpu_name' has no known catalog key: set GPU_TYPE (usher estimate --list-gpus)"
    [ -n "$ort" ] || die 4 "no CUDA-enabled ONNX Runtime: give a bundle or ORT_LIB"
    [ -f "$ort" ] || die 4 "no CUDA-enabled ONNX Runtime: $ort does not exist"
    [ -f "$(dirname "$ort")/libonnxruntime_providers_cuda.so" ] ||
        die 4 "no CUDA-enabled ONNX Runtime: no libonnxruntime_providers_cuda.so beside $ort (scripts/deps.sh --gpu)"
    command -v nvidia-cuda-mps-control >/dev/null || die 3 "no MPS: nvidia-cuda-mps-control is not installed"
    # a pipe and log directory of our own (the daemon and every worker must agree)
    export CUDA_MPS_PIPE_DIRECTORY=$work/mps-pipe CUDA_MPS_LOG_DIRECTORY=$work/mps-log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    nvidia-cuda-mps-control -d >"$work/mps.err" 2>&1 ||
        die 3 "no MPS: nvidia-cuda-mps-control -d failed: $(head -2 "$work/mps.err" | tr '\n' ' ')"
    mps=1
    log "MPS control daemon started (pipes in $CUDA_MPS_PIPE_DIRECTORY)"
fi
[ -x "$usher" ] || die 5 "$usher: no usher binary (build it, or give an unpacked bundle: scripts/gpu-bundle.sh)"
[ "$model_a" != "$model_b" ] || die 5 "MODEL_A and MODEL_B must differ (both $model_a)"
command -v curl >/dev/null || die 5 "curl is needed"

# ---- the models: full-weight copies of two zoo models, each request BATCH rows of zeros ---
for m in "$model_a" "$model_b"; do
    zoo=$root/models/zoo/$m.onnx
    [ -f "$zoo" ] || die 5 "$zoo: no such zoo model"
    mkdir -p "$work/repo/$m/1"
    "$usher" convert "$zoo" "$work/repo/$m/1/model.onnx" --fill-random 1 >"$work/convert.txt" 2>&1 ||
        die 5 "usher convert $m: $(tail -1 "$work/convert.txt")"
    printf 'max_batch_size: %d\n' "$batch" >"$work/repo/$m/config.pbtxt"
    # a long SLO: admission refuses only when the queue is full, so replicas run back to back
    printf 'slo_ms: 60000\n' >"$work/repo/$m/usher.yaml"
    "$usher" inspect "$zoo" --batch "$batch" --json >"$work/inspect.json" 2>&1 ||
        die 5 "usher inspect $m: $(tail -1 "$work/inspect.json")"
    ins=$(sed 's/.*"inputs":\[\(.*\)\],"outputs".*/\1/' "$work/inspect.json")
    [ "$(grep -o '{"name"' <<<"$ins" | wc -l)" = 1 ] || die 5 "$m: only one-input models are supported"
    name=$(grep -o '"name":"[^"]*"' <<<"$ins" | cut -d'"' -f4)
    dtype=$(grep -o '"dtype":"[^"]*"' <<<"$ins" | cut -d'"' -f4)
    shape=$(grep -o '"shape":"\[[0-9,]*\]"' <<<"$ins" | cut -d'"' -f4 | tr -d '[]')
    case "$dtype" in
    float32) dt=FP32 ;; float16) dt=FP16 ;; int64) dt=INT64 ;; int32) dt=INT32 ;;
    *) die 5 "$m: input type $dtype is not supported here" ;;
    esac
    awk -v name="$name" -v dt="$dt" -v shape="$shape" 'BEGIN {
        n = split(shape, d, ","); e = 1; for (i = 1; i <= n; i++) e *= d[i]
        printf "{\"inputs\":[{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":[%s],\"data\":[0", name, dt, shape
        for (i = 1; i < e; i++) printf ",0"
        printf "]}]}\n" }' >"$work/$m.json"
done

# ---- /metrics: one replica per model (replica 0) ---------------------------------------
snap() { curl -s "$url/metrics" >"$1"; date +%s.%N >"$1.t"; }
mval() { # mval FILE METRIC MODEL: the sample for MODEL's replica 0 (nothing when absent)
    awk -v n="$2{" -v m="model=\"$3\"," \
        'index($0, n) == 1 && index($0, m) && index($0, "replica=\"0\"") { print $NF }' "$1"
}
# phase F0 F1 MODEL: "runs observed_ms loaded" between two scrapes
phase() {
    local c0 c1 s0 s1
    c0=$(mval "$1" usher_replica_batch_duration_seconds_count "$3")
    c1=$(mval "$2" usher_replica_batch_duration_seconds_count "$3")
    s0=$(mval "$1" usher_replica_batch_duration_seconds_sum "$3")
    s1=$(mval "$2" usher_replica_batch_duration_seconds_sum "$3")
    awk -v c0="${c0:-0}" -v c1="${c1:-0}" -v s0="${s0:-0}" -v s1="${s1:-0}" \
        -v t0="$(cat "$1.t")" -v t1="$(cat "$2.t")" 'BEGIN {
        n = c1 - c0; s = s1 - s0
        o = n > 0 ? sprintf("%.4f", 1e3 * s / n) : "-"
        printf "%d %s %.3f\n", n, o, s / (t1 - t0) }'
}
sequential() { # sequential MODEL N: N requests one after the other; fails on a non-200
    local i code
    for i in $(seq "$2"); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$work/$1.json" \
            -H 'Content-Type: application/json' "$url/v2/models/$1/infer")
        [ "$code" = 200 ] || { log "$1: request $i answered $code"; return 1; }
    done
}
load() { # load OUT.json MODEL:RATE...: usher load over SECS seconds
    local dst=$1 args=() spec
    shift
    for spec in "$@"; do
        args+=(--model "$spec" --input "${spec%%:*}=$work/${spec%%:*}.json")
    done
    "$usher" load --url "$url" "${args[@]}" --duration "$secs" --slo-ms 60000 --timeout-ms 60000 \
        --seed 1 --json >"$dst" 2>&1 || log "usher load ($*): not every request answered once: $dst"
}
field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$2"; } # field KEY JSON-LINE

cal=(--precision "${PRECISION:-fp32}")
[ -n "${CALIBRATION:-}" ] && cal+=(--calibration "$CALIBRATION")
printf 'gpu_name,gpu_type,calibrated,mode,shares,model,batch,share,phase,runs,observed_ms,loaded,predicted_alone_ms,predicted_colocated_ms,predicted_gpu_busy,observed_over_predicted\n' \
    >"$out/results.csv"
mode=mps
[ $dry = 1 ] && mode=cpu-dry-run
rows=()
for pair in $shares; do
    sa=${pair%%:*} sb=${pair##*:}
    tag=$sa-$sb
    # the predictions for this pair, from the graph-only zoo models
    "$usher" interfere --gpu "$gpu_type" "$root/models/zoo/$model_a.onnx:$batch:$sa" \
        "$root/models/zoo/$model_b.onnx:$batch:$sb" --json "${cal[@]}" >"$out/interfere-$tag.json" \
        2>"$work/interfere.err" || die 5 "usher interfere: $(tail -1 "$work/interfere.err")"
    pa=$(sed -n 1p "$out/interfere-$tag.json") pb=$(sed -n 2p "$out/interfere-$tag.json")
    calibrated=$(field calibrated "$pa")
    printf '{"schema_version": 1, "gpus": [{"type": "%s", "replicas": [\n  {"model": "%s", "batch": %d, "share": %s, "latency_ms": %s, "latency_colocated_ms": %s},\n  {"model": "%s", "batch": %d, "share": %s, "latency_ms": %s, "latency_colocated_ms": %s}]}]}\n' \
        "$gpu_type" "$model_a" "$batch" "$sa" "$(field latency_alone_ms "$pa")" \
        "$(field latency_colocated_ms "$pa")" "$model_b" "$batch" "$sb" \
        "$(field latency_alone_ms "$pb")" "$(field latency_colocated_ms "$pb")" >"$out/plan-$tag.json"

    "$usher" serve --repo "$work/repo" --plan "$out/plan-$tag.json" --http-port 0 --http-threads 8 \
        ${ort:+--ort-lib "$ort"} --gpu-share mps >"$out/server-$tag.log" 2>&1 &
    srv=$!
    url=
    for _ in $(seq 3000); do # up to 300 s: CUDA contexts, cuDNN and the weights
        [ -z "$url" ] && url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$out/server-$tag.log")
        [ -n "$url" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/health/ready")" = 200 ] && break
        kill -0 "$srv" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$url" ] || [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/health/ready")" != 200 ]; then
        if grep -qE "no CUDA execution provider|is not usable|libonnxruntime_providers_cuda|libcudnn|libcublas" \
            "$out/server-$tag.log"; then
            die 4 "the workers could not use CUDA: $(grep -m1 -E 'CUDA|cuda' "$out/server-$tag.log")"
        fi
        die 5 "shares $pair: the server did not become ready: $(tail -2 "$out/server-$tag.log" | tr '\n' ' ')"
    fi
    snap "$work/m0"
    if [ $dry = 0 ]; then # both replicas on the GPU, through MPS
        for m in "$model_a" "$model_b"; do
            grep -q "^usher_replica_batch_duration_seconds_count{model=\"$m\",replica=\"0\",gpu=\"0\",device=\"cuda:0\"" \
                "$work/m0" || die 4 "$m: its replica does not run on cuda:0 (the server found no CUDA device?)"
        done
    fi
    # warm-up (CUDA's first runs), then sequential runs: each model's time alone, idle
    # neighbour, which sizes the offered load
    if ! sequential "$model_a" 3 || ! sequential "$model_b" 3; then
        die 5 "shares $pair: warm-up requests failed"
    fi
    snap "$work/s0"
    sequential "$model_a" 5 || die 5 "shares $pair: sequential requests failed"
    snap "$work/s1"
    sequential "$model_b" 5 || die 5 "shares $pair: sequential requests failed"
    snap "$work/s2"
    if [ $dry = 0 ]; then
        echo get_server_list | nvidia-cuda-mps-control >"$out/mps-servers-$tag.txt" 2>&1
        [ -s "$out/mps-servers-$tag.txt" ] ||
            log "shares $pair: the MPS daemon lists no server: the workers may not run under MPS"
        nvidia-smi >"$out/nvidia-smi-$tag.txt" 2>&1
    fi
    read -r _ la _ <<<"$(phase "$work/s0" "$work/s1" "$model_a")"
    read -r _ lb _ <<<"$(phase "$work/s1" "$work/s2" "$model_b")"
    if [ -z "$la" ] || [ "$la" = - ] || [ -z "$lb" ] || [ "$lb" = - ]; then
        die 5 "shares $pair: no run of $batch rows was timed"
    fi
    ra=$(awk -v o="$overload" -v l="$la" 'BEGIN { r = int(o * 1e3 / l) + 1; print r }')
    rb=$(awk -v o="$overload" -v l="$lb" 'BEGIN { r = int(o * 1e3 / l) + 1; print r }')
    log "shares $pair: sequential runs of $batch rows: $model_a $la ms, $model_b $lb ms;" \
        "offered $model_a $ra/s, $model_b $rb/s"
    snap "$work/a0"
    load "$out/load-$tag-$model_a-alone.json" "$model_a:$ra"
    snap "$work/a1"
    load "$out/load-$tag-$model_b-alone.json" "$model_b:$rb"
    snap "$work/b1"
    load "$out/load-$tag-together.json" "$model_a:$ra" "$model_b:$rb"
    snap "$work/t1"
    cp "$work/t1" "$out/metrics-$tag.txt"
    kill -TERM "$srv"
    wait "$srv"
    srv=
    for m in "$model_a" "$model_b"; do
        if [ "$m" = "$model_a" ]; then p=$pa s=$sa f0=$work/a0 f1=$work/a1; else p=$pb s=$sb f0=$work/a1 f1=$work/b1; fi
        alone=$(field latency_alone_ms "$p") coloc=$(field latency_colocated_ms "$p") busy=$(field busy "$p")
        for ph in alone together; do
            [ $ph = together ] && f0=$work/b1 f1=$work/t1
            read -r n obs b <<<"$(phase "$f0" "$f1" "$m")"
            ratio=$(awk -v o="$obs" -v a="$alone" -v c="$coloc" -v ph=$ph \
                'BEGIN { p = ph == "alone" ? a : c; if (o == "-" || o == "" || !(p > 0)) print "-"; else printf "%.3f\n", o / p }')
            echo "\"$gpu_name\",$gpu_type,$calibrated,$mode,$pair,$m,$batch,$s,$ph,$n,$obs,$b,$alone,$coloc,$busy,$ratio" \
                >>"$out/results.csv"
            rows+=("| $pair | $m | $s | $ph | $n | $obs | $b | $alone | $coloc | $ratio |")
        done
    done
done

{
    if [ $dry = 1 ]; then
        echo "# Two models under MPS: CPU DRY RUN, nothing measured on a GPU"
        echo
        echo "The replicas ran on this machine's CPU; the predictions are for $gpu_type."
        echo "The observed column is the CPU's and is not comparable with them: this run"
        echo "only shows that the steps work."
    else
        echo "# Two models under MPS: measured against usher interfere"
        echo
        echo "Card: $gpu_name (catalog key $gpu_type); $(tail -1 "$out/gpu.txt")"
    fi
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ); usher $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?');" \
        "batch $batch, requests of $batch rows, phases of $secs s offered ${overload}x the" \
        "sequential throughput; predictions calibrated: $calibrated."
    echo
    echo "| shares | model | share % | phase | runs | observed ms | loaded | predicted alone ms | predicted co-located ms | observed / predicted |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "observed: mean time of the replica's runs of $batch rows in the phase (worker round"
    echo "trip, from /metrics); loaded: the share of the phase it spent running them. The"
    echo "ratio is to the alone prediction in the alone phases, to the co-located one together."
    echo "The co-located prediction assumes both replicas run back to back: where a together"
    echo "row's neighbour was loaded well below 1 (under 0.9, say), the HTTP path did not keep"
    echo "it busy and the row is not a test of that prediction. results.csv adds usher"
    echo "interfere's predicted_gpu_busy (the share of a replica's time its kernels occupy the GPU)."
} >"$out/results.md"
log "results in $out/results.md and $out/results.csv"
exit 0
