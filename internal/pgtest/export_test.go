package pgtest

import "log/slog"

// StartReaper exposes startReaper to the external tests.
func StartReaper(watch int, dir string) (stop func()) {
	return startReaper(watch, dir, slog.Default())
}
