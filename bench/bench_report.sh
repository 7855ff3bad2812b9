#!/usr/bin/env bash
# The audit report over a large trail: builds hssgw and report-trail
# optimised, without sanitizers, into build-bench/, writes a trail of N
# records once (default 1,000,000; report-trail --fast, byte for byte what
# the writer writes), then times, in the same run, "hssgw audit verify"
# (the baseline: the report runs it first), "hssgw audit query | wc -l"
# (one parse per record) and "hssgw audit report".  Numbers, never
# assertions.  Wall time depends on what else the machine runs (the load
# average is printed); CPU time (user + sys) is what the work costs.
# Usage: bench/bench_report.sh [records] [dir]   (dir default /var/tmp)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
records=${1:-1000000}
dir=$(mktemp -d "${2:-/var/tmp}/hssgw-bench-report-XXXXXX")
trap 'rm -rf "$dir"' EXIT
cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release \
	-DHSSGW_BENCH=ON -DHSSGW_TESTS=ON >/dev/null
cmake --build "$root/build-bench" -j2 --target hssgw report-trail >/dev/null
bin=$root/build-bench/bin
# 16 kinds of request write 22 records (6 exports with intent + outcome).
requests=$(( records * 16 / 22 ))
# One request every 3 s: a month of traffic, so the charts bin by day.
"$bin/report-trail" "$dir/audit.jsonl" "$requests" 3000 --fast
echo "trail: $(wc -l < "$dir/audit.jsonl") records," \
	"$(du -h "$dir/audit.jsonl" | cut -f1)"
# name command...: "wall user+sys maxrss" of one run, output discarded.
run() {
	local name=$1 out
	shift
	out=$( { /usr/bin/time -f "%e %U %S %M" "$@" >/dev/null; } 2>&1 |
		tail -n 1)
	set -- $out
	printf "%-22s wall %6.1f s  cpu %6.1f s  peak RSS %6d KiB\n" \
		"$name" "$1" "$(echo "$2 + $3" | bc)" "$4"
	echo "$2 + $3" | bc > "$dir/cpu.$name"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run verify "$bin/hssgw" audit verify "$dir/audit.jsonl"
run query sh -c "'$bin/hssgw' audit query '$dir/audit.jsonl' | wc -l"
run report "$bin/hssgw" audit report "$dir/audit.jsonl" \
	--team-claim groups --out "$dir/report.html"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "cpu ratio report / verify (same run): %.2f; page %s\n" \
	"$(echo "$(cat "$dir/cpu.report") / $(cat "$dir/cpu.verify")" | bc -l)" \
	"$(du -h "$dir/report.html" | cut -f1)"
