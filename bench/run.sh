#!/usr/bin/env bash
# Builds hssgw and the benchmarks optimised, without sanitizers, into
# build-bench/, then runs the in-process benchmark and the end-to-end one.
# Usage: bench/run.sh [seconds-per-measurement]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${1:-5}
command -v wrk >/dev/null || {
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
}
cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release \
	-DHSSGW_BENCH=ON -DHSSGW_TESTS=ON >/dev/null
cmake --build "$root/build-bench" -j2 >/dev/null
echo "== in-process: per-request work (bench/bench_pipeline.c)"
"$root/build-bench/bin/bench_pipeline" 1
echo
echo "== end to end through nginx (bench/e2e.py)"
python3 "$root/bench/e2e.py" --bin "$root/build-bench/bin" --src "$root" \
	--seconds "$secs"
