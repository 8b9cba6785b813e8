//go:build !unix

package pgtest

import "log/slog"

// startReaper does nothing outside Unix: a test binary that dies leaves
// its throwaway cluster behind.
func startReaper(int, string, *slog.Logger) (stop func()) { return func() {} }
