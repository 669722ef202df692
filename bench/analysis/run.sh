#!/usr/bin/env bash
# Canary analysis benchmark (issue 5): time from the canary's analysis step starting (canary
# at 20% of the traffic) to the verdict having taken effect (rolled back: all traffic on
# stable), for a canary failing 5% of its requests and for one whose p95 is twice stable's,
# each at about 50 and 500 requests per second from wrk (paced with its delay() hook); and
# the false-rollback rate over repeated canaries identical to stable. Real `ferry serve`,
# the demo image, loopback only; every container, network and process it starts is removed
# by the exit trap.
# Usage: bench/analysis/run.sh   (needs: docker, wrk, python3, cargo)
#   REPEAT=3 (runs per verdict scenario), EQUAL=20 (equal canaries), FERRY_BIN=path
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
ferry_built="${FERRY_BIN:-$target/debug/ferry}"
image=ferry-bench-analysis:hello
app=benchanalysis
tmp="$(mktemp -d /tmp/ferry-bench-analysis.XXXXXX)"
daemon_pid=""

cleanup() {
    set +e
    if [ -n "$daemon_pid" ]; then
        kill -TERM "$daemon_pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$daemon_pid" 2>/dev/null
    fi
    # The daemon leaves the app's containers running on exit (by design): remove them.
    ids=$(docker ps -aq --filter "label=ferry.app=$app")
    [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
    docker network rm "ferry-$app-default" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
[ -x "$ferry_built" ] || (cd "$root" && cargo build -q -p ferry)
# A private copy: a rebuild of the workspace during the run must not swap the binary.
cp "$ferry_built" "$tmp/ferry"

echo "== building $image" >&2
"$root/examples/hello/build-static.sh" >&2
timeout 300 docker build -q -t "$image" "$root/examples/hello" >/dev/null

echo "== ferry serve" >&2
mkdir -p "$tmp/state"
"$tmp/ferry" serve --listen 127.0.0.1:0 --api 127.0.0.1:0 --state "$tmp/state" >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 100); do grep -q 'proxy on' "$tmp/daemon.log" 2>/dev/null && break; sleep 0.1; done
proxy_port=$(sed -n 's|.*proxy on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/daemon.log" | head -1)
[ -n "$proxy_port" ] || { echo "ferry serve did not start:" >&2; cat "$tmp/daemon.log" >&2; exit 1; }

echo "== machine: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ), ferry $("$tmp/ferry" --version 2>/dev/null | head -1) (debug build unless FERRY_BIN says otherwise)" >&2
FERRY_STATE_DIR="$tmp/state" python3 "$here/drive.py" "$tmp/ferry" "$tmp" "$proxy_port" "$image" "$app" \
    "${REPEAT:-3}" "${EQUAL:-20}"
