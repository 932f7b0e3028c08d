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
/usr/bin/time -v -o "$WORK/time.txt" dotnet "$ROOT/src/CloudSoup.Cli/bin/publish/cloudsoup.dll" merge "$WORK/recipe.yaml" --out "$WORK/out" > "$WORK/merge.log"
wall=$(sed -nE 's/.*Elapsed \(wall clock\) time.*: (.*)/\1/p' "$WORK/time.txt")
secs=$(awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }' <<<"$wall")
rss_kb=$(sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p' "$WORK/time.txt")
awk -v b="$in_bytes" -v s="$secs" -v r="$rss_kb" -v n="$N" 'BEGIN {
  printf "cloudsoup merge: models: %d, input: %.0f MB, wall: %.2f s, throughput: %.0f MB/s (input read and merged), peak RSS: %.0f MB\n", n, b/1e6, s, b/1e6/s, r/1024 }'
# The same uniform average by the usual hand-written script (all models loaded, then averaged), when Debian's
# python3-torch is installed. Both outputs are compared, so the numbers are for the same result.
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  /usr/bin/time -v -o "$WORK/time-script.txt" /usr/bin/python3 "$ROOT/bench/merge-throughput/script_baseline.py" "$WORK/script.safetensors" "$WORK"/models/m*.safetensors
  wall=$(sed -nE 's/.*Elapsed \(wall clock\) time.*: (.*)/\1/p' "$WORK/time-script.txt")
  secs=$(awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }' <<<"$wall")
  rss_kb=$(sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p' "$WORK/time-script.txt")
  awk -v b="$in_bytes" -v s="$secs" -v r="$rss_kb" -v n="$N" 'BEGIN {
    printf "python script:   models: %d, input: %.0f MB, wall: %.2f s, throughput: %.0f MB/s (input read and merged), peak RSS: %.0f MB\n", n, b/1e6, s, b/1e6/s, r/1024 }'
  /usr/bin/python3 -c "
import sys; sys.path.insert(0, '$ROOT/bench/merge-throughput')
from script_baseline import load_file
a, b = load_file('$WORK/out/model.safetensors'), load_file('$WORK/script.safetensors')
worst = max((a[k] - b[k]).abs().max().item() for k in b)
assert a.keys() == b.keys(), 'different tensor names'
print(f'outputs agree: max |difference| {worst:.2e} over {len(b)} tensors')
"
else
  echo "python script: skipped (install Debian's python3-torch to compare with the hand-written script)"
fi
rm -rf "$WORK"
