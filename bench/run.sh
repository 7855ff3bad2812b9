#!/usr/bin/env bash
# Builds hssgw and the benchmarks optimised, without sanitizers, into
# build-bench/, then runs the in-process benchmark, the audit trail one
# (durable against fsync off, same run) and the end-to-end one.
# Usage: bench/run.sh [seconds-per-measurement]
# BENCH_AUDIT_DIR: where the audit benchmark writes (default /var/tmp, a
# disk; /tmp may be tmpfs, where fsync is free and the ratio meaningless).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${1:-5}
# wrk drives e2e.py; haproxy (Debian 12: 2.6) is its HAProxy row's peer.
# The bench alone needs them: tests/run.sh does not install haproxy.
missing=()
for p in wrk haproxy; do
	command -v "$p" >/dev/null || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
		-y -qq --no-install-recommends "${missing[@]}"
fi
cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release \
	-DHSSGW_BENCH=ON -DHSSGW_TESTS=ON >/dev/null
cmake --build "$root/build-bench" -j2 >/dev/null
echo "== in-process: per-request work (bench/bench_pipeline.c)"
"$root/build-bench/bin/bench_pipeline" 1
echo
echo "== audit trail: group commit, durable vs fsync off (bench/bench_audit.c)"
"$root/build-bench/bin/bench_audit" "$secs" "${BENCH_AUDIT_DIR:-/var/tmp}"
echo
echo "== shared budget through Redis vs in process (bench/bench_shared.c)"
"$root/build-bench/bin/bench_shared" "$secs"
echo
echo "== end to end through nginx (bench/e2e.py)"
# The Node.js gateway's rows when node is there (npm ci from the pinned
# package-lock.json the first time); without node the other rows still run.
node_opt=()
if command -v node >/dev/null; then
	if [ ! -d "$root/bench/node/node_modules" ] && command -v npm >/dev/null; then
		npm ci --prefix "$root/bench/node" --no-audit --no-fund \
			--loglevel=error || echo "npm ci failed: Node rows skipped" >&2
	fi
	[ -d "$root/bench/node/node_modules" ] && node_opt=(--node)
fi
python3 "$root/bench/e2e.py" --bin "$root/build-bench/bin" --src "$root" \
	--seconds "$secs" "${node_opt[@]}"
