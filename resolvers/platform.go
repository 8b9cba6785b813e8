package resolvers

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/graph/model"
	"github.com/tenantql/tenantql/tenancy"
)

func badInput(format string, args ...any) *apierr.Error {
	return apierr.New(apierr.BadUserInput, format, args...)
}

// checkText refuses NUL bytes, invalid UTF-8 and over-long values.
func checkText(field, v string, maxBytes int) error {
	switch {
	case strings.ContainsRune(v, 0):
		return badInput("%s must not contain NUL bytes", field)
	case !utf8.ValidString(v):
		return badInput("%s must be valid UTF-8", field)
	case len(v) > maxBytes:
		return badInput("%s must be at most %d bytes", field, maxBytes)
	}
	return nil
}

// createTenant signs an organization up (tenancy's SignUp: validation,
// the owner's password hash, a PROVISIONING tenant); provisioning
// continues in the background.
func (r *Resolver) createTenant(ctx context.Context, in model.CreateTenantInput) (*model.CreateTenantPayload, error) {
	t, err := r.Provisioner.SignUp(ctx, tenancy.SignUp{
		Organization: in.Organization, Slug: in.Slug,
		OwnerEmail: in.Owner.Email, OwnerName: in.Owner.Name, OwnerPassword: in.Owner.Password,
		SeedDemo: in.SeedDemoData != nil && *in.SeedDemoData, Server: derefOr(in.DatabaseServer, ""),
	})
	if err != nil {
		return nil, err
	}
	return &model.CreateTenantPayload{Tenant: r.tenantModel(ctx, t)}, nil
}

// platformOp runs a registry state change and returns the tenant.
func (r *Resolver) platformOp(ctx context.Context, op func(context.Context, string) (*tenancy.Tenant, error), slug string) (*model.Tenant, error) {
	t, err := op(ctx, slug)
	if err != nil {
		return nil, err
	}
	return r.tenantModel(ctx, t), nil
}

// checkFirst enforces the contract's page size bounds.
func checkFirst(first *int, def int) (int, error) {
	n := def
	if first != nil {
		n = *first
	}
	if n < 1 || n > 100 {
		return 0, badInput("first must be between 1 and 100")
	}
	return n, nil
}

func (r *Resolver) listTenants(ctx context.Context, first *int, after *string, status *model.TenantStatus) (*model.TenantConnection, error) {
	n, err := checkFirst(first, 50)
	if err != nil {
		return nil, err
	}
	o := tenancy.ListOptions{First: n}
	if after != nil {
		o.After = *after
	}
	if status != nil {
		s := tenancy.Status(*status)
		o.Status = &s
	}
	page, err := r.Registry.List(ctx, o)
	if err != nil {
		return nil, err
	}
	conn := &model.TenantConnection{
		Edges:      make([]*model.TenantEdge, 0, len(page.Tenants)),
		PageInfo:   &model.PageInfo{HasNextPage: page.HasNextPage},
		TotalCount: page.TotalCount,
	}
	for _, t := range page.Tenants {
		conn.Edges = append(conn.Edges, &model.TenantEdge{Cursor: tenancy.Cursor(t), Node: r.tenantModel(ctx, t)})
	}
	if len(conn.Edges) > 0 {
		c := conn.Edges[len(conn.Edges)-1].Cursor
		conn.PageInfo.EndCursor = &c
	}
	return conn, nil
}

// tenantStatusChanged streams the tenant: its current state first, then
// each change, until it is gone or the client leaves.
func (r *Resolver) tenantStatusChanged(ctx context.Context, slug string) (<-chan *model.Tenant, error) {
	updates, cancel := r.Registry.SubscribeStatus(slug)
	t, err := r.Registry.Get(ctx, slug)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan *model.Tenant, 1)
	out <- r.tenantModel(ctx, t)
	go func() {
		defer cancel()
		defer close(out)
		last := t
		for {
			select {
			case <-ctx.Done():
				return
			case cur := <-updates:
				if cur == nil {
					return
				}
				if cur.Status == last.Status && cur.LastError == last.LastError && cur.UpdatedAt.Equal(last.UpdatedAt) {
					continue
				}
				last = cur
				select {
				case out <- r.tenantModel(ctx, cur):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// restoreWait is how long restoreTenant waits for the tenant to be READY
// before it answers with the tenant as it is (PROVISIONING).
const restoreWait = 20 * time.Second

// restoreTenant brings a DELETED tenant back and waits, within
// restoreWait, until the provisioner has made it READY.
func (r *Resolver) restoreTenant(ctx context.Context, slug string) (*model.Tenant, error) {
	updates, cancel := r.Registry.SubscribeStatus(slug)
	defer cancel()
	t, err := r.Registry.Restore(ctx, slug)
	if err != nil {
		return nil, err
	}
	r.Provisioner.Kick()
	deadline := time.NewTimer(restoreWait)
	defer deadline.Stop()
	for t.Status == tenancy.StatusProvisioning {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return r.tenantModel(ctx, t), nil
		case cur := <-updates:
			if cur != nil && cur.ID == t.ID {
				t = cur
			}
		}
	}
	return r.tenantModel(ctx, t), nil
}
