package pgerr

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/lib/pq"
)

func TestIsUnavailableAndWrap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{&pq.Error{Code: "08006"}, true},
		{&pq.Error{Code: "08001"}, true},
		{&pq.Error{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{&pq.Error{Code: "57P03", Message: "the database system is starting up"}, true},
		{&pq.Error{Code: "53300"}, true},
		{fmt.Errorf("wrapped: %w", &pq.Error{Code: "53200"}), true},
		{&pq.Error{Code: "55000", Message: `database "x" is not currently accepting connections`}, true},
		{&pq.Error{Code: "55000", Message: "cannot drop the currently open database"}, false},
		{&pq.Error{Code: "57014"}, false}, // query_canceled: a statement timeout, not an outage
		{&pq.Error{Code: "23505"}, false},
		{&pq.Error{Code: "42P01"}, false},
		{&pq.Error{Code: "3D000"}, false}, // the database is gone, not down
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"), true},
		{syscall.ECONNRESET, true},
		{driver.ErrBadConn, true},
		{io.ErrUnexpectedEOF, true},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
		{fmt.Errorf("begin: %w", errors.New("sql: database is closed")), true},
		{fmt.Errorf("tenant busy: %w", ErrUnavailable), true},
		{errors.New("boom"), false},
	}
	for _, tt := range tests {
		if got := IsUnavailable(tt.err); got != tt.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
		}
		err := Wrap("op", tt.err)
		if errors.Is(err, ErrUnavailable) != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("Wrap(%v) = %v", tt.err, err)
		}
	}
	if Wrap("op", nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
}

func TestConstraint(t *testing.T) {
	t.Parallel()
	code, c := Constraint(fmt.Errorf("insert: %w", &pq.Error{Code: "23505", Constraint: "users_email_key"}))
	if code != "23505" || c != "users_email_key" {
		t.Errorf("Constraint = %q %q", code, c)
	}
	if code, c := Constraint(&pq.Error{Code: "42P01"}); code != "" || c != "" {
		t.Errorf("Constraint(42P01) = %q %q", code, c)
	}
}
