#!/usr/bin/env bash
# test_serve_cancel.sh - HTTP cancel on disconnect (RELIABILITY.md INPUT-7c, docs/serve.md
# "Cancel on disconnect"): clients that reset, close, pipeline and close, or are killed
# while their request waits in a slow model's queue have it cancelled (never run, counted
# 'cancelled' and 499, the ledger balanced); half-closed clients (HTTP/1.1 and 1.0) still
# get their 200. The cases are in tests/test_serve_cancel.py. The slow model is
# tests/make_mlp.py with 512 layers of 1024x1024 (155 ms a request on the 2-core Xeon VM),
# max_batch 1 and one replica, so that a queue forms; the test sizes its load from a
# request's measured time, not from that figure.
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
py=/usr/bin/python3
here=$(dirname "$0")
. "$here/serve_lib.sh"
mkdir -p "$tmp/repo/slow/1" "$tmp/repo/mlp/1"
$py "$here/make_mlp.py" "$tmp/repo/slow/1/model.onnx" 512 1024 || { echo "FAIL make_mlp slow"; exit 1; }
printf 'slo_ms: 60000\nmax_batch: 1\nreplicas: 1\n' >"$tmp/repo/slow/usher.yaml"
$py "$here/make_mlp.py" "$tmp/repo/mlp/1/model.onnx" 2 64 || { echo "FAIL make_mlp"; exit 1; }
if start_server "$tmp/repo" && wait_ready slow && wait_ready mlp; then
    port=${url##*:}
    $py "$here/test_serve_cancel.py" "$port" || fails=$((fails + 1))
    kill -TERM "$srv"; wait "$srv"; rc=$?; srv=
    # (under ASan, a leak or a fault found at exit makes this non-zero)
    [ $rc -eq 0 ] && ok "exit_0" || { fail "exit: $rc"; tail -30 "$tmp/serve.log"; }
    grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$tmp/serve.log" &&
        { fail "a sanitizer report in the server's log"; grep -m5 -A5 "Sanitizer\|runtime error" "$tmp/serve.log"; }
else
    fail "start"
fi
[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"
