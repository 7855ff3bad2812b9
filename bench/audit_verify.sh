#!/usr/bin/env bash
# The auditor's tools at disk speed (issue 23, item 4): builds hssgw and
# report-trail optimised, without sanitizers, into build-bench/, writes a
# trail of N records (default 1,000,000; report-trail --fast, byte for byte
# what the writer writes, the trail bench_report.sh uses) or reuses the one
# named, reads it once into the page cache, then measures in the same run
# the CPU time (user + sys) of "sha256sum" over the trail's files (the
# baseline: reading and hashing every byte once) and of "hssgw audit
# verify" and "hssgw audit query | wc -l" over the same files, and prints
# the ratios sha256sum CPU / verify CPU and sha256sum CPU / query CPU
# (1.0: as fast as sha256sum).  Numbers, never assertions; not run by
# run.sh.  Wall time depends on what else the machine runs (the load
# average is printed); CPU time is what the work costs.
# Usage: bench/audit_verify.sh [records] [trail]
#   trail: a trail file to reuse (its .checkpoint beside it), or where to
#   write one and keep it; without it, a temporary one is written and
#   removed at the end.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
records=${1:-1000000}
trail=${2:-}
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/hssgw-bench-verify-XXXXXX")
trap 'rm -rf "$dir"' EXIT
if [ -z "$trail" ]; then
	trail=$dir/audit.jsonl
fi
cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release \
	-DHSSGW_BENCH=ON -DHSSGW_TESTS=ON >/dev/null
cmake --build "$root/build-bench" -j2 --target hssgw report-trail >/dev/null
bin=$root/build-bench/bin
if [ -s "$trail" ]; then
	echo "trail: reusing $trail"
else
	# 16 kinds of request write 22 records (6 exports: intent + outcome);
	# one request every 3 s, a month of traffic.
	"$bin/report-trail" "$trail" $(( records * 16 / 22 )) 3000 --fast
fi
files=("$trail")
echo "trail: $(wc -l < "$trail") records, $(du -h "$trail" | cut -f1)"
cat "${files[@]}" >/dev/null # the page cache, for every row alike
# name command...: prints "wall cpu" of one run, output discarded, and
# keeps the CPU seconds (user + sys, the children's included) in a file.
run() {
	local name=$1
	shift
	/usr/bin/time -o "$dir/time" -f "%e %U %S" "$@" >/dev/null
	read -r wall user sys <"$dir/time"
	echo "$user + $sys" | bc >"$dir/cpu.$name"
	printf "%-26s wall %6.2f s  cpu %6.2f s (user %.2f, sys %.2f)\n" \
		"$name" "$wall" "$(cat "$dir/cpu.$name")" "$user" "$sys"
}
ratio() {
	echo "scale=2; $(cat "$dir/cpu.$1") / $(cat "$dir/cpu.$2")" | bc -l
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run sha256sum sha256sum "${files[@]}"
run "audit verify" "$bin/hssgw" audit verify "${files[@]}"
run "audit query | wc -l" sh -c '"$0" audit query "$@" | wc -l' \
	"$bin/hssgw" "${files[@]}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ratio sha256sum / verify (CPU, same run): $(ratio sha256sum "audit verify")"
echo "ratio sha256sum / query | wc -l (CPU, same run):" \
	"$(ratio sha256sum "audit query | wc -l")"
