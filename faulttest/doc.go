// Package faulttest holds tenantql's fault-injection, race, outage and
// chaos tests. They build the real binary once, run it as a subprocess
// against a throwaway PostgreSQL cluster of their own (pgtest.RunOwnCluster,
// which they restart), kill it at every step boundary of the tenant
// lifecycle, and check the result with `tenantql doctor`.
//
// The package holds only tests; run them with
//
//	go test ./faulttest/
//
// CHAOS_DURATION (a Go duration, default 60s) lengthens the chaos test.
package faulttest
