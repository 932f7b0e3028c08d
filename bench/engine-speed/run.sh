#!/usr/bin/env bash
# The engine against its inputs: in one loop, the read+write floor (GNU cat reads every input to /dev/null, then
# copies one input to an output file: the bytes a merge must read and write, with no arithmetic), the load-all PyTorch script
# (../merge-throughput/script_baseline.py), the lazy memmap NumPy script (memmap_merge.py) and `cloudsoup merge`,
# each a uniform average (linear) of N float32 models of SIZE_MB, median of RUNS runs, wall time, CPU time (user +
# sys: steadier than wall time when other work shares the machine) and peak RSS from /usr/bin/time. The best (least)
# wall time of each program is shown too: on a virtual machine whose new page-cache pages are sometimes slow to
# come by (bench/README.md, "Noise"), the best run is the one the machine did not slow down. With MODE=methods, instead every task-vector method on the same inputs (m0 the base model) next to
# linear. Needs Debian's python3-numpy and python3-torch for the scripts (skipped with a note when missing).
#
# Usage: bench/engine-speed/run.sh [N=4] [SIZE_MB=1000] [RUNS=3] [MODE=linear|methods]
# Environment: SETTLE=seconds to wait after deleting the last output (3), CLI=path/to/cloudsoup.dll (default: the command ./cloudsoup runs, published ReadyToRun), WORK=/tmp/cloudsoup-speed,
#              SKIP="load-all ..." (programs to leave out), METHODS="ties dare_ties ..." (methods mode),
#              TENSORS=tensors per model (50; fewer makes bigger tensors).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/bench/engine-speed"
N="${1:-4}"; SIZE_MB="${2:-1000}"; RUNS="${3:-3}"; MODE="${4:-linear}"
WORK="${WORK:-/tmp/cloudsoup-speed}"
SKIP="${SKIP:-}"
METHODS="${METHODS:-linear task_arithmetic ties breadcrumbs breadcrumbs_ties dare_ties dare_linear della della_linear sce}"
PY=/usr/bin/python3
if [ -z "${CLI:-}" ]; then "$ROOT/cloudsoup" --help >/dev/null; CLI="$ROOT/src/CloudSoup.Cli/bin/publish/cloudsoup.dll"; fi
rm -rf "$WORK"; mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
python3 "$ROOT/bench/merge-throughput/make_models.py" "$WORK/models" "$N" "$SIZE_MB" "${TENSORS:-50}"
inputs=("$WORK"/models/m*.safetensors)
sync
cat "${inputs[@]}" > /dev/null   # warm page cache for every program alike

recipe() { # method → recipe.yaml for it
  local m="$1" f="$WORK/$1.yaml"
  if [ "$m" = linear ]; then
    { echo "merge_method: linear"; echo "models:"
      for p in "${inputs[@]}"; do echo "  - {model: $p, parameters: {weight: 1}}"; done; } > "$f"
  else
    { echo "merge_method: $m"; echo "base_model: ${inputs[0]}"
      case "$m" in sce) echo "parameters: {select_topk: 0.5}";; esac
      echo "models:"
      for p in "${inputs[@]:1}"; do
        case "$m" in
          task_arithmetic) echo "  - {model: $p, parameters: {weight: 0.5}}";;
          sce) echo "  - {model: $p}";;   # sce weighs by its own variance mask: no weight
          breadcrumbs*) echo "  - {model: $p, parameters: {weight: 0.5, density: 0.5, gamma: 0.01}}";;
          *) echo "  - {model: $p, parameters: {weight: 0.5, density: 0.5}}";;
        esac
      done; } > "$f"
  fi
  echo "$f"
}

# run NAME COMMAND... → appends "NAME wall-seconds peak-kB cpu-seconds" to results
run() {
  local name="$1"; shift
  rm -rf "$WORK/out"; mkdir -p "$WORK/out"
  # This VM gives freed memory back to its host ("Free page reporting enabled": Linux's page_reporting, a few
  # seconds after pages are freed), and taking it back later costs a host fault per page. Deleting the last
  # program's 1 GB output and starting the next one at once let whichever program wrote earliest reuse pages not
  # yet reported; waiting puts every program in the same state (bench/README.md, "Fourth round").
  sleep "${SETTLE:-3}"
  /usr/bin/time -f "%e %M %U %S" -o "$WORK/time.txt" "$@" > "$WORK/log.txt" 2>&1 || { cat "$WORK/log.txt" >&2; echo "$name failed" >&2; exit 1; }
  read -r wall kb user sys < "$WORK/time.txt"
  echo "$name $wall $kb $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')" | tee -a "$WORK/results.txt" >&2
}

have_np=0; have_torch=0
$PY -c "import numpy" 2>/dev/null && have_np=1
$PY -c "import torch" 2>/dev/null && have_torch=1
skip() { [[ " $SKIP " == *" $1 "* ]]; }

if [ "$MODE" = linear ]; then
  for ((r = 1; r <= RUNS; r++)); do
    skip floor || run floor sh -c 'cat "$@" > /dev/null && cat "$1" > "$0"' "$WORK/out/floor.bin" "${inputs[@]}"
    skip cloudsoup || run cloudsoup dotnet "$CLI" merge "$(recipe linear)" --out "$WORK/out"
    if [ $have_np = 1 ] && ! skip memmap; then run memmap $PY "$HERE/memmap_merge.py" "$WORK/out/memmap.safetensors" "${inputs[@]}"; fi
    if [ $have_torch = 1 ] && ! skip load-all; then run load-all $PY "$ROOT/bench/merge-throughput/script_baseline.py" "$WORK/out/all.safetensors" "${inputs[@]}"; fi
  done
  if [ $have_np = 1 ] && ! skip cloudsoup && ! skip memmap; then   # the same result, byte for byte
    dotnet "$CLI" merge "$(recipe linear)" --out "$WORK/out" > /dev/null
    $PY "$HERE/memmap_merge.py" "$WORK/out/memmap.safetensors" "${inputs[@]}"
    echo "cloudsoup against memmap: $($PY "$HERE/same_tensors.py" "$WORK/out/model.safetensors" "$WORK/out/memmap.safetensors" 2>&1 | tail -1)" >&2
  fi
  names="floor cloudsoup memmap load-all"
else
  for ((r = 1; r <= RUNS; r++)); do
    for m in $METHODS; do run "$m" dotnet "$CLI" merge "$(recipe "$m")" --out "$WORK/out"; done
  done
  names="$METHODS"
fi

# Median per program; the floor's median is the unit of the ratio column.
echo
echo "N=$N SIZE_MB=$SIZE_MB RUNS=$RUNS MODE=$MODE  $(date -u +%FT%TZ)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v names="$names" -v mode="$MODE" '
  { t[$1] = t[$1] " " $2; m[$1] = m[$1] " " $3; c[$1] = c[$1] " " $4 }
  function median(s,   a, n, i, j, x) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  function least(s,   a, n, i, x) { n = split(s, a, " "); x = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 < x + 0) x = a[i]; return x }
  END {
    unit = mode == "linear" ? "floor" : "linear"
    base = median(t[unit])
    cbase = median(c[unit])
    best = least(t[unit])
    printf "| program | wall s (median) | runs | × %s | best wall s | best × %s best | CPU s, user+sys (median) | CPU × %s | peak RSS MB (median) |\n|---|---|---|---|---|---|---|---|---|\n", unit, unit, unit
    k = split(names, ns, " ")
    for (i = 1; i <= k; i++) { n = ns[i]; if (!(n in t)) continue
      s = median(t[n]); u = median(c[n])
      printf "| %s | %.2f | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f |\n", n, s, substr(t[n], 2), s / base, least(t[n]), least(t[n]) / best, u, (cbase > 0 ? u / cbase : 0), median(m[n]) / 1024 }
  }' "$WORK/results.txt"
