package resolvers

import (
	"context"

	"github.com/google/uuid"

	"github.com/tenantql/tenantql/graph/model"
	"github.com/tenantql/tenantql/tenancy"
)

// tenantModel turns a registry tenant into its GraphQL shape. Its host
// carries the port the request came in on, unless that is 80 or 443.
func (r *Resolver) tenantModel(ctx context.Context, t *tenancy.Tenant) *model.Tenant {
	host := t.Host(r.Hosts.BaseDomain)
	if target, ok := tenancy.FromContext(ctx); ok && target.Port != "" && target.Port != "80" && target.Port != "443" {
		host += ":" + target.Port
	}
	var lastError *string
	if t.LastError != "" {
		le := t.LastError
		lastError = &le
	}
	if why, behind := r.Registry.SchemaBehind(t); behind && t.Status == tenancy.StatusReady {
		lastError = &why // why its host answers 503
	}
	domains := t.Domains
	if domains == nil {
		domains = []string{}
	}
	return &model.Tenant{
		ID: t.ID.String(), Slug: t.Slug, Name: t.Name, Status: model.TenantStatus(t.Status),
		Host: host, Domains: domains, SchemaVersion: t.SchemaVersion, LastError: lastError, DatabaseServer: t.Server,
		DeletedAt: t.DeletedAt, PurgeAfter: t.PurgeAfter, MovingTo: nonEmpty(t.MoveTo), Step: nonEmpty(t.Step),
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
}

// nonEmpty returns &s, or nil for "".
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// tenantOf returns the registry's tenant behind a GraphQL tenant: from the
// routing table (memory) when it is there, else from the control database.
func (r *Resolver) tenantOf(ctx context.Context, obj *model.Tenant) (*tenancy.Tenant, error) {
	if id, err := uuid.Parse(obj.ID); err == nil {
		if t, err := r.Registry.Cached(id); err == nil {
			return t, nil
		}
	}
	return r.Registry.Get(ctx, obj.Slug)
}

// serverModel turns a database server into its GraphQL shape.
func serverModel(s tenancy.DatabaseServer) *model.DatabaseServer {
	var lastError *string
	if s.LastError != "" {
		le := s.LastError
		lastError = &le
	}
	return &model.DatabaseServer{Name: s.Name, Host: s.Host, Status: model.DatabaseServerStatus(s.Status),
		Capacity: s.Capacity, TenantCount: s.TenantCount, LastError: lastError, CreatedAt: s.CreatedAt}
}

// derefOr returns *p, or def when p is nil.
func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// tenantEventModel turns a step of a tenant's history into its GraphQL
// shape.
func tenantEventModel(e tenancy.TenantEvent) *model.TenantEvent {
	out := &model.TenantEvent{Step: e.Step, Outcome: model.TenantEventOutcomeOk,
		DurationMs: float64(e.Duration.Microseconds()) / 1000, At: e.At}
	if e.Outcome == tenancy.OutcomeError {
		msg := e.Error
		out.Outcome, out.Error = model.TenantEventOutcomeError, &msg
	}
	return out
}
