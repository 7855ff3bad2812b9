#!/usr/bin/env bash
# A fresh machine, really: builds a minimal Debian 12 root with Debian's
# mmdebstrap (variant minbase, as container images are: no CA bundle, no
# compiler, no python), copies the working tree in and runs README's two
# commands inside it through chroot, as root, as a new user would:
#
#     ./deploy/local.sh && ./deploy/local.sh stop && ./tests/run.sh
#
# Slow (a Debian bootstrap, every package, a full sanitizer build and every
# test: 20 minutes and more on 2 cores): run it before a release, not from
# .ci/run.  Needs root and Debian's mirror.  Exit status: run.sh's.
#
#   tests/fresh-root.sh [DIR]     DIR: the root to build (default: a new
#                                 /var/tmp/hssgw-fresh.XXXXXX, kept with its
#                                 log, fresh-root.log, for a post-mortem)
#
# Like a container image, the root gets a policy-rc.d that keeps package
# installs from starting daemons (nginx's postinst would bind port 80 of
# the host).  The chroot shares the host's network: local.sh's ports come
# from HSSGW_PORT and EMU_PORT, by default two free ones.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=deploy/lib.sh
. "$src/deploy/lib.sh"
[ "$(id -u)" -eq 0 ] || {
	echo "fresh-root.sh: run as root (mmdebstrap, chroot, mounts)" >&2
	exit 1
}
hssgw_install_missing mmdebstrap python3

dir=${1:-$(mktemp -d /var/tmp/hssgw-fresh.XXXXXX)}
mirror=${HSSGW_MIRROR:-http://deb.debian.org/debian}
log=$dir.log
mounted=()

cleanup() {
	local m pid
	# Whatever the scripts left running inside the root (local.sh's
	# stack if a step failed before "stop"), by pid.
	for pid in /proc/[0-9]*; do
		if [ "$(readlink "$pid/root" 2>/dev/null)" = "$dir" ]; then
			kill "${pid#/proc/}" 2>/dev/null || true
		fi
	done
	sleep 1
	for ((m = ${#mounted[@]} - 1; m >= 0; m--)); do
		umount -l "${mounted[m]}" 2>/dev/null || true
	done
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

echo "fresh-root: bootstrapping Debian 12 minbase into $dir (log: $log)"
# mmdebstrap wants an empty or missing target.
rmdir "$dir" 2>/dev/null || true
mmdebstrap --variant=minbase bookworm "$dir" \
	"deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
	"deb ${mirror%/debian}/debian-security bookworm-security main" \
	>"$log" 2>&1

printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
chmod 755 "$dir/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$dir/etc/resolv.conf"
# A host behind a TLS-intercepting proxy trusts the proxy's CA locally; a
# new user there has the same CA, so the root gets the host's local CAs
# (nothing else of the host): update-ca-certificates adds them when
# local.sh installs ca-certificates, and node, which keeps its own CA
# list, is pointed at the bundle.
extra_ca=
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
	mkdir -p "$dir/usr/local/share/ca-certificates"
	cp /usr/local/share/ca-certificates/*.crt \
		"$dir/usr/local/share/ca-certificates/"
	extra_ca=NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi

for m in proc sys dev dev/pts; do
	case $m in
	proc) mount -t proc proc "$dir/proc" ;;
	sys) mount -t sysfs sys "$dir/sys" ;;
	dev) mount --bind /dev "$dir/dev" ;;
	dev/pts) mount --bind /dev/pts "$dir/dev/pts" ;;
	esac
	mounted+=("$dir/$m")
done

# The working tree as git sees it (tracked and new files, nothing ignored:
# no build dir, no deploy/state).
mkdir -p "$dir/root/hssgw"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$src" ls-files -z -co --exclude-standard |
		tar -C "$src" --null -T - -cf - | tar -C "$dir/root/hssgw" -xf -
else
	tar -C "$src" --exclude='./build*' --exclude=./deploy/state -cf - . |
		tar -C "$dir/root/hssgw" -xf -
fi

gw_port=${HSSGW_PORT:-$(free_port)}
emu_port=${EMU_PORT:-$(free_port)}
echo "fresh-root: README's two commands inside (ports $gw_port, $emu_port)"
set +e
chroot "$dir" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HSSGW_PORT="$gw_port" EMU_PORT="$emu_port" $extra_ca /bin/bash -c '
	cd /root/hssgw || exit 1
	./deploy/local.sh || { echo "fresh-root: local.sh FAILED"; exit 1; }
	./deploy/local.sh stop
	./tests/run.sh
' >>"$log" 2>&1
rc=$?
set -e
tail -5 "$log"
if [ "$rc" -eq 0 ]; then
	echo "fresh-root: PASSED"
else
	echo "fresh-root: FAILED (exit $rc); the log: $log" >&2
fi
exit "$rc"
