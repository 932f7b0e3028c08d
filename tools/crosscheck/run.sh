#!/usr/bin/env bash
# Cross-checks `cloudsoup merge` against ref.py, an independent float64 NumPy implementation of the
# deterministic merge methods written from the papers and mergekit's semantics as docs/methods.md cites them
# (not from CloudSoup's code). Not a test: it
# needs Python with NumPy and PyYAML (Debian: apt-get install python3-numpy python3-yaml). Prints one line per
# recipe: OK when every tensor agrees within 1e-5, BAD with the worst tensors, or both sides' errors.
# Usage: tools/crosscheck/run.sh [RECIPE.yaml ...]   (default: every generated recipe; work folder $CROSSCHECK_DIR)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CROSSCHECK_DIR="${CROSSCHECK_DIR:-/tmp/cloudsoup-crosscheck}"
PY="${PYTHON:-/usr/bin/python3}"
"$PY" "$HERE/gen.py"
"$PY" "$HERE/mkrecipes.py"
if [ $# -eq 0 ]; then set -- "$CROSSCHECK_DIR"/r/*.yaml; fi
"$PY" "$HERE/cmp.py" "$@"
