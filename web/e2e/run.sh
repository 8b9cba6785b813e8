#!/usr/bin/env bash
# Browser tests of the app at /app/: Debian's Chromium driven by
# playwright-core (pinned in web/package-lock.json; it never downloads a
# browser) against a freshly built tenantql.
#
#   web/e2e/run.sh            run the tests; screenshots go to web/e2e/artifacts/
#   web/e2e/run.sh --docs     also refresh docs/screenshots/{board,console,console-fleet}.png
#   web/e2e/run.sh [--docs] e2e/fleet.test.mjs    only these test files (paths from web/)
#
# Installs Debian's chromium when it is missing and the npm packages with
# `npm ci` (scripts/client-deps.sh), unless scripts/test.sh already did. Uses the PostgreSQL of TEST_DATABASE_URL when set (a database
# of its own is created there and dropped afterwards), otherwise starts a
# throwaway cluster with internal/pgtest/withcluster. A second throwaway
# cluster is always started, for the console's moves between database
# servers: the tests get it as TENANTQL_E2E_SERVER_URL, the URL of a role
# with CREATEDB and CREATEROLE (no superuser), to add with addDatabaseServer.
# Needs Go, Node >= 20 and PostgreSQL's server binaries, like the Go tests.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
web=$(cd "$here/.." && pwd)
root=$(cd "$web/.." && pwd)

if [ "${1:-}" = --docs ]; then
	export TENANTQL_DOCS_SCREENSHOTS="$root/docs/screenshots"
	shift
fi

if [ -z "${TENANTQL_E2E_INSIDE:-}" ]; then
	[ "${TENANTQL_CLIENT_DEPS:-}" = installed ] || "$root/scripts/client-deps.sh" web
	bin=$(mktemp -d)
	trap 'rm -rf "$bin"' EXIT
	(cd "$root" && go build -o "$bin/tenantql" .)
	status=0
	(cd "$root" && TENANTQL_E2E_INSIDE=1 TENANTQL_BIN="$bin/tenantql" \
		go run ./internal/pgtest/withcluster bash "$here/run.sh" "$@") || status=$?
	exit $status
fi

# Inside: TEST_DATABASE_URL points at a PostgreSQL superuser.
: "${TEST_DATABASE_URL:?}" "${TENANTQL_BIN:?}"

# Once more inside a second throwaway cluster (its superuser's URL in
# TENANTQL_E2E_SECOND_URL), whatever TEST_DATABASE_URL is.
if [ -z "${TENANTQL_E2E_SECOND_URL:-}" ]; then
	cd "$root"
	exec env -u TEST_DATABASE_URL TENANTQL_E2E_FIRST_URL="$TEST_DATABASE_URL" go run ./internal/pgtest/withcluster \
		bash -c 'TENANTQL_E2E_SECOND_URL=$TEST_DATABASE_URL TEST_DATABASE_URL=$TENANTQL_E2E_FIRST_URL exec bash "$0" "$@"' "$here/run.sh" "$@"
fi
work=$(mktemp -d)
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
db="webapp_e2e_${port}"
prefix="e${port}_"
control_url=$(node -e 'const u=new URL(process.argv[1]); u.pathname="/"+process.argv[2]; console.log(u.href)' "$TEST_DATABASE_URL" "$db")
random() { node -e 'console.log(require("crypto").randomBytes(24).toString("base64url"))'; }
export TENANTQL_PORT=$port TENANTQL_ADMIN_TOKEN="e2e-$(random)" TENANTQL_ARTIFACTS="$here/artifacts"

# The second cluster's role for tenantql, like a managed service's.
server_password=$(random)
psql -q "$TENANTQL_E2E_SECOND_URL" -c "CREATE ROLE e2e_server LOGIN CREATEDB CREATEROLE PASSWORD '$server_password'" \
	-c "GRANT pg_signal_backend TO e2e_server" >/dev/null
TENANTQL_E2E_SERVER_URL=$(node -e 'const u=new URL(process.argv[1]); u.username="e2e_server"; u.password=process.argv[2]; u.pathname="/postgres"; console.log(u.href)' \
	"$TENANTQL_E2E_SECOND_URL" "$server_password")
export TENANTQL_E2E_SERVER_URL

server_pid=""
cleanup() {
	if [ -n "$server_pid" ]; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	# Tenant databases and roles of this run, then its control database.
	psql -qAt "$TEST_DATABASE_URL" -c "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE);', datname) FROM pg_database WHERE starts_with(datname, '$prefix')
		UNION ALL SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE);', '$db')" 2>/dev/null |
		psql -q "$TEST_DATABASE_URL" >/dev/null 2>&1 || true
	psql -qAt "$TEST_DATABASE_URL" -c "SELECT format('DROP ROLE IF EXISTS %I;', rolname) FROM pg_roles WHERE starts_with(rolname, '$prefix')" 2>/dev/null |
		psql -q "$TEST_DATABASE_URL" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

psql -q "$TEST_DATABASE_URL" -c "CREATE DATABASE $db" >/dev/null
rm -rf "$TENANTQL_ARTIFACTS"
mkdir -p "$TENANTQL_ARTIFACTS"

DATABASE_URL="$control_url" ADMIN_TOKEN="$TENANTQL_ADMIN_TOKEN" SECRET_KEY="e2e-secret-$(random)" \
	BASE_DOMAIN=localhost LISTEN_ADDR="127.0.0.1:$port" TENANT_NAME_PREFIX="$prefix" LOG_LEVEL=warn \
	"$TENANTQL_BIN" serve >"$TENANTQL_ARTIFACTS/server.log" 2>&1 &
server_pid=$!
if ! node "$root/scripts/wait-ready.mjs" "http://127.0.0.1:$port/readyz" "$server_pid" 15; then
	echo "e2e: the server did not start:" >&2
	tail -30 "$TENANTQL_ARTIFACTS/server.log" >&2
	exit 1
fi

status=0
(
	cd "$web"
	[ $# -gt 0 ] || set -- e2e/*.test.mjs # every test file, unless some were named
	node --test --test-concurrency=1 --test-reporter=spec "$@"
) || status=$?
if [ $status -ne 0 ]; then
	echo "--- server log (last 40 lines; all of it in $TENANTQL_ARTIFACTS/server.log)" >&2
	tail -40 "$TENANTQL_ARTIFACTS/server.log" >&2
fi
exit $status
