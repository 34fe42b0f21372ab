#!/usr/bin/env bash
# test_serve_poll.sh - model control's poll mode (issue 17): `usher serve --model-control-mode
# poll --repository-poll-secs 1` while the repository changes under it and clients keep two
# models busy. The cases are in tests/test_serve_poll.py: a directory added loads, a
# half-written model file is refused and retried once whole, a quick copy loads once, a new
# version and a config.pbtxt reload a model without a failed request, a broken version
# leaves the old one serving, a removed directory unloads and keeps its counters, explicit
# load/unload are refused; the ledger of the busy models equals what their clients saw.
# Then the flags' usage errors. Models: synthetic MLPs (tests/make_mlp.py).
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
py=/usr/bin/python3
here=$(dirname "$0")
. "$here/serve_lib.sh"
mkdir -p "$tmp/repo/a/1" "$tmp/repo/b/1" "$tmp/spare"
$py "$here/make_mlp.py" "$tmp/repo/a/1/model.onnx" 2 64 || { echo "FAIL make_mlp"; exit 1; }
cp "$tmp/repo/a/1/model.onnx" "$tmp/repo/b/1/model.onnx"
# the spare is larger (8 layers of 256), so that half of it is plainly not a model
$py "$here/make_mlp.py" "$tmp/spare/small.onnx" 8 256 || { echo "FAIL make_mlp spare"; exit 1; }
# a long SLO: admission never sheds on a busy 2-core machine (a refusal must mean a reload
# lost a request)
for m in a b; do printf 'slo_ms: 10000\n' >"$tmp/repo/$m/usher.yaml"; done

"$usher" serve --repo "$tmp/repo" --repository-poll-secs 1 >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q -- "--repository-poll-secs goes with --model-control-mode poll" \
    "$tmp/out" && ok "poll_secs_needs_poll" || { fail "poll secs without poll: exit $rc"; cat "$tmp/out"; }
"$usher" serve --repo "$tmp/repo" --model-control-mode poll --repository-poll-secs 0 \
    >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 2 ] && ok "poll_secs_range" || { fail "poll secs 0: exit $rc"; cat "$tmp/out"; }
"$usher" serve --help >"$tmp/help" 2>&1
grep -q -- "--model-control-mode none|explicit|poll" "$tmp/help" &&
    grep -q -- "--repository-poll-secs N" "$tmp/help" && ok "help_names_poll" || fail "help"

if start_server "$tmp/repo" --model-control-mode poll --repository-poll-secs 1 &&
    wait_ready; then
    $py "$here/test_serve_poll.py" "${url##*:}" "$tmp/repo" "$tmp/spare" "$tmp/serve.log" ||
        fails=$((fails + 1))
    kill -TERM "$srv"; wait "$srv"; rc=$?; srv=
    # (under ASan, a leak or a fault found at exit makes this non-zero)
    [ $rc -eq 0 ] && ok "poll_exit_0" || { fail "exit: $rc"; tail -30 "$tmp/serve.log"; }
else
    fail "start (poll)"
fi
[ "$fails" -eq 0 ] || { echo "$fails failed"; tail -40 "$tmp/serve.log"; exit 1; }
echo "all passed"
