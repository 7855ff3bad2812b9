#!/usr/bin/env bash
# hssgw policy replay over a large trail (issue 24): builds hssgw and
# report-trail optimised, without sanitizers, into build-bench/, writes a
# trail of N records once (default 1,000,000; report-trail --fast, byte for
# byte what the writer writes, the trail bench_report.sh uses), then times,
# in the same run, "hssgw audit verify" (the baseline) and "hssgw policy
# replay" of a candidate that reads groups and a condition key and flips
# part of the decisions.  Numbers, never assertions.  Wall time depends on
# what else the machine runs (the load average is printed); CPU time
# (user + sys) is what the work costs.
# Usage: bench/bench_replay.sh [records] [dir]   (dir default /var/tmp)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
records=${1:-1000000}
dir=$(mktemp -d "${2:-/var/tmp}/hssgw-bench-replay-XXXXXX")
trap 'rm -rf "$dir"' EXIT
cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release \
	-DHSSGW_BENCH=ON -DHSSGW_TESTS=ON >/dev/null
cmake --build "$root/build-bench" -j2 --target hssgw report-trail >/dev/null
bin=$root/build-bench/bin
# 16 kinds of request write 22 records (6 exports with intent + outcome).
requests=$(( records * 16 / 22 ))
"$bin/report-trail" "$dir/audit.jsonl" "$requests" 3000 --fast
n=$(wc -l < "$dir/audit.jsonl")
echo "trail: $n records, $(du -h "$dir/audit.jsonl" | cut -f1)"
# The candidate: team-a keeps its Allow, team-b loses it, team-c is denied
# a project by a condition; only the policy directory is read.
mkdir -p "$dir/cand"
cat >"$dir/cand/teams.json" <<'POL'
{"Version": "2012-10-17", "Statement": [
 {"Sid": "AllowTeamA", "Effect": "Allow", "Principal": {"jwt:groups": "team-a"},
  "Action": "*", "Resource": "hss:*"},
 {"Sid": "AllowTeamC", "Effect": "Allow", "Principal": {"jwt:groups": "team-c"},
  "Action": "*", "Resource": "hss:*",
  "Condition": {"StringNotEquals": {"hss:project": "prod"}}}]}
POL
cat >"$dir/cand.json" <<CONF
{"listen": "unix:$dir/s.sock",
 "jwt": {"issuers": [{"issuer": "https://idp.example", "audiences": ["hssgw"],
   "keys": [{"kid": "k", "alg": "HS256", "file": "unused.secret"}]}]},
 "policies_dir": "cand",
 "credentials": [{"name": "main", "type": "token_file", "file": "unused.token"}],
 "projects": [{"alias": "demo", "project_id": "0123456789abcdef0123456789abcdef",
   "region": "cn-north-4", "endpoint": "https://127.0.0.1:9",
   "credentials": "main"}],
 "audit": {"file": "unused.jsonl"}}
CONF
# name command...: "wall user+sys maxrss" of one run, output discarded.
run() {
	local name=$1 out
	shift
	out=$( { /usr/bin/time -f "%e %U %S %M" "$@" >/dev/null; } 2>&1 |
		tail -n 1)
	set -- $out
	printf "%-8s wall %6.1f s  cpu %6.1f s  %8.0f records/s (cpu)  peak RSS %6d KiB\n" \
		"$name" "$1" "$(echo "$2 + $3" | bc)" \
		"$(echo "$n / ($2 + $3 + 0.001)" | bc -l)" "$4"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run verify "$bin/hssgw" audit verify "$dir/audit.jsonl"
# Exit 1 (something flips) is the expected answer here.
run replay sh -c "'$bin/hssgw' policy replay --config '$dir/cand.json' \
	'$dir/audit.jsonl'; test \$? -le 1"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/hssgw" policy replay --config "$dir/cand.json" --format table \
	"$dir/audit.jsonl" | grep -A100 '^decisions' || true
