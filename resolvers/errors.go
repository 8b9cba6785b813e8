package resolvers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/auth"
	"github.com/tenantql/tenantql/edge"
	"github.com/tenantql/tenantql/pgerr"
	"github.com/tenantql/tenantql/store"
	"github.com/tenantql/tenantql/tenancy"
	"github.com/tenantql/tenantql/usage"
)

// classify maps an error from any layer to a code and a client message.
// ok is false for errors that must be masked as internal.
func classify(err error) (code, msg string, ok bool) {
	var e *apierr.Error
	switch {
	case errors.As(err, &e):
		return e.Code, e.Message, true
	// the request's tenant changed under it (see tenancy.Target.Recheck)
	case errors.Is(err, tenancy.ErrTenantGone):
		return apierr.TenantNotFound, "this tenant has been deleted", true
	case errors.Is(err, tenancy.ErrTenantSuspended):
		return apierr.TenantSuspended, "this tenant is suspended", true
	case errors.Is(err, tenancy.ErrTenantNotReady):
		return apierr.TenantNotReady, "this tenant is not ready, retry shortly", true
	// a write that raced the start of a move met the frozen old copy
	case errors.Is(err, tenancy.ErrTenantMoving), pgerr.IsReadOnly(err):
		return apierr.TenantMoving, movingMessage, true
	case errors.Is(err, tenancy.ErrInvalidInput), errors.Is(err, store.ErrInvalidInput):
		return apierr.BadUserInput, clientMessage(err), true
	case errors.Is(err, tenancy.ErrSlugTaken), errors.Is(err, tenancy.ErrDomainTaken),
		errors.Is(err, store.ErrConflict), errors.Is(err, tenancy.ErrWrongState),
		errors.Is(err, tenancy.ErrServerTaken), errors.Is(err, tenancy.ErrServerInUse):
		return apierr.Conflict, clientMessage(err), true
	case errors.Is(err, tenancy.ErrTenantNotFound), errors.Is(err, tenancy.ErrDomainNotFound),
		errors.Is(err, store.ErrNotFound), errors.Is(err, tenancy.ErrServerNotFound):
		return apierr.NotFound, clientMessage(err), true
	case errors.Is(err, auth.ErrInvalidToken):
		return apierr.Unauthenticated, "invalid or expired token", true
	case errors.Is(err, tenancy.ErrServerSilent):
		return apierr.ServiceUnavailable, clientMessage(err), true
	case errors.Is(err, tenancy.ErrUnavailable), errors.Is(err, store.ErrUnavailable):
		return apierr.ServiceUnavailable, "the database is unavailable, retry later", true
	case isIntrospectionDisabled(err):
		return apierr.ValidationFailed, "introspection is disabled on this server", true
	}
	return apierr.Internal, "", false
}

// isIntrospectionDisabled recognises gqlgen's own (unexported) error for
// __schema and __type when INTROSPECTION is off.
func isIntrospectionDisabled(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "introspection disabled" {
			return true
		}
	}
	return false
}

// clientMessage strips the internal "op: " prefixes of a wrapped sentinel
// error, keeping the sentinel's text and what follows it.
func clientMessage(err error) string {
	s := err.Error()
	for _, sentinel := range []error{tenancy.ErrInvalidInput, store.ErrInvalidInput, tenancy.ErrSlugTaken,
		tenancy.ErrDomainTaken, store.ErrConflict, tenancy.ErrWrongState, tenancy.ErrTenantNotFound,
		tenancy.ErrDomainNotFound, store.ErrNotFound, tenancy.ErrServerTaken, tenancy.ErrServerInUse,
		tenancy.ErrServerNotFound, tenancy.ErrServerSilent} {
		if errors.Is(err, sentinel) {
			if i := strings.Index(s, sentinel.Error()); i > 0 {
				prefix := s[:i]
				// keep a subject such as `tenant "acme": ` in front of the sentinel
				if j := strings.LastIndex(strings.TrimSuffix(prefix, ": "), ": "); j >= 0 {
					return s[j+2:]
				}
			}
			return s
		}
	}
	return s
}

// Presenter is gqlgen's error presenter: it gives every error a contract
// code and masks internal ones, logging their details with the request id.
func Presenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Err == nil {
			// an error gqlgen itself raised (parse, validation, APQ, limits)
			out := *gqlErr
			if out.Extensions == nil || out.Extensions["code"] == nil {
				out.Extensions = map[string]any{"code": apierr.ValidationFailed}
			}
			return &out
		}
		usage.MarkError(ctx)
		out := graphql.DefaultErrorPresenter(ctx, err)
		err = recheckTenant(ctx, err)
		code, msg, ok := classify(err)
		if code == apierr.ServiceUnavailable {
			// the client gets a generic "retry later"; the operator the cause
			log.Warn("database unavailable", "request_id", edge.RequestIDFromContext(ctx), "path", out.Path.String(), "err", err)
		}
		if !ok {
			id := edge.RequestIDFromContext(ctx)
			level := slog.LevelError
			if errors.Is(err, context.Canceled) {
				level = slog.LevelDebug // the client left; nobody reads this answer
			}
			log.Log(ctx, level, "internal error", "request_id", id, "path", out.Path.String(), "err", err)
			msg = "internal server error"
			if id != "" {
				msg += " (request id " + id + ")"
			}
		}
		out.Message = msg
		out.Extensions = map[string]any{"code": code}
		if e := (*apierr.Error)(nil); errors.As(err, &e) && e.RetryAfter > 0 {
			out.Extensions["retryAfter"] = e.RetryAfter
		}
		return out
	}
}

// recheckTenant turns a failure of the request's tenant database into what
// really happened when the tenant was meanwhile deleted or suspended (its
// pool closed, its database dropped under the request): the same answer
// a new request gets, instead of an internal or unavailable error.
func recheckTenant(ctx context.Context, err error) error {
	if code, _, _ := classify(err); code != apierr.Internal && code != apierr.ServiceUnavailable {
		return err
	}
	t, ok := tenancy.FromContext(ctx)
	if !ok {
		return err
	}
	if rerr := t.Recheck(ctx, err); rerr != nil {
		return fmt.Errorf("%w (after: %v)", rerr, err)
	}
	return err
}

// Recover turns a resolver panic into a masked internal error.
func Recover(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "resolver panic", "request_id", edge.RequestIDFromContext(ctx), "panic", p)
		return errors.New("panic in resolver")
	}
}

// WriteHTTPError answers a request rejected before GraphQL execution
// (host routing, limits) with the contract's status code and a GraphQL
// error body.
func WriteHTTPError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := http.StatusInternalServerError, apierr.Internal, "internal server error"
	switch {
	case errors.Is(err, tenancy.ErrTenantNotFound), errors.Is(err, tenancy.ErrTenantGone):
		status, code, msg = http.StatusNotFound, apierr.TenantNotFound, "no tenant serves this host"
	case errors.Is(err, tenancy.ErrSchemaBehind):
		status, code, msg = http.StatusServiceUnavailable, apierr.TenantNotReady, "this tenant's database is being upgraded, retry later"
		w.Header().Set("Retry-After", "30")
	case errors.Is(err, tenancy.ErrTenantNotReady):
		status, code, msg = http.StatusServiceUnavailable, apierr.TenantNotReady, "this tenant is being provisioned, retry shortly"
		w.Header().Set("Retry-After", "2")
	case errors.Is(err, tenancy.ErrTenantSuspended):
		status, code, msg = http.StatusForbidden, apierr.TenantSuspended, "this tenant is suspended"
	case errors.Is(err, tenancy.ErrUnavailable), errors.Is(err, store.ErrUnavailable):
		status, code, msg = http.StatusServiceUnavailable, apierr.ServiceUnavailable, "the database is unavailable, retry later"
		w.Header().Set("Retry-After", "2")
	default:
		var e *apierr.Error
		if errors.As(err, &e) {
			code, msg = e.Code, e.Message
			status = apierr.Status(e.Code)
		} else {
			slog.ErrorContext(r.Context(), "request failed", "request_id", edge.RequestIDFromContext(r.Context()), "err", err)
		}
	}
	apierr.WriteBody(w, status, code, msg)
}
