#!/usr/bin/env bash
# Writes the hostile recipes of docs/reliability.md into a folder (default /tmp/hostile), one file per case, so each
# can be sent by hand: curl --data-binary @FILE $API, `cloudsoup upload FILE --to recipes/`, `cloudsoup merge FILE`.
# The tests build the same inputs in tests/CloudSoup.Tests/Support/HostileRecipes.cs.
set -euo pipefail
out="${1:-/tmp/hostile}"
mkdir -p "$out"
cd "$out"
M=checkpoints/hostile/a.safetensors
printf 'merge_method: linear\nmodels:\n  - model: %s\n    parameters:\n      weight: &r [{value: *r}]\n' $M > recursive-alias.yaml
{ printf 'merge_method: linear\nmodels: '; printf '[%.0s' {1..30000}; printf ']%.0s' {1..30000}; echo; } > nested-30000-yaml.yaml
{ printf '{"merge_method": "linear", "models": '; printf '[%.0s' {1..30000}; printf ']%.0s' {1..30000}; echo '}'; } > nested-30000-json.json
# Ten anchors, each a filter entry whose value lists the previous one nine times: 9^9 entries once expanded.
{ printf 'merge_method: linear\nmodels:\n  - model: %s\n    parameters:\n      weight:\n        - &l0 {filter: a, value: 1}\n' $M
  for i in {1..9}; do printf '        - &l%d {filter: a, value: [*l%d' $i $((i - 1)); printf ', *l%d' $((i - 1)){,,,,,,,}; echo ']}'; done
} > alias-bomb-filter-lists.yaml
printf '{a: [1, 2' > unclosed-flow-mapping.yaml
printf 'merge_method: "\\UFFFFFFFF"\nmodels: [a]\n' > escape-outside-unicode.yaml
{ printf 'merge_method: linear\nmodels:\n'; for i in $(seq -w 0 9999); do echo "  - model: checkpoints/hostile/m$i.safetensors"; done; } > 10000-models.yaml
{ printf 'merge_method: linear\nmodels:\n'; for i in $(seq -w 0 9999); do echo "  - m$i.safetensors"; done; } > soup.yaml
{ printf 'merge_method: passthrough\nslices:\n'; for _ in {1..2000}; do echo "  - sources: [{model: $M, layer_range: [0, 1]}]"; done; } > 2000-slices.yaml
{ printf 'merge_method: linear\nmodels: [{model: %s}]\nparameters:\n  weight:\n' $M; for i in {0..999}; do echo "    - {filter: layer$i, value: 1}"; done; } > 1000-filter-entries.yaml
{ printf 'merge_method: linear\nname: '; printf 'n%.0s' {1..5000}; printf '\nmodels: [%s]\n' $M; } > 5000-character-name.yaml
printf 'merge_method: linear\nmodels: ["checkpoints/a\\n\\u001b[31mred\\u202e.safetensors"]\n' > control-characters-in-a-reference.yaml
{ printf 'merge_method: linear\nmodels: [%s]\n#' $M; head -c 1048576 /dev/zero | tr '\0' x; echo; } > over-1-MiB.yaml
ls "$out"
