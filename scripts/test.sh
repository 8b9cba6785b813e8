#!/usr/bin/env bash
# The test suite: Go tests (unit, end to end over HTTP, fault and race
# tests) on one throwaway PostgreSQL cluster, started here unless
# TEST_DATABASE_URL is set. Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./internal/pgtest/withcluster go test -count=1 -timeout 20m "$@" ./...
