"""Drives the canary analysis benchmark against a running `ferry serve` (see run.sh).

For each scenario: deploy the stable revision (rolling), start wrk paced to a target rate,
deploy the canary detached, poll `ferry status` every 50 ms, and time from the moment the
analysis step starts (canary at its weight) to the rollout being finished. Prints a
Markdown table of the results on stdout; progress goes to stderr.
"""

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

ferry, tmp, port, image, app = sys.argv[1:6]
repeat, equal = int(sys.argv[6]), int(sys.argv[7])
url = f"http://127.0.0.1:{port}/"

# The analysis every canary runs: both rules of docs/analysis.md's example, judged every
# 2 s, 100 requests per arm at least, 3 passing measurements to promote.
ANALYSIS = """
[analysis.canary]
interval = "2s"
min_samples = 100
measurements = 3
timebox = "120s"
on_inconclusive = "rollback"
metrics = [
  { name = "error rate", kind = "error-rate", max_relative = 1.5, allowed_increase = 0.01 },
  { name = "p95 latency", kind = "latency-p95", max_relative = 1.2 },
]
"""
WEIGHT = 20

revision = 0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def write_spec(version, env, canary):
    d = os.path.join(tmp, "app", version)
    os.makedirs(d, exist_ok=True)
    if canary:
        strategy = ('kind = "canary"\n[strategy.canary]\n'
                    f'steps = [{{ weight = {WEIGHT} }}, {{ analysis = "canary" }}]\n' + ANALYSIS)
    else:
        strategy = 'kind = "rolling"\n'
    env_lines = "\n".join(f'{k} = "{v}"' for k, v in env.items())
    path = os.path.join(d, "ferry.toml")
    with open(path, "w") as f:
        f.write(f'''app = "{app}"
image = "{image}"

[web]
port = 8080
replicas = 1
drain_timeout = "2s"
stop_timeout = "2s"

[web.health]
path = "/health"
interval = "1s"
timeout = "1s"

[env]
VERSION = "{version}"
{env_lines}

[strategy]
{strategy}''')
    return path


def ferry_cmd(spec, *args):
    return subprocess.run([ferry, "--config", spec, *args], capture_output=True, text=True,
                          timeout=300)


def status(spec):
    out = ferry_cmd(spec, "--output", "json", "status")
    return json.loads(out.stdout) if out.returncode == 0 else {}


def deploy_stable(env):
    global revision
    revision += 1
    spec = write_spec(f"v{revision}", env, canary=False)
    out = ferry_cmd(spec, "deploy")
    if out.returncode != 0:
        sys.exit(f"stable deploy failed: {out.stdout}{out.stderr}")
    return revision


class Wrk:
    """wrk on keep-alive connections, each waiting `delay_ms` between two requests."""

    def __init__(self, connections, delay_ms):
        script = os.path.join(tmp, f"pace-{delay_ms}.lua")
        with open(script, "w") as f:
            f.write(f"function delay() return {delay_ms} end\n")
        self.proc = subprocess.Popen(
            ["wrk", "-t1", f"-c{connections}", "-d300s", "--timeout", "5s", "-s", script, url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(2)  # let the stable arm see traffic before the canary starts

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
        non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        total = re.search(r"(\d+) requests in", out)
        return (float(rate.group(1)) if rate else float("nan"),
                int(total.group(1)) if total else 0,
                int(non2xx.group(1)) if non2xx else 0)


def canary_run(env):
    """Deploys a canary with `env`; returns (seconds from the analysis step to the end,
    outcome, reason or last explanation)."""
    global revision
    revision += 1
    spec = write_spec(f"v{revision}", env, canary=True)
    out = ferry_cmd(spec, "deploy", "--detach")
    if out.returncode != 0:
        sys.exit(f"canary deploy refused: {out.stdout}{out.stderr}")
    started = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        s = status(spec)
        r = s.get("rollout") or {}
        now = time.monotonic()
        step = (r.get("step") or [None, ""])[1] or ""
        if started is None and r.get("id") and "analysis" in step:
            started = now
        if r.get("finished") and r.get("revision") == revision:
            outcome = r.get("outcome") or {}
            if isinstance(outcome, dict):
                kind, reason = str(outcome.get("outcome", "?")), outcome.get("reason", "")
            else:
                kind, reason = str(outcome), ""
            verdicts = r.get("analysis") or []
            return (now - started if started else float("nan"), kind,
                    reason or (verdicts[-1] if verdicts else ""))
        time.sleep(0.05)
    sys.exit(f"canary {revision} did not finish within 240 s")


rows = []


def verdict_scenario(name, stable_env, canary_env, connections, delay_ms, target):
    times, notes = [], []
    for i in range(repeat):
        deploy_stable(stable_env)
        wrk = Wrk(connections, delay_ms)
        took, outcome, reason = canary_run(canary_env)
        rate, total, non2xx = wrk.stop()
        failed = re.findall(r"(error rate|p95 latency): canary [^;\n]*: failed", reason)
        metric = " and ".join(sorted(set(failed))) or "?"
        log(f"  {name} @{target}/s run {i + 1}: {outcome} in {took:.1f}s by {metric}, "
            f"wrk {rate:.0f} req/s, {non2xx} non-2xx of {total}")
        log(f"    {reason[:400]}")
        times.append(took)
        notes.append((outcome, metric, rate, non2xx, total))
    rolled = sum(1 for n in notes if "roll" in n[0].lower())
    by = sorted({n[1] for n in notes})
    rates = [n[2] for n in notes]
    rows.append((f"{name}, ≈{target} req/s", statistics.median(times), min(times), max(times),
                 f"{rolled}/{repeat} rolled back (by {', '.join(by)}); wrk "
                 f"{min(rates):.0f}–{max(rates):.0f} req/s; non-2xx seen by wrk "
                 f"{sum(n[3] for n in notes)} of {sum(n[4] for n in notes)}"))


fast = {"FAIL_RATE": "0"}
failing = {"FAIL_RATE": "0.05"}
slow_stable = {"LATENCY_MS": "20", "LATENCY_JITTER_MS": "20"}
slow_canary = {"LATENCY_MS": "60", "LATENCY_JITTER_MS": "20"}
# Pacing: rate ≈ connections / (delay + mean latency). Mean latency is ~2 ms without
# injected latency, ~39 ms in the latency scenario at weight 20.
log("== time to a verdict")
verdict_scenario("5% errors", fast, failing, 2, 38, 50)
verdict_scenario("5% errors", fast, failing, 10, 18, 500)
verdict_scenario("2× p95", slow_stable, slow_canary, 4, 41, 50)
verdict_scenario("2× p95", slow_stable, slow_canary, 40, 41, 500)

log(f"== {equal} canaries identical to stable (≈500 req/s)")
equal_env = {"LATENCY_MS": "5", "LATENCY_JITTER_MS": "10"}
deploy_stable(equal_env)
wrk = Wrk(20, 27)
promoted, false_rollbacks, times = 0, [], []
t0 = time.monotonic()
for i in range(equal):
    took, outcome, reason = canary_run(equal_env)
    times.append(took)
    if "roll" in outcome.lower():
        false_rollbacks.append(reason)
        log(f"  equal canary {i + 1}: FALSE ROLLBACK: {reason[:300]}")
    else:
        promoted += 1
        log(f"  equal canary {i + 1}: {outcome} after {took:.1f}s of analysis")
wall = time.monotonic() - t0
rate, total, non2xx = wrk.stop()
rows.append((f"{equal} equal canaries, ≈500 req/s", statistics.median(times), min(times),
             max(times),
             f"{promoted}/{equal} promoted, {len(false_rollbacks)} false rollbacks "
             f"({3 * equal} measurements); wrk {rate:.0f} req/s, {non2xx} non-2xx of {total}; "
             f"{wall:.0f}s wall for all"))

print()
print("| scenario (canary at 20%, interval 2s, min_samples 100) | median s | min s | max s | note |")
print("| --- | ---: | ---: | ---: | --- |")
for name, med, lo, hi, note in rows:
    print(f"| {name} | {med:.1f} | {lo:.1f} | {hi:.1f} | {note} |")
