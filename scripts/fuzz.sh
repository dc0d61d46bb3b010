#!/usr/bin/env bash
# Runs the project's Go fuzz targets, one at a time, each for DURATION.
#
#   scripts/fuzz.sh TARGET DURATION
#
# TARGET is a fuzz function name (FuzzHandshakeFields), a package pattern
# (./auth/...), or "all". DURATION is a go test -fuzztime value ("10m",
# "30s", or "100000x" for a count of executions). FUZZ_PARALLEL sets
# go test -parallel (default: GOMAXPROCS). Logs go to $FUZZ_LOGS (default
# $TMPDIR/clusterclient-fuzz-logs)/<package>.<target>.log; a markdown
# table of the runs is printed at the end. The exit status is non-zero if any target
# failed (its crasher is then in the package's testdata/fuzz/).
#
# CI needs none of this: plain `go test` runs every target's seed corpus.
set -euo pipefail

if [ $# -ne 2 ]; then
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
target=$1
duration=$2
cd "$(dirname "$0")/.."
logs=${FUZZ_LOGS:-${TMPDIR:-/tmp}/clusterclient-fuzz-logs}
mkdir -p "$logs"

pattern=./...
case $target in
all | Fuzz*) ;;
*) pattern=$target ;;
esac

# package<TAB>function for every fuzz target in the selected packages.
targets=$(go list -f '{{.ImportPath}}{{"\t"}}{{.Dir}}' "$pattern" | while IFS=$'\t' read -r pkg dir; do
	for f in "$dir"/*_test.go; do
		[ -e "$f" ] || continue
		{ grep -o '^func Fuzz[A-Za-z0-9_]*(' "$f" || true; } | sed 's/^func //; s/($//' | while read -r fn; do
			printf '%s\t%s\n' "$pkg" "$fn"
		done
	done
done)
case $target in
Fuzz*) targets=$(printf '%s\n' "$targets" | awk -F'\t' -v t="$target" '$2 == t') ;;
esac
if [ -z "$targets" ]; then
	echo "fuzz.sh: no fuzz target matches $target" >&2
	exit 2
fi

parallel=()
if [ -n "${FUZZ_PARALLEL:-}" ]; then
	parallel=(-parallel "$FUZZ_PARALLEL")
fi

table="| package | target | fuzztime | elapsed | execs | new interesting | result |
|---|---|---|---|---|---|---|"
failed=0
while IFS=$'\t' read -r pkg fn; do
	log="$logs/$(echo "$pkg" | tr '/' '_').$fn.log"
	echo "== $pkg $fn for $duration (log: $log)" >&2
	start=$(date +%s)
	if go test -run '^$' -fuzz "^$fn\$" -fuzztime "$duration" "${parallel[@]}" "$pkg" >"$log" 2>&1; then
		result=ok
	elif ! grep -q 'Failing input written to' "$log" &&
		[ "$(grep -A1 -E '^--- FAIL: ' "$log" | tail -n 1 | tr -d '[:space:]')" = contextdeadlineexceeded ]; then
		# Go 1.26's fuzz coordinator can report its own -fuzztime deadline
		# as a failure when a worker is slow to stop; no input failed.
		result="ok (coordinator deadline race, no failing input)"
	else
		result=FAIL
		failed=1
	fi
	elapsed=$(($(date +%s) - start))s
	last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -n 1 || true)
	execs=$(echo "$last" | sed -nE 's/.*execs: ([0-9]+).*/\1/p')
	interesting=$(echo "$last" | sed -nE 's/.*new interesting: ([0-9]+).*/\1/p')
	table="$table
| $pkg | $fn | $duration | $elapsed | ${execs:-?} | ${interesting:-?} | $result |"
	if [ "$result" = FAIL ]; then
		tail -n 30 "$log" >&2
	fi
done <<<"$targets"

echo "$table"
exit $failed
