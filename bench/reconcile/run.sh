#!/usr/bin/env bash
# One reconciler pass over many finished jobs (Control/Jobs/JobReconciler.cs): starts the dev host's Azurite (its own
# reconciler off, so only the bench's passes run) and runs `CloudSoup.Bench reconcile JOBS BLOBS RUNS`, which seeds JOBS
# succeeded jobs with BLOBS blobs each and prints the wall time and managed allocation of a pass that sweeps, a pass
# within SweepInterval, and the reads the reconciler made before it filtered and streamed.
# Usage: bench/reconcile/run.sh [JOBS=2000] [BLOBS=8] [RUNS=3] [WORKDIR=/tmp/cloudsoup-reconcile-bench]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
JOBS="${1:-2000}"; BLOBS="${2:-8}"; RUNS="${3:-3}"; WORK="${4:-/tmp/cloudsoup-reconcile-bench}"
"$ROOT/cloudsoup" --help >/dev/null   # installs npm packages and builds the CLI if needed
CLI=(dotnet "$ROOT/src/CloudSoup.Cli/bin/publish/cloudsoup.dll")
rm -rf "$WORK"; mkdir -p "$WORK"
export CloudSoup__ReconcileInterval=00:00:00
source "$ROOT/bench/dev-host.sh"
start_dev_host
trap 'kill $DEV 2>/dev/null || true' EXIT
dotnet build -c Release "$ROOT/bench/CloudSoup.Bench" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
dotnet "$ROOT/bench/CloudSoup.Bench/bin/Release/net10.0/CloudSoup.Bench.dll" reconcile "$JOBS" "$BLOBS" "$RUNS"
[ -n "${KEEP:-}" ] || rm -rf "$WORK"
