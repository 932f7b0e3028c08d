#!/usr/bin/env bash
# Fan-out on Azurite (docs/fanout.md): one linear merge of N models × SIZE_MB, written as about 8 output shards, run
# once per part count in PARTS with that many `cloudsoup worker` processes on this machine (started before the
# submit, so their start-up is not in the job's time; it is measured on its own). Prints, per part count, the job's
# wall time (submit → succeeded, polled through the API every 0.1 s) and where it went: the claim and the split,
# each part (its header reads and plan, merge, commit), and the finishing (index, report, commit point).
# Usage: bench/fanout/run.sh [N=4] [SIZE_MB=200] [PARTS="1 2"] [WORKDIR=/tmp/cloudsoup-fanout-bench]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
N="${1:-4}"; SIZE_MB="${2:-200}"; PARTS="${3:-1 2}"; WORK="${4:-/tmp/cloudsoup-fanout-bench}"
"$ROOT/cloudsoup" --help >/dev/null   # installs npm packages and builds the CLI if needed
CLI=(dotnet "$ROOT/src/CloudSoup.Cli/bin/publish/cloudsoup.dll")
rm -rf "$WORK"; mkdir -p "$WORK"
python3 "$ROOT/bench/merge-throughput/make_models.py" "$WORK/models" "$N" "$SIZE_MB"

source "$ROOT/bench/dev-host.sh"
start_dev_host
WORKERS=()
cleanup() { for w in "${WORKERS[@]}"; do kill "$w" 2>/dev/null || true; done; kill $DEV 2>/dev/null || true; }
trap cleanup EXIT
"${CLI[@]}" upload "$WORK"/models/*.safetensors --to checkpoints/bench/ 2>"$WORK/upload.log"
in_bytes=$(du -cb "$WORK"/models/*.safetensors | tail -1 | cut -f1)
shard=$(( SIZE_MB * 1000000 / 8 ))

# A worker process's fixed cost: `worker --once` on an empty queue (runtime start, libtorch load, storage clients).
s0=$(date +%s.%N); "${CLI[@]}" worker --once >"$WORK/empty.log" 2>&1; s1=$(date +%s.%N)
start_s=$(echo "$s1 - $s0" | bc)

for K in $PARTS; do
  {
    echo "name: fanout-$K"
    echo "merge_method: linear"
    echo "models:"
    for ((i = 0; i < N; i++)); do echo "  - {model: checkpoints/bench/m$i.safetensors}"; done
    echo "output: {shard_size: $shard}"
    echo "parallelism: {parts: $K}"
  } > "$WORK/recipe-$K.yaml"
  run_on_workers "$K" "$WORK/recipe-$K.yaml" "$K"
  python3 - "$WORK/job-$K.json" "$WORK/report-$K.json" "$K" "$JOB_SECONDS" "$in_bytes" <<'PY'
import json, sys
from datetime import datetime
job, report = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
k, wall, in_bytes = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
ph = report["phaseSeconds"]
print(f"K={k}: wall {wall:.2f} s ({in_bytes / 1e6 / wall:.0f} MB/s of input); job started→finished {t(job['finished']) - t(job['started']):.2f} s; "
      f"phases (slowest part for split jobs) " + ", ".join(f"{p} {s:.2f}" for p, s in ph.items()))
parts = job.get("parts") or []
if parts:
    first, last = min(t(p["started"]) for p in parts), max(t(p["finished"]) for p in parts)
    print(f"  claim + plan + split + first part picked up: {first - t(job['started']):.2f} s; parts side by side: {last - first:.2f} s; "
          f"finishing (headers, index, report, commit point): {t(job['finished']) - last:.2f} s")
    for p, d in zip(parts, report["parallelism"]["partDetails"]):
        ps = d["phaseSeconds"]
        other = p["seconds"] - ps.get("merging", 0)
        print(f"  part {p['part']}: {p['shards']} shards, {p['bytesRead'] / 1e6:.0f} MB read in {p['seconds']:.2f} s by {p['worker']} "
              f"(merging {ps.get('merging', 0):.2f} s, headers+plan {ps.get('planning', 0):.2f} s, commit {ps.get('committing', 0):.2f} s, "
              f"overhead outside merging {other:.2f} s)")
PY
done
echo "worker process start-up (worker --once on an empty queue): ${start_s} s"
[ -n "${KEEP:-}" ] || rm -rf "$WORK"
