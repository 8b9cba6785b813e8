package main

import "runtime/debug"

// Garbage collector defaults for a request server. A GraphQL request
// allocates ~100 KB that dies with it, so Go's default GOGC=100 collects
// after every few hundred requests and a quarter of the server's CPU went
// to the collector in profiles; GOGC=400 cuts the server's CPU per request
// by about a quarter (docs/performance.md). The soft memory limit keeps
// the larger heap bounded. GOGC and GOMEMLIMIT, when set, win.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 128 << 20
)

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}
