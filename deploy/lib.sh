# shellcheck shell=bash
# Shell functions shared by deploy/local.sh and tests/run.sh (sourced, not
# run).  Owns the package list and the template renderer; never starts or
# stops anything and never prints a secret.

# Debian 12 packages the build, the local stack and the tests need.
# ca-certificates: the system CA bundle (/etc/ssl/certs/ca-certificates.crt)
# that libcurl only recommends, and --no-install-recommends skips; without
# it a minimal root has no trust store for HSS's certificate.
# libhiredis-dev and redis-server: shared_state (docs/SHARED_STATE.md) and
# HSSGW_INSTANCES=N ./deploy/local.sh.
# libsystemd-dev: sd_listen_fds and sd_notify ("listen": "systemd",
# Type=notify: hssgw.socket, hssgw.service).
# librelp-dev: hssgw audit ship's RELP client (docs/AUDIT.md, "Shipping").
# shellcheck disable=SC2034 # used by the scripts that source this file
HSSGW_PKGS=(build-essential cmake pkg-config libfcgi-dev libfcgi-bin
	libjson-c-dev libcurl4-openssl-dev libjwt-dev libssl-dev libcmocka-dev
	nginx-light openssl curl ca-certificates python3 spawn-fcgi
	libhiredis-dev redis-server libsystemd-dev librelp-dev)

# hssgw_install_missing PKG...: installs the packages dpkg does not list as
# installed; runs apt-get update only when something is missing.
hssgw_install_missing() {
	local p missing=()
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages (run as root to install): ${missing[*]}" >&2
		return 1
	fi
	echo "installing: ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}"
}

# hssgw_render TEMPLATE OUT NAME=VALUE...: replaces every @NAME@ in
# TEMPLATE and writes OUT; fails if a placeholder is left without a value.
hssgw_render() {
	local tpl=$1 out=$2 kv text
	shift 2
	text=$(<"$tpl")
	for kv in "$@"; do
		text=${text//@${kv%%=*}@/${kv#*=}}
	done
	if grep -qE '@[A-Z][A-Z0-9_]*@' <<<"$text"; then
		echo "$tpl: no value for $(grep -oE '@[A-Z][A-Z0-9_]*@' \
			<<<"$text" | sort -u | tr '\n' ' ')" >&2
		return 1
	fi
	printf '%s\n' "$text" >"$out"
}
