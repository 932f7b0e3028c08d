# Sourced by the service benchmarks (blob-merge, download, fanout): starts `cloudsoup dev --no-worker` in its own
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
