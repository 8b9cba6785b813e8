package resolvers

import (
	"context"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/edge"
	"github.com/tenantql/tenantql/graph"
	"github.com/tenantql/tenantql/tenancy"
)

// Defaults of HandlerOptions fields left zero.
const (
	DefaultWSInitTimeout  = 10 * time.Second
	DefaultWSKeepAlive    = 15 * time.Second
	DefaultAPQTenants     = 256     // tenants whose persisted queries are kept
	DefaultAPQBytes       = 1 << 20 // bytes of persisted queries kept per tenant
	DefaultWSMessageBytes = 1 << 20 // largest websocket message read
)

// HandlerOptions configure the GraphQL HTTP handler.
type HandlerOptions struct {
	Introspection bool   // allow __schema/__type queries
	Suggestions   bool   // "Did you mean ...?" hints in validation errors
	Limits        Limits // operation limits; zero fields take their defaults

	WSInitTimeout     time.Duration // time a websocket client has to send connection_init; defaults to DefaultWSInitTimeout
	WSKeepAlive       time.Duration // keep-alive ping interval; defaults to DefaultWSKeepAlive
	WSMessageBytes    int64         // largest websocket message; defaults to DefaultWSMessageBytes
	APQTenants        int           // per-tenant APQ caches kept, least recently used dropped; defaults to DefaultAPQTenants
	APQBytesPerTenant int           // bytes of queries each tenant's APQ cache keeps; defaults to DefaultAPQBytes
	// TracerProvider, when set, gets a span of every operation (tracing.go); nil: none.
	TracerProvider trace.TracerProvider

	// Edge counts every operation on a websocket against the rate limits
	// HTTP requests are counted against (socket.go); nil: not counted.
	Edge *edge.Guard
	// WSMaxInFlight caps the operations in flight on one websocket
	// (subscriptions included); defaults to DefaultWSMaxInFlight.
	WSMaxInFlight int
	// WSAnonymousIdle is how long a websocket without a valid token may
	// stay idle before it is closed; defaults to DefaultWSAnonymousIdle.
	WSAnonymousIdle time.Duration
}

// NewHandler returns the GraphQL endpoint: POST JSON, GET for queries,
// websocket subscriptions, APQ with a cache per tenant, the operation
// limits and the presenter. Errors raised before execution (parse,
// validation, limits) answer HTTP 400, as Apollo Server does; a mutation
// over GET is refused with 405 before it runs.
func NewHandler(r *Resolver, o HandlerOptions) http.Handler {
	if o.WSInitTimeout <= 0 {
		o.WSInitTimeout = DefaultWSInitTimeout
	}
	if o.WSKeepAlive <= 0 {
		o.WSKeepAlive = DefaultWSKeepAlive
	}
	if o.WSMessageBytes <= 0 {
		o.WSMessageBytes = DefaultWSMessageBytes
	}
	if o.APQTenants <= 0 {
		o.APQTenants = DefaultAPQTenants
	}
	if o.APQBytesPerTenant <= 0 {
		o.APQBytesPerTenant = DefaultAPQBytes
	}
	if o.WSMaxInFlight <= 0 {
		o.WSMaxInFlight = DefaultWSMaxInFlight
	}
	if o.WSAnonymousIdle <= 0 {
		o.WSAnonymousIdle = DefaultWSAnonymousIdle
	}
	cfg := graph.Config{Resolvers: r}
	cfg.Directives.Platform = r.platformDirective
	cfg.Directives.Tenant = r.tenantDirective
	srv := handler.New(graph.NewExecutableSchema(cfg))

	srv.AddTransport(transport.Websocket{
		// Origins are checked by the edge middleware before the upgrade.
		Implementation:        socketAccept{transport.CoderWebsocketImplementation{AcceptOptions: coderws.AcceptOptions{InsecureSkipVerify: true}}},
		InitFunc:              r.socketInit(o.WSAnonymousIdle),
		InitTimeout:           o.WSInitTimeout,
		KeepAlivePingInterval: o.WSKeepAlive, // graphql-ws: "ka" messages
		PingPongInterval:      o.WSKeepAlive, // graphql-transport-ws: ping, and close when no pong comes
		PayloadReadLimit:      &o.WSMessageBytes,
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})

	docs := newDocumentCache(1000, maxCachedQueryBytes)
	srv.SetQueryCache(docs)
	srv.SetDisableSuggestion(!o.Suggestions)
	if !o.Suggestions {
		srv.SetValidationRulesFn(rulesWithoutSuggestions)
	}
	if o.Introspection {
		srv.Use(extension.Introspection{})
	}
	// Order matters: a websocket's operation is counted first, however
	// malformed; APQ fills in the query, then the limits check it; the
	// socket's cap on operations in flight comes last, so that an
	// operation it lets through runs.
	srv.Use(socketRate{guard: o.Edge})
	srv.Use(extension.AutomaticPersistedQuery{Cache: newTenantAPQCache(o.APQTenants, o.APQBytesPerTenant)})
	srv.Use(limitsExtension{l: o.Limits.withDefaults(), parsed: docs})
	srv.Use(getQueriesOnly{})
	srv.Use(onePlatformMutation{})
	srv.Use(oneLogin{})
	srv.Use(refuseWhileMoving{})
	// last of those that may refuse an operation (socket.go)
	srv.Use(socketOps{maxInFlight: o.WSMaxInFlight, present: Presenter(r.Log)})
	if o.TracerProvider != nil {
		srv.Use(newOperationTracing(o.TracerProvider))
	}
	srv.SetErrorPresenter(Presenter(r.Log))
	srv.SetRecoverFunc(Recover(r.Log))
	return graphqlHandler{srv: srv}
}

// rulesWithoutSuggestions is the default validation rule set with every
// rule that suggests names ("Did you mean ...?") swapped for its variant
// that does not, so a schema cannot be guessed from error messages.
// (gqlgen's SetDisableSuggestion swaps FieldsOnCorrectType and ScalarLeafs.)
func rulesWithoutSuggestions() *rules.Rules {
	rs := rules.NewDefaultRules()
	for _, swap := range []struct {
		old string
		new core.Rule
	}{
		{rules.KnownArgumentNamesRule.Name, rules.KnownArgumentNamesRuleWithoutSuggestions},
		{rules.KnownTypeNamesRule.Name, rules.KnownTypeNamesRuleWithoutSuggestions},
		{rules.ValuesOfCorrectTypeRule.Name, rules.ValuesOfCorrectTypeRuleWithoutSuggestions},
	} {
		rs.RemoveRule(swap.old)
		rs.AddRule(swap.new.Name, swap.new.RuleFunc)
	}
	return rs
}

// graphqlHandler is gqlgen's server with the HTTP statuses of the
// contract: gqlgen answers 422 for a request error under Accept:
// application/json, Apollo Server and the contract say 400; a refusal
// may set its own status (405 for a mutation over GET).
type graphqlHandler struct {
	srv *handler.Server
}

func (h graphqlHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "" { // websocket: the writer is hijacked
		s := &socket{starting: map[*graphql.OperationContext]bool{}, last: time.Now()}
		h.srv.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), socketKey{}, s)))
		return
	}
	st := &httpState{method: r.Method}
	sw := &apierr.StatusRecorder{ResponseWriter: w, Rewrite: st.rewrite(w)}
	h.srv.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), httpStateKey{}, st)))
}

type httpStateKey struct{}

// httpState is the HTTP side of one request, for the extensions: its
// method, and the status and Allow header a refusal asks for.
type httpState struct {
	method     string
	status     int
	allow      string
	retryAfter string // seconds, for a refusal the client should retry
}

// rewrite returns the status rewrite of the request's writer: the
// status and Allow header a refusal asked for, and 400 for gqlgen's 422.
func (st *httpState) rewrite(w http.ResponseWriter) func(int) int {
	return func(code int) int {
		switch {
		case st.status != 0:
			if st.allow != "" {
				w.Header().Set("Allow", st.allow)
			}
			if st.retryAfter != "" {
				w.Header().Set("Retry-After", st.retryAfter)
			}
			return st.status
		case code == http.StatusUnprocessableEntity:
			return http.StatusBadRequest
		}
		return code
	}
}

// getQueriesOnly refuses mutations and subscriptions sent over GET (405,
// Allow: POST) before they run: a GET must be safe to repeat and to
// prefetch.
type getQueriesOnly struct{}

func (getQueriesOnly) ExtensionName() string                   { return "GetQueriesOnly" }
func (getQueriesOnly) Validate(graphql.ExecutableSchema) error { return nil }

func (getQueriesOnly) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	st, ok := ctx.Value(httpStateKey{}).(*httpState)
	if !ok || st.method != http.MethodGet || oc.Operation == nil || oc.Operation.Operation == ast.Query {
		return nil
	}
	st.status, st.allow = http.StatusMethodNotAllowed, http.MethodPost
	err := gqlerror.Errorf("%s operations are not allowed over GET: send them with POST (Content-Type: application/json)", oc.Operation.Operation)
	err.Extensions = map[string]any{"code": apierr.ValidationFailed}
	return err
}

// maxCachedQueryBytes is the longest query text kept in the document and
// APQ caches: a longer one (a huge string literal is one token) is parsed
// or resent each time, so the caches stay small.
const maxCachedQueryBytes = 64 << 10

// documentCache is the executor's cache of parsed, validated documents,
// shared by all tenants (a document depends on the schema only): gqlgen's
// LRU, without the documents of overlong queries.
type documentCache struct {
	lru      *lru.LRU[*ast.QueryDocument]
	maxQuery int
}

func newDocumentCache(size, maxQuery int) documentCache {
	return documentCache{lru: lru.New[*ast.QueryDocument](size), maxQuery: maxQuery}
}

func (c documentCache) Get(ctx context.Context, query string) (*ast.QueryDocument, bool) {
	return c.lru.Get(ctx, query)
}

func (c documentCache) Add(ctx context.Context, query string, doc *ast.QueryDocument) {
	if len(query) <= c.maxQuery {
		c.lru.Add(ctx, query, doc)
	}
}

// tenantAPQCache keeps automatic persisted queries per tenant (and one set
// for the admin host), so a tenant can neither probe nor evict another's.
// It keeps the caches of at most tenants tenants, dropping the least
// recently used, and at most bytesPerTenant bytes of hashes and queries
// in each, dropping a tenant's least recently used queries first.
type tenantAPQCache struct {
	bytesPerTenant int

	mu      sync.Mutex
	tenants *simplelru.LRU[string, *apqCache]
}

// apqCache is one tenant's queries by hash; guarded by tenantAPQCache.mu.
type apqCache struct {
	bytes   int
	queries *simplelru.LRU[string, string]
}

func newTenantAPQCache(tenants, bytesPerTenant int) *tenantAPQCache {
	l, err := simplelru.NewLRU[string, *apqCache](tenants, nil)
	if err != nil {
		panic(err) // only for tenants <= 0, which NewHandler rules out
	}
	return &tenantAPQCache{bytesPerTenant: bytesPerTenant, tenants: l}
}

func apqKey(ctx context.Context) string {
	if t, ok := tenancy.FromContext(ctx); ok && t.Tenant != nil {
		return t.Tenant.ID.String()
	}
	return "admin"
}

// Get returns the query the request's tenant stored under hash.
func (c *tenantAPQCache) Get(ctx context.Context, hash string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tc, ok := c.tenants.Get(apqKey(ctx))
	if !ok {
		return "", false
	}
	return tc.queries.Get(hash)
}

// Add stores query under hash for the request's tenant.
func (c *tenantAPQCache) Add(ctx context.Context, hash, query string) {
	size := len(hash) + len(query)
	if size > c.bytesPerTenant || len(query) > maxCachedQueryBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := apqKey(ctx)
	tc, ok := c.tenants.Get(key)
	if !ok {
		tc = &apqCache{}
		tc.queries, _ = simplelru.NewLRU[string, string](math.MaxInt32, func(h, q string) { tc.bytes -= len(h) + len(q) })
		c.tenants.Add(key, tc)
	}
	if tc.queries.Contains(hash) {
		return
	}
	tc.queries.Add(hash, query)
	tc.bytes += size
	for tc.bytes > c.bytesPerTenant {
		tc.queries.RemoveOldest()
	}
}

// len reports how many tenants' caches are kept.
func (c *tenantAPQCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tenants.Len()
}

var (
	_ graphql.Cache[string]             = (*tenantAPQCache)(nil)
	_ graphql.Cache[*ast.QueryDocument] = documentCache{}
)
