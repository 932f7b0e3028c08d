#!/usr/bin/env bash
# Kill/restart figures for docs/reliability.md: runs the process-level kill tests (WorkerKillTests: real
# `cloudsoup worker` processes SIGKILLed at random points of the commit while a reader polls the API) RUNS times
# and sums up what they print: kills per point, reads that saw a partial result (must be 0), how long each retry
# took to get back to the same point after a kill, and how the runs ended. Times are reported, never asserted.
# Usage: bench/worker-kills/run.sh [RUNS=5]
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUNS="${1:-5}"
LOG="$(mktemp)"
"$ROOT/cloudsoup" setup >/dev/null || exit 1
dotnet build "$ROOT/tests/CloudSoup.Tests/CloudSoup.Tests.csproj" -c Release --nologo -v quiet -clp:NoSummary >/dev/null || exit 1
for i in $(seq "$RUNS"); do
  dotnet test "$ROOT/tests/CloudSoup.Tests/CloudSoup.Tests.csproj" -c Release --no-build --nologo \
    --filter "FullyQualifiedName~WorkerKillTests" --logger "console;verbosity=detailed" >>"$LOG" 2>&1
done
python3 - "$LOG" "$RUNS" <<'PY'
import re, statistics, sys
text = open(sys.argv[1]).read()
kills = re.findall(r"^\s*killed (attempt-\d+)-\w+ at (\S+) \((\d+) of (\d+) files committed\)(?:; the retry got there ([\d.]+) s after the previous kill)?; (\d+) reads", text, re.M)
points = {}
for _, point, *_ in kills: points[point] = points.get(point, 0) + 1
retry = [float(k[4]) for k in kills if k[4]]
reads = [int(m) for m in re.findall(r"^\s*(\d+) rounds of reads, none saw a partial result", text, re.M)]
passed = len(re.findall(r"^\s*Passed CloudSoup\.Tests\.Service\.WorkerKillTests", text, re.M))
failed = len(re.findall(r"^\s*Failed CloudSoup\.Tests\.Service\.WorkerKillTests", text, re.M))
cleanup = [float(m) for m in re.findall(r"deleted unrun ([\d.]+) s after it", text)]
giveup = [float(m) for m in re.findall(r"gave up ([\d.]+) s after the last kill", text)]
print(f"test runs: {int(sys.argv[2])} x 2 tests: {passed} passed, {failed} failed")
print(f"kills: {len(kills)} ({', '.join(f'{p}: {n}' for p, n in sorted(points.items()))})")
print(f"reads while killing (random-point test): {sum(reads)} rounds of GET job, job list, report and the listed blobs")
print("partial results seen: " + ("none (each test asserts its reader saw none)" if failed == 0 else "see the failures below"))
for m in re.findall(r"^\s*Failed CloudSoup\.Tests\.Service\.WorkerKillTests\.(\S+).*\n\s*Error Message:\n(.*)", text, re.M): print("  FAILED", m[0], m[1].strip())
if retry: print(f"kill -> retry back at the same point: median {statistics.median(retry):.1f} s, max {max(retry):.1f} s (n={len(retry)})")
if cleanup: print(f"kill after publishing -> duplicate message deleted unrun: median {statistics.median(cleanup):.1f} s")
if giveup: print(f"third kill -> job failed, folders deleted: median {statistics.median(giveup):.1f} s")
PY
rm -f "$LOG"
