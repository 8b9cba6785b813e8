#!/usr/bin/env bash
# Runs the client tests (Apollo Client in Node, the Playground in Chromium)
# against a freshly built tenantql. Needs TEST_DATABASE_URL (a PostgreSQL
# superuser URL): scripts/test.sh provides one. Installs Debian's chromium
# when missing and the pinned npm packages (scripts/client-deps.sh), unless
# scripts/test.sh already did.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
: "${TEST_DATABASE_URL:?TEST_DATABASE_URL must be set}"

[ "${TENANTQL_CLIENT_DEPS:-}" = installed ] || "$root/scripts/client-deps.sh" clients

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
control_url=$(node -e 'const u=new URL(process.argv[1]); u.pathname="/"+process.argv[2]; console.log(u.href)' "$TEST_DATABASE_URL" "$db")
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
export TENANTQL_PORT=$port
export TENANTQL_ADMIN_TOKEN="client-tests-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
DATABASE_URL="$control_url" ADMIN_TOKEN="$TENANTQL_ADMIN_TOKEN" SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  BASE_DOMAIN=localhost LISTEN_ADDR="127.0.0.1:$port" TENANT_NAME_PREFIX="c${port}_" INTROSPECTION=true LOG_LEVEL=warn \
  "$work/tenantql" serve >"$work/server.log" 2>&1 &
server_pid=$!
node "$root/scripts/wait-ready.mjs" "http://127.0.0.1:$port/readyz" "$server_pid" 15 || true # the tests say what failed
status=0
(cd "$here" && node --test --test-concurrency=1 ./*.test.mjs) || status=$?
if [ $status -ne 0 ]; then echo "--- server log"; tail -50 "$work/server.log"; fi
exit $status
