// Package pgerr maps PostgreSQL and connection errors to the sentinels the
// rest of tenantql tests with errors.Is, in one place: whether a database
// is unavailable (retry later) is decided here for the store, tenancy and
// the live-update follower alike.
package pgerr

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/lib/pq"
)

// ErrUnavailable: a database could not be reached, went away, is shutting
// down or starting up, is closed to connections, or is out of resources;
// the caller may retry later.
var ErrUnavailable = errors.New("database unavailable")

// Wrap wraps a driver error met during op ("op: err"); when it means the
// database is unavailable it also wraps ErrUnavailable. The driver error
// stays in the chain for logs and errors.As. Wrap(op, nil) is nil.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if IsUnavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// IsUnavailable reports whether err means the database could not be
// reached, went away or refused work for lack of resources: ErrUnavailable
// itself, connection exceptions (class 08), insufficient resources (53),
// operator intervention (57, but not 57014 query_canceled, which a
// statement_timeout raises), a database not accepting connections (55000),
// network errors, dropped connections, deadlines that ran out while waiting
// on the database, and a pool closed under the query (the tenant was
// suspended, deleted or its pool evicted meanwhile).
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	if pqErr := pq.As(err); pqErr != nil {
		switch pqErr.Code.Class() {
		case "08", "53":
			return true
		case "57":
			return pqErr.Code != "57014"
		}
		return pqErr.Code == "55000" && strings.Contains(pqErr.Message, "not currently accepting connections")
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
	// errors that reach us as text only: database/sql's pool closed under
	// the query (unexported), and the driver's connection failures
	s := err.Error()
	for _, sub := range []string{"sql: database is closed", "connection refused", "bad connection",
		"broken pipe", "connection reset", "EOF", "the database system is"} {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// Constraint reports the code and constraint of a unique (23505) or
// foreign key (23503) violation, or "" for any other error.
func Constraint(err error) (code, constraint string) {
	if pqErr := pq.As(err, "23505", "23503"); pqErr != nil {
		return string(pqErr.Code), pqErr.Constraint
	}
	return "", ""
}

// IsReadOnly reports whether err is a write refused because the session
// is read-only (25006): a tenant database frozen for a move.
func IsReadOnly(err error) bool {
	return pq.As(err, "25006") != nil
}
