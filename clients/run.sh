#!/usr/bin/env bash
# Runs the client tests (Apollo Client in Node, the Playground in Chromium)
# against a freshly built tenantql. Needs TEST_DATABASE_URL (a PostgreSQL
# superuser URL): scripts/test.sh provides one. Installs Debian's chromium
# and the pinned npm packages when missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
: "${TEST_DATABASE_URL:?TEST_DATABASE_URL must be set}"

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo "clients: installing Debian's chromium"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/tenantql" "$root"
db="clients_$(date +%s)_$$"
psql -q "$TEST_DATABASE_URL" -c "CREATE DATABASE $db" >/dev/null
control_url=$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/"+sys.argv[2])))' "$TEST_DATABASE_URL" "$db")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export TENANTQL_PORT=$port
export TENANTQL_ADMIN_TOKEN="client-tests-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
DATABASE_URL="$control_url" ADMIN_TOKEN="$TENANTQL_ADMIN_TOKEN" SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  BASE_DOMAIN=localhost LISTEN_ADDR="127.0.0.1:$port" TENANT_NAME_PREFIX="c${port}_" INTROSPECTION=true LOG_LEVEL=warn \
  "$work/tenantql" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
status=0
(cd "$here" && node --test --test-concurrency=1 ./*.test.mjs) || status=$?
if [ $status -ne 0 ]; then echo "--- server log"; tail -50 "$work/server.log"; fi
exit $status
