package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tenantql/tenantql/apierr"
)

// oneLogin refuses, before anything runs, a request with more than one
// login field (aliases and fragments included): thirty aliased logins
// would be thirty password guesses for the price of one request.
type oneLogin struct{}

func (oneLogin) ExtensionName() string                   { return "OneLogin" }
func (oneLogin) Validate(graphql.ExecutableSchema) error { return nil }

func (oneLogin) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil || oc.Operation.Operation != ast.Mutation {
		return nil
	}
	n := 0
	for _, f := range graphql.CollectFields(oc, oc.Operation.SelectionSet, []string{"Mutation"}) {
		if f.Name == "login" {
			n++
		}
	}
	if n <= 1 {
		return nil
	}
	err := gqlerror.Errorf("at most one login per request; this one has %d", n)
	err.Extensions = map[string]any{"code": apierr.BadUserInput}
	return err
}
