// Command tenantql is a multi-tenant GraphQL API server: every organization
// gets its own PostgreSQL database and role, reached at its own subdomain.
//
//go:generate go run github.com/99designs/gqlgen generate
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantql/tenantql/auth"
	"github.com/tenantql/tenantql/edge"
	"github.com/tenantql/tenantql/live"
	"github.com/tenantql/tenantql/metrics"
	"github.com/tenantql/tenantql/pglocal"
	"github.com/tenantql/tenantql/playground"
	"github.com/tenantql/tenantql/resolvers"
	"github.com/tenantql/tenantql/store"
	"github.com/tenantql/tenantql/tenancy"
	"github.com/tenantql/tenantql/tracing"
	tenantusage "github.com/tenantql/tenantql/usage"
	"github.com/tenantql/tenantql/webapp"
)

func main() {
	tuneGC(os.Getenv)
	os.Exit(run(os.Args[1:], os.Getenv))
}

// app is one wired tenantql process.
type app struct {
	cfg         Config
	log         *slog.Logger
	cluster     *pglocal.Cluster // development mode only
	controlURL  string
	control     *sqlx.DB
	registry    *tenancy.Registry
	pools       *tenancy.Pools
	provisioner *tenancy.Provisioner
	reserve     *tenancy.Reserve      // template and spare tenant databases
	servers     *tenancy.Servers      // the fleet of database servers
	usage       *tenantusage.Recorder // per-tenant request counts (Tenant.usage)
	resolver    *resolvers.Resolver
	passwords   *auth.Passwords // the process's password hashing
	sealer      *tenancy.Sealer // seals and opens stored passwords
	metrics     *metrics.Metrics
	hosts       tenancy.Hosts
	tracing     *tracing.Tracing // nil: traces off
}

// newApp connects to (or, in development mode, starts) the control
// database, migrates it and wires every component. Close releases it all.
func newApp(ctx context.Context, cfg Config, log *slog.Logger) (*app, error) {
	fp, err := failpoint(cfg.Failpoint, log)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, controlURL: cfg.DatabaseURL}
	if cfg.Dev() {
		if err := a.startDevDatabase(ctx); err != nil {
			return nil, err
		}
	}
	cfg = a.cfg // development mode filled in the secrets
	a.controlURL = withConnectTimeout(a.controlURL)
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if err := a.startTracing(ctx); err != nil {
		return nil, err
	}
	db, err := a.openControl()
	if err != nil {
		return nil, err
	}
	a.control = db
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		return nil, fmt.Errorf("connect to the control database: %w", err)
	}
	if err := tenancy.CheckControlRole(ctx, db); err != nil {
		return nil, err
	}
	// tenant roles may neither connect to the control database nor use TEMP there
	if err := tenancy.CloseControlDatabase(ctx, db); err != nil {
		return nil, err
	}
	if _, err := tenancy.MigrateControl(ctx, db.DB); err != nil {
		return nil, fmt.Errorf("migrate control database: %w", err)
	}
	sealer, err := tenancy.NewSealer(cfg.SecretKey, cfg.SecretKeyPrevious)
	if err != nil {
		return nil, err
	}
	a.sealer = sealer
	tokens, err := auth.NewTokens(cfg.SecretKey, 0, cfg.SecretKeyPrevious)
	if err != nil {
		return nil, err
	}
	a.metrics = metrics.New()
	a.pools, err = tenancy.NewPools(tenancy.PoolOptions{
		ServerURL: a.controlURL, MaxConns: cfg.MaxDBConnections, MaxConnsPerTenant: cfg.MaxConnsTenant,
		IdleTimeout: cfg.DBIdleTimeout, NamePrefix: cfg.NamePrefix,
		Metrics: a.metrics, TracerProvider: a.tracing.Provider(),
		Prepared: store.Preparable,
	}, sealer)
	if err != nil {
		return nil, err
	}
	a.registry, err = tenancy.NewRegistry(db, sealer, cfg.NamePrefix, log)
	if err != nil {
		return nil, err
	}
	a.pools.FollowRegistry(a.registry)
	if a.servers, err = tenancy.NewServers(db, a.controlURL, sealer, tenancy.ServersOptions{Log: log, Metrics: a.metrics}); err != nil {
		return nil, err
	}
	a.metrics.WatchServers(a.serverStats, 2*time.Second, log)
	a.registry.SetServers(a.servers)
	a.pools.SetServers(a.servers)
	if err := a.registry.Load(ctx); err != nil {
		return nil, err
	}
	a.reserve, err = tenancy.NewReserve(db, tenancy.ReserveOptions{
		ServerURL: a.controlURL, Servers: a.servers, NamePrefix: cfg.NamePrefix, Template: cfg.TenantTemplate, Spares: cfg.SpareTenants,
		Metrics: a.metrics,
	}, log)
	if err != nil {
		return nil, err
	}
	a.servers.SetReserve(a.reserve)
	a.registry.SetFailpoint(fp)
	a.registry.SetDeleteGrace(cfg.DeleteGrace)
	a.provisioner = tenancy.NewProvisioner(db, a.registry, a.pools, seeder{}, tenancy.ProvisionerOptions{
		Lease: cfg.ProvisionLease, MaxAttempts: cfg.ProvisionMaxAttempts, BaseBackoff: cfg.ProvisionBackoff,
		Failpoint: fp, Reserve: a.reserve, Servers: a.servers, TracerProvider: a.tracing.Provider(),
		HashPassword: func(password string) (string, error) { return a.passwords.Hash(auth.PlatformQueue, password) },
	}, log)
	// every live replica takes a share of each tenant role's CONNECTION LIMIT
	a.provisioner.Presence().OnReplicas = func(n int) {
		a.pools.SetReplicas(n)
		a.metrics.Replicas(n, a.pools.TenantCap())
	}
	a.hosts = tenancy.Hosts{BaseDomain: cfg.BaseDomain, AdminHost: cfg.AdminHost}
	a.usage = tenantusage.New(db, tenantusage.Options{Log: log, Users: func(ctx context.Context, t *tenancy.Tenant) (int, error) {
		tdb, err := a.pools.DB(t)
		if err != nil {
			return 0, err
		}
		return store.New(tdb).CountUsers(ctx)
	}})
	a.passwords = auth.NewPasswords(0)
	a.resolver = &resolvers.Resolver{
		Registry: a.registry, Provisioner: a.provisioner, Servers: a.servers, Hosts: a.hosts,
		Tokens: tokens, Passwords: a.passwords, AdminToken: cfg.AdminToken, Log: log,
		Logins: auth.NewLoginThrottle(auth.ThrottleOptions{
			FreePerEmail: cfg.LoginFreeFailures, FreePerAddress: cfg.LoginFreeFailuresPerAddress, MaxBackoff: cfg.LoginMaxBackoff,
		}),
		UsageOf: a.usage, UserTTL: cfg.UserCacheTTL, Live: live.New(a.registry, a.pools, live.Options{MaxListeners: cfg.MaxListenConns}, log),
	}
	// a logout or a new password on any process: forget the user at once
	a.registry.OnUserRevoked(a.resolver.ForgetUser)
	a.metrics.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tenantql_issue_feeds",
		Help: "Tenants whose issue changes this process follows for issueChanged subscriptions (by LISTEN or by polling).",
	}, func() float64 { return float64(a.resolver.Live.Feeds()) }))
	a.metrics.Register(metrics.ConnectionsByServer(a.pools.OpenConns))
	ok = true
	return a, nil
}

// serverStats is the fleet as the metrics show it. "default", the control
// database's own server, is never probed: it answered if this list was
// read.
func (a *app) serverStats(ctx context.Context) ([]metrics.ServerStat, error) {
	list, err := a.servers.List(ctx)
	if err != nil {
		return nil, err
	}
	stats := make([]metrics.ServerStat, 0, len(list))
	for _, s := range list {
		stats = append(stats, metrics.ServerStat{Name: s.Name, Tenants: s.TenantCount, Reachable: s.Status != tenancy.ServerUnreachable})
	}
	return stats, nil
}

// startDevDatabase runs the embedded PostgreSQL under DATA_DIR (or uses
// the one another tenantql process runs there: the server and the CLI
// share it) and makes sure its control database exists.
func (a *app) startDevDatabase(ctx context.Context) error {
	if err := a.cfg.devSecrets(); err != nil {
		return err
	}
	dir, err := filepath.Abs(filepath.Join(a.cfg.DataDir, "postgres"))
	if err != nil {
		return err
	}
	a.cluster, err = pglocal.Start(ctx, pglocal.Options{DataDir: dir, Logger: a.log})
	if err != nil {
		return fmt.Errorf("start development PostgreSQL: %w", err)
	}
	if a.controlURL, err = a.cluster.EnsureDatabase(ctx, "tenantql"); err != nil {
		return fmt.Errorf("development PostgreSQL: %w", err)
	}
	return nil
}

// Close releases the pools, the control database and the embedded cluster.
func (a *app) Close() {
	if a.pools != nil {
		a.pools.CloseAll()
	}
	if a.servers != nil {
		a.servers.Close()
	}
	if a.control != nil {
		a.control.Close()
	}
	if err := a.tracing.Shutdown(context.Background()); err != nil {
		a.log.Warn("export the last traces", "err", err)
	}
	if a.cluster != nil {
		if err := a.cluster.Stop(); err != nil {
			a.log.Warn("stop development PostgreSQL", "err", err)
		}
	}
}

// workers is the background work of a running app.
type workers struct {
	wg sync.WaitGroup
	// lost delivers why the embedded PostgreSQL (development mode) died
	// and could not be restarted: the process should stop.
	lost chan error
}

// wait returns once every worker has stopped (after their context ended).
func (w *workers) wait() { w.wg.Wait() }

// startWorkers runs the process's background work until ctx ends: the
// watcher that keeps the routing table current (LISTEN/NOTIFY, and a full
// reload every routeReload; 0 means tenancy's default, 30 s), the
// provisioner, the reserve's refill (the template and the spares, topped
// up after each claim) and, in development mode, the watch that restarts
// the embedded PostgreSQL. serve and the tests start the same workers.
func (a *app) startWorkers(ctx context.Context, routeReload time.Duration) *workers {
	w := &workers{lost: make(chan error, 1)}
	run := func(f func()) {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			f()
		}()
	}
	run(func() {
		if err := a.registry.Watch(ctx, tenancy.WatchOptions{ListenerURL: a.controlURL, Refresh: routeReload}); err != nil {
			a.log.Error("tenant watcher stopped", "err", err)
		}
	})
	run(func() { a.provisioner.Run(ctx) })
	run(func() { a.reserve.Run(ctx) })
	run(func() { a.usage.Run(ctx) })
	run(func() { a.servers.Run(ctx) })
	// The embedded PostgreSQL is restarted when its postmaster dies; the
	// server stops when that fails, instead of answering 503 for ever.
	if a.cluster != nil {
		run(func() {
			if err := a.cluster.Watch(ctx, time.Second); err != nil {
				w.lost <- err
			}
		})
	}
	return w
}

// handler builds the HTTP handler and returns it with its GraphQL edge
// guard, which a stopping server asks to close the open websockets.
func (a *app) handler() (http.Handler, *edge.Guard) {
	guard := edge.NewGuard(edge.Options{
		Hosts: a.hosts, CORSOrigins: a.cfg.CORSOrigins, MaxBodyBytes: a.cfg.MaxBodyBytes,
		RateLimit: a.cfg.RateLimitRPS, RateBurst: a.cfg.RateLimitBurst, MaxWebsockets: a.cfg.WSMaxPerTenant,
		UserRateLimit: a.cfg.RateLimitUserRPS, UserRateBurst: a.cfg.RateLimitUserBurst,
		AddressRateLimit: a.cfg.RateLimitAddressRPS, AddressRateBurst: a.cfg.RateLimitAddressBurst,
		AnonymousRateLimit: a.cfg.RateLimitAnonymousRPS, AnonymousRateBurst: a.cfg.RateLimitAnonymousBurst,
		ClientBuckets: a.cfg.RateLimitClientBuckets,
		Identify: func(r *http.Request, t *tenancy.Target) string {
			return a.resolver.TokenHolder(r.Context(), t) // the session of SessionMiddleware, before the guard
		},
	})
	router := &tenancy.Router{
		Registry: a.registry, Pools: a.pools, Hosts: a.hosts, TrustProxy: a.cfg.TrustProxy,
		// a page allowed to call the host can read why it was refused
		Reject: func(w http.ResponseWriter, r *http.Request, err error) {
			host, _ := tenancy.RequestHost(r, a.cfg.TrustProxy)
			if !guard.RejectionCORS(w, r, host) {
				resolvers.WriteHTTPError(w, r, err)
			}
		},
	}
	// the kind of host a request was sent to, from its Host header: the
	// metrics middleware runs outside the router, before any tenant is in
	// the request's context
	hostKind := func(r *http.Request) string {
		host, _ := tenancy.RequestHost(r, a.cfg.TrustProxy)
		if kind, _ := a.hosts.Classify(host); kind == tenancy.HostAdmin {
			return "admin"
		}
		return "tenant"
	}
	gql := resolvers.NewHandler(a.resolver, resolvers.HandlerOptions{
		Introspection: a.cfg.Introspection, Suggestions: a.cfg.FieldSuggestions, Limits: a.cfg.Limits,
		WSInitTimeout: a.cfg.WSInitTimeout, WSKeepAlive: a.cfg.WSKeepAlive, WSMessageBytes: a.cfg.MaxBodyBytes,
		APQTenants: a.cfg.APQTenants, APQBytesPerTenant: a.cfg.APQBytesPerTenant,
		TracerProvider: a.tracing.Provider(),
		Edge:           guard, WSMaxInFlight: a.cfg.WSMaxInFlight, WSAnonymousIdle: a.cfg.WSAnonymousIdle,
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("/metrics", router.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, _ := tenancy.FromContext(r.Context()); !t.Admin {
			http.NotFound(w, r)
			return
		}
		a.metrics.Handler().ServeHTTP(w, r)
	})))
	mux.Handle("/graphql", a.metrics.Middleware("/graphql", hostKind,
		router.Middleware(a.usage.Middleware(resolvers.SessionMiddleware(guard.Wrap(resolvers.LoaderMiddleware(gql)))))))
	mux.Handle(playground.AssetPrefix, playground.Assets())
	mux.Handle("GET /{$}", router.Middleware(http.HandlerFunc(a.playgroundPage)))
	mux.Handle(webapp.Prefix, router.Middleware(webapp.Handler()))
	// forwarded headers count from trusted proxies only (TRUSTED_PROXIES)
	proxies, err := edge.ParseProxies(a.cfg.TrustedProxies, a.cfg.TrustProxy)
	if err != nil { // LoadConfig checked it
		panic(err)
	}
	return proxies.Wrap(edge.RequestID(a.traced(edge.AccessLog(a.log, mux)))), guard
}

// playgroundPage serves the IDE of the host's API, with its starter query.
func (a *app) playgroundPage(w http.ResponseWriter, r *http.Request) {
	h := playground.Platform("/graphql")
	if t, _ := tenancy.FromContext(r.Context()); t.Tenant != nil {
		h = playground.Organization(t.Tenant.Name, "/graphql")
	}
	h.ServeHTTP(w, r)
}

// readyz answers 200 while the control database answers.
func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.control.PingContext(ctx); err != nil {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "control database unavailable", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

// serve runs the HTTP server and the background work until SIGINT or
// SIGTERM, then drains in-flight requests and stops.
func serve(cfg Config, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()

	bg, cancelBG := context.WithCancel(context.Background())
	workers := a.startWorkers(bg, 0)
	if cfg.PprofAddr != "" {
		go servePprof(cfg.PprofAddr, log)
	}

	handler, guard := a.handler()
	srv := &http.Server{
		Addr:              cfg.ListenAddr,
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout, // hijacked websockets lose their deadlines: not cut
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("tenantql started", "config", a.cfg)
	a.printWelcome()

	var lost error
	select {
	case err := <-errc:
		cancelBG()
		return fmt.Errorf("http server: %w", err)
	case lost = <-workers.lost:
		log.Error("development PostgreSQL stopped and could not be restarted: shutting down", "err", lost)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests and closing websockets", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Websockets are hijacked: Shutdown neither closes nor waits for them.
	// Close them (a close frame each; clients reconnect elsewhere) while
	// the HTTP requests drain.
	wsClosed := make(chan error, 1)
	go func() { wsClosed <- guard.CloseWebsockets(shutdownCtx) }()
	err = srv.Shutdown(shutdownCtx)
	if werr := <-wsClosed; werr != nil {
		log.Warn("websockets still open at the shutdown timeout", "err", werr)
	}
	cancelBG()
	workers.wait()
	if lost != nil {
		return fmt.Errorf("development PostgreSQL (%s): %w", a.cfg.DataDir, lost)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// publicHost is host with the port of LISTEN_ADDR, unless that is 80
// (a server behind a proxy on 443 sets LISTEN_ADDR accordingly).
func (a *app) publicHost(host string) string {
	_, port, err := net.SplitHostPort(a.cfg.ListenAddr)
	if err != nil || port == "" || port == "80" || port == "443" {
		return host
	}
	return host + ":" + port
}

// printWelcome tells a developer where to click.
func (a *app) printWelcome() {
	admin, tenant := a.publicHost(a.cfg.AdminHost), "<slug>."+a.publicHost(a.cfg.BaseDomain)
	fmt.Fprintf(os.Stderr, "\n  Operator console:          http://%s/app/\n  Platform Playground:       http://%s/\n"+
		"  An organization's app:     http://%s/app/\n  Its Playground:            http://%s/\n",
		admin, admin, tenant, tenant)
	if a.cfg.Dev() {
		fmt.Fprintf(os.Stderr, "  Admin token (Headers tab: {\"Authorization\": \"Bearer <token>\"}): %s\n  Data: %s\n\n",
			a.cfg.AdminToken, a.cfg.DataDir)
	}
}

// seeder creates the owner and demo data of new tenants through store.
type seeder struct{}

func (seeder) CreateOwner(ctx context.Context, db *sqlx.DB, o tenancy.Owner) error {
	_, err := store.New(db).EnsureOwner(ctx, store.NewUser{Email: o.Email, Name: o.Name, Role: store.RoleOwner, PasswordHash: o.PasswordHash})
	return err
}

func (seeder) SeedDemo(ctx context.Context, db *sqlx.DB, o tenancy.Owner) error {
	s := store.New(db)
	owner, err := s.UserByEmail(ctx, o.Email)
	if err != nil {
		return err
	}
	return s.SeedDemo(ctx, owner.ID, o.PasswordHash)
}

// failpoint parses TENANTQL_FAILPOINT: "<boundary>=<action>", action
// "exit" (status 3) or "error", e.g. "create.after-database=exit", or
// several such separated by commas (an undone move, say, needs a failing
// move and a crash in its undo); the boundaries are tenancy.Boundaries.
// Empty means inert (nil). Returns an error for any other boundary or
// action: a mistyped failpoint stops the process at start instead of
// never firing.
func failpoint(spec string, log *slog.Logger) (tenancy.Failpoint, error) {
	if spec == "" {
		return nil, nil
	}
	actions := map[string]string{}
	for _, one := range strings.Split(spec, ",") {
		step, action, _ := strings.Cut(one, "=")
		if !slices.Contains(tenancy.Boundaries(), step) {
			return nil, fmt.Errorf("TENANTQL_FAILPOINT %q: %q is not a boundary (%s)", spec, step, strings.Join(tenancy.Boundaries(), ", "))
		}
		if action != "exit" && action != "error" {
			return nil, fmt.Errorf("TENANTQL_FAILPOINT %q: the action must be exit or error", spec)
		}
		actions[step] = action
		log.Warn("failpoint armed", "step", step, "action", action)
	}
	return func(name string) error {
		switch actions[name] {
		case "exit":
			log.Warn("failpoint: exiting", "step", name)
			os.Exit(3)
		case "error":
			return tenancy.ErrFailpoint
		}
		return nil
	}, nil
}

// withConnectTimeout bounds connection attempts to the control database
// (and, through it, tenant databases) when the URL does not: a PostgreSQL
// that is down or unreachable must fail requests fast, not hang them.
func withConnectTimeout(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return rawURL
	}
	q := u.Query()
	if q.Get("connect_timeout") != "" {
		return rawURL
	}
	q.Set("connect_timeout", "5")
	u.RawQuery = q.Encode()
	return u.String()
}

// servePprof serves the runtime profiles on addr, apart from the API (set
// PPROF_ADDR only to profile, on a loopback address).
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Warn("serving pprof", "addr", addr)
	if err := (&http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}).ListenAndServe(); err != nil {
		log.Error("pprof server", "err", err)
	}
}
