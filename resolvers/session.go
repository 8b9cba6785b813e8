package resolvers

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/auth"
	"github.com/tenantql/tenantql/store"
	"github.com/tenantql/tenantql/tenancy"
)

// session is what one request (or one websocket connection) presents:
// its bearer token, and the signed-in user once looked up.
type session struct {
	bearer string
	client string // the client's address (the connection's peer), for the audit

	once sync.Once
	user store.User
	err  error

	verifyOnce sync.Once
	claims     auth.Claims
	claimsErr  error
}

// verify checks the session's bearer token for the tenant tenantID once:
// the edge (rate limits per user, TokenHolder) and the viewer both need
// it, and a signature check is among the larger costs of a small request.
// A session belongs to one request or one websocket connection, so to one
// tenant.
func (s *session) verify(tokens *auth.Tokens, tenantID string) (auth.Claims, error) {
	s.verifyOnce.Do(func() { s.claims, s.claimsErr = tokens.Verify(s.bearer, tenantID) })
	return s.claims, s.claimsErr
}

type sessionKey struct{}

// WithBearer returns ctx carrying the request's bearer token ("" for
// none), in place of the one SessionMiddleware read (a websocket's
// connection_init carries its own); the client address stays.
func WithBearer(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, sessionKey{}, &session{bearer: token, client: sessionFrom(ctx).client})
}

// BearerToken extracts the token of an "Authorization: Bearer <token>" value.
func BearerToken(header string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// SessionMiddleware stores the Authorization header's bearer token in the
// request context for the resolvers.
func SessionMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &session{bearer: BearerToken(r.Header.Get("Authorization"))}
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			s.client = host
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	})
}

func sessionFrom(ctx context.Context) *session {
	if s, ok := ctx.Value(sessionKey{}).(*session); ok {
		return s
	}
	return &session{}
}

// tenantTarget returns the tenant of the request, or TENANT_REQUIRED.
func tenantTarget(ctx context.Context) (*tenancy.Target, error) {
	t, ok := tenancy.FromContext(ctx)
	if !ok || t.Tenant == nil {
		return nil, apierr.New(apierr.TenantRequired, "this field is served on a tenant host (<slug>.<base domain>)")
	}
	return t, nil
}

// viewer returns the signed-in user of the request's tenant, or
// UNAUTHENTICATED. The lookup runs once per request, and reaches the
// database only when the user is not in the user cache.
func (r *Resolver) viewer(ctx context.Context) (store.User, error) {
	target, err := tenantTarget(ctx)
	if err != nil {
		return store.User{}, err
	}
	s := sessionFrom(ctx)
	s.once.Do(func() {
		if s.bearer == "" {
			s.err = apierr.New(apierr.Unauthenticated, "sign in first: send Authorization: Bearer <token> from login")
			return
		}
		claims, err := s.verify(r.Tokens, target.Tenant.ID.String())
		if err != nil {
			s.err = apierr.New(apierr.Unauthenticated, "invalid or expired token for this organization")
			return
		}
		id, err := uuid.Parse(claims.UserID)
		if err != nil {
			s.err = apierr.New(apierr.Unauthenticated, "invalid token")
			return
		}
		key := userKey{tenant: target.Tenant.ID, user: id}
		u, ok := r.users.get(r.UserTTL, key)
		// a token newer than the cached user was issued after it was read
		// (a changePassword on another process): read the user again
		if !ok || u.TokenGeneration < claims.Generation {
			u, s.err = store.New(target.DB).UserByID(ctx, id)
			switch {
			case errors.Is(s.err, store.ErrNotFound):
				s.err = apierr.New(apierr.Unauthenticated, "the signed-in user no longer exists")
				return
			case s.err != nil:
				return
			}
			r.users.add(r.UserTTL, key, u)
		}
		if claims.Generation != u.TokenGeneration {
			s.err = apierr.New(apierr.Unauthenticated, "this token was revoked (logout, a new password or a change of the user): sign in again")
			return
		}
		s.user = u
	})
	return s.user, s.err
}

// ForgetUser drops what this process remembers of a user whose tokens
// were revoked; uuid.Nil as the tenant forgets every user. Register it
// with Registry.OnUserRevoked.
func (r *Resolver) ForgetUser(tenant, user uuid.UUID) {
	r.users.forget(r.UserTTL, userKey{tenant: tenant, user: user})
}

// platformDirective guards @platform fields: admin host and admin token.
func (r *Resolver) platformDirective(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
	t, ok := tenancy.FromContext(ctx)
	if !ok || !t.Admin {
		return nil, apierr.New(apierr.Forbidden, "platform fields are served on the admin host only")
	}
	if !auth.AdminTokenMatches(r.AdminToken, sessionFrom(ctx).bearer) {
		return nil, apierr.New(apierr.Unauthenticated, "platform fields need Authorization: Bearer <admin token>")
	}
	if fc := graphql.GetFieldContext(ctx); fc != nil && fc.Object == "Mutation" {
		return r.audited(ctx, next)
	}
	return next(ctx)
}

// tenantDirective guards @tenant fields: a tenant host and, unless public,
// a signed-in user of that tenant.
func (r *Resolver) tenantDirective(ctx context.Context, _ any, next graphql.Resolver, public *bool) (any, error) {
	if _, err := tenantTarget(ctx); err != nil {
		return nil, err
	}
	if public == nil || !*public {
		if _, err := r.viewer(ctx); err != nil {
			return nil, err
		}
	}
	return next(ctx)
}
