#!/usr/bin/env bash
# Getting a result back: merge 2 random models of SIZE_MB on Azurite (as bench/blob-merge does), then time
# `cloudsoup download` of the job through the API (GET /api/merges/{id}, then the files route) under /usr/bin/time -v,
# once whole and once resuming a .partial that holds the model's first half. Peak RSS shows whether the file is
# streamed (flat) or buffered (grows with SIZE_MB), on the client and on the API host that serves it.
# Usage: bench/download/run.sh [SIZE_MB=200] [WORKDIR=/tmp/cloudsoup-download-bench]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SIZE_MB="${1:-200}"; WORK="${2:-/tmp/cloudsoup-download-bench}"
"$ROOT/cloudsoup" --help >/dev/null   # installs npm packages and builds the CLI if needed
CLI=(dotnet "$ROOT/src/CloudSoup.Cli/bin/publish/cloudsoup.dll")
rm -rf "$WORK"; mkdir -p "$WORK"
python3 "$ROOT/bench/merge-throughput/make_models.py" "$WORK/models" 2 "$SIZE_MB"

source "$ROOT/bench/dev-host.sh"
start_dev_host
trap 'kill $DEV 2>/dev/null || true' EXIT

"${CLI[@]}" upload "$WORK"/models/*.safetensors --to checkpoints/bench/ >/dev/null
printf 'merge_method: linear\nmodels: [{model: checkpoints/bench/m0.safetensors}, {model: checkpoints/bench/m1.safetensors}]\n' >"$WORK/recipe.yaml"
id=$("${CLI[@]}" submit "$WORK/recipe.yaml" --api "$API" 2>/dev/null)
"${CLI[@]}" worker --once >"$WORK/worker.log" 2>&1
grep -q "succeeded" "$WORK/worker.log" || { echo "the job did not succeed:"; tail -20 "$WORK/worker.log"; exit 1; }

measure() {   # the download into $WORK/out under /usr/bin/time -v; sets secs and rss_mb
  /usr/bin/time -v -o "$WORK/time.txt" "${CLI[@]}" download "$id" --out "$WORK/out" --api "$API" >"$WORK/download.log" 2>&1 \
    || { cat "$WORK/download.log"; exit 1; }
  wall=$(sed -nE 's/.*Elapsed \(wall clock\) time.*: (.*)/\1/p' "$WORK/time.txt")
  secs=$(awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }' <<<"$wall")
  rss_mb=$(( $(sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p' "$WORK/time.txt") / 1024 ))
}
report() {   # $1: label, $2: bytes transferred
  awk -v label="$1" -v b="$2" -v s="$secs" -v r="$rss_mb" 'BEGIN {
    printf "%s: %.0f MB in %.2f s (%.0f MB/s), peak RSS %d MB\n", label, b/1e6, s, b/1e6/s, r }'
}
model="$WORK/out/model.safetensors"
measure
report "download, job $id" "$(du -cb "$WORK"/out/* | tail -1 | cut -f1)"
bytes=$(stat -c %s "$model")
head -c $((bytes / 2)) "$model" >"$model.partial"; rm "$model"
measure
report "resume from a .partial holding the model's first half" $((bytes - bytes / 2))
measure
report "run again with every file in place (size checks only)" 0
# The API side: the dev host (API only; Azurite is its child process, not counted) serves every byte above.
echo "API host (cloudsoup dev --no-worker) peak RSS over the whole run: $(( $(sed -nE 's/VmHWM:[^0-9]*([0-9]+) kB/\1/p' /proc/$DEV/status) / 1024 )) MB"
rm -rf "$WORK"
