package resolvers

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/tenantql/tenantql/graph"
	"github.com/tenantql/tenantql/tenancy"
)

// HandlerOptions configure the GraphQL HTTP handler.
type HandlerOptions struct {
	Introspection bool          // allow __schema/__type queries
	WSInitTimeout time.Duration // time a websocket client has to send connection_init; defaults to 10s
	WSKeepAlive   time.Duration // keep-alive ping interval; defaults to 15s
}

// NewHandler returns the GraphQL endpoint: POST JSON, GET for queries,
// websocket subscriptions, APQ with a cache per tenant, and the presenter.
func NewHandler(r *Resolver, o HandlerOptions) http.Handler {
	if o.WSInitTimeout <= 0 {
		o.WSInitTimeout = 10 * time.Second
	}
	if o.WSKeepAlive <= 0 {
		o.WSKeepAlive = 15 * time.Second
	}
	cfg := graph.Config{Resolvers: r}
	cfg.Directives.Platform = r.platformDirective
	cfg.Directives.Tenant = r.tenantDirective
	srv := handler.New(graph.NewExecutableSchema(cfg))

	srv.AddTransport(transport.Websocket{
		// Origins are checked by the edge middleware before the upgrade.
		Implementation:        transport.CoderWebsocketImplementation{AcceptOptions: coderws.AcceptOptions{InsecureSkipVerify: true}},
		InitFunc:              websocketInit,
		InitTimeout:           o.WSInitTimeout,
		KeepAlivePingInterval: o.WSKeepAlive,
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})

	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if o.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: newTenantAPQCache(100)})
	srv.SetErrorPresenter(Presenter(r.Log))
	srv.SetRecoverFunc(Recover(r.Log))
	return srv
}

// websocketInit authenticates a subscription connection from the
// connection_init payload: Authorization, headers.Authorization or
// authToken; the upgrade request's own header was already read.
func websocketInit(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
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
	if token == "" {
		return ctx, nil, nil // keep the upgrade request's header, if any
	}
	return WithBearer(ctx, token), nil, nil
}

// tenantAPQCache keeps automatic persisted queries per tenant (and one set
// for the admin host), so a tenant can neither probe nor evict another's.
type tenantAPQCache struct {
	size   int
	mu     sync.Mutex
	caches map[string]*lru.LRU[string]
}

func newTenantAPQCache(size int) *tenantAPQCache {
	return &tenantAPQCache{size: size, caches: map[string]*lru.LRU[string]{}}
}

func (c *tenantAPQCache) forRequest(ctx context.Context) *lru.LRU[string] {
	key := "admin"
	if t, ok := tenancy.FromContext(ctx); ok && t.Tenant != nil {
		key = t.Tenant.ID.String()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.caches[key]
	if !ok {
		l = lru.New[string](c.size)
		c.caches[key] = l
	}
	return l
}

func (c *tenantAPQCache) Get(ctx context.Context, key string) (string, bool) {
	return c.forRequest(ctx).Get(ctx, key)
}

func (c *tenantAPQCache) Add(ctx context.Context, key, value string) {
	c.forRequest(ctx).Add(ctx, key, value)
}

var _ graphql.Cache[string] = (*tenantAPQCache)(nil)
