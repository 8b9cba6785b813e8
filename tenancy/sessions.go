package tenancy

import (
	"context"
	"strings"

	"github.com/google/uuid"
)

// SessionsChannel is the control database channel announcing that a
// user's tokens were revoked (logout, a change of password): its payload
// is "<tenant id> <user id>". Every process forgets what it remembers of
// that user, so the revocation holds at once on every replica.
const SessionsChannel = "tenantql_sessions"

// OnUserRevoked registers f to run when a user's tokens were revoked, on
// this process or another (through Watch). f gets uuid.Nil for both ids
// when notifications may have been missed (the listener reconnected):
// forget every user then. Register before Watch starts; f must not block.
func (r *Registry) OnUserRevoked(f func(tenant, user uuid.UUID)) {
	r.routes.mu.Lock()
	defer r.routes.mu.Unlock()
	r.revoked = append(r.revoked, f)
}

// AnnounceRevoked tells every process, this one first, that the tokens of
// user in tenant were revoked. The change itself is already committed in
// the tenant database; a process that misses the announcement (the control
// database is down) still sees it once its user cache forgets the user.
func (r *Registry) AnnounceRevoked(ctx context.Context, tenant, user uuid.UUID) error {
	r.userRevoked(tenant, user)
	if _, err := r.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, SessionsChannel, tenant.String()+" "+user.String()); err != nil {
		return dbError("announce revoked tokens", err)
	}
	return nil
}

// userRevoked runs the OnUserRevoked hooks.
func (r *Registry) userRevoked(tenant, user uuid.UUID) {
	r.routes.mu.RLock()
	hooks := r.revoked
	r.routes.mu.RUnlock()
	for _, f := range hooks {
		f(tenant, user)
	}
}

// revokedFromPayload parses a SessionsChannel payload.
func revokedFromPayload(s string) (tenant, user uuid.UUID, ok bool) {
	a, b, found := strings.Cut(s, " ")
	if !found {
		return uuid.Nil, uuid.Nil, false
	}
	t, err1 := uuid.Parse(a)
	u, err2 := uuid.Parse(b)
	return t, u, err1 == nil && err2 == nil
}
