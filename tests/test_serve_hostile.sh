#!/usr/bin/env bash
# test_serve_hostile.sh - hostile HTTP against `usher serve` over raw sockets
# (issue 17, RELIABILITY.md INPUT-6 and INPUT-7): request smuggling shapes,
# malformed framing, slow headers and bodies, NUL and invalid percent-encoding
# in paths, a 70 KB URL, the ledgers of /metrics; then a slowloris of 2,000
# connections during which a normal client keeps >= 99% of its requests
# answered within 1 s (or 10 x its p99 measured just before, on a loaded
# machine). The cases are in tests/test_serve_hostile.py; every case ends with
# a live check. The model is a small synthetic MLP (tests/make_mlp.py).
set -uo pipefail
ulimit -n 8192 2>/dev/null || true # 2,000 client sockets here, as many in the server
usher=${USHER_BIN:?run through ctest}
py=/usr/bin/python3
here=$(dirname "$0")
. "$here/serve_lib.sh"
mkdir -p "$tmp/repo/mlp/1"
$py "$here/make_mlp.py" "$tmp/repo/mlp/1/model.onnx" 2 64 || { echo "FAIL make_mlp"; exit 1; }
# and a model that does not load (UNAVAILABLE): its "not ready" answers
mkdir -p "$tmp/repo/broken/1"
head -c 1000 /dev/urandom >"$tmp/repo/broken/1/model.onnx"

# short read timeouts, so the slow cases take seconds
if start_server "$tmp/repo" --header-timeout 1 --body-timeout 2 && wait_ready mlp; then
    port=${url##*:}
    $py "$here/test_serve_hostile.py" "$port" framing || fails=$((fails + 1))
    kill -TERM "$srv"; wait "$srv"; rc=$?; srv=
    # (under ASan, a leak or a fault found at exit makes this non-zero)
    [ $rc -eq 0 ] && ok "exit_0_after_framing" || { fail "exit after framing: $rc"; tail -30 "$tmp/serve.log"; }
else
    fail "start (framing)"
fi
# the defaults (1,024 connections, 256 per client address, 10 s header timeout), then
# without the address cap (the attacker and the client share 127.0.0.1; the total cap
# is what holds): what protects the normal client is the eviction of the oldest idle
# connection
# and last, the server limited to 600 descriptors (soft and hard): 1,024 connections
# cannot all open; out of descriptors, it closes the oldest idle connection to accept
printf '#!/usr/bin/env bash\nulimit -n 600\nexec "%s" "$@"\n' "$usher" >"$tmp/usher_600fd"
chmod +x "$tmp/usher_600fd"
for args in "" "--max-client-connections 0" "fd600"; do
    u=$usher
    if [ "$args" = fd600 ]; then
        usher=$tmp/usher_600fd
        args="--max-client-connections 0"
    fi
    # shellcheck disable=SC2086
    if start_server "$tmp/repo" $args && wait_ready mlp; then
        port=${url##*:}
        echo "-- slowloris, serve ${args:-(defaults)}$([ "$usher" != "$u" ] && echo ', 600 descriptors')"
        $py "$here/test_serve_hostile.py" "$port" slowloris || fails=$((fails + 1))
        kill -TERM "$srv"; wait "$srv"; rc=$?; srv=
        [ $rc -eq 0 ] && ok "exit_0_after_slowloris" ||
            { fail "exit after slowloris: $rc"; tail -30 "$tmp/serve.log"; }
    else
        fail "start (slowloris $args)"
    fi
    usher=$u
done
[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"
