//go:build !linux

package pglocal

// processState cannot tell without /proc: postgres checks postmaster.pid
// itself.
func processState(int, string) procState { return procUnknown }

// processesIn cannot tell without /proc.
func processesIn(string) []int { return nil }
