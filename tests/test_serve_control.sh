#!/usr/bin/env bash
# test_serve_control.sh - model control (issue 17): `usher serve --model-control-mode
# none|explicit --load-model`, POST /v2/repository/models/M/load|unload, the repository
# index, and gRPC's RepositoryModelLoad / RepositoryModelUnload (grpcio stubs compiled at
# test time, as test_serve_grpc.sh). The cases are in tests/test_serve_control.py: mode
# none refuses, explicit loads only --load-model's, a load re-reads the directory (a new
# version), a broken model's load leaves it UNAVAILABLE with its reason, unload/load
# cycles under traffic from several client threads with the ledger checked (every request
# answered once, 200 or 503; the server's counters equal the clients'), HTTP and gRPC
# agree, an unload answers the requests it finds before it returns, a merge group member
# is refused, a directory added after start loads, a load's "config" parameter replaces
# config.pbtxt (max_batch_size in /config; bad ones name the field). Models: synthetic MLPs (tests/make_mlp.py, make_merge_models.py), random bytes.
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
py=/usr/bin/python3
here=$(dirname "$0")
. "$here/serve_lib.sh"
if ! $py -c "import grpc, grpc_tools" 2>/dev/null; then
    echo "python3-grpcio / python3-grpc-tools missing: run scripts/deps.sh"
    exit 1
fi
mkdir -p "$tmp/repo/a/1" "$tmp/repo/b/1" "$tmp/repo/broken/1"
$py "$here/make_mlp.py" "$tmp/repo/a/1/model.onnx" 2 64 || { echo "FAIL make_mlp"; exit 1; }
# b is slower (64 layers of 512x512, a few ms a row on the 2-core Xeon VM), so that requests
# are queued and running when it is unloaded: the drain is exercised
$py "$here/make_mlp.py" "$tmp/repo/b/1/model.onnx" 64 512 || { echo "FAIL make_mlp b"; exit 1; }
head -c 1000 /dev/urandom >"$tmp/repo/broken/1/model.onnx"
# and a slow one (512 layers of 1024x1024: 155 ms a row on the 2-core Xeon VM, one row a run,
# SLO 10 s), so that an unload finds requests queued and running
mkdir -p "$tmp/repo/slow/1"
$py "$here/make_mlp.py" "$tmp/repo/slow/1/model.onnx" 512 1024 || { echo "FAIL make_mlp slow"; exit 1; }
printf 'slo_ms: 10000\nmax_batch: 1\n' >"$tmp/repo/slow/usher.yaml"

grpc_port_of() { sed -n 's/.*gRPC on [^ ]*:\([0-9]*\) .*/\1/p' "$tmp/serve.log"; }

# --load-model without explicit mode: a usage error
"$usher" serve --repo "$tmp/repo" --load-model a >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q -- "--load-model goes with --model-control-mode explicit" "$tmp/out" &&
    ok "load_model_needs_explicit" || { fail "load-model without explicit: exit $rc"; cat "$tmp/out"; }
# an unknown --load-model: an error at start
"$usher" serve --repo "$tmp/repo" --http-port 0 --model-control-mode explicit \
    --load-model nope >"$tmp/out" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "load-model nope: no such model" "$tmp/out" && ok "load_model_unknown" ||
    { fail "unknown --load-model: exit $rc"; cat "$tmp/out"; }
"$usher" serve --help >"$tmp/help" 2>&1
grep -q -- "--model-control-mode none|explicit" "$tmp/help" && ok "help_names_mode" || fail "help"

# mode none (the default): load and unload refused over both protocols
if start_server "$tmp/repo" --grpc-port 0 && wait_ready a; then
    $py "$here/test_serve_control.py" none "${url##*:}" "$(grpc_port_of)" "$here/../src/server" \
        "$tmp" || fails=$((fails + 1))
    kill -TERM "$srv"; wait "$srv"; rc=$?; srv=
    [ $rc -eq 0 ] && ok "none_exit_0" || { fail "exit: $rc"; tail -30 "$tmp/serve.log"; }
else
    fail "start (none)"
fi

# explicit: only a at start
if start_server "$tmp/repo" --grpc-port 0 --model-control-mode explicit --load-model a &&
    wait_ready a; then
    $py "$here/test_serve_control.py" explicit "${url##*:}" "$(grpc_port_of)" \
        "$here/../src/server" "$tmp" || fails=$((fails + 1))
    kill -TERM "$srv"; wait "$srv"; rc=$?; srv=
    # (under ASan, a leak or a fault found at exit makes this non-zero)
    [ $rc -eq 0 ] && ok "explicit_exit_0" || { fail "exit: $rc"; tail -30 "$tmp/serve.log"; }
else
    fail "start (explicit)"
fi
# a merge group's member cannot be loaded or unloaded alone (docs/serve.md, Model control)
$py "$here/make_merge_models.py" "$tmp/mm" >/dev/null || { echo "FAIL make_merge_models"; exit 1; }
for m in ma mb; do
    mkdir -p "$tmp/repo2/$m/1"
    printf 'replicas: 1\nthreads: 1\nmerge_group: g\n' >"$tmp/repo2/$m/usher.yaml"
done
cp "$tmp/mm/mlp_a.onnx" "$tmp/repo2/ma/1/model.onnx"
cp "$tmp/mm/mlp_b.onnx" "$tmp/repo2/mb/1/model.onnx"
if start_server "$tmp/repo2" --model-control-mode explicit --load-model '*' && wait_ready; then
    for verb in unload load; do
        body=$(curl -s -w ' %{http_code}' -X POST "$url/v2/repository/models/ma/$verb")
        case $body in
        *"it is served in merge group 'g'"*" 400") ok "merge_member_${verb}_refused" ;;
        *) fail "merge member $verb: $body"; grep -i merge "$tmp/serve.log" ;;
        esac
    done
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/models/ma/ready")" = 200 ] &&
        ok "merge_member_still_ready" || fail "merge member not ready after the refusals"
    kill -TERM "$srv"; wait "$srv"; rc=$?; srv=
    [ $rc -eq 0 ] && ok "merge_exit_0" || { fail "exit: $rc"; tail -30 "$tmp/serve.log"; }
else
    fail "start (merge group)"; tail -20 "$tmp/serve.log"
fi
[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"
