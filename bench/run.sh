#!/usr/bin/env bash
# Builds the benchmarks optimised, without sanitizers, into build-bench/
# and runs them.  Usage: bench/run.sh [seconds-per-operation]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release \
	-DHSSGW_TESTS=OFF -DHSSGW_BENCH=ON >/dev/null
cmake --build "$root/build-bench" -j2 --target bench_pipeline >/dev/null
"$root/build-bench/bin/bench_pipeline" "${1:-1}"
