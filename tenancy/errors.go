// Package tenancy decides which database serves a request: it parses hosts,
// keeps the tenant registry (control database plus an in-memory routing
// table), provisions and drops tenant databases and roles, runs tenant
// migrations and holds the tenant connection pools. It knows nothing of
// GraphQL.
package tenancy

import (
	"errors"
	"fmt"

	"github.com/tenantql/tenantql/pgerr"
)

// Sentinel errors; wrap them with %w and test them with errors.Is.
var (
	// ErrTenantNotFound: no tenant serves that host or slug (or it is being deleted).
	ErrTenantNotFound = errors.New("tenant not found")
	// ErrTenantNotReady: the tenant is still being provisioned (or failed to be).
	ErrTenantNotReady = errors.New("tenant is not ready yet")
	// ErrTenantSuspended: the tenant exists but is suspended.
	ErrTenantSuspended = errors.New("tenant is suspended")
	// ErrTenantMoving: the tenant is being moved to another database
	// server; its data can be read but not changed until the move ends.
	ErrTenantMoving = errors.New("tenant is being moved to another database server")
	// ErrSlugTaken: another tenant already has that slug.
	ErrSlugTaken = errors.New("slug is already taken")
	// ErrDomainTaken: another tenant (or this one) already has that domain.
	ErrDomainTaken = errors.New("domain is already taken")
	// ErrDomainNotFound: the tenant has no such custom domain.
	ErrDomainNotFound = errors.New("domain not found")
	// ErrInvalidInput: an argument failed validation; the message says which.
	ErrInvalidInput = errors.New("invalid input")
	// ErrWrongState: the operation does not apply to the tenant's current status.
	ErrWrongState = errors.New("operation not allowed in the tenant's current status")
	// ErrUnavailable: a database could not be reached or had no free
	// connection in time. It is pgerr.ErrUnavailable, the same sentinel the
	// store returns.
	ErrUnavailable = pgerr.ErrUnavailable
	// ErrServerSilent: a database server that the operation must reach
	// (a removal drops its template and spares there) does not answer. It
	// is an ErrUnavailable whose message, unlike a driver's, may be shown.
	ErrServerSilent = fmt.Errorf("%w: the database server does not answer", ErrUnavailable)
)

// dbError wraps a driver error met during op; see pgerr.Wrap.
func dbError(op string, err error) error { return pgerr.Wrap(op, err) }

// invalid returns an ErrInvalidInput error with a message for the client.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}
