#!/usr/bin/env bash
# The local hssgw stack on one Debian 12 machine: nginx (TLS) -> hssgw ->
# nginx (TLS) -> hss-emulator, all on loopback, all state in deploy/state/
# (gitignored).  Installs missing packages, builds into build/, makes a dev
# CA, keys and secrets once (private keys and secrets stay in the state dir,
# mode 0600), starts the three processes, runs one export and prints how to
# call the gateway.  Never touches /etc/nginx or systemd.
#
#   ./deploy/local.sh                      (re)start and run one export
#   ./deploy/local.sh token [--sub NAME] [--groups a,b]   print a dev JWT
#   ./deploy/local.sh stop                 stop what it started
#   HSSGW_INSTANCES=3 ./deploy/local.sh    three hssgw instances sharing one
#       budget through Debian's redis-server on a unix socket in state/ (no
#       TCP), behind one nginx upstream (docs/SHARED_STATE.md)
#   HSSGW_SHIP=1 ./deploy/local.sh         also a local collector (Debian's
#       rsyslog + imrelp from deploy/rsyslog/hssgw-collector.conf, on
#       127.0.0.1:HSSGW_RELP_PORT, default 2514, files in state/collector/)
#       and one "hssgw audit ship" per instance (docs/AUDIT.md, "Shipping")
#
# Ports: HSSGW_PORT (default 8443) for the gateway, EMU_PORT (default 9443)
# for the emulator.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=deploy/lib.sh
. "$here/lib.sh"

state=$here/state
build=$root/build
bin=$build/bin
gw_port=${HSSGW_PORT:-8443}
emu_port=${EMU_PORT:-9443}
issuer=https://idp.local.test
audience=hssgw
project_id=0123456789abcdef0123456789abcdef
region=cn-north-4
instances=${HSSGW_INSTANCES:-1}
ship=${HSSGW_SHIP:-0}
relp_port=${HSSGW_RELP_PORT:-2514}
case $instances in
[1-9]) ;;
*) echo "local.sh: HSSGW_INSTANCES must be 1 to 9" >&2; exit 1 ;;
esac

die() {
	echo "local.sh: $*" >&2
	exit 1
}

# Mints a dev token with the RS256 key in the state dir.
mint() {
	local sub=dev-alice groups=hss-exporters
	while [ $# -gt 0 ]; do
		case $1 in
		--sub) sub=${2:?--sub needs a value}; shift 2 ;;
		--groups) groups=${2:?--groups needs a value}; shift 2 ;;
		*) die "token: unknown option $1" ;;
		esac
	done
	if [ ! -x "$bin/hssgw" ] || [ ! -f "$state/keys/idp-rs256.pem" ]; then
		die "no local stack yet: run ./deploy/local.sh first"
	fi
	"$bin/hssgw" mint-token --key "$state/keys/idp-rs256.pem" \
		--alg RS256 --kid dev-rs256 --iss "$issuer" --aud "$audience" \
		--sub "$sub" --groups "$groups" --ttl 3600
}

# Stops a process from a pid file, only if it is still the program we
# started (a stale pid file must not kill a stranger).
stop_pid() {
	local name=$1 exe=$2 pidf=$state/$1.pid pid
	[ -f "$pidf" ] || return 0
	pid=$(<"$pidf")
	if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ]; then
		kill -TERM "$pid"
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		echo "stopped $name ($pid)"
	fi
	rm -f "$pidf"
}

stop_all() {
	local nginx
	nginx=$(command -v nginx || echo /usr/sbin/nginx)
	if [ -f "$state/nginx.pid" ] && [ -f "$state/nginx.conf" ]; then
		"$nginx" -p "$state" -c "$state/nginx.conf" \
			-e "$state/logs/error.log" -s quit 2>/dev/null || true
		for _ in $(seq 50); do
			[ -f "$state/nginx.pid" ] || break
			sleep 0.1
		done
		echo "stopped nginx"
	fi
	local gw i
	gw=$(readlink -f "$bin/hssgw" 2>/dev/null || echo none)
	stop_pid hssgw "$gw"
	# Every instance a HSSGW_INSTANCES run started, whatever it is now.
	for i in $(seq 9); do
		stop_pid "hssgw-$i" "$gw"
	done
	stop_pid emulator "$(readlink -f "$bin/hss-emulator" 2>/dev/null || echo none)"
	stop_pid redis "$(readlink -f "$(command -v redis-server || echo none)")"
	stop_pid ship "$gw"
	for i in $(seq 9); do
		stop_pid "ship-$i" "$gw"
	done
	stop_pid rsyslog "$(readlink -f "$(command -v rsyslogd || echo /usr/sbin/rsyslogd)")"
	rm -f "$state"/hssgw*.sock "$state/emulator.sock" "$state/redis.sock"
}

build() {
	hssgw_install_missing "${HSSGW_PKGS[@]}"
	if [ "$ship" = 1 ]; then
		hssgw_install_missing rsyslog rsyslog-relp
	fi
	mkdir -p "$state/logs"
	echo "building into $build (log: $state/logs/build.log)"
	if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DHSSGW_WERROR=OFF -DHSSGW_SANITIZE=OFF &&
		cmake --build "$build" --target hssgw hss-emulator -j2; } \
		>"$state/logs/build.log" 2>&1; then
		tail -n 40 "$state/logs/build.log" >&2
		die "build failed"
	fi
}

# Dev CA, server cert, IdP keys, HS256 secret and emulator token, made once
# and kept across restarts so tokens and --cacert stay valid.
make_secrets() {
	local tls=$state/tls keys=$state/keys sec=$state/secrets
	umask 077
	mkdir -p "$tls" "$keys" "$sec"
	if [ ! -f "$tls/server.pem" ]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
			-nodes -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 365 \
			-subj "/CN=hssgw local dev CA" 2>/dev/null
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$tls/server.key" -out "$tls/server.csr" \
			-subj "/CN=127.0.0.1" 2>/dev/null
		printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
			'basicConstraints=CA:FALSE' 'extendedKeyUsage=serverAuth' \
			>"$tls/server.ext"
		openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" \
			-CAkey "$tls/ca.key" -CAcreateserial -days 365 \
			-extfile "$tls/server.ext" -out "$tls/server.pem" 2>/dev/null
		chmod 644 "$tls/ca.pem" "$tls/server.pem"
	fi
	if [ ! -f "$keys/idp-rs256.pem" ]; then
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
			-out "$keys/idp-rs256.pem" 2>/dev/null
		openssl pkey -in "$keys/idp-rs256.pem" -pubout \
			-out "$keys/idp-rs256.pub.pem"
	fi
	# HS256 secret and emulator token: the files' exact bytes, no newline.
	[ -f "$keys/idp-hs256.secret" ] ||
		openssl rand -hex 32 | tr -d '\n' >"$keys/idp-hs256.secret"
	[ -f "$sec/demo.token" ] ||
		printf 'MIIT%s' "$(openssl rand -hex 48)" >"$sec/demo.token"
	# Task handle key (docs/TASKS.md): kept, so handles survive restarts.
	[ -f "$sec/task.key" ] ||
		openssl rand -hex 32 | tr -d '\n' >"$sec/task.key"
	chmod 600 "$tls/ca.key" "$tls/server.key" "$keys/idp-rs256.pem" \
		"$keys/idp-hs256.secret" "$sec/demo.token" "$sec/task.key"
	umask 022
}

render_configs() {
	local token user_directive=""
	token=$(<"$state/secrets/demo.token")
	[ "$(id -u)" -eq 0 ] && user_directive="user root root;"
	umask 077
	printf '{"projects":[{"project_id":"%s","tokens":["%s"]}]}\n' \
		"$project_id" "$token" >"$state/emulator.json"
	umask 022
	gw_config "$state/hssgw.json" "$state/hssgw.sock" audit/audit.jsonl "" \
		"$(ship_keys ship)"
	local i servers="server unix:$state/hssgw.sock;" msock="$state/hssgw.sock"
	if [ "$instances" -gt 1 ]; then
		servers=""
		# /metrics scrapes one instance's own socket (docs/METRICS.md).
		msock="$state/hssgw-1.sock"
		for i in $(seq "$instances"); do
			gw_config "$state/hssgw-$i.json" "$state/hssgw-$i.sock" \
				"audit/audit-$i.jsonl" "\"instance\": \"local-$i\",
	 \"shared_state\": {\"redis\": \"unix:$state/redis.sock\",
	   \"expected_instances\": $instances}," "$(ship_keys "ship-$i")"
			servers="$servers server unix:$state/hssgw-$i.sock;"
		done
	fi
	mkdir -p "$state/nginx" "$state/logs" "$state/audit"
	if [ "$ship" = 1 ]; then
		render_collector
	fi
	for d in body fastcgi proxy scgi uwsgi; do
		mkdir -p "$state/tmp/$d"
	done
	local vars=(STATE="$state" USER_DIRECTIVE="$user_directive"
		GW_PORT="$gw_port" EMU_PORT="$emu_port"
		HSSGW_SOCK="$msock" EMU_SOCK="$state/emulator.sock"
		HSSGW_SERVERS="$servers"
		TLS_CERT="$state/tls/server.pem" TLS_KEY="$state/tls/server.key"
		GW_RATE=20 GW_BURST=40 FCGI_READ_TIMEOUT=30s
		METRICS_ALLOW="allow 127.0.0.1;")
	hssgw_render "$root/nginx/nginx.conf.in" "$state/nginx.conf" "${vars[@]}"
	hssgw_render "$root/nginx/hssgw.conf.in" "$state/nginx/hssgw.conf" \
		"${vars[@]}"
	hssgw_render "$root/nginx/emulator.conf.in" \
		"$state/nginx/emulator.conf" "${vars[@]}"
}

# ship_keys NAME: audit.ship for one instance under HSSGW_SHIP=1, else
# nothing; its cursor and metrics textfile are state/ship/NAME.*.
ship_keys() {
	[ "$ship" = 1 ] || return 0
	printf ', "ship": {"relp": "127.0.0.1:%s", "cursor_file": "ship/%s.cursor", "metrics_file": "ship/%s.prom"}' \
		"$relp_port" "$1" "$1"
}

# The collector's config: the shipped file, with its port on loopback and
# its directories under state/.
render_collector() {
	mkdir -p "$state/collector" "$state/rsyslog-spool" "$state/ship"
	sed -e "s#/var/log/hssgw-collector#$state/collector#g" \
		-e "s#/var/spool/hssgw-collector#$state/rsyslog-spool#g" \
		-e "s#^input(type=\"imrelp\" port=\"2514\"#input(type=\"imrelp\" port=\"$relp_port\" address=\"127.0.0.1\"#" \
		"$root/deploy/rsyslog/hssgw-collector.conf" >"$state/hssgw-collector.conf"
}

# rsyslog in the foreground (-n) as our child, then the shippers.
start_ship() {
	local rsyslogd i
	rsyslogd=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
	"$rsyslogd" -N1 -f "$state/hssgw-collector.conf" >/dev/null ||
		die "rsyslog rejects $state/hssgw-collector.conf"
	nohup "$rsyslogd" -n -f "$state/hssgw-collector.conf" \
		-i "$state/rsyslog.pid" </dev/null >>"$state/logs/rsyslog.log" 2>&1 &
	if [ "$instances" -gt 1 ]; then
		for i in $(seq "$instances"); do
			nohup "$bin/hssgw" audit ship --config "$state/hssgw-$i.json" \
				</dev/null >>"$state/logs/ship-$i.log" 2>&1 &
			echo $! >"$state/ship-$i.pid"
		done
	else
		nohup "$bin/hssgw" audit ship --config "$state/hssgw.json" \
			</dev/null >>"$state/logs/ship.log" 2>&1 &
		echo $! >"$state/ship.pid"
	fi
}

# gw_config FILE SOCKET AUDIT EXTRA [SHIP]: one instance's config; EXTRA is
# inserted as top-level keys (each ending in a comma) or empty; SHIP is
# ship_keys's output.
gw_config() {
	cat >"$1" <<-EOF
	{
	 $4
	 "listen": "unix:$2",
	 "threads": 32,
	 "max_body_bytes": 65536,
	 "jwt": {"leeway_seconds": 60, "max_token_bytes": 8192,
	  "issuers": [{"issuer": "$issuer", "audiences": ["$audience"],
	   "keys": [{"kid": "dev-rs256", "alg": "RS256", "file": "keys/idp-rs256.pub.pem"},
	            {"kid": "dev-hs256", "alg": "HS256", "file": "keys/idp-hs256.secret"}]}]},
	 "policies_dir": "$root/policies",
	 "credentials": [{"name": "demo", "type": "token_file", "file": "secrets/demo.token"}],
	 "projects": [{"alias": "demo", "project_id": "$project_id",
	   "region": "$region", "endpoint": "https://127.0.0.1:$emu_port",
	   "enterprise_project_id": "0", "credentials": "demo"}],
	 "upstream": {"connect_timeout_ms": 2000, "timeout_ms": 10000,
	   "ca_file": "tls/ca.pem", "max_response_bytes": 1048576},
	 "audit": {"file": "$3"${5:-}},
	 "default_export_size": 1000,
	 "tasks": {"handle_key_file": "secrets/task.key",
	   "coalesce_window_ms": 60000}
	}
	EOF
}

# Debian's redis-server for the shared budget: a unix socket only (port
# 0: nothing listens on TCP), owner-only, nothing saved to disk (losing
# it costs at most a minute of budget accounting: docs/SHARED_STATE.md).
start_redis() {
	redis-server --port 0 --unixsocket "$state/redis.sock" \
		--unixsocketperm 700 --save "" --appendonly no --dir "$state" \
		--logfile "$state/logs/redis.log" </dev/null >/dev/null 2>&1 &
	echo $! >"$state/redis.pid"
	for _ in $(seq 50); do
		[ -S "$state/redis.sock" ] && return 0
		sleep 0.1
	done
	die "redis-server did not start (log: $state/logs/redis.log)"
}

start_all() {
	local nginx ok=""
	nginx=$(command -v nginx || echo /usr/sbin/nginx)
	nohup "$bin/hss-emulator" --config "$state/emulator.json" \
		--log "$state/logs/emulator.jsonl" \
		--listen "unix:$state/emulator.sock" --threads 4 \
		</dev/null >>"$state/logs/emulator.log" 2>&1 &
	echo $! >"$state/emulator.pid"
	if [ "$instances" -gt 1 ]; then
		start_redis
		local i
		for i in $(seq "$instances"); do
			"$bin/hssgw" check-config --config "$state/hssgw-$i.json"
			nohup "$bin/hssgw" serve --config "$state/hssgw-$i.json" \
				</dev/null >>"$state/logs/hssgw-$i.log" 2>&1 &
			echo $! >"$state/hssgw-$i.pid"
		done
	else
		"$bin/hssgw" check-config --config "$state/hssgw.json"
		nohup "$bin/hssgw" serve --config "$state/hssgw.json" \
			</dev/null >>"$state/logs/hssgw.log" 2>&1 &
		echo $! >"$state/hssgw.pid"
	fi
	"$nginx" -t -q -p "$state" -c "$state/nginx.conf" -e "$state/logs/error.log"
	"$nginx" -p "$state" -c "$state/nginx.conf" -e "$state/logs/error.log"
	for _ in $(seq 100); do
		if curl -fsS --cacert "$state/tls/ca.pem" \
			"https://127.0.0.1:$gw_port/healthz" >/dev/null 2>&1 &&
			curl -fsS --cacert "$state/tls/ca.pem" -X POST -d '{}' \
				"https://127.0.0.1:$emu_port/_emulator/reset" \
				>/dev/null 2>&1; then
			ok=1
			break
		fi
		sleep 0.1
	done
	if [ -z "$ok" ]; then
		tail -n 20 "$state/logs/hssgw.log" "$state/logs/emulator.log" \
			"$state/logs/error.log" >&2 || true
		die "stack did not become ready (logs in $state/logs)"
	fi
	if [ "$ship" = 1 ]; then
		start_ship
	fi
	# HSS's limit on (5 calls a minute per API, sliding window), as in
	# production: a budget that overspends meets HSS's 429 here too.
	curl -fsS --cacert "$state/tls/ca.pem" -X POST \
		-d '{"limit_per_minute":5}' \
		"https://127.0.0.1:$emu_port/_emulator/tasks" >/dev/null ||
		die "could not switch on the emulator's per-minute limit"
}

up() {
	build
	stop_all >/dev/null
	mkdir -p "$state"
	chmod 700 "$state"
	make_secrets
	render_configs
	start_all

	local url=https://127.0.0.1:$gw_port/v1/exports/image-baseline token
	local body='{"project":"demo","image_type":"cicd","operate_all":true}'
	token=$(mint)
	echo
	echo "== request"
	echo "POST $url"
	echo "Authorization: Bearer <JWT for dev-alice, groups hss-exporters>"
	echo "$body"
	echo
	echo "== answer"
	curl -sS -i --cacert "$state/tls/ca.pem" -X POST "$url" \
		-H "Authorization: Bearer $token" \
		-H 'Content-Type: application/json' --data-binary "$body"
	echo
	echo
	if [ "$instances" -gt 1 ]; then
		echo "== gateway: https://127.0.0.1:$gw_port: $instances instances," \
			"one budget in redis ($state/redis.sock)"
		echo "   audit: $state/audit/audit-N.jsonl (hssgw audit query/verify take them all)"
	else
		echo "== gateway: https://127.0.0.1:$gw_port  (audit: $state/audit/audit.jsonl)"
	fi
	if [ "$ship" = 1 ]; then
		echo "== shipping: rsyslog on 127.0.0.1:$relp_port, collected trail(s): $state/collector/<instance>.jsonl"
		echo "   check: $bin/hssgw audit verify $state/collector/*.jsonl"
	fi
	cat <<-EOF
	Call it with:
	  curl --cacert $state/tls/ca.pem \\
	    -H "Authorization: Bearer \$(./deploy/local.sh token)" \\
	    -H 'Content-Type: application/json' \\
	    -d '$body' $url
	Or export, wait and download in one command:
	  HSSGW_TOKEN=\$(./deploy/local.sh token) $bin/hssgw export \\
	    --url https://127.0.0.1:$gw_port --cacert $state/tls/ca.pem \\
	    --project demo --field image_type=cicd --out baseline.zip
	Stop with: ./deploy/local.sh stop
	EOF
}

case ${1:-up} in
up) up ;;
token) shift; mint "$@" ;;
stop) stop_all ;;
*) die "usage: $0 [up | token [--sub NAME] [--groups a,b] | stop]" ;;
esac
