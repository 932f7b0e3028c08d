#!/usr/bin/env bash
# A split soup on Azurite (docs/fanout.md, "Soups"): one greedy soup of N built-in MLP ingredients (784 x HIDDEN x 10)
# evaluated on EXAMPLES held-out rows, run once per part count in PARTS with that many `cloudsoup worker` processes
# on this machine (started and warm before the submit). Prints, per part count, the job's wall time (submit →
# succeeded, polled through the API every 0.1 s), the parts' time side by side (each evaluates its ingredients alone
# for the search and for the evaluation section) and the finishing part's (the rest of the search from the stored
# scores, the merge, the merge's evaluation, the report and the commit point).
# Usage: bench/soup-fanout/run.sh [N=8] [HIDDEN=512] [EXAMPLES=40000] [PARTS="1 2"] [WORKDIR=/tmp/cloudsoup-soup-fanout-bench]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
N="${1:-8}"; HIDDEN="${2:-512}"; EXAMPLES="${3:-40000}"; PARTS="${4:-1 2}"; WORK="${5:-/tmp/cloudsoup-soup-fanout-bench}"
"$ROOT/cloudsoup" --help >/dev/null   # installs npm packages and builds the CLI if needed
CLI=(dotnet "$ROOT/src/CloudSoup.Cli/bin/publish/cloudsoup.dll")
rm -rf "$WORK"; mkdir -p "$WORK"
python3 "$ROOT/bench/soup-fanout/make_soup.py" "$WORK/soup" "$N" "$HIDDEN" "$EXAMPLES"

source "$ROOT/bench/dev-host.sh"
start_dev_host
WORKERS=()
cleanup() { for w in "${WORKERS[@]}"; do kill "$w" 2>/dev/null || true; done; kill $DEV 2>/dev/null || true; }
trap cleanup EXIT
"${CLI[@]}" upload "$WORK"/soup/*.safetensors --to checkpoints/soupbench/ 2>"$WORK/upload.log"

for K in $PARTS; do
  {
    echo "name: soup-fanout-$K"
    echo "merge_method: greedy_soup"
    echo "models:"
    for ((i = 0; i < N; i++)); do echo "  - checkpoints/soupbench/ingredient$i.safetensors"; done
    echo "evaluation: {model: 'builtin:mlp', data: checkpoints/soupbench/heldout.safetensors, memory_budget: 4000000000}"
    echo "parallelism: {parts: $K}"
  } > "$WORK/recipe-$K.yaml"
  run_on_workers "$K" "$WORK/recipe-$K.yaml" "$K"
  python3 - "$WORK/job-$K.json" "$WORK/report-$K.json" "$K" "$JOB_SECONDS" <<'PY'
import json, sys
from datetime import datetime
job, report = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
k, wall = int(sys.argv[3]), float(sys.argv[4])
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
soup = report["soup"]
print(f"K={k}: wall {wall:.2f} s; {soup['candidatesEvaluated']} soup candidates, held-out accuracy {soup['heldOutAccuracy']:.4f}; "
      + "phases (slowest part for split jobs) " + ", ".join(f"{p} {s:.2f}" for p, s in report["phaseSeconds"].items()))
parts = job.get("parts") or []
if parts:
    first, last = min(t(p["started"]) for p in parts), max(t(p["finished"]) for p in parts)
    print(f"  claim + plan + split + first part picked up: {first - t(job['started']):.2f} s; parts side by side: {last - first:.2f} s; "
          f"finishing (search from the scores, merge, merge's evaluation, report, commit point): {t(job['finished']) - last:.2f} s")
    for p, d in zip(parts, report["parallelism"]["partDetails"]):
        ps = d["phaseSeconds"]
        print(f"  part {p['part']} ({p['work']}): {p['seconds']:.2f} s by {p['worker']} "
              f"(soup_search {ps.get('soup_search', 0):.2f} s, evaluating {ps.get('evaluating', 0):.2f} s, planning {ps.get('planning', 0):.2f} s)")
PY
done
[ -n "${KEEP:-}" ] || rm -rf "$WORK"
