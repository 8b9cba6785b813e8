package tenancy

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lib/pq"

	"github.com/tenantql/tenantql/pgerr"
)

func TestBoundariesFollowTheLifecycleTable(t *testing.T) {
	seen := map[string]bool{}
	for _, b := range Boundaries() {
		if seen[b] {
			t.Errorf("boundary %q listed twice", b)
		}
		seen[b] = true
		if !knownBoundary(b) {
			t.Errorf("knownBoundary(%q) = false", b)
		}
	}
	for _, l := range lifecycles {
		if !seen[l.op+".start"] {
			t.Errorf("%s has no start boundary", l.op)
		}
		for _, s := range l.steps {
			if !seen[l.op+".after-"+s] {
				t.Errorf("%s step %s has no boundary", l.op, s)
			}
		}
	}
	for _, op := range []string{"create", "delete", "suspend", "resume"} {
		if len(stepsOf(op)) == 0 {
			t.Errorf("no steps for %s", op)
		}
	}
	if knownBoundary("create.after-nothing") {
		t.Error("an unknown boundary is known")
	}
}

func TestFailpointCheck(t *testing.T) {
	var none Failpoint
	if err := none.check("create.start"); err != nil {
		t.Fatalf("inert failpoint: %v", err)
	}
	if err := none.check("create.after-nothing"); err == nil {
		t.Fatal("an unknown boundary must be refused even without a failpoint")
	}
	armed := Failpoint(func(b string) error {
		if b == "delete.after-database" {
			return ErrFailpoint
		}
		return nil
	})
	if err := armed.check("delete.start"); err != nil {
		t.Fatalf("other boundary: %v", err)
	}
	err := armed.check("delete.after-database")
	if !errors.Is(err, ErrFailpoint) {
		t.Fatalf("armed boundary: %v", err)
	}
	if got := publicError(err); got != "delete.after-database failed: injected fault" {
		t.Fatalf("publicError = %q", got)
	}
}

func TestPublicErrorHidesDetails(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{inStep("create.role", &pq.Error{Code: "42501", Message: `permission denied to create role "secret"`}), "create.role failed: database error insufficient_privilege"},
		{inStep("create.migrate", &pq.Error{Code: "57P01", Message: "terminating connection"}), "create.migrate failed: database unavailable"},
		{inStep("create.owner", errors.New("password hash xyz")), "create.owner failed: internal error"},
		{&stepError{step: "create.after-role", err: errInterrupted}, "create.after-role " + errInterrupted.Error()},
	}
	for _, c := range cases {
		if got := publicError(c.err); got != c.want {
			t.Errorf("publicError(%v) = %q, want %q", c.err, got, c.want)
		}
		if strings.Contains(publicError(c.err), "secret") || strings.Contains(publicError(c.err), "xyz") {
			t.Errorf("publicError leaks: %q", publicError(c.err))
		}
	}
}

func TestTenantDBGoneAndUnavailable(t *testing.T) {
	cases := []struct {
		err               error
		gone, unavailable bool
	}{
		{&pq.Error{Code: "3D000"}, true, false},
		{&pq.Error{Code: "28P01"}, true, false},
		{&pq.Error{Code: "28000"}, true, false},
		{fmt.Errorf("store: user by id: %w", errors.New("sql: database is closed")), true, true}, // a closed pool: also retryable
		{&pq.Error{Code: "57P01", Message: "terminating connection due to administrator command"}, false, true},
		{&pq.Error{Code: "57P03", Message: "the database system is starting up"}, false, true},
		{&pq.Error{Code: "55000", Message: `database "x" is not currently accepting connections`}, false, true},
		{&pq.Error{Code: "55000", Message: "cannot drop the currently open database"}, false, false},
		{&pq.Error{Code: "57014"}, false, false},
		{errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"), false, true},
	}
	for _, c := range cases {
		if got := tenantDBGone(c.err); got != c.gone {
			t.Errorf("tenantDBGone(%v) = %v", c.err, got)
		}
		if got := pgerr.IsUnavailable(c.err); got != c.unavailable {
			t.Errorf("pgerr.IsUnavailable(%v) = %v", c.err, got)
		}
	}
}
