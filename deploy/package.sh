#!/usr/bin/env bash
# Builds the Debian package: a release build (no sanitizers, Debian's
# hardening flags from dpkg-buildflags) into build-pkg/ and cpack -G DEB.
# Prints the path of the .deb.  Usage: deploy/package.sh [BUILD_DIR]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build-pkg}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCMAKE_INSTALL_PREFIX=/usr -DHSSGW_TESTS=OFF -DHSSGW_WERROR=ON \
	-DCMAKE_C_FLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
	-DCMAKE_EXE_LINKER_FLAGS="$(dpkg-buildflags --get LDFLAGS)" >&2
cmake --build "$build" -j2 >&2
(cd "$build" && cpack -G DEB >&2)
ls "$build"/hssgw_*.deb
