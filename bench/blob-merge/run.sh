#!/usr/bin/env bash
# The service path end to end on Azurite: upload N random models of SIZE_MB, submit a linear merge, and time
# one `cloudsoup worker --once` (ranged blob reads, merge, staged block upload, commit) under /usr/bin/time -v.
# Usage: bench/blob-merge/run.sh [N=4] [SIZE_MB=200] [WORKDIR=/tmp/cloudsoup-blob-bench]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
N="${1:-4}"; SIZE_MB="${2:-200}"; WORK="${3:-/tmp/cloudsoup-blob-bench}"
"$ROOT/cloudsoup" --help >/dev/null   # installs npm packages and builds the CLI if needed
CLI=(dotnet "$ROOT/src/CloudSoup.Cli/bin/publish/cloudsoup.dll")
rm -rf "$WORK"; mkdir -p "$WORK"
python3 "$ROOT/bench/merge-throughput/make_models.py" "$WORK/models" "$N" "$SIZE_MB"

source "$ROOT/bench/dev-host.sh"
start_dev_host
trap 'kill $DEV 2>/dev/null || true' EXIT

in_bytes=$(du -cb "$WORK"/models/*.safetensors | tail -1 | cut -f1)
t0=$(date +%s.%N)
"${CLI[@]}" upload "$WORK"/models/*.safetensors --to checkpoints/bench/ 2>"$WORK/upload.log"
t1=$(date +%s.%N)
{
  echo "merge_method: linear"
  echo "models:"
  for ((i = 0; i < N; i++)); do echo "  - {model: checkpoints/bench/m$i.safetensors}"; done
} > "$WORK/recipe.yaml"
id=$("${CLI[@]}" submit "$WORK/recipe.yaml" --storage "$CloudSoupStorage" 2>/dev/null)
/usr/bin/time -v -o "$WORK/time.txt" env ${WORKER_ENV:-} "${CLI[@]}" worker --once >"$WORK/worker.log" 2>&1
grep -q "succeeded" "$WORK/worker.log" || { echo "the job did not succeed:"; tail -20 "$WORK/worker.log"; exit 1; }
wall=$(sed -nE 's/.*Elapsed \(wall clock\) time.*: (.*)/\1/p' "$WORK/time.txt")
secs=$(awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }' <<<"$wall")
rss_kb=$(sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p' "$WORK/time.txt")
awk -v b="$in_bytes" -v u="$(echo "$t1 - $t0" | bc)" -v s="$secs" -v r="$rss_kb" -v n="$N" -v id="$id" 'BEGIN {
  printf "upload (cloudsoup upload): %d models, %.0f MB in %.2f s (%.0f MB/s)\n", n, b/1e6, u, b/1e6/u
  printf "worker --once (job %s): wall %.2f s, %.0f MB/s of input, peak RSS %.0f MB\n", id, s, b/1e6/s, r/1024 }'
rm -rf "$WORK"
