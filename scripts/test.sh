#!/usr/bin/env bash
# The test suite, on one throwaway PostgreSQL cluster (fsync off) started
# here unless TEST_DATABASE_URL is set:
#   0. what the client tests need, installed first so that a missing one
#      fails now, not after the Go tests: Debian's Chromium (apt-get when
#      missing, as root or through sudo) and the pinned npm packages
#      (scripts/client-deps.sh);
#   1. Go tests: unit, end to end over HTTP, fault and race tests;
#   2. client tests: Apollo Client in Node and the Playground in Chromium;
#   3. browser tests of the app at /app/ (web/e2e).
# Extra arguments go to `go test`. SKIP_CLIENT_TESTS=1 skips steps 0, 2
# and 3.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SKIP_CLIENT_TESTS:-}" != 1 ]; then
  ./scripts/client-deps.sh
  export TENANTQL_CLIENT_DEPS=installed
fi
go run ./internal/pgtest/withcluster bash -c '
  set -euo pipefail
  go test -count=1 -timeout 20m "$@" ./...
  if [ "${SKIP_CLIENT_TESTS:-}" != 1 ]; then
    ./clients/run.sh
    ./web/e2e/run.sh
  fi
' tests "$@"
