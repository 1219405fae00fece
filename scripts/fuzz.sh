#!/usr/bin/env bash
# make fuzz: run every fuzz target of the module (every `func FuzzXxx` in a _test.go file of a
# package `go list ./...` knows), one at a time, each for FUZZTIME (default 60s), and print per
# target the number of executions and the result. A failing input is written by Go to the
# package's testdata/fuzz/FuzzXxx/, where `go test` replays it from then on.
#
#   scripts/fuzz.sh [FUZZTIME] [REGEXP]   e.g. scripts/fuzz.sh 60s, scripts/fuzz.sh 10s 'Redact|Classify'
#
# FUZZ_KEEP_CORPUS=1 also copies the inputs the run found interesting (kept by Go in
# $(go env GOCACHE)/fuzz) into each package's testdata/fuzz/FuzzXxx/, so `go test` replays them
# as seeds. Exit status: 0 when every target passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime=${1:-60s}
filter=${2:-.}
go=${GO:-go}
# Go spends up to -fuzzminimizetime (60s by default) shrinking each new interesting input, and
# a worker doing that executes nothing new; 5s keeps the budget for fuzzing.
minimizetime=${FUZZMINIMIZETIME:-5s}
cache=$("$go" env GOCACHE)/fuzz
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# target lines: "<import path> <dir> <FuzzName>"
targets=()
while IFS='|' read -r dir pkg; do
  for f in "$dir"/*_test.go; do
    [ -e "$f" ] || continue
    while read -r name; do
      targets+=("$pkg $dir $name")
    done < <(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$f")
  done
done < <("$go" list -f '{{.Dir}}|{{.ImportPath}}' ./...)

selected=()
for t in "${targets[@]}"; do
  name=${t##* }
  [[ $name =~ $filter ]] && selected+=("$t")
done
if [ "${#selected[@]}" -eq 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi

echo "fuzz: ${#selected[@]} targets, $fuzztime each, one at a time"
failed=0
summary=()
for t in "${selected[@]}"; do
  read -r pkg dir name <<<"$t"
  rel=${dir#"$PWD"/}
  log="$logs/$name.log"
  printf '\n== %s (%s), %s\n' "$name" "$rel" "$fuzztime"
  start=$SECONDS
  # stdin is /dev/null: a target must never wait for input.
  "$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimizetime" "$pkg" </dev/null >"$log" 2>&1
  rc=$?
  execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
  interesting=$(grep -oE 'new interesting: [0-9]+ \(total: [0-9]+\)' "$log" | tail -1 || true)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    result=FAIL
    failed=1
    # What failed and where Go saved the input.
    grep -E -- '--- FAIL|Failing input|testdata/fuzz|panic:|\.go:[0-9]+:' "$log" | head -40 | sed 's/^/   /'
    echo "   (full log follows)"; tail -60 "$log" | sed 's/^/   | /'
  fi
  kept=""
  if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ] && [ -d "$cache/$pkg/$name" ]; then
    mkdir -p "$dir/testdata/fuzz/$name"
    n=0
    for f in "$cache/$pkg/$name"/*; do
      [ -e "$dir/testdata/fuzz/$name/${f##*/}" ] || { cp "$f" "$dir/testdata/fuzz/$name/" && n=$((n + 1)); }
    done
    kept=", $n inputs kept in $rel/testdata/fuzz/$name"
  fi
  line=$(printf '%-28s %-26s %-4s %12s execs  %s (%ds%s)' "$name" "$rel" "$result" "${execs:-0}" "${interesting:-}" $((SECONDS - start)) "$kept")
  echo "   $line"
  summary+=("$line")
done

printf '\n== fuzz summary (%s per target)\n' "$fuzztime"
printf '%s\n' "${summary[@]}"
exit "$failed"
