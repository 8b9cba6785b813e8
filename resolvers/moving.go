package resolvers

import (
	"context"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/tenancy"
)

const movingMessage = "this tenant is being moved to another database server: its data can be read, not changed; retry shortly"

// movingRetryAfter is the Retry-After, in seconds, of a mutation refused
// while its tenant moves (a 1,000-issue tenant moves in about a second).
const movingRetryAfter = "2"

// refuseWhileMoving refuses, before anything runs, a mutation of a tenant
// that is MOVING (503, TENANT_MOVING, Retry-After): its old copy is being
// copied, and a write there would be lost. Queries and subscriptions are
// served. The status is read when the operation starts, so a socket
// opened before the move is refused too.
type refuseWhileMoving struct{}

func (refuseWhileMoving) ExtensionName() string                   { return "RefuseWhileMoving" }
func (refuseWhileMoving) Validate(graphql.ExecutableSchema) error { return nil }

func (refuseWhileMoving) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil || oc.Operation.Operation != ast.Mutation {
		return nil
	}
	target, ok := tenancy.FromContext(ctx)
	if !ok || !target.Moving() {
		return nil
	}
	if st, ok := ctx.Value(httpStateKey{}).(*httpState); ok {
		st.status, st.retryAfter = http.StatusServiceUnavailable, movingRetryAfter
	}
	err := gqlerror.Errorf("%s", movingMessage)
	err.Extensions = map[string]any{"code": apierr.TenantMoving}
	return err
}
