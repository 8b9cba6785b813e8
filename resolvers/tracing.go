package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenantql/tenantql/edge"
	"github.com/tenantql/tenantql/tenancy"
)

// operationTracing is the gqlgen extension that makes a span of every
// GraphQL operation, a child of the request's span: named "query Name"
// (the type, and the operation's name when it has one), with
// graphql.operation.type and graphql.operation.name, the tenant's slug
// ("admin" on the admin host) and the request id, which it also puts on
// the request's span. Variables are never recorded; an answer with errors
// sets the span's status and graphql.error.codes (the extensions.code of
// each). A subscription's span lasts until it ends.
type operationTracing struct {
	tracer trace.Tracer
}

func (operationTracing) ExtensionName() string                   { return "OperationTracing" }
func (operationTracing) Validate(graphql.ExecutableSchema) error { return nil }
func newOperationTracing(tp trace.TracerProvider) graphql.HandlerExtension {
	return operationTracing{tracer: tp.Tracer("github.com/tenantql/tenantql/resolvers")}
}

// Attribute keys of the operation span.
const (
	tenantKey     = attribute.Key("tenant")
	requestIDKey  = attribute.Key("request_id")
	opTypeKey     = attribute.Key("graphql.operation.type")
	opNameKey     = attribute.Key("graphql.operation.name")
	errorCodesKey = attribute.Key("graphql.error.codes")
)

func (o operationTracing) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	kind, name := "operation", oc.OperationName
	if oc.Operation != nil {
		kind = string(oc.Operation.Operation)
		if name == "" {
			name = oc.Operation.Name
		}
	}
	attrs := []attribute.KeyValue{opTypeKey.String(kind), requestIDKey.String(edge.RequestIDFromContext(ctx))}
	if t, ok := tenancy.FromContext(ctx); ok {
		switch {
		case t.Admin:
			attrs = append(attrs, tenantKey.String("admin"))
		case t.Tenant != nil:
			attrs = append(attrs, tenantKey.String(t.Tenant.Slug))
		}
	}
	if parent := trace.SpanFromContext(ctx); parent.IsRecording() {
		parent.SetAttributes(attrs...)
	}
	spanName := kind
	if name != "" {
		attrs = append(attrs, opNameKey.String(name))
		spanName += " " + name
	}
	ctx, span := o.tracer.Start(ctx, spanName, trace.WithAttributes(attrs...))
	responses := next(ctx)
	subscription := kind == "subscription"
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		if resp == nil { // a subscription's end
			span.End()
			return nil
		}
		if len(resp.Errors) > 0 {
			errCodes := make([]string, 0, len(resp.Errors))
			for _, e := range resp.Errors {
				if c, ok := e.Extensions["code"].(string); ok {
					errCodes = append(errCodes, c)
				}
			}
			span.SetAttributes(errorCodesKey.StringSlice(errCodes))
			span.SetStatus(codes.Error, "the answer has errors")
		}
		if !subscription {
			span.End()
		}
		return resp
	}
}
