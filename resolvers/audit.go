package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/edge"
	"github.com/tenantql/tenantql/graph/model"
	"github.com/tenantql/tenantql/tenancy"
)

// audited runs a platform mutation and records it in the audit table:
// what, which tenant, the request id, the client's address, a fingerprint
// of the token and the outcome. A record that cannot be written is logged;
// the mutation's answer stands.
func (r *Resolver) audited(ctx context.Context, next graphql.Resolver) (any, error) {
	res, err := next(ctx)
	fc := graphql.GetFieldContext(ctx)
	s := sessionFrom(ctx)
	e := tenancy.AuditEntry{
		Action: fc.Field.Name, RequestID: edge.RequestIDFromContext(ctx),
		ClientAddr: s.client, TokenFingerprint: tenancy.TokenFingerprint(s.bearer), Outcome: "ok",
	}
	if slug, ok := fc.Args["slug"].(string); ok {
		e.TenantSlug = slug
	}
	if in, ok := fc.Args["input"].(model.CreateTenantInput); ok && in.Slug != nil {
		e.TenantSlug = *in.Slug
	}
	var t *model.Tenant
	switch v := res.(type) {
	case *model.Tenant:
		t = v
	case *model.CreateTenantPayload:
		if v != nil {
			t = v.Tenant
		}
	case *model.DeleteTenantPayload:
		if v != nil {
			t = v.Tenant
		}
	}
	if t != nil {
		e.TenantSlug = t.Slug
		if id, perr := uuid.Parse(t.ID); perr == nil {
			e.TenantID = &id
		}
	}
	if err != nil {
		e.Outcome = apierr.Internal
		if code, _, ok := classify(err); ok {
			e.Outcome = code
		}
	}
	if aerr := r.Registry.RecordAudit(context.WithoutCancel(ctx), e); aerr != nil {
		r.Log.Error("audit record lost", "action", e.Action, "tenant", e.TenantSlug, "request_id", e.RequestID, "err", aerr)
	}
	return res, err
}

// onePlatformMutation refuses, before anything runs, a request with more
// than one platform mutation (aliases and fragments included): one request
// can delete one tenant, not thirty.
type onePlatformMutation struct{}

func (onePlatformMutation) ExtensionName() string                   { return "OnePlatformMutation" }
func (onePlatformMutation) Validate(graphql.ExecutableSchema) error { return nil }

func (onePlatformMutation) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil || oc.Operation.Operation != ast.Mutation {
		return nil
	}
	n := 0
	for _, f := range graphql.CollectFields(oc, oc.Operation.SelectionSet, []string{"Mutation"}) {
		if f.Definition != nil && f.Definition.Directives.ForName("platform") != nil {
			n++
		}
	}
	if n <= 1 {
		return nil
	}
	err := gqlerror.Errorf("at most one platform mutation per request; this one has %d: send them one by one", n)
	err.Extensions = map[string]any{"code": apierr.BadUserInput}
	return err
}
