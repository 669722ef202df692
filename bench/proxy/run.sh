#!/usr/bin/env bash
# Side-by-side proxy benchmark on loopback: the same backend (an nginx instance that
# answers "hello") reached directly, through nginx (keepalive upstream), HAProxy and
# ferry-proxy, measured with wrk in interleaved rounds. Prints median req/s, p50/p99,
# proxy CPU µs per request, and ratios to direct and to nginx.
#
# Needs the Debian packages nginx, haproxy and wrk. Everything is bounded:
# ROUNDS × 4 targets × DURATION of load, on 127.0.0.1 only.
#   ROUNDS=3 DURATION=10s CONNS=64 THREADS=2 bench/proxy/run.sh
# FERRY_BEFORE_BIN=/path/to/an/older/build/of/examples/proxy adds that build as the
# target `ferry_before` (same config), for before/after figures in one run.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
IDLE_CONNS=${IDLE_CONNS:-10000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

for tool in nginx haproxy wrk; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found: apt-get install -y nginx haproxy wrk" >&2; exit 2; }
done

echo "building ferry-proxy (release)..." >&2
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --quiet --release -p ferry-proxy --example proxy)
FERRY_BIN="$TARGET_DIR/release/examples/proxy"

# Room for IDLE_CONNS client sockets in this shell's children (the proxies and the client).
WANT_FDS=$((IDLE_CONNS * 2 + 4096)); HARD_FDS=$(ulimit -Hn)
[[ $HARD_FDS != unlimited && $HARD_FDS -lt $WANT_FDS ]] && WANT_FDS=$HARD_FDS
ulimit -n "$WANT_FDS"
# HAProxy reserves two descriptors per connection up front: cap it below the limit.
HAPROXY_MAXCONN=$(( (WANT_FDS - 200) / 2 ))

WORK=$(mktemp -d /tmp/ferry-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

BACKEND_PORT=18081 NGINX_PORT=18082 HAPROXY_PORT=18083 FERRY_PORT=18084

nginx_conf() { # name workers server-block
  mkdir -p "$WORK/$1"
  cat > "$WORK/$1/nginx.conf" <<CONF
user root;
worker_processes $2;
pid $WORK/$1/nginx.pid;
error_log $WORK/$1/error.log warn;
worker_rlimit_nofile $WANT_FDS;
events { worker_connections $((IDLE_CONNS + 4096)); }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/$1;
  proxy_temp_path $WORK/$1;
  fastcgi_temp_path $WORK/$1;
  uwsgi_temp_path $WORK/$1;
  scgi_temp_path $WORK/$1;
  $3
}
CONF
}

# The backend: one nginx worker answering a fixed body.
nginx_conf backend 1 "server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 'hello\n'; } }"
nginx -c "$WORK/backend/nginx.conf" -g 'daemon off;' & PIDS+=($!)

# nginx as the proxy: keepalive upstream, HTTP/1.1 to the backend.
nginx_conf nginx auto "upstream app { server 127.0.0.1:$BACKEND_PORT; keepalive 128; }
  server { listen 127.0.0.1:$NGINX_PORT; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }"
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' & NGINX_PID=$!; PIDS+=($NGINX_PID)

cat > "$WORK/haproxy.cfg" <<CONF
global
  nbthread 2
  maxconn $HAPROXY_MAXCONN
defaults
  mode http
  timeout connect 3s
  timeout client 60s
  timeout server 60s
  http-reuse always
  option forwardfor
frontend fe
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend be
backend be
  server s1 127.0.0.1:$BACKEND_PORT
CONF
haproxy -f "$WORK/haproxy.cfg" -db & HAPROXY_PID=$!; PIDS+=($HAPROXY_PID)

cat > "$WORK/ferry.toml" <<CONF
threads = $(nproc)

[[listeners]]
addr = "127.0.0.1:$FERRY_PORT"

[[routes]]
service = "app"

[services.app]
[[services.app.pools]]
revision = "v1"
weight = 100
backends = ["127.0.0.1:$BACKEND_PORT"]
CONF
"$FERRY_BIN" "$WORK/ferry.toml" & FERRY_PID=$!; PIDS+=($FERRY_PID)
FERRY_BEFORE_PORT=18085
if [[ -n ${FERRY_BEFORE_BIN:-} ]]; then
  sed "s/127.0.0.1:$FERRY_PORT/127.0.0.1:$FERRY_BEFORE_PORT/" "$WORK/ferry.toml" > "$WORK/ferry-before.toml"
  "$FERRY_BEFORE_BIN" "$WORK/ferry-before.toml" & FERRY_BEFORE_PID=$!; PIDS+=($FERRY_BEFORE_PID)
fi

for port in $BACKEND_PORT $NGINX_PORT $HAPROXY_PORT $FERRY_PORT ${FERRY_BEFORE_BIN:+$FERRY_BEFORE_PORT}; do
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/" >/dev/null || { echo "bench: nothing answers on port $port" >&2; exit 1; }
done

# CPU ticks (user+system) of a process and its direct children.
cpu_ticks() {
  local total=0 pid
  for pid in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    if [[ -r /proc/$pid/stat ]]; then
      total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    fi
  done
  echo "$total"
}
TICKS=$(getconf CLK_TCK)

declare -A PROXY_PID=([direct]="" [nginx]=$NGINX_PID [haproxy]=$HAPROXY_PID [ferry]=$FERRY_PID)
declare -A PORT=([direct]=$BACKEND_PORT [nginx]=$NGINX_PORT [haproxy]=$HAPROXY_PORT [ferry]=$FERRY_PORT)
TARGETS=(direct nginx haproxy ferry)
if [[ -n ${FERRY_BEFORE_BIN:-} ]]; then
  PROXY_PID[ferry_before]=$FERRY_BEFORE_PID; PORT[ferry_before]=$FERRY_BEFORE_PORT
  TARGETS+=(ferry_before)
fi
RESULTS="$WORK/results.tsv"
: > "$RESULTS"

to_us() { # wrk latency like 1.23ms / 850.00us / 1.02s -> microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n }'
}

for round in $(seq 1 "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do
    pid=${PROXY_PID[$t]}
    before=0; [[ -n $pid ]] && before=$(cpu_ticks "$pid")
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:${PORT[$t]}/")
    after=0; [[ -n $pid ]] && after=$(cpu_ticks "$pid")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    total=$(awk '/requests in/ {print $1}' <<<"$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
    cpu_us="-"
    if [[ -n $pid ]]; then
      cpu_us=$(awk -v d=$((after - before)) -v tk="$TICKS" -v n="$total" 'BEGIN { printf "%.2f", d / tk * 1e6 / n }')
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rps" "$p50" "$p99" "$cpu_us" "$errors" >> "$RESULTS"
    echo "round $round $t: ${rps} req/s p50 ${p50}us p99 ${p99}us cpu ${cpu_us}us/req ${errors}" >&2
  done
done

# Memory with IDLE_CONNS idle keep-alive client connections (one request each, then idle).
rss_kib() {
  local total=0 pid
  for pid in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
MEMORY="$WORK/memory.tsv"
: > "$MEMORY"
for t in "${TARGETS[@]}"; do
  [[ $t == direct ]] && continue
  pid=${PROXY_PID[$t]}
  before=$(rss_kib "$pid")
  python3 - "${PORT[$t]}" "$IDLE_CONNS" "$WORK/hold.$t" <<'HOLD' &
import os, socket, sys, time
port, n, flag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = []
for _ in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        if not s.recv(4096):
            break
    except OSError:
        break
    socks.append(s)
with open(flag, "w") as f:
    f.write(str(len(socks)))
deadline = time.time() + 60
while os.path.exists(flag) and time.time() < deadline:
    time.sleep(0.1)
HOLD
  holder=$!
  for _ in $(seq 1 600); do [[ -e "$WORK/hold.$t" ]] && break; sleep 0.1; done
  sleep 1
  after=$(rss_kib "$pid")
  held=$(cat "$WORK/hold.$t" 2>/dev/null || echo 0)
  rm -f "$WORK/hold.$t"
  wait "$holder" || true
  printf '%s\t%s\t%s\t%s\n' "$t" "$before" "$after" "$held" >> "$MEMORY"
  echo "memory $t: ${before} KiB idle, ${after} KiB with $held connections" >&2
done

python3 - "$RESULTS" "$ROUNDS" "$DURATION" "$CONNS" "$THREADS" "$MEMORY" "$IDLE_CONNS" <<'PY'
import statistics, sys
path, rounds, duration, conns, threads, memory, idle = sys.argv[1:]
rows = {}
for line in open(path):
    t, rps, p50, p99, cpu, _ = (line.rstrip("\n").split("\t") + [""])[:6]
    r = rows.setdefault(t, {"rps": [], "p50": [], "p99": [], "cpu": []})
    r["rps"].append(float(rps)); r["p50"].append(float(p50)); r["p99"].append(float(p99))
    if cpu != "-":
        r["cpu"].append(float(cpu))
med = {t: {k: (statistics.median(v) if v else None) for k, v in r.items()} for t, r in rows.items()}
print(f"wrk -t{threads} -c{conns} -d{duration} --latency, {rounds} interleaved rounds, medians")
print("| target | req/s | p50 µs | p99 µs | proxy CPU µs/req | req/s vs direct | req/s vs nginx | p99 vs nginx | CPU/req vs nginx |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
n = med.get("nginx")
d = med.get("direct")
for t in ["direct", "nginx", "haproxy", "ferry", "ferry_before"]:
    m = med.get(t)
    if not m:
        continue
    cpu = f"{m['cpu']:.1f}" if m["cpu"] is not None else "-"
    vs_d = f"{m['rps'] / d['rps']:.2f}×"
    vs_n = f"{m['rps'] / n['rps']:.2f}×"
    p99_n = f"{m['p99'] / n['p99']:.2f}×"
    cpu_n = f"{m['cpu'] / n['cpu']:.2f}×" if m["cpu"] is not None and n["cpu"] else "-"
    print(f"| {t} | {m['rps']:.0f} | {m['p50']:.0f} | {m['p99']:.0f} | {cpu} | {vs_d} | {vs_n} | {p99_n} | {cpu_n} |")
print()
print(f"memory (RSS of the proxy, all processes) with up to {idle} idle keep-alive client connections")
print("| target | connections held | RSS idle KiB | RSS with connections KiB | KiB per connection | RSS vs nginx |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
mem = {}
for line in open(memory):
    t, before, after, held = line.split()
    mem[t] = (int(before), int(after), int(held))
for t, (before, after, held) in mem.items():
    per = (after - before) / held if held else float("nan")
    vs = f"{after / mem['nginx'][1]:.2f}×" if "nginx" in mem and mem["nginx"][1] else "-"
    print(f"| {t} | {held} | {before} | {after} | {per:.2f} | {vs} |")
PY
