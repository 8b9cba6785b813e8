package resolvers

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/auth"
	"github.com/tenantql/tenantql/edge"
	"github.com/tenantql/tenantql/tenancy"
)

// A websocket is one HTTP request that carries any number of operations.
// The edge (edge.Guard) sees only the upgrade; what it does for every HTTP
// request is done here for every operation on a socket:
//
//   - socketRate, first of the extensions, spends one request of the rate
//     limits per operation, however malformed its query (over the limit:
//     an "error" message with RATE_LIMITED and extensions.retryAfter);
//   - socketOps, last of them, caps the operations in flight on the socket
//     and admits each query and mutation to its tenant (Target.Admit) for
//     as long as it runs, as the router admits an HTTP request;
//   - the depth, alias and complexity limits are extensions already, and
//     authentication is per field (the @tenant and @platform directives),
//     from the token of connection_init or of the upgrade request.
//
// A socket without a valid token runs what an anonymous request may (on a
// tenant host: organization and login) and is closed once it has been
// idle for WSAnonymousIdle.

// Defaults of the websocket edge's HandlerOptions.
const (
	DefaultWSMaxInFlight   = 100
	DefaultWSAnonymousIdle = 15 * time.Second
)

// closeUnauthenticatedIdle is the close code of an idle socket without a
// valid token: graphql-transport-ws's "Unauthorized", which its clients
// do not retry as they are.
const closeUnauthenticatedIdle = 4401

// socket is one websocket connection as the edge sees it.
type socket struct {
	mu            sync.Mutex
	client        edge.Client             // its rate buckets' owner, set at connection_init
	conn          transport.WebsocketConn // set once accepted
	authenticated bool                    // connection_init carried a valid token
	inFlight      int
	starting      map[*graphql.OperationContext]bool // admitted by socketOps, not yet dispatched
	last          time.Time                          // when an operation last began or ended
}

type socketKey struct{}

func socketFrom(ctx context.Context) *socket {
	s, _ := ctx.Value(socketKey{}).(*socket)
	return s
}

// touch notes activity on the socket.
func (s *socket) touch() {
	s.mu.Lock()
	s.last = time.Now()
	s.mu.Unlock()
}

// begin takes one of max places for an operation about to be dispatched.
func (s *socket) begin(oc *graphql.OperationContext, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight >= max {
		return false
	}
	s.inFlight++
	s.starting[oc] = true
	return true
}

// dispatched reports whether oc holds a place taken by begin, and forgets
// it: the caller gives the place back with end when the operation is over.
func (s *socket) dispatched(oc *graphql.OperationContext) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := s.starting[oc]
	delete(s.starting, oc)
	return ok
}

func (s *socket) end() {
	s.mu.Lock()
	s.inFlight--
	s.last = time.Now()
	s.mu.Unlock()
}

// closeWhenIdle closes an unauthenticated socket once it has had no
// operation in flight and none begun for idle; it returns early when ctx
// (the connection's) ends.
func (s *socket) closeWhenIdle(ctx context.Context, idle time.Duration) {
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		quiet := time.Since(s.last)
		busy := s.inFlight > 0
		conn := s.conn
		s.mu.Unlock()
		if !busy && quiet >= idle && conn != nil {
			_ = conn.WriteClose(closeUnauthenticatedIdle,
				fmt.Sprintf("unauthenticated connection idle for %s: send a valid token in connection_init", idle))
			return
		}
		t.Reset(max(idle-quiet, idle/10))
	}
}

// socketAccept accepts websockets as gqlgen's coder/websocket adapter
// does, and hands the connection to its socket, which may close it.
type socketAccept struct {
	transport.CoderWebsocketImplementation
}

func (a socketAccept) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	c, err := a.CoderWebsocketImplementation.Accept(w, r, o)
	if s := socketFrom(r.Context()); s != nil && err == nil {
		s.mu.Lock()
		s.conn = c
		s.mu.Unlock()
	}
	return c, err
}

// socketInit authenticates a connection from its connection_init payload
// (Authorization, headers.Authorization, authorization or authToken; the
// upgrade request's own header when none of these is there). A socket
// whose token is missing or invalid is served as anonymous, and closed
// once idle for anonymousIdle.
func (r *Resolver) socketInit(anonymousIdle time.Duration) transport.WebsocketInitFunc {
	return func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		if token := initToken(p); token != "" {
			ctx = WithBearer(ctx, token)
		}
		s := socketFrom(ctx)
		if s == nil {
			return ctx, nil, nil
		}
		target, _ := tenancy.FromContext(ctx)
		session := sessionFrom(ctx)
		user := r.TokenHolder(ctx, target)
		s.mu.Lock()
		s.client = edge.Client{User: user, Addr: session.client}
		s.authenticated = user != ""
		s.last = time.Now()
		s.mu.Unlock()
		if user == "" {
			go s.closeWhenIdle(ctx, anonymousIdle)
		}
		return ctx, nil, nil
	}
}

// initToken reads the token of a connection_init payload.
func initToken(p transport.InitPayload) string {
	token := ""
	if s, ok := p["Authorization"].(string); ok {
		token = BearerToken(s)
	}
	if h, ok := p["headers"].(map[string]any); ok && token == "" {
		for _, k := range []string{"Authorization", "authorization"} {
			if s, ok := h[k].(string); ok {
				token = BearerToken(s)
			}
		}
	}
	if s, ok := p["authorization"].(string); ok && token == "" {
		token = BearerToken(s)
	}
	if s, ok := p["authToken"].(string); ok && token == "" {
		token = s
		if t := BearerToken(s); t != "" {
			token = t
		}
	}
	return token
}

// TokenHolder names who the bearer token of ctx's session (SessionMiddleware,
// or a websocket's connection_init) signs in on target, without reaching a
// database: "admin" for the admin token on the admin host, the user id for
// a token of target's tenant that verifies; "" for none (a token revoked
// since it was issued still names its user here; its operations are
// refused field by field). The edge's rate buckets key on it.
func (r *Resolver) TokenHolder(ctx context.Context, t *tenancy.Target) string {
	s := sessionFrom(ctx)
	bearer := s.bearer
	switch {
	case bearer == "" || t == nil:
		return ""
	case t.Admin:
		if auth.AdminTokenMatches(r.AdminToken, bearer) {
			return "admin"
		}
		return ""
	case t.Tenant == nil || r.Tokens == nil:
		return ""
	}
	claims, err := s.verify(r.Tokens, t.Tenant.ID.String())
	if err != nil {
		return ""
	}
	return claims.UserID
}

// socketRate spends one request of the rate limits for every operation on
// a websocket, as the edge does for every HTTP request.
type socketRate struct{ guard *edge.Guard }

func (socketRate) ExtensionName() string                   { return "SocketRate" }
func (socketRate) Validate(graphql.ExecutableSchema) error { return nil }

func (e socketRate) MutateOperationParameters(ctx context.Context, _ *graphql.RawParams) *gqlerror.Error {
	s := socketFrom(ctx)
	if s == nil {
		return nil
	}
	s.touch()
	if e.guard == nil {
		return nil
	}
	target, _ := tenancy.FromContext(ctx)
	s.mu.Lock()
	client := s.client
	s.mu.Unlock()
	if ref := e.guard.Take(target, client); ref != nil {
		return rateLimited(ref.Message, ref.RetryAfterSeconds())
	}
	return nil
}

// rateLimited is the error of an operation refused for a rate limit: over
// a websocket an "error" message, over HTTP a refusal before execution.
func rateLimited(msg string, retryAfter int) *gqlerror.Error {
	err := gqlerror.Errorf("%s", msg)
	err.Extensions = map[string]any{"code": apierr.RateLimited, "retryAfter": retryAfter}
	return err
}

// socketOps caps the operations in flight on a websocket and admits each
// query and mutation to its tenant while it runs. It must be the last
// extension that can refuse an operation (MutateOperationContext): an
// operation it lets through is dispatched, and its place given back when
// it ends.
type socketOps struct {
	maxInFlight int
	present     graphql.ErrorPresenterFunc
}

func (socketOps) ExtensionName() string                   { return "SocketOperations" }
func (socketOps) Validate(graphql.ExecutableSchema) error { return nil }

func (e socketOps) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	s := socketFrom(ctx)
	if s == nil || s.begin(oc, e.maxInFlight) {
		return nil
	}
	return rateLimited(fmt.Sprintf("too many operations in flight on this connection (limit %d): wait for one to complete", e.maxInFlight), 1)
}

func (e socketOps) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	s := socketFrom(ctx)
	oc := graphql.GetOperationContext(ctx)
	if s == nil || !s.dispatched(oc) {
		return next(ctx)
	}
	// the transport cancels an operation's context when it ends, is
	// stopped, or the socket closes
	context.AfterFunc(ctx, s.end)
	target, ok := tenancy.FromContext(ctx)
	if !ok || oc.Operation == nil || oc.Operation.Operation == ast.Subscription {
		return next(ctx)
	}
	admitted, leave, err := target.Admit(ctx)
	if err != nil {
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{e.present(ctx, err)}})
	}
	context.AfterFunc(ctx, leave)
	responses := next(tenancy.WithTarget(ctx, admitted))
	return func(ctx context.Context) *graphql.Response {
		defer leave() // a query or mutation has one response
		return responses(ctx)
	}
}
