# serve_lib.sh - sourced by the serving test scripts (tests/test_serve_*.sh,
# scripts/overload.sh): a scratch folder, pass/fail counting, and `usher
# serve` started on a free port and waited for.
#
# Before sourcing, set `usher` (the binary). It sets tmp (a new scratch
# folder, removed on exit with the server killed) and fails (0).
tmp=$(mktemp -d)
srv=
url=
fails=0
serve_cleanup() { [ -n "$srv" ] && kill -9 "$srv" 2>/dev/null; rm -rf "$tmp"; }
trap serve_cleanup EXIT
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }

# start_server REPO [ARGS...]: `usher serve` on a free port, in the background;
# sets srv (its pid) and url once it listens (at most 60 s), its output in
# $tmp/serve.log (the plan it printed). Returns 1, printing the log, when it
# does not listen.
start_server() {
    local repo=$1
    shift
    # emptied here, before the fork: the server's own redirection truncates it only when
    # the child runs, and until then a second server's loop would read the first one's
    # "listening on" line (both URLs the same; seen on a loaded CI machine)
    : >"$tmp/serve.log"
    "$usher" serve --repo "$repo" --http-port 0 "$@" >"$tmp/serve.log" 2>&1 &
    srv=$!
    url=
    for _ in $(seq 600); do
        url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/serve.log")
        [ -n "$url" ] && break
        kill -0 "$srv" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$url" ] || { cat "$tmp/serve.log"; return 1; }
}

# wait_ready [MODEL]: until MODEL (without one: every model, /v2/health/ready)
# answers ready, at most 120 s (workers load in the background after the
# listen); 1 when it does not.
wait_ready() {
    local path=${1:+/v2/models/$1/ready}
    for _ in $(seq 1200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$url${path:-/v2/health/ready}")" = 200 ] &&
            return 0
        kill -0 "$srv" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
