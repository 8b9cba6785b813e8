package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/lib/pq"
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
	// or is out of resources; the caller may retry later.
	ErrUnavailable = errors.New("database unavailable")
)

// invalid returns an ErrInvalidInput error with a message for the client.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// dbError wraps a driver error met during op. Connection failures become
// ErrUnavailable (the driver error stays in the chain for logs).
func dbError(op string, err error) error {
	if err == nil {
		return nil
	}
	if isUnavailable(err) {
		return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// isUnavailable reports whether err means the database could not be
// reached, went away or refused work for lack of resources: connection
// exceptions (class 08), shutdowns (57P0x), insufficient resources (53),
// network errors and deadlines that ran out while waiting on the database.
func isUnavailable(err error) bool {
	if pqErr := pq.As(err); pqErr != nil {
		code := string(pqErr.Code)
		return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "53") ||
			strings.HasPrefix(code, "57P0")
	}
	var netErr net.Error
	switch {
	case errors.As(err, &netErr),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	// database/sql's error for a pool closed under the query (the tenant
	// was suspended, deleted or its pool evicted meanwhile) is unexported
	return strings.Contains(err.Error(), "sql: database is closed")
}

// constraintError reports the constraint a unique (23505) or foreign key
// (23503) violation is about, or "" for any other error.
func constraintError(err error) (code, constraint string) {
	if pqErr := pq.As(err, "23505", "23503"); pqErr != nil {
		return string(pqErr.Code), pqErr.Constraint
	}
	return "", ""
}

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
