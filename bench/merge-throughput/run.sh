#!/usr/bin/env bash
# Merge throughput of `cloudsoup merge` (linear, float32) on N random models of SIZE_MB each.
# Usage: bench/merge-throughput/run.sh [N=4] [SIZE_MB=200] [WORKDIR=/tmp/cloudsoup-bench]
# Prints input MB, wall time, MB/s of input read, and peak RSS (from /usr/bin/time -v).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
N="${1:-4}"; SIZE_MB="${2:-200}"; WORK="${3:-/tmp/cloudsoup-bench}"
"$ROOT/cloudsoup" --help >/dev/null   # builds the CLI if sources changed
rm -rf "$WORK"; mkdir -p "$WORK"
python3 "$ROOT/bench/merge-throughput/make_models.py" "$WORK/models" "$N" "$SIZE_MB"
{
  echo "merge_method: linear"
  echo "models:"
  for ((i = 0; i < N; i++)); do echo "  - {model: models/m$i.safetensors, parameters: {weight: 1}}"; done
} > "$WORK/recipe.yaml"
sync
in_bytes=$(du -cb "$WORK"/models/*.safetensors | tail -1 | cut -f1)
/usr/bin/time -v -o "$WORK/time.txt" dotnet "$ROOT/src/CloudSoup.Cli/bin/Release/net10.0/cloudsoup.dll" merge "$WORK/recipe.yaml" --out "$WORK/out" > "$WORK/merge.log"
wall=$(sed -nE 's/.*Elapsed \(wall clock\) time.*: (.*)/\1/p' "$WORK/time.txt")
secs=$(awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }' <<<"$wall")
rss_kb=$(sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p' "$WORK/time.txt")
awk -v b="$in_bytes" -v s="$secs" -v r="$rss_kb" -v n="$N" 'BEGIN {
  printf "models: %d, input: %.0f MB, wall: %.2f s, throughput: %.0f MB/s (input read and merged), peak RSS: %.0f MB\n", n, b/1e6, s, b/1e6/s, r/1024 }'
rm -rf "$WORK"
