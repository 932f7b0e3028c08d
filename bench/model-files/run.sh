#!/usr/bin/env bash
# What the tokenizer check of tokenizer_source costs (README "What a merge writes"; docs/methods.md "Model files"):
# three models with a 15 MB, 256,000-token tokenizer.json merged without tokenizer_source (files copied), with it
# and byte-identical files (compared by hash), and with it and one file formatted differently (parsed and compared
# token by token). The weights are tiny, so the differences are the model-files step.
# Usage: bench/model-files/run.sh [WORKDIR=/tmp/cloudsoup-bench-model-files]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${1:-/tmp/cloudsoup-bench-model-files}"
"$ROOT/cloudsoup" --help >/dev/null   # builds the CLI if sources changed
rm -rf "$WORK"; mkdir -p "$WORK"
python3 "$ROOT/bench/model-files/make_folders.py" "$WORK" "$ROOT/tests/CloudSoup.Tests/Fixtures/sharded_bin/a.expected.safetensors"
for run in copy same-bytes reformatted copy same-bytes reformatted; do
  rm -rf "$WORK/out"
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" dotnet "$ROOT/src/CloudSoup.Cli/bin/publish/cloudsoup.dll" merge "$WORK/$run.yaml" --out "$WORK/out" > /dev/null
  read -r secs rss_kb < "$WORK/time.txt"
  printf "%-12s wall %5.2f s, peak RSS %4.0f MB\n" "$run" "$secs" "$((rss_kb / 1024))"
done
