# Sourced by the service benchmarks (blob-merge, download, fanout, soup-fanout). start_dev_host starts `cloudsoup dev --no-worker` in its own
# process (so its memory is not counted as the worker's or the client's): Azurite in memory on free loopback ports,
# the API and the drop watcher. Waits until it prints where they are, then sets DEV (its pid), API (its base URL) and
# CloudSoupStorage (exported); Azurite exits with it. The caller kills $DEV when done (a trap). Needs CLI and WORK.
start_dev_host() {
  "${CLI[@]}" dev --no-worker -p 0 >"$WORK/dev.log" 2>&1 &
  DEV=$!
  CloudSoupStorage=""; API=""
  for _ in $(seq 300); do
    CloudSoupStorage=$(sed -nE "s/.*export CloudSoupStorage='(.*)'.*/\1/p" "$WORK/dev.log" | head -1)
    API=$(sed -nE 's#.*API +(http://[^ ]+)/api/merges.*#\1#p' "$WORK/dev.log" | head -1)
    [ -n "$CloudSoupStorage" ] && [ -n "$API" ] && break
    kill -0 $DEV 2>/dev/null || { cat "$WORK/dev.log"; exit 1; }
    sleep 0.2
  done
  if [ -z "$CloudSoupStorage" ] || [ -z "$API" ]; then
    kill $DEV 2>/dev/null || true
    echo "cloudsoup dev did not start:"; cat "$WORK/dev.log"; exit 1
  fi
  export CloudSoupStorage
}

# run_on_workers K RECIPE TAG: starts K `cloudsoup worker` processes (polling the empty queue every 0.1 s instead of the
# default 2 s, which keeps queue pick-up out of the engine's figures; docs/fanout.md states pick-up latency, KEDA's
# polling in Azure, as a term of its own), waits until each reads the queue (warm: the job's time holds no process
# start-up), submits RECIPE through $API, waits for the job to succeed (exits with the job view if it fails), saves
# $WORK/job-TAG.json and $WORK/report-TAG.json, stops the workers and sets JOB_SECONDS (submit to succeeded). The
# workers' pids are in WORKERS while they run, for the caller's exit trap.
run_on_workers() {
  local k="$1" recipe="$2" tag="$3" id t0 t1 w
  WORKERS=()
  for ((w = 0; w < k; w++)); do
    CloudSoup__IdlePollInterval=00:00:00.1 "${CLI[@]}" worker >"$WORK/worker-$tag-$w.log" 2>&1 &
    WORKERS+=($!)
  done
  for ((w = 0; w < k; w++)); do
    for _ in $(seq 600); do grep -q "reading queue" "$WORK/worker-$tag-$w.log" && break; sleep 0.1; done
  done
  t0=$(date +%s.%N)
  id=$("${CLI[@]}" submit "$recipe" --api "$API" 2>/dev/null | grep -Eo '[0-9a-f]{20}' | head -1)
  while :; do
    curl -s "$API/api/merges/$id" >"$WORK/job-$tag.json"
    grep -q "\"id\":\"$id\",\"status\":\"succeeded\"" "$WORK/job-$tag.json" && break
    grep -q "\"id\":\"$id\",\"status\":\"failed\"" "$WORK/job-$tag.json" && { echo "job failed:"; cat "$WORK/job-$tag.json"; exit 1; }
    sleep 0.1
  done
  t1=$(date +%s.%N)
  curl -s "$API/api/merges/$id/report?format=json" >"$WORK/report-$tag.json"
  for w in "${WORKERS[@]}"; do kill "$w" 2>/dev/null || true; wait "$w" 2>/dev/null || true; done
  WORKERS=()
  JOB_SECONDS=$(echo "$t1 - $t0" | bc)
}
