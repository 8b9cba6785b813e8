#!/usr/bin/env bash
# Installs what the client tests need, so that they fail early and for a
# clear reason rather than after the Go tests:
#   - Debian's chromium, with apt-get (as root, or through sudo) when it is
#     missing; waiting up to 5 minutes while another apt or dpkg run holds
#     the package locks;
#   - the pinned npm packages of clients/ and web/ (npm ci).
# scripts/test.sh runs it before the Go tests; clients/run.sh and
# web/e2e/run.sh run it for their own directory when started on their own.
#
#   scripts/client-deps.sh [clients] [web]     (default: both)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lock_wait=300 # seconds

dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(clients web)

need() {
	command -v "$1" >/dev/null 2>&1 || {
		echo "client tests: $1 is missing: $2 (or run SKIP_CLIENT_TESTS=1 ./scripts/test.sh)" >&2
		exit 1
	}
}
need node "install Node.js 20 or later"
need npm "install npm"
need psql "install PostgreSQL's client (on Debian it comes with apt-get install postgresql)"

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
	if [ "$(id -u)" = 0 ]; then
		sudo=()
	elif command -v sudo >/dev/null 2>&1; then
		sudo=(sudo)
	else
		echo "client tests: Debian's chromium is missing and installing it needs root or sudo: apt-get install chromium" >&2
		exit 1
	fi
	echo "client tests: installing Debian's chromium" >&2
	apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=$lock_wait)
	# DPkg::Lock::Timeout covers dpkg's locks (install); `update` takes the
	# package lists' lock without waiting, so retry it while it is held.
	deadline=$((SECONDS + lock_wait))
	until out=$("${apt[@]}" update 2>&1); do
		if ! grep -q "Could not get lock" <<<"$out" || [ $SECONDS -ge $deadline ]; then
			echo "$out" >&2
			exit 1
		fi
		sleep 5
	done
	"${apt[@]}" install -y chromium >/dev/null
fi

for dir in "${dirs[@]}"; do
	case "$dir" in
	clients) (cd "$root/clients" && npm ci --no-audit --no-fund --loglevel=error >&2) ;;
	web) (cd "$root/web" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2) ;;
	*)
		echo "client-deps: unknown directory $dir (want clients or web)" >&2
		exit 2
		;;
	esac
done
