#!/usr/bin/env bash
# The memory of the random-mask methods against linear as the number of models grows: for each N, `cloudsoup merge`
# of linear, dare_ties and della over N float32 models of SIZE_MB in TENSORS tensors each (big tensors: 4 tensors of
# 1 GB models are 1000 × 64 000 entries), m0 the base. Prints wall and CPU time, peak RSS from /usr/bin/time, and the
# peak of the process's anonymous memory (RssAnon in /proc/PID/status, read every 20 ms): RSS also counts the
# memory-mapped inputs' page-cache pages, which grow with N for every method alike and are the kernel's to drop, so
# the anonymous peak is what a method itself holds (its output buffers, masks, scratch). bench/README.md, "Seventh
# round", has the figures.
#
# Usage: bench/engine-speed/mask-memory.sh [SIZE_MB=1024] [TENSORS=4] [NS="4 8"] [RUNS=2]
# Environment: CLI=path/to/cloudsoup.dll (default: the command ./cloudsoup runs), WORK=/tmp/cloudsoup-masks,
#              METHODS="linear dare_ties della".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SIZE_MB="${1:-1024}"; TENSORS="${2:-4}"; NS="${3:-4 8}"; RUNS="${4:-2}"
WORK="${WORK:-/tmp/cloudsoup-masks}"
METHODS="${METHODS:-linear dare_ties della}"
if [ -z "${CLI:-}" ]; then "$ROOT/cloudsoup" --help >/dev/null; CLI="$ROOT/src/CloudSoup.Cli/bin/publish/cloudsoup.dll"; fi
MAX_N=0; for n in $NS; do [ "$n" -gt "$MAX_N" ] && MAX_N=$n; done
rm -rf "$WORK"; mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
python3 "$ROOT/bench/merge-throughput/make_models.py" "$WORK/models" "$MAX_N" "$SIZE_MB" "$TENSORS"
sync
cat "$WORK"/models/*.safetensors > /dev/null   # warm page cache for every run alike

recipe() { # method N → recipe path
  local m="$1" n="$2" f="$WORK/$1-$2.yaml"
  if [ "$m" = linear ]; then
    { echo "merge_method: linear"; echo "models:"
      for ((k = 0; k < n; k++)); do echo "  - {model: $WORK/models/m$k.safetensors, parameters: {weight: 1}}"; done; } > "$f"
  else
    { echo "merge_method: $m"; echo "base_model: $WORK/models/m0.safetensors"; echo "models:"
      for ((k = 1; k < n; k++)); do echo "  - {model: $WORK/models/m$k.safetensors, parameters: {weight: 0.5, density: 0.5}}"; done; } > "$f"
  fi
  echo "$f"
}

# measure LABEL COMMAND... → "LABEL wall cpu rss_mb anon_mb"
measure() {
  local label="$1"; shift
  local start end pid peak=0 a
  start=$(date +%s.%N)
  /usr/bin/time -f "%U %S %M" -o "$WORK/time.txt" "$@" > "$WORK/log.txt" 2>&1 &
  local timer=$!
  while [ -z "${pid:-}" ] && kill -0 "$timer" 2>/dev/null; do pid=$(pgrep -P "$timer" | head -1 || true); sleep 0.01; done
  while kill -0 "$timer" 2>/dev/null; do
    a=$(awk '/^RssAnon/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$a" ] && [ "$a" -gt "$peak" ] && peak=$a
    sleep 0.02
  done
  wait "$timer" || { cat "$WORK/log.txt" >&2; echo "$label failed" >&2; exit 1; }
  end=$(date +%s.%N)
  read -r user sys kb < "$WORK/time.txt"
  awk -v l="$label" -v s="$start" -v e="$end" -v u="$user" -v y="$sys" -v k="$kb" -v p="$peak" \
    'BEGIN { printf "%s %.2f %.2f %.0f %.0f\n", l, e - s, u + y, k / 1024, p / 1024 }' | tee -a "$WORK/results.txt" >&2
}

for ((r = 1; r <= RUNS; r++)); do
  for n in $NS; do
    for m in $METHODS; do
      rm -rf "$WORK/out"; sleep 2
      measure "$m/N=$n" dotnet "$CLI" merge "$(recipe "$m" "$n")" --out "$WORK/out"
    done
  done
done

echo
echo "SIZE_MB=$SIZE_MB TENSORS=$TENSORS NS=\"$NS\" RUNS=$RUNS  $(date -u +%FT%TZ)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| method/N | wall s (median) | CPU s (median) | peak RSS MB | peak anonymous MB |"
echo "|---|---|---|---|---|"
awk '{ t[$1] = t[$1] " " $2; c[$1] = c[$1] " " $3; r[$1] = $4; a[$1] = (a[$1] > $5 ? a[$1] : $5); if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
  function median(s,   v, n, i, j, x) { n = split(s, v, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }
  END { for (i = 1; i <= k; i++) { m = order[i]; printf "| %s | %.2f | %.2f | %d | %d |\n", m, median(t[m]), median(c[m]), r[m], a[m] } }' "$WORK/results.txt"
