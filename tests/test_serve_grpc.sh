#!/usr/bin/env bash
# test_serve_grpc.sh - the gRPC front end of `usher serve --grpc-port` (issue 17)
# driven by a real gRPC client: Python's grpcio (Debian's python3-grpcio) with stubs
# that python3-grpc-tools compiles from src/server/grpc_service.proto at test time.
# The cases are in tests/test_serve_grpc.py: every method, answers compared with the
# HTTP front end's for the same input, error codes and texts, limits, malformed
# protobuf bytes, the ledger. The model is a small synthetic MLP (tests/make_mlp.py),
# beside one that does not load and a slow one.
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
py=/usr/bin/python3
here=$(dirname "$0")
. "$here/serve_lib.sh"
if ! $py -c "import grpc, grpc_tools" 2>/dev/null; then
    echo "python3-grpcio / python3-grpc-tools missing: run scripts/deps.sh"
    exit 1
fi
mkdir -p "$tmp/repo/mlp/1" "$tmp/repo/broken/1"
$py "$here/make_mlp.py" "$tmp/repo/mlp/1/model.onnx" 2 64 || { echo "FAIL make_mlp"; exit 1; }
head -c 1000 /dev/urandom >"$tmp/repo/broken/1/model.onnx"
# and a slow one (512 layers of 1024x1024: 155 ms a row on the 2-core Xeon VM, SLO 5 s), for the
# client deadline
mkdir -p "$tmp/repo/slow/1"
$py "$here/make_mlp.py" "$tmp/repo/slow/1/model.onnx" 512 1024 || { echo "FAIL make_mlp slow"; exit 1; }
printf 'slo_ms: 5000\nmax_batch: 1\n' >"$tmp/repo/slow/usher.yaml" # its SLO alone never refuses
# a 1 MiB message limit, so that the too-large case is cheap; a 2 s read timeout (the
# request message of a call), so that the silent-client case is quick
if start_server "$tmp/repo" --grpc-port 0 --max-body-bytes 1048576 --body-timeout 2 &&
    wait_ready mlp; then
    http_port=${url##*:}
    grpc_port=$(sed -n 's/.*gRPC on [^ ]*:\([0-9]*\) .*/\1/p' "$tmp/serve.log")
    if [ -z "$grpc_port" ]; then
        fail "the server printed no gRPC port"; cat "$tmp/serve.log"
    else
        $py "$here/test_serve_grpc.py" "$http_port" "$grpc_port" "$here/../src/server" "$tmp" ||
            fails=$((fails + 1))
        $py "$here/test_serve_grpc_stream.py" "$http_port" "$grpc_port" "$here/../src/server" \
            "$tmp" || fails=$((fails + 1))
    fi
    kill -TERM "$srv"; wait "$srv"; rc=$?; srv=
    # (under ASan, a leak or a fault found at exit makes this non-zero)
    [ $rc -eq 0 ] && ok "exit_0" || { fail "exit: $rc"; tail -30 "$tmp/serve.log"; }
else
    fail "start"
fi
# with --http-port and without --grpc-port, no gRPC; a taken port is an error at start
"$usher" serve --help >"$tmp/help" 2>&1
grep -q -- "--grpc-port N" "$tmp/help" && ok "help_names_grpc_port" || fail "help"
if start_server "$tmp/repo" && wait_ready mlp; then
    grep -q "gRPC on" "$tmp/serve.log" && fail "gRPC without --grpc-port" || ok "no_grpc_by_default"
    port=${url##*:}
    "$usher" serve --repo "$tmp/repo" --http-port 0 --grpc-port "$port" >"$tmp/out2" 2>&1
    rc=$?
    [ $rc -ne 0 ] && grep -q "gRPC: cannot listen" "$tmp/out2" && ok "grpc_port_taken" ||
        { fail "grpc port taken: exit $rc"; cat "$tmp/out2"; }
    kill -TERM "$srv"; wait "$srv"; srv=
fi
# without either port: HTTP 8000 and gRPC 8001, Triton's pair - checked only where both
# ports are free here (a developer's machine may hold them; CI's clean one does not)
if $py -c 'import socket
for p in (8000, 8001):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", p)); s.close()' 2>/dev/null; then
    "$usher" serve --repo "$tmp/repo" >"$tmp/default.log" 2>&1 &
    dpid=$!
    for _ in $(seq 300); do
        grep -q "gRPC on" "$tmp/default.log" && break
        kill -0 "$dpid" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "gRPC on 127.0.0.1:8001 " "$tmp/default.log" &&
        grep -q "listening on http://127.0.0.1:8000 " "$tmp/default.log" && ok "default_ports_8000_8001" ||
        { fail "default ports"; cat "$tmp/default.log"; }
    kill -TERM "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null
else
    echo "skip default_ports_8000_8001: port 8000 or 8001 is taken on this machine"
fi
[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"
