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

hssgw_install_missing "${HSSGW_PKGS[@]}" clang clang-format

build=$root/build-test
cmake -S "$root" -B "$build" -DHSSGW_WERROR=ON -DHSSGW_SANITIZE=ON
cmake --build "$build" -j2

status=0
mapfile -t cfiles < <(find gateway tests -type f \( -name '*.c' -o -name '*.h' \) | sort)
echo "clang-format: ${#cfiles[@]} files"
if [ "${#cfiles[@]}" -gt 0 ] &&
	! clang-format --dry-run -Werror "${cfiles[@]}"; then
	echo "clang-format: FAILED (run clang-format -i on the files above)" >&2
	status=1
fi

# Sanitizer reports are failures, not warnings.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if ! (cd "$build" && ctest --output-on-failure --timeout 900); then
	status=1
fi
exit "$status"
