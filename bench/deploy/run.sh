#!/usr/bin/env bash
# Deploy benchmark (issue 4): wall time of `ferry deploy --image` (prebuilt image) until the
# new revision has 100% of the traffic, for a first deploy, rolling, blue-green and canary
# without pauses, and of `ferry rollback` warm (the old revision's replicas still running
# after a blue-green switch: one routing switch) and cold (started again, health-gated),
# both as the command's wall time and as the time until every request is answered by the
# old revision (a probe loop on the proxy); against the container's own
# start-to-healthy time (the floor) and against `docker-compose up -d` (recreate) of the
# same image. A loopback load loop runs during the compose update and during a ferry
# rolling deploy and counts failed requests. Loopback only; every container, network,
# compose project and daemon it starts is removed by the exit trap.
# Usage: bench/deploy/run.sh     (needs: docker, docker-compose v1, python3, cargo)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
ferry="${FERRY_BIN:-$root/target/debug/ferry}"
image=ferry-bench:hello
tmp="$(mktemp -d /tmp/ferry-bench-deploy.XXXXXX)"
daemon_pid=""
floor_ctr="ferry-bench-floor-$$"
compose_project="ferrybench$$"
loadgen_pid=""

cleanup() {
    set +e
    [ -n "$loadgen_pid" ] && kill "$loadgen_pid" 2>/dev/null
    if [ -n "$daemon_pid" ]; then
        kill -TERM "$daemon_pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$daemon_pid" 2>/dev/null
    fi
    docker rm -f "$floor_ctr" >/dev/null 2>&1
    # The daemon leaves the app's containers running on exit (by design): remove them.
    ids=$(docker ps -aq --filter label=ferry.app=benchhello)
    [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
    docker network rm ferry-benchhello-default >/dev/null 2>&1
    if [ -f "$tmp/compose/docker-compose.yml" ]; then
        (cd "$tmp/compose" && timeout 60 docker-compose -p "$compose_project" down -t 2 >/dev/null 2>&1)
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
declare -a rows=()
row() { rows+=("$1|$2|$3"); printf '  %-42s %8s s  %s\n' "$1" "$2" "$3" >&2; }

[ -x "$ferry" ] || (cd "$root" && cargo build -q -p ferry)
command -v docker-compose >/dev/null || { echo "docker-compose missing (apt-get install docker-compose)" >&2; exit 2; }

echo "== building $image once" >&2
"$root/examples/hello/build-static.sh" >&2
timeout 300 docker build -q -t "$image" "$root/examples/hello" >/dev/null

# ---- load loop: sequential HTTP GETs on loopback, new connection each, bounded ----------
cat >"$tmp/load.py" <<'PY'
import http.client, os, sys, time
port, stop, out, limit = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
ok = fail = 0
errors = {}
end = time.monotonic() + limit
while time.monotonic() < end and not os.path.exists(stop):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/")
        r = c.getresponse(); r.read(); c.close()
        if r.status == 200: ok += 1
        else:
            fail += 1; errors[str(r.status)] = errors.get(str(r.status), 0) + 1
    except Exception as e:
        fail += 1; k = type(e).__name__; errors[k] = errors.get(k, 0) + 1
        time.sleep(0.01)
with open(out, "w") as f:
    f.write("%d %d %s\n" % (ok, fail, ",".join("%s=%d" % kv for kv in sorted(errors.items())) or "-"))
PY
# ---- switch probe: when does every answer come from VERSION again? ----------------------
cat >"$tmp/switch.py" <<'PY'
import http.client, os, sys, time
port, want, stop, out, limit = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
end = time.monotonic() + limit
first = None  # wall time of the first answer of a run of 20 from `want`
run = 0
while time.monotonic() < end and not os.path.exists(stop):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/"); r = c.getresponse(); body = r.read().decode(errors="replace"); c.close()
        ok = r.status == 200 and want in body
    except Exception:
        ok = False
    if ok:
        if run == 0: first = time.time()
        run += 1
        if run >= 20: break
    else:
        run = 0
with open(out, "w") as f:
    f.write("%s\n" % (repr(first) if run >= 20 else "none"))
PY
load_start() { rm -f "$tmp/stop" "$tmp/load.out"; python3 "$tmp/load.py" "$1" "$tmp/stop" "$tmp/load.out" 180 & loadgen_pid=$!; sleep 1; }
load_stop() { sleep 1; touch "$tmp/stop"; wait "$loadgen_pid" || true; loadgen_pid=""; }

wait_healthy() { # container, deadline seconds
    local end=$((SECONDS + $2)) s
    while [ $SECONDS -lt $end ]; do
        s=$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null || echo gone)
        [ "$s" = healthy ] && return 0
        sleep 0.05
    done
    return 1
}

# ---- 1. floor: the container's own start-to-healthy time ---------------------------------
echo "== floor: docker run until HEALTHCHECK says healthy (3 runs)" >&2
for i in 1 2 3; do
    t0=$(now)
    docker run -d --name "$floor_ctr" "$image" >/dev/null
    wait_healthy "$floor_ctr" 60 || { echo "floor container never healthy" >&2; exit 1; }
    row "floor: docker run -> healthy (run $i)" "$(elapsed "$t0" "$(now)")" "HEALTHCHECK interval 2s"
    docker rm -f "$floor_ctr" >/dev/null
done

# ---- 2. ferry ------------------------------------------------------------------------------
mkdir -p "$tmp/app" "$tmp/state"
spec() { # version, strategy block
    cat >"$tmp/app/ferry.toml" <<TOML
app = "benchhello"
# --image overrides it; the spec must name an image or a build to be valid.
image = "$image"

[web]
port = 8080
replicas = 2
readiness_path = "/health/ready"
drain_timeout = "10s"
stop_timeout = "10s"

[web.health]
path = "/health"
interval = "2s"
timeout = "1s"
unhealthy_threshold = 3
start_period = "5s"

[web.resources]
cpus = 0.5
memory = "64Mi"
pids = 64

[env]
VERSION = "$1"

$2
TOML
}
rolling='[strategy]
kind = "rolling"'
bluegreen='[strategy]
kind = "blue-green"

[strategy.blue_green]
scale_down_delay = "0s"'
canary='[strategy]
kind = "canary"

[strategy.canary]
steps = [{ weight = 50 }]'

echo "== ferry serve" >&2
spec v0 "$rolling"
(cd "$tmp/app" && exec "$ferry" serve --listen 127.0.0.1:0 --api 127.0.0.1:0 --state "$tmp/state") >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 100); do grep -q 'proxy on' "$tmp/daemon.log" 2>/dev/null && break; sleep 0.1; done
proxy_port=$(sed -n 's|.*proxy on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/daemon.log" | head -1)
[ -n "$proxy_port" ] || { echo "ferry serve did not start:" >&2; cat "$tmp/daemon.log" >&2; exit 1; }
export FERRY_STATE_DIR="$tmp/state"

deploy() { # label, version, strategy
    spec "$2" "$3"
    local t0 rc=0
    t0=$(now)
    (cd "$tmp/app" && timeout 300 "$ferry" deploy --image "$image") >"$tmp/deploy.log" 2>&1 || rc=$?
    local d; d=$(elapsed "$t0" "$(now)")
    if [ "$rc" -ne 0 ]; then
        row "$1" "FAILED" "exit $rc: $(tail -1 "$tmp/deploy.log")"
        cat "$tmp/deploy.log" >&2
    else
        row "$1" "$d" ""
    fi
}

echo "== ferry deploys (2 replicas)" >&2
deploy "ferry: first deploy" v1 "$rolling"
load_start "$proxy_port"
deploy "ferry: rolling (under load)" v2 "$rolling"
load_stop; read -r ok fail errs <"$tmp/load.out"
row "ferry: requests during rolling" "-" "ok=$ok failed=$fail ($errs)"
deploy "ferry: blue-green" v3 "$bluegreen"
stable_rev() { (cd "$tmp/app" && "$ferry" --output json status) | python3 -c 'import json,sys; print(json.load(sys.stdin)["stable"])'; }
# `ferry rollback` waits until the target revision serves all traffic (exit 0). Measured:
# its wall time, and (probe loop) the time from the command until 20 answers in a row come
# from the target's VERSION; the app's containers are counted before and after.
ctr_ids() { docker ps -aq --filter label=ferry.app=benchhello | sort; }
rollback() { # label, target revision, its VERSION, note
    local t0 t1 rc=0 before after started
    before=$(ctr_ids)
    rm -f "$tmp/switch.stop" "$tmp/switch.out"
    python3 "$tmp/switch.py" "$proxy_port" "$3" "$tmp/switch.stop" "$tmp/switch.out" 120 & local probe=$!
    sleep 0.3
    t0=$(now)
    (cd "$tmp/app" && timeout 180 "$ferry" rollback) >"$tmp/rollback.log" 2>&1 || rc=$?
    t1=$(now)
    wait "$probe" || true
    if [ "$rc" -ne 0 ]; then
        row "$1 (command)" "FAILED" "exit $rc: $(tail -1 "$tmp/rollback.log")"; cat "$tmp/rollback.log" >&2; return
    fi
    after=$(ctr_ids)
    started=$(comm -13 <(echo "$before") <(echo "$after") | grep -c . || true)
    row "$1 (command)" "$(elapsed "$t0" "$t1")" "$4; containers started: $started"
    local first; first=$(cat "$tmp/switch.out" 2>/dev/null || echo none)
    if [ "$first" = none ]; then
        row "$1 (all traffic on rev $2)" "NOT MEASURED" "the probe never saw 20 answers in a row from $3"
    else
        row "$1 (all traffic on rev $2)" "$(python3 -c "import sys; print('%.3f' % max(0.0, float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$first")" "from the command to the first of 20 answers in a row from $3"
    fi
}
version_of() { # revision -> its VERSION (the spec's env)
    (cd "$tmp/app" && "$ferry" --output json history) | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    if r["number"] == int(sys.argv[1]): print(r["spec"]["env"]["VERSION"])' "$1"
}

before=$(stable_rev)
deploy "ferry: canary [{weight=50}]" v4 "$canary"
rollback "ferry: rollback, cold (to rev $before)" "$before" "$(version_of "$before")" "its containers were gone"

# Warm: a blue-green whose old set stays up for scale_down_delay; `ferry deploy` returns
# once the new revision has all traffic, so the rollback follows at once.
before=$(stable_rev)
deploy "ferry: blue-green (scale_down_delay 2m)" v5 "${bluegreen/\"0s\"/\"2m\"}"
rollback "ferry: rollback, warm (to rev $before)" "$before" "$(version_of "$before")" "old set still running (scale_down_delay 2m)"
curl -fsS -m 2 "http://127.0.0.1:$proxy_port/" >/dev/null && echo "  proxy still serves after rollback" >&2 || echo "  WARNING: proxy does not serve after rollback" >&2

# ---- 3. docker-compose baseline ------------------------------------------------------------
echo "== docker-compose baseline (1 replica, recreate)" >&2
compose_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/compose"
cat >"$tmp/compose/docker-compose.yml" <<YML
version: "3.7"
services:
  web:
    image: $image
    ports: ["127.0.0.1:$compose_port:8080"]
    environment:
      VERSION: "\${VERSION}"
YML
cd "$tmp/compose"
t0=$(now)
VERSION=v1 timeout 120 docker-compose -p "$compose_project" up -d >/dev/null 2>&1
ctr=$(docker-compose -p "$compose_project" ps -q web)
wait_healthy "$ctr" 60 || { echo "compose container never healthy" >&2; exit 1; }
row "compose: first up -d -> healthy" "$(elapsed "$t0" "$(now)")" ""
load_start "$compose_port"
t0=$(now)
VERSION=v2 timeout 120 docker-compose -p "$compose_project" up -d >/dev/null 2>&1
t1=$(now)
ctr=$(docker-compose -p "$compose_project" ps -q web)
wait_healthy "$ctr" 60 || { echo "recreated compose container never healthy" >&2; exit 1; }
t2=$(now)
load_stop; read -r ok fail errs <"$tmp/load.out"
row "compose: update up -d (returns)" "$(elapsed "$t0" "$t1")" "container recreated"
row "compose: update up -d -> healthy" "$(elapsed "$t0" "$t2")" ""
row "compose: requests during update" "-" "ok=$ok failed=$fail ($errs)"
cd "$root"

echo
echo "| measurement | seconds | note |"
echo "| --- | ---: | --- |"
for r in "${rows[@]}"; do IFS='|' read -r a b c <<<"$r"; echo "| $a | $b | $c |"; done
