#!/usr/bin/env bash
# The whole check, as CI runs it: install what is missing, build with
# warnings as errors and ASan+UBSan into build-test/, check formatting, run
# every test (unit and integration) through ctest.  Exits non-zero on any
# failure; ctest's closing "N tests passed/failed" line is what CI reads.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=deploy/lib.sh
. deploy/lib.sh

# redis-tools: redis-cli in test_shared; stunnel4: its TLS tunnel to Redis.
# redis-sentinel: the failover test (test_sentinel.py); wrk: the load of
# test_restart.py; systemd: systemd-analyze verify on the units
# (test_systemd.py; no systemd runs as PID 1 in the tests).
# python3-jwcrypto: the test IdP's keys and tokens (test_jwks.py).
# prometheus: the real Prometheus and promtool of test_metrics.py.
# chromium, jq, bc: the audit report's browser test (test_report.py).
# rsyslog, rsyslog-relp: the RELP collector of test_ship.py (imrelp).
# haproxy: test_bench_e2e.py checks the HAProxy config bench/e2e.py
# generates with haproxy -c (its service has no listener by default).
# Test-time only: mandoc lints the man pages (tests/integration/test_man.py);
# python3-yaml, python3-jsonschema and nodejs check docs/openapi.yaml
# (test_openapi.py); dpkg-dev (dpkg-shlibdeps, dpkg-buildflags), lintian and
# file build and check the Debian package (test_package.py).
hssgw_install_missing "${HSSGW_PKGS[@]}" clang clang-format clang-tidy libclang-rt-14-dev \
	chromium jq bc redis-tools stunnel4 redis-sentinel wrk systemd \
	rsyslog rsyslog-relp haproxy \
	mandoc python3-yaml python3-jsonschema nodejs dpkg-dev lintian file prometheus python3-jwcrypto

build=$root/build-test
cmake -S "$root" -B "$build" -DHSSGW_WERROR=ON -DHSSGW_SANITIZE=ON \
	-DCMAKE_EXPORT_COMPILE_COMMANDS=ON
cmake --build "$build" -j2

# The OpenAPI 3.1 validator test_openapi.py runs, from the npm registry,
# pinned, next to the build (npm only when no npm came with nodejs).
if [ ! -x "$build/npm/node_modules/.bin/validate-api" ]; then
	command -v npm >/dev/null || hssgw_install_missing npm
	npm install --prefix "$build/npm" --no-audit --no-fund --loglevel=error \
		@seriousme/openapi-schema-validator@2.11.0
fi

status=0
mapfile -t cfiles < <(find gateway tests bench -type f \( -name '*.c' -o -name '*.h' \) | sort)
echo "clang-format: ${#cfiles[@]} files"
if [ "${#cfiles[@]}" -gt 0 ] &&
	! clang-format --dry-run -Werror "${cfiles[@]}"; then
	echo "clang-format: FAILED (run clang-format -i on the files above)" >&2
	status=1
fi

# .clang-tidy's checks over the gateway; any finding fails the run.
echo "clang-tidy: gateway/*/*.c"
if ! clang-tidy -p "$build" --quiet gateway/*/*.c >"$build/clang-tidy.log" 2>&1; then
	grep -E 'warning:|error:' "$build/clang-tidy.log" >&2 || cat "$build/clang-tidy.log" >&2
	echo "clang-tidy: FAILED" >&2
	status=1
fi

# Every fuzz harness builds with clang and libFuzzer and runs a short smoke
# round (FUZZ_SECONDS each, default 10; 0 skips): a crash, leak or
# sanitizer report fails the run.  Longer campaigns: see tests/fuzz/.
fuzz_seconds=${FUZZ_SECONDS:-10}
if [ "$fuzz_seconds" -gt 0 ]; then
	fbuild=$root/build-fuzz
	CC=clang cmake -S "$root" -B "$fbuild" -DHSSGW_FUZZ=ON \
		-DHSSGW_SANITIZE=ON -DHSSGW_WERROR=ON >/dev/null
	harnesses=(fuzz_auditq fuzz_config fuzz_fcgi fuzz_handle fuzz_jwks
		fuzz_jwt fuzz_policy fuzz_request)
	cmake --build "$fbuild" -j2 --target "${harnesses[@]}" >/dev/null
	for h in "${harnesses[@]}"; do
		corpus=$(mktemp -d)
		if "$fbuild/bin/$h" -max_total_time="$fuzz_seconds" \
			-print_final_stats=0 "$corpus" >"$fbuild/$h.log" 2>&1; then
			echo "fuzz: $h: $(grep -Eo 'Done [0-9]+ runs' "$fbuild/$h.log")"
		else
			echo "fuzz: $h FAILED; its log:" >&2
			tail -40 "$fbuild/$h.log" >&2
			status=1
		fi
		rm -rf "$corpus"
	done
fi

# Sanitizer reports are failures, not warnings.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if ! (cd "$build" && ctest --output-on-failure --timeout 900); then
	status=1
fi
exit "$status"
