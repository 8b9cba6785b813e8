package tenancy

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// ErrTenantGone: the request's tenant was deleted (or is being deleted)
// while the request ran, so its database went away under it. Clients see
// it like a host no tenant serves.
var ErrTenantGone = errors.New("tenant has been deleted")

// Recheck is for a request whose work on its tenant database failed with
// err: when the tenant has meanwhile stopped serving requests (deleted,
// suspended, sent back to provisioning), it returns the error a new
// request would get now (ErrTenantGone, ErrTenantSuspended or
// ErrTenantNotReady), since that is what really happened to it; otherwise
// nil, and err stands.
//
// It reads the in-memory routing table. Errors that only a dropped
// database or role produce (see tenantDBGone) also refresh the tenant from
// the control database first, in case another process deleted it and its
// notification has not arrived yet.
func (t *Target) Recheck(ctx context.Context, err error) error {
	if t == nil || t.Tenant == nil || t.reg == nil {
		return nil
	}
	id := t.Tenant.ID
	if !t.reg.routable(id) {
		return t.reg.routeError(id)
	}
	if tenantDBGone(err) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_, _ = t.reg.refresh(ctx, id)
		if !t.reg.routable(id) {
			return t.reg.routeError(id)
		}
	}
	return nil
}

// routable reports whether the tenant with id is served (READY or
// MOVING) in the routing table.
func (r *Registry) routable(id uuid.UUID) bool {
	cur, err := r.Cached(id)
	return err == nil && cur.Serving()
}

// routeError is the error a new request for the tenant with id gets now.
func (r *Registry) routeError(id uuid.UUID) error {
	cur, err := r.Cached(id)
	if err != nil {
		return ErrTenantGone
	}
	switch cur.Status {
	case StatusSuspended:
		return ErrTenantSuspended
	case StatusProvisioning, StatusFailed:
		return ErrTenantNotReady
	case StatusReady, StatusMoving:
		return nil
	}
	return ErrTenantGone
}

// tenantDBGone reports whether err is what a session on a tenant database
// gets once the database or its role was dropped: the pool closed under
// it, the database does not exist (3D000), the role cannot log in (28000,
// 28P01). A restart of PostgreSQL never produces these.
func tenantDBGone(err error) bool {
	if err == nil {
		return false
	}
	if pq.As(err, "3D000", "28000", "28P01") != nil {
		return true
	}
	return strings.Contains(err.Error(), "sql: database is closed")
}
