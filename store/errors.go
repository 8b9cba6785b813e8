package store

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/tenantql/tenantql/pgerr"
)

// Sentinel errors; every error a Store method returns wraps at most one of
// them with %w. Test them with errors.Is.
var (
	// ErrNotFound: the user, project, issue or comment does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a user with that email or a project with that key exists.
	ErrConflict = errors.New("conflict")
	// ErrInvalidInput: an argument failed validation; the message after the
	// sentinel's text says which one and why, in words fit for the client.
	ErrInvalidInput = errors.New("invalid input")
	// ErrUnavailable: the database could not be reached, is shutting down
	// or is out of resources; the caller may retry later. It is
	// pgerr.ErrUnavailable, the same sentinel tenancy returns.
	ErrUnavailable = pgerr.ErrUnavailable
)

// invalid returns an ErrInvalidInput error with a message for the client.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// dbError wraps a driver error met during op ("store: op: ..."); see
// pgerr.Wrap.
func dbError(op string, err error) error { return pgerr.Wrap("store: "+op, err) }

// printable shortens user input for an error message: at most 40 bytes,
// cut at a rune boundary. Quote the result with %q.
func printable(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
