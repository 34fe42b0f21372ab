#!/usr/bin/env bash
# run-main.sh USHER - the main job: serve the example repository (four real
# models from npm: PaddleOCR's text-direction classifier, two openWakeWord
# models and Silero VAD) on this machine's CPU. The server measures each model
# at load, plans, prints the plan, and listens on port $USHER_PORT (8000, as
# Triton). Once it is ready this script sends one request with curl and
# prints the curl line to try by hand. It serves until Ctrl-C (or for
# $RUN_SECONDS seconds when set), then shuts down gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
usher=${1:-build/usher}
port=${USHER_PORT:-8000}
repo=build/example-repo
scripts/example-repo.sh "$repo" >/dev/null
echo "usher $("$usher" --version | cut -d' ' -f2): serving $repo (models: $(ls "$repo" | tr '\n' ' '))"
"$usher" serve --repo "$repo" --http-port "$port" &
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null || true; }
trap stop INT TERM
url=http://127.0.0.1:$port
for _ in $(seq 1200); do
    curl -sf -o /dev/null "$url/v2/health/ready" && break
    kill -0 "$pid" 2>/dev/null || { wait "$pid" || exit $?; exit 1; }
    sleep 0.1
done
line="curl -s $url/v2/models/ocr-cls/infer -H 'Content-Type: application/json' -d @$repo/ocr-cls/sample.json"
echo
echo "ready. Try:"
echo "  $line"
echo "(the sample is a 3x48x192 image; the answer is the probability of upright vs upside-down text)"
eval "$line"
echo
echo "also:  curl -s $url/v2/models/vad        (metadata)"
echo "       curl -s $url/metrics              (Prometheus)"
echo "       $usher load --url $url --model wakeword-hello:200 --duration 5   (open-loop load)"
echo "serving; Ctrl-C stops it."
if [ -n "${RUN_SECONDS:-}" ]; then
    sleep "$RUN_SECONDS" &
    wait $! || true
    stop
fi
set +e
wait "$pid"
rc=$?
# a signal delivered to this script interrupts the first wait: wait for the server's exit
kill -0 "$pid" 2>/dev/null && wait "$pid" && rc=$?
exit $rc
