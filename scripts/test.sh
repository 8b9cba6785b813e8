#!/usr/bin/env bash
# The test suite, on one throwaway PostgreSQL cluster (fsync off) started
# here unless TEST_DATABASE_URL is set:
#   0. what the client tests need, installed first so that a missing one
#      fails now, not after the Go tests: Debian's Chromium (apt-get when
#      missing, as root or through sudo) and the pinned npm packages
#      (scripts/client-deps.sh);
#   1. Go tests: unit, end to end over HTTP, fault and race tests, all
#      with the race detector but faulttest (the real binary through
#      crashes, outages and chaos: the slowest, several times slower
#      under -race), which runs beside them without it;
#   2. client tests: Apollo Client in Node and the Playground in Chromium;
#   3. browser tests of the app at /app/ (web/e2e).
# Extra arguments go to `go test`. SKIP_CLIENT_TESTS=1 skips steps 0, 2
# and 3, and says so before and after the Go tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SKIP_CLIENT_TESTS:-}" != 1 ]; then
  ./scripts/client-deps.sh
  export TENANTQL_CLIENT_DEPS=installed
else
  echo "SKIP_CLIENT_TESTS=1: Go tests only; the client and browser tests will be skipped"
fi
go run ./internal/pgtest/withcluster bash -c '
  set -euo pipefail
  faulttest_out=$(mktemp)
  go test -count=1 -timeout 20m "$@" ./faulttest >"$faulttest_out" 2>&1 &
  faulttest_pid=$!
  status=0
  go test -race -count=1 -timeout 20m "$@" $(go list ./... | grep -v "/faulttest$") || status=$?
  wait "$faulttest_pid" || status=$?
  cat "$faulttest_out"
  rm -f "$faulttest_out"
  [ "$status" = 0 ]
  if [ "${SKIP_CLIENT_TESTS:-}" != 1 ]; then
    ./clients/run.sh
    ./web/e2e/run.sh
  else
    echo "SKIP_CLIENT_TESTS=1: the client tests (clients/: Apollo Client, the Playground) and the browser tests (web/e2e/) were skipped"
  fi
' tests "$@"
